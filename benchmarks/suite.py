"""python -m benchmarks [--quick] [--with-upstream DIR] [--only NAME ...]

Runs the scenarios against real masters, foremen and workers on 127.0.0.1,
writes benchmarks/results/<scenario>.json and regenerates BENCHMARKS.md from
every result file present.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import List, Optional

from benchmarks import report
from benchmarks.harness import REPO, BenchError, machine, make_target
from benchmarks.scenarios import SCENARIOS, Context

DEFAULT_RESULTS = os.path.join(REPO, "benchmarks", "results")
DEFAULT_REPORT = os.path.join(REPO, "BENCHMARKS.md")


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure alien-workqueue with real masters, foremen and workers on "
                    "loopback; write benchmarks/results/<scenario>.json and BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats (about 30 s for latency + condor_q)")
    parser.add_argument("--with-upstream", metavar="DIR",
                        help="also run every scenario against the upstream C++ alien-workqueue "
                             "installed in DIR (bin/alien_work_queue, bin/condor_q, "
                             "bin/condor_submit; see benchmarks/build_upstream.sh)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(SCENARIOS),
                        help="run only these scenarios (%s)" % ", ".join(SCENARIOS))
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="override every scenario's number of repeats")
    parser.add_argument("--results-dir", metavar="DIR", default=None,
                        help="where the JSON files go (default: benchmarks/results)")
    parser.add_argument("--report", metavar="FILE", default=None,
                        help="the Markdown report to regenerate (default: BENCHMARKS.md, or "
                             "RESULTS_DIR/BENCHMARKS.md with --results-dir)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs of every process)")
    options = parser.parse_args(argv)
    if options.with_upstream:
        binary = os.path.join(options.with_upstream, "bin", "alien_work_queue")
        if not os.access(binary, os.X_OK):
            parser.error("--with-upstream %s: no %s (build it with benchmarks/build_upstream.sh)"
                         % (options.with_upstream, binary))
    if options.repeats is not None and options.repeats < 1:
        parser.error("--repeats must be at least 1")
    return options


def reproduce_command(options: argparse.Namespace, name: str) -> str:
    words = ["python", "-m", "benchmarks"]
    if options.quick:
        words.append("--quick")
    if options.with_upstream:
        words += ["--with-upstream", options.with_upstream]
    if options.repeats:
        words += ["--repeats", str(options.repeats)]
    words += ["--only", name]
    return " ".join(shlex.quote(w) for w in words)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv: Optional[List[str]] = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    # Stopped by SIGINT or SIGTERM (even when started in the background, where SIGINT is
    # ignored), the scenario's clusters still end every process they started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    results_dir = os.path.abspath(options.results_dir or DEFAULT_RESULTS)
    report_path = os.path.abspath(options.report or (
        os.path.join(results_dir, "BENCHMARKS.md") if options.results_dir else DEFAULT_REPORT))
    os.makedirs(results_dir, exist_ok=True)
    names = options.only or list(SCENARIOS)
    targets = ["awq"] + (["upstream"] if options.with_upstream else [])
    tmp = tempfile.mkdtemp(prefix="awq-bench-")
    failures = 0
    try:
        info = machine()
        for name in names:
            doc = {"scenario": name, "quick": bool(options.quick), "machine": info,
                   "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                   "command": reproduce_command(options, name), "runs": {}}
            for kind in targets:
                started = time.monotonic()
                print("== %s (%s)" % (name, kind), flush=True)
                target_root = os.path.join(tmp, "%s-%s" % (name, kind))
                os.makedirs(target_root)
                try:
                    target = make_target(kind, target_root, options.with_upstream)
                    ctx = Context(options.quick, target_root, options.repeats)
                    run = SCENARIOS[name](target, ctx)
                except (BenchError, OSError, AssertionError) as err:
                    failures += 1
                    run = {"error": "%s: %s" % (type(err).__name__, err),
                           "traceback": traceback.format_exc()[-3000:]}
                    print("   FAILED: %s" % run["error"], flush=True)
                run["seconds"] = round(time.monotonic() - started, 1)
                doc["runs"][kind] = run
                for fig in run.get("figures", []):
                    print("   " + report.one_line(fig), flush=True)
            path = os.path.join(results_dir, "%s.json" % name)
            with open(path + ".tmp", "w") as handle:
                json.dump(doc, handle, indent=1, sort_keys=True)
                handle.write("\n")
            os.replace(path + ".tmp", path)
            print("   -> %s" % os.path.relpath(path, os.getcwd()), flush=True)
        report.write(results_dir, report_path)
        print("report: %s" % report_path, flush=True)
    finally:
        if options.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0
