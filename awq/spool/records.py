"""Submission records in queue/: cluster ids, writing, listing, taking, refusing.

condor_submit writes one record a cluster (queue/C.job, JSON, see codec); the
master reads it, keeps its jobs in the snapshot, and only then deletes it. A
raw description upstream's condor_submit left (queue/job-<sha1>) is listed
too: the master parses it and gives it a cluster id when it takes it.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Callable, Iterable, List, Optional, Tuple

    from awq.snapshot import Columns

from awq.jobs import Job
from awq.spool.codec import decode_jobs, encode_jobs
from awq.spool.files import (FileLock, SpoolError, atomic_write, fsync_dir, read_trusted,
                             unlink_quietly, visible_names)

RECORD_SUFFIX = ".job"
UPSTREAM_PREFIX = "job-"
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_CLUSTER_DIGITS = 12   # a longer name is not one of our records


class Records:
    """queue/ and the cluster counter beside it."""

    def __init__(self, queue_dir: str, bad_dir: str, counter_path: str, submit_lock_path: str,
                 snapshot_columns: Callable[[], Optional[Columns]]):
        self.queue_dir = queue_dir
        self.bad_dir = bad_dir
        self.counter_path = counter_path
        self.submit_lock_path = submit_lock_path
        # The ids the master already took, for a counter that has to be rebuilt.
        self._snapshot_columns = snapshot_columns
        self.max_record_bytes = MAX_RECORD_BYTES

    # -- submission (condor_submit)

    def submit(self, build: Callable[[int], List[Job]]) -> int:
        """Take the next cluster id, build the jobs, write their record; return the id."""
        with FileLock(self.submit_lock_path):
            cluster_id = self._next_cluster_id()
            data = encode_jobs(build(cluster_id))
            if len(data) > self.max_record_bytes:
                # The master would refuse it: say so now, while the submitter is listening.
                raise SpoolError("the jobs' description is %d MB, more than the %d MB a "
                                 "submission may hold"
                                 % (len(data) >> 20, self.max_record_bytes >> 20))
            # The counter moves first: a crash then leaves a gap, never a reused id.
            atomic_write(self.counter_path, b"%d\n" % (cluster_id + 1))
            atomic_write(self.path_of(cluster_id), data)
        return cluster_id

    def allocate_cluster_id(self) -> int:
        """A cluster id for a job that has none yet (an upstream description being taken)."""
        with FileLock(self.submit_lock_path):
            cluster_id = self._next_cluster_id()
            atomic_write(self.counter_path, b"%d\n" % (cluster_id + 1))
        return cluster_id

    def _next_cluster_id(self) -> int:
        try:
            text = read_trusted(self.counter_path, 64).decode("ascii").strip()
            value = int(text)
            if value < 1:
                raise ValueError(text)
            return value
        except FileNotFoundError:
            return self._highest_known_cluster() + 1
        except (ValueError, UnicodeDecodeError):
            raise SpoolError("the cluster counter %s is corrupt; the highest cluster "
                             "id in the spool is %d" % (self.counter_path,
                                                        self._highest_known_cluster()))

    def _highest_known_cluster(self) -> int:
        """Where to restart the counter if its file is missing: past every id we know."""
        highest = 0
        for name in visible_names(self.queue_dir):
            cluster = cluster_of_record(name)
            if cluster is not None:
                highest = max(highest, cluster)
        columns = self._snapshot_columns()
        if columns is not None:
            highest = max(highest, int(columns.header.get("max_cluster_id", 0)))
            highest = max([highest] + [c for c in columns.raw_column("ClusterId") or []
                                       if isinstance(c, int)])
        return highest

    def path_of(self, cluster_id: int) -> str:
        return os.path.join(self.queue_dir, "%d%s" % (cluster_id, RECORD_SUFFIX))

    # -- taking (the master; condor_q reads the records not taken yet)

    def pending(self) -> List[str]:
        """Names of records waiting in queue/, oldest cluster first."""
        names = [n for n in visible_names(self.queue_dir)
                 if cluster_of_record(n) is not None or n.startswith(UPSTREAM_PREFIX)]
        return sorted(names, key=_record_sort_key)

    def exists(self, name: str) -> bool:
        """Whether the record is still in queue/ (the master deletes it once it is saved)."""
        return os.path.lexists(os.path.join(self.queue_dir, name))

    def read(self, name: str) -> Tuple[Optional[int], Any]:
        """(cluster id, jobs) for our records, (None, description text) for upstream's."""
        path = os.path.join(self.queue_dir, name)
        data = read_trusted(path, self.max_record_bytes)
        cluster = cluster_of_record(name)
        if cluster is None:
            try:
                return None, data.decode("utf-8")
            except UnicodeDecodeError:
                raise SpoolError("%s is not UTF-8 text" % path)
        return cluster, decode_jobs(data)

    def remove(self, names: Iterable[str]) -> None:
        """Delete records whose jobs the snapshot now holds."""
        removed = False
        for name in names:
            unlink_quietly(os.path.join(self.queue_dir, name))
            removed = True
        if removed:
            fsync_dir(self.queue_dir)

    def quarantine(self, name: str) -> str:
        """Move a record the master refused aside, so it is neither lost nor retried."""
        os.makedirs(self.bad_dir, mode=0o700, exist_ok=True)
        target = os.path.join(self.bad_dir, "%s.%d" % (name, int(time.time())))
        os.rename(os.path.join(self.queue_dir, name), target)
        fsync_dir(self.queue_dir)
        return target


def cluster_of_record(name: str) -> Optional[int]:
    """The cluster id a record's name holds; None for anything else (upstream's included)."""
    if not name.endswith(RECORD_SUFFIX):
        return None
    stem = name[: -len(RECORD_SUFFIX)]
    if not stem.isdigit() or len(stem) > MAX_CLUSTER_DIGITS:
        return None
    return int(stem)


def _record_sort_key(name: str) -> Tuple[int, int, str]:
    cluster = cluster_of_record(name)
    return (0, cluster, name) if cluster is not None else (1, 0, name)
