"""condor_rm: ask the master to remove jobs.

Removal is a request the master carries out (cancel the task, status 3),
even if it is down right now: it finds the request when it starts.
"""

from __future__ import annotations

import sys
import time
from typing import List, Optional, Tuple

from awq import classad, jobs
from awq.cli.common import check_schedd_name, fail, run_main, take_value
from awq.jobs import Job, JobId
from awq.spool import Spool, SpoolError, default_workdir

USAGE = """Usage: condor_rm [options] [cluster | cluster.proc | user] ...
       condor_rm [options] -all
       condor_rm [options] -constraint EXPR

Ask the alien-workqueue master to remove jobs: idle jobs never run, running
jobs have their Work Queue task cancelled.

Options:
  -all              remove every job in the queue
  -constraint EXPR  remove the jobs for which the ClassAd expression EXPR is true
  -name NAME        the schedd to talk to (only the local one is known)
  -pool HOST        accepted for compatibility (only the local pool is known)
  -forcex           accepted for compatibility
  -help             print this text
"""


class Selection:
    def __init__(self) -> None:
        self.targets: List[str] = []
        self.constraint: Optional[str] = None
        self.all = False
        self.name: Optional[str] = None


def parse_args(argv: List[str]) -> Optional[Selection]:
    sel = Selection()
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag = arg.lower().lstrip("-") if arg.startswith("-") else None
        if flag is None:
            sel.targets.append(arg)
        elif flag in ("h", "help"):
            return None
        elif flag == "all":
            sel.all = True
        elif flag in ("constraint", "const"):
            sel.constraint = take_value(args, arg)
        elif flag == "name":
            sel.name = take_value(args, arg)
        elif flag == "pool":
            take_value(args, arg)
        elif flag in ("forcex", "totals", "debug"):
            continue
        else:
            fail("unknown option %s (see condor_rm -help)" % arg)
    if not (sel.targets or sel.all or sel.constraint):
        fail("no jobs given: name a cluster, cluster.proc, user, -all or -constraint")
    if sel.constraint is not None:
        try:
            classad.Expr(sel.constraint)
        except classad.ClassAdError as err:
            fail("bad constraint %r: %s" % (sel.constraint, err))
    return sel


def parse_target(text: str) -> Tuple[str, object]:
    """('cluster', 7), ('job', (7, 0)) or ('owner', 'alice')."""
    cluster, dot, proc = text.partition(".")
    if cluster.isdigit() and len(cluster) <= 12:
        if not dot:
            return "cluster", int(cluster)
        if proc.isdigit() and len(proc) <= 12:
            return "job", (int(cluster), int(proc))
    if text[:1].isalpha() and all(c.isalnum() or c in "._-@" for c in text) and len(text) <= 256:
        return "owner", text
    fail("not a job id or user name: %r" % text[:80])
    raise AssertionError  # unreachable: fail() raises


def matching(job_list: List[Job], kind: str, value: object) -> List[JobId]:
    if kind == "cluster":
        return [jobs.job_id(j) for j in job_list if j.get("ClusterId") == value]
    if kind == "job":
        return [jobs.job_id(j) for j in job_list if jobs.job_id(j) == value]
    return [jobs.job_id(j) for j in job_list if j.get("Owner") == value]


def main(argv: List[str]) -> int:
    selection = parse_args(argv)
    if selection is None:
        sys.stdout.write(USAGE)
        return 0
    check_schedd_name(selection.name)
    targets = [parse_target(t) for t in selection.targets]
    try:
        spool = Spool(default_workdir())
        live = [j for j in spool.read_queue().jobs if j.get("JobStatus") != jobs.JobStatus.REMOVED]
    except SpoolError as err:
        fail(str(err))
    messages, wanted, missing = [], [], []
    for (kind, value), text in zip(targets, selection.targets):
        ids = matching(live, kind, value)
        if not ids:
            missing.append(_not_found(kind, value))
            continue
        wanted.extend(ids)
        messages.append(_confirmation(kind, value))
    if selection.all:
        wanted.extend(jobs.job_id(j) for j in live)
        messages.append("All jobs marked for removal.")
    if selection.constraint is not None:
        now = time.time()
        ids = [jobs.job_id(j) for j in live
               if classad.is_true(classad.evaluate(selection.constraint, j, now))]
        wanted.extend(ids)
        messages.append("Jobs matching constraint (%s) have been marked for removal"
                        % selection.constraint)
    spool.request_removal(sorted(set(wanted)))
    for line in messages:
        sys.stdout.write(line + "\n")
    for line in missing:
        sys.stderr.write(line + "\n")
    return 1 if missing else 0


def _confirmation(kind: str, value: object) -> str:
    if kind == "cluster":
        return "All jobs in cluster %d have been marked for removal" % value
    if kind == "job":
        return "Job %s marked for removal" % jobs.format_job_id(value)  # type: ignore[arg-type]
    return 'All jobs of user "%s" have been marked for removal' % value


def _not_found(kind: str, value: object) -> str:
    if kind == "cluster":
        return "Couldn't find/remove all jobs in cluster %d" % value
    if kind == "job":
        return "Job %s not found" % jobs.format_job_id(value)  # type: ignore[arg-type]
    return 'Couldn\'t find/remove all jobs of user "%s"' % value


def cli() -> None:
    """Console-script entry point (pip install)."""
    run_main(main)


if __name__ == "__main__":
    cli()
