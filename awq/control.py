"""Ending, holding and releasing jobs: what users (condor_rm, condor_hold, ...) and the
jobs' own periodic expressions ask for. Every path that ends a job cancels its task."""

from __future__ import annotations

from awq import periodic
from awq.dispatch import Dispatcher
from awq.jobs import FINAL_STATES, JobId, JobStatus, Request
from awq.jobtable import HOLD_CODE_PERIODIC, HOLD_CODE_USER, JobTable


class JobControl:
    def __init__(self, table: JobTable, dispatcher: Dispatcher):
        self.table = table
        self.dispatcher = dispatcher

    def apply_request(self, request: Request) -> None:
        """Carry out condor_rm, condor_hold, condor_release, condor_suspend, condor_continue."""
        status = self.table.status(request.job_id)
        if status is not None:
            self._apply(request, status)
        self.table.mark_changed()  # the request file goes once the snapshot is written

    def _apply(self, request: Request, status: int) -> None:
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
