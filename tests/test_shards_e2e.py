"""Several Work Queue managers behind the one front (awq/shards.py), with real workers."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import (JOB_DONE_WITHIN, JOB_RUNS_WITHIN, LOAD_ALLOWANCE, WORKER_JOINS_WITHIN,
                      write_script)
from test_e2e import gated_job, q_lines, submit_ok
from awq.publish import STATUS_INTERVAL
from awq.shards import MOVE_AFTER
from awq.spool import Spool
from testkit import wait_until

pytestmark = pytest.mark.e2e

MANAGERS = 2


def running_count(tool) -> int:
    return len(q_lines(tool, "-constraint", "JobStatus == 2", "-af", "ClusterId"))


def submit_gated(tool, tmp_path, count: int) -> int:
    job = gated_job(tmp_path)
    return submit_ok(tool, "executable = %s\narguments = $(Process)\noutput = %s/out.$(Process)\n"
                           "queue %d\n" % (job, tmp_path, count))


def release_and_wait_for_outputs(tmp_path, count: int) -> None:
    """Let submit_gated's jobs finish; each writes its line to its output."""
    (tmp_path / "go").write_text("")
    for proc in range(count):
        path = tmp_path / ("out.%d" % proc)
        wait_until(lambda: path.exists() and "finished %d" % proc in path.read_text(),
                   JOB_DONE_WITHIN, what="job %d's output" % proc)


def test_the_jobs_fill_the_workers_of_every_manager_and_finish(tmp_path, start_master,
                                                                start_worker, tool):
    """Two managers, a 2-core worker on each (the front hands workers out in turn): four
    pilots run at once only if tasks go to both managers, and each finishes once."""
    master = start_master("--managers", str(MANAGERS))
    for _ in range(MANAGERS):
        start_worker(master.port, cores=2)
    submit_gated(tool, tmp_path, 4)
    wait_until(lambda: running_count(tool) == 4, JOB_RUNS_WITHIN + WORKER_JOINS_WITHIN,
               what="four jobs running on two 2-core workers of two managers")
    release_and_wait_for_outputs(tmp_path, 4)
    wait_until(lambda: not q_lines(tool, "-af", "ClusterId"), JOB_DONE_WITHIN,
               what="the queue to empty")
    log = master.log()
    assert "2 Work Queue managers share the tasks" in log
    assert log.count("-> running") >= 4 and "Traceback" not in log


def test_a_killed_master_with_several_managers_runs_every_job_again(tmp_path, start_master,
                                                                     start_worker, tool):
    """kill -9 and a restart on the same port: the workers come back through the front to
    the new managers and every job runs again, none twice at once."""
    master = start_master("--managers", "3")
    port = master.port
    for _ in range(3):
        start_worker(port, cores=2)
    submit_gated(tool, tmp_path, 5)
    wait_until(lambda: running_count(tool) == 5, JOB_RUNS_WITHIN + WORKER_JOINS_WITHIN,
               what="five jobs running")
    master.stop(signal.SIGKILL)
    again = start_master("--managers", "3", "--port", str(port))
    # The workers notice the old master gone at their next read, then reconnect.
    wait_until(lambda: "running" in again.log() and running_count(tool) == 5,
               (JOB_RUNS_WITHIN + WORKER_JOINS_WITHIN) * LOAD_ALLOWANCE,
               what="all five running again")
    (tmp_path / "go").write_text("")
    wait_until(lambda: not q_lines(tool, "-af", "ClusterId"), JOB_DONE_WITHIN * 2,
               what="the queue to empty")
    assert "Traceback" not in again.log()


def test_tasks_left_waiting_in_a_manager_without_workers_move_to_one_with_free_cores(
        tmp_path, start_master, start_worker, procs, tool):
    """Two pilots run on the only worker (first manager); a second worker joins the
    second manager (the front gives it to the one holding fewer). When the first is
    stopped (it ends its pilots and leaves), they go back to waiting in a manager with no
    worker left: they must be handed over anew to the second."""
    master = start_master("--managers", "2")
    first = start_worker(master.port, cores=4)
    submit_gated(tool, tmp_path, 2)
    wait_until(lambda: running_count(tool) == 2, JOB_RUNS_WITHIN + WORKER_JOINS_WITHIN,
               what="two jobs running on the first worker")
    start_worker(master.port, cores=4)
    wait_until(lambda: Spool(master.workdir).published.read_master_status().get(
        "workqueue", {}).get("total_cores") == 8,
        (WORKER_JOINS_WITHIN + STATUS_INTERVAL) * LOAD_ALLOWANCE, what="the second worker")
    # SIGTERM: a worker killed with SIGKILL leaves its pilots, which hold its connection.
    procs.stop(first)
    # Work Queue sees the worker gone at its next read; the tasks move MOVE_AFTER s after
    # they are seen waiting; then they start as any task does.
    wait_until(lambda: "handed over anew to a Work Queue manager with free cores" in master.log(),
               (WORKER_JOINS_WITHIN + MOVE_AFTER) * LOAD_ALLOWANCE + JOB_RUNS_WITHIN,
               what="the waiting tasks handed over anew to the manager with the new worker")
    release_and_wait_for_outputs(tmp_path, 2)
    assert "Traceback" not in master.log()


def test_a_task_too_big_for_its_managers_workers_moves_to_one_whose_worker_fits(
        tmp_path, start_master, start_worker, tool):
    """A 4-core pilot placed while only a 1-core worker was connected (to the first
    manager) waits there; once a 4-core worker joins (the front gives it to the manager
    holding fewer, the second), the pilot is handed over anew and runs there."""
    master = start_master("--managers", "2", "--debug")  # --debug: the placements
    start_worker(master.port, cores=1)
    # Placed once the master has seen the small worker's core: where that free core is.
    wait_until(lambda: Spool(master.workdir).published.read_master_status().get(
        "workqueue", {}).get("total_cores") == 1,
        (WORKER_JOINS_WITHIN + STATUS_INTERVAL) * LOAD_ALLOWANCE, what="the 1-core worker")
    pilot = write_script(tmp_path / "pilot.sh", "echo four cores\n")
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nrequest_cpus = 4\nqueue\n"
                % (pilot, out)).returncode == 0
    wait_until(lambda: "1.0: to Work Queue manager 0 (free cores [1, 0])" in master.log(),
               JOB_RUNS_WITHIN, what="the pilot placed with the 1-core worker's manager")
    start_worker(master.port, cores=4)
    wait_until(lambda: out.exists() and out.read_text() == "four cores\n",
               JOB_DONE_WITHIN + MOVE_AFTER * LOAD_ALLOWANCE,
               what="the pilot to run on the 4-core worker of the other manager")
    log = master.log()
    assert "handed over anew to a Work Queue manager with free cores" in log
    assert "to Work Queue manager 1 (free cores [1, 4])" in log
