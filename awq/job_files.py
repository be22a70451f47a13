"""Writing a job's output, error and user log where its submitter asked, safely.

These paths often sit in directories other users can write (a sticky /tmp). A file
there may be a link someone else planted to a file of the master's user; the kernel's
fs.protected_symlinks, which would stop it, is not set everywhere. So a job file is
opened without following a symbolic link, and refused when it is not a plain file of
ours with one name. It is created as HTCondor creates it: 0644 under the usual umask,
never executable. An output Work Queue fetched into the spool gets the job's path as a
second name (link(), which neither follows nor replaces anything there), and is copied
only where that cannot be (the name exists, or another file system).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional, Tuple

JOB_FILE_MODE = 0o644


class JobFileError(OSError):
    pass


def open_job_file(path: str, append: bool = False, spool: Optional[str] = None) -> int:
    """A descriptor to write path (created, or truncated unless append); JobFileError if
    path is a symbolic link, not a regular file, another user's, or has other hard links,
    or if its directory is, at this moment, inside spool (resolved: no link in its path;
    a directory swapped for a link since submit: the file is opened relative to the
    directory checked)."""
    dir_fd, name = _open_directory(path, spool)
    try:
        return _open_in(dir_fd, name, path, append)
    finally:
        os.close(dir_fd)


def _open_directory(path: str, spool: Optional[str]) -> Tuple[int, str]:
    """The open directory of path, checked not to lie in spool, and the file's name."""
    directory, name = os.path.split(path)
    try:
        dir_fd = os.open(directory or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise JobFileError("cannot open the directory of %s: %s" % (path, err.strerror))
    if spool is not None and _inside(_path_of(dir_fd, directory), spool):
        os.close(dir_fd)
        raise JobFileError("%s leads into the spool" % path)
    return dir_fd, name


def _open_in(dir_fd: int, name: str, path: str, append: bool) -> int:
    # O_NONBLOCK: a FIFO planted there must not block the master (regular files ignore it).
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    if append:
        flags |= os.O_APPEND
    try:
        fd = os.open(name, flags, JOB_FILE_MODE, dir_fd=dir_fd)
    except OSError as err:
        # ELOOP, or EACCES where the kernel protects sticky directories itself.
        if err.errno == errno.ELOOP or _is_link(dir_fd, name):
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
        if not append and info.st_size:   # a new file (the usual) needs no truncate call
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _path_of(dir_fd: int, directory: str) -> str:
    """Where the open directory really is (Linux names it in /proc; else resolve again)."""
    try:
        return os.readlink("/proc/self/fd/%d" % dir_fd)
    except OSError:
        return os.path.realpath(directory or "/")


def _inside(path: str, directory: str) -> bool:
    directory = directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")


def deliver(staged: str, path: str, mode: int, spool: Optional[str] = None) -> None:
    """Put the file Work Queue fetched into the spool (staged) at the job's path, with
    mode, and remove staged. JobFileError when path cannot be written safely;
    FileNotFoundError when there is no staged file."""
    dir_fd, name = _open_directory(path, spool)
    try:
        os.chmod(staged, mode)
        try:
            # A new name for the staged file: no copy, and link() never follows or
            # replaces what is there (EEXIST).
            os.link(staged, name, dst_dir_fd=dir_fd)
        except FileExistsError:
            _copy_into(staged, _open_in(dir_fd, name, path, append=False))
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise JobFileError("cannot write %s: %s" % (path, err.strerror))
            # Another file system, or one without hard links: a copy.
            _copy_into(staged, _open_in(dir_fd, name, path, append=False))
    finally:
        os.close(dir_fd)
    os.unlink(staged)


def _copy_into(staged: str, target: int) -> None:
    try:
        source = os.open(staged, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _copy(source, target, os.fstat(source).st_size)
        finally:
            os.close(source)
    finally:
        os.close(target)


def _copy(source: int, target: int, size: int) -> None:
    """In the kernel (a pilot's output may be large): no pass through Python's buffers."""
    offset = 0
    while offset < size:
        sent = os.sendfile(target, source, offset, size - offset)
        if sent == 0:
            return   # the file shrank meanwhile
        offset += sent
