"""alien_wq_worker.sh with real foremen and workers; a bare Work Queue master stands as manager."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import work_queue

from conftest import LOAD_ALLOWANCE, PROGRAM_STARTS_WITHIN, REPO
from testkit import free_port_block, pid_alive, wait_until

# start-workers leaves each slot's loop running in the background: the child's PID file is
# there once that loop has started it, with no timer before.
CHILD_UP_WITHIN = PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE

pytestmark = pytest.mark.e2e

SCRIPT = os.path.join(REPO, "bin", "alien_wq_worker.sh")


class Script:
    def __init__(self, tmp_path, master_port: int, **extra: str):
        self.workdir = str(tmp_path / "wq")
        self.env = dict(os.environ, WQ_MASTER="127.0.0.1:%d" % master_port, WQ_WORKDIR=self.workdir,
                        WQ_DRAIN=str(tmp_path / "drain"),
                        WQ_MASTER_BASEPORT=str(free_port_block(3)), WQ_NUM_FOREMEN="3",
                        WQ_NUM_WORKERS="5", WQ_RESTART_DELAY="1", WQ_IDLETIMEOUT="60",
                        WQ_INSECURE="1", WQ_PASSWORD="")
        self.env.update(extra)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SCRIPT] + list(args), env=self.env, capture_output=True, text=True,
                              timeout=120)

    def tracked_pids(self) -> list:
        pids = []
        piddir = os.path.join(self.workdir, "pids")
        for name in os.listdir(piddir) if os.path.isdir(piddir) else []:
            text = open(os.path.join(piddir, name)).read().strip()
            if text.isdigit():
                pids.append(int(text))
        return pids


@pytest.fixture
def script_factory(tmp_path):
    made = []

    def make(master_port: int, **extra: str) -> Script:
        made.append(Script(tmp_path, master_port, **extra))
        return made[-1]
    yield make
    for script in made:  # the script's own stop, by its PID files
        pids = script.tracked_pids()
        script.run("stop")
        for pid in pids:
            assert not pid_alive(pid), "PID %d survived stop" % pid


def run_one_task(queue, command: str = "echo through-the-foreman", timeout: float = 60):
    task = work_queue.Task(command)
    for setter in (task.specify_cores, task.specify_memory, task.specify_disk):
        setter(1)
    queue.submit(task)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = queue.wait(1)
        if done:
            return done
    raise AssertionError("no task came back in %d s" % timeout)


def test_three_foremen_five_workers_count_status_task_and_stop(script_factory):
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port)
    assert script.run("start-foremen").returncode == 0
    assert script.run("start-workers").returncode == 0
    assert script.run("count-foremen").stdout.strip() == "3"
    assert script.run("count-workers").stdout.strip() == "5"
    status = script.run("status").stdout.splitlines()
    assert len(status) == 8 and all("running" in line for line in status)
    again = script.run("start-foremen")
    assert again.stdout.count("already running") == 3
    assert run_one_task(queue).output.strip() == "through-the-foreman"
    pids = script.tracked_pids()
    assert len(pids) == 16  # a loop and its work_queue_worker for each
    assert script.run("stop").returncode == 0
    for pid in pids:
        assert not pid_alive(pid), pid
    assert script.run("count-workers").stdout.strip() == "0"


def test_the_loops_of_one_start_share_one_session_and_each_child_leads_its_group(script_factory):
    # Linux's autogroup scheduler shares the CPU between sessions: a session per worker
    # would outweigh a master on the same box N to 1.
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port, WQ_NUM_FOREMEN="0", WQ_NUM_WORKERS="3")
    assert script.run("start-workers").returncode == 0
    piddir = os.path.join(script.workdir, "pids")
    loops = [int(open(os.path.join(piddir, "worker-%d.pid" % i)).read()) for i in (1, 2, 3)]
    wait_until(lambda: all(os.path.exists(os.path.join(piddir, "worker-%d.child" % i))
                           for i in (1, 2, 3)), 30, what="the workers to start")
    children = [int(open(os.path.join(piddir, "worker-%d.child" % i)).read()) for i in (1, 2, 3)]
    sessions = {os.getsid(pid) for pid in loops + children}
    assert len(sessions) == 1 and sessions != {os.getsid(0)}   # one, and not the caller's
    assert all(os.getpgid(child) == child for child in children)


def test_drain_makes_the_loops_exit(script_factory, tmp_path):
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port, WQ_NUM_WORKERS="2", WQ_IDLETIMEOUT="2")
    script.run("start-foremen")
    script.run("start-workers")
    assert script.run("drain").returncode == 0
    # Workers idle out after 2 s and, with the drain file present, are not restarted.
    wait_until(lambda: script.run("count-workers").stdout.strip() == "0", 60,
               interval=0.5, what="drained workers to exit")
    refused = script.run("start-workers")
    assert refused.returncode != 0 and "drain file" in refused.stderr


def test_password_reaches_foremen_and_workers(script_factory, tmp_path):
    password = tmp_path / "pw"
    password.write_text("worker-secret\n")
    password.chmod(0o600)
    queue = work_queue.WorkQueue(port=0)
    queue.specify_password_file(str(password))
    script = script_factory(queue.port, WQ_PASSWORD=str(password), WQ_INSECURE="",
                            WQ_NUM_FOREMEN="1", WQ_NUM_WORKERS="1")
    assert script.run("start-foremen").returncode == 0
    assert script.run("start-workers").returncode == 0
    assert run_one_task(queue, "echo authenticated").output.strip() == "authenticated"


def test_single_task_is_checked_against_this_work_queue(script_factory):
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port, WQ_SINGLETASK="1", WQ_NUM_WORKERS="1")
    result = script.run("start-workers")
    assert "no --single-task" in result.stderr


@pytest.mark.parametrize("args", [["bogus"], [], ["foremen"], ["workers", "x"]])
def test_bad_commands_fail_with_usage(tmp_path, args):
    result = subprocess.run([SCRIPT] + args, capture_output=True, text=True,
                            env=dict(os.environ, WQ_WORKDIR=str(tmp_path)))
    assert result.returncode == 1 and result.stderr


def test_help_exits_zero_and_names_every_variable():
    result = subprocess.run([SCRIPT, "help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in ("WQ_MASTER", "WQ_FOREMEN", "WQ_NUM_FOREMEN", "WQ_NUM_WORKERS", "WQ_MASTER_BASEPORT",
                 "WQ_WORKDIR", "WQ_DRAIN", "WQ_SINGLETASK", "WQ_IDLETIMEOUT", "WQ_DEBUG",
                 "WQ_PASSWORD", "start-foremen", "stop-workers", "count-foremen", "status", "drain",
                 "WQ_INSECURE", "WQ_RESTART_DELAY", "WQ_BACKOFF_RESET", "WQ_WORKER_BIN",
                 "WQ_WORKER_CORES", "WQ_WORKER_MEMORY", "WQ_WORKER_DISK", "WQ_FACTORY_TYPE",
                 "WQ_FACTORY_MIN", "WQ_FACTORY_MAX", "AWQ_WORKDIR", "start-factory", "stop-factory",
                 "restart-foremen", "restart-workers", "start-workers", "stop-foremen", "count-workers"):
        assert name in result.stdout, name


def test_bad_master_address_is_refused(tmp_path):
    result = subprocess.run([SCRIPT, "start-foremen"], capture_output=True, text=True,
                            env=dict(os.environ, WQ_WORKDIR=str(tmp_path / "w"),
                                     WQ_DRAIN=str(tmp_path / "d"), WQ_MASTER="no-port-here"))
    assert result.returncode == 1 and "host:port" in result.stderr


def fake_worker(tmp_path, body: str) -> str:
    """A stand-in for work_queue_worker: a shell script with BODY."""
    path = tmp_path / "fake_worker"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_exit_status_of_the_child_is_logged(script_factory, tmp_path):
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, "exit 3"), WQ_NUM_WORKERS="1",
                            WQ_NUM_FOREMEN="1", WQ_RESTART_DELAY="30")
    assert script.run("start-workers").returncode == 0
    log = os.path.join(script.workdir, "log", "worker-1.log")
    text = wait_until(lambda: os.path.exists(log) and "exited" in open(log).read()
                      and open(log).read(), 20, what="the exit line")
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d worker 1 exited with status 3$", text, re.M), text


def test_stop_kills_a_child_that_ignores_term_by_the_configured_binary(script_factory, tmp_path):
    # The child is found by WQ_WORKER_BIN, not by the name work_queue_worker.
    stubborn = fake_worker(tmp_path, "trap '' TERM\nwhile :; do sleep 1; done")
    script = script_factory(1, WQ_WORKER_BIN=stubborn, WQ_NUM_WORKERS="1")
    assert script.run("start-workers").returncode == 0
    child_file = os.path.join(script.workdir, "pids", "worker-1.child")
    wait_until(lambda: os.path.exists(child_file) and open(child_file).read().strip(),
               CHILD_UP_WITHIN,
               what="the child's PID file")
    child = int(open(child_file).read())
    assert pid_alive(child)
    assert script.run("stop").returncode == 0
    assert not pid_alive(child)


# -- B1: the work dir is private, and a shared one is refused

def mode_of(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_workdir_and_everything_in_it_are_private(script_factory, tmp_path):
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, "sleep 1000 & wait"),
                            WQ_NUM_WORKERS="1", WQ_NUM_FOREMEN="1")
    assert script.run("start-workers").returncode == 0
    wait_until(lambda: os.path.exists(os.path.join(script.workdir, "pids", "worker-1.child")),
               CHILD_UP_WITHIN,
               what="the worker's PID file")
    for root, dirs, files in os.walk(script.workdir):
        assert mode_of(root) == 0o700, root
        for name in files:
            assert mode_of(os.path.join(root, name)) == 0o600, name


@pytest.mark.parametrize("where,mode", [("", 0o770), ("", 0o707), ("pids", 0o722)])
@pytest.mark.parametrize("command", ["start-workers", "stop", "count-workers", "status"])
def test_a_workdir_others_can_write_is_refused(tmp_path, where, mode, command):
    workdir = tmp_path / "wq"
    (workdir / "pids").mkdir(parents=True)
    os.chmod(str(workdir / where), mode)
    result = subprocess.run([SCRIPT, command], capture_output=True, text=True,
                            env=dict(os.environ, WQ_WORKDIR=str(workdir), WQ_DRAIN=str(tmp_path / "d"),
                                     WQ_INSECURE="1", WQ_PASSWORD="", WQ_NUM_FOREMEN="0",
                                     WQ_NUM_WORKERS="1"))
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert "writable by group or others" in lines[-1] and str(workdir / where).rstrip("/") in lines[-1]
    assert not [line for line in lines if "warning" not in line][:-1], result.stderr


@pytest.mark.parametrize("where", ["", "pids"])
def test_a_workdir_of_another_user_is_refused(tmp_path, where):
    workdir = tmp_path / "wq"
    (workdir / "pids").mkdir(parents=True)
    os.chmod(str(workdir), 0o755)
    os.chown(str(workdir / where), 65534, 65534)  # the tests run as root: nobody's directory
    result = subprocess.run([SCRIPT, "count-workers"], capture_output=True, text=True,
                            env=dict(os.environ, WQ_WORKDIR=str(workdir)))
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "not owned by you" in result.stderr


# -- B2: a PID file pointing at a stranger does not get it signalled

def stranger(tmp_path) -> subprocess.Popen:
    """A process of ours that alien_wq_worker.sh did not start."""
    return subprocess.Popen(["sleep", "1000"], start_new_session=True, cwd=str(tmp_path))


def test_planted_pid_files_do_not_get_a_stranger_signalled(script_factory, tmp_path):
    script = script_factory(1, WQ_WORKER_BIN=fake_worker(tmp_path, "sleep 1000 & wait"),
                            WQ_NUM_WORKERS="2", WQ_NUM_FOREMEN="0")
    assert script.run("start-workers").returncode == 0
    victim = stranger(tmp_path)
    try:
        piddir = os.path.join(script.workdir, "pids")
        for name in ("worker-7.pid", "worker-7.child", "foreman-1.pid", "factory-1.child"):
            with open(os.path.join(piddir, name), "w") as handle:
                handle.write("%d\n" % victim.pid)
        # And the real slot 2's child file, as if the PID had been reused.
        with open(os.path.join(piddir, "worker-2.child"), "w") as handle:
            handle.write("%d\n" % victim.pid)
        assert script.run("count-workers").stdout.strip() == "2"
        assert script.run("stop").returncode == 0
        assert victim.poll() is None and pid_alive(victim.pid)
        assert script.run("count-workers").stdout.strip() == "0"
    finally:
        victim.kill()
        victim.wait()


# -- B3: a password by default

def spool_with_password(tmp_path, mode: int = 0o600) -> str:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    (spool / "password").write_text("made-by-the-master\n")
    os.chmod(str(spool / "password"), mode)
    return str(spool)


def test_the_masters_password_file_is_used_by_default(script_factory, tmp_path):
    spool = spool_with_password(tmp_path)
    queue = work_queue.WorkQueue(port=0)
    queue.specify_password_file(os.path.join(spool, "password"))
    script = script_factory(queue.port, AWQ_WORKDIR=spool, WQ_INSECURE="", WQ_PASSWORD="",
                            WQ_NUM_FOREMEN="1", WQ_NUM_WORKERS="1")
    for command in ("start-foremen", "start-workers"):
        result = script.run(command)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    assert run_one_task(queue, "echo by-default").output.strip() == "by-default"
    log = open(os.path.join(script.workdir, "log", "worker-1.log")).read()
    assert "--password %s/password" % spool in log


@pytest.mark.parametrize("command", ["start-foremen", "start-workers", "start-factory"])
def test_no_password_file_no_start(script_factory, tmp_path, command):
    script = script_factory(1, AWQ_WORKDIR=str(tmp_path / "no-master-here"), WQ_INSECURE="",
                            WQ_PASSWORD="")
    result = script.run(command)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    for hint in (str(tmp_path / "no-master-here" / "password"), "start the master first",
                 "WQ_PASSWORD", "WQ_INSECURE=1"):
        assert hint in result.stderr
    assert not os.path.exists(os.path.join(script.workdir, "pids"))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_password_file_others_can_read_is_refused(script_factory, tmp_path, mode):
    spool = spool_with_password(tmp_path, mode)
    for extra in (dict(AWQ_WORKDIR=spool, WQ_PASSWORD=""),
                  dict(WQ_PASSWORD=os.path.join(spool, "password"))):
        script = script_factory(1, WQ_INSECURE="", **extra)
        result = script.run("start-workers")
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
        assert "read by group or others" in result.stderr and "chmod 600" in result.stderr


def test_a_password_file_of_another_user_is_refused(script_factory, tmp_path):
    spool = spool_with_password(tmp_path)
    os.chown(os.path.join(spool, "password"), 65534, 65534)
    script = script_factory(1, WQ_INSECURE="", WQ_PASSWORD=os.path.join(spool, "password"))
    result = script.run("start-foremen")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "not owned by you" in result.stderr


def test_insecure_warns_on_every_start_and_passes_no_password(script_factory, tmp_path):
    queue = work_queue.WorkQueue(port=0)
    script = script_factory(queue.port, WQ_NUM_FOREMEN="1", WQ_NUM_WORKERS="1",
                            AWQ_WORKDIR=spool_with_password(tmp_path))
    for command in ("start-foremen", "start-workers", "start-workers"):
        result = script.run(command)
        assert result.returncode == 0
        assert "warning: WQ_INSECURE=1: no password" in result.stderr
    assert run_one_task(queue, "echo insecure").output.strip() == "insecure"
    assert "--password" not in open(os.path.join(script.workdir, "log", "worker-1.log")).read()


def test_insecure_and_a_password_exclude_each_other(script_factory, tmp_path):
    spool = spool_with_password(tmp_path)
    script = script_factory(1, WQ_PASSWORD=os.path.join(spool, "password"))
    result = script.run("start-workers")
    assert result.returncode == 1 and "exclude each other" in result.stderr
