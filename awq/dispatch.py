"""Jobs to Work Queue tasks and back: which task runs which job, and what became of it."""

from __future__ import annotations

import logging
from typing import Dict, Iterable, List, Optional

from awq import exit_rules
from awq.jobs import Job, JobId, JobStatus
from awq.jobtable import JobTable
from awq.pacing import SYSTEM_CLOCK, Clock, Every
from awq.shared_inputs import SharedInputs
from awq.task_watch import FreeCores, TaskMap, TaskWatch
from awq.tasks import TaskBackend, TaskResult, TaskSpec, task_spec

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
# And at most this many per Work Queue manager for free cores at once, even when thousands
# are free: the walks are per task sent, so 5,000 tasks handed to one manager at once cost
# O(5,000^2) list steps. The master hands over the next batch as soon as Work Queue has
# sent these (refill_wanted).
MAX_HANDOVER = 256
REFILL_INTERVAL = 0.05      # s: how soon to look again while free cores wait for tasks
# s between looks at which waiting tasks reached a worker: a look asks Work Queue about
# every waiting task, and a turn comes with every finished task (hundreds a second).
# As often as the refills (a look makes their room); condor_q sees it at the next snapshot.
NOTE_STARTED_INTERVAL = REFILL_INTERVAL
SWEEP_INTERVAL = 60.0       # s between looks for shared input copies no task uses


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


class Dispatcher:
    """Idle jobs become tasks as fast as Work Queue can start them; a task's progress
    becomes its job's state (which tasks to ask about, and when, is the TaskWatch's)."""

    def __init__(self, backend: TaskBackend, job_wrapper: Optional[str] = None,
                 max_tasks: int = MAX_TASKS, shared: Optional[SharedInputs] = None,
                 clock: Clock = SYSTEM_CLOCK):
        self.backend = backend
        self.job_wrapper = job_wrapper
        self.max_tasks = max_tasks
        self.tasks = TaskMap()
        self.copies = TaskSharedCopies(shared, backend, clock)
        self.started_look = Every(NOTE_STARTED_INTERVAL, clock)
        self.free_cores = FreeCores(backend, clock)
        self.watch = TaskWatch(backend, self.tasks, self.free_cores, clock)
        # Idle jobs without a task were left in our table while free cores could start them.
        self._more_to_hand_over = False
        self.told_held_back = -1  # the count of idle jobs without a task Work Queue was told

    @property
    def waiting(self) -> Dict[int, JobId]:
        """Tasks not seen on a worker yet: their number bounds the hand-overs."""
        return self.watch.waiting

    def submit_idle(self, table: JobTable) -> int:
        """Hand idle jobs that have no task to Work Queue, as many as it can use; returns how many."""
        if self.started_look.take():
            self.watch.check_waiting_tasks(table)
        self._hand_over_stranded_anew()
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

    def _hand_over_stranded_anew(self) -> None:
        """A waiting task its manager cannot start while another could (awq/shards.py) is
        cancelled: its job, idle, gets a new task where the free cores are."""
        stranded = [task_id for task_id in self.backend.stranded_tasks()
                    if task_id in self.waiting]
        for task_id in stranded:
            self.cancel(self.waiting[task_id])
        if stranded:
            log.info("%d waiting task(s) handed over anew to a Work Queue manager with free "
                     "cores", len(stranded))

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
        return MIN_WAITING + min(self.free_cores.look(),
                                 MAX_HANDOVER * self.backend.manager_count)

    def _cores_outnumber_waiting(self) -> bool:
        return self.free_cores.seen > len(self.waiting) and len(self.tasks) < self.max_tasks

    def refill_wanted(self) -> bool:
        """Whether free cores wait for jobs still in our table: hand over more soon."""
        return self._more_to_hand_over

    def check_tasks(self, table: JobTable) -> None:
        """The master's turn to see which tasks started or lost their worker (TaskWatch)."""
        self.watch.check_tasks(table)

    def check_waiting_tasks(self, table: JobTable) -> None:
        """The cheap look: which waiting tasks reached a worker (TaskWatch)."""
        self.watch.check_waiting_tasks(table)

    def check_every_task(self, table: JobTable) -> None:
        """The full sweep: every task's state, starts and lost workers alike (TaskWatch)."""
        self.watch.check_every_task(table)

    def cancel(self, jid: JobId) -> None:
        task_id = self.tasks.pop_job(jid)
        if task_id is not None:
            self.watch.task_ended(task_id)
            self.backend.cancel(task_id)
            self.copies.task_ended(task_id)

    def record_result(self, result: TaskResult, table: JobTable) -> None:
        """A finished task's job completes, runs again or is held, as its exit and its
        OnExitHold/OnExitRemove decide (exit_rules); a task Work Queue could not run is
        held with Work Queue's reason. The task and its shared copies are let go (a task
        we cancelled changes no job)."""
        jid = self.tasks.pop_task(result.task_id)
        self.copies.task_ended(result.task_id)
        if jid is None:
            self.watch.task_ended(result.task_id)
            return  # a task we cancelled
        if table.status(jid) == JobStatus.RUNNING:  # it may have run again since a look
            self.watch.count_unseen_start(table, jid, result.task_id, result.address,
                                          result.host)
        self.watch.task_ended(result.task_id)
        if table.status(jid) == JobStatus.IDLE:
            table.mark_running(jid, result.host)  # finished before a look saw it running
        if result.succeeded:
            # A requeued job has no task now: the next submit_idle hands it over again.
            table.end_run(jid, exit_rules.decide_exit(table.job(jid), result.exit_code,
                                                      result.exit_signal))
        else:
            table.hold(jid, result.failure)
