"""The master's job table: the one place a job changes state.

Every transition sets JobStatus, LastJobStatus and EnteredCurrentStatus the
same way, writes the HTCondor user-log event and the master-log line that go
with it, and marks the table dirty so the next snapshot carries it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from awq import jobs, userlog
from awq.jobs import FINAL_STATES, Job, JobId, JobStatus

log = logging.getLogger("awq.master")

HOLD_CODE_WORK_QUEUE = 12    # HTCondor: "failed to transfer files"
HOLD_CODE_PERIODIC = 3       # HTCondor: "the PeriodicHold expression became true"


class JobTable:
    def __init__(self) -> None:
        self.jobs: Dict[JobId, Job] = {}
        self.max_cluster_id = 0
        self.dirty = False

    # -- reading

    def __contains__(self, jid: JobId) -> bool:
        return jid in self.jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def status(self, jid: JobId) -> Optional[int]:
        job = self.jobs.get(jid)
        return job.get("JobStatus") if job is not None else None

    def with_status(self, status: JobStatus) -> Iterator[JobId]:
        return (jid for jid, job in self.jobs.items() if job.get("JobStatus") == status)

    def counts(self) -> Tuple[int, int]:
        """(idle, running), as upstream's stat file has them."""
        by_status = jobs.count_by_status(self.jobs.values())
        return by_status[JobStatus.IDLE], by_status[JobStatus.RUNNING]

    def active(self) -> bool:
        return any(job.get("JobStatus") in (JobStatus.IDLE, JobStatus.RUNNING)
                   for job in self.jobs.values())

    # -- filling

    def restore(self, state: Dict[str, Any]) -> List[Job]:
        """Load a snapshot; running jobs are requeued. Returns the finished jobs it held."""
        now = int(time.time())
        self.max_cluster_id = int(state.get("max_cluster_id", 0))
        finished = []
        requeued = 0
        for jid, job in state["jobs"].items():
            status = job.get("JobStatus")
            if status in FINAL_STATES:
                finished.append(job)
                continue
            if status == JobStatus.RUNNING:
                # Pilots are safe to rerun; NumJobStarts shows this was a second start.
                job = dict(job, JobStatus=int(JobStatus.IDLE), EnteredCurrentStatus=now,
                           LastJobStatus=int(JobStatus.RUNNING))
                requeued += 1
            self.jobs[jid] = job
            self.max_cluster_id = max(self.max_cluster_id, jid[0])
        self.dirty = True
        log.info("recovered %d jobs from the snapshot (%d requeued after running)",
                 len(self.jobs), requeued)
        return finished

    def add(self, job: Job) -> bool:
        """Take a new job from the spool; False if it is already here (taken before a crash)."""
        jid = jobs.job_id(job)
        if jid in self.jobs:
            return False
        self.jobs[jid] = job
        self.max_cluster_id = max(self.max_cluster_id, jid[0])
        userlog.write_event(job, userlog.SUBMIT, "Job submitted from host: <127.0.0.1>")
        self.dirty = True
        return True

    def retire_finished(self) -> List[Job]:
        """Take completed and removed jobs out; they belong to history now."""
        finished = [jid for jid, job in self.jobs.items() if job.get("JobStatus") in FINAL_STATES]
        retired = [self.jobs.pop(jid) for jid in finished]
        if retired:
            self.dirty = True
        return retired

    def snapshot(self) -> Dict[str, Any]:
        return {"jobs": self.jobs, "max_cluster_id": self.max_cluster_id}

    # -- transitions

    def mark_running(self, jid: JobId) -> None:
        now = int(time.time())
        job = self.jobs[jid]
        self._set_status(jid, JobStatus.RUNNING, NumJobStarts=int(job.get("NumJobStarts", 0)) + 1,
                         JobCurrentStartDate=now, JobStartDate=job.get("JobStartDate", now))
        userlog.write_event(self.jobs[jid], userlog.EXECUTE, "Job executing on host: <127.0.0.1>")

    def requeue(self, jid: JobId, reason: str) -> None:
        """A running job lost its worker: idle again, to be started anew."""
        self._set_status(jid, JobStatus.IDLE)
        log.info("job %s requeued: %s", jobs.format_job_id(jid), reason)

    def complete(self, jid: JobId, exit_code: int) -> None:
        self._set_status(jid, JobStatus.COMPLETED, ExitCode=exit_code, ExitBySignal=False,
                         CompletionDate=int(time.time()))
        userlog.write_event(self.jobs[jid], userlog.TERMINATED, userlog.terminated_body(exit_code))
        log.info("job %s completed, exit code %d", jobs.format_job_id(jid), exit_code)

    def hold(self, jid: JobId, reason: str, code: int = HOLD_CODE_WORK_QUEUE) -> None:
        self._set_status(jid, JobStatus.HELD, HoldReason=reason, HoldReasonCode=code)
        userlog.write_event(self.jobs[jid], userlog.HELD, "Job was held.\n\t%s" % reason)
        log.warning("job %s held: %s", jobs.format_job_id(jid), reason)

    def release(self, jid: JobId, reason: str) -> None:
        self._set_status(jid, JobStatus.IDLE, HoldReason=None, HoldReasonCode=None)
        log.info("job %s released: %s", jobs.format_job_id(jid), reason)

    def remove(self, jid: JobId, reason: str) -> None:
        self._set_status(jid, JobStatus.REMOVED, RemoveReason=reason)
        userlog.write_event(self.jobs[jid], userlog.ABORTED, "Job was aborted.\n\t%s" % reason)
        log.info("job %s removed: %s", jobs.format_job_id(jid), reason)

    def _set_status(self, jid: JobId, status: JobStatus, **attributes: Any) -> None:
        job = dict(self.jobs[jid])
        for name, value in attributes.items():
            if value is None:
                job.pop(name, None)  # e.g. HoldReason once a job is released
            else:
                job[name] = value
        job["LastJobStatus"] = job.get("JobStatus")
        job["JobStatus"] = int(status)  # a plain int: the snapshot holds data, not our classes
        job["EnteredCurrentStatus"] = int(time.time())
        self.jobs[jid] = job
        self.dirty = True
