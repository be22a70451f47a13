"""Ending, holding and releasing jobs: what users (condor_rm, condor_hold, ...) and the
jobs' own periodic expressions ask for. Every path that ends a job cancels its task."""

from __future__ import annotations

import logging
from typing import Dict, List, Sequence, Tuple

from awq import jobs, periodic
from awq.dispatch import Dispatcher
# Up to LOG_EACH_UP_TO requests at once, each job's change has its own log line, which a
# person follows job by job; more (condor_rm -all) and the lines would cost the master
# more than the changes: one line says what a command did, with the job ids as ranges.
from awq.jobs import FINAL_STATES, LOG_EACH_UP_TO, JobId, JobStatus, Request
from awq.jobtable import HOLD_CODE_PERIODIC, HOLD_CODE_USER, JobTable

log = logging.getLogger("awq.master")

# What the summary line says a request did to its jobs.
_DONE = {"rm": "removed", "hold": "held", "release": "released", "suspend": "suspended",
         "continue": "continued"}


class JobControl:
    def __init__(self, table: JobTable, dispatcher: Dispatcher):
        self.table = table
        self.dispatcher = dispatcher

    def apply_requests(self, requests: Sequence[Request]) -> None:
        """Carry out condor_rm, condor_hold, condor_release, condor_suspend and
        condor_continue requests, in order. User-log events are written once a log file; past
        LOG_EACH_UP_TO requests, the master log has one line per action and reason (how
        many jobs, which ids) instead of one per job (each at DEBUG)."""
        if not requests:
            return
        bulk = len(requests) > LOG_EACH_UP_TO
        done: Dict[Tuple[str, str], List[JobId]] = {}
        with self.table.bulk_changes(quiet=bulk):
            for request in requests:
                status = self.table.status(request.job_id)
                if status is not None and self._apply(request, status):
                    done.setdefault((request.action, request.reason), []).append(request.job_id)
        self.table.mark_changed()  # the request files go once the snapshot is written
        if bulk:
            for (action, reason), ids in done.items():
                log.log(logging.WARNING if action == "hold" else logging.INFO,
                        "condor_%s: %d jobs %s: %s; jobs %s", action, len(ids), _DONE[action],
                        reason or "via condor_%s" % action, jobs.describe_ids(ids))

    def _apply(self, request: Request, status: int) -> bool:
        """Carry out one request; whether it changed the job."""
        jid, reason = request.job_id, request.reason
        if request.action == "rm":
            if status in FINAL_STATES:
                self.table.let_leave(jid)  # condor_rm of a job kept by leave_in_queue
            else:
                self.remove(jid, reason or "via condor_rm")
        elif request.action == "hold" and status not in FINAL_STATES + (JobStatus.HELD,):
            self.hold(jid, reason or "via condor_hold", HOLD_CODE_USER)
        elif request.action == "release" and status == JobStatus.HELD:
            self.table.release(jid, reason or "via condor_release")
        elif request.action == "suspend" and status in (JobStatus.IDLE, JobStatus.RUNNING):
            # Work Queue cannot pause a task: a running pilot ends now and starts
            # again on condor_continue (pilots are safe to rerun).
            self.dispatcher.cancel(jid)
            self.table.suspend(jid)
        elif request.action == "continue" and status == JobStatus.SUSPENDED:
            self.table.resume(jid)
        else:
            return False
        return True

    def remove(self, jid: JobId, reason: str) -> None:
        self.dispatcher.cancel(jid)
        self.table.remove(jid, reason)

    def hold(self, jid: JobId, reason: str, code: int) -> None:
        self.dispatcher.cancel(jid)
        self.table.hold(jid, reason, code)

    def apply_periodic_expressions(self, now: float) -> None:
        for jid, job in self.table.items():
            try:
                action = periodic.periodic_action(job, now)
            except Exception as err:  # one job's data must never stop the loop
                action = periodic.Action("hold", "its periodic expressions cannot be evaluated: "
                                                 "%s: %s" % (type(err).__name__, err))
            if action is None:
                continue
            if action.kind == "remove":
                self.remove(jid, action.reason)
            elif action.kind == "hold":
                self.hold(jid, action.reason, HOLD_CODE_PERIODIC)
            else:
                self.table.release(jid, action.reason)
