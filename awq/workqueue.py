"""The one module that talks to CCTools Work Queue.

Both spellings of the bindings are supported: conda-forge's
``ndcctools.work_queue`` and the older ``work_queue`` (Debian's
python3-workqueue, CCTools tarballs).
"""

from __future__ import annotations

import ctypes
import importlib
import inspect
import logging
import os
import signal
import socket
import stat
import sys
from typing import Any, Dict, List, Optional, Tuple

from awq import job_files
from awq.tasks import TaskResult, TaskSpec, TaskState

log = logging.getLogger("awq.workqueue")

class WorkQueueUnavailable(ImportError):
    pass


def import_work_queue() -> Any:
    errors = []
    for name in ("ndcctools.work_queue", "work_queue"):
        try:
            return importlib.import_module(name)
        except ImportError as err:
            errors.append("%s (%s)" % (name, err))
    raise WorkQueueUnavailable(
        "cannot import the Work Queue Python module: tried %s. Install CCTools' "
        "Python bindings (Debian: python3-workqueue; conda: ndcctools) or source "
        "$ALIEN_WORKQUEUE/etc/env.sh" % "; ".join(errors))


def tls_supported() -> bool:
    """Whether the installed bindings take a TLS key and certificate (CCTools 8 on Debian: no)."""
    return "ssl" in inspect.signature(import_work_queue().WorkQueue.__init__).parameters


class Backend:
    """A Work Queue manager with the few operations the master uses."""

    manager_count = 1

    def __init__(self, port: int, password_file: Optional[str] = None,
                 tls: Optional[Tuple[str, str]] = None,
                 catalog_host: Optional[str] = None, catalog_port: int = 9097,
                 project_name: str = "alien_jobs", debug_log: Optional[str] = None,
                 stats_log: Optional[str] = None, staging_dir: Optional[str] = None):
        self.wq = import_work_queue()
        self.supports_tls = "ssl" in inspect.signature(self.wq.WorkQueue.__init__).parameters
        self.queue = _new_queue(self.wq, self.supports_tls, port, tls, debug_log, stats_log)
        self.port = self.queue.port
        _place_tasks_first_come(self.wq, self.queue)
        if password_file:
            self.queue.specify_password_file(password_file)
        if catalog_host:
            _enable_catalog(self.wq, self.queue, catalog_host, catalog_port, project_name)
        self._states = _state_table(self.wq)
        self._wake = EarlyWake()
        self._staging = OutputStaging(staging_dir) if staging_dir else None

    # -- listening behind the front (awq/front.py)

    def listen_privately(self, directory: str, public_port: int, name: str = "",
                         clear_stale: bool = True) -> List[str]:
        """Make Work Queue accept only on a Unix socket in `directory` (made ours alone),
        named `name` (default: the public port's number); return [its path]. Work Queue
        then reports `public_port` as its own (see _move_listener_to_unix_socket)."""
        path = _move_listener_to_unix_socket(_listening_descriptor(self.port), directory,
                                             name or str(public_port), clear_stale)
        self.port = public_port
        return [path]

    # -- waking wait() early (see EarlyWake)

    def enable_wake_on_child_exit(self, handle_signal: bool = True) -> bool:
        """handle_signal: also install the SIGCHLD handler (one manager of several: only
        the first; the process module itself is one per process)."""
        return self._wake.enable(self._native_queue_pointer(), handle_signal)

    def reap_children(self) -> List[int]:
        return self._wake.reap_children()

    def drain_children(self) -> List[int]:
        """Every exited child the process module holds, whether SIGCHLD said so or not."""
        return self._wake.reap_children(force=True)

    def wait_briefly(self) -> Optional[TaskResult]:
        """One pass of wait(): what arrived is handled and ready tasks are sent, without
        blocking (see EarlyWake.end_next_wait_early); needs the early wake-up."""
        self._wake.end_next_wait_early()
        return self.wait(1)

    def _native_queue_pointer(self) -> int:
        for name in ("_work_queue", "_task_queue"):
            handle = getattr(self.queue, name, None)
            if handle is not None:
                return int(handle)
        raise AttributeError("no native queue handle on the WorkQueue object")

    # -- tasks

    def submit(self, spec: TaskSpec) -> int:
        task = self.wq.Task(spec.command)
        task.specify_tag(spec.tag)
        for local, remote in spec.inputs:
            task.specify_input_file(local, remote, cache=False)
        for local, remote in spec.cached_inputs:
            task.specify_input_file(local, remote, cache=True)
        staged = []
        for local, remote in spec.outputs:
            if self._staging is not None:
                staged.append((self._staging.place_for(remote), local))
                local = staged[-1][0]
            task.specify_output_file(local, remote, cache=False)
        for name, value in spec.environment.items():
            task.specify_environment_variable(name, value)
        task.specify_cores(spec.cores)
        task.specify_memory(spec.memory_mb)
        task.specify_disk(spec.disk_mb)
        task_id = self.queue.submit(task)
        if staged and self._staging is not None:
            self._staging.expect(task_id, staged)
        return task_id

    def cancel(self, task_id: int) -> None:
        self.queue.cancel_by_taskid(task_id)
        if self._staging is not None:
            self._staging.discard(task_id)
        # The bindings keep each submitted Task in _task_table until wait()
        # returns it; a cancelled task never comes back, so drop it or it leaks.
        getattr(self.queue, "_task_table", {}).pop(task_id, None)

    def task_state(self, task_id: int) -> TaskState:
        return self._states.get(self.queue.task_state(task_id), TaskState.UNKNOWN)

    def task_host(self, task_id: int) -> Optional[str]:
        """The worker a task was sent to (the bindings' table holds the Task until wait())."""
        task = getattr(self.queue, "_task_table", {}).get(task_id)
        return _hostname(task) if task is not None else None

    def task_address(self, task_id: int) -> Optional[str]:
        """The address:port of the worker a task is on now (a new connection each time Work
        Queue sends the task again); None while it waits."""
        task = getattr(self.queue, "_task_table", {}).get(task_id)
        return _address(task) if task is not None else None

    def wait(self, timeout: int) -> Optional[TaskResult]:
        task = self.queue.wait(timeout)
        if task is None:
            return None
        succeeded = int(task.result) == 0
        exit_code = int(task.return_status) if succeeded else None
        failure = "" if succeeded else self._describe_failure(task)
        if self._staging is not None:
            problem = self._staging.deliver(task.id)
            if problem and succeeded:
                succeeded, exit_code, failure = False, None, problem
        return TaskResult(task.id, succeeded, exit_code, failure, _hostname(task),
                          address=_address(task))

    def _describe_failure(self, task: Any) -> str:
        text = getattr(task, "result_str", None)
        if callable(text):
            text = text()
        return "Work Queue task failed: %s (result %d)" % (text or "unknown", int(task.result))

    def empty(self) -> bool:
        return bool(self.queue.empty())

    def stranded_tasks(self) -> List[int]:
        """Tasks that would start sooner as new ones elsewhere: none, with one manager."""
        return []

    def forget_cached(self, local: str) -> None:
        """Tell the workers that cached local (a cached input) to delete it."""
        self.queue.invalidate_cache_file(local)

    def tell_jobs_held_back(self, count: int) -> None:
        """Count jobs that wait in the master's table, not yet tasks, in Work Queue's demand.

        Work Queue reports them as tasks_left (the catalog, work_queue_status, a
        factory's direct query); a factory sizes the fleet from tasks_waiting +
        tasks_left + tasks_on_workers, so without this it sees only the few tasks
        the master hands over at a time.
        """
        self.queue.specify_num_tasks_left(max(0, count))

    def stats(self) -> Dict[str, int]:
        """Work Queue's own counters that an admin asks about (work_queue_stats)."""
        stats = self.queue.stats
        return {name: int(getattr(stats, name, 0)) for name in STAT_NAMES}


def _new_queue(wq: Any, supports_tls: bool, port: int, tls: Optional[Tuple[str, str]],
               debug_log: Optional[str], stats_log: Optional[str]) -> Any:
    kwargs: Dict[str, Any] = {"port": port}
    if debug_log:
        kwargs["debug_log"] = debug_log
    if stats_log:
        kwargs["stats_log"] = stats_log
    if tls:
        if not supports_tls:
            raise OSError("this Work Queue (%s) has no TLS support: --ssl-key/--ssl-cert "
                          "cannot be used" % getattr(wq, "__file__", "?"))
        kwargs["ssl"] = tls
    try:
        return wq.WorkQueue(**kwargs)
    except Exception as err:
        raise OSError("cannot listen on port %d for workers: %s" % (port, err))


def _place_tasks_first_come(wq: Any, queue: Any) -> None:
    """Send each task to the first connected worker it fits.

    Work Queue's default (by time) checks the task against every worker, and, until
    some worker has finished a task (as after a restart), against them all once more in
    this order; each check computes the task's box for that worker. A pilot gains
    nothing from the faster worker, and the checks per task sent grow with the workers.
    """
    algorithm = getattr(wq, "WORK_QUEUE_SCHEDULE_FCFS", None)
    setter = getattr(queue, "specify_algorithm", None)
    if algorithm is not None and setter is not None:
        setter(algorithm)


def _state_table(wq: Any) -> Dict[int, TaskState]:
    """Work Queue's task states (work_queue_task_state_t) in the master's terms."""
    table = {}
    for name, state in (("READY", TaskState.WAITING), ("RUNNING", TaskState.ON_WORKER),
                        ("WAITING_RETRIEVAL", TaskState.ON_WORKER),
                        ("RETRIEVED", TaskState.FINISHED), ("DONE", TaskState.FINISHED)):
        table[getattr(wq, "WORK_QUEUE_TASK_" + name)] = state
    return table


def _enable_catalog(wq: Any, queue: Any, host: str, port: int, project: str) -> None:
    # A name makes Work Queue advertise itself: only ever to the catalog asked for.
    queue.specify_catalog_server(host, port)
    mode = getattr(wq, "WORK_QUEUE_MANAGER_MODE_CATALOG",
                   getattr(wq, "WORK_QUEUE_MASTER_MODE_CATALOG", 1))
    setter = getattr(queue, "specify_manager_mode", None) or getattr(queue, "specify_master_mode")
    setter(mode)
    queue.specify_name(project)


def _move_listener_to_unix_socket(listener: int, directory: str, name: str,
                                  clear_stale: bool = True) -> str:
    """Replace Work Queue's listening socket in place (dup2) by a Unix socket only we reach.

    CCTools 8 binds every interface and has no setting for one address. A TCP port on
    loopback would still be open to every local user, and a silent connection there stalls
    Work Queue as any did before the front: a Unix socket in a directory only we can enter
    is reached by the front (awq/front.py) alone. CCTools takes such a peer: link_accept
    and add_worker only need getnameinfo to name its address (the front binds its end, see
    front_handshake), and they set TCP options whose failure they ignore.

    Work Queue reports as its port (work_queue_port(), the catalog's "port") what
    getnameinfo makes of its listener's address; for a Unix socket that is the path it was
    bound to: bound as the bare `name` (the public port's number) from inside `directory`,
    Work Queue reports the port the front listens on, as workers must be told in catalog
    mode. Bound from inside the directory also keeps a long spool path within the 108
    bytes of a socket address.
    """
    _private_directory(directory)
    # Left by masters that were killed (on this port or another): the spool's lock says
    # none runs now. Not for a second manager of the same master: the first's is fresh.
    for stale in os.listdir(directory) if clear_stale else ():
        if stat.S_ISSOCK(os.lstat(os.path.join(directory, stale)).st_mode):
            _remove(os.path.join(directory, stale))
    path = os.path.join(directory, name)
    inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous = os.open(".", getattr(os, "O_PATH", os.O_RDONLY))  # even if unreadable
        try:
            os.chdir(directory)
            inner.bind(name)
        except OSError as err:
            raise OSError("cannot make Work Queue's private socket %s: %s (the spool must be "
                          "on a file system that holds Unix sockets)" % (path, err.strerror))
        finally:
            os.fchdir(previous)
            os.close(previous)
        inner.listen(socket.SOMAXCONN)
        inner.setblocking(False)  # as CCTools sets its own listener: it polls, then accepts
        os.dup2(inner.fileno(), listener, inheritable=False)
    finally:
        inner.close()
    return path


def _private_directory(directory: str) -> None:
    """Make `directory` if needed; refuse it unless only we can use it."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise OSError("%s must be a directory of ours that only we can use" % directory)


class OutputStaging:
    """Work Queue writes a task's outputs to a private directory of the spool, never to
    the job's own paths: it would open them itself, following any symbolic link there and
    creating them executable. The master then copies each to its place (awq.job_files)."""

    def __init__(self, directory: str):
        self.directory = directory
        self._spool = os.path.realpath(os.path.dirname(directory))
        umask = os.umask(0o077)   # read it back: there is no other way to learn it
        os.umask(umask)
        self._mode = job_files.JOB_FILE_MODE & ~umask
        self._expected: Dict[int, List[Tuple[str, str]]] = {}   # task id -> (staged, path)
        self._count = 0
        _private_directory(directory)
        # Left by a master that stopped: their tasks are gone, their jobs run again.
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))

    def place_for(self, remote: str) -> str:
        self._count += 1
        return os.path.join(self.directory, "%d.%s" % (self._count, remote))

    def expect(self, task_id: int, staged: List[Tuple[str, str]]) -> None:
        self._expected[task_id] = staged

    def discard(self, task_id: int) -> None:
        for staged, _ in self._expected.pop(task_id, ()):
            _remove(staged)

    def deliver(self, task_id: int) -> str:
        """Put the task's fetched outputs in place; why one could not be, or ""."""
        problems = []
        for staged, path in self._expected.pop(task_id, ()):
            try:
                job_files.deliver(staged, path, self._mode, spool=self._spool)
            except FileNotFoundError:
                continue   # not fetched: Work Queue reports the task's failure itself
            except OSError as err:
                problems.append(str(err))
                _remove(staged)
        return "cannot write the job's output: %s" % "; ".join(problems) if problems else ""


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


STAT_NAMES = ("workers_connected", "workers_busy", "workers_idle", "total_cores",
              "committed_cores", "total_memory", "total_disk", "tasks_waiting",
              "tasks_on_workers", "total_workers_lost", "total_workers_removed",
              "total_tasks_dispatched",
              "max_cores", "max_memory", "max_disk")  # max_*: the largest connected worker


def _listening_descriptor(port: int) -> int:
    """Work Queue's listening socket in this process: the one listening on `port`."""
    try:
        fds = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            listening = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            if listening and probe.family in (socket.AF_INET, socket.AF_INET6) \
                    and probe.getsockname()[1] == port:
                return fd
        except OSError:
            pass
        finally:
            probe.close()
    raise OSError("cannot find Work Queue's listening socket on port %d" % port)


def _address(task: Any) -> Optional[str]:
    try:
        address = task.host
    except Exception:  # as for the host name: not yet sent anywhere
        return None
    return str(address) if address else None


def _hostname(task: Any) -> Optional[str]:
    try:
        host = task.hostname
    except Exception:  # the bindings raise on a task not yet sent anywhere
        return None
    return str(host) if host else None


class EarlyWake:
    """Make wait() return as soon as a child process exits.

    wait(t) blocks t whole seconds while tasks are out, so alone it would
    delay every new job by up to a second. Work Queue's process module ends
    the wait when any child exits; awq/waker.py forks a tiny spool watcher that
    exits when the spool changes. The switch is not in the Python bindings,
    hence ctypes; without it the master polls once a second.

    Once enabled, the process module reaps every child of the master (wait4 on
    any pid) into its own list, and while that list is not empty it reaps no
    other: reap_children must empty it after every child exit, busy or idle,
    or the next child to exit stays a zombie and wait() returns at once.
    """

    def __init__(self) -> None:
        self._lib: Optional[ctypes.CDLL] = None
        # Looking for exited children costs a wait4 and a ctypes call, and the master
        # asks after every finished task; a SIGCHLD handler says when there can be one.
        self._child_signalled = True
        self._on_signal_only = False

    def enable(self, queue_pointer: int, handle_signal: bool = True) -> bool:
        if os.environ.get("AWQ_DISABLE_EARLY_WAKE"):
            log.info("early wake-up disabled by AWQ_DISABLE_EARLY_WAKE")
            return False
        lib = _load_native_library()
        if lib is None:
            return False
        try:
            enable = lib.work_queue_enable_process_module
            enable.argtypes = [ctypes.c_void_p]
            enable(queue_pointer)
            self._process_wait = lib.process_wait
            self._process_wait.restype = ctypes.c_void_p
            self._process_wait.argtypes = [ctypes.c_int]
            libc = ctypes.CDLL(None)
            self._free = libc.free
            self._free.argtypes = [ctypes.c_void_p]
            self._calloc = libc.calloc
            self._calloc.restype = ctypes.c_void_p
            self._calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
            self._putback = lib.process_putback
            self._putback.argtypes = [ctypes.c_void_p]
            self._lib = lib
            if handle_signal:
                self._reap_on_signal()
            return True
        except (AttributeError, TypeError, ValueError, OSError) as err:
            log.info("early wake-up unavailable (%s): polling once a second", err)
            return False

    def _reap_on_signal(self) -> None:
        def child_signalled(_signum: int, _frame: object) -> None:
            self._child_signalled = True

        try:
            # A Python-level handler also makes SIGCHLD interrupt Work Queue's poll(), so
            # a watcher's exit ends wait() at once instead of at its timeout.
            signal.signal(signal.SIGCHLD, child_signalled)
            self._on_signal_only = True
        except ValueError:  # not the main thread: look after every wait() instead
            self._on_signal_only = False

    def reap_children(self, force: bool = False) -> List[int]:
        """Collect the children that exited, through the process module (see the class);
        force: look even if no SIGCHLD came (a child may have been collected in a wait)."""
        pids: List[int] = []
        if self._lib is None or (self._on_signal_only and not self._child_signalled
                                 and not force):
            return pids
        self._child_signalled = False   # before the look: a later exit signals again
        while True:
            pointer = self._process_wait(0)
            if not pointer:
                return pids
            pid = ctypes.c_int.from_address(pointer).value
            if pid != NO_CHILD:
                pids.append(pid)
            self._free(pointer)

    def end_next_wait_early(self) -> None:
        """Make the next wait() return once it has nothing left to do now.

        Work Queue's wait() ends, when a pass of its loop found nothing to send, receive
        or accept, if the process module holds an exited child: a placeholder that names
        no process (NO_CHILD) does it. reap_children drops it with the real ones.
        """
        if self._lib is None:
            return
        entry = self._calloc(1, PROCESS_INFO_SIZE)
        if not entry:
            raise MemoryError("cannot allocate the process module's placeholder")
        ctypes.c_int.from_address(entry).value = NO_CHILD
        self._putback(entry)


# dttools' struct process_info: pid_t, int status, struct rusage (144 bytes on Linux),
# rounded up; only the pid is read back.
PROCESS_INFO_SIZE = 256
NO_CHILD = -1   # the pid of end_next_wait_early's placeholder: no process has it


def _load_native_library() -> Optional[ctypes.CDLL]:
    candidates = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        base = os.path.basename(path)
        if base.endswith(".so") and "work_queue" in base:
            candidates.append(path)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.work_queue_enable_process_module  # noqa: B018 (probe the symbol)
            lib.process_wait  # noqa: B018
            lib.process_putback  # noqa: B018
            return lib
        except (OSError, AttributeError):
            continue
    log.info("early wake-up unavailable: Work Queue's native library not found")
    return None
