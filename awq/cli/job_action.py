"""What condor_rm, condor_hold, condor_release, condor_suspend and condor_continue share.

Each leaves the master a request in the spool (it carries them out even if it
is down right now: it finds them when it starts) and answers with HTCondor's
own messages, which clients such as TARDIS match.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import List, NamedTuple, Optional

from awq import jobs, query
from awq.cli.common import check_schedd_name, fail, run_main
from awq.jobs import Job, JobId, JobStatus, Target
from awq.options import take_value
from awq.queue_view import read_queue_view
from awq.spool import Spool, SpoolError, default_workdir


class Action(NamedTuple):
    tool: str          # condor_rm
    request: str       # the spool's request kind: rm, hold, ...
    done: str          # "marked for removal", "held", ...
    verb: str          # "remove", "hold": HTCondor's "Couldn't find/remove ..."
    summary: str       # what the tool does, for -help
    applies_to: tuple  # JobStatus values the action can change


ACTIONS = {
    "rm": Action("condor_rm", "rm", "marked for removal", "remove",
                 "remove jobs: idle jobs never run, running pilots are stopped",
                 jobs.ALL_STATES),
    "hold": Action("condor_hold", "hold", "held", "hold",
                   "hold jobs: a running pilot is stopped, the job waits for condor_release",
                   (JobStatus.IDLE, JobStatus.RUNNING, JobStatus.SUSPENDED)),
    "release": Action("condor_release", "release", "released", "release",
                      "release held jobs: they become idle and run again", (JobStatus.HELD,)),
    "suspend": Action("condor_suspend", "suspend", "suspended", "suspend",
                      "suspend jobs: Work Queue cannot pause a task, so a running pilot is "
                      "stopped and starts again on condor_continue (pilots are safe to rerun)",
                      (JobStatus.IDLE, JobStatus.RUNNING)),
    "continue": Action("condor_continue", "continue", "continued", "continue",
                       "continue suspended jobs: they become idle and run again",
                       (JobStatus.SUSPENDED,)),
}

USAGE = """Usage: {tool} [options] [cluster | cluster.proc | user] ...
       {tool} [options] -all
       {tool} [options] -constraint EXPR

Ask the alien-workqueue master to {summary}.

Options:
  -all              every job in the queue
  -constraint EXPR  the jobs for which the ClassAd expression EXPR is true
  -reason TEXT      why (kept in HoldReason / RemoveReason){extra}
  -name NAME        the schedd to talk to (only the local one is known)
  -pool HOST        accepted (only the local pool is known)
  -help             print this text
"""
FORCEX_HELP = """
  -forcex           also accept jobs already removed (state X) or gone from the queue"""


@dataclasses.dataclass
class Request:
    targets: List[str] = dataclasses.field(default_factory=list)
    constraint: Optional[str] = None
    all: bool = False
    forcex: bool = False
    reason: str = ""
    name: Optional[str] = None


def parse_args(action: Action, argv: List[str]) -> Optional[Request]:
    """The request, or None when -help was asked for."""
    request = Request()
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag = arg.lower().lstrip("-") if arg.startswith("-") else None
        if flag is None:
            request.targets.append(arg)
        elif flag in ("h", "help"):
            return None
        elif flag in ("a", "all"):
            request.all = True
        elif flag in ("constraint", "const"):
            request.constraint = query.check_expression(take_value(args, arg), arg)
        elif flag == "reason":
            request.reason = take_value(args, arg)
        elif flag == "name":
            request.name = take_value(args, arg)
        elif flag in ("pool", "addr"):
            take_value(args, arg)
        elif flag == "forcex" and action.request == "rm":
            request.forcex = True
        elif flag in ("debug", "totals"):
            continue
        else:
            fail("unknown option %s (see %s -help)" % (arg, action.tool))
    if not (request.targets or request.all or request.constraint):
        fail("no jobs given: name a cluster, cluster.proc, user, -all or -constraint")
    return request


def run(action: Action, argv: List[str]) -> int:
    request = parse_args(action, argv)
    if request is None:
        sys.stdout.write(USAGE.format(tool=action.tool, summary=action.summary,
                                      extra=FORCEX_HELP if action.request == "rm" else ""))
        return 0
    check_schedd_name(request.name)
    targets = [query.parse_target(t) for t in request.targets]
    try:
        spool = Spool(default_workdir())
        live = read_queue_view(spool).jobs.ads()
        gone = spool.history.read() if request.forcex else []
    except SpoolError as err:
        fail(str(err))
    now = time.time()
    wanted: List[JobId] = []
    messages, missing = [], []
    for target in targets:
        ids = [jobs.job_id(j) for j in _eligible(action, request, live) if target.matches(j)]
        if not ids and any(target.matches(j) for j in gone):
            messages.append(_said(action, target))  # -forcex: already out of the queue
            continue
        (messages if ids else missing).append(_said(action, target) if ids
                                              else _not_found(action, target))
        wanted.extend(ids)
    if request.all:
        wanted.extend(jobs.job_id(j) for j in _eligible(action, request, live))
        messages.append("All jobs %s." % action.done)
    if request.constraint is not None:
        selection = query.Selection(constraints=[request.constraint])
        matched = [jobs.job_id(j) for j in _eligible(action, request, live)
                   if selection.matches(j, now)]
        wanted.extend(matched)
        if matched:
            messages.append("Jobs matching constraint (%s) have been %s"
                            % (request.constraint, action.done))
        else:   # HTCondor's words and exit status: scripts tell "nothing to do" by them
            missing.append("Couldn't find/%s all jobs matching constraint (%s)"
                           % (action.verb, request.constraint))
    spool.requests.leave(action.request, sorted(set(wanted)), request.reason)
    sys.stdout.write("".join(line + "\n" for line in messages))
    sys.stderr.write("".join(line + "\n" for line in missing))
    return 1 if missing else 0


def _eligible(action: Action, request: Request, live: List[Job]) -> List[Job]:
    if action.request == "rm" and not request.forcex:
        # A job already removed waits to leave the queue; -forcex takes it out now.
        return [j for j in live if j.get("JobStatus") != JobStatus.REMOVED]
    return [j for j in live if j.get("JobStatus") in action.applies_to]


def _said(action: Action, target: Target) -> str:
    if target.owner is not None:
        return 'All jobs of user "%s" have been %s' % (target.owner, action.done)
    if target.proc is None:
        return "All jobs in cluster %d have been %s" % (target.cluster, action.done)
    return "Job %d.%d %s" % (target.cluster, target.proc, action.done)


def _not_found(action: Action, target: Target) -> str:
    if target.owner is not None:
        return 'Couldn\'t find/%s all jobs of user "%s"' % (action.verb, target.owner)
    if target.proc is None:
        return "Couldn't find/%s all jobs in cluster %d" % (action.verb, target.cluster)
    return "Job %d.%d not found" % (target.cluster, target.proc)


def cli_for(request: str) -> None:
    """Console-script entry point of one tool."""
    run_main(lambda argv: run(ACTIONS[request], argv))
