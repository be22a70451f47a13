"""The master's turn: spool -> job table -> Work Queue -> job table -> snapshot.

What matters, in order:

1. Nothing accepted is lost. A job enters the table from its spool record;
   the record is deleted only after a snapshot holding the job is durable.
   On start the table is reloaded: idle jobs go back to Work Queue, jobs that
   were running are requeued (pilots are safe to rerun; NumJobStarts shows
   the attempt), removal requests left behind are carried out. Every start is
   journaled the moment it is seen (awq/spool/starts.py), so a start no
   snapshot held yet is still counted after a kill -9.
2. Jobs start fast: see awq/waker.py.
3. condor_q never talks to us: it reads the snapshot and stat/latest.

The parts: JobTable (every state change), SpoolIntake (records and
requests), Dispatcher (tasks), Waker (waking up), SnapshotFlusher (snapshot
writes and the jobs that leave with them), periodic (the
jobs' own expressions), Publisher (heartbeat, counters, summaries). The command line is awq/cli/alien_work_queue.py.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional, Tuple

from awq import periodic
from awq.dispatch import MAX_TASKS, REFILL_INTERVAL, Dispatcher
from awq.control import JobControl
from awq.flushing import SnapshotFlusher
from awq.intake import SpoolIntake
from awq.jobs import JobId
from awq.jobtable import JobTable
from awq.pacing import SYSTEM_CLOCK, Clock, Every
from awq.publish import UNFIT_GRACE, Publisher
from awq.shared_inputs import SharedInputs
from awq.spool import REQUEST_ACTIONS, Spool, SpoolError
from awq.spool.starts import JournaledStart, StartJournal
from awq.tasks import TaskBackend
from awq.waker import Waker

log = logging.getLogger("awq.master")

# s between snapshot writes while jobs change, at least: condor_q sees a change this late.
FLUSH_INTERVAL = 0.25
# And long enough that writing them takes at most this share of a core: a write costs
# what the table holds, so a large table is written less often. A share of each second,
# not of each job: the more jobs go through, the less each pays.
FLUSH_COST_SHARE = 0.01
# s: but at least this often, however large the table: condor_q never shows an older one.
MAX_FLUSH_INTERVAL = 10.0
STATE_POLL_INTERVAL = 0.5    # s between task-state looks (idle -> running, worker lost)
MAX_FAILED_TURNS = 30        # turns in a row that raise before the master gives up
# s to pause after each failed turn in a row, growing by this much each time: what fails
# (a full disk, a lost file server) is seldom fixed within a turn, and a log line per
# turn would fill the disk faster.
RETRY_PAUSE_STEP = 1.0
MAX_RETRY_PAUSE = 10.0       # s: and at most this, so a fixed cause is noticed soon


class Master:
    def __init__(self, spool: Spool, backend: TaskBackend, owner: str,
                 job_wrapper: Optional[str] = None, max_tasks: int = MAX_TASKS,
                 periodic_interval: float = periodic.INTERVAL, project_name: str = "",
                 unfit_grace: float = UNFIT_GRACE, clock: Clock = SYSTEM_CLOCK):
        self.spool = spool
        self.backend = backend
        self.clock = clock
        self.table = JobTable()
        self.start_journal = StartJournal(spool.starts_dir)
        self.table.start_journal = self.start_journal
        # Starts a dead master journaled for jobs not in the table yet: those it took from
        # records after its last snapshot, taken again in the first turn.
        self.unapplied_starts: Dict[JobId, JournaledStart] = {}
        self.intake = SpoolIntake(spool, owner)
        self.shared_inputs = SharedInputs(spool.shared_dir)
        self.dispatcher = Dispatcher(backend, job_wrapper, max_tasks, self.shared_inputs,
                                     clock=clock)
        self.waker = Waker(
            backend, (spool.queue_dir,) + tuple(spool.request_dir(a) for a in REQUEST_ACTIONS),
            spool.drain_path, clock)
        self.periodic = Every(periodic_interval, clock)
        self.flushing = Every(FLUSH_INTERVAL, clock)   # its interval follows a write's cost
        self.state_poll = Every(STATE_POLL_INTERVAL, clock)
        self.stop_requested = False
        self.publisher = Publisher(spool, backend, self.table, project_name, unfit_grace,
                                   clock=clock)
        self.control = JobControl(self.table, self.dispatcher)
        # The intervals are read here, not in awq/flushing.py: a test or tool that sets
        # them on this module before starting a master gets them.
        self.flusher = SnapshotFlusher(spool, self.table, self.intake, self.start_journal,
                                       self.publisher, self.flushing, FLUSH_INTERVAL,
                                       MAX_FLUSH_INTERVAL, FLUSH_COST_SHARE)

    # -- the parts of a turn

    def recover(self) -> None:
        state = newest_readable_snapshot(self.spool)
        if state:
            finished = self.table.restore(state)
            # The snapshot may hold finished jobs whose history line was lost.
            self.spool.history.append(finished)
            if finished:
                log.info("moved %d finished jobs from the snapshot to history", len(finished))
        self.unapplied_starts = self.start_journal.replay()
        self.apply_journaled_starts()

    def apply_journaled_starts(self, last_chance: bool = False) -> None:
        """Count the starts the journal kept and the snapshot missed, before any job is
        dispatched again. last_chance: the records were taken again, so a start of a job
        still not in the table belongs to one that left (finished, in history)."""
        counted = 0
        for jid, start in list(self.unapplied_starts.items()):
            if jid in self.table:
                counted += self.table.count_journaled_start(jid, start.starts,
                                                            start.started_at, start.host)
                del self.unapplied_starts[jid]
        if last_chance:
            self.unapplied_starts = {}
        if counted:
            log.warning("%d job(s) started after the last snapshot before the master died: "
                        "NumJobStarts counts those starts (from the start journal %s)",
                        counted, self.spool.starts_dir)

    def apply_requests(self) -> None:
        self.control.apply_requests(self.intake.requests())

    def apply_periodic_expressions(self) -> None:
        if self.periodic.take():
            self.control.apply_periodic_expressions(time.time())

    def flush(self, force: bool = False) -> None:
        self.flusher.flush(force, starts_pending=bool(self.unapplied_starts))

    def retire_removed(self) -> None:
        self.flusher.retire_removed()

    # -- the loop

    def run(self) -> int:
        wake_enabled = self.waker.enable()
        log.info("listening for workers on port %d; spool %s; early wake-up %s",
                 self.backend.port, self.spool.root, "on" if wake_enabled else "off")
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
                self.clock.sleep(min(failures * RETRY_PAUSE_STEP, MAX_RETRY_PAUSE))
        self.flush(force=True)
        if self.table.changed:  # finished jobs just went to history: leave a snapshot without them
            self.flush(force=True)
        self.waker.stop()
        self.start_journal.close()
        return 0

    def turn(self) -> bool:
        """One pass over everything; False when a drain has emptied the queue."""
        if self.waker.look():
            if not self.waker.draining:
                self.intake.take_records(self.table)
                if self.unapplied_starts:
                    self.apply_journaled_starts(last_chance=True)
            self.apply_requests()
        draining = self.waker.draining
        self.apply_periodic_expressions()
        self.dispatcher.submit_idle(self.table)
        self.dispatcher.forget_unused_copies()
        self.flush()
        if draining and not self.table.active():
            log.info("drain file %s present and no job left: exiting", self.spool.drain_path)
            return False
        # A task of ours not yet returned by wait() is in Work Queue: no need to ask it.
        if not self.dispatcher.tasks and self.backend.empty():
            self.waker.sleep_until_news(self.time_to_next_duty(), self._stopping)
            return True
        result = self.waker.wait_for_task(self.time_to_next_duty())
        if result is not None:
            self.dispatcher.record_result(result, self.table)
        if self.state_poll.take():
            self.dispatcher.check_tasks(self.table)
        return True

    def _stopping(self) -> bool:
        return self.stop_requested

    def time_to_next_duty(self) -> float:
        """How long the master may sleep: until a snapshot write, more tasks, the heartbeat
        or the periodic expressions are due."""
        due = min(self.publisher.time_to_heartbeat(), self.periodic.time_left())
        if self.table.changed:  # a change waits for its snapshot (condor_q shows the old one)
            due = min(due, self.flushing.time_left())
        if self.dispatcher.refill_wanted():
            due = min(due, REFILL_INTERVAL)
        return due


def newest_readable_snapshot(spool: Spool) -> Optional[Dict[str, Any]]:
    """The newest snapshot generation that reads whole; a damaged one is set aside (the
    next write would keep it as the previous generation) and the log says what to do."""
    published = spool.published
    loaded = published.load_generation()
    if loaded.state is None and loaded.damaged:
        raise SpoolError(
            "no generation of the job table snapshot is readable (%s). Starting would lose "
            "the jobs only they hold: check the disk and run alien_work_queue --check; to "
            "start with the %d records still in %s, move %s aside"
            % ("; ".join("%s: %s" % damage for damage in loaded.damaged),
               len(spool.records.pending()), spool.queue_dir,
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


if __name__ == "__main__":
    # Installs before the command line moved to awq/cli/ started the master this way:
    # say where it went rather than exit quietly (docs/operating.md, Upgrades).
    raise SystemExit("ERROR: the master is started by alien_work_queue "
                     "(python3 -m awq.cli.alien_work_queue), not python3 -m awq.master")
