"""Several Work Queue managers behind the one front, as one task backend.

Work Queue (CCTools 8) sends at most one task per pass of its wait() loop, and every
pass walks its whole task table twice (for a retrieved task, for one waiting to be
retrieved): handing out N tasks costs O(N^2). K managers, each holding a K-th of the
tasks, cut that K-fold (benchmarks/SCALING.md). The front hands each proved worker to
the next manager in turn; a task goes to the manager whose workers have the most free
cores (and fit it). A task id here is the manager's own id times K plus the manager's
index, so it names both.

Waiting: the master may sleep in one manager's wait() only. A pass of each of the others
(Backend.wait_briefly) comes first, and the front rings a doorbell whenever it carried
bytes: a tiny `head -c 1` child reads the doorbell and exits, and a child's exit ends
Work Queue's wait() (the early wake-up, awq/waker.py). Without the early wake-up each
wait() call sleeps in the next manager in turn, at most `timeout` seconds.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import time
from typing import Dict, List, Optional, Sequence, Tuple

from awq.tasks import TaskResult, TaskSpec, TaskState

log = logging.getLogger("awq.master")

# Tasks per manager above which a master started with --managers auto adds one: about
# where one manager's hand-out to a full set of workers stays within a few seconds.
TASKS_PER_MANAGER = 12500
SUMMED = ("workers_connected", "workers_busy", "workers_idle", "total_cores",
          "committed_cores", "total_memory", "total_disk", "tasks_waiting",
          "tasks_on_workers", "total_workers_lost", "total_workers_removed",
          "total_tasks_dispatched")
LARGEST = ("max_cores", "max_memory", "max_disk")
# s a task may wait in a manager with no free core, while another has some, before its job
# is handed over anew (the manager's workers left, or none had joined when it was placed).
MOVE_AFTER = 1.0
CLOSE_RANGE_SYSCALL = 436     # close_range(2), Linux 5.9
CLOSE_RANGE_CLOEXEC = 4


def managers_for(max_tasks: int) -> int:
    """--managers auto: one per TASKS_PER_MANAGER tasks the master may hand out."""
    return max(1, -(-max_tasks // TASKS_PER_MANAGER))


def choose_manager(free: Sequence[int], fits: Sequence[bool], turn: int) -> int:
    """The manager for the next task: among those with a worker big enough (all, if none
    has), the one with the most free cores; a tie goes to the first from `turn` on."""
    count = len(free)
    order = [(turn + step) % count for step in range(count)]
    candidates = [index for index in order if fits[index]] or order
    return max(candidates, key=lambda index: free[index])


class Doorbell:
    """The front rings it when it carried bytes; a `head -c 1` child that reads it exits,
    which ends the wait() the master sleeps in (the early wake-up)."""

    def __init__(self) -> None:
        self.listening, self.ringing = socket.socketpair()
        self.pid: Optional[int] = None
        self.program = shutil.which("head") or "/usr/bin/head"

    def front_end(self) -> int:
        """The descriptor the front rings on; close_front_end once the front has it."""
        return self.ringing.fileno()

    def close_front_end(self) -> None:
        self.ringing.close()

    def silence(self) -> None:
        """Forget the rings so far (the passes that follow see what they rang for)."""
        while True:
            try:
                if not self.listening.recv(4096, socket.MSG_DONTWAIT):
                    return
            except (BlockingIOError, InterruptedError):
                return

    def arm(self) -> None:
        """A child that exits at the next ring (if none waits already)."""
        if self.pid is not None:
            return
        _close_on_exec_from(3)  # Work Queue's links must not live on in the child
        self.pid = os.posix_spawn(
            self.program, ["head", "-c", "1"], {},
            file_actions=[(os.POSIX_SPAWN_DUP2, self.listening.fileno(), 0),
                          (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                          (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)],
            setsigdef=(signal.SIGTERM, signal.SIGINT, signal.SIGPIPE))

    def exited(self, pids: List[int]) -> List[int]:
        """pids without the doorbell child's (which is then gone)."""
        if self.pid in pids:
            pids = [pid for pid in pids if pid != self.pid]
            self.pid = None
        return pids

    def close(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (OSError, ChildProcessError):
                pass
            self.pid = None
        self.listening.close()
        if self.ringing.fileno() >= 0:
            self.ringing.close()


def _close_on_exec_from(lowest: int) -> None:
    """Mark every descriptor from `lowest` up close-on-exec: Work Queue leaves its links
    inheritable, and a child holding one would keep a gone worker's connection open."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(CLOSE_RANGE_SYSCALL, lowest, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC) == 0:
            return
    except (OSError, AttributeError):
        pass
    import fcntl
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= lowest:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.fcntl(fd, fcntl.F_GETFD) | fcntl.FD_CLOEXEC)
            except OSError:
                pass


class Shards:
    """K Work Queue managers (awq.workqueue.Backend) as one TaskBackend."""

    def __init__(self, managers: Sequence, doorbell: Optional[Doorbell] = None) -> None:
        self.managers = list(managers)
        self.count = self.manager_count = len(self.managers)
        self.port = self.managers[0].port
        self.supports_tls = getattr(self.managers[0], "supports_tls", False)
        self.doorbell = doorbell or Doorbell()
        self.early_wake = False
        self.free = [0] * self.count          # free cores, as each manager's stats last said
        self.largest: List[Dict[str, int]] = [{} for _ in range(self.count)]
        self.live = [0] * self.count          # tasks submitted and not yet ended, per manager
        self.held_back = 0
        self.turn = 0                         # where the next pass and the next tie start
        self.exited: List[int] = []           # children collected while draining the module
        # Tasks seen waiting (in Work Queue's queue, on no worker), since when.
        self.waiting_since: Dict[int, float] = {}
        self.stranded_look = 0.0
        self.cores: Dict[int, int] = {}       # tasks asking for more than one core
        self.stats_read = 0.0

    # -- starting

    def listen_privately(self, directory: str, public_port: int) -> List[str]:
        """Each manager on its own Unix socket in `directory`: the first named by the public
        port (it alone reports to a catalog), the others "PORT.i"."""
        paths: List[str] = []
        for index, manager in enumerate(self.managers):
            paths += manager.listen_privately(
                directory, public_port, "%d.%d" % (public_port, index) if index else "",
                clear_stale=index == 0)
        self.port = public_port
        return paths

    def enable_wake_on_child_exit(self) -> bool:
        self.early_wake = self.managers[0].enable_wake_on_child_exit()
        if self.early_wake:
            for manager in self.managers[1:]:
                self.early_wake = manager.enable_wake_on_child_exit(handle_signal=False) \
                    and self.early_wake
        if not self.early_wake:
            log.warning("%d managers without the early wake-up: the master sleeps in each "
                        "in turn, and a task may wait up to a second for its result to be "
                        "seen", self.count)
        return self.early_wake

    def reap_children(self) -> List[int]:
        pids, self.exited = self.exited + self.managers[0].reap_children(), []
        return self.doorbell.exited(pids)

    def close(self) -> None:
        self.doorbell.close()

    # -- tasks

    def submit(self, spec: TaskSpec) -> int:
        fits = [bool(largest) and spec.cores <= largest.get("max_cores", 0)
                for largest in self.largest]
        index = choose_manager(self.free, fits, self.turn)
        local = self.managers[index].submit(spec)
        log.debug("%s: to Work Queue manager %d (free cores %s)", spec.tag, index, self.free)
        self.free[index] -= spec.cores
        self.live[index] += 1
        task_id = local * self.count + index
        self.waiting_since[task_id] = time.monotonic()
        if spec.cores != 1:
            self.cores[task_id] = spec.cores
        return task_id

    def cancel(self, task_id: int) -> None:
        index, local = divmod_id(task_id, self.count)
        self.managers[index].cancel(local)
        self.live[index] = max(0, self.live[index] - 1)
        self.waiting_since.pop(task_id, None)
        self.cores.pop(task_id, None)

    def task_state(self, task_id: int) -> TaskState:
        index, local = divmod_id(task_id, self.count)
        state = self.managers[index].task_state(local)
        if state is TaskState.WAITING:
            # Put back by Work Queue (its worker left): waiting from now.
            self.waiting_since.setdefault(task_id, time.monotonic())
        else:
            self.waiting_since.pop(task_id, None)
        return state

    def task_host(self, task_id: int) -> Optional[str]:
        index, local = divmod_id(task_id, self.count)
        return self.managers[index].task_host(local)

    def task_address(self, task_id: int) -> Optional[str]:
        index, local = divmod_id(task_id, self.count)
        return self.managers[index].task_address(local)

    def stranded_tasks(self) -> List[int]:
        """Tasks waiting over MOVE_AFTER s in a manager whose free cores cannot start them
        while another's can: the master cancels them and hands their jobs over anew
        (awq.dispatch). Looked for at most every MOVE_AFTER / 2 s, with the free cores read
        again if older."""
        now = time.monotonic()
        if not self.waiting_since or now - self.stranded_look < MOVE_AFTER / 2:
            return []
        self.stranded_look = now
        if now - self.stats_read >= MOVE_AFTER / 2:
            self.stats()
        most = max(self.free)
        return [task_id for task_id, since in self.waiting_since.items()
                if since <= now - MOVE_AFTER
                and self.free[task_id % self.count] < self.cores.get(task_id, 1) <= most]

    def wait(self, timeout: int) -> Optional[TaskResult]:
        """A finished task of any manager, else None once a child exited (a spool
        watcher's, a timer's) or `timeout` s passed. As Work Queue's own wait(), it ends at
        a whole second of the clock (and 0 counts as 1): the idle master's service call is
        when workers join, so it serves every manager until then."""
        if not self.early_wake:
            return self._sleep_in_next(timeout)
        deadline = int(time.time()) + max(1, timeout)
        while True:
            self.doorbell.silence()
            for step in range(self.count):
                index = (self.turn + step) % self.count
                result = self.managers[index].wait_briefly()
                if result is not None:
                    self.turn = (index + 1) % self.count
                    return self._ours(index, result)
            # The passes leave their placeholders behind, and may have collected a child
            # whose exit is for the waker to hear of: then this wait ends.
            self.exited += self.doorbell.exited(self.managers[0].drain_children())
            if self.exited or time.time() >= deadline:
                return None
            self.doorbell.arm()
            result = self._sleep_in_next(1)  # until a ring, a child's exit or the second
            if result is not None:
                return result

    def _sleep_in_next(self, timeout: int) -> Optional[TaskResult]:
        index = self.turn
        self.turn = (index + 1) % self.count
        result = self.managers[index].wait(timeout)
        return self._ours(index, result) if result is not None else None

    def _ours(self, index: int, result: TaskResult) -> TaskResult:
        self.live[index] = max(0, self.live[index] - 1)
        task_id = result.task_id * self.count + index
        self.waiting_since.pop(task_id, None)
        self.cores.pop(task_id, None)
        return result._replace(task_id=task_id)

    def empty(self) -> bool:
        return all(manager.empty() for manager in self.managers)

    def forget_cached(self, local: str) -> None:
        for manager in self.managers:
            manager.forget_cached(local)

    def tell_jobs_held_back(self, count: int) -> None:
        """Each manager counts in its tasks_left the jobs held back and every other
        manager's tasks: a factory's direct query, answered by whichever manager the front
        hands it to, and the catalog (the first manager's entry) see the whole demand."""
        self.held_back = count
        total = sum(self.live)
        for manager, live in zip(self.managers, self.live):
            manager.tell_jobs_held_back(count + total - live)

    def stats(self) -> Dict[str, int]:
        self.stats_read = time.monotonic()
        summed = {name: 0 for name in SUMMED + LARGEST}
        for index, manager in enumerate(self.managers):
            stats = manager.stats()
            self.free[index] = max(0, stats.get("total_cores", 0)
                                   - stats.get("committed_cores", 0))
            self.largest[index] = {name: stats.get(name, 0) for name in LARGEST} \
                if stats.get("workers_connected") else {}
            for name in SUMMED:
                summed[name] += stats.get(name, 0)
            for name in LARGEST:
                summed[name] = max(summed[name], stats.get(name, 0))
        self.tell_jobs_held_back(self.held_back)
        return summed


def divmod_id(task_id: int, count: int) -> Tuple[int, int]:
    """(manager index, the manager's own task id) of a Shards task id."""
    local, index = divmod(task_id, count)
    return index, local
