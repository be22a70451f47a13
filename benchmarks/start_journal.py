#!/usr/bin/env python3
"""What the start journal costs the master (awq/spool/starts.py).

Times JobTable.mark_running over 10,000 jobs with and without the journal (the
master's log going to a file, as in production, so the start's own log line is
in both), the journal's record() alone, the rotation after a snapshot, and the
replay of 10,000 lines at start. The yardstick is a bare start of the
interpreter the installed master runs (`/usr/bin/python3 -c pass`), as in
BENCHMARKS.md.

    /usr/bin/python3 benchmarks/start_journal.py   # writes benchmarks/results/start_journal.txt
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from awq.jobtable import JobTable  # noqa: E402
from awq.spool.starts import StartJournal  # noqa: E402

JOBS = 10000
RUNS = 9
YARDSTICK = ("/usr/bin/python3", "-c", "pass")


def table_of_idle_jobs() -> JobTable:
    table = JobTable()
    for proc in range(JOBS):
        table.put({"ClusterId": 1, "ProcId": proc, "JobStatus": 1, "QDate": 1,
                   "Cmd": "/path/agent.startup", "EnteredCurrentStatus": 1, "NumJobStarts": 0})
    return table


def time_starts(journal_dir: str = "") -> float:
    """Seconds per mark_running, over JOBS starts."""
    table = table_of_idle_jobs()
    journal = None
    if journal_dir:
        journal = StartJournal(journal_dir)
        journal.replay()
        table.start_journal = journal
    begin = time.perf_counter()
    for proc in range(JOBS):
        table.mark_running((1, proc), "wn042.example.org:9123")
    elapsed = time.perf_counter() - begin
    if journal is not None:
        journal.close()
    return elapsed / JOBS


def time_record(journal_dir: str) -> float:
    journal = StartJournal(journal_dir)
    journal.replay()
    begin = time.perf_counter()
    for proc in range(JOBS):
        journal.record((1, proc), 1, 1700000000, "wn042.example.org:9123")
    elapsed = time.perf_counter() - begin
    journal.close()
    return elapsed / JOBS


def time_rotation_and_replay(journal_dir: str):
    """(s for after_snapshot with a segment of JOBS lines to close and one to delete,
    s for a replay of 2 x JOBS lines)."""
    journal = StartJournal(journal_dir)
    journal.replay()
    for proc in range(JOBS):
        journal.record((1, proc), 1, 1700000000, "wn042.example.org:9123")
    journal.after_snapshot()
    for proc in range(JOBS):
        journal.record((1, proc), 2, 1700000001, "wn042.example.org:9123")
    begin = time.perf_counter()
    journal.after_snapshot()   # deletes the first segment, closes the second
    rotation = time.perf_counter() - begin
    for proc in range(JOBS):
        journal.record((1, proc), 3, 1700000002, "wn042.example.org:9123")
    journal.close()
    begin = time.perf_counter()
    latest = StartJournal(journal_dir).replay()
    replay = time.perf_counter() - begin
    assert len(latest) == JOBS and latest[(1, 0)].starts == 3
    return rotation, replay


def yardstick_seconds() -> list:
    samples = []
    for _ in range(RUNS):
        begin = time.perf_counter()
        subprocess.run(YARDSTICK, check=True)
        samples.append(time.perf_counter() - begin)
    return samples


def spread(samples: list, scale: float, unit: str) -> str:
    return "median %.2f %s (%.2f-%.2f)" % (statistics.median(samples) * scale, unit,
                                           min(samples) * scale, max(samples) * scale)


def main() -> None:
    root = tempfile.mkdtemp(prefix="awq-starts-")
    log_handler = logging.FileHandler(os.devnull)   # the master logs to a file
    logging.getLogger("awq.master").addHandler(log_handler)
    logging.getLogger("awq.master").setLevel(logging.INFO)
    try:
        without, with_journal, record, rotation, replay = [], [], [], [], []
        for run in range(RUNS):
            without.append(time_starts())
            with_journal.append(time_starts(os.path.join(root, "with%d" % run)))
            record.append(time_record(os.path.join(root, "record%d" % run)))
            turned, replayed = time_rotation_and_replay(os.path.join(root, "rot%d" % run))
            rotation.append(turned)
            replay.append(replayed)
        stick = yardstick_seconds()
    finally:
        shutil.rmtree(root)
    added = [w - o for w, o in zip(with_journal, without)]
    stick_median = statistics.median(stick)
    lines = [
        "# The start journal's cost, %d starts a run, %d runs (median (min-max))" % (JOBS, RUNS),
        "# %s, %s, Python %s (%s)" % (time.strftime("%Y-%m-%d %H:%M"), platform.node(),
                                       platform.python_version(), sys.executable),
        "yardstick %s: %s" % (" ".join(YARDSTICK), spread(stick, 1e3, "ms")),
        "mark_running without the journal: %s a start" % spread(without, 1e6, "us"),
        "mark_running with the journal:    %s a start" % spread(with_journal, 1e6, "us"),
        "added by the journal:             %s a start = %.5f x the yardstick"
        % (spread(added, 1e6, "us"), statistics.median(added) / stick_median),
        "record() alone (one os.write):    %s a start = %.5f x the yardstick"
        % (spread(record, 1e6, "us"), statistics.median(record) / stick_median),
        "after_snapshot (close one segment of %d lines, delete another): %s"
        % (JOBS, spread(rotation, 1e3, "ms")),
        "replay of %d lines in 3 segments at start: %s" % (3 * JOBS, spread(replay, 1e3, "ms")),
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    results = os.path.join(REPO, "benchmarks", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "start_journal.txt"), "w") as out:
        out.write(text)


if __name__ == "__main__":
    main()
