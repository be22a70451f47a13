"""Input files many jobs share (the pilot script, the job wrapper), sent to a worker once.

Work Queue can keep an input file in a worker's cache, but it names the cached file
after the local path and never looks at the file again: a pilot script rewritten in
place would go on running in its old version. So a shared input is first copied
into the spool under a name made from its content, and that copy is what Work Queue
sends and caches. Sending the executable with every task was most of the master's
CPU per job (benchmarks/ANALYSIS.md).

A copy lives while a task uses it, and GRACE seconds more so the next job of the
same pilot finds it; then it is removed here and from the workers' caches (a
site whose middleware writes a new script for every pilot would otherwise fill
the workers' disks). The master wipes the directory when it starts: no task of
a previous master can use it, and a copy is only ever read by this process.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from typing import Dict, List, Optional, Tuple

from awq.spool import atomic_write

GRACE = 600.0               # s a copy no task uses is kept for the next one
MAX_SIZE = 64 * 1024 * 1024  # larger files are sent as before, uncached
MAX_REMEMBERED = 10000      # (path, stat) -> copy entries kept before starting over

StatKey = Tuple[str, int, int, int, int, int]


def _stat_key(path: str, st: os.stat_result) -> StatKey:
    # ctime changes on every write and chmod, even one within the mtime's resolution.
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class SharedInputs:
    """Content-named copies of shared input files, counted by the tasks that use them."""

    def __init__(self, directory: str, grace: float = GRACE):
        self.directory = directory
        self.grace = grace
        self._copy_of: Dict[StatKey, str] = {}
        self._users: Dict[str, int] = {}
        self._last_used: Dict[str, float] = {}

    def reset(self) -> None:
        """Create the directory (owner only), or empty what a previous master left in it."""
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            for name in os.listdir(self.directory):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    continue
        os.chmod(self.directory, 0o700)
        self._copy_of.clear()
        self._users.clear()
        self._last_used.clear()

    def acquire(self, path: str) -> Optional[str]:
        """The content-named copy of path, counted as used; None to send path itself.

        None when path is not a regular file we can read (Work Queue then reports
        the problem as it always did) or is too large to be worth copying.
        """
        try:
            copy = self._copy(path)
        except OSError:
            return None
        if copy is not None:
            self._users[copy] = self._users.get(copy, 0) + 1
            self._last_used[copy] = time.monotonic()
        return copy

    def release(self, copy: str) -> None:
        """A task that used copy is over."""
        left = self._users.get(copy, 0) - 1
        if left > 0:
            self._users[copy] = left
        else:
            self._users.pop(copy, None)
            self._last_used[copy] = time.monotonic()

    def in_use(self, copy: str) -> int:
        return self._users.get(copy, 0)

    def sweep(self, now: Optional[float] = None) -> List[str]:
        """Remove the copies no task used for GRACE seconds; returns their paths."""
        now = time.monotonic() if now is None else now
        stale = [copy for copy, used in self._last_used.items()
                 if copy not in self._users and now - used >= self.grace]
        for copy in stale:
            del self._last_used[copy]
            try:
                os.unlink(copy)
            except OSError:
                pass
        if stale:
            gone = set(stale)
            self._copy_of = {key: copy for key, copy in self._copy_of.items()
                             if copy not in gone}
        return stale

    def _copy(self, path: str) -> Optional[str]:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SIZE:
            return None
        key = _stat_key(path, st)
        known = self._copy_of.get(key)
        if known is not None and known in self._last_used:
            return known
        with open(path, "rb") as source:
            data = source.read(MAX_SIZE + 1)
            after = os.fstat(source.fileno())
        if len(data) > MAX_SIZE:
            return None
        copy = os.path.join(self.directory, hashlib.sha256(data).hexdigest())
        if copy not in self._last_used:
            # No fsync: a copy is needed only while this process lives, and the next
            # master wipes the directory anyway.
            atomic_write(copy, data, mode=0o700, durable=False)
        if _stat_key(path, after) == key:  # not rewritten while we read it
            if len(self._copy_of) >= MAX_REMEMBERED:
                self._copy_of.clear()
            self._copy_of[key] = copy
        return copy
