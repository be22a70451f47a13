"""alien_wq_worker.sh at site scale: resources, no foremen, backoff, many slots, factory."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import work_queue

from conftest import FOREMAN_HOP_WITHIN, JOB_DONE_WITHIN, LOAD_ALLOWANCE
from testkit import pid_alive, wait_until
from test_worker_script import CHILD_UP_WITHIN, fake_worker, run_one_task
from test_worker_script import script_factory  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e

SLEEPER = "sleep 1000 & wait"  # a fake worker that lives until its process group is signalled


def live_processes():
    """{pid: (pgid, cmdline)} of every live (not zombie) process."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(name)] = (int(fields[2]), cmdline)
    return found


# `status` shows a slot's uptime in whole seconds: an uptime of N s shows by N + 1 s at
# the latest.
UPTIME_RESOLUTION = 1.0


def uptime_shown_within(seconds: float) -> float:
    return (seconds + UPTIME_RESOLUTION) * LOAD_ALLOWANCE


def read_pid(path: str) -> int:
    return int(open(path).read())


def pids_of(script, suffix: str) -> dict:
    piddir = os.path.join(script.workdir, "pids")
    return {name: read_pid(os.path.join(piddir, name)) for name in os.listdir(piddir)
            if name.endswith(suffix)}


def test_worker_resources_reach_work_queue_worker(script_factory, tmp_path):
    fake = fake_worker(tmp_path, 'echo "$@" > "%s/args-$$"\n%s' % (tmp_path, SLEEPER))
    script = script_factory(1, WQ_WORKER_BIN=fake, WQ_NUM_WORKERS="2", WQ_NUM_FOREMEN="0",
                            WQ_WORKER_CORES="4", WQ_WORKER_MEMORY="2048", WQ_WORKER_DISK="3000")
    assert script.run("start-workers").returncode == 0
    wait_until(lambda: len([n for n in os.listdir(str(tmp_path)) if n.startswith("args-")]) == 2,
               CHILD_UP_WITHIN, what="both fake workers")
    for name in os.listdir(str(tmp_path)):
        if name.startswith("args-"):
            args = open(str(tmp_path / name)).read()
            assert "--cores 4 " in args and "--memory 2048 " in args and "--disk 3000 " in args


def test_bad_resources_are_refused(script_factory):
    script = script_factory(1, WQ_WORKER_CORES="two")
    result = script.run("start-workers")
    assert result.returncode == 1 and "WQ_WORKER_CORES must be a number" in result.stderr


def test_no_foremen_workers_go_straight_to_the_master(script_factory):
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port, WQ_NUM_FOREMEN="0", WQ_NUM_WORKERS="1",
                            WQ_WORKER_CORES="2")
    result = script.run("start-foremen")
    assert result.returncode == 0 and "no foremen" in result.stdout
    assert script.run("count-foremen").stdout.strip() == "0"
    assert script.run("start-workers").returncode == 0
    status = script.run("status").stdout.splitlines()
    assert len(status) == 1 and status[0].endswith("managers 127.0.0.1:%d" % queue.port)
    # A task that needs 2 cores runs only on a worker given --cores 2, straight from the master.
    task = work_queue.Task("echo two-cores")
    task.specify_cores(2)
    task.specify_memory(1)
    task.specify_disk(1)
    queue.submit(task)
    deadline = time.monotonic() + 60
    done = None
    while done is None and time.monotonic() < deadline:
        done = queue.wait(1)
    assert done is not None and done.output.strip() == "two-cores"


def test_restarts_back_off_and_a_long_run_resets_the_delay(script_factory, tmp_path):
    # Runs 1-3 fail at once, run 4 lasts 3 s (> WQ_BACKOFF_RESET=2), run 5 stays up.
    fake = fake_worker(tmp_path, 'n=$(cat "{0}/count" 2>/dev/null || echo 0); n=$((n + 1))\n'
                       'echo $n > "{0}/count"\n'
                       'case $n in 1|2|3) exit 1 ;; 4) sleep 3; exit 1 ;; esac\n{1}'
                       .format(tmp_path, SLEEPER))
    script = script_factory(1, WQ_WORKER_BIN=fake, WQ_NUM_WORKERS="1", WQ_NUM_FOREMEN="0",
                            WQ_RESTART_DELAY="2", WQ_BACKOFF_RESET="2")
    started = time.monotonic()
    assert script.run("start-workers").returncode == 0
    count = str(tmp_path / "count")
    # Restarted after 1, 2, 2 s, then run 4's 3 s and 1 s more: the fifth run starts then.
    wait_until(lambda: os.path.exists(count) and open(count).read().strip() == "5",
               (1 + 2 + 2 + 3 + 1) * LOAD_ALLOWANCE,
               interval=0.1, what="the fifth run")
    elapsed = time.monotonic() - started
    log = open(os.path.join(script.workdir, "log", "worker-1.log")).read()
    delays = [int(d) for d in re.findall(r"restarting worker 1 in (\d+) s", log)]
    assert delays == [1, 2, 2, 1], log  # doubling, capped at 2, back to 1 after the long run
    assert 1 + 2 + 2 + 3 + 1 - 0.5 < elapsed < 15
    fifth_run_up = re.compile(r"worker +1 +loop \d+ +running +child \d+ +up [1-9]\d*s +restarts 4 ")
    wait_until(lambda: fifth_run_up.search(script.run("status").stdout), uptime_shown_within(1),
               interval=0.2, what="the fifth run up for a second, after 4 restarts")


def test_status_shows_restart_count_and_uptime_per_slot(script_factory, tmp_path):
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, SLEEPER), WQ_NUM_WORKERS="3",
                            WQ_NUM_FOREMEN="0")
    assert script.run("start-workers").returncode == 0
    wait_until(lambda: len(pids_of(script, ".child")) == 3, CHILD_UP_WITHIN, what="three children")

    def up_two_seconds(line: str, slot: int) -> bool:
        match = re.match(r"worker +%d +loop \d+ +running +child (\d+) +up (\d+)s +restarts 0 "
                         % slot, line)
        return bool(match) and int(match.group(2)) >= 2

    def all_up_two_seconds() -> list:
        lines = script.run("status").stdout.splitlines()
        return lines if len(lines) == 3 and all(up_two_seconds(line, slot) for slot, line
                                                in enumerate(lines, 1)) else []
    lines = wait_until(all_up_two_seconds, uptime_shown_within(2), interval=0.2,
                       what="three slots up for 2 s, none restarted")
    # A child that ends is restarted: the count goes up, the uptime starts again.
    os.kill(int(re.search(r"child (\d+)", lines[1]).group(1)), 15)
    # The first restart waits 1 s (WQ_RESTART_DELAY doubles from there), then starts a child.
    wait_until(lambda: "restarts 1" in script.run("status").stdout.splitlines()[1],
               1 * LOAD_ALLOWANCE + CHILD_UP_WITHIN,
               interval=0.2, what="slot 2 restarted")
    line = script.run("status").stdout.splitlines()[1]
    assert re.search(r"up [01]s +restarts 1 ", line), line
    # State files are replaced whole, never left half-written.
    statedir = os.path.join(script.workdir, "state")
    assert sorted(os.listdir(statedir)) == ["worker-1", "worker-2", "worker-3"]


def test_two_hundred_slots_stop_fast_and_a_stranger_survives(script_factory, tmp_path):
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, SLEEPER), WQ_NUM_WORKERS="200",
                            WQ_NUM_FOREMEN="0", WQ_MASTER="127.0.0.1:1")
    assert script.run("start-workers").returncode == 0
    assert script.run("count-workers").stdout.strip() == "200"
    wait_until(lambda: len(pids_of(script, ".child")) == 200, CHILD_UP_WITHIN, interval=0.2,
               what="200 children")
    stranger = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        with open(os.path.join(script.workdir, "pids", "worker-201.pid"), "w") as handle:
            handle.write("%d\n" % stranger.pid)
        loops, children = pids_of(script, ".pid"), pids_of(script, ".child")
        groups = set(children.values())
        assert all(pid_alive(pid) for pid in children.values())
        started = time.monotonic()
        result = script.run("stop")
        took = time.monotonic() - started
        assert result.returncode == 0
        assert took < 15, "stop took %.1f s" % took
        alive = [pid for pid in list(loops.values()) + list(children.values())
                 if pid != stranger.pid and pid_alive(pid)]
        assert alive == []
        leftovers = [pid for pid, (pgid, _) in live_processes().items() if pgid in groups]
        assert leftovers == []  # the fake workers' sleeps went with them
        assert stranger.poll() is None and pid_alive(stranger.pid)
        assert os.listdir(os.path.join(script.workdir, "pids")) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_restart_workers_and_foremen_replace_every_loop(script_factory, tmp_path):
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, SLEEPER), WQ_NUM_WORKERS="3",
                            WQ_NUM_FOREMEN="2")
    for kind in ("foremen", "workers"):
        assert script.run("start-" + kind).returncode == 0
    before = pids_of(script, ".pid")
    assert len(before) == 5
    result = script.run("restart-workers")
    assert result.returncode == 0 and "started 3 worker(s)" in result.stdout
    after = pids_of(script, ".pid")
    for name, pid in before.items():
        if name.startswith("worker"):
            assert after[name] != pid and not pid_alive(pid)
        else:
            assert after[name] == pid and pid_alive(pid)  # the foremen were left alone
    assert script.run("restart-foremen").returncode == 0
    assert script.run("count-foremen").stdout.strip() == "2"
    assert all(not pid_alive(pid) for name, pid in before.items() if name.startswith("foreman"))


def test_factory_starts_workers_that_run_tasks_and_stop_factory_leaves_nothing(script_factory,
                                                                               tmp_path, procs):
    from test_fleet_master import start_catalog
    password = tmp_path / "pw"
    password.write_text("factory-secret\n")
    password.chmod(0o600)
    # With a password, CCTools 8's factory finds the master through a catalog (and its
    # workers too: -M project -C catalog).
    catalog_port = start_catalog(procs, tmp_path)
    queue = work_queue.WorkQueue(port=0)
    queue.specify_password_file(str(password))
    queue.specify_catalog_server("127.0.0.1", catalog_port)
    queue.specify_name("awq_factory_%d" % os.getpid())
    queue.wait(0)   # the first catalog update goes out inside wait()
    script = script_factory(queue.port, WQ_INSECURE="", WQ_PASSWORD=str(password),
                            WQ_FACTORY_MIN="1", WQ_FACTORY_MAX="1", WQ_FACTORY_TYPE="local",
                            WQ_CATALOG="127.0.0.1:%d" % catalog_port,
                            WQ_PROJECT_NAME="awq_factory_%d" % os.getpid())
    result = script.run("start-factory")
    assert result.returncode == 0, result.stderr
    child_file = os.path.join(script.workdir, "pids", "factory-1.child")
    wait_until(lambda: os.path.exists(child_file), CHILD_UP_WITHIN, what="the factory's PID file")
    factory = read_pid(child_file)
    # The task's parent is the worker that ran it; that worker is in the factory's group.
    done = run_one_task(queue, "echo $PPID", timeout=90)
    assert done.return_status == 0
    worker = int(done.output.strip())
    group, cmdline = live_processes()[worker]
    assert group == factory and "work_queue_worker" in cmdline and "-P" in cmdline, cmdline
    status = script.run("status").stdout
    assert re.search(r"^factory +1 .* -T local, 1\.\.1 workers of 1 cores, route catalog "
                     r"127\.0\.0\.1:%d project awq_factory_\d+ \(this work_queue_factory sends no "
                     r"password in a direct query\)" % catalog_port, status, re.M), status
    scratch = os.path.join(script.workdir, "factory-1")
    assert script.run("stop-factory").returncode == 0
    left = {pid: cmd for pid, (pgid, cmd) in live_processes().items()
            if pgid == factory or scratch in cmd or pid in (factory, worker)}
    assert left == {}
    assert pids_of(script, "") == {}


def test_a_foreman_killed_under_load_comes_back_and_no_job_is_lost(script_factory, tmp_path,
                                                                   start_master, tool, workdir):
    from awq.spool import Spool
    master = start_master()
    script = script_factory(master.port, WQ_NUM_FOREMEN="2", WQ_NUM_WORKERS="4",
                            WQ_INSECURE="", AWQ_WORKDIR=workdir, WQ_RESTART_DELAY="2")
    assert script.run("start-foremen").returncode == 0
    assert script.run("start-workers").returncode == 0
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\nsleep 0.5\necho done $1\n")
    job.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    assert tool("condor_submit", stdin="executable = %s\narguments = $(Process)\noutput = %s/$(Process)"
                "\nqueue 40\n" % (job, out)).returncode == 0
    wait_until(lambda: len(os.listdir(str(out))) >= 4, JOB_DONE_WITHIN + FOREMAN_HOP_WITHIN,
               what="jobs to run through the foremen")
    foreman = read_pid(os.path.join(script.workdir, "pids", "foreman-1.child"))
    os.kill(foreman, 9)
    wait_until(lambda: len(Spool(workdir).history.read()) == 40, 180, interval=0.5,
               what="all 40 jobs to complete after the foreman died")
    assert {j["JobStatus"] for j in Spool(workdir).history.read()} == {4}
    assert sorted(open(str(out / str(i))).read() for i in range(40)) == \
        sorted("done %d\n" % i for i in range(40))
    wait_until(lambda: re.search(r"^foreman\s+1 .*restarts 1", script.run("status").stdout, re.M),
               30, what="the foreman to come back on its own")
    assert read_pid(os.path.join(script.workdir, "pids", "foreman-1.child")) != foreman
