"""alien_wq_worker.sh start-factory and status: routes, the site's condor_submit, what slots started with."""

from __future__ import annotations

import os
import re
import time

import pytest
import work_queue

from conftest import (JOB_DONE_WITHIN, LOAD_ALLOWANCE, MASTER_WAITS_EVERY, PROGRAM_STARTS_WITHIN,
                      free_port_block, wait_until, write_script)
from test_worker_fleet import SLEEPER, live_processes, read_pid
from test_worker_script import CHILD_UP_WITHIN, fake_worker, script_factory  # noqa: F401 (fixture)

# Every test here runs alien_wq_worker.sh or a factory: the e2e tier.
pytestmark = pytest.mark.e2e

# work_queue_factory submits its first workers in its first cycle, right after it starts,
# once its direct query of the master has returned: a bare Work Queue answers only inside
# wait(), which the test never calls, so the query ends at the factory's 30 s timeout.
FACTORY_QUERY_TIMEOUT = 30.0


def test_status_shows_what_each_slot_started_with_not_the_callers_environment(script_factory,
                                                                              tmp_path):
    base = free_port_block(1)
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, SLEEPER), WQ_NUM_WORKERS="1",
                            WQ_NUM_FOREMEN="0", WQ_MASTER="127.0.0.1:19099")
    assert script.run("start-workers").returncode == 0
    foremen = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, SLEEPER), WQ_NUM_FOREMEN="1",
                             WQ_MASTER="127.0.0.1:19098", WQ_MASTER_BASEPORT=str(base))
    foremen.workdir = script.workdir
    foremen.env["WQ_WORKDIR"] = script.workdir
    assert foremen.run("start-foremen").returncode == 0
    # Asked from a shell with other settings, status still tells what each slot runs with.
    asked = dict(script.env, WQ_NUM_FOREMEN="2", WQ_MASTER="127.0.0.1:9094",
                 WQ_MASTER_BASEPORT="9080")
    script.env = asked
    status = script.run("status").stdout
    assert re.search(r"^foreman +1 .* listens on %d, manager 127\.0\.0\.1:19098$" % (base + 1),
                     status, re.M), status
    assert re.search(r"^worker +1 .* managers 127\.0\.0\.1:19099$", status, re.M), status
    assert "9081" not in status and "9094" not in status


def test_a_password_without_a_catalog_is_refused_with_what_to_set(script_factory, tmp_path):
    password = tmp_path / "pw"
    password.write_text("secret\n")
    password.chmod(0o600)
    script = script_factory(1, WQ_INSECURE="", WQ_PASSWORD=str(password), WQ_FACTORY_MIN="0")
    result = script.run("start-factory")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "WQ_CATALOG=HOST:PORT and WQ_PROJECT_NAME" in \
        result.stderr and "Traceback" not in result.stderr
    assert script.run("status").stdout == ""


def test_condor_factory_submits_with_the_sites_condor_submit_not_ours(script_factory, tmp_path):
    # HTCondor's daemons cannot be installed here: a stand-in "site condor_submit" that
    # records its calls shows which binary the factory runs. Ours is earlier on PATH.
    calls = tmp_path / "calls"
    calls.mkdir()
    ours = tmp_path / "awq" / "bin"
    site = tmp_path / "htcondor" / "bin"
    for directory, who in ((ours, "ours"), (site, "site")):
        directory.mkdir(parents=True)
        stand_in = directory / "condor_submit"
        stand_in.write_text("#!/bin/bash\n# %s\necho %s > %s/%s-$$\n"
                            "echo '1 job(s) submitted to cluster 7.'\n"
                            % ("exec python3 -m awq.cli.condor_submit" if who == "ours" else "site",
                               who, calls, who))
        stand_in.chmod(0o755)
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port, WQ_FACTORY_TYPE="condor", WQ_FACTORY_MIN="1",
                            WQ_FACTORY_MAX="1", ALIEN_WORKQUEUE=str(tmp_path / "awq"),
                            PATH="%s:%s:%s" % (ours, site, os.environ["PATH"]))
    result = script.run("start-factory")
    assert result.returncode == 0, result.stderr
    # Then it starts its submit command: a program's start.
    wait_until(lambda: os.listdir(str(calls)),
               FACTORY_QUERY_TIMEOUT + PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE, interval=0.2,
               what="the factory's first condor_submit")
    assert {name.split("-")[0] for name in os.listdir(str(calls))} == {"site"}
    status = script.run("status").stdout
    assert "condor_submit %s/condor_submit" % site in status, status
    assert "route direct 127.0.0.1:%d (the master has no password" % queue.port in status
    assert script.run("stop-factory").returncode == 0



def test_help_and_readme_name_every_setting_the_factory_planner_reads():
    from conftest import REPO
    import subprocess
    from test_worker_script import SCRIPT
    with open(os.path.join(REPO, "awq", "fleet.py")) as handle:
        names = set(re.findall(r'"(WQ_[A-Z_]+)"', handle.read()))
    assert {"WQ_FACTORY_PER_CYCLE", "WQ_CATALOG", "WQ_FACTORY_SCRATCH"} <= names
    help_text = subprocess.run([SCRIPT, "help"], capture_output=True, text=True).stdout
    with open(os.path.join(REPO, "README.md")) as handle:
        readme = handle.read()
    for name in sorted(names):
        assert name in help_text, name
        assert "`%s`" % name in readme, name


def test_an_installed_script_plans_with_the_installed_planner(tmp_path):
    from conftest import cmake_install
    import subprocess
    prefix = str(tmp_path / "prefix")
    cmake_install(prefix, str(tmp_path / "build"))
    planner = os.path.join(prefix, "bin", "alien_wq_fleet")
    assert os.access(planner, os.X_OK)
    env = dict(os.environ, WQ_WORKDIR=str(tmp_path / "wq"), WQ_MASTER="127.0.0.1:9094",
               WQ_FACTORY_TYPE="slurm", PYTHONPATH="")
    result = subprocess.run([planner, "factory-plan", str(tmp_path), "1"], env=env,
                            capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-T slurm, 1..1 workers of 1 cores, route direct")
    assert (tmp_path / "factory-1.argv").read_bytes().startswith(b"/usr/bin/work_queue_factory\0")


# CCTools 8's work_queue_factory looks at the demand and its workers every 30 s (fixed).
FACTORY_CYCLE = 30.0
# Its first cycle runs as it starts: its direct query of the master (answered inside the
# master's next wait), then its workers' start.
FIRST_WORKERS_WITHIN = (MASTER_WAITS_EVERY + 2 * PROGRAM_STARTS_WITHIN) * LOAD_ALLOWANCE
# Each cycle logs what it decided (CCTools 8: "|submitted: N |needed: M |...").
CYCLE_LINE = re.compile(r"\|submitted: (\d+) \|needed: (\d+) ")
FLEET_MIN, FLEET_MAX = 2, 4
SAMPLE_INTERVAL = 0.5   # s between looks at the fleet: a worker lives for many of them
# Workers must not leave idle while watched: the factory would replace them only at a later
# cycle, and that gap is CCTools' (README: "below the minimum for up to two cycles").
WATCHED_IDLE_TIMEOUT = int(FIRST_WORKERS_WITHIN + FACTORY_CYCLE * LOAD_ALLOWANCE) + 1


def fleet_size(factory_pid: int) -> int:
    """The factory's workers: the work_queue_worker processes in its process group (not the
    shell the local batch system starts each through)."""
    return sum(1 for group, cmdline in live_processes().values()
               if group == factory_pid and cmdline.split(" ", 1)[0].endswith("work_queue_worker"))


def test_the_fleet_never_drops_below_its_minimum_while_demand_is_under_it(
        script_factory, start_master, tool, tmp_path):
    """WQ_FACTORY_MIN=2 with no job, then one job (demand 1), then none: the fleet has its
    2 workers before any job and keeps them through the next factory cycle, which sees less
    demand than the minimum; it never goes below 2, nor above what was asked."""
    master = start_master("--insecure")   # no password: the factory reads the demand directly
    script = script_factory(master.port, WQ_FACTORY_TYPE="local", WQ_FACTORY_MIN=str(FLEET_MIN),
                            WQ_FACTORY_MAX=str(FLEET_MAX), WQ_IDLETIMEOUT=str(WATCHED_IDLE_TIMEOUT))
    assert script.run("start-factory").returncode == 0
    child_file = os.path.join(script.workdir, "pids", "factory-1.child")
    wait_until(lambda: os.path.exists(child_file) and open(child_file).read().strip(),
               CHILD_UP_WITHIN, what="the factory's PID file")
    factory = read_pid(child_file)
    wait_until(lambda: fleet_size(factory) >= FLEET_MIN, FIRST_WORKERS_WITHIN, interval=0.2,
               what="the factory's first %d workers, with no job queued" % FLEET_MIN)
    reached = time.monotonic()
    out = tmp_path / "job.out"
    job = write_script(tmp_path / "job.sh", "echo ran\n")
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nqueue\n" % (job, out)
                ).returncode == 0
    log = os.path.join(script.workdir, "log", "factory-1.log")

    def cycles() -> list:
        return CYCLE_LINE.findall(open(log).read()) if os.path.exists(log) else []
    samples = []
    ran = False
    # Watched up to the factory's next cycle, which sees a demand under the minimum.
    deadline = reached + FACTORY_CYCLE * LOAD_ALLOWANCE
    while len(cycles()) < 2 and time.monotonic() < deadline:
        samples.append(fleet_size(factory))
        ran = ran or (out.exists() and out.read_text() == "ran\n")
        time.sleep(SAMPLE_INTERVAL)
    assert len(cycles()) >= 2, "no second factory cycle within %.0f s" % (deadline - reached)
    assert ran or wait_until(lambda: out.exists() and out.read_text() == "ran\n", JOB_DONE_WITHIN,
                             what="the job to run on the fleet")
    assert cycles()[1] == (str(FLEET_MIN), str(FLEET_MIN))   # submitted, needed: the minimum
    assert min(samples) == FLEET_MIN, samples
    assert max(samples) == FLEET_MIN, samples   # demand never above the minimum
    assert script.run("stop-factory").returncode == 0
