"""The master, as `python -m awq.cli.alien_work_queue` starts it, with its turns timed.

    python -m benchmarks.timed_master --turns-file FILE <alien_work_queue options>

Master.turn is wrapped: each turn's busy time (its wall time less the time it spent
blocked in the waker: Work Queue's wait and the spool polls) and its CPU time (the
process's, Work Queue's work inside its wait included) are kept in a ring of the last RING
turns, and FILE is rewritten (temp + rename) at most every WRITE_INTERVAL s with that ring
as [monotonic end, busy seconds, whether the turn returned a task result, CPU seconds].
The wrapper costs three clock reads a turn; the product is not changed.

While FILE.profile-on exists, the turns run under cProfile; when it is removed, the
profile is written to FILE.prof (pstats) and the ring's writes go on.
"""

from __future__ import annotations

import cProfile
import collections
import json
import os
import sys
import time
from typing import Any, Deque, List, Tuple

RING = 4000
WRITE_INTERVAL = 1.0


def install(path: str) -> None:
    from awq import master, waker

    ring: Deque[Tuple[float, float, int, float]] = collections.deque(maxlen=RING)
    blocked = [0.0]
    results = [0]
    last_write = [0.0]

    def timed_block(method: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                value = method(self, *args, **kwargs)
            finally:
                blocked[0] += time.perf_counter() - start
            if value is not None:
                results[0] += 1
            return value
        return wrapper

    waker.Waker.wait_for_task = timed_block(waker.Waker.wait_for_task)
    waker.Waker.sleep_until_news = timed_block(waker.Waker.sleep_until_news)
    turn = master.Master.turn
    trigger, profile_path = path + ".profile-on", path + ".prof"
    profiler: List[Any] = []

    def profile_switch() -> None:
        wanted = os.path.exists(trigger)
        if wanted and not profiler:
            profiler.append(cProfile.Profile())
            profiler[0].enable()
        elif profiler and not wanted:
            profiler[0].disable()
            profiler.pop().dump_stats(profile_path)

    def timed_turn(self: Any) -> bool:
        profile_switch()
        blocked[0], results[0] = 0.0, 0
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return turn(self)
        finally:
            end = time.perf_counter()
            ring.append((time.monotonic(), max(0.0, end - start - blocked[0]), results[0],
                         time.process_time() - cpu))
            if end - last_write[0] >= WRITE_INTERVAL:
                last_write[0] = end
                _write(path, list(ring))

    master.Master.turn = timed_turn


def _write(path: str, ring: List[Tuple[float, float, int, float]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(ring, handle)
    os.replace(tmp, path)


def main() -> None:
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[0] != "--turns-file":
        print("usage: python -m benchmarks.timed_master --turns-file FILE <master options>",
              file=sys.stderr)
        sys.exit(2)
    install(os.path.abspath(argv[1]))
    sys.argv = ["alien_work_queue"] + argv[2:]
    from awq.cli import alien_work_queue
    alien_work_queue.cli()


if __name__ == "__main__":
    main()
