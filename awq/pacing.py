"""Pacing: duties done at most once per interval, on a clock that tests can set.

Every periodic duty of the master (snapshot writes, task-state sweeps, the
heartbeat, ...) is an ``Every``: ``due()`` says whether its interval has passed
since it was last ``done()``, ``time_left()`` how long until it has. They all
read one ``Clock``; a test hands in a ``ManualClock`` and moves time itself
instead of patching the intervals.
"""

from __future__ import annotations

import time


class Clock:
    """Monotonic seconds, and sleeping on them: the system's."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = Clock()


class ManualClock(Clock):
    """A clock that moves only when told to (sleeping moves it): for tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.time += max(0.0, seconds)


class Every:
    """A duty due once per interval; due at once unless started_due is False.

    The interval may be changed at any time (the snapshot's adapts to its cost);
    it counts from the last done().
    """

    def __init__(self, interval: float, clock: Clock = SYSTEM_CLOCK, started_due: bool = True):
        self.interval = interval
        self.clock = clock
        self.last = float("-inf") if started_due else clock.now()

    def due(self) -> bool:
        # Written as the time it comes due: a clock moved by exactly the interval finds it due.
        return self.clock.now() >= self.last + self.interval

    def done(self) -> None:
        self.last = self.clock.now()

    def take(self) -> bool:
        """Whether the duty is due; if so, it counts as done now (the caller does it)."""
        if not self.due():
            return False
        self.done()
        return True

    def time_left(self) -> float:
        return max(0.0, self.last + self.interval - self.clock.now())
