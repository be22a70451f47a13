"""Jobs to Work Queue tasks and back: which task runs which job, and what became of it."""

from __future__ import annotations

import logging
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from awq import exit_rules
from awq.jobs import Job, JobId, JobStatus
from awq.jobtable import JobTable
from awq.pacing import SYSTEM_CLOCK, Clock, Every
from awq.shared_inputs import SharedInputs
from awq.tasks import TaskBackend, TaskResult, TaskSpec, TaskState, task_spec

log = logging.getLogger("awq.master")

MAX_TASKS = 10000
# Tasks handed to Work Queue that no worker has taken yet: at most this many more than
# the connected workers have free cores. Work Queue (CCTools 8) walks its whole ready
# list, and several times its whole task table, on every pass of wait(), so its cost per
# job grows with the tasks it holds; the rest wait in our table (benchmarks/ANALYSIS.md).
# Few: while every core is busy, each pass of wait() also matches every waiting task
# against every worker (category minima, rmsummary_*), and a few are enough to keep each
# freed core busy, because the master refills after each result.
MIN_WAITING = 4
# And at most this many for free cores at once, even when thousands are free: the walks
# are per task sent, so 5,000 tasks handed over at once cost O(5,000^2) list steps. The
# master hands over the next batch as soon as Work Queue has sent these (refill_wanted).
MAX_HANDOVER = 256
REFILL_INTERVAL = 0.05      # s: how soon to look again while free cores wait for tasks
CAPACITY_INTERVAL = 0.1     # s between looks at the workers' free cores (a few us each)
# s between looks at which waiting tasks reached a worker: a look asks Work Queue about
# every waiting task, and a turn comes with every finished task (hundreds a second).
# As often as the refills (a look makes their room); condor_q sees it at the next snapshot.
NOTE_STARTED_INTERVAL = REFILL_INTERVAL
# s between sweeps of every task the master has out even though no worker left: a
# running task goes back to waiting almost only when Work Queue removes its worker (the
# sweeps follow its count of removed workers), but a worker may also give a task back
# (forsaken) while staying connected. A sweep asks Work Queue about every running task,
# so it is rare.
FULL_SWEEP_INTERVAL = 10.0
SWEEP_INTERVAL = 60.0       # s between looks for shared input copies no task uses


class TaskMap:
    """Job id <-> task id, kept in step in one place."""

    def __init__(self) -> None:
        self._task_of: Dict[JobId, int] = {}
        self._job_of: Dict[int, JobId] = {}

    def __len__(self) -> int:
        return len(self._task_of)

    def __contains__(self, jid: JobId) -> bool:
        return jid in self._task_of

    def items(self) -> Iterator[Tuple[JobId, int]]:
        return iter(list(self._task_of.items()))

    def add(self, jid: JobId, task_id: int) -> None:
        self._task_of[jid] = task_id
        self._job_of[task_id] = jid

    def pop_job(self, jid: JobId) -> Optional[int]:
        task_id = self._task_of.pop(jid, None)
        if task_id is not None:
            self._job_of.pop(task_id, None)
        return task_id

    def pop_task(self, task_id: int) -> Optional[JobId]:
        jid = self._job_of.pop(task_id, None)
        if jid is not None:
            self._task_of.pop(jid, None)
        return jid


class TaskSharedCopies:
    """Which shared input copies each task uses: taken when its task is made, let go when
    the task ends, and swept, here and from the workers' caches, once no task used them
    for a while. Without a SharedInputs every input is sent as it is."""

    def __init__(self, shared: Optional[SharedInputs], backend: TaskBackend,
                 clock: Clock = SYSTEM_CLOCK):
        self.shared = shared
        self.backend = backend
        self.copies_of: Dict[int, List[str]] = {}   # task id -> the shared copies it uses
        self.unused_look = Every(SWEEP_INTERVAL, clock, started_due=False)

    def take_for(self, spec: TaskSpec) -> List[str]:
        """Send the spec's shareable inputs as content-named copies, cached on the workers;
        returns the copies taken, to release if the task cannot be made."""
        if self.shared is None or not spec.shareable:
            return []
        copies, kept = [], []
        for local, remote in spec.inputs:
            copy = self.shared.acquire(local) if remote in spec.shareable else None
            if copy is None:
                kept.append((local, remote))
            else:
                spec.cached_inputs.append((copy, remote))
                copies.append(copy)
        spec.inputs = kept
        return copies

    def note_used_by(self, task_id: int, copies: List[str]) -> None:
        if copies:
            self.copies_of[task_id] = copies

    def task_ended(self, task_id: int) -> None:
        self.release(self.copies_of.pop(task_id, ()))

    def release(self, copies: Iterable[str]) -> None:
        if self.shared is not None:
            for copy in copies:
                self.shared.release(copy)

    def forget_unused(self) -> None:
        """Every SWEEP_INTERVAL: remove the copies no task used for their grace time."""
        if self.shared is None or not self.unused_look.take():
            return
        for copy in self.shared.sweep():
            try:
                self.backend.forget_cached(copy)
            except Exception as err:  # the workers' disks, never a reason to stop
                log.debug("cannot drop %s from the workers' caches: %s", copy, err)


class FreeCores:
    """The connected workers' cores no task holds, as Work Queue's stats last said."""

    def __init__(self, backend: TaskBackend, clock: Clock = SYSTEM_CLOCK):
        self.backend = backend
        self.seen = 0
        self.workers_lost = 0    # Work Queue's count so far, read with the cores
        self.workers_removed = 0  # every worker that left, lost or not: read with them
        self.stats_look = Every(CAPACITY_INTERVAL, clock)

    def look(self) -> int:
        """The free cores: asked of Work Queue at most every CAPACITY_INTERVAL."""
        if self.stats_look.take():
            try:
                stats = self.backend.stats()
                self.seen = max(0, int(stats.get("total_cores", 0))
                                - int(stats.get("committed_cores", 0)))
                self.workers_lost = int(stats.get("total_workers_lost", 0))
                self.workers_removed = int(stats.get("total_workers_removed", 0))
            except Exception as err:  # the limit is a tuning, never a reason to stop
                log.debug("cannot read Work Queue's stats: %s", err)
                self.seen = 0
        return self.seen


class Dispatcher:
    """Idle jobs become tasks as fast as Work Queue can start them; a task's progress
    becomes its job's state."""

    def __init__(self, backend: TaskBackend, job_wrapper: Optional[str] = None,
                 max_tasks: int = MAX_TASKS, shared: Optional[SharedInputs] = None,
                 clock: Clock = SYSTEM_CLOCK):
        self.backend = backend
        self.job_wrapper = job_wrapper
        self.max_tasks = max_tasks
        self.tasks = TaskMap()
        self.copies = TaskSharedCopies(shared, backend, clock)
        self.started_look = Every(NOTE_STARTED_INTERVAL, clock)
        # Tasks not seen on a worker yet (submitted, or put back by Work Queue), oldest first.
        self.waiting: Dict[int, JobId] = {}
        self.free_cores = FreeCores(backend, clock)
        # Idle jobs without a task were left in our table while free cores could start them.
        self._more_to_hand_over = False
        self.told_held_back = -1  # the count of idle jobs without a task Work Queue was told
        # Task id -> the worker address:port its job's current start was counted on. Work
        # Queue sends a task whose worker it lost to another at once when one is free, so
        # a look may never see it waiting in between: a new address is that start.
        self.started_on: Dict[int, str] = {}
        # Work Queue's counts of lost and of removed workers at the last sweep of every task.
        self.departures_seen = (0, 0)
        self.full_sweep = Every(FULL_SWEEP_INTERVAL, clock, started_due=False)

    def submit_idle(self, table: JobTable) -> int:
        """Hand idle jobs that have no task to Work Queue, as many as it can use; returns how many."""
        if self.started_look.take():
            self.check_waiting_tasks(table)
        room = 0
        # Work Queue's stats walk every task it holds: asked for the free cores only while
        # idle jobs without a task wait for them.
        if table.counts().idle > len(self.waiting):
            room = min(self.max_tasks - len(self.tasks),
                       self.waiting_limit() - len(self.waiting))
        started = self._hand_over(table, room) if room > 0 else 0
        # Idle jobs beyond the waiting tasks' own have no task yet.
        idle = table.counts().idle
        self._more_to_hand_over = self._cores_outnumber_waiting() and idle > len(self.waiting)
        if idle - len(self.waiting) != self.told_held_back:  # a factory sizes the fleet from it
            self.told_held_back = idle - len(self.waiting)
            self.backend.tell_jobs_held_back(self.told_held_back)
        return started

    def _hand_over(self, table: JobTable, room: int) -> int:
        """Up to room idle jobs without a task become tasks; returns how many."""
        started = 0
        refused = []
        # Lazily, oldest first: the jobs that already have a task come first, so a pass
        # costs what it submits, not the length of the queue.
        for jid in table.iter_idle():
            if started >= room:
                break
            if jid in self.tasks:
                continue
            try:
                task_id = self._submit(table.job(jid))
            except Exception as err:  # one bad job must not stop the others
                refused.append((jid, err))
                continue
            self.tasks.add(jid, task_id)
            self.waiting[task_id] = jid
            started += 1
        for jid, err in refused:  # not while iterating: a held job leaves the idle index
            table.hold(jid, "cannot create the Work Queue task: %s" % err)
        return started

    def _submit(self, job: Job) -> int:
        spec = task_spec(job, self.job_wrapper)
        copies = self.copies.take_for(spec)
        try:
            task_id = self.backend.submit(spec)
        except BaseException:
            self.copies.release(copies)
            raise
        self.copies.note_used_by(task_id, copies)
        return task_id

    def forget_unused_copies(self) -> None:
        """Remove shared copies no task used for a while, here and from the workers' caches."""
        self.copies.forget_unused()

    def waiting_limit(self) -> int:
        """How many tasks may wait in Work Queue: a few, plus what free cores can start now."""
        return MIN_WAITING + min(self.free_cores.look(), MAX_HANDOVER)

    def _cores_outnumber_waiting(self) -> bool:
        return self.free_cores.seen > len(self.waiting) and len(self.tasks) < self.max_tasks

    def refill_wanted(self) -> bool:
        """Whether free cores wait for jobs still in our table: hand over more soon."""
        return self._more_to_hand_over

    def check_waiting_tasks(self, table: JobTable) -> None:
        """Jobs whose waiting task reached a worker are running.

        Looks only at the tasks no worker had taken yet: cheap enough to run as often as
        the hand-overs, where check_every_task walks every task the master has out.
        """
        for task_id, jid in list(self.waiting.items()):
            state = self.backend.task_state(task_id)
            if state == TaskState.WAITING:
                continue
            del self.waiting[task_id]
            if state == TaskState.ON_WORKER and table.status(jid) == JobStatus.IDLE:
                self._started(table, jid, task_id)

    def _started(self, table: JobTable, jid: JobId, task_id: int,
                 address: Optional[str] = None, host: Optional[str] = None) -> None:
        """Count a start of jid's task, on the worker it is on now (or address, host)."""
        table.mark_running(jid, host or self.backend.task_host(task_id))
        address = address or self.backend.task_address(task_id)
        if address:
            self.started_on[task_id] = address

    def _count_unseen_start(self, table: JobTable, jid: JobId, task_id: int,
                            address: Optional[str], host: Optional[str]) -> None:
        """A running job's task is (or ran) on another worker than the one its start was
        counted on: Work Queue lost that worker and sent the task again between two looks.
        Counted as the requeue and the start a look would have seen."""
        counted_on = self.started_on.get(task_id)
        if address is None or counted_on is None or address == counted_on:
            return
        table.requeue(jid, "its worker %s went away or stopped answering"
                      % table.job(jid).get("RemoteHost", counted_on))
        self._started(table, jid, task_id, address, host)

    def cancel(self, jid: JobId) -> None:
        task_id = self.tasks.pop_job(jid)
        if task_id is not None:
            self.started_on.pop(task_id, None)
            self.waiting.pop(task_id, None)
            self.backend.cancel(task_id)
            self.copies.task_ended(task_id)

    def check_tasks(self, table: JobTable) -> None:
        """The tasks whose state can have changed since the last look: the waiting ones;
        every task once Work Queue removed a worker (its tasks went back to waiting, or on
        to another worker already), and every FULL_SWEEP_INTERVAL whatever happened."""
        self.free_cores.look()
        departures = (self.free_cores.workers_lost, self.free_cores.workers_removed)
        if departures != self.departures_seen or self.full_sweep.take():
            self.full_sweep.done()
            self.check_every_task(table)
        else:
            self.check_waiting_tasks(table)

    def check_every_task(self, table: JobTable) -> None:
        """Every task: a job whose task reached a worker is running; a running job whose task
        is back in Work Queue's queue lost its worker and is idle again.

        Only a task Work Queue put back to waiting sends its job back to idle:
        a finished task not yet returned by wait() keeps its job running, so a
        job's state never goes backwards on its way out.
        """
        # Only when Work Queue lost or removed a worker since the last look can a task have
        # moved to another: the addresses are not asked for on every look, as they cost per
        # task.
        departures = (self.free_cores.workers_lost, self.free_cores.workers_removed)
        moved_possible, self.departures_seen = departures != self.departures_seen, departures
        for jid, task_id in self.tasks.items():
            status = table.status(jid)
            state = self.backend.task_state(task_id)
            if state == TaskState.ON_WORKER and status == JobStatus.IDLE:
                self.waiting.pop(task_id, None)
                self._started(table, jid, task_id)
            elif state == TaskState.ON_WORKER and status == JobStatus.RUNNING and moved_possible:
                self._count_unseen_start(table, jid, task_id,
                                         self.backend.task_address(task_id),
                                         self.backend.task_host(task_id))
            elif state == TaskState.WAITING and status == JobStatus.RUNNING:
                # Work Queue gave up on the worker: it disconnected, or stopped answering
                # its keepalives (e.g. blocked); name it so the admin can look there.
                table.requeue(jid, "its worker %s went away or stopped answering"
                              % table.job(jid).get("RemoteHost", "(unknown)"))
                self.started_on.pop(task_id, None)
                self.waiting[task_id] = jid

    def record_result(self, result: TaskResult, table: JobTable) -> None:
        """A finished task's job completes, runs again or is held, as its exit and its
        OnExitHold/OnExitRemove decide (exit_rules); a task Work Queue could not run is
        held with Work Queue's reason. The task and its shared copies are let go (a task
        we cancelled changes no job)."""
        jid = self.tasks.pop_task(result.task_id)
        self.waiting.pop(result.task_id, None)
        self.copies.task_ended(result.task_id)
        if jid is None:
            return  # a task we cancelled
        if table.status(jid) == JobStatus.RUNNING:  # it may have run again since a look
            self._count_unseen_start(table, jid, result.task_id, result.address, result.host)
        self.started_on.pop(result.task_id, None)
        if table.status(jid) == JobStatus.IDLE:
            table.mark_running(jid, result.host)  # finished before a look saw it running
        if result.succeeded:
            # A requeued job has no task now: the next submit_idle hands it over again.
            table.end_run(jid, exit_rules.decide_exit(table.job(jid), result.exit_code,
                                                      result.exit_signal))
        else:
            table.hold(jid, result.failure)
