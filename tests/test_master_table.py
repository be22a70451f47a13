"""The master's job-table rules alone (no Work Queue calls are reached here)."""

from __future__ import annotations

from awq import classad, jobs
from awq.master import Master
from awq.spool import Spool


class NoTasks:
    """Enough of awq.workqueue.Backend for rules that touch no task."""

    cancelled: list = []

    def cancel(self, task_id: int) -> None:
        self.cancelled.append(task_id)


def master_with(tmp_path, job: dict) -> Master:
    master = Master(Spool(str(tmp_path / "spool"), create=True), NoTasks(), periodic_interval=0.001)
    master.table[jobs.job_id(job)] = job
    return master


def ad(**extra) -> dict:
    base = {"ClusterId": 1, "ProcId": 0, "JobStatus": jobs.JobStatus.IDLE, "QDate": 1, "Cmd": "/bin/true",
            "EnteredCurrentStatus": 1}
    base.update(extra)
    return base


def test_periodic_release_clears_the_hold(tmp_path):
    master = master_with(tmp_path, ad(JobStatus=jobs.JobStatus.HELD, HoldReason="x", HoldReasonCode=3,
                                      PeriodicRelease=classad.Expr("JobStatus == 5")))
    master.apply_periodic_expressions()
    job = master.table[(1, 0)]
    assert job["JobStatus"] == jobs.JobStatus.IDLE and "HoldReason" not in job and job["LastJobStatus"] == 5


def test_false_or_undefined_expressions_change_nothing(tmp_path):
    master = master_with(tmp_path, ad(PeriodicHold=classad.Expr("Missing > 3"),
                                      PeriodicRemove=classad.Expr("CurrentTime - QDate < 0")))
    master.apply_periodic_expressions()
    assert master.table[(1, 0)]["JobStatus"] == jobs.JobStatus.IDLE and not master.dirty


def test_running_job_held_by_expression_loses_its_task(tmp_path):
    master = master_with(tmp_path, ad(JobStatus=jobs.JobStatus.RUNNING, PeriodicHold=True))
    master.task_of[(1, 0)] = 42
    master.job_of_task[42] = (1, 0)
    master.apply_periodic_expressions()
    assert master.table[(1, 0)]["JobStatus"] == jobs.JobStatus.HELD
    assert 42 in NoTasks.cancelled and (1, 0) not in master.task_of
