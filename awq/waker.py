"""Waking the master: for a spool change, a finished task, or the next due duty.

The master's turn asks three things of the Waker:

- ``look()``: may the spool hold news (records, requests, the drain switch)
  since the last look? A turn comes with every finished task, and listing six
  directories each time would be most of the master's own work per job.
- ``wait_for_task(next_duty)``: block in Work Queue's ``wait()`` until a task
  result, a spool change, or the next due duty, whichever is first.
- ``sleep_until_news(next_duty, stopping)``: with nothing in Work Queue, sleep
  until the spool changes or the next duty is due.

Work Queue's ``wait(t)`` blocks whole seconds while tasks are out, so alone it
would delay every new job by up to a second. A tiny forked child watches the
spool's directories and exits when they change, and a ``sleep`` timer exits
when the next duty is due; Work Queue's process module (enabled behind
``TaskBackend.enable_wake_on_child_exit``) ends the wait when either exits.
Every child that exits is reaped at the next look for exited children, busy
or idle, so none lingers as a zombie.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from awq.pacing import SYSTEM_CLOCK, Clock, Every
from awq.tasks import TaskBackend, TaskResult

# s between the idle master's looks at the spool: how late a job submitted to an idle
# master may start, at the cost of six stat calls a look.
POLL_INTERVAL = 0.05
# s between the watcher child's looks: its delay is every new job's delay while tasks are
# out, and its looks cost the master nothing (it sleeps in Work Queue meanwhile).
CHILD_POLL_INTERVAL = POLL_INTERVAL / 2
# s a watcher child lives at most, even if nothing changes: it holds the master's memory
# as it was at the fork, and every page the master writes since becomes a copy. While
# pilots start by thousands every job's page is written within seconds (a watcher that
# lived through such a minute doubled the master's memory); a fork costs a millisecond or
# two of copying page tables.
LIFETIME = 5.0
# A directory's mtime older than this at a look cannot hide a later change (a change in
# the same timestamp tick as the look would leave the mtime as it was).
SETTLE_NS = 50 * 1000 * 1000
# s: the spool is listed at least this often anyway, so a clock that disagrees with the
# file server's costs at most this much.
RELOOK_INTERVAL = 1.0
# s Work Queue's wait() blocks while tasks are out (it counts whole seconds): a duty due
# later than this needs no timer, wait() returns before it anyway.
WAIT_TIMEOUT = 1
# s between wait(0) calls while Work Queue is empty: it accepts workers and updates the
# catalog only inside wait(), and with nothing queued it returns at once.
SERVICE_INTERVAL = 1.0
# s: a timer already due this soon after the wanted time will do (a snapshot a few ms
# late costs nothing, a timer spawned every turn would).
TIMER_SLACK = 0.05
# s: the shortest timer asked of sleep(1), which refuses a negative time: a duty already
# due gets a timer that ends at once.
MIN_TIMER = 0.001
# s past its time before a timer the process module did not report (it always should) is
# killed and reaped here, so it cannot linger.
LATE_TIMER_GRACE = 5.0

Mtimes = Tuple[int, ...]


class WatchedSpool:
    """What may hold news for the master: the spool directories' mtimes, and the drain
    switch. The master and its watcher child ask it the same questions."""

    def __init__(self, paths: Sequence[str], drain_path: str):
        self.paths = tuple(paths)
        self.drain_path = drain_path

    def mtimes(self) -> Mtimes:
        return tuple(_mtime_ns(p) for p in self.paths)

    def draining(self) -> bool:
        return os.path.exists(self.drain_path)

    def changed_since(self, baseline: Mtimes, drain: bool) -> bool:
        return self.mtimes() != baseline or self.draining() != drain


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class WakeUpChildren:
    """The children whose exit ends Work Queue's wait(), and their reaping.

    Two kinds: one forked watcher that exits when the spool changes (it lives LIFETIME s,
    however often the master wakes meanwhile), and `sleep` timers for a duty due sooner
    than wait() returns (a snapshot write, a refill). A fork copies the master's page
    tables and makes its next writes copy pages: too dear four times a second. A timer is
    posix_spawn'ed (vfork + exec).
    """

    def __init__(self, backend: TaskBackend, spool: WatchedSpool, clock: Clock = SYSTEM_CLOCK):
        self.backend = backend
        self.spool = spool
        self.clock = clock
        self.watcher: Optional[int] = None
        self.watcher_retires = Every(LIFETIME, clock)
        self.watched: Optional[Mtimes] = None    # the mtimes the watcher compares with
        self.watched_drain = False               # and the drain switch it saw
        self.fork_before_next_wait = False
        self.timers: Dict[int, float] = {}   # pid -> when it exits (clock time)
        self.sleep_command = shutil.which("sleep") or "/bin/sleep"

    def before_wait(self, baseline: Mtimes, next_duty: float) -> None:
        """A watcher that exits on a change; a timer if next_duty comes before wait() returns.

        Work Queue sends the tasks just handed over only inside wait(), and a fork costs
        the master more than sending them: a wait() that finds no watcher is ended at
        once by a timer instead (Work Queue sends its ready tasks before it looks for
        exited children), and the watcher is forked before the next one.
        """
        if self.watcher is not None and self.watcher_retires.due():
            self._stop_watcher()
        if self.watcher is None and self.fork_before_next_wait:
            self.watched_drain = self.spool.draining()
            # While the watcher lives, the collector leaves the objects of the fork alone:
            # a full collection writes to every object it visits, and each page it writes
            # is then copied for the child (the master's whole table, counted twice).
            gc.freeze()
            self.watcher = _spawn_watcher(self.spool, baseline, self.watched_drain, LIFETIME)
            self.watcher_retires.done()
            self.watched = baseline
        self.fork_before_next_wait = self.watcher is None
        if self.watcher is None:
            next_duty = 0.0
        now = self.clock.now()
        if next_duty < WAIT_TIMEOUT and not self._timer_by(now + next_duty + TIMER_SLACK):
            self._start_timer(now, next_duty)

    def watches(self, baseline: Mtimes) -> bool:
        """Whether the watcher lives and compares with baseline (ask after collect_exited)."""
        return self.watcher is not None and self.watched == baseline

    def collect_exited(self) -> List[int]:
        """Reap the children that exited (the backend's process module holds them)."""
        pids = self.backend.reap_children()
        for pid in pids:
            if pid == self.watcher:
                self._watcher_gone()
            self.timers.pop(pid, None)
        if self.timers:
            late = self.clock.now() - LATE_TIMER_GRACE
            for pid in [p for p, when in self.timers.items() if when < late]:
                _kill_and_reap(pid)
                del self.timers[pid]
        return pids

    def stop(self) -> None:
        """End and reap every child."""
        self._stop_watcher()
        for pid in list(self.timers):
            _kill_and_reap(pid)
        self.timers.clear()

    def _timer_by(self, deadline: float) -> bool:
        return any(when <= deadline for when in self.timers.values())

    def _start_timer(self, now: float, delay: float) -> None:
        try:
            pid = os.posix_spawn(self.sleep_command,
                                 ["sleep", "%.3f" % max(delay, MIN_TIMER)], os.environ,
                                 setsigdef=(signal.SIGTERM, signal.SIGINT))
        except OSError:  # no sleep(1) here: a forked child sleeps as well, dearer
            pid = _spawn_sleeper(delay)
        self.timers[pid] = now + delay

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            _kill_and_reap(self.watcher)
            self._watcher_gone()

    def _watcher_gone(self) -> None:
        self.watcher = None
        gc.unfreeze()  # the objects frozen at its fork are collected again


class Waker:
    """The spool watch and the early wake-up: when to list the spool, and how to wait.

    The children that end a wait early (a spool watcher, duty timers) are WakeUpChildren's.
    """

    def __init__(self, backend: TaskBackend, paths: Sequence[str], drain_path: str,
                 clock: Clock = SYSTEM_CLOCK):
        self.backend = backend
        self.spool = WatchedSpool(paths, drain_path)
        self.clock = clock
        self.enabled = False
        self.draining = False            # the drain switch at the last look
        self.baseline: Mtimes = ()       # the spool's mtimes at the last look
        self.vouched = False             # the watcher child watched them since: no stat needed
        self.children = WakeUpChildren(backend, self.spool, clock)
        self.looked: Optional[Tuple[Mtimes, bool]] = None
        self.relook = Every(RELOOK_INTERVAL, clock)
        self.looked_settled = False
        self.service = Every(SERVICE_INTERVAL, clock)

    def enable(self) -> bool:
        """Turn the early wake-up on; False when this Work Queue cannot (then wait() polls)."""
        self.enabled = self.backend.enable_wake_on_child_exit()
        return self.enabled

    # -- what the turn asks

    def look(self) -> bool:
        """Whether the spool may hold news since the last look; if so, it counts as looked at.

        Sets self.draining. While the watcher child vouches for the spool (it lives and
        watched the same mtimes), not even the mtimes are read again.
        """
        if not self.vouched:
            self.baseline, self.draining = self.baseline_now(), self.spool.draining()
        self.vouched = False
        return self.needs_look(self.baseline, self.draining)

    def wait_for_task(self, next_duty: float) -> Optional[TaskResult]:
        """wait() in Work Queue until a task result, a spool change or next_duty s pass."""
        if self.enabled:
            self.children.before_wait(self.baseline, next_duty)
        result = self.backend.wait(WAIT_TIMEOUT)
        self.children.collect_exited()
        self.vouched = self.child_vouches(self.baseline)
        if self.vouched:
            self.draining = self.children.watched_drain
        return result

    def sleep_until_news(self, next_duty: float, stopping: Callable[[], bool]) -> None:
        """With nothing in Work Queue: until the spool changes, next_duty s pass, or stopping()."""
        deadline = self.clock.now() + next_duty
        if not self.looked_settled:
            # A change in the same timestamp tick as the last look would not show in the
            # mtimes watched here: look again once that tick is surely over.
            deadline = min(deadline, self.relook.last + SETTLE_NS / 1e9)
        while not stopping():
            if self.service.take():
                self.backend.wait(0)
            # Children still end while we sleep here (a watcher seeing a change, a timer
            # whose duty came): each is a zombie until collected.
            self.children.collect_exited()
            left = deadline - self.clock.now()
            if left <= 0 or self.spool.changed_since(self.baseline, self.draining):
                return
            self.clock.sleep(min(POLL_INTERVAL, left))

    def stop(self) -> None:
        """End and reap every child (the master is leaving)."""
        self.children.stop()

    # -- the parts

    def needs_look(self, baseline: Mtimes, drain: bool) -> bool:
        """Whether (baseline, drain) may hide news since the last look; it counts as a look.

        A directory whose mtime is unchanged holds the same names, unless the change
        fell in the same timestamp tick as the look: so a look only counts once the
        mtimes it saw were older than SETTLE_NS, and at least every RELOOK_INTERVAL.
        """
        if (baseline, drain) == self.looked and self.looked_settled and not self.relook.due():
            return False
        settled_before = time.time_ns() - SETTLE_NS
        self.looked = (baseline, drain)
        self.relook.done()
        self.looked_settled = all(mtime < settled_before for mtime in baseline)
        return True

    def child_vouches(self, baseline: Mtimes) -> bool:
        """Whether the watcher child lives and watches baseline: then neither the mtimes nor
        the drain switch changed since (but for its last CHILD_POLL_INTERVAL, after which
        it exits and wakes wait()). Ask right after exited children were collected."""
        return self.enabled and self.children.watches(baseline)

    def baseline_now(self) -> Mtimes:
        return self.spool.mtimes()


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


def _spawn_watcher(spool: WatchedSpool, baseline: Mtimes, drain: bool, lifetime: float) -> int:
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
            if spool.changed_since(baseline, drain):
                break
            time.sleep(CHILD_POLL_INTERVAL)
    finally:
        os._exit(0)
