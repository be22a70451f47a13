"""What a job's state change leaves behind: its HTCondor user-log event and its log line.

Kept apart from the job table so the table says how a job changes state and this module
what HTCondor's user log and the master's log say about it, and how a bulk change
(condor_hold of a thousand jobs) batches the events into one write a log file.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional, Tuple

from awq import jobs, userlog
from awq.jobs import Job, JobId, JobStatus

log = logging.getLogger("awq.master")

# A user-log event: its code (userlog.SUBMIT, ...) and its text.
Event = Tuple[str, str]


class ChangeRecorder:
    """Writes each state change's user-log event and log line; inside batch(), the
    events wait and are written together at the end."""

    def __init__(self) -> None:
        self._events: Optional[userlog.EventBatch] = None
        self._quiet = False   # batch(quiet=True): each change logged at DEBUG only

    @contextmanager
    def batch(self, quiet: bool = False) -> Iterator[None]:
        """Changes recorded inside write their user-log events at the end, one write a log
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

    def record(self, jid: JobId, job: Job, before: Optional[int], status: int,
               why: str) -> None:
        """The event and log line of job's change from before to status, for why."""
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


def write_requeued(job: Job, reason: str) -> None:
    """A run ended and the job runs again: HTCondor logs that as an eviction."""
    userlog.write_event(job, userlog.EVICTED, userlog.requeued_body(
        _int(job.get("ExitCode")), _exit_signal(job), reason))


def exit_text(attributes: Mapping[str, Any]) -> str:
    """How a run ended, for the log line: "exit code 1" or "killed by signal 9"."""
    if attributes.get("ExitBySignal"):
        return "killed by signal %s" % attributes.get("ExitSignal")
    return "exit code %s" % attributes.get("ExitCode")


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


def _int(value: Any) -> int:
    """An attribute as an int for an event; 0 if it is missing or no int (bad job data
    must not stop the event)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
