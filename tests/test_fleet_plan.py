"""awq.fleet: the factory's command line, its route to the master's demand, the site's condor_submit."""

from __future__ import annotations

import os
import stat

import pytest

from awq import fleet
from awq.fleet import FleetError, Route, choose_route, factory_command, settings_from

DEBIAN_FACTORY = "/usr/bin/work_queue_factory"   # CCTools 8: its direct query sends no password


def env_for(tmp_path, **extra: str) -> dict:
    env = {"WQ_WORKDIR": str(tmp_path / "wq"), "WQ_MASTER": "10.0.0.1:9094",
           "WQ_FACTORY_MIN": "0", "WQ_FACTORY_MAX": "8", "WQ_WORKER_CORES": "2",
           "WQ_IDLETIMEOUT": "30", "PATH": os.environ["PATH"]}
    env.update(extra)
    return env


def option(argv: list, name: str) -> str:
    return argv[argv.index(name) + 1]


def test_with_a_password_and_this_factory_the_route_is_the_catalog(tmp_path):
    assert not fleet.queries_with_password(DEBIAN_FACTORY)
    settings = settings_from(env_for(tmp_path, WQ_PASSWORD="/pw", WQ_CATALOG="vobox:9097",
                                     WQ_PROJECT_NAME="alice_site"), 1)
    route = choose_route(settings, authenticated_query=False)
    assert route.kind == "catalog" and "no password" in route.reason
    argv = factory_command(settings, route)
    assert argv[-2:] == ["--manager-name", "alice_site"]
    assert option(argv, "--catalog") == "vobox:9097"
    assert option(argv, "--password") == "/pw"
    assert "10.0.0.1" not in argv


def test_with_a_password_and_no_catalog_start_factory_says_what_to_set(tmp_path):
    settings = settings_from(env_for(tmp_path, WQ_PASSWORD="/pw"), 1)
    with pytest.raises(FleetError, match="WQ_CATALOG=HOST:PORT and WQ_PROJECT_NAME"):
        choose_route(settings, authenticated_query=False)


def test_a_factory_that_authenticates_or_no_password_goes_direct(tmp_path):
    with_password = settings_from(env_for(tmp_path, WQ_PASSWORD="/pw", WQ_CATALOG="c:1"), 1)
    assert choose_route(with_password, authenticated_query=True).kind == "direct"
    insecure = settings_from(env_for(tmp_path), 1)
    route = choose_route(insecure, authenticated_query=False)
    assert route == Route("direct", route.reason) and "no password" in route.reason
    argv = factory_command(insecure, route)
    assert argv[-2:] == ["10.0.0.1", "9094"]


def test_the_factory_never_reports_to_a_catalog_nobody_named(tmp_path):
    # Without --catalog the factory sends its status to CCTools' public catalog every cycle.
    argv = factory_command(settings_from(env_for(tmp_path), 1), Route("direct", ""))
    assert option(argv, "--catalog") == fleet.LOOPBACK_CATALOG


def test_every_setting_reaches_the_factory(tmp_path):
    env = env_for(tmp_path, WQ_FACTORY_TYPE="slurm", WQ_FACTORY_PER_CYCLE="3",
                  WQ_WORKER_MEMORY="2000", WQ_WORKER_DISK="5000",
                  WQ_FACTORY_BATCH_OPTIONS="--partition=grid --account=alice",
                  WQ_FACTORY_OPTIONS="--autosize --env='A=b c'",
                  WQ_FACTORY_SCRATCH="/shared/wq-factory", WQ_DEBUG="1")
    argv = factory_command(settings_from(env, 1), Route("direct", ""), "/usr/bin/work_queue_factory")
    assert argv[0] == "/usr/bin/work_queue_factory"
    assert option(argv, "-T") == "slurm"
    assert (option(argv, "--min-workers"), option(argv, "--max-workers")) == ("0", "8")
    assert option(argv, "--workers-per-cycle") == "3"
    assert (option(argv, "--cores"), option(argv, "--memory"), option(argv, "--disk")) == \
        ("2", "2000", "5000")
    assert option(argv, "--timeout") == "30"
    assert option(argv, "--batch-options") == "--partition=grid --account=alice"
    assert option(argv, "--scratch-dir") == "/shared/wq-factory"
    assert "--autosize" in argv and "--env=A=b c" in argv
    assert option(argv, "-o") == str(tmp_path / "wq" / "log" / "factory-1.debug")
    assert "--parent-death" in argv


def test_defaults_submit_the_whole_shortfall_in_one_cycle(tmp_path):
    settings = settings_from(env_for(tmp_path), 1)
    assert settings.workers_per_cycle == 8   # not the factory's 5 a cycle
    assert settings.scratch_dir == str(tmp_path / "wq" / "factory-1")
    argv = factory_command(settings, Route("direct", ""))
    assert "--memory" not in argv and "--disk" not in argv and "--batch-options" not in argv


@pytest.mark.parametrize("extra, message", [
    ({"WQ_FACTORY_MIN": "9"}, "WQ_FACTORY_MIN (9) is more than WQ_FACTORY_MAX (8)"),
    ({"WQ_FACTORY_PER_CYCLE": "many"}, "WQ_FACTORY_PER_CYCLE must be a number"),
    ({"WQ_CATALOG": "vobox"}, "WQ_CATALOG must be host:port"),
    ({"WQ_CATALOG": "c:1", "WQ_PROJECT_NAME": "a.*"}, "WQ_PROJECT_NAME may hold only"),
    ({"WQ_PROJECT_NAME": "alice"}, "WQ_PROJECT_NAME needs WQ_CATALOG"),
    ({"WQ_FACTORY_OPTIONS": "'unclosed"}, "WQ_FACTORY_OPTIONS cannot be read"),
])
def test_bad_settings_are_refused_with_their_name(tmp_path, extra, message):
    with pytest.raises(FleetError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*")):
        settings_from(env_for(tmp_path, **extra), 1)


def executable(path, body: str = "#!/bin/sh\nexit 0\n") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_condor_uses_the_sites_condor_submit_never_ours(tmp_path):
    ours = tmp_path / "awq" / "bin"
    executable(ours / "condor_submit", "#!/bin/bash\nexec python3 -m awq.cli.condor_submit\n")
    site = executable(tmp_path / "htcondor" / "bin" / "condor_submit")
    env = env_for(tmp_path, WQ_FACTORY_TYPE="condor", ALIEN_WORKQUEUE=str(tmp_path / "awq"),
                  PATH="%s:%s:/usr/bin:/bin" % (ours, os.path.dirname(site)))
    settings = settings_from(env, 1)
    assert fleet.site_condor_submit(settings, env, str(ours)) == site
    path = fleet.factory_path_for_condor(site, env, str(ours))
    assert path.split(":")[0] == os.path.dirname(site) and str(ours) not in path


def test_a_copy_of_our_condor_submit_elsewhere_is_still_ours(tmp_path):
    elsewhere = executable(tmp_path / "pip" / "bin" / "condor_submit",
                           "from awq.cli.condor_submit import cli\ncli()\n")
    env = env_for(tmp_path, WQ_FACTORY_TYPE="condor", PATH=os.path.dirname(elsewhere))
    with pytest.raises(FleetError, match="WQ_CONDOR_SUBMIT"):
        fleet.site_condor_submit(settings_from(env, 1), env, str(tmp_path / "bin"))
    named = dict(env, WQ_CONDOR_SUBMIT=elsewhere)
    with pytest.raises(FleetError, match="alien-workqueue's own"):
        fleet.site_condor_submit(settings_from(named, 1), named, str(tmp_path / "bin"))


def test_the_plan_is_written_privately_and_whole(tmp_path):
    env = env_for(tmp_path, WQ_FACTORY_TYPE="slurm")
    argv, description = fleet.plan_factory(env, 1, str(tmp_path))
    fleet.write_plan(str(tmp_path), 1, argv, description)
    recorded = (tmp_path / "factory-1.argv").read_bytes().split(b"\0")[:-1]
    assert [a.decode() for a in recorded] == argv
    assert (tmp_path / "factory-1.info").read_text() == description + "\n"
    assert description.startswith("-T slurm, 0..8 workers of 2 cores, route direct 10.0.0.1:9094")
    for name in ("factory-1.argv", "factory-1.info"):
        assert stat.S_IMODE(os.stat(str(tmp_path / name)).st_mode) == 0o600
    assert sorted(os.listdir(str(tmp_path))) == ["factory-1.argv", "factory-1.info"]


def test_main_says_one_line_and_exits_one_on_bad_settings(tmp_path, capsys):
    env = env_for(tmp_path, WQ_PASSWORD="/pw")
    assert fleet.main(["factory-plan", str(tmp_path), "1"], env) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("alien_wq_worker.sh: with a password")


def test_a_factory_whose_direct_query_authenticates_is_recognised(tmp_path):
    fixed = tmp_path / "work_queue_factory"
    fixed.write_bytes(b"\x7fELF...work_queue_factory: wrong password for manager.\n...")
    assert fleet.queries_with_password(str(fixed))
    assert not fleet.queries_with_password(str(tmp_path / "missing"))
