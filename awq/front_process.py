"""The front's child process: how the master forks it, watches it and ends it.

The front (awq/front.py) runs in a process of its own so that its loop never waits on
Work Queue's; it ends when the master's pipe closes, or with the master itself.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from typing import Optional, Sequence, Set, Tuple, Union

from awq.front import Front, raise_open_file_limit, read_password

log = logging.getLogger("awq.front")

# The front leaves as soon as it sees the master's pipe close; past this it is killed.
FRONT_STOP_WAIT = 5.0


def run_child(public: socket.socket, inner_paths: Sequence[str],
              password_file: Optional[str], stop_fd: int,
              doorbell_fd: Optional[int] = None) -> None:
    """The front's process: serve until the master's pipe closes; never returns."""
    code = 0
    try:
        raise_open_file_limit()
        password = read_password(password_file) if password_file else None
        # By its name from inside its directory: a long spool path would not fit in the
        # 108 bytes of a socket address.
        os.chdir(os.path.dirname(inner_paths[0]))
        front = Front(public, [os.path.basename(path) for path in inner_paths], password,
                      stop_fd=stop_fd, doorbell_fd=doorbell_fd)
        front.serve()
        front.close()
    except BaseException as err:  # the master must hear of it: workers can no longer reach it
        log.error("the front stopped: %s: %s; stopping the master", type(err).__name__, err)
        try:
            os.kill(os.getppid(), signal.SIGTERM)
        except OSError:
            pass
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


class FrontProcess:
    """The master's handle on its front child: started forked, stopped by PID."""

    def __init__(self, pid: int, stop_write_fd: int, address: Tuple[str, int]) -> None:
        self.pid = pid
        self.stop_write_fd = stop_write_fd
        self.address = address
        self.stopping = False

    def wait_for_exit(self) -> None:
        """Block until the front has ended (reaped here, or by Work Queue's process module)."""
        while True:
            try:
                pid, _ = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid:
                return

    def stop(self, timeout: float = FRONT_STOP_WAIT) -> None:
        """Close the pipe the front watches, wait for it a bounded time, then kill it."""
        self.stopping = True
        if self.stop_write_fd >= 0:
            os.close(self.stop_write_fd)
            self.stop_write_fd = -1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return  # reaped already (Work Queue's process module reaps any child)
            if pid:
                return
            time.sleep(0.01)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass


def start_front(public: socket.socket, inner_paths: Union[str, Sequence[str]],
                password_file: Optional[str], keep_fds: Tuple[int, ...] = (),
                doorbell_fd: Optional[int] = None) -> FrontProcess:
    """Fork the front; the child keeps only the public socket, the pipe, the doorbell (when
    there are several managers, all in one directory) and the log's fds."""
    paths = [inner_paths] if isinstance(inner_paths, str) else list(inner_paths)
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            # A TERM or INT for the whole group (systemd's default KillMode, a Ctrl-C, a
            # killpg) is the master's to handle: it saves its table and then closes the pipe
            # that ends us. Ending first would look like a front that died under it.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _die_with_parent(parent)
            os.close(write_fd)
            keep = {0, 1, 2, public.fileno(), read_fd} | set(keep_fds)
            if doorbell_fd is not None:
                keep.add(doorbell_fd)
            # Reopened first, the old ones closed by their handlers: closed by number here, a
            # handler's file object would close, when collected, whatever reused that number.
            keep |= _reopen_log_files()
            _close_all_but(keep)
        except BaseException:
            os._exit(1)
        run_child(public, paths, password_file, read_fd, doorbell_fd)
    os.close(read_fd)
    return FrontProcess(pid, write_fd, public.getsockname()[:2])


def _die_with_parent(parent: int) -> None:
    """End with the master even when a child it forked still holds the pipe's other end."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the pipe alone says the master is gone
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(0)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _reopen_log_files() -> Set[int]:
    """The master's log file, reopened by name (the master rotates it, the front follows);
    returns the descriptors of the files reopened."""
    import logging.handlers
    reopened = set()
    for logger in (logging.getLogger("awq"), logging.getLogger()):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):
                follower = logging.handlers.WatchedFileHandler(handler.baseFilename)
                follower.setFormatter(handler.formatter)
                logger.removeHandler(handler)
                handler.close()
                logger.addHandler(follower)
                if follower.stream is not None:
                    reopened.add(follower.stream.fileno())
    return reopened


def _close_all_but(keep: Set[int]) -> None:
    """Work Queue's loopback listener, the master's lock and the rest are not the front's."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass

