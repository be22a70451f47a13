"""The master's job table: the one place a job changes state.

Every transition sets JobStatus, LastJobStatus and EnteredCurrentStatus the
same way, writes the HTCondor user-log event and the master-log line that go
with it, and marks the table changed so the next snapshot carries it. Callers
read jobs through the table's methods and change them only through it.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import (TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple,
                    Optional, Set, Tuple)

from awq import classad, exit_rules, jobs, userlog
from awq.jobs import FINAL_STATES, Job, JobId, JobStatus

if TYPE_CHECKING:
    from awq.spool.starts import StartJournal

log = logging.getLogger("awq.master")

HOLD_CODE_WORK_QUEUE = 12    # HTCondor: "failed to transfer files"
HOLD_CODE_USER = 1           # HTCondor: condor_hold
HOLD_CODE_PERIODIC = 3       # HTCondor: "the PeriodicHold expression became true"

# A user-log event: its code (userlog.SUBMIT, ...) and its text.
Event = Tuple[str, str]


class Counts(NamedTuple):
    """Jobs by the states upstream's stat file counts (WAITING, RUNNING)."""

    idle: int
    running: int


class StatusIndex:
    """Job ids by status, for what the master asks on every turn.

    Dispatch walks the idle jobs on every pass, the counts are published several
    times a second and each snapshot retires the finished jobs: answered by a scan
    of the table, each would make the master's cost per job grow with the queue.
    """

    def __init__(self) -> None:
        self.idle: Dict[JobId, None] = {}   # a dict for its order: oldest first
        self.running: Set[JobId] = set()
        self.finished: Set[JobId] = set()

    def note(self, jid: JobId, status: Optional[int]) -> None:
        """Where jid belongs now; an idle job that stays idle keeps its place."""
        if status == JobStatus.IDLE:
            self.idle[jid] = None
        else:
            self.idle.pop(jid, None)
        if status == JobStatus.RUNNING:
            self.running.add(jid)
        else:
            self.running.discard(jid)
        if status in FINAL_STATES:
            self.finished.add(jid)
        else:
            self.finished.discard(jid)

    def forget_finished(self, finished: Iterable[JobId]) -> None:
        self.finished.difference_update(finished)


class JobTable:
    """Every job the master holds, by id: read by method, changed only by its transitions."""

    def __init__(self) -> None:
        self._jobs: Dict[JobId, Job] = {}
        self._by_status = StatusIndex()
        self._changed = False
        self.max_cluster_id = 0
        # Every start is written here too, at once: the snapshot comes later, and a master
        # killed before it would forget the start (awq/spool/starts.py).
        self.start_journal: Optional[StartJournal] = None
        # Inside bulk_changes(): user-log events wait here, one write a log file.
        self._events: Optional[userlog.EventBatch] = None
        self._quiet = False   # bulk_changes(quiet=True): each change logged at DEBUG only
        # Removed jobs not yet gone to history (retire_removed), in removal order.
        self._removed: Dict[JobId, None] = {}

    def put(self, job: Job) -> None:
        """Store a job as it is (every write to the table goes through here)."""
        jid = jobs.job_id(job)
        self._jobs[jid] = job
        self._by_status.note(jid, job.get("JobStatus"))
        self._changed = True

    @property
    def changed(self) -> bool:
        """Whether the table changed since the last snapshot was written."""
        return self._changed

    def mark_changed(self) -> None:
        """A snapshot is due although no job changed (e.g. a spool file waits to be deleted)."""
        self._changed = True

    def mark_saved(self) -> None:
        """A snapshot holding every change so far is durable."""
        self._changed = False

    def __contains__(self, jid: JobId) -> bool:
        return jid in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def job(self, jid: JobId) -> Job:
        """The job as stored, to read: it changes only through the table's methods."""
        return self._jobs[jid]

    def items(self) -> List[Tuple[JobId, Job]]:
        """Every (id, job), as a list: the table may change while the caller walks it."""
        return list(self._jobs.items())

    def status(self, jid: JobId) -> Optional[int]:
        job = self._jobs.get(jid)
        return job.get("JobStatus") if job is not None else None

    def idle_jobs(self) -> List[JobId]:
        return list(self._by_status.idle)

    def iter_idle(self) -> Iterator[JobId]:
        """Idle jobs, oldest first, without a copy: no state change while iterating."""
        return iter(self._by_status.idle)

    def counts(self) -> Counts:
        """Idle and running jobs, as upstream's stat file has them."""
        return Counts(len(self._by_status.idle), len(self._by_status.running))

    def active(self) -> bool:
        """Whether any job is idle or running (a drain waits for none)."""
        return bool(self._by_status.idle or self._by_status.running)

    def snapshot(self) -> Dict[str, Any]:
        return {"jobs": self._jobs, "max_cluster_id": self.max_cluster_id}

    def restore(self, state: Mapping[str, Any]) -> List[Job]:
        """Load a snapshot; running jobs are requeued. Returns the finished jobs it held."""
        kept, finished = _sort_restored(state["jobs"].values(), int(time.time()))
        for job in kept:
            self.put(job)
        self.max_cluster_id = max([int(state.get("max_cluster_id", 0))]
                                  + [jobs.job_id(job)[0] for job in kept])
        self._changed = True  # the next snapshot leaves out the finished jobs
        return finished

    def add(self, job: Job) -> bool:
        """Take a new job from the spool; False if it is already here (taken before a crash)."""
        jid = jobs.job_id(job)
        if jid in self._jobs:
            return False
        self.put(job)
        self.max_cluster_id = max(self.max_cluster_id, jid[0])
        userlog.write_event(job, userlog.SUBMIT, "Job submitted from host: <127.0.0.1>")
        return True

    @contextmanager
    def bulk_changes(self, quiet: bool = False) -> Iterator[None]:
        """Changes made inside write their user-log events at the end, one write a log
        file; quiet: each change's log line is at DEBUG (the caller logs a summary)."""
        outer = self._events is not None
        if not outer:
            self._events, self._quiet = userlog.EventBatch(), quiet
        try:
            yield
        finally:
            if not outer:
                events, self._events, self._quiet = self._events, None, False
                if events is not None:
                    events.write()

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
        leaving = sorted(jid for jid in finished if not _left_in_queue(self._jobs[jid], now))
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
        job = _updated(self._jobs[jid], attributes)
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
        """A start the restored snapshot missed (the master died after the job started and
        before its next snapshot; the start journal kept it). NumJobStarts takes the
        journal's count when larger; a job the snapshot had idle ran meanwhile, so it
        comes back as a job that was running does. Returns whether the job changed."""
        job = self._jobs[jid]
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
        self.put(_updated(job, updates))
        log.info("job %s: %d starts, not the snapshot's %d: the start journal kept what the "
                 "master saw before it died", jobs.format_job_id(jid), starts, known)
        return True

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
            job = self._jobs[jid]
            userlog.write_event(job, userlog.EVICTED, userlog.requeued_body(
                _int(job.get("ExitCode")), _exit_signal(job), outcome.reason))
        else:
            self._set_status(jid, JobStatus.COMPLETED, _exit_text(outcome.attributes),
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
        job = _updated(self._jobs[jid], attributes)
        before = job.get("JobStatus")
        # A plain int: the snapshot holds data, not our classes.
        job.update(LastJobStatus=before, JobStatus=int(status),
                   EnteredCurrentStatus=int(time.time()))
        self.put(job)
        if job.get("UserLog"):   # most pilots have none: their change costs no event text
            event = _user_log_event(job)
            if event is not None:
                if self._events is not None:
                    self._events.add(job, *event)
                else:
                    userlog.write_event(job, *event)
        if not self._quiet:
            _log_change(jid, before, status, why)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("job %s: %s -> %s: %s", jobs.format_job_id(jid), jobs.status_name(before),
                      jobs.status_name(status), why)


def _updated(job: Job, attributes: Mapping[str, Any]) -> Job:
    """A copy of job with attributes set; None deletes one (e.g. HoldReason once released)."""
    job = dict(job)
    for name, value in attributes.items():
        if value is None:
            job.pop(name, None)
        else:
            job[name] = value
    return job


def _log_change(jid: JobId, before: Optional[int], status: int, why: str) -> None:
    """One line per state change: "job 12.0: idle -> held: <why>"."""
    log.log(logging.WARNING if status == JobStatus.HELD else logging.INFO,
            "job %s: %s -> %s: %s", jobs.format_job_id(jid), jobs.status_name(before),
            jobs.status_name(status), why)


def _user_log_event(job: Job) -> Optional[Event]:
    """The HTCondor user-log event a job's new state writes, if any."""
    status = job.get("JobStatus")
    if status == JobStatus.RUNNING:
        host = job.get("RemoteHost") or "unknown"
        return userlog.EXECUTE, "Job executing on host: <%s>" % host
    if status == JobStatus.COMPLETED:
        return userlog.TERMINATED, userlog.terminated_body(_int(job.get("ExitCode")),
                                                           _exit_signal(job))
    if status == JobStatus.HELD:
        return userlog.HELD, userlog.held_body(job["HoldReason"], _int(job.get("HoldReasonCode")),
                                               _int(job.get("HoldReasonSubCode")))
    if status == JobStatus.REMOVED:
        return userlog.ABORTED, userlog.aborted_body(job["RemoveReason"])
    return None  # idle or suspended: HTCondor writes no event either


def _exit_signal(job: Job) -> Optional[int]:
    """The signal that ended the job's last run, if one did."""
    if job.get("ExitBySignal") is True:
        return _int(job.get("ExitSignal"))
    return None


def _exit_text(attributes: Mapping[str, Any]) -> str:
    if attributes.get("ExitBySignal"):
        return "killed by signal %s" % attributes.get("ExitSignal")
    return "exit code %s" % attributes.get("ExitCode")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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


def _sort_restored(saved: Iterable[Job], now: int) -> Tuple[List[Job], List[Job]]:
    """A snapshot's jobs at start: (the jobs the table keeps, running ones made idle again;
    the finished jobs, for history)."""
    kept: List[Job] = []
    finished: List[Job] = []
    requeued = 0
    for job in saved:
        status = job.get("JobStatus")
        if status in FINAL_STATES and not _left_in_queue(job, now):
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


def _left_in_queue(job: Job, now: float) -> bool:
    if "LeaveJobInQueue" not in job:
        return False
    try:
        return classad.is_true(classad.evaluate_attr(job, "LeaveJobInQueue", now)) is True
    except Exception:  # one job's data must never stop the loop: let it leave
        return False
