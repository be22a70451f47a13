"""Waking the master when the spool changes.

Work Queue's ``wait(t)`` blocks whole seconds while tasks are out, so alone
it would delay every new job by up to a second. A tiny forked child watches
the spool's directories and exits when they change; Work Queue's process
module (see Backend.enable_wake_on_child_exit) then ends the wait at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from typing import Dict, Optional, Sequence, Tuple

POLL_INTERVAL = 0.05        # s between looks at the spool
LIFETIME = 30.0             # s: a watcher retires even if nothing happens
SETTLE_NS = 50 * 1000 * 1000  # a directory's mtime older than this at a look cannot hide a later change
RELOOK_INTERVAL = 1.0       # s: the spool is listed at least this often anyway

Mtimes = Tuple[int, ...]


def mtimes(paths: Sequence[str]) -> Mtimes:
    return tuple(_mtime_ns(p) for p in paths)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class SpoolWatcher:
    """The directories that bring work, and the drain switch that ends it.

    Two kinds of children wake the master: one forked watcher that exits when the
    spool changes (it lives LIFETIME s, however often the master wakes meanwhile), and
    `sleep` timers for a duty due sooner (a snapshot write). A fork copies the master's
    page tables and makes its next writes copy pages: ~10 ms of the master's CPU, too
    much four times a second. A timer is posix_spawn'ed (vfork + exec): ~0.1 ms.
    """

    def __init__(self, paths: Sequence[str], drain_path: str):
        self.paths = tuple(paths)
        self.drain_path = drain_path
        self.pid: Optional[int] = None
        self.deadline = 0.0
        self.timers: Dict[int, float] = {}   # pid -> when it exits (monotonic)
        self.sleep = shutil.which("sleep") or "/bin/sleep"
        self.looked: Optional[Tuple[Mtimes, bool]] = None
        self.looked_at = 0.0
        self.looked_settled = False
        self.child_baseline: Optional[Mtimes] = None
        self.child_drain = False

    def baseline(self) -> Mtimes:
        return mtimes(self.paths)

    def vouched_baseline(self, baseline: Mtimes) -> Optional[Tuple[Mtimes, bool]]:
        """(baseline, drain switch) again, if the watcher child still lives and watches
        them: neither has changed since (but for its last POLL_INTERVAL/2, after which it
        exits and wakes wait()). Ask right after its exit was looked for (child_exited)."""
        if self.pid is not None and self.child_baseline == baseline:
            return baseline, self.child_drain
        return None

    def needs_look(self, baseline: Mtimes, drain: bool) -> bool:
        """Whether the spool may hold news since the last look; if so, it counts as looked at now.

        The master wakes for every finished task: listing six directories each time
        would be most of its own work per job. A directory whose mtime is unchanged
        holds the same names, unless the change fell in the same timestamp tick as the
        look: so a look only counts once the mtimes it saw were older than SETTLE_NS,
        and a clock that disagrees with the file server's costs at most RELOOK_INTERVAL.
        """
        now = time.monotonic()
        if (baseline, drain) == self.looked and self.looked_settled \
                and now - self.looked_at < RELOOK_INTERVAL:
            return False
        settled_before = time.time_ns() - SETTLE_NS
        self.looked, self.looked_at = (baseline, drain), now
        self.looked_settled = all(mtime < settled_before for mtime in baseline)
        return True

    def changed_since(self, baseline: Mtimes, drain: bool) -> bool:
        return mtimes(self.paths) != baseline or os.path.exists(self.drain_path) != drain

    def ensure_child(self, baseline: Mtimes, lifetime: float) -> None:
        """A child that exits on a change, or after lifetime s, whichever is first."""
        now = time.monotonic()
        if self.pid is None or self.deadline <= now:
            self.stop_child()
            self.child_drain = os.path.exists(self.drain_path)
            self.pid = _spawn(self, baseline, self.child_drain, LIFETIME)
            self.deadline = now + LIFETIME
            self.child_baseline = baseline
        if lifetime < LIFETIME and not self._timer_by(now + lifetime + 0.05):
            self._start_timer(now, lifetime)

    def _timer_by(self, deadline: float) -> bool:
        return any(when <= deadline for when in self.timers.values())

    def _start_timer(self, now: float, delay: float) -> None:
        try:
            pid = os.posix_spawn(self.sleep, ["sleep", "%.3f" % max(delay, 0.001)], os.environ,
                                 setsigdef=(signal.SIGTERM, signal.SIGINT))
        except OSError:  # no sleep(1) here: a forked child sleeps as well, dearer
            pid = _spawn_sleeper(delay)
        self.timers[pid] = now + delay

    def child_exited(self, pids: Sequence[int]) -> None:
        for pid in pids:
            if pid == self.pid:
                self.pid = None
            self.timers.pop(pid, None)
        if self.timers:  # one the process module did not report (it always should)
            late = time.monotonic() - 5.0
            for pid in [p for p, when in self.timers.items() if when < late]:
                _kill_and_reap(pid)
                del self.timers[pid]

    def stop_child(self) -> None:
        if self.pid is not None:
            _kill_and_reap(self.pid)
            self.pid = None

    def stop_all(self) -> None:
        self.stop_child()
        for pid in list(self.timers):
            _kill_and_reap(pid)
        self.timers.clear()


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass  # already gone, or reaped by Work Queue's process module


def _spawn_sleeper(delay: float) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:
        time.sleep(delay)
    finally:
        os._exit(0)


def _spawn(watcher: SpoolWatcher, baseline: Mtimes, drain: bool, lifetime: float) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        # The master's handlers are not ours: a TERM to the process group must just end us.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline and os.getppid() == parent:
            if watcher.changed_since(baseline, drain):
                break
            time.sleep(POLL_INTERVAL / 2)
    finally:
        os._exit(0)
