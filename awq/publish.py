"""What the master tells the world besides its table: heartbeat, counters, summaries.

stat/latest (upstream's WAITING/RUNNING/TIMESTAMP) is rewritten when its counts
change and at least every HEARTBEAT_INTERVAL; stat/master.json (for
`alien_work_queue --status`) at most every STATUS_INTERVAL;
a summary line goes to the log once a minute; idle jobs no connected worker
can take are told so.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Optional, Tuple

from awq.jobs import format_job_id
from awq.jobtable import JobTable
from awq.pacing import SYSTEM_CLOCK, Clock, Every
from awq.spool import Spool
from awq.tasks import REQUEST_ATTRIBUTES, TaskBackend, unfit_reason

log = logging.getLogger("awq.master")

HEARTBEAT_INTERVAL = 5.0     # s between stat/latest rewrites when idle
STATUS_INTERVAL = 1.0        # s between looks at Work Queue's counters (stat/master.json)
SUMMARY_INTERVAL = 60.0      # s between summary lines in the log
UNFIT_GRACE = 60.0           # s an idle job waits before we say no worker is big enough


class Publisher:
    def __init__(self, spool: Spool, backend: TaskBackend, table: JobTable, project_name: str,
                 unfit_grace: float = UNFIT_GRACE, clock: Clock = SYSTEM_CLOCK):
        self.spool = spool
        self.backend = backend
        self.table = table
        self.project_name = project_name
        self.started = time.time()
        self.workers_seen = 0.0
        self.heartbeat = Every(HEARTBEAT_INTERVAL, clock)
        self.last_counts: Optional[Tuple[int, int]] = None
        self.status_refresh = Every(STATUS_INTERVAL, clock)
        self.summary_line = Every(SUMMARY_INTERVAL, clock, started_due=False)
        self.unfit_check = Every(unfit_grace / 2, clock)
        self.unfit_grace = unfit_grace

    def due(self) -> bool:
        return self.heartbeat.due()

    def time_to_heartbeat(self) -> float:
        return self.heartbeat.time_left()

    def publish(self, now: float) -> None:
        """Called after every snapshot: stat/latest follows the counts, the rest is paced.

        work_queue_stats walks every task Work Queue holds, so its counters are read
        at most once per STATUS_INTERVAL, not after every snapshot.
        """
        idle, running = self.table.counts()
        if self.due() or (idle, running) != self.last_counts:
            self.spool.published.write_stat(idle, running, now)
            self.heartbeat.done()
            self.last_counts = (idle, running)
        if not self.status_refresh.take():
            return
        stats = self.backend.stats()
        if stats.get("workers_connected"):
            self.workers_seen = now
        self.spool.published.write_master_status({
            "pid": os.getpid(), "started": self.started, "written": now,
            "port": self.backend.port, "project": self.project_name,
            "workers_seen": self.workers_seen, "workqueue": stats})
        if self.unfit_check.take():
            self.note_unfit_jobs(stats, now)
        if self.summary_line.take():
            log.info("summary: %d idle, %d running, %d jobs in the table; %d workers "
                     "(%d busy), %d of %d cores in use", idle, running, len(self.table),
                     stats.get("workers_connected", 0), stats.get("workers_busy", 0),
                     stats.get("committed_cores", 0), stats.get("total_cores", 0))

    def note_unfit_jobs(self, stats: Dict[str, int], now: float) -> None:
        """Idle jobs no connected worker can take say so (condor_q -l), and the log warns once."""
        if not stats.get("workers_connected"):
            return
        # Most jobs of a queue ask for the same plain numbers: judge each such request once.
        verdicts: Dict[Tuple[Any, ...], Optional[str]] = {}
        for jid in self.table.idle_jobs():
            job = self.table.job(jid)
            if now - float(job.get("EnteredCurrentStatus") or now) < self.unfit_grace:
                continue
            key = tuple(job.get(name) for name in REQUEST_ATTRIBUTES)
            if all(isinstance(value, (int, float, type(None))) for value in key):
                if key not in verdicts:
                    verdicts[key] = unfit_reason(job, stats)
                reason = verdicts[key]
            else:  # an expression may read other attributes of the job
                reason = unfit_reason(job, stats)
            if reason and reason != job.get("LastRejectedMatchReason"):
                log.warning("job %s stays idle: %s", format_job_id(jid), reason)
            if reason != job.get("LastRejectedMatchReason"):
                self.table.annotate(jid, LastRejectedMatchReason=reason)
