"""HTCondor-style job event log (the submit file's `log =`), append-only."""

from __future__ import annotations

import logging
import os
import time
from typing import Optional

from awq import job_files
from awq.classad import escape_control
from awq.jobs import Job, format_job_id, job_id

log = logging.getLogger("awq.userlog")

SUBMIT, EXECUTE, TERMINATED, ABORTED, HELD = "000", "001", "005", "009", "012"


def event_text(code: str, job: Job, body: str, now: Optional[float] = None) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now or time.time()))
    return "%s (%03d.%03d.000) %s %s\n...\n" % ((code,) + job_id(job) + (stamp, body))


# A reason is job data (condor_hold -reason): a newline in it would start a forged event,
# or end this one with a line "...", in a log that clients parse. Control characters are
# escaped, so it stays on its one line.

def held_body(reason: str) -> str:
    return "Job was held.\n\t" + escape_control(reason)


def aborted_body(reason: str) -> str:
    return "Job was aborted.\n\t" + escape_control(reason)


def terminated_body(exit_code: int) -> str:
    return ("Job terminated.\n\t(1) Normal termination (return value %d)\n"
            "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n"
            "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage" % exit_code)


def write_event(job: Job, code: str, body: str) -> None:
    """Append one event; a log that cannot be written never stops the job."""
    path = job.get("UserLog")
    if not isinstance(path, str) or not path:
        return
    try:
        # The log may sit in a directory others can write (/tmp): no link is followed.
        fd = job_files.open_job_file(path, append=True)
        try:
            os.write(fd, event_text(code, job, body).encode())
        finally:
            os.close(fd)
    except OSError as err:
        log.warning("job %s: cannot write its log %s: %s",
                    format_job_id(job_id(job)), path, err.strerror or err)
