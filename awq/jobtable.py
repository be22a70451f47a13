"""The master's job table: the one place a job changes state.

Every transition sets JobStatus, LastJobStatus and EnteredCurrentStatus the
same way, writes the HTCondor user-log event and the master-log line that go
with it, and marks the table changed so the next snapshot carries it. Callers
read jobs through the table's methods and change them only through it.
"""

from __future__ import annotations

import time
from typing import (TYPE_CHECKING, Any, ContextManager, Dict, Iterable, List, Mapping,
                    Optional)

from awq import exit_rules, jobs, jobtable_restore, userlog
from awq.jobs import Job, JobId, JobStatus
from awq.jobstore import JobStore, updated
from awq.jobtable_events import ChangeRecorder, exit_text, write_requeued
from awq.jobtable_restore import left_in_queue

if TYPE_CHECKING:
    from awq.spool.starts import StartJournal

HOLD_CODE_WORK_QUEUE = 12    # HTCondor: "failed to transfer files"
HOLD_CODE_USER = 1           # HTCondor: condor_hold
HOLD_CODE_PERIODIC = 3       # HTCondor: "the PeriodicHold expression became true"


class JobTable(JobStore):
    """Every job the master holds, by id: read by method, changed only by its transitions."""

    def __init__(self) -> None:
        super().__init__()
        # Every start is written here too, at once: the snapshot comes later, and a master
        # killed before it would forget the start (awq/spool/starts.py).
        self.start_journal: Optional[StartJournal] = None
        # Each change's user-log event and log line; bulk_changes() batches them.
        self._recorder = ChangeRecorder()
        # Removed jobs not yet gone to history (retire_removed), in removal order.
        self._removed: Dict[JobId, None] = {}

    def restore(self, state: Mapping[str, Any]) -> List[Job]:
        """Load a snapshot; running jobs are requeued. Returns the finished jobs it held."""
        return jobtable_restore.restore(self, state)

    def add(self, job: Job) -> bool:
        """Take a new job from the spool; False if it is already here (taken before a crash)."""
        jid = jobs.job_id(job)
        if jid in self._jobs:
            return False
        self.put(job)
        self.max_cluster_id = max(self.max_cluster_id, jid[0])
        userlog.write_event(job, userlog.SUBMIT, "Job submitted from host: <127.0.0.1>")
        return True

    def bulk_changes(self, quiet: bool = False) -> ContextManager[None]:
        """Changes made inside write their user-log events at the end, one write a log
        file; quiet: each change's log line is at DEBUG (the caller logs a summary)."""
        return self._recorder.batch(quiet)

    def retire_finished(self) -> List[Job]:
        """Take out the completed and removed jobs LeaveJobInQueue does not keep, for history."""
        self._removed = {}
        return self._retire(self._by_status.finished)

    def retire_removed(self) -> List[Job]:
        """Take out the jobs removed since the last retire that LeaveJobInQueue does not
        keep, for history: O(removed), however many jobs the table holds."""
        removed, self._removed = self._removed, {}
        return self._retire(jid for jid in removed if self.status(jid) == JobStatus.REMOVED)

    def _retire(self, finished: Iterable[JobId]) -> List[Job]:
        now = time.time()
        # Sorted: history lists jobs in id order, whatever order they finished in.
        leaving = sorted(jid for jid in finished if not left_in_queue(self._jobs[jid], now))
        self._by_status.forget_finished(leaving)  # never idle nor running
        retired = [self._jobs.pop(jid) for jid in leaving]
        if retired:
            self._changed = True
        return retired

    def let_leave(self, jid: JobId) -> None:
        """A finished job kept by LeaveJobInQueue leaves at the next snapshot (condor_rm)."""
        self.put(dict(self._jobs[jid], LeaveJobInQueue=False))

    def annotate(self, jid: JobId, **attributes: Any) -> None:
        """Set attributes that are not a state change (None deletes)."""
        job = updated(self._jobs[jid], attributes)
        if job != self._jobs[jid]:
            self.put(job)

    def mark_running(self, jid: JobId, host: Optional[str] = None) -> None:
        """A job's task reached a worker: one more start, journaled before any snapshot."""
        now = int(time.time())
        start = _start(self._jobs[jid], host, now)
        again = " (start %d)" % start["NumJobStarts"] if start["NumJobStarts"] > 1 else ""
        self._set_status(jid, JobStatus.RUNNING, "on %s%s" % (host or "a worker", again),
                         **start)
        if self.start_journal is not None:
            self.start_journal.record(jid, start["NumJobStarts"], now, host)

    def count_journaled_start(self, jid: JobId, starts: int, started_at: int,
                              host: Optional[str]) -> bool:
        """A start the restored snapshot missed: see jobtable_restore.count_journaled_start."""
        return jobtable_restore.count_journaled_start(self, jid, starts, started_at, host)

    def requeue(self, jid: JobId, reason: str) -> None:
        """A running job lost its worker: idle again, to be started anew."""
        self._set_status(jid, JobStatus.IDLE, reason, **_left_host(self._jobs[jid]))

    def complete(self, jid: JobId, exit_code: int) -> None:
        self._set_status(jid, JobStatus.COMPLETED, "exit code %d" % exit_code,
                         ExitCode=exit_code, ExitBySignal=False, CompletionDate=int(time.time()),
                         **_left_host(self._jobs[jid]))

    def hold(self, jid: JobId, reason: str, code: int = HOLD_CODE_WORK_QUEUE,
             subcode: int = 0, **attributes: Any) -> None:
        self._set_status(jid, JobStatus.HELD, reason, HoldReason=reason, HoldReasonCode=code,
                         HoldReasonSubCode=subcode, **dict(_left_host(self._jobs[jid]),
                                                           **attributes))

    def end_run(self, jid: JobId, outcome: exit_rules.ExitOutcome) -> None:
        """A pilot ended: its exit is written into the job, which then completes, is held,
        or goes back to idle to run again, as exit_rules decided (HTCondor's OnExitHold
        and OnExitRemove)."""
        if outcome.action == exit_rules.HOLD:
            self.hold(jid, outcome.reason, outcome.code, outcome.subcode, **outcome.attributes)
        elif outcome.action == exit_rules.REQUEUE:
            attributes = dict(outcome.attributes, **_left_host(self._jobs[jid]))
            self._set_status(jid, JobStatus.IDLE, "it runs again: " + outcome.reason,
                             **attributes)
            write_requeued(self._jobs[jid], outcome.reason)
        else:
            self._set_status(jid, JobStatus.COMPLETED, exit_text(outcome.attributes),
                             CompletionDate=int(time.time()),
                             **dict(outcome.attributes, **_left_host(self._jobs[jid])))

    def release(self, jid: JobId, reason: str) -> None:
        self._set_status(jid, JobStatus.IDLE, reason, HoldReason=None, HoldReasonCode=None,
                         HoldReasonSubCode=None)

    def suspend(self, jid: JobId) -> None:
        self._set_status(jid, JobStatus.SUSPENDED, "a running pilot was stopped; it starts "
                         "again on condor_continue", **_left_host(self._jobs[jid]))

    def resume(self, jid: JobId) -> None:
        self._set_status(jid, JobStatus.IDLE, "condor_continue")

    def remove(self, jid: JobId, reason: str) -> None:
        self._set_status(jid, JobStatus.REMOVED, reason, RemoveReason=reason,
                         **_left_host(self._jobs[jid]))
        self._removed[jid] = None

    def _set_status(self, jid: JobId, status: int, why: str, **attributes: Any) -> None:
        job = updated(self._jobs[jid], attributes)
        before = job.get("JobStatus")
        # A plain int: the snapshot holds data, not our classes.
        job.update(LastJobStatus=before, JobStatus=int(status),
                   EnteredCurrentStatus=int(time.time()))
        self.put(job)
        self._recorder.record(jid, job, before, status, why)


def _start(job: Job, host: Optional[str], now: int) -> Dict[str, Any]:
    """What a start on a worker sets, as HTCondor: NumJobStarts and JobRunCount count every
    attempt, JobStartDate is the first one's time, JobLastStartDate the one before this."""
    starts = int(job.get("NumJobStarts", 0)) + 1
    return {"NumJobStarts": starts, "JobRunCount": starts, "JobCurrentStartDate": now,
            "JobLastStartDate": job.get("JobCurrentStartDate"),
            "JobStartDate": job.get("JobStartDate", now), "RemoteHost": host}


def _left_host(job: Job) -> Dict[str, Any]:
    """A job leaving its worker: RemoteHost goes, LastRemoteHost remembers it (HTCondor)."""
    host = job.get("RemoteHost")
    return {"RemoteHost": None, "LastRemoteHost": host} if host else {}
