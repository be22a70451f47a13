"""Snapshot writes, paced by their cost, and the jobs that leave the table with them.

Split from awq/master.py so the master's turn reads as a list of duties: this is the
one that decides when a snapshot is written, and what may be forgotten once it is
durable (spool records, start-journal segments, finished and removed jobs).
"""

from __future__ import annotations

import os
import time

from awq.intake import SpoolIntake
from awq.jobtable import JobTable
from awq.pacing import Every
from awq.publish import Publisher
from awq.spool import Spool
from awq.spool.starts import StartJournal


class SnapshotFlusher:
    """Writes the job table's snapshot when it changed and its interval has passed.

    The interval is set by the master (min_interval, max_interval, cost_share are its
    tuning, kept in awq/master.py where tests and tools look for them)."""

    def __init__(self, spool: Spool, table: JobTable, intake: SpoolIntake,
                 start_journal: StartJournal, publisher: Publisher, pacing: Every,
                 min_interval: float, max_interval: float, cost_share: float):
        self.spool = spool
        self.table = table
        self.intake = intake
        self.start_journal = start_journal
        self.publisher = publisher
        self.pacing = pacing            # its interval follows a write's cost
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.cost_share = cost_share
        self.last_snapshot = (0.0, 0)   # the last snapshot write's CPU seconds and jobs

    def flush(self, force: bool = False, starts_pending: bool = False) -> None:
        """Write a snapshot if one is due (or forced), then let go of what it made safe.
        starts_pending: journaled starts still wait for their jobs' records, so the
        journal's segments must stay."""
        now = time.time()
        if self.table.changed:
            self.retire_removed()
        if self.table.changed and (force or self.pacing.due()):
            started = time.process_time()   # CPU: waiting for fsync costs the master nothing
            self.spool.published.write_snapshot(dict(self.table.snapshot(),
                                                     master_pid=os.getpid(), written=now,
                                                     records=self.intake.held_records()))
            cost = time.process_time() - started
            written = len(self.table)
            self.pacing.done()
            self.table.mark_saved()
            # Segments go once two snapshots count their starts; while starts still wait
            # for their jobs' records (a drain), no snapshot counts them yet.
            if not starts_pending:
                self.start_journal.after_snapshot()
            if self.intake.commit():  # spool files go once two generations hold them
                self.table.mark_changed()
            self.spool.history.append(self.table.retire_finished())  # gone from the next snapshot
            self.last_snapshot = (cost, written)
            self.pace()
            self.publisher.publish(now)
        elif self.publisher.due():
            self.publisher.publish(now)

    def retire_removed(self) -> None:
        """Removed jobs leave the table (and go to history) before any snapshot shows them
        removed: condor_q shows them X from the request files until the next snapshot, which
        no longer holds them. History is written first: a crash before that snapshot
        restores the jobs as they were and their request files, kept until two snapshots
        hold the result, remove them again (history repeats a job, the reader keeps its
        last line); a removal is never lost."""
        leaving = self.table.retire_removed()
        if leaving:
            self.spool.history.append(leaving)
            self.pace()

    def pace(self) -> None:
        """Snapshots paced by what the next write will cost: a write costs what the table
        holds, so once jobs have left (100,000 removed at once), the snapshot that shows
        them gone comes at once instead of a large table's interval later."""
        cost, written = self.last_snapshot
        next_cost = cost * len(self.table) / written if written else cost
        self.pacing.interval = min(self.max_interval,
                                   max(self.min_interval, next_cost / self.cost_share))
