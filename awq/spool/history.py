"""history/history: jobs that left the queue, one JSON object a line, for condor_history.

Lines are appended (and fsync'ed) after the snapshot that no longer holds the
jobs: a crash in between repeats a job, never loses one, and the reader keeps
the last line for each job id. Past max_bytes the file becomes history.1 and
the one before goes.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Dict, List

from awq import classad, jobs
from awq.jobs import Job, JobId
from awq.spool.codec import decode_job_line, encode_job_line
from awq.spool.files import fsync_dir, read_trusted

MAX_HISTORY_BYTES = 128 * 1024 * 1024


class History:
    def __init__(self, history_dir: str, history_path: str):
        self.history_dir = history_dir
        self.history_path = history_path
        self.max_bytes = MAX_HISTORY_BYTES

    def append(self, finished: List[Job]) -> None:
        if not finished:
            return
        os.makedirs(self.history_dir, mode=0o700, exist_ok=True)
        self._rotate()
        lines = b"".join(encode_job_line(job) for job in finished)
        fd = os.open(self.history_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                     0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        try:
            if os.lstat(self.history_path).st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        os.rename(self.history_path, self.history_path + ".1")
        fsync_dir(self.history_dir)

    def read(self) -> List[Job]:
        """Finished jobs, the last line for a job id winning (a crash may repeat one)."""
        latest: Dict[JobId, Job] = {}
        for path in (self.history_path + ".1", self.history_path):
            try:
                data = read_trusted(path, self.max_bytes * 2)
            except FileNotFoundError:
                continue
            for line in data.splitlines():
                try:
                    job = decode_job_line(line)
                    latest[jobs.job_id(job)] = job
                except (ValueError, KeyError, TypeError, classad.ClassAdError):
                    continue  # a torn last line after a crash
        return list(latest.values())
