"""The master's job table: the one place a job changes state.

Every transition sets JobStatus, LastJobStatus and EnteredCurrentStatus the
same way, writes the HTCondor user-log event and the master-log line that go
with it, and marks the table dirty so the next snapshot carries it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from awq import classad, jobs, userlog
from awq.jobs import FINAL_STATES, Job, JobId, JobStatus

log = logging.getLogger("awq.master")

HOLD_CODE_WORK_QUEUE = 12    # HTCondor: "failed to transfer files"
HOLD_CODE_USER = 1           # HTCondor: condor_hold
HOLD_CODE_PERIODIC = 3       # HTCondor: "the PeriodicHold expression became true"


class JobTable:
    def __init__(self) -> None:
        self.jobs: Dict[JobId, Job] = {}
        self.max_cluster_id = 0
        self.dirty = False
        # Idle jobs in submission order: dispatch looks at these on every pass, and a
        # scan of the whole table there made the master's cost per job grow with the queue.
        self._idle: Dict[JobId, None] = {}
        # Likewise for the counts published several times a second, and the finished jobs
        # each snapshot retires: kept here, never found by a scan.
        self._running: Set[JobId] = set()
        self._finished: Set[JobId] = set()

    def put(self, job: Job) -> None:
        """Store a job as it is (every write to the table goes through here)."""
        jid = jobs.job_id(job)
        self.jobs[jid] = job
        status = job.get("JobStatus")
        if status == JobStatus.IDLE:
            self._idle[jid] = None
        else:
            self._idle.pop(jid, None)
        if status == JobStatus.RUNNING:
            self._running.add(jid)
        else:
            self._running.discard(jid)
        if status in FINAL_STATES:
            self._finished.add(jid)
        else:
            self._finished.discard(jid)

    # -- reading

    def __contains__(self, jid: JobId) -> bool:
        return jid in self.jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def status(self, jid: JobId) -> Optional[int]:
        job = self.jobs.get(jid)
        return job.get("JobStatus") if job is not None else None

    def idle_jobs(self) -> List[JobId]:
        return list(self._idle)

    def iter_idle(self) -> Iterator[JobId]:
        """Idle jobs, oldest first, without a copy: no state change while iterating."""
        return iter(self._idle)

    def counts(self) -> Tuple[int, int]:
        """(idle, running), as upstream's stat file has them."""
        return len(self._idle), len(self._running)

    def active(self) -> bool:
        return any(job.get("JobStatus") in (JobStatus.IDLE, JobStatus.RUNNING)
                   for job in self.jobs.values())

    # -- filling

    def restore(self, state: Dict[str, Any]) -> List[Job]:
        """Load a snapshot; running jobs are requeued. Returns the finished jobs it held."""
        now = int(time.time())
        self.max_cluster_id = int(state.get("max_cluster_id", 0))
        finished, requeued = [], 0
        for jid, job in state["jobs"].items():
            if job.get("JobStatus") in FINAL_STATES and not _left_in_queue(job, now):
                finished.append(job)
                continue
            if job.get("JobStatus") == JobStatus.RUNNING:
                job, requeued = _requeued(job, now), requeued + 1
            self.put(job)
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
        self.put(job)
        self.max_cluster_id = max(self.max_cluster_id, jid[0])
        userlog.write_event(job, userlog.SUBMIT, "Job submitted from host: <127.0.0.1>")
        self.dirty = True
        return True

    def retire_finished(self) -> List[Job]:
        """Take completed and removed jobs out, unless leave_in_queue keeps them; they go to history."""
        now = time.time()
        finished = [jid for jid in self._finished if not _left_in_queue(self.jobs[jid], now)]
        finished.sort()  # history in job order, as a scan of the table gave it
        retired = [self.jobs.pop(jid) for jid in finished]  # never idle nor running
        self._finished.difference_update(finished)
        if retired:
            self.dirty = True
        return retired

    def let_leave(self, jid: JobId) -> None:
        """A finished job kept by LeaveJobInQueue leaves at the next snapshot (condor_rm)."""
        self.put(dict(self.jobs[jid], LeaveJobInQueue=False))
        self.dirty = True

    def snapshot(self) -> Dict[str, Any]:
        return {"jobs": self.jobs, "max_cluster_id": self.max_cluster_id}

    def annotate(self, jid: JobId, **attributes: Any) -> None:
        """Set attributes that are not a state change (None deletes)."""
        job = dict(self.jobs[jid])
        for name, value in attributes.items():
            if value is None:
                job.pop(name, None)
            else:
                job[name] = value
        if job != self.jobs[jid]:
            self.put(job)
            self.dirty = True

    # -- transitions

    def mark_running(self, jid: JobId, host: Optional[str] = None) -> None:
        now = int(time.time())
        job = self.jobs[jid]
        self._set_status(jid, JobStatus.RUNNING, "on " + (host or "a worker"),
                         NumJobStarts=int(job.get("NumJobStarts", 0)) + 1,
                         JobCurrentStartDate=now, JobStartDate=job.get("JobStartDate", now),
                         RemoteHost=host)
        userlog.write_event(self.jobs[jid], userlog.EXECUTE,
                            "Job executing on host: <%s>" % (host or "unknown"))

    def requeue(self, jid: JobId, reason: str) -> None:
        """A running job lost its worker: idle again, to be started anew."""
        self._set_status(jid, JobStatus.IDLE, reason, **_left_host(self.jobs[jid]))

    def complete(self, jid: JobId, exit_code: int) -> None:
        self._set_status(jid, JobStatus.COMPLETED, "exit code %d" % exit_code,
                         ExitCode=exit_code, ExitBySignal=False, CompletionDate=int(time.time()),
                         **_left_host(self.jobs[jid]))
        userlog.write_event(self.jobs[jid], userlog.TERMINATED, userlog.terminated_body(exit_code))

    def hold(self, jid: JobId, reason: str, code: int = HOLD_CODE_WORK_QUEUE) -> None:
        self._set_status(jid, JobStatus.HELD, reason, HoldReason=reason, HoldReasonCode=code,
                         **_left_host(self.jobs[jid]))
        userlog.write_event(self.jobs[jid], userlog.HELD, userlog.held_body(reason))

    def release(self, jid: JobId, reason: str) -> None:
        self._set_status(jid, JobStatus.IDLE, reason, HoldReason=None, HoldReasonCode=None)

    def suspend(self, jid: JobId) -> None:
        self._set_status(jid, JobStatus.SUSPENDED, "a running pilot was stopped; it starts "
                         "again on condor_continue", **_left_host(self.jobs[jid]))

    def resume(self, jid: JobId) -> None:
        self._set_status(jid, JobStatus.IDLE, "condor_continue")

    def remove(self, jid: JobId, reason: str) -> None:
        self._set_status(jid, JobStatus.REMOVED, reason, RemoveReason=reason,
                         **_left_host(self.jobs[jid]))
        userlog.write_event(self.jobs[jid], userlog.ABORTED, userlog.aborted_body(reason))

    def _set_status(self, jid: JobId, status: JobStatus, why: str, **attributes: Any) -> None:
        job = dict(self.jobs[jid])
        before = job.get("JobStatus")
        for name, value in attributes.items():
            if value is None:
                job.pop(name, None)  # e.g. HoldReason once a job is released
            else:
                job[name] = value
        job["LastJobStatus"] = before
        job["JobStatus"] = int(status)  # a plain int: the snapshot holds data, not our classes
        job["EnteredCurrentStatus"] = int(time.time())
        self.put(job)
        self.dirty = True
        # One line per state change: "job 12.0: idle -> held: <why>".
        log.log(logging.WARNING if status == JobStatus.HELD else logging.INFO,
                "job %s: %s -> %s: %s", jobs.format_job_id(jid), jobs.status_name(before),
                jobs.status_name(status), why)


def _left_host(job: Job) -> Dict[str, Any]:
    """A job leaving its worker: RemoteHost goes, LastRemoteHost remembers it (HTCondor)."""
    host = job.get("RemoteHost")
    return {"RemoteHost": None, "LastRemoteHost": host} if host else {}


def _requeued(job: Job, now: int) -> Job:
    """A job that was running when the master died: idle again. Pilots are safe to rerun;
    NumJobStarts will show this was another start."""
    job = dict(job, JobStatus=int(JobStatus.IDLE), EnteredCurrentStatus=now,
               LastJobStatus=int(JobStatus.RUNNING))
    host = job.pop("RemoteHost", None)
    if host:
        job["LastRemoteHost"] = host
    return job


def _left_in_queue(job: Job, now: float) -> bool:
    if "LeaveJobInQueue" not in job:
        return False
    try:
        return classad.is_true(classad.evaluate_attr(job, "LeaveJobInQueue", now)) is True
    except Exception:  # one job's data must never stop the loop: let it leave
        return False
