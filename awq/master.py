"""The master's turn: spool -> job table -> Work Queue -> job table -> snapshot.

What matters, in order:

1. Nothing accepted is lost. A job enters the table from its spool record;
   the record is deleted only after a snapshot holding the job is durable.
   On start the table is reloaded: idle jobs go back to Work Queue, jobs that
   were running are requeued (pilots are safe to rerun; NumJobStarts shows
   the attempt), removal requests left behind are carried out.
2. Jobs start fast: see awq/watcher.py.
3. condor_q never talks to us: it reads the snapshot and stat/latest.

The parts: JobTable (every state change), SpoolIntake (records and
requests), Dispatcher (tasks), SpoolWatcher (waking up), periodic (the
jobs' own expressions), Publisher (heartbeat, counters, summaries). The command line is awq/cli/alien_work_queue.py.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Optional, Tuple

from awq import periodic, watcher
from awq.dispatch import MAX_TASKS, REFILL_INTERVAL, Dispatcher
from awq.control import JobControl
from awq.intake import SpoolIntake
from awq.jobtable import JobTable
from awq.publish import HEARTBEAT_INTERVAL, UNFIT_GRACE, Publisher
from awq.shared_inputs import SharedInputs
from awq.spool import REQUEST_ACTIONS, Spool, SpoolError
from awq.tasks import TaskBackend

log = logging.getLogger("awq.master")

FLUSH_INTERVAL = 0.25        # s between snapshot writes while jobs change, at least
FLUSH_COST_SHARE = 0.01      # and long enough that writing them takes at most this share of
MAX_FLUSH_INTERVAL = 10.0    # a core (a 100,000-job table takes ~0.2-0.5 s of CPU to write)
# The share is a fixed cost per second, not per job: at 1 %, 10,000 jobs in the table
# (~20 ms a write) are written every 2 s, and at 300 jobs/s that is 0.03 ms per job.
STATE_POLL_INTERVAL = 0.5    # s between task-state sweeps (idle -> running)
SERVICE_INTERVAL = 1.0       # s between wait(0) calls while Work Queue is empty
MAX_FAILED_TURNS = 30        # turns in a row that raise before the master gives up


class Master:
    def __init__(self, spool: Spool, backend: TaskBackend, owner: str,
                 job_wrapper: Optional[str] = None, max_tasks: int = MAX_TASKS,
                 periodic_interval: float = periodic.INTERVAL, project_name: str = "",
                 unfit_grace: float = UNFIT_GRACE):
        self.spool = spool
        self.backend = backend
        self.table = JobTable()
        self.intake = SpoolIntake(spool, owner)
        self.shared_inputs = SharedInputs(spool.shared_dir)
        self.dispatcher = Dispatcher(backend, job_wrapper, max_tasks, self.shared_inputs)
        self.watcher = watcher.SpoolWatcher(
            (spool.queue_dir,) + tuple(spool.request_dir(a) for a in REQUEST_ACTIONS),
            spool.drain_path)
        self.periodic_interval = periodic_interval
        self.last_periodic = 0.0
        self.last_flush = 0.0
        self.flush_interval = FLUSH_INTERVAL
        self.last_state_poll = 0.0
        self.stop_requested = False
        self.wake_enabled = False
        # The spool's mtimes at the last turn, while the watcher child vouches for them:
        # a turn comes with every finished task, and six stat calls were 3 % of a job's CPU.
        self.spool_unchanged: Optional[Tuple[watcher.Mtimes, bool]] = None
        self.publisher = Publisher(spool, backend, self.table, project_name, unfit_grace)
        self.control = JobControl(self.table, self.dispatcher)

    # -- the parts of a turn

    def recover(self) -> None:
        state = self._load_snapshot()
        if not state:
            return
        finished = self.table.restore(state)
        # The snapshot may hold finished jobs whose history line was lost.
        self.spool.history.append(finished)
        if finished:
            log.info("moved %d finished jobs from the snapshot to history", len(finished))

    def _load_snapshot(self) -> Optional[Dict[str, Any]]:
        """The newest snapshot generation that reads whole; a damaged one is set aside (the
        next write would keep it as the previous generation) and the log says what to do."""
        published = self.spool.published
        loaded = published.load_generation()
        if loaded.state is None and loaded.damaged:
            raise SpoolError(
                "no generation of the job table snapshot is readable (%s). Starting would lose "
                "the jobs only they hold: check the disk and run alien_work_queue --check; to "
                "start with the %d records still in %s, move %s aside"
                % ("; ".join("%s: %s" % damage for damage in loaded.damaged),
                   len(self.spool.records.pending()), self.spool.queue_dir,
                   " and ".join(path for path, _ in loaded.damaged)))
        for path, why in loaded.damaged:
            log.error("the job table snapshot %s is damaged (%s); kept as %s for inspection",
                      path, why, published.set_aside(path))
        if loaded.state is None:
            return None
        if loaded.path != published.snapshot_path:
            written = loaded.state.get("written")
            log.warning(
                "restored the job table from the previous generation %s (written %s, %d jobs): "
                "%s. No accepted job is lost: records and requests are deleted only once two "
                "generations hold them, and those still in the spool are taken again; a job that "
                "changed state since then may do so again (a pilot may run once more). Nothing "
                "to do unless this repeats (then check the disk); alien_work_queue --check "
                "verifies the spool",
                loaded.path, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(written))
                if isinstance(written, (int, float)) else "at an unknown time",
                len(loaded.state.get("jobs", ())),
                "the current one was damaged" if loaded.damaged else
                "the current one (%s) is missing" % published.snapshot_path)
        return loaded.state

    def apply_requests(self) -> None:
        for request in self.intake.requests():
            self.control.apply_request(request)

    def apply_periodic_expressions(self) -> None:
        now = time.time()
        if now - self.last_periodic >= self.periodic_interval:
            self.last_periodic = now
            self.control.apply_periodic_expressions(now)

    def flush(self, force: bool = False) -> None:
        now = time.time()
        if self.table.changed and (force or now - self.last_flush >= self.flush_interval):
            started = time.process_time()   # CPU: waiting for fsync costs the master nothing
            self.spool.published.write_snapshot(dict(self.table.snapshot(),
                                                     master_pid=os.getpid(), written=now,
                                                     records=self.intake.held_records()))
            cost = time.process_time() - started
            self.flush_interval = min(MAX_FLUSH_INTERVAL,
                                      max(FLUSH_INTERVAL, cost / FLUSH_COST_SHARE))
            self.last_flush = now
            self.table.mark_saved()
            if self.intake.commit():  # spool files go once two generations hold them
                self.table.mark_changed()
            self.spool.history.append(self.table.retire_finished())  # gone from the next snapshot
            self.publisher.publish(now)
        elif self.publisher.due(now):
            self.publisher.publish(now)

    def draining(self) -> bool:
        return os.path.exists(self.spool.drain_path)

    # -- the loop

    def run(self) -> int:
        self.wake_enabled = self.backend.enable_wake_on_child_exit()
        log.info("listening for workers on port %d; spool %s; early wake-up %s",
                 self.backend.port, self.spool.root, "on" if self.wake_enabled else "off")
        for path in self.spool.master_files.sweep_temp_files():
            log.info("removed %s, left half-written by a process that died", path)
        self.shared_inputs.reset()
        self.recover()
        failures = 0
        while not self.stop_requested:
            try:
                if not self.turn():
                    break
                failures = 0
            except Exception as err:  # e.g. a full disk: keep the jobs, try again
                failures += 1
                log.error("the loop failed (%d in a row): %s: %s", failures,
                          type(err).__name__, err)
                log.debug("the loop failed", exc_info=True)
                if failures >= MAX_FAILED_TURNS:
                    raise
                time.sleep(min(failures, 10))
        self.flush(force=True)
        if self.table.changed:  # finished jobs just went to history: leave a snapshot without them
            self.flush(force=True)
        self.watcher.stop_all()
        return 0

    def turn(self) -> bool:
        """One pass over everything; False when a drain has emptied the queue."""
        if self.spool_unchanged:
            baseline, draining = self.spool_unchanged
        else:
            baseline, draining = self.watcher.baseline(), self.draining()
        self.spool_unchanged = None
        if self.watcher.needs_look(baseline, draining):
            if not draining:
                self.intake.take_records(self.table)
            self.apply_requests()
        self.apply_periodic_expressions()
        self.dispatcher.submit_idle(self.table)
        self.dispatcher.forget_unused_copies()
        self.flush()
        if draining and not self.table.active():
            log.info("drain file %s present and no job left: exiting", self.spool.drain_path)
            return False
        # A task of ours not yet returned by wait() is in Work Queue: no need to ask it.
        if not self.dispatcher.tasks and self.backend.empty():
            self._sleep_until_spool_changes(baseline)
        else:
            self._wait_for_work_queue(baseline)
        return True

    def _wait_for_work_queue(self, baseline: watcher.Mtimes) -> None:
        if self.wake_enabled:
            self.watcher.ensure_child(baseline, self._time_to_next_duty())
        result = self.backend.wait(1)
        self.watcher.child_exited(self.backend.reap_children())
        if self.wake_enabled:
            self.spool_unchanged = self.watcher.vouched_baseline(baseline)
        if result is not None:
            self.dispatcher.record_result(result, self.table)
        if time.time() - self.last_state_poll >= STATE_POLL_INTERVAL:
            self.dispatcher.check_every_task(self.table)
            self.last_state_poll = time.time()

    def _time_to_next_duty(self) -> float:
        """How long wait() may block: until a deferred snapshot write, or more tasks, are due."""
        due = watcher.LIFETIME
        if self.table.changed:
            due = max(0.0, self.flush_interval - (time.time() - self.last_flush))
        if self.dispatcher.refill_wanted():
            due = min(due, REFILL_INTERVAL)
        return due

    def _sleep_until_spool_changes(self, baseline: watcher.Mtimes) -> None:
        deadline = time.monotonic() + HEARTBEAT_INTERVAL
        drain = self.draining()
        next_service = 0.0
        while not self.stop_requested and time.monotonic() < deadline:
            if time.monotonic() >= next_service:
                # Work Queue only accepts workers and updates the catalog inside
                # wait(); with nothing queued it returns at once.
                self.backend.wait(0)
                next_service = time.monotonic() + SERVICE_INTERVAL
            if self.watcher.changed_since(baseline, drain) or self._flush_due():
                return
            time.sleep(watcher.POLL_INTERVAL)

    def _flush_due(self) -> bool:
        """A change waits for its snapshot (e.g. a finished job still shown by condor_q)."""
        return self.table.changed and time.time() - self.last_flush >= self.flush_interval


if __name__ == "__main__":
    # Installs before the command line moved to awq/cli/ started the master this way:
    # say where it went rather than exit quietly (docs/operating.md, Upgrades).
    raise SystemExit("ERROR: the master is started by alien_work_queue "
                     "(python3 -m awq.cli.alien_work_queue), not python3 -m awq.master")
