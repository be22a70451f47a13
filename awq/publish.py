"""What the master tells the world besides its table: heartbeat, counters, summaries.

stat/latest (upstream's WAITING/RUNNING/TIMESTAMP) and stat/master.json (for
`alien_work_queue --status`) are rewritten at least every HEARTBEAT_INTERVAL;
a summary line goes to the log once a minute; idle jobs no connected worker
can take are told so.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Dict

from awq.dispatch import unfit_reason
from awq.jobs import format_job_id
from awq.jobtable import JobTable
from awq.spool import Spool
from awq.tasks import TaskBackend

log = logging.getLogger("awq.master")

HEARTBEAT_INTERVAL = 5.0     # s between stat/latest rewrites when idle
SUMMARY_INTERVAL = 60.0      # s between summary lines in the log
UNFIT_GRACE = 60.0           # s an idle job waits before we say no worker is big enough


class Publisher:
    def __init__(self, spool: Spool, backend: TaskBackend, table: JobTable, project_name: str,
                 unfit_grace: float = UNFIT_GRACE):
        self.spool = spool
        self.backend = backend
        self.table = table
        self.project_name = project_name
        self.started = time.time()
        self.workers_seen = 0.0
        self.last_heartbeat = 0.0
        self.last_summary = time.time()
        self.last_unfit_check = 0.0
        self.unfit_grace = unfit_grace

    def due(self, now: float) -> bool:
        return now - self.last_heartbeat >= HEARTBEAT_INTERVAL

    def publish(self, now: float) -> None:
        idle, running = self.table.counts()
        self.spool.write_stat(idle, running, now)
        self.last_heartbeat = now
        stats = self.backend.stats()
        if stats.get("workers_connected"):
            self.workers_seen = now
        self.spool.write_master_status({
            "pid": os.getpid(), "started": self.started, "written": now,
            "port": self.backend.port, "project": self.project_name,
            "workers_seen": self.workers_seen, "workqueue": stats})
        if now - self.last_unfit_check >= self.unfit_grace / 2:
            self.last_unfit_check = now
            self.note_unfit_jobs(stats, now)
        if now - self.last_summary >= SUMMARY_INTERVAL:
            self.last_summary = now
            log.info("summary: %d idle, %d running, %d jobs in the table; %d workers "
                     "(%d busy), %d of %d cores in use", idle, running, len(self.table),
                     stats.get("workers_connected", 0), stats.get("workers_busy", 0),
                     stats.get("committed_cores", 0), stats.get("total_cores", 0))

    def note_unfit_jobs(self, stats: Dict[str, int], now: float) -> None:
        """Idle jobs no connected worker can take say so (condor_q -l), and the log warns once."""
        if not stats.get("workers_connected"):
            return
        for jid in self.table.idle_jobs():
            job = self.table.jobs[jid]
            if now - float(job.get("EnteredCurrentStatus") or now) < self.unfit_grace:
                continue
            reason = unfit_reason(job, stats)
            if reason and reason != job.get("LastRejectedMatchReason"):
                log.warning("job %s stays idle: %s", format_job_id(jid), reason)
            self.table.annotate(jid, LastRejectedMatchReason=reason)
