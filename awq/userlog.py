"""HTCondor-style job event log (the submit file's `log =`), append-only."""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache
from typing import Dict, List, Optional

from awq import job_files
from awq.classad import escape_control
from awq.jobs import Job, format_job_id, job_id

log = logging.getLogger("awq.userlog")

SUBMIT, EXECUTE, EVICTED, TERMINATED, ABORTED, HELD = "000", "001", "004", "005", "009", "012"

# We measure no usage; HTCondor's parsers expect these lines where it writes them.
_RUN_USAGE = ("\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n"
              "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage")


def event_text(code: str, job: Job, body: str, now: Optional[float] = None) -> str:
    return _event_text(code, job, body, _stamp(now or time.time()))


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))


def _event_text(code: str, job: Job, body: str, stamp: str) -> str:
    return "%s (%03d.%03d.000) %s %s\n...\n" % ((code,) + job_id(job) + (stamp, body))


# A reason is job data (condor_hold -reason): a newline in it would start a forged event,
# or end this one with a line "...", in a log that clients parse. Control characters are
# escaped, so it stays on its one line.

def held_body(reason: str, code: int = 0, subcode: int = 0) -> str:
    """HTCondor's 012 event: the reason, then its code and subcode (JobHeldEvent)."""
    return "Job was held.\n\t%s\n\tCode %d Subcode %d" % (
        escape_control(reason) or "Reason unspecified", code, subcode)


@lru_cache(maxsize=64)   # condor_rm -all: one reason for every job it removes
def aborted_body(reason: str) -> str:
    return "Job was aborted.\n\t" + escape_control(reason)


def termination_line(exit_code: Optional[int], exit_signal: Optional[int] = None) -> str:
    """How the job ended, as HTCondor's 004 and 005 events say it."""
    if exit_signal is not None:
        return "\t(0) Abnormal termination (signal %d)\n\t(0) No core file" % exit_signal
    return "\t(1) Normal termination (return value %d)" % (exit_code or 0)


def terminated_body(exit_code: Optional[int], exit_signal: Optional[int] = None) -> str:
    """HTCondor's 005 event: a job that left the queue when its program ended."""
    return "Job terminated.\n%s\n%s" % (termination_line(exit_code, exit_signal), _RUN_USAGE)


def requeued_body(exit_code: Optional[int], exit_signal: Optional[int], reason: str) -> str:
    """HTCondor's 004 event for a job whose program ended and which runs again because
    OnExitRemove was false (the shadow's logRequeueEvent: JobEvictedEvent with
    terminate_and_requeued)."""
    return ("Job was evicted.\n\t(0) Job terminated and was requeued\n%s\n"
            "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n%s\n\t%s"
            % (_RUN_USAGE, termination_line(exit_code, exit_signal), escape_control(reason)))


def write_event(job: Job, code: str, body: str) -> None:
    """Append one event; a log that cannot be written never stops the job."""
    path = job.get("UserLog")
    if not isinstance(path, str) or not path:
        return
    _append(path, event_text(code, job, body), job)


class EventBatch:
    """Events kept by log file and appended with one write a file (write()): a bulk
    change (condor_rm -all) would otherwise open, write and close a shared log once
    a job. Events keep their order within each file."""

    def __init__(self) -> None:
        self._texts: Dict[str, List[str]] = {}
        self._first_job: Dict[str, Job] = {}   # named when the file cannot be written
        self._stamp = _stamp(time.time())   # one stamp: the batch is one moment of the master's

    def add(self, job: Job, code: str, body: str) -> None:
        path = job.get("UserLog")
        if not isinstance(path, str) or not path:
            return
        texts = self._texts.get(path)
        if texts is None:
            texts = self._texts[path] = []
            self._first_job[path] = job
        texts.append(_event_text(code, job, body, self._stamp))

    def write(self) -> None:
        texts, self._texts = self._texts, {}
        for path, events in texts.items():
            _append(path, "".join(events), self._first_job[path])
        self._first_job = {}


def _append(path: str, text: str, job: Job) -> None:
    """Append events to one log; a log that cannot be written never stops the job."""
    try:
        # The log may sit in a directory others can write (/tmp): no link is followed.
        fd = job_files.open_job_file(path, append=True)
        try:
            data = text.encode()
            while data:   # a large batch may take more than one write
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
    except OSError as err:
        log.warning("job %s: cannot write its log %s: %s",
                    format_job_id(job_id(job)), path, err.strerror or err)
