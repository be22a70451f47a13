"""Durable file primitives every part of the spool is written with.

Every file that matters is written with temp + fsync + rename + fsync of the
directory, so a ``kill -9`` at any instant leaves either the old or the new
version. Nothing owned by another user, or writable by group/world, is ever
trusted, and it is checked on the open descriptor, not the path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, List, Optional, Tuple

LOCK_TIMEOUT = 60.0
LOCK_RETRY_INTERVAL = 0.005   # flock has no timed wait: poll it, briefly
# What atomic_write leaves behind if its writer dies: the writer's PID is group 1.
TEMP_NAME_PATTERN = r"^\..+\.tmp\.(\d+)\.[0-9a-f]+$"


class SpoolError(Exception):
    """The spool cannot be used as asked; the message says why, in one line."""


class LockTimeout(SpoolError):
    """Another process held the lock for longer than the wait allowed."""


# ---------------------------------------------------------------- trust checks

def _describe_owner(uid: int) -> str:
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return "uid %d" % uid


def check_trusted(path: str, want_dir: bool) -> os.stat_result:
    """Refuse anything another user owns or could have written."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise SpoolError("cannot inspect %s: %s" % (path, err.strerror))
    return check_stat(path, st, want_dir)


def check_stat(path: str, st: os.stat_result, want_dir: bool) -> os.stat_result:
    """check_trusted on a stat result already taken (from an open descriptor)."""
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        what = "a directory" if want_dir else "a regular file"
        raise SpoolError("%s is not %s (symbolic links are refused)" % (path, what))
    if st.st_uid != os.geteuid():
        raise SpoolError("%s is owned by %s, not by %s: refusing to use it"
                         % (path, _describe_owner(st.st_uid), _describe_owner(os.geteuid())))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SpoolError("%s is writable by group or others (mode %04o): refusing to use it"
                         % (path, stat.S_IMODE(st.st_mode)))
    return st


def check_secret_file(path: str) -> None:
    """A password file must be ours and readable by nobody else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise SpoolError("cannot open the password file %s: %s" % (path, err.strerror))
    try:
        st = check_stat(path, os.fstat(fd), want_dir=False)
    finally:
        os.close(fd)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SpoolError("the password file %s can be read by group or others (mode %04o): "
                         "chmod 600 it" % (path, stat.S_IMODE(st.st_mode)))


def open_trusted(path: str, limit: int) -> Tuple[int, int]:
    """(descriptor, size) of a file we own and only we can write, refusing files larger
    than limit. The caller closes the descriptor.

    The checks apply to the open descriptor, not the path: the master swaps
    files in by rename at any moment, and what we read must be what we checked.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SpoolError("%s is a symbolic link: refusing to use it" % path)
        raise SpoolError("cannot open %s: %s" % (path, err.strerror))
    try:
        st = check_stat(path, os.fstat(fd), want_dir=False)
        if st.st_size > limit:
            raise SpoolError("%s is %d bytes, more than the %d allowed" % (path, st.st_size, limit))
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def read_trusted(path: str, limit: int) -> bytes:
    """The content of a file we own and only we can write (see open_trusted)."""
    fd, _ = open_trusted(path, limit)
    try:
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SpoolError("%s grew past the %d bytes allowed" % (path, limit))
    return data


# ---------------------------------------------------------------- writing

def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o600, durable: bool = True,
                 previous: Optional[str] = None) -> None:
    """Replace path with data so that a crash leaves the old or the new file.

    durable=False skips the fsyncs: the file appears whole, but only for as long as the
    machine stays up (for files a restart throws away anyway). previous: a path in the
    same directory that keeps the file being replaced (the snapshot's previous
    generation); path itself never goes missing, so a reader always finds a whole file.
    """
    directory, name = os.path.split(path)
    tmp = _temp_name(directory, name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if previous is not None:
            _keep_previous(path, previous, durable)
        os.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(directory or ".")


def _temp_name(directory: str, name: str) -> str:
    return os.path.join(directory, ".%s.tmp.%d.%s" % (name, os.getpid(), os.urandom(4).hex()))


def _keep_previous(path: str, previous: str, durable: bool) -> None:
    """Make previous name the file now at path, by a second link to it (no copy).

    The link is made under a temp name and renamed over previous, so previous too is
    always whole. Once path is replaced, previous is the only name of the old file.
    """
    directory, name = os.path.split(previous)
    link = _temp_name(directory, name)
    try:
        os.link(path, link)
    except FileNotFoundError:
        return  # nothing to keep yet (the first write), or set aside: previous stays as it is
    try:
        os.rename(link, previous)
    except BaseException:
        unlink_quietly(link)
        raise
    if durable:
        # Before path moves on: a crash must never leave a new path beside a previous
        # that is two generations old.
        fsync_dir(directory or ".")


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def visible_names(path: str) -> List[str]:
    """A directory's entries without dot files (atomic_write's temp files); [] if it is gone."""
    try:
        return [n for n in os.listdir(path) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def make_spool_directory(path: str) -> None:
    """mkdir a spool directory: ours alone, or shared read-only with AWQ_SPOOL_GROUP."""
    group = os.environ.get("AWQ_SPOOL_GROUP")
    mode = 0o750 if group else 0o700
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    except OSError as err:
        raise SpoolError("cannot create the spool directory %s: %s" % (path, err.strerror))
    if group:
        _chgrp(path, group)
        os.chmod(path, mode)  # mkdir's mode is filtered by the umask


def _chgrp(path: str, group: str) -> None:
    import grp
    try:
        gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
    except KeyError:
        raise SpoolError("AWQ_SPOOL_GROUP names an unknown group: %s" % group)
    os.chown(path, -1, gid)


# ---------------------------------------------------------------- locks

class FileLock:
    """An flock on a lock file, taken with a bounded wait."""

    def __init__(self, path: str, exclusive: bool = True, timeout: float = LOCK_TIMEOUT):
        self.path = path
        self.exclusive = exclusive
        self.timeout = timeout
        self.fd = -1

    def acquire(self) -> "FileLock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        op = (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, op)
                return self
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                self.release()
                raise LockTimeout("timed out after %.0f s waiting for the lock %s"
                                  % (self.timeout, self.path))
            time.sleep(LOCK_RETRY_INTERVAL)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
