"""The fleet follows demand on a real (private, single-node) Slurm, with the master's password on.

The master reports to a catalog_server of the test's own; `alien_wq_worker.sh
start-factory` runs work_queue_factory -T slurm, which (Debian's CCTools 8 cannot
query a password-protected master directly) reads the master's demand there and
submits workers with sbatch; the workers find the master through the same catalog.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Dict, List, Tuple

from conftest import JOB_RUNS_WITHIN, LOAD_ALLOWANCE, free_port, wait_until, write_script
from slurm_cluster import (JOB_END_TIMEOUT, JOB_START_TIMEOUT, MARKER_VARIABLE, MESSAGE_TIMEOUT,
                           slurm_fixture)
from test_fleet_master import CATALOG_UPDATE_PERIOD, start_catalog
from test_worker_script import script_factory  # noqa: F401 (fixture)

# 8 two-core workers fit the node exactly.
slurm_node = slurm_fixture(cpus=16)

FACTORY_CYCLE = 30.0        # work_queue_factory looks at demand every 30 s (fixed in CCTools 8)
IDLE_TIMEOUT = 15           # s a worker without a task waits before it exits (WQ_IDLETIMEOUT)
WORKERS, WORKER_CORES = 8, 2
PILOTS = WORKERS * WORKER_CORES
# From condor_submit to every pilot running: the master's next catalog update, the
# factory's next look, sbatch to a running worker, the worker finding the master in the
# catalog (one query as it starts), then a job's way to running once its worker is there.
ALL_RUNNING_BOUND = CATALOG_UPDATE_PERIOD + FACTORY_CYCLE + JOB_START_TIMEOUT + JOB_RUNS_WITHIN
# A master killed and restarted on its port: its workers look it up again in the catalog.
RECONNECT_BOUND = 60.0
# After condor_rm -all: the catalog may still show the old demand for one update period,
# the factory acts on it at its next cycle, a worker so started waits its idle timeout,
# and its batch job then leaves squeue. The 4 minutes holds that sum.
FLEET_EMPTY_BOUND = max(240.0, CATALOG_UPDATE_PERIOD + FACTORY_CYCLE + JOB_START_TIMEOUT
                        + IDLE_TIMEOUT + JOB_END_TIMEOUT)


def statuses(tool, cluster: int) -> List[int]:
    out = tool("condor_q", str(cluster), "-af", "JobStatus").stdout.split()
    history = tool("condor_history", str(cluster), "-af", "JobStatus").stdout.split()
    return sorted(int(s) for s in out + history)


SAMPLE_INTERVAL = 1.0   # s between FleetWatch's looks at squeue
# A sample is a pause and one squeue, which Slurm answers within its MESSAGE_TIMEOUT.
SAMPLE_WITHIN = SAMPLE_INTERVAL * LOAD_ALLOWANCE + MESSAGE_TIMEOUT


class FleetWatch:
    """Samples our batch jobs in squeue every SAMPLE_INTERVAL, with what the queue held then."""

    def __init__(self, node) -> None:
        self.node = node
        self.samples: List[Tuple[float, int, str]] = []
        self.phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            try:
                count = len(self.node.jobs())
            except Exception:   # squeue busy for a moment: the next sample counts
                continue
            self.samples.append((time.monotonic(), count, self.phase))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def counts(self, phase: str) -> List[int]:
        return [count for _, count, seen in self.samples if seen == phase]


def fleet_env(node, catalog_port: int, project: str, workdir: str) -> Dict[str, str]:
    return {"SLURM_CONF": node.env["SLURM_CONF"], MARKER_VARIABLE: node.env[MARKER_VARIABLE],
            "WQ_FACTORY_TYPE": "slurm", "WQ_WORKER_CORES": str(WORKER_CORES),
            "WQ_IDLETIMEOUT": str(IDLE_TIMEOUT), "WQ_CATALOG": "127.0.0.1:%d" % catalog_port,
            "WQ_PROJECT_NAME": project, "WQ_INSECURE": "", "AWQ_WORKDIR": workdir}


def test_a_burst_grows_the_fleet_through_sbatch_and_it_shrinks_when_the_jobs_are_gone(
        slurm_node, script_factory, procs, tmp_path, start_master, tool, workdir):
    catalog_port = start_catalog(procs, tmp_path)
    project = "awq_slurm_%d" % os.getpid()
    port = free_port()
    master_args = ("--port", str(port), "--catalog-host", "127.0.0.1", "--catalog-port",
                   str(catalog_port), "--project-name", project)
    master = start_master(*master_args)   # its default password, made in the spool
    script = script_factory(port, WQ_FACTORY_MIN="0", WQ_FACTORY_MAX=str(WORKERS),
                            **fleet_env(slurm_node, catalog_port, project, workdir))
    result = script.run("start-factory")
    assert result.returncode == 0, result.stderr
    assert "route catalog 127.0.0.1:%d project %s" % (catalog_port, project) in \
        script.run("status").stdout
    gate_a, gate_b = tmp_path / "release-a", tmp_path / "release-b"
    pilot = write_script(tmp_path / "pilot.sh", 'while [ ! -e "$1" ]; do sleep 0.5; done\n')
    watch = FleetWatch(slurm_node)
    try:
        submitted = time.monotonic()
        assert tool("condor_submit", stdin="executable = %s\narguments = %s\nqueue %d\n"
                    % (pilot, gate_a, PILOTS)).returncode == 0
        watch.phase = "burst"
        wait_until(lambda: statuses(tool, 1) == [2] * PILOTS, ALL_RUNNING_BOUND, interval=1,
                   what="all %d pilots running" % PILOTS)
        took = time.monotonic() - submitted
        # More jobs wait while the fleet is full: it must stay at its maximum.
        assert tool("condor_submit", stdin="executable = %s\narguments = %s\nqueue %d\n"
                    % (pilot, gate_b, WORKERS)).returncode == 0
        watch.phase = "full"
        wait_until(lambda: len(watch.counts("full")) >= 3, 3 * SAMPLE_WITHIN, interval=0.5,
                   what="three samples of the full fleet")
        # kill -9 of the master in the middle; restarted on its port, it loses no job.
        master.stop(signal.SIGKILL)
        watch.phase = "restart"
        master = start_master(*master_args)
        # Which 16 of the 24 run after the restart is the master's choice; none is lost.
        wait_until(lambda: sorted(statuses(tool, 1) + statuses(tool, 2)) ==
                   [1] * WORKERS + [2] * PILOTS, RECONNECT_BOUND, interval=1,
                   what="16 pilots running again after the master's restart, 8 waiting")
        gate_a.write_text("")
        watch.phase = "drain"
        wait_until(lambda: statuses(tool, 1) == [4] * PILOTS, RECONNECT_BOUND, interval=1,
                   what="every pilot of the burst to complete")
        wait_until(lambda: statuses(tool, 2) == [2] * WORKERS, RECONNECT_BOUND, interval=1,
                   what="the waiting jobs to run")
        assert tool("condor_rm", "-all").returncode == 0
        watch.phase = "removed"
        wait_until(lambda: not slurm_node.jobs(), FLEET_EMPTY_BOUND, interval=1,
                   what="no worker job left in Slurm after condor_rm -all")
    finally:
        watch.stop()
        gate_a.write_text("")
        gate_b.write_text("")
    assert took < ALL_RUNNING_BOUND
    # The fleet never shrank while jobs waited (its minimum is 0, its maximum 8).
    assert set(watch.counts("full")) == {WORKERS}, watch.samples
    assert min(watch.counts("restart") + watch.counts("drain")) > 0, watch.samples
    assert max(count for _, count, _ in watch.samples) == WORKERS
    assert "recovered %d jobs from the snapshot" % (PILOTS + WORKERS) in master.log()
    changes, last = [], None
    for when, count, phase in watch.samples:
        if count != last:
            changes.append("%+.0f s %s: %d" % (when - submitted, phase, count))
            last = count
    print("all %d running %.0f s after condor_submit; worker jobs: %s"
          % (PILOTS, took, ", ".join(changes)))


def test_stop_factory_leaves_no_batch_job_of_ours(slurm_node, script_factory, procs, tmp_path,
                                                  start_master, workdir):
    catalog_port = start_catalog(procs, tmp_path)
    project = "awq_slurm_stop_%d" % os.getpid()
    master = start_master("--catalog-host", "127.0.0.1", "--catalog-port", str(catalog_port),
                          "--project-name", project)
    # A minimum of 2: the factory submits them in its first cycle, whatever is queued.
    script = script_factory(master.port, WQ_FACTORY_MIN="2", WQ_FACTORY_MAX="2",
                            **fleet_env(slurm_node, catalog_port, project, workdir))
    assert script.run("start-factory").returncode == 0
    wait_until(lambda: [j.state for j in slurm_node.jobs()] == ["RUNNING"] * 2,
               FACTORY_CYCLE + JOB_START_TIMEOUT, interval=0.5, what="two worker jobs running")
    assert script.run("stop-factory").returncode == 0
    slurm_node.wait_for_no_active_jobs(JOB_END_TIMEOUT)
