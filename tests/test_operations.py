"""Operating it: systemd units, Work Queue's performance log, upgrades of the spool.

The units are checked twice: `systemd-analyze verify` on the installed files (no running
systemd needed), and their commands run the way systemd runs them (the environment built from
Environment= and EnvironmentFile= alone: no HOME, the unit's PATH; SIGTERM to the master alone,
as KillMode=mixed does), through a job's whole life.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from typing import Dict, List

import pytest

from awq import classad, snapshot
from awq.spool import Spool, loads_snapshot
from conftest import (FOREMAN_HOP_WITHIN, JOB_DONE_WITHIN, LOAD_ALLOWANCE, MASTER_LISTENS_WITHIN,
                      PYTHON, REPO, SNAPSHOT_WITHIN, WORKER_JOINS_WITHIN, cmake_install,
                      product_env)
from testkit import free_port, free_port_block, pid_alive, wait_until

# One per snapshot format: every version must load what each earlier one wrote.
FIXTURES = [os.path.join(REPO, "tests", "fixtures", name)
            for name in ("snapshot-format-1.pickle", "snapshot-format-2.pickle")]
UNITS = ("alien-work-queue", "alien-wq-foremen", "alien-wq-workers")
UNIT_DIR = os.path.join("share", "alien-workqueue", "systemd")


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops-install")
    cmake_install(str(root / "prefix"), str(root / "build"))
    return str(root / "prefix")


def unit_path(prefix: str, unit: str) -> str:
    return os.path.join(prefix, UNIT_DIR, unit + ".service")


# -- a small reader of what systemd takes from our units (only the syntax they use)

def service_section(path: str) -> Dict[str, List[str]]:
    """[Service] KEY=VALUE lines of a unit, every value of a key in order."""
    section, values = None, {}  # type: ignore[var-annotated]
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def environment_file(path: str) -> Dict[str, str]:
    """NAME=VALUE lines; a value may be in double quotes (systemd and sh agree on that form)."""
    env = {}
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        name, _, value = line.partition("=")
        env[name] = shlex.split(value)[0] if value.startswith('"') else value
    return env


def unit_environment(service: Dict[str, List[str]], conf: str) -> Dict[str, str]:
    """The environment systemd gives a system service without User=: no HOME, no USER."""
    env = {}
    for value in service.get("Environment", []):
        for assignment in shlex.split(value):
            name, _, val = assignment.partition("=")
            env[name] = val
    assert service["EnvironmentFile"] == ["-/etc/alien-workqueue.conf"]
    env.update(environment_file(conf))  # EnvironmentFile= wins over Environment=
    return env


def command(line: str, env: Dict[str, str]) -> List[str]:
    """An Exec*= line as systemd expands it: ${X} is one word, a lone $X splits on white space."""
    assert "%" not in line, "specifiers are not expanded here"
    words = []
    for word in shlex.split(line):
        alone = re.fullmatch(r"\$(\w+)", word)
        if alone:
            words.extend(env.get(alone.group(1), "").split())
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return words


# -- systemd

@pytest.mark.e2e
def test_systemd_units_install_with_the_prefix_and_verify(prefix, tmp_path):
    paths = [unit_path(prefix, unit) for unit in UNITS]
    for path in paths:
        text = open(path).read()
        assert "@" not in text and prefix + "/bin/" in text, path
        service = service_section(path)
        assert service["EnvironmentFile"] == ["-/etc/alien-workqueue.conf"]
        assert "User" not in service  # the admin's choice, in a drop-in
        assert "HOME" not in text     # systemd sets HOME only with User=
    master = service_section(paths[0])
    assert master["Restart"] == ["on-failure"] and master["KillSignal"] == ["SIGTERM"]
    assert master["KillMode"] == ["mixed"] and int(master["TimeoutStopSec"][0]) >= 60
    for path in paths[1:]:
        service = service_section(path)
        assert (service["Type"], service["RemainAfterExit"]) == (["oneshot"], ["yes"])
        assert service["ExecStart"][0].endswith("/bin/alien_wq_worker.sh start-"
                                                + path.rsplit("-", 1)[1][:-len(".service")])
        env = unit_environment(service, os.devnull)
        # Without HOME the script's defaults for these would fail under `set -u`.
        assert env["WQ_WORKDIR"].startswith("/var/lib/alien-workqueue/")
        assert env["WQ_DRAIN"].startswith("/var/lib/alien-workqueue/")
    assert os.path.isfile(os.path.join(prefix, UNIT_DIR, "alien-workqueue.conf.example"))

    result = subprocess.run(["systemd-analyze", "verify"] + paths, capture_output=True, text=True,
                            timeout=120)
    # verify exits 0 on settings it ignores (a misspelt key): any word from it is a failure.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr

    # The drop-in docs/operating.md tells the admin to write, read from the unit path.
    units = tmp_path / "units"
    units.mkdir()
    for path in paths:
        shutil.copy(path, str(units))
        dropin = units / (os.path.basename(path) + ".d")
        dropin.mkdir()
        (dropin / "override.conf").write_text("[Service]\nUser=daemon\n")
    result = subprocess.run(["systemd-analyze", "verify"] + [os.path.basename(p) for p in paths],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % units))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


def _end_slot_processes(wq_workdir: str) -> None:
    """Fallback after a failed ExecStop: the loops and workers the units started, by PID file."""
    for pid_file in glob.glob(os.path.join(wq_workdir, "pids", "*")):
        try:
            pid = int(open(pid_file).read().strip())
            cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
        except (OSError, ValueError):
            continue
        if b"alien_wq_worker.sh" in cmdline or b"work_queue_worker" in cmdline:
            os.kill(pid, signal.SIGKILL)


def test_the_units_commands_run_a_job_the_way_systemd_runs_them(prefix, tmp_path, procs):
    port, baseport = free_port(), free_port_block(1)
    spool, logs, wq = tmp_path / "spool", tmp_path / "log", tmp_path / "wq"
    logs.mkdir(mode=0o700)  # LogsDirectory=: systemd makes it before ExecStart
    conf = tmp_path / "alien-workqueue.conf"
    conf.write_text("\n".join([
        "# as in alien-workqueue.conf.example",
        "AWQ_WORKDIR=%s" % spool,
        "AWQ_LOG_FILE=%s/master.log" % logs,
        'AWQ_MASTER_ARGS="--port %d --wq-log %s/wq-perf.log"' % (port, logs),
        "WQ_MASTER=127.0.0.1:%d" % port,
        "WQ_FOREMEN=127.0.0.1",
        "WQ_NUM_FOREMEN=1",
        "WQ_NUM_WORKERS=1",
        "WQ_MASTER_BASEPORT=%d" % baseport,
        "WQ_WORKDIR=%s" % wq,
        "WQ_DRAIN=%s/wq-drain" % tmp_path,
        ""]))
    # The example's own lines are the same syntax: uncommented, they read as documented.
    example = environment_file_from_example(prefix)
    assert example["AWQ_MASTER_ARGS"].startswith("--port 9094 ")
    assert example["WQ_PASSWORD"] == "/etc/alien-workqueue/password"

    units = {unit: service_section(unit_path(prefix, unit)) for unit in UNITS}
    envs = {unit: unit_environment(units[unit], str(conf)) for unit in UNITS}
    for env in envs.values():
        assert "HOME" not in env and env["PATH"].startswith(prefix + "/bin:")

    # First start on a fresh machine: the spool does not exist yet.
    master_argv = command(units["alien-work-queue"]["ExecStart"][0], envs["alien-work-queue"])
    assert master_argv[:5] == [prefix + "/bin/alien_work_queue", "--work-dir", str(spool),
                               "--log-file", str(logs / "master.log")]
    master = procs.start(master_argv, "unit-master", env=envs["alien-work-queue"])
    wait_until(lambda: "listening for workers on port %d" % port in _read(logs / "master.log")
               or master.poll() is not None, MASTER_LISTENS_WITHIN, what="the master listening")
    assert master.poll() is None, procs.log_of(master) + _read(logs / "master.log")

    try:
        for unit in ("alien-wq-foremen", "alien-wq-workers"):
            start = subprocess.run(command(units[unit]["ExecStart"][0], envs[unit]),
                                   env=envs[unit], capture_output=True, text=True, timeout=60)
            assert start.returncode == 0, (unit, start.stderr)
        job = tmp_path / "pilot.sh"
        job.write_text("#!/bin/sh\necho pilot on $(hostname)\n")
        job.chmod(0o755)
        submit = subprocess.run([prefix + "/bin/condor_submit"], input="executable = %s\n"
                                "output = %s/pilot.out\nqueue\n" % (job, tmp_path),
                                env=envs["alien-work-queue"], capture_output=True, text=True,
                                timeout=60)
        assert submit.returncode == 0, submit.stderr
        # The units' worker joins the master through the units' foreman: one hop more.
        wait_until(lambda: "job 1.0: running -> completed" in _read(logs / "master.log"),
                   JOB_DONE_WITHIN + FOREMAN_HOP_WITHIN,
                   what="the pilot done through the units' foreman and worker")
        assert "pilot on" in _read(tmp_path / "pilot.out")
        status = subprocess.run(command("%s/bin/alien_wq_worker.sh status" % prefix, {}),
                                env=envs["alien-wq-workers"], capture_output=True, text=True,
                                timeout=60).stdout
        assert re.search(r"foreman\s+1\b.*running", status) and re.search(r"worker\s+1\b", status)
    finally:
        # systemctl stop: the workers, then the foremen (reverse start order), then the master.
        stops = {}
        for unit in ("alien-wq-workers", "alien-wq-foremen"):
            stops[unit] = subprocess.run(command(units[unit]["ExecStop"][0], envs[unit]),
                                         env=envs[unit], capture_output=True, text=True,
                                         timeout=int(units[unit]["TimeoutStopSec"][0]))
        leftovers = [f for f in glob.glob(str(wq / "pids" / "*"))
                     if _pid_in(f) and pid_alive(_pid_in(f))]
        _end_slot_processes(str(wq))
    for unit, stop in stops.items():
        assert stop.returncode == 0, (unit, stop.stderr)
    assert leftovers == []

    # KillMode=mixed: SIGTERM to the master alone; it must be gone within TimeoutStopSec, having
    # saved its table, with status 0 (Restart=on-failure leaves a clean stop alone).
    started = time.monotonic()
    os.kill(master.pid, signal.SIGTERM)
    assert master.wait(int(units["alien-work-queue"]["TimeoutStopSec"][0])) == 0
    assert time.monotonic() - started < 30
    assert "saving the job table and exiting" in _read(logs / "master.log")
    table = Spool(str(spool)).published.load_snapshot() or {"jobs": {}}
    assert table["jobs"] == {}  # the finished job went to history
    assert "job 1.0" not in procs.log_of(master)  # job lines go to AWQ_LOG_FILE, not the journal
    assert [j["JobStatus"] for j in Spool(str(spool)).history.read()] == [4]


def environment_file_from_example(prefix: str) -> Dict[str, str]:
    text = open(os.path.join(prefix, UNIT_DIR, "alien-workqueue.conf.example")).read()
    uncommented = "".join(line[1:] + "\n" for line in text.splitlines()
                          if re.match(r"#[A-Z_]+=", line))
    path = os.path.join(os.path.dirname(prefix), "example.conf")
    with open(path, "w") as handle:
        handle.write(uncommented)
    parsed = environment_file(path)
    # ... and a shell sourcing it (as the CE's environment may) reads the same values.
    shell = subprocess.run(["sh", "-c", 'set -a; . "$0"; env -0', path], capture_output=True,
                           env={"PATH": "/usr/bin:/bin"}, timeout=60).stdout.decode()
    seen = dict(e.split("=", 1) for e in shell.split("\0") if "=" in e)
    assert {k: seen.get(k) for k in parsed} == parsed
    return parsed


def _read(path) -> str:
    try:
        with open(str(path), errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _pid_in(path: str) -> int:
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return 0


# -- Work Queue's performance log

def test_work_queue_graph_log_plots_the_masters_performance_log(tmp_path, start_master,
                                                                start_worker, tool):
    log = tmp_path / "wq.log"
    master = start_master("--wq-log", str(log), "--managers", "1")  # one manager's log
    start_worker(master.port, cores=2)
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\nsleep 0.2\n")
    job.chmod(0o755)
    assert tool("condor_submit", stdin="executable = %s\nqueue 6\n" % job).returncode == 0
    # Six 0.2 s jobs on two cores: three rounds after the first job's way through.
    wait_until(lambda: len(Spool(master.workdir).history.read()) == 6,
               JOB_DONE_WITHIN + 3 * 0.2 * LOAD_ALLOWANCE, what="6 jobs done")
    master.stop()

    # The log is Work Queue's: a header of field names, then one line of numbers per event.
    lines = log.read_text().splitlines()
    fields = lines[0].lstrip("# ").split()
    last = dict(zip(fields, (float(x) for x in lines[-1].split())))
    assert last["tasks_submitted"] == last["tasks_done"] == 6 and last["workers_joined"] >= 1

    graph = shutil.which("work_queue_graph_log")
    assert graph, "work_queue_graph_log is missing (Debian: coop-computing-tools)"
    assert shutil.which("gnuplot"), "gnuplot is missing (Debian: gnuplot-nox)"
    # -s 1: one sample a second (the default, 30 s, leaves a short run's plots empty).
    result = subprocess.run([graph, "-T", "png", "-u", "s", "-s", "1", "-o", str(tmp_path / "plot"),
                             str(log)], capture_output=True, text=True, timeout=120,
                            cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    plots = {p.name: p.read_bytes() for p in tmp_path.glob("plot.*.png")}
    assert {"plot.tasks.png", "plot.workers.png", "plot.tasks-accum.png"} <= set(plots), plots
    assert all(data.startswith(b"\x89PNG") and len(data) > 1000 for data in plots.values())


# -- upgrades

@pytest.mark.parametrize("fixture", FIXTURES, ids=os.path.basename)
def test_a_snapshot_written_by_an_earlier_master_loads_with_every_job(tmp_path, start_master,
                                                                      tool, workdir, fixture):
    """tests/fixtures/make_snapshot_fixture.py wrote the fixture with a real master: 1.0 running,
    2.0 and 2.1 idle, 3.0 held, all with expressions. Every job must come back as it was, the
    running one requeued."""
    data = open(fixture, "rb").read()
    before = loads_snapshot(data)["jobs"]  # through SNAPSHOT_UPGRADES once the format moves on
    assert {jid: job["JobStatus"] for jid, job in before.items()} == {
        (1, 0): 2, (2, 0): 1, (2, 1): 1, (3, 0): 5}
    assert all(isinstance(job["PeriodicHold"], classad.Expr) for job in before.values())

    spool = Spool(workdir, create=True)
    with open(spool.snapshot_path, "wb") as handle:
        handle.write(data)
    os.chmod(spool.snapshot_path, 0o600)
    started = time.time()
    master = start_master()
    # Logged after "listening for workers", which start_master waits for: not at once.
    wait_until(lambda: "recovered 4 jobs from the snapshot (1 requeued after running)"
               in master.log(), MASTER_LISTENS_WITHIN, what="the master to say what it recovered")
    # The recovery changed the table: its snapshot follows within a snapshot interval.
    wait_until(lambda: spool.published.load_snapshot()["written"] >= started,
               SNAPSHOT_WITHIN * LOAD_ALLOWANCE,
               what="the master's own snapshot")
    after = spool.published.load_snapshot()["jobs"]
    assert set(after) == set(before)
    for jid, job in before.items():
        expected = dict(job)
        if jid == (1, 0):  # requeued: idle again, where it ran kept as LastRemoteHost
            expected.update(JobStatus=1, LastJobStatus=2,
                            LastRemoteHost=expected.pop("RemoteHost"))
            assert after[jid]["EnteredCurrentStatus"] >= int(started)
            expected["EnteredCurrentStatus"] = after[jid]["EnteredCurrentStatus"]
        assert after[jid] == expected, jid

    rows = tool("condor_q", "-af", "ClusterId", "ProcId", "JobStatus", "NumJobStarts",
                "PeriodicHold", "HoldReason").stdout.splitlines()  # -af evaluates
    assert rows == ["1 0 1 1 false undefined", "2 0 1 0 false undefined",
                    "2 1 1 0 false undefined", "3 0 5 0 false site maintenance"]
    long_form = tool("condor_q", "-l", "3.0").stdout.splitlines()
    assert "PeriodicHold = NumJobStarts > 5" in long_form  # still an expression
    assert "PeriodicRemove = (JobStatus == 5) && (HoldReasonCode == 3)" in long_form


@pytest.mark.e2e
def test_a_snapshot_from_the_future_is_refused_and_left_alone(tmp_path, workdir):
    spool = Spool(workdir, create=True)
    future = snapshot.encode({"version": 99, "jobs": {}})
    with open(spool.snapshot_path, "wb") as handle:
        handle.write(future)
    os.chmod(spool.snapshot_path, 0o600)
    mtime = os.stat(spool.snapshot_path).st_mtime_ns
    result = subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", workdir,
                             "--port", "0"], capture_output=True, text=True,
                            env=product_env(workdir), timeout=60)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "newer alien-workqueue" in errors[0], result.stderr
    assert open(spool.snapshot_path, "rb").read() == future
    assert os.stat(spool.snapshot_path).st_mtime_ns == mtime


@pytest.mark.e2e
def test_every_command_reports_the_same_version():
    expected = subprocess.run([PYTHON, "-m", "awq", "--version"], capture_output=True, text=True,
                              env=product_env(), timeout=60).stdout.split()[-1]
    for tool in ("alien_work_queue", "condor_submit", "condor_q", "condor_rm", "condor_status",
                 "condor_history", "condor_hold", "condor_release", "condor_suspend",
                 "condor_continue"):
        result = subprocess.run([PYTHON, "-m", "awq.cli.%s" % tool, "--version"],
                                capture_output=True, text=True, env=product_env(), timeout=60)
        assert result.returncode == 0 and expected in result.stdout, (tool, result)
        assert result.stdout.startswith("$CondorVersion: ") or tool == "alien_work_queue"


def test_a_log_file_inside_a_spool_made_on_this_start(procs, workdir):
    log = os.path.join(workdir, "master.log")
    master = procs.start([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", workdir,
                          "--port", "0", "--log-file", log], "master", env=product_env(workdir))
    wait_until(lambda: os.path.exists(log) and "listening for workers" in open(log).read(),
               MASTER_LISTENS_WITHIN,
               what="the master to log into the spool it made")
    assert master.poll() is None


def test_the_log_line_format_is_the_standard_one_made_cheaper():
    import logging
    from awq.cli.alien_work_queue import OneLineFormatter
    ours = OneLineFormatter("%(asctime)s %(levelname)s: %(message)s")
    standard = logging.Formatter("%(asctime)s %(levelname)s: %(message)s")
    for created in (1796303021.986, 1796303021.999, 1796303022.0, 1796303022.5, 1796303100.25):
        record = logging.LogRecord("awq.master", logging.INFO, __file__, 1, "job %s: %s", ("1.0", "ok"),
                                   None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)
    record = logging.LogRecord("awq.master", logging.INFO, __file__, 1, "a\nforged line", None, None)
    assert ours.format(record).count("\n") == 0
    for fmt in ("%(asctime)s alien_work_queue[12] %(levelname)s: %(message)s",
                "%(levelname)s %(asctime)s: %(message)s"):      # the direct path, and the general one
        record = logging.LogRecord("awq.master", logging.WARNING, __file__, 1, "job %s: %s",
                                   ("1.0", "held"), None)
        assert OneLineFormatter(fmt).format(record) == logging.Formatter(fmt).format(record)


def test_the_fronts_lines_reach_the_log_file(tmp_path, procs, workdir, start_worker):
    """The front (a fork of the master) reopens --log-file by name; it once wrote to a
    descriptor that the old handler's collected file object had closed under it, so its
    lines went nowhere and a "Logging error" traceback went to standard error."""
    log = tmp_path / "master.log"
    master = procs.start([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", workdir,
                          "--port", "0", "--log-file", str(log), "--debug"], "master",
                         env=product_env(workdir))
    port = wait_until(lambda: log.exists() and re.findall(
        r"listening for workers on port (\d+)", log.read_text()), MASTER_LISTENS_WITHIN,
        what="the master's port in its log file")[0]
    start_worker(int(port))
    wait_until(lambda: "carrying 127.0.0.1 to Work Queue" in log.read_text(),
               WORKER_JOINS_WITHIN * LOAD_ALLOWANCE,
               what="the front's line about the worker in the log file")
    procs.stop(master)
    errors = procs.log_of(master)
    assert "Logging error" not in errors and "Traceback" not in errors, errors
