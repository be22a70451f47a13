"""The running master's own files: master.lock, the workers' password, crash leftovers.

master.lock is an flock held for the master's lifetime and holds its PID, so
a second master is refused by name and the query tools tell a live master
from a dead one without trusting a PID that may have been reused.
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List, Optional, Sequence, Tuple

from awq.spool.files import (TEMP_NAME_PATTERN, FileLock, LockTimeout, SpoolError, atomic_write,
                             check_secret_file, unlink_quietly)

# condor_q may hold a shared probe of the lock for an instant: a second master waits
# that long before it concludes the first one is alive.
MASTER_LOCK_WAIT = 2.0
PASSWORD_BYTES = 32


class MasterFiles:
    def __init__(self, root: str, lock_path: str, password_path: str,
                 temp_file_dirs: Sequence[str]):
        self.root = root
        self.lock_path = lock_path
        self.password_path = password_path
        self.temp_file_dirs = tuple(temp_file_dirs)   # where atomic_write's leftovers may be

    def lock(self) -> FileLock:
        """Hold master.lock for the master's lifetime; a second master is refused by name."""
        lock = FileLock(self.lock_path, timeout=MASTER_LOCK_WAIT)
        try:
            lock.acquire()
        except LockTimeout:
            pid = self.pid()
            raise SpoolError("another alien_work_queue (PID %s) is already running on the "
                             "spool %s" % (pid if pid else "unknown", self.root))
        os.ftruncate(lock.fd, 0)
        os.write(lock.fd, b"%d\n" % os.getpid())
        os.fsync(lock.fd)
        return lock

    def pid(self) -> Optional[int]:
        """The PID the last master wrote into master.lock (it may be gone: see is_running)."""
        try:
            with open(self.lock_path, "rb") as handle:
                text = handle.read(64).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        except OSError:
            return None

    def is_running(self) -> bool:
        """True when some process holds master.lock (an flock, so never stale)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def ensure_password(self) -> Tuple[str, bool]:
        """The spool's own password file, made (random, 0600) on first use: (path, created)."""
        try:
            check_secret_file(self.password_path)
            return self.password_path, False
        except FileNotFoundError:
            atomic_write(self.password_path, os.urandom(PASSWORD_BYTES).hex().encode() + b"\n",
                         mode=0o600)
            return self.password_path, True

    def sweep_temp_files(self) -> List[str]:
        """Delete temp files whose writer is dead: a crash mid-write leaves them behind.

        atomic_write puts the writer's PID in every temp name, so a live
        condor_submit's half-written file is never touched.
        """
        import re  # here: only the master sweeps, and condor_q starts faster without re
        temp_name = re.compile(TEMP_NAME_PATTERN)
        removed = []
        for directory in self.temp_file_dirs:
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                match = temp_name.match(name)
                if match and not _pid_exists(int(match.group(1))):
                    unlink_quietly(os.path.join(directory, name))
                    removed.append(os.path.join(directory, name))
        return removed


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
