"""Requests condor_rm, condor_hold, ... leave for the master: one directory a kind.

A request for one job is a file named C.P holding the reason; a command naming
more than BATCH_ABOVE jobs leaves one file batch.PID.RANDOM instead, the reason
on its first line and a job id a line after it. The master carries requests
out, keeps the result in the snapshot, and only then deletes them.
"""

from __future__ import annotations

import os
from itertools import repeat

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Dict, Iterable, List, Optional, Set, Tuple

from awq import jobs
from awq.jobs import JobId
from awq.spool.files import (SpoolError, atomic_write, fsync_dir, make_spool_directory,
                             read_trusted, unlink_quietly, visible_names)

REQUEST_ACTIONS = ("rm", "hold", "release", "suspend", "continue")
MAX_REASON_BYTES = 1024
BATCH_ABOVE = 64
BATCH_PREFIX = "batch."
MAX_BATCH_BYTES = 64 * 1024 * 1024   # as a record: a batch names at most a queue's jobs
MAX_JOB_ID_TEXT = 25                 # the longest "C.P" jobs.parse_job_id reads


class Requests:
    """The request directories, {action: path} for every action in REQUEST_ACTIONS."""

    def __init__(self, directories: Dict[str, str]):
        self.directories = directories

    def directory(self, action: str) -> str:
        try:
            return self.directories[action]
        except KeyError:
            raise ValueError("unknown request %r" % action)

    def leave(self, action: str, ids: Iterable[JobId], reason: str = "") -> None:
        """Leave the master a request (rm, hold, release, suspend, continue) for each job."""
        directory = self.directory(action)
        if not os.path.isdir(directory):
            make_spool_directory(directory)  # a spool made before this request kind existed
        data = reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
        ids = list(ids)
        if len(ids) > BATCH_ABOVE:
            # condor_rm -all on 10,000 jobs: one file, not 10,000 of them.
            name = "%s%d.%s" % (BATCH_PREFIX, os.getpid(), os.urandom(4).hex())
            lines = [data.replace(b"\n", b" ")] + [jobs.format_job_id(jid).encode() for jid in ids]
            atomic_write(os.path.join(directory, name), b"\n".join(lines) + b"\n")
            return
        for jid in ids:
            # A new file each time, renamed in: the directory changes (that is what wakes the
            # master) and the file gets a new inode, so a request made again for a job whose
            # earlier one is still kept (condor_rm; condor_rm -forcex) is seen as new.
            atomic_write(os.path.join(directory, jobs.format_job_id(jid)), data, durable=False)
        if ids:
            # The file's name is the request, made durable by one fsync of the directory
            # instead of one per file; after a crash at worst the reason text is lost, not
            # the request.
            fsync_dir(directory)

    def pending(self) -> List[Tuple[str, str, JobId]]:
        """(action, file name, job id) of every request waiting for the master (a batch
        file names many jobs)."""
        result = []
        for action in REQUEST_ACTIONS:
            for name in visible_names(self.directory(action)):
                if name.startswith(BATCH_PREFIX):
                    result.extend((action, name, jid) for jid in self._batch_ids(action, name))
                    continue
                jid = jobs.parse_job_id(name)
                if jid is not None:
                    result.append((action, name, jid))
        return result

    def pending_removals(self) -> List[Tuple[str, JobId]]:
        """(file name, job id) of every removal waiting: condor_q shows those jobs removed."""
        result = []
        for name in visible_names(self.directory("rm")):
            if name.startswith(BATCH_PREFIX):
                result.extend((name, jid) for jid in self._batch_ids("rm", name))
                continue
            jid = jobs.parse_job_id(name)
            if jid is not None:
                result.append((name, jid))
        return result

    def removal_texts(self) -> Set[str]:
        """The jobs a removal waits for (condor_q shows them removed), as "C.P" texts
        (jobs.format_job_id): condor_rm -all's batch names 100,000 jobs, and its lines are
        compared as they are, not converted one by one."""
        texts: Set[str] = set()
        for name in visible_names(self.directory("rm")):
            if name.startswith(BATCH_PREFIX):
                texts.update(batch_job_texts(self._batch_lines("rm", name)[1:]))
                continue
            jid = jobs.parse_job_id(name)
            if jid is not None:
                texts.add(jobs.format_job_id(jid))
        return texts

    def reason(self, action: str, name: str) -> str:
        if name.startswith(BATCH_PREFIX):
            return (self._batch_lines(action, name) or [""])[0].strip()
        try:
            data = read_trusted(os.path.join(self.directory(action), name), MAX_REASON_BYTES)
        except (FileNotFoundError, SpoolError):
            return ""
        return data.decode("utf-8", "replace").strip()

    def stamp(self, action: str, name: str) -> Optional[Tuple[int, int]]:
        """The file's inode and modification time (None when it is gone): a request for
        one job rewritten in place by a later command has a new one."""
        try:
            st = os.lstat(os.path.join(self.directory(action), name))
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def remove(self, done: Iterable[Tuple[str, str]]) -> None:
        """Delete (action, file name) requests the master has carried out."""
        touched = set()
        for action, name in done:
            unlink_quietly(os.path.join(self.directory(action), name))
            touched.add(action)
        for action in touched:
            fsync_dir(self.directory(action))

    def _batch_lines(self, action: str, name: str) -> List[str]:
        try:
            data = read_trusted(os.path.join(self.directory(action), name), MAX_BATCH_BYTES)
        except (FileNotFoundError, SpoolError):
            return []   # carried out meanwhile, or not ours: ignored
        return data.decode("utf-8", "replace").split("\n")

    def _batch_ids(self, action: str, name: str) -> List[JobId]:
        return batch_job_ids(self._batch_lines(action, name)[1:])


# What a line written by jobs.format_job_id never holds: a number with a leading zero.
_NOT_AS_FORMATTED = ["\n0%d" % digit for digit in range(10)] + [".0%d" % digit for digit in range(10)]


def batch_job_texts(lines: List[str]) -> List[str]:
    """The job ids of a batch's lines as jobs.format_job_id writes them; the lines
    themselves when they are so written (as condor_rm writes them: checked in C)."""
    lines = lines[:-1] if lines and not lines[-1] else lines   # after the last newline
    if _all_job_ids(lines):
        joined = "\n" + "\n".join(lines)
        if not any(pattern in joined for pattern in _NOT_AS_FORMATTED):
            return lines
    return list(map(jobs.format_job_id, batch_job_ids(lines)))


def _all_job_ids(lines: List[str]) -> bool:
    """Whether every line is "C.P" (digits, a dot, digits), decided by C loops."""
    if not lines or set(map(str.count, lines, repeat("."))) != {1}:
        return False
    body = "".join(lines)
    return body.isascii() and body.replace(".", "").isdigit() \
        and max(map(len, lines)) <= MAX_JOB_ID_TEXT and all(".".join(lines).split("."))


def batch_job_ids(lines: List[str]) -> List[JobId]:
    """The job ids of a batch's lines, "C.P" each (jobs.parse_job_id); other lines are
    skipped. A batch can name a whole queue: when every line is an id, as condor_rm writes
    them, they are converted in C, not one by one."""
    lines = lines[:-1] if lines and not lines[-1] else lines   # after the last newline
    if _all_job_ids(lines):
        parts = ".".join(lines).split(".")
        return list(zip(map(int, parts[0::2]), map(int, parts[1::2])))
    ids = map(jobs.parse_job_id, lines)
    return [jid for jid in ids if jid is not None]
