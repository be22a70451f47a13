"""Which of the master's Work Queue tasks to ask about, and when: a task's progress
becomes its job's state without asking Work Queue about every task on every turn."""

from __future__ import annotations

import logging
from typing import Dict, Iterator, Optional, Tuple

from awq.jobs import LOG_EACH_UP_TO, JobId, JobStatus, describe_ids
from awq.jobtable import JobTable
from awq.pacing import SYSTEM_CLOCK, Clock, Every
from awq.tasks import TaskBackend, TaskState

log = logging.getLogger("awq.master")

CAPACITY_INTERVAL = 0.1     # s between looks at the workers' free cores (a few us each)
# s between sweeps of every task the master has out even though no worker left: a
# running task goes back to waiting almost only when Work Queue removes its worker (the
# sweeps follow its count of removed workers), but a worker may also give a task back
# (forsaken) while staying connected. A sweep asks Work Queue about every running task,
# so it is rare.
FULL_SWEEP_INTERVAL = 10.0


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

    def departures(self) -> Tuple[int, int]:
        """Work Queue's counts of lost and of removed workers: a change means a task may
        have gone back to waiting or on to another worker."""
        return self.workers_lost, self.workers_removed


class TaskWatch:
    """Asking Work Queue about a task costs per task, so the watch asks about the tasks no
    worker took yet on every look, and about every task only when a worker left or every
    FULL_SWEEP_INTERVAL. It also keeps the worker each job's start was counted on, because
    Work Queue may resend a task to another worker between two looks."""

    def __init__(self, backend: TaskBackend, tasks: TaskMap, free_cores: FreeCores,
                 clock: Clock = SYSTEM_CLOCK):
        self.backend = backend
        self.tasks = tasks
        self.free_cores = free_cores
        # Tasks not seen on a worker yet (submitted, or put back by Work Queue), oldest first.
        self.waiting: Dict[int, JobId] = {}
        # Task id -> the worker address:port its job's current start was counted on. Work
        # Queue sends a task whose worker it lost to another at once when one is free, so
        # a look may never see it waiting in between: a new address is that start.
        self.started_on: Dict[int, str] = {}
        # Work Queue's counts of lost and of removed workers at the last sweep of every task.
        self.departures_seen = (0, 0)
        self.full_sweep = Every(FULL_SWEEP_INTERVAL, clock, started_due=False)

    def task_ended(self, task_id: int) -> None:
        """Forget a task that finished or was cancelled, so no later look counts it."""
        self.started_on.pop(task_id, None)
        self.waiting.pop(task_id, None)

    def check_tasks(self, table: JobTable) -> None:
        """The tasks whose state can have changed since the last look: the waiting ones;
        every task once Work Queue removed a worker (its tasks went back to waiting, or on
        to another worker already), and every FULL_SWEEP_INTERVAL whatever happened."""
        self.free_cores.look()
        if self.free_cores.departures() != self.departures_seen or self.full_sweep.take():
            self.full_sweep.done()
            self.check_every_task(table)
        else:
            self.check_waiting_tasks(table)

    def check_waiting_tasks(self, table: JobTable) -> None:
        """Jobs whose waiting task reached a worker are running.

        Looks only at the tasks no worker had taken yet: cheap enough to run as often as
        the hand-overs, where check_every_task walks every task the master has out.
        """
        # Past LOG_EACH_UP_TO looks (thousands of pilots starting at once), one line says
        # which jobs started instead of one a job (each at DEBUG), as for bulk requests.
        bulk = len(self.waiting) > LOG_EACH_UP_TO
        started = []
        with table.bulk_changes(quiet=bulk):
            for task_id, jid in list(self.waiting.items()):
                state = self.backend.task_state(task_id)
                if state == TaskState.WAITING:
                    continue
                del self.waiting[task_id]
                if state == TaskState.ON_WORKER and table.status(jid) == JobStatus.IDLE:
                    self._started(table, jid, task_id)
                    started.append(jid)
        if bulk and started:
            log.info("%d jobs idle -> running; jobs %s", len(started), describe_ids(started))

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
        departures = self.free_cores.departures()
        moved_possible, self.departures_seen = departures != self.departures_seen, departures
        for jid, task_id in self.tasks.items():
            status = table.status(jid)
            state = self.backend.task_state(task_id)
            if state == TaskState.ON_WORKER and status == JobStatus.IDLE:
                self.waiting.pop(task_id, None)
                self._started(table, jid, task_id)
            elif state == TaskState.ON_WORKER and status == JobStatus.RUNNING and moved_possible:
                self.count_unseen_start(table, jid, task_id,
                                        self.backend.task_address(task_id),
                                        self.backend.task_host(task_id))
            elif state == TaskState.WAITING and status == JobStatus.RUNNING:
                _requeue_lost(table, jid, "(unknown)")
                self.started_on.pop(task_id, None)
                self.waiting[task_id] = jid

    def count_unseen_start(self, table: JobTable, jid: JobId, task_id: int,
                           address: Optional[str], host: Optional[str]) -> None:
        """A running job's task is (or ran) on another worker than the one its start was
        counted on: Work Queue lost that worker and sent the task again between two looks.
        Counted as the requeue and the start a look would have seen."""
        counted_on = self.started_on.get(task_id)
        if address is None or counted_on is None or address == counted_on:
            return
        _requeue_lost(table, jid, counted_on)
        self._started(table, jid, task_id, address, host)

    def _started(self, table: JobTable, jid: JobId, task_id: int,
                 address: Optional[str] = None, host: Optional[str] = None) -> None:
        """Count a start of jid's task, on the worker it is on now (or address, host)."""
        table.mark_running(jid, host or self.backend.task_host(task_id))
        address = address or self.backend.task_address(task_id)
        if address:
            self.started_on[task_id] = address


def _requeue_lost(table: JobTable, jid: JobId, unnamed: str) -> None:
    """Back to idle: Work Queue gave up on the job's worker (it disconnected, or stopped
    answering its keepalives, e.g. blocked); named so the admin can look there."""
    table.requeue(jid, "its worker %s went away or stopped answering"
                  % table.job(jid).get("RemoteHost", unnamed))
