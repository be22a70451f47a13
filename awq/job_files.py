"""Writing a job's output, error and user log where its submitter asked, safely.

These paths often sit in directories other users can write (a sticky /tmp). A file
there may be a link someone else planted to a file of the master's user; the kernel's
fs.protected_symlinks, which would stop it, is not set everywhere. So a job file is
opened without following a symbolic link, and refused when it is not a plain file of
ours with one name. It is created as HTCondor creates it: 0644 under the usual umask,
never executable.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

JOB_FILE_MODE = 0o644
_COPY_CHUNK = 1024 * 1024


class JobFileError(OSError):
    pass


def open_job_file(path: str, append: bool = False) -> int:
    """A descriptor to write path (created, or truncated unless append); JobFileError if
    path is a symbolic link, not a regular file, another user's, or has other hard links."""
    # O_NONBLOCK: a FIFO planted there must not block the master (regular files ignore it).
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    if append:
        flags |= os.O_APPEND
    try:
        fd = os.open(path, flags, JOB_FILE_MODE)
    except OSError as err:
        if os.path.islink(path):
            raise JobFileError("%s is a symbolic link, which a job's file never follows" % path)
        raise JobFileError("cannot open %s: %s" % (path, err.strerror))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise JobFileError("%s is not a regular file" % path)
        if info.st_uid != os.geteuid():
            raise JobFileError("%s belongs to another user (uid %d)" % (path, info.st_uid))
        if info.st_nlink != 1:
            raise JobFileError("%s has other hard links" % path)
        # Truncated only now that it is known to be ours: O_TRUNC would act before the checks.
        if not append:
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def deliver(staged: str, path: str) -> None:
    """Copy the file Work Queue fetched into the spool (staged) to the job's path, then
    remove staged. JobFileError when path cannot be written safely."""
    fd = open_job_file(path)
    with os.fdopen(fd, "wb") as target, open(staged, "rb") as source:
        _copy(source, target)
    os.unlink(staged)


def _copy(source: BinaryIO, target: BinaryIO) -> None:
    while True:
        chunk = source.read(_COPY_CHUNK)
        if not chunk:
            return
        target.write(chunk)
