"""The fleet scenario: a burst of N sleeping pilots through work_queue_factory on a local Slurm.

For N = 16, 64, 200 one-core pilots: the master (its default password, reporting to
a catalog_server of its own), `alien_wq_worker.sh start-factory` with
WQ_FACTORY_TYPE=slurm, minimum 0, maximum N/4 workers of 4 cores, on a private
single-node Slurm whose node advertises more CPUs than the box has
(tests/slurm_cluster.py). Measured: seconds from condor_submit to all N running,
and from the pilots' end to the fleet back at its minimum (no worker job in
squeue); beside it the same N through `start-workers` (N/4 workers started
first, straight to the master), in the same run.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

from benchmarks.harness import (PYTHON, REPO, BenchError, Processes, Target, figure,
                                free_port, read_stat, run_bounded, wait_until, write_executable)

SCRIPT = os.path.join(REPO, "bin", "alien_wq_worker.sh")
WORKER_CORES = 4
IDLE_TIMEOUT = 10            # s a worker without a task waits (WQ_IDLETIMEOUT)
FACTORY_CYCLE = 30.0         # work_queue_factory's look at the demand (fixed in CCTools 8)
CATALOG_UPDATE_PERIOD = 60.0  # a Work Queue manager's catalog updates (fixed in CCTools 8)
# The goal: every pilot running within two factory cycles plus one catalog update.
GOAL = 2 * FACTORY_CYCLE + CATALOG_UPDATE_PERIOD
# Bounds of the waits, from the same mechanisms: a burst must be seen (one catalog
# update), acted on (a cycle), and started (Slurm plus the workers' catalog look-up);
# the fleet empties after a stale look (update + cycle) and the idle timeout.
RUNNING_BOUND = 3 * GOAL
EMPTY_BOUND = 2 * (CATALOG_UPDATE_PERIOD + FACTORY_CYCLE) + IDLE_TIMEOUT + 60
SAMPLE_INTERVAL = 1.0


def _slurm_cluster_class():
    sys.path.insert(0, os.path.join(REPO, "tests"))
    try:
        from slurm_cluster import SlurmCluster  # the tests' private single-node Slurm
    finally:
        sys.path.pop(0)
    return SlurmCluster


class Timeline:
    """(seconds since the burst, worker jobs in squeue, pilots running) every second."""

    def __init__(self, spool: str, squeue) -> None:
        self.spool = spool
        self.squeue = squeue
        self.start = time.monotonic()
        self.rows: List[Tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    def _sample(self) -> None:
        try:
            jobs = self.squeue()
        except Exception:   # squeue busy for a moment: the next sample counts
            return
        running = read_stat(self.spool).get("RUNNING", 0)
        self.rows.append((round(time.monotonic() - self.start, 1), jobs, running))

    def stop(self) -> List[Tuple[float, int, int]]:
        self._stop.set()
        self._thread.join(10)
        self._sample()   # the state the caller waited for
        return self.rows


def _changes(rows: List[Tuple[float, int, int]]) -> List[List[float]]:
    """The timeline where something changed (the report's workers-over-time table)."""
    kept, last = [], None
    for when, jobs, running in rows:
        if (jobs, running) != last:
            kept.append([when, jobs, running])
            last = (jobs, running)
    return kept


def fleet(target: Target, ctx) -> Dict[str, object]:
    if target.name != "awq":
        raise BenchError("the fleet scenario runs our master only")
    sizes = [16] if ctx.quick else [16, 64, 200]
    SlurmCluster = _slurm_cluster_class()
    root = ctx.workdir("fleet")
    pilot = write_executable(os.path.join(root, "pilot.sh"),
                             '#!/bin/sh\nwhile [ ! -e "$1" ]; do sleep 1; done\n')
    figures: List[Dict[str, object]] = []
    timelines: Dict[str, List[List[float]]] = {}
    notes: List[str] = []
    with SlurmCluster(cpus=max(sizes) + WORKER_CORES) as slurm:
        for size in sizes:
            workers = size // WORKER_CORES
            for route in ("factory", "start-workers"):
                procs = Processes(ctx.workdir("fleet-%s-%d" % (route, size)))
                try:
                    took, emptied, rows = _one_burst(target, slurm, procs, pilot, size, workers,
                                                     route)
                finally:
                    procs.stop_all()
                name = "%d pilots through %s: condor_submit -> all running" % (size, route)
                goal = GOAL if (route == "factory" and size == max(sizes)) else None
                figures.append(figure(name, [took], "s", None,
                                      target="within 2 factory cycles + 1 catalog update "
                                             "(%.0f s)" % GOAL if goal else None,
                                      limit=goal, time_like=False))
                if emptied is not None:
                    figures.append(figure("%d pilots through %s: pilots ended -> fleet at its "
                                          "minimum (0)" % (size, route), [emptied], "s", None,
                                          time_like=False))
                timelines["%s %d" % (route, size)] = _changes(rows)
    notes.append("the factory: WQ_FACTORY_TYPE=slurm, WQ_FACTORY_MIN=0, WQ_FACTORY_MAX=N/%d "
                 "workers of %d cores, WQ_IDLETIMEOUT=%d, the catalog route (the master's "
                 "default password); its cycle is %.0f s and the master's catalog updates "
                 "come every %.0f s (both fixed in CCTools 8)"
                 % (WORKER_CORES, WORKER_CORES, IDLE_TIMEOUT, FACTORY_CYCLE,
                    CATALOG_UPDATE_PERIOD))
    notes.append("start-workers: N/%d workers of %d cores started before condor_submit, "
                 "straight to the master (WQ_NUM_FOREMEN=0); they stay (restart loops), so "
                 "they have no return to a minimum" % (WORKER_CORES, WORKER_CORES))
    notes.append("the Slurm node advertises %d CPUs on this %d-CPU box: the pilots sleep"
                  % (max(sizes) + WORKER_CORES, os.cpu_count() or 0))
    return {"figures": figures, "notes": notes, "timelines": timelines,
            "command": "python -m benchmarks --only fleet"}


def _one_burst(target: Target, slurm, procs: Processes, pilot: str, size: int, workers: int,
               route: str) -> Tuple[float, Optional[float], List[Tuple[float, int, int]]]:
    root = procs.logdir
    spool = os.path.join(root, "spool")
    gate = os.path.join(root, "release")
    catalog_port, master_port = free_port(), free_port()
    project = "awq_bench_%d_%d" % (os.getpid(), size)
    history = os.path.join(root, "catalog")
    os.makedirs(history)
    procs.start([shutil.which("catalog_server") or "catalog_server", "-p", str(catalog_port),
                 "-I", "127.0.0.1", "-H", history, "--update-host=127.0.0.1"], "catalog")
    wait_until(lambda: _answers(catalog_port), 30, "catalog_server")
    env = dict(target.spool_env(spool), SLURM_CONF=slurm.env["SLURM_CONF"],
               AWQ_TEST_SLURM_CLUSTER=slurm.directory)
    master = procs.start([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", spool,
                          "--port", str(master_port), "--catalog-host", "127.0.0.1",
                          "--catalog-port", str(catalog_port), "--project-name", project],
                         "master", env=env, cwd=REPO)
    wait_until(lambda: read_stat(spool).get("TIMESTAMP") or master.poll() is not None, 60,
               "the master's heartbeat")
    if master.poll() is not None:
        raise BenchError("the master exited: " + procs.log_of(master)[-1000:])
    script_env = dict(env, WQ_WORKDIR=os.path.join(root, "wq"), WQ_DRAIN=os.path.join(root, "drain"),
                      WQ_MASTER="127.0.0.1:%d" % master_port, WQ_WORKER_CORES=str(WORKER_CORES),
                      WQ_IDLETIMEOUT=str(IDLE_TIMEOUT), WQ_NUM_FOREMEN="0",
                      WQ_NUM_WORKERS=str(workers), WQ_FACTORY_TYPE="slurm", WQ_FACTORY_MIN="0",
                      WQ_FACTORY_MAX=str(workers), WQ_CATALOG="127.0.0.1:%d" % catalog_port,
                      WQ_PROJECT_NAME=project)
    stop = "stop-factory" if route == "factory" else "stop-workers"
    squeue = (lambda: len(slurm.jobs())) if route == "factory" else \
        (lambda: int(_script(script_env, "count-workers").stdout.strip() or 0))
    try:
        _script(script_env, "start-factory" if route == "factory" else "start-workers")
        if route == "start-workers":
            wait_until(lambda: _connected(spool) >= workers, 120, "the workers to connect",
                       interval=0.5)
        timeline = Timeline(spool, squeue)
        started = time.monotonic()
        result = run_bounded(["condor_submit"], env, root, capture=True,
                             input="executable = %s\narguments = %s\nqueue %d\n"
                             % (pilot, gate, size))
        if result.returncode != 0:
            raise BenchError("condor_submit failed: " + result.stderr[-500:])
        wait_until(lambda: read_stat(spool).get("RUNNING", 0) >= size, RUNNING_BOUND,
                   "all %d pilots running through %s" % (size, route), interval=0.2)
        took = time.monotonic() - started
        with open(gate, "w"):
            pass
        ended = time.monotonic()
        emptied = None
        if route == "factory":
            wait_until(lambda: not slurm.jobs(), EMPTY_BOUND, "the fleet back at 0",
                       interval=0.5)
            emptied = time.monotonic() - ended
        else:
            wait_until(lambda: read_stat(spool).get("RUNNING", 1) == 0, 60, "the pilots' end",
                       interval=0.2)
        rows = timeline.stop()
    finally:
        _script(script_env, stop, check=False)
    return took, emptied, rows


def _answers(port: int) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/query.text" % port, timeout=5):
            return True
    except OSError:
        return False


def _connected(spool: str) -> int:
    import json
    try:
        with open(os.path.join(spool, "stat", "master.json")) as handle:
            return int(json.load(handle).get("workqueue", {}).get("workers_connected", 0))
    except (OSError, ValueError):
        return 0


def _script(env: Dict[str, str], command: str, check: bool = True):
    result = run_bounded([SCRIPT, command], env, REPO, timeout=120, capture=True)
    if check and result.returncode != 0:
        raise BenchError("alien_wq_worker.sh %s failed: %s" % (command, result.stderr[-500:]))
    return result
