"""Waking the master when the spool changes.

Work Queue's ``wait(t)`` blocks whole seconds while tasks are out, so alone
it would delay every new job by up to a second. A tiny forked child watches
the spool's directories and exits when they change; Work Queue's process
module (see Backend.enable_wake_on_child_exit) then ends the wait at once.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Optional, Sequence, Tuple

POLL_INTERVAL = 0.05        # s between looks at the spool
LIFETIME = 30.0             # s: a watcher retires even if nothing happens

Mtimes = Tuple[int, ...]


def mtimes(paths: Sequence[str]) -> Mtimes:
    return tuple(_mtime_ns(p) for p in paths)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class SpoolWatcher:
    """The directories that bring work, and the drain switch that ends it."""

    def __init__(self, paths: Sequence[str], drain_path: str):
        self.paths = tuple(paths)
        self.drain_path = drain_path
        self.pid: Optional[int] = None
        self.deadline = 0.0

    def baseline(self) -> Mtimes:
        return mtimes(self.paths)

    def changed_since(self, baseline: Mtimes, drain: bool) -> bool:
        return mtimes(self.paths) != baseline or os.path.exists(self.drain_path) != drain

    def ensure_child(self, baseline: Mtimes, lifetime: float) -> None:
        """A child that exits on a change, or after lifetime s, whichever is first."""
        deadline = time.monotonic() + lifetime
        if self.pid is not None and self.deadline <= deadline + 0.05:
            return  # the running watcher wakes us early enough
        self.stop_child()
        self.pid = _spawn(self, baseline, lifetime)
        self.deadline = deadline

    def child_exited(self, pids: Sequence[int]) -> None:
        if self.pid is not None and self.pid in pids:
            self.pid = None

    def stop_child(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass  # already gone, or reaped by Work Queue's process module
            self.pid = None


def _spawn(watcher: SpoolWatcher, baseline: Mtimes, lifetime: float) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        # The master's handlers are not ours: a TERM to the process group must just end us.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        drain = os.path.exists(watcher.drain_path)
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline and os.getppid() == parent:
            if watcher.changed_since(baseline, drain):
                break
            time.sleep(POLL_INTERVAL / 2)
    finally:
        os._exit(0)
