"""Helpers the tests and the benchmarks share: free ports, bounded waits, processes ended by PID.

Not part of the product (neither setup.py nor CMake installs it): it is imported from the
repository root, where `python -m pytest` and `python -m benchmarks` run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence, Type, Union


class WaitTimedOut(AssertionError):
    """A bounded wait ran out; an AssertionError so a test reports it as its failure."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(count: int) -> int:
    """A base port B such that B+1..B+count are free now."""
    for _ in range(200):
        base = free_port()
        if base + count >= 65000:
            continue
        socks = []
        try:
            for offset in range(1, count + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of %d free ports found" % count)


def port_is_free(port: int) -> bool:
    """Whether `port` can be bound on every address (a program that cannot choose its port)."""
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05,
               what: Union[str, Callable[[], str]] = "condition",
               failure: Type[Exception] = WaitTimedOut) -> object:
    """predicate()'s first true value, looked at every `interval` s for at most `timeout` s.
    `what` names the wait; a function is called only on timeout, so it can tell what was
    seen last."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise failure("timed out after %.1f s waiting for %s"
                          % (timeout, what() if callable(what) else what))
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


class Processes:
    """Processes a test or a benchmark started; all ended by PID (their own process group),
    never by name. Each one's output goes to <logdir>/<name>.log."""

    def __init__(self, logdir: str, cwd: Optional[str] = None):
        """cwd: where processes start unless start() says otherwise (None: our own)."""
        self.logdir = logdir
        self.cwd = cwd
        self.started: List[subprocess.Popen] = []

    def start(self, argv: Sequence[str], name: str, env: Optional[Dict[str, str]] = None,
              cwd: Optional[str] = None, own_session: bool = True) -> subprocess.Popen:
        """own_session=False: a process group of its own in our session, as
        alien_wq_worker.sh starts the workers and foremen of a box (one session for all:
        Linux's autogroup scheduler shares the CPU between sessions, not processes)."""
        path = os.path.join(self.logdir, "%s.log" % name)
        if own_session:
            placement: Dict[str, object] = {"start_new_session": True}
        else:
            placement = {"preexec_fn": os.setpgrp}
        with open(path, "ab") as log:
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=cwd or self.cwd,
                                    **placement)  # type: ignore[call-overload]
        proc.log_path = path  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    @staticmethod
    def log_of(proc: subprocess.Popen) -> str:
        try:
            with open(proc.log_path, errors="replace") as handle:  # type: ignore[attr-defined]
                return handle.read()
        except OSError:
            return ""

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if proc.poll() is None:
            try:
                # Our child leads its own process group: the group holds exactly what it started.
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        try:  # whatever the leader left behind in its group (a worker's tasks)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self) -> None:
        # Last started first: workers (they hold tasks), then foremen, then the master,
        # which saves its table.
        for proc in reversed(self.started):
            self.stop(proc)
        self.started = []
