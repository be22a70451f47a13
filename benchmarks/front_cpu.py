"""The front's CPU per job, apart from the master's: two product trees, alternating runs.

The throughput scenario's run (4 foremen, 8 workers, 4 submitters; a job is done when its
output file exists), with the master's own utime+stime and its front child's read apart
from /proc over the same window (submit -> last output). Each tree is run by its own
benchmarks/ code in a process of its own, so an older tree is measured as it was; the
trees alternate (A B A B ...), since this host moves such figures by 15 % within an hour.

    .venv/bin/python benchmarks/front_cpu.py --pairs 3 --jobs 3000 BASE_TREE NEW_TREE
    .venv/bin/python benchmarks/front_cpu.py --job ./ten_mb.sh --jobs 100 BASE NEW

Prints one JSON line per run, then the medians and ranges per tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

N_FOREMEN, N_WORKERS, SUBMITTERS = 4, 8, 4   # as the throughput scenario
RUN_WITHIN = 600.0   # s for one run: thousands of jobs at tens of jobs/s on a busy box


def run_one(tree: str, jobs: int, job: str) -> Dict[str, object]:
    """One run with `tree`'s own benchmarks/ and awq/ (this is called in a child process)."""
    sys.path.insert(0, tree)
    os.chdir(tree)
    from benchmarks import harness, scenarios

    def own_cpu(pid: int) -> float:
        fields = harness._stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / harness.CLK_TCK

    tmp = tempfile.mkdtemp(prefix="awq-front-cpu-")
    try:
        target = harness.make_target("awq", os.path.join(tmp, "tools"), None)
        ctx = scenarios.Context(False, tmp)
        root = ctx.workdir("front-cpu")
        with harness.Cluster(target, root) as cluster:
            master = cluster.start_master()
            front = min(harness._children_of(master.pid))  # forked at start, before any watcher
            ports = [cluster.start_foreman() for _ in range(N_FOREMEN)]
            for index in range(N_WORKERS):
                cluster.start_worker(1, ports[index % N_FOREMEN])
            scenarios._workers_connected(cluster, N_FOREMEN)
            warm = os.path.join(root, "warm")
            os.makedirs(warm)
            for text in target.descriptions("/bin/true", warm + "/o.{i}", N_FOREMEN):
                cluster.submit(text)
            harness.wait_until(lambda: harness.count_files(warm) >= N_FOREMEN, 120,
                               "the warm-up jobs", interval=0.1)
            out = os.path.join(root, "out")
            os.makedirs(out)
            descriptions = target.descriptions(job, out + "/o.{i}", jobs)
            master0, front0 = own_cpu(master.pid), own_cpu(front)
            start = time.monotonic()
            procs = scenarios._submit_many(cluster, descriptions, SUBMITTERS, "front-cpu")
            harness.wait_for_count(lambda: harness.count_files(out), jobs, "outputs")
            end = time.monotonic()
            master1, front1 = own_cpu(master.pid), own_cpu(front)
            scenarios._wait_submitters(procs, 60)
        return {"tree": tree, "job": job, "jobs": jobs,
                "master_ms": (master1 - master0) * 1000.0 / jobs,
                "front_ms": (front1 - front0) * 1000.0 / jobs,
                "both_ms": (master1 - master0 + front1 - front0) * 1000.0 / jobs,
                "jobs_per_s": jobs / (end - start), "at": time.strftime("%H:%M:%S %Z")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="+", help="product trees (a checkout or git archive)")
    parser.add_argument("--pairs", type=int, default=3, help="rounds over the trees")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--job", default="/bin/true", help="each job's executable")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        print(json.dumps(run_one(os.path.abspath(options.trees[0]), options.jobs,
                                 os.path.abspath(options.job) if os.sep in options.job
                                 else options.job)), flush=True)
        return 0
    runs: Dict[str, List[Dict[str, float]]] = {tree: [] for tree in options.trees}
    for _ in range(options.pairs):
        for tree in options.trees:
            child = subprocess.run([sys.executable, os.path.abspath(__file__), "--one",
                                    "--jobs", str(options.jobs), "--job", options.job, tree],
                                   stdout=subprocess.PIPE, universal_newlines=True,
                                   timeout=RUN_WITHIN)
            if child.returncode != 0:
                print("a run of %s failed" % tree, file=sys.stderr)
                return 1
            line = child.stdout.strip().splitlines()[-1]
            print(line, flush=True)
            runs[tree].append(json.loads(line))
    for tree, results in runs.items():
        for key in ("front_ms", "both_ms", "master_ms"):
            values = [result[key] for result in results]
            print("%s %s: median %.2f, %.2f-%.2f" % (tree, key, statistics.median(values),
                                                     min(values), max(values)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
