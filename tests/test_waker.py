"""Waking the master: the spool watch, the early wake-up, the duty timers, and their children."""

from __future__ import annotations

import os
import re
import time
from typing import Dict, List, Optional

from awq import master as master_module
from awq.pacing import ManualClock
from awq.spool import Spool
from awq.tasks import TaskResult
from awq.waker import LIFETIME, RELOOK_INTERVAL, SERVICE_INTERVAL, SETTLE_NS, Waker
from conftest import JOB_DONE_WITHIN, wait_until

# A loaded machine may hold a runnable process off the CPU for a while: slack on top of
# what each wait below derives from the mechanism it waits on.
SCHEDULING_SLACK = 5.0
# Job -> idle cycles: whether a timer ends before or after the master goes idle is a race.
IDLE_CYCLES = 5


def children_of(parent: int) -> Dict[int, str]:
    """The processes whose parent is parent, with their state letter (Z: exited, not reaped)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent:
            found[int(entry)] = fields[0]
    return found


def front_pid_of(master) -> int:
    """The front child's PID, which the master logs when it starts it."""
    found = re.findall(r"the front \(PID (\d+)\)", master.log())
    assert found, "the master did not log its front:\n" + master.log()
    return int(found[-1])


def test_an_idle_master_leaves_no_child_unreaped(tmp_path, start_master, start_worker, tool,
                                                 workdir):
    """Children that end while the master sleeps idle (a watcher seeing a change, a timer
    whose snapshot came due) are reaped then, not at the next task: a zombie each otherwise.
    The front is the one child that stays, alive, for the master's whole life."""
    master = start_master()
    start_worker(master.port)
    pid = master.proc.pid
    front = front_pid_of(master)
    spool = Spool(workdir)

    def unreaped() -> Dict[int, str]:
        children = children_of(pid)
        assert children.pop(front, None) not in (None, "Z"), "the front is not running"
        return children

    for cycle in range(1, IDLE_CYCLES + 1):
        result = tool("condor_submit", stdin="executable = /bin/true\noutput = %s\nqueue\n"
                      % (tmp_path / "out"))
        assert result.returncode == 0, result.stderr
        wait_until(lambda: len(spool.history.read()) == cycle, JOB_DONE_WITHIN,
                   what="job %d in the history" % cycle)
        # Idle now. A spool change ends the watcher child (a request for no job: nothing
        # else happens); a timer ends when the snapshot it was started for is due.
        spool.requests.leave("rm", [(999, cycle)], "no such job")
        bound = master_module.MAX_FLUSH_INTERVAL + SCHEDULING_SLACK
        # `what` is a function: what was left at the timeout, not at the start of the wait.
        wait_until(lambda: not unreaped(), bound,
                   what=lambda: "every child of the idle master reaped but its front (left: "
                                "%s)" % unreaped())


class ChildrenBackend:
    """Work Queue's part in waking: wait() returns at once, exited children are the test's."""

    def __init__(self) -> None:
        self.exited: List[int] = []
        self.waits: List[int] = []

    def enable_wake_on_child_exit(self) -> bool:
        return True

    def wait(self, timeout: int) -> Optional[TaskResult]:
        self.waits.append(timeout)
        return None

    def reap_children(self) -> List[int]:
        pids, self.exited = self.exited, []
        return pids


def waker_on(paths, drain, clock=None) -> Waker:
    waker = Waker(ChildrenBackend(), [str(p) for p in paths], str(drain),
                  **({"clock": clock} if clock else {}))
    assert waker.enable()
    return waker


def timers_ended(waker: Waker) -> None:
    """Wait for the waker's timers to end, and let it collect them as after a wait()."""
    for timer in list(waker.children.timers):
        assert os.waitpid(timer, 0)[1] == 0  # sleep(1) ran and ended by itself
        waker.backend.exited.append(timer)
    waker.children.collect_exited()


def test_the_first_wait_is_woken_at_once_and_the_watcher_forked_before_the_next(tmp_path):
    """Work Queue sends the tasks just handed over inside wait(): no fork before that."""
    waker = waker_on([tmp_path], tmp_path / "drain")
    waker.look()
    try:
        waker.wait_for_task(LIFETIME)
        children = waker.children
        assert children.watcher is None and len(children.timers) == 1   # a timer ends this wait
        timers_ended(waker)
        waker.wait_for_task(LIFETIME)
        assert children.watcher and not children.timers                 # the next has its watcher
    finally:
        waker.stop()


def test_the_spool_is_listed_again_only_when_it_may_hold_news(tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    clock = ManualClock()
    waker = waker_on([queue], tmp_path / "drain", clock)
    assert waker.needs_look(waker.baseline_now(), False)  # first look
    # Just changed: the same timestamp tick could hide the next change, so look again.
    assert waker.needs_look(waker.baseline_now(), False)
    old = time.time_ns() - 10 ** 9
    os.utime(str(queue), ns=(old, old))
    assert waker.needs_look(waker.baseline_now(), False)  # mtime changed
    assert not waker.needs_look(waker.baseline_now(), False)  # settled, unchanged
    assert waker.needs_look(waker.baseline_now(), True)  # the drain switch moved
    assert not waker.needs_look(waker.baseline_now(), True)
    (queue / "1.job").write_text("x")
    assert waker.needs_look(waker.baseline_now(), True)
    os.utime(str(queue), ns=(old, old))
    waker.needs_look(waker.baseline_now(), True)
    clock.advance(RELOOK_INTERVAL)
    assert waker.needs_look(waker.baseline_now(), True)  # at least once a second


def test_snapshot_deadlines_get_cheap_timers_and_one_watcher_lives_on(tmp_path):
    waker = waker_on([tmp_path], tmp_path / "drain")
    waker.look()
    try:
        waker.wait_for_task(LIFETIME)   # no watcher yet: this wait only wakes at once
        timers_ended(waker)
        waker.wait_for_task(0.2)
        first = waker.children.watcher
        assert first and len(waker.children.timers) == 1
        waker.wait_for_task(0.2)  # that timer is soon enough
        waker.wait_for_task(LIFETIME)
        assert waker.children.watcher == first and len(waker.children.timers) == 1
        timers_ended(waker)
        waker.wait_for_task(LIFETIME)
        assert not waker.children.timers
    finally:
        waker.stop()
    assert waker.children.watcher is None


def test_the_spool_is_not_looked_at_again_while_the_watcher_vouches_for_it(tmp_path):
    waker = waker_on([tmp_path], tmp_path / "drain")
    try:
        waker.look()
        baseline = waker.baseline
        assert not waker.child_vouches(baseline)                    # no child: look
        waker.wait_for_task(LIFETIME)
        timers_ended(waker)
        waker.wait_for_task(LIFETIME)
        assert waker.child_vouches(baseline) and waker.vouched      # it watches these
        assert not waker.draining
        assert not waker.child_vouches(baseline + (1,))
        child = waker.children.watcher
        (tmp_path / "record").write_text("new job")                 # the child sees it and exits
        assert os.waitpid(child, 0)[0] == child
        waker.backend.exited.append(child)
        waker.wait_for_task(LIFETIME)
        assert not waker.vouched and not waker.child_vouches(baseline)  # look again
        assert waker.look()
    finally:
        waker.stop()


def test_the_watcher_child_exits_when_the_drain_file_appears(tmp_path):
    (tmp_path / "queue").mkdir()   # the drain file is elsewhere: only it changes
    waker = waker_on([tmp_path / "queue"], tmp_path / "drain")
    try:
        waker.look()
        baseline = waker.baseline
        waker.wait_for_task(LIFETIME)
        timers_ended(waker)
        waker.wait_for_task(LIFETIME)
        assert waker.child_vouches(baseline) and not waker.draining
        child = waker.children.watcher
        (tmp_path / "drain").write_text("")
        assert os.waitpid(child, 0)[0] == child
        waker.backend.exited.append(child)
        waker.wait_for_task(LIFETIME)
        assert not waker.child_vouches(baseline)
        waker.look()
        assert waker.draining
    finally:
        waker.stop()


def test_an_idle_master_sleeps_until_its_next_duty_and_serves_work_queue_meanwhile(tmp_path):
    clock = ManualClock()
    waker = waker_on([tmp_path], tmp_path / "drain", clock)
    old = time.time_ns() - 10 ** 9
    os.utime(str(tmp_path), ns=(old, old))        # settled: nothing can hide in its tick
    waker.look()
    started = clock.now()
    waker.sleep_until_news(2.5 * SERVICE_INTERVAL, lambda: False)
    assert clock.now() - started >= 2.5 * SERVICE_INTERVAL
    # wait(0) at once, then once per SERVICE_INTERVAL: workers connect only inside wait()
    assert waker.backend.waits == [0, 0, 0]
    waker.sleep_until_news(LIFETIME, lambda: True)    # a stop request ends it at once
    assert clock.now() - started < 3 * SERVICE_INTERVAL


def test_an_idle_master_wakes_when_the_spool_changes(tmp_path):
    clock = ManualClock()
    waker = waker_on([tmp_path], tmp_path / "drain", clock)
    waker.look()
    (tmp_path / "record").write_text("new job")
    started = clock.now()
    waker.sleep_until_news(LIFETIME, lambda: False)
    assert clock.now() == started      # at the first look, not at the deadline
    assert waker.look()


def test_an_idle_master_looks_again_when_its_last_look_may_have_missed_a_change(tmp_path):
    """A record written in the same timestamp tick as the look leaves the mtime unchanged:
    a look at a fresh mtime is followed by another once that tick is over."""
    clock = ManualClock()
    waker = waker_on([tmp_path], tmp_path / "drain", clock)
    (tmp_path / "record").write_text("new job")   # the directory's mtime is now
    assert waker.look()
    started = clock.now()
    waker.sleep_until_news(LIFETIME, lambda: False)
    assert clock.now() - started <= SETTLE_NS / 1e9 + 1e-9   # not the whole LIFETIME
    assert waker.look()                            # and that look counts again
    old = time.time_ns() - 10 ** 9
    os.utime(str(tmp_path), ns=(old, old))
    assert waker.look() and not waker.look()       # settled: no more looks needed
