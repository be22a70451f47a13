#!/usr/bin/env python3
"""Cost of the master's durable job table at upstream's scale (10,000 pilots).

Builds 10,000 AliEn-shaped job ads, then times the atomic snapshot write
(pickle + temp file + fsync + rename + directory fsync) and the read
condor_q does. The master writes at most one snapshot per 0.25 s.

    .venv/bin/python benchmarks/snapshot.py   # writes benchmarks/results/snapshot.txt
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from awq import submit  # noqa: E402
from awq.queue_view import read_queue_view  # noqa: E402
from awq.spool import Spool  # noqa: E402

DESCRIPTION = (
    "executable = /path/agent.startup.1\narguments = -a b\noutput = /l/o.$(Process)\n"
    "error = /l/e.$(Process)\nlog = /l/l\nenvironment=CONDOR_ID=$(Cluster).$(Process);"
    "ALIEN_CM_AS_LDAP_PROXY=host:8084;ALIEN_JOBAGENT_ID=1234.0\n"
    "periodic_remove = CurrentTime - QDate > 259200\nqueue 10000\n")


def main() -> None:
    spool = Spool(os.path.join(tempfile.mkdtemp(prefix="awq-snap-"), "spool"), create=True)
    jobs = submit.build_jobs(submit.parse_description(DESCRIPTION), cluster_id=1, cwd="/tmp",
                             environ={}, owner="u", uid=0, now=1)
    table = {(1, job["ProcId"]): job for job in jobs}
    writes, reads = [], []
    for _ in range(10):
        start = time.perf_counter()
        spool.published.write_snapshot({"jobs": table})
        writes.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert len(read_queue_view(spool).jobs) == 10000
        reads.append(time.perf_counter() - start)
    size = os.path.getsize(spool.snapshot_path) / 1e6
    lines = ["# 10,000-job table: atomic snapshot write and condor_q's read, 10 runs",
             "# %s, %s, Python %s" % (time.strftime("%Y-%m-%d %H:%M"), platform.node(),
                                       platform.python_version()),
             "snapshot size %.1f MB" % size,
             "write (pickle + fsync + rename): median %.3f s, max %.3f s"
             % (statistics.median(writes), max(writes)),
             "read (trust checks + restricted unpickle + merge): median %.3f s, max %.3f s"
             % (statistics.median(reads), max(reads))]
    out = os.path.join(REPO, "benchmarks", "results", "snapshot.txt")
    with open(out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
