"""The master, as `python -m awq.cli.alien_work_queue` starts it, with its turns timed.

    python -m benchmarks.timed_master --turns-file FILE <alien_work_queue options>

Master.turn is wrapped: each turn's busy time (its wall time less the time it spent
blocked in the waker: Work Queue's wait and the spool polls) and its CPU time (the
process's, Work Queue's work inside its wait included) are appended to FILE, one line a turn,
"monotonic-end busy-seconds results cpu-seconds", written in a batch at most every
WRITE_INTERVAL s (rewriting a whole ring each time cost the master more than its turns at
small sizes). The wrapper costs three clock reads and a stat a turn; the product is not
changed.

While FILE.profile-on exists, the turns run under cProfile; when it is removed, the
profile is written to FILE.prof (pstats) and the ring's writes go on.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
from typing import Any, List, Tuple

WRITE_INTERVAL = 1.0


def install(path: str) -> None:
    from awq import master, waker

    pending: List[Tuple[float, float, int, float]] = []
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
            pending.append((time.monotonic(), max(0.0, end - start - blocked[0]), results[0],
                            time.process_time() - cpu))
            if end - last_write[0] >= WRITE_INTERVAL:
                last_write[0] = end
                _append(path, pending)
                pending.clear()

    master.Master.turn = timed_turn


def _append(path: str, turns: List[Tuple[float, float, int, float]]) -> None:
    with open(path, "a") as handle:
        handle.write("".join("%.6f %.6f %d %.6f\n" % turn for turn in turns))


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
