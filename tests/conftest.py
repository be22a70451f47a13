"""Shared fixtures: real processes on loopback, each ended by the PID we started."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from typing import Dict, Iterator, List, Optional

import pytest
from hypothesis import settings as hypothesis_settings

# CI must not land or fail on the luck of one draw: there, property tests replay a fixed
# sequence of examples; elsewhere they explore new ones each run.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # testkit, shared with the benchmarks, lives at the root

# conftest re-exports testkit's helpers: a test may import them from either; testkit is
# their one home.
from testkit import (Processes, free_port, free_port_block, pid_alive,  # noqa: E402,F401
                     wait_until)

from awq.master import MAX_FLUSH_INTERVAL, STATE_POLL_INTERVAL  # noqa: E402
from awq.waker import SERVICE_INTERVAL, WAIT_TIMEOUT  # noqa: E402


# ---------------------------------------------------------------- how long the mechanisms take
#
# A wait is as long as the mechanism it waits on can take, times LOAD_ALLOWANCE: the suite
# must pass while two busy loops hold both CPUs. Then five runnable processes (the two
# loops, the master, a worker, the test's client) share two CPUs, so each of ours runs at
# about 2/5 of its speed; 3 rounds that 2.5 up.
LOAD_ALLOWANCE = 3.0
# CCTools 8's work_queue_worker never kills a task less than 3 s old (README: "What
# happens to a pilot when it is cancelled").
WORKER_KILL_FLOOR = 3.0
# The master lists its spool at least once a second whatever its watcher says, and the
# tests run periodic expressions every second or faster (--periodic-interval).
MASTER_NOTICES_WITHIN = 1.0
# A change to the job table reaches condor_q with the next snapshot; the master spaces
# snapshots by what writing them costs, up to this.
SNAPSHOT_WITHIN = MAX_FLUSH_INTERVAL
# A spool request (a new record, condor_rm, condor_hold) is noticed, then carried out in
# the table, then published.
REQUEST_SHOWN_WITHIN = (MASTER_NOTICES_WITHIN + SNAPSHOT_WITHIN) * LOAD_ALLOWANCE
# A removed job shows X in one snapshot and is taken out of the table just after it
# (to history), so the next snapshot no longer lists it.
REMOVED_JOB_GONE_WITHIN = (MASTER_NOTICES_WITHIN + 2 * SNAPSHOT_WITHIN) * LOAD_ALLOWANCE
# From condor_rm to the pilot's end: the master notices the request and cancels the task;
# the worker kills it once it is WORKER_KILL_FLOOR old.
PILOT_ENDS_WITHIN = (MASTER_NOTICES_WITHIN + WORKER_KILL_FLOOR) * LOAD_ALLOWANCE
# A program of ours or of Work Queue's runs no timer before it is up (an interpreter, its
# imports, the spool's load; or a C binary binding its port): this much of its own work,
# unloaded, is what a start may take.
PROGRAM_STARTS_WITHIN = 10.0
# The master logs "listening for workers" (and what it recovered) once it is up.
MASTER_LISTENS_WITHIN = PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE
# work_queue_worker tries a manager that is not (yet, or any more) listening again after
# --min-backoff (1 s by default), doubling each time; one that listens it joins at once.
WORKER_RETRY_AFTER = 1.0
# Work Queue takes in a connecting worker only inside the master's wait(), which the master
# enters at least this often, with tasks out or not.
MASTER_WAITS_EVERY = max(WAIT_TIMEOUT, SERVICE_INTERVAL)
# A worker started beside the master (or after the job) joins it: one missed try at most.
WORKER_JOINS_WITHIN = WORKER_RETRY_AFTER + MASTER_WAITS_EVERY
# A foreman is a manager too: its workers join it as a worker joins the master, one hop more.
FOREMAN_HOP_WITHIN = WORKER_JOINS_WITHIN * LOAD_ALLOWANCE
# From submit to its task's start on a worker already joined (seen by the task itself, not
# condor_q): the master notices the record and Work Queue sends the task in its next wait().
TASK_STARTS_WITHIN = (MASTER_NOTICES_WITHIN + MASTER_WAITS_EVERY) * LOAD_ALLOWANCE
# From submit (or from its worker's start) to condor_q showing the job running: the master
# notices the record, hands the task to a joined worker, sees it started at its next task
# sweep, then publishes.
JOB_RUNS_WITHIN = (MASTER_NOTICES_WITHIN + WORKER_JOINS_WITHIN + STATE_POLL_INTERVAL
                   + SNAPSHOT_WITHIN) * LOAD_ALLOWANCE
# From submit to the job in history, besides its own run time: noticed, handed to a joined
# worker, its result back (the worker reports an exit at once); the snapshot that takes it
# in and the one that shows it done, which moves it to history as it is written.
JOB_DONE_WITHIN = (MASTER_NOTICES_WITHIN + WORKER_JOINS_WITHIN
                   + 2 * SNAPSHOT_WITHIN) * LOAD_ALLOWANCE


# ---------------------------------------------------------------- the two tiers
#
# Unit tier (scripts/test.sh --fast): tests that run inside this one process. End-to-end
# tier (marked e2e): tests that start programs (Work Queue's, ours, an install, a client).
# A test is e2e by its mark, or by using `procs` (every real-process fixture is built on
# it), `tool` (runs our commands) or `slurm_cluster` (tests/slurm_cluster.py starts a
# Slurm). Any other test that starts a program fails, so an
# e2e test cannot land in the unit tier unnoticed. The full run (no -m) runs both.

E2E = "e2e"
E2E_FIXTURES = frozenset({"procs", "tool", "slurm_cluster"})
# What the master's own timers spawn (awq/watcher.py); forking is allowed as well.
UNIT_TIER_PROGRAMS = frozenset({"sleep", "true"})


class StartsAProgram(AssertionError):
    """A test outside the e2e tier tried to start a program."""


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "%s: starts real programs (Work Queue, the master, an "
                                       "install, a client); left out by -m 'not e2e'" % E2E)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if E2E_FIXTURES.intersection(item.fixturenames):
            item.add_marker(E2E)


def _program_name(argv: object) -> str:
    if isinstance(argv, (str, bytes)):
        argv = [argv]
    first = os.fsdecode(list(argv)[0]) if argv else ""  # type: ignore[call-overload]
    return os.path.basename(first.split()[0]) if first.strip() else first


@contextlib.contextmanager
def _no_programs_unless_e2e(item) -> Iterator[None]:
    """Around each phase of a test (its fixtures of every scope included): refuse to start
    a program unless the test is e2e."""
    if item.get_closest_marker(E2E):
        yield
        return

    def refuse(argv: object) -> None:
        name = _program_name(argv)
        if name not in UNIT_TIER_PROGRAMS:
            raise StartsAProgram("%s starts %r: mark it @pytest.mark.%s (or its module's "
                                 "pytestmark), or use the procs fixture" % (item.nodeid, name, E2E))

    def guarded(real):  # type: ignore[no-untyped-def]
        def spawn(path, *rest, **kwargs):  # type: ignore[no-untyped-def]
            refuse([path])
            return real(path, *rest, **kwargs)
        return spawn

    def execute_child(popen, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        refuse(args)
        return real_execute_child(popen, args, *rest, **kwargs)

    real_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    saved = {name: getattr(os, name) for name in ("posix_spawn", "posix_spawnp")}
    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]
    for name, real in saved.items():
        setattr(os, name, guarded(real))
    try:
        yield
    finally:
        subprocess.Popen._execute_child = real_execute_child  # type: ignore[attr-defined]
        for name, real in saved.items():
            setattr(os, name, real)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):  # type: ignore[no-untyped-def]
    with _no_programs_unless_e2e(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):  # type: ignore[no-untyped-def]
    with _no_programs_unless_e2e(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):  # type: ignore[no-untyped-def]
    with _no_programs_unless_e2e(item):
        yield


def cmake_install(prefix: str, build: str) -> None:
    """Install the project the way a site does: CMake against Debian's CCTools."""
    subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCCTOOLS=/usr",
                    "-DCMAKE_INSTALL_PREFIX=" + prefix], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", build, "--target", "install"], check=True,
                   capture_output=True)


def sourced_env(prefix: str, **extra: str) -> Dict[str, str]:
    """The environment after `source $prefix/etc/env.sh`, as a dict."""
    out = subprocess.run(["bash", "-c", '. "%s/etc/env.sh" && env -0' % prefix],
                         capture_output=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")})
    env = dict(entry.split("=", 1) for entry in out.stdout.decode().split("\0") if "=" in entry)
    env.update(extra)
    return env


def write_script(path, body: str) -> str:
    """An executable /bin/sh script at path (a pathlib.Path) with body; its path as text."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def product_env(workdir: Optional[str] = None, **extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if workdir:
        env["AWQ_WORKDIR"] = workdir
    env.update(extra)
    return env


@pytest.fixture
def procs(tmp_path):
    registry = Processes(str(tmp_path))
    yield registry
    registry.stop_all()


class MasterHandle:
    def __init__(self, procs: Processes, workdir: str, extra_args: List[str], env: Dict[str, str],
                 name: str = "master"):
        self.procs = procs
        self.name = name
        self.workdir = workdir
        self.extra_args = extra_args
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0

    def start(self, timeout: float = MASTER_LISTENS_WITHIN) -> "MasterHandle":
        argv = [PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", self.workdir, "--port", "0"]
        # AWQ_TEST_MANAGERS=K runs every master of the suite with K Work Queue managers.
        if os.environ.get("AWQ_TEST_MANAGERS") and "--managers" not in self.extra_args:
            argv += ["--managers", os.environ["AWQ_TEST_MANAGERS"]]
        self.proc = self.procs.start(argv + self.extra_args, self.name, env=self.env, cwd=REPO)
        self.port = int(wait_until(self._logged_port, timeout, what="the master's port"))
        return self

    def _logged_port(self) -> Optional[int]:
        assert self.proc is not None
        text = self.procs.log_of(self.proc)
        ports = re.findall(r"listening for workers on port (\d+)", text)
        if ports:
            return int(ports[-1])
        if self.proc.poll() is not None:
            raise AssertionError("the master exited early:\n" + text)
        return None

    def log(self) -> str:
        assert self.proc is not None
        return self.procs.log_of(self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.procs.stop(self.proc, sig)



def master_on_port(procs: Processes, workdir: str, port: int, round_number: int) -> MasterHandle:
    """Round N of a restart test's master: every round listens on the same port, the only
    one its foremen and workers know."""
    return MasterHandle(procs, workdir, ["--port", str(port)], product_env(workdir),
                        name="master-%d" % round_number).start()

@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "spool"
    return str(path)


@pytest.fixture
def start_master(procs, workdir):
    count = [0]

    def start(*extra_args: str, env: Optional[Dict[str, str]] = None) -> MasterHandle:
        count[0] += 1
        return MasterHandle(procs, workdir, list(extra_args), env or product_env(workdir),
                            name="master%d" % count[0]).start()
    return start


SPOOL_PASSWORD = "spool"  # start_worker's default: the password the master made in its spool


def password_args(workdir: str, password: Optional[str] = SPOOL_PASSWORD) -> List[str]:
    """--password for a worker: the spool's own file by default, none with password=None."""
    if password is None:
        return []
    return ["--password", os.path.join(workdir, "password") if password == SPOOL_PASSWORD
            else password]


@pytest.fixture
def start_worker(procs, tmp_path, workdir):
    counter = [0]

    def start(port: int, cores: int = 1, extra: Optional[List[str]] = None,
              password: Optional[str] = SPOOL_PASSWORD) -> subprocess.Popen:
        counter[0] += 1
        scratch = tmp_path / ("worker%d" % counter[0])
        scratch.mkdir()
        argv = [shutil.which("work_queue_worker") or "work_queue_worker", "--cores", str(cores),
                "--workdir", str(scratch), "--timeout", "120"] + password_args(workdir, password) \
            + (extra or []) + ["127.0.0.1", str(port)]
        return procs.start(argv, "worker%d" % counter[0])
    return start


def run_tool(tool: str, args: List[str], workdir: str, stdin: Optional[str] = None,
             cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one of our CLIs (condor_submit, condor_q, ...) from the source tree."""
    return subprocess.run([PYTHON, "-m", "awq.cli.%s" % tool] + args, input=stdin,
                          capture_output=True, text=True, cwd=cwd or REPO,
                          env=env or product_env(workdir), timeout=timeout)


@pytest.fixture
def tool(workdir):
    def run(name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_tool(name, list(args), workdir, **kwargs)
    return run
