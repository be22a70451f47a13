"""The queue as condor_q shows it: the master's published table merged with what it has
not taken yet.

condor_q never talks to the master. It reads the snapshot, adds the records
still waiting in queue/ (jobs condor_submit has accepted but the master has
not taken), and shows jobs with a removal request waiting as removed (X), as
HTCondor does until they leave the queue.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List, Optional

    from awq.spool import Spool

from awq import jobs
from awq.jobs import Job
from awq.jobset import JobSet
from awq.spool import SpoolError


class QueueView:
    """What condor_q reads: jobs, a JobSet in job id order (columns are read only when
    asked for; .ads() for dicts); heartbeat, stat/latest's TIMESTAMP or None;
    master_pid, the PID in master.lock; master_alive, whether master.lock is held."""

    __slots__ = ("jobs", "heartbeat", "master_pid", "master_alive")

    def __init__(self, job_set: JobSet, heartbeat: Optional[float], master_pid: Optional[int],
                 master_alive: bool):
        self.jobs = job_set
        self.heartbeat = heartbeat
        self.master_pid = master_pid
        self.master_alive = master_alive


def read_queue_view(spool: Spool) -> QueueView:
    """The master's table, plus records it has not taken yet, as condor_q shows them.

    An untaken record passes the master's own validation first, so condor_q
    never lists a job the master will refuse.
    """
    columns = spool.published.snapshot_columns()
    job_set = JobSet(columns)
    untaken = [job for name in spool.records.pending() for job in _untaken_jobs(spool, name)]
    if untaken:
        known = set(job_set.ids())
        untaken = [job for job in untaken if jobs.job_id(job) not in known]
        job_set = _in_id_order(JobSet(columns, sorted(untaken, key=jobs.job_id)))
    removals = spool.requests.pending_removals()
    if removals:
        where = {jid: index for index, jid in enumerate(job_set.ids())}
        status = job_set.column("JobStatus") or []
        for _, jid in removals:
            index = where.get(jid)
            if index is not None and status[index] not in jobs.FINAL_STATES:
                job_set.set_value(index, "JobStatus", int(jobs.JobStatus.REMOVED))
    heartbeat = spool.published.read_stat().get("TIMESTAMP")
    return QueueView(job_set, float(heartbeat) if heartbeat is not None else None,
                     spool.master_files.pid(), spool.master_files.is_running())


def _untaken_jobs(spool: Spool, name: str) -> List[Job]:
    try:
        cluster, content = spool.records.read(name)
        if cluster is None:
            return []  # an upstream description: it has no job ad until taken
        return [jobs.validate_job(job, cluster) for job in content]
    except (SpoolError, OSError, jobs.InvalidJob):
        return []  # vanished (taken) meanwhile, or refused: the master reports it


def _in_id_order(job_set: JobSet) -> JobSet:
    ids = job_set.ids()
    if all(a < b for a, b in zip(ids, ids[1:])):
        return job_set
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return JobSet.from_ads(job_set.ads(order))
