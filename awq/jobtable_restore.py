"""The restart path: a master comes back from its last snapshot and its start journal.

Kept apart from the job table, whose class is the transitions of a running master:
a restart loads jobs as the snapshot has them, requeues the ones that were running,
and counts the starts the snapshot missed, all through the store's public methods.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from awq import classad, jobs
from awq.jobs import FINAL_STATES, Job, JobId, JobStatus
from awq.jobstore import JobStore, updated

log = logging.getLogger("awq.master")


def restore(table: JobStore, state: Mapping[str, Any]) -> List[Job]:
    """Load a snapshot; running jobs are requeued. Returns the finished jobs it held."""
    kept, finished = _sort_restored(state["jobs"].values(), int(time.time()))
    for job in kept:
        table.put(job)
    table.max_cluster_id = max([int(state.get("max_cluster_id", 0))]
                               + [jobs.job_id(job)[0] for job in kept])
    table.mark_changed()  # the next snapshot leaves out the finished jobs
    return finished


def count_journaled_start(table: JobStore, jid: JobId, starts: int, started_at: int,
                          host: Optional[str]) -> bool:
    """A start the restored snapshot missed (the master died after the job started and
    before its next snapshot; the start journal kept it). NumJobStarts takes the
    journal's count when larger; a job the snapshot had idle ran meanwhile, so it
    comes back as a job that was running does. Returns whether the job changed."""
    job = table.job(jid)
    known = int(job.get("NumJobStarts", 0))
    if starts <= known:
        return False
    updates: Dict[str, Any] = {"NumJobStarts": starts, "JobRunCount": starts,
                               "JobStartDate": job.get("JobStartDate", started_at)}
    if started_at >= int(job.get("JobCurrentStartDate", 0)):
        updates.update(JobCurrentStartDate=started_at,
                       JobLastStartDate=job.get("JobCurrentStartDate"))
    if job.get("JobStatus") == JobStatus.IDLE:
        updates["LastJobStatus"] = int(JobStatus.RUNNING)
        if host:
            updates["LastRemoteHost"] = host
    table.put(updated(job, updates))
    log.info("job %s: %d starts, not the snapshot's %d: the start journal kept what the "
             "master saw before it died", jobs.format_job_id(jid), starts, known)
    return True


def left_in_queue(job: Job, now: float) -> bool:
    """Whether a finished job stays in the queue (LeaveJobInQueue), at restart or retire."""
    if "LeaveJobInQueue" not in job:
        return False
    try:
        return classad.is_true(classad.evaluate_attr(job, "LeaveJobInQueue", now)) is True
    except Exception:  # one job's data must never stop the loop: let it leave
        return False


def _sort_restored(saved: Iterable[Job], now: int) -> Tuple[List[Job], List[Job]]:
    """A snapshot's jobs at start: (the jobs the table keeps, running ones made idle again;
    the finished jobs, for history)."""
    kept: List[Job] = []
    finished: List[Job] = []
    requeued = 0
    for job in saved:
        status = job.get("JobStatus")
        if status in FINAL_STATES and not left_in_queue(job, now):
            finished.append(job)
        elif status == JobStatus.RUNNING:
            kept.append(_requeued(job, now))
            requeued += 1
        else:
            kept.append(job)
    log.info("recovered %d jobs from the snapshot (%d requeued after running)",
             len(kept), requeued)
    return kept, finished


def _requeued(job: Job, now: int) -> Job:
    """A job that was running when the master died: idle again. Pilots are safe to rerun;
    NumJobStarts will show this was another start."""
    job = dict(job, JobStatus=int(JobStatus.IDLE), EnteredCurrentStatus=now,
               LastJobStatus=int(JobStatus.RUNNING))
    host = job.pop("RemoteHost", None)
    if host:
        job["LastRemoteHost"] = host
    return job
