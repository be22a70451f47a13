"""condor_q and condor_status: option parsing and output. Pure: ads in, text out."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from awq import classad, jobs
from awq.jobs import Job, JobStatus

Q_USAGE = """Usage: condor_q [options] [owner | cluster | cluster.proc ...]

Show the alien-workqueue queue, as HTCondor's condor_q does.

Options:
  -constraint EXPR      only jobs for which the ClassAd expression is true (-const)
  -format FMT ATTR      printf-style output, repeatable; nothing printed when ATTR is undefined
  -af[:lhtrjV,] ATTR... one line per job with the values of ATTRs (-autoformat)
                        t: tab separated  ,: comma separated  l: name = value
                        h: header line    j: job id first     r/V: ClassAd syntax
  -totals               only the totals lines
  -long, -l             every attribute of each job
  -json                 the jobs as JSON
  -nobatch / -batch     one line per job (default) / one line per batch
  -allusers, -wide, -global   accepted
  -name NAME            the schedd (only the local one is known)
  -pool HOST            accepted
  -help                 this text

Fails (exit 1) when the master's heartbeat is 200 s old or more.
"""

STATUS_USAGE = """Usage: condor_status -schedd [options]

Show the alien-workqueue schedd's ad (job totals), as HTCondor's condor_status does.

Options:
  -schedd               the schedd ad (without it there are no machine ads to show)
  -af[:lhtrjV,] ATTR... values of ATTRs (-autoformat), e.g. totalRunningJobs totalIdleJobs
  -format FMT ATTR      printf-style output
  -constraint EXPR      only ads for which EXPR is true
  -long, -l / -json     every attribute
  -total                accepted
  -name NAME, -pool HOST as for condor_q
  -help                 this text
"""

STATUS_LETTERS = {1: "I", 2: "R", 3: "X", 4: "C", 5: "H", 6: ">", 7: "S"}


class UsageError(ValueError):
    pass


class Output:
    """How ads are printed, shared by condor_q and condor_status."""

    def __init__(self) -> None:
        self.formats: List[Tuple[str, str]] = []
        self.af_attrs: List[str] = []
        self.af_modifiers = ""
        self.long = False
        self.json = False

    def custom(self) -> bool:
        return bool(self.formats or self.af_attrs or self.long or self.json)


class QOptions:
    def __init__(self) -> None:
        self.output = Output()
        self.constraints: List[str] = []
        self.owners: List[str] = []
        self.ids: List[Tuple[int, Optional[int]]] = []
        self.totals = False
        self.batch = False
        self.name: Optional[str] = None
        self.help = False


class StatusOptions:
    def __init__(self) -> None:
        self.output = Output()
        self.constraints: List[str] = []
        self.schedd = False
        self.name: Optional[str] = None
        self.help = False


# ---------------------------------------------------------------- parsing

def _take(args: List[str], flag: str, count: int = 1) -> List[str]:
    if len(args) < count:
        raise UsageError("option %s needs %s" % (flag, "a value" if count == 1 else
                                                 "%d values" % count))
    values = args[:count]
    del args[:count]
    return values


def _check_expression(text: str, flag: str) -> str:
    try:
        classad.Expr(text)
    except classad.ClassAdError as err:
        raise UsageError("%s %r is not a valid ClassAd expression: %s" % (flag, text, err))
    return text


def _parse_output_option(flag: str, raw: str, args: List[str], output: Output) -> bool:
    """Handle an option both tools share; False when flag is not one of them."""
    base, _, modifiers = flag.partition(":")
    if base in ("format", "fmt", "f"):
        fmt, attr = _take(args, raw, 2)
        output.formats.append((fmt, _check_expression(attr, raw)))
    elif base in ("af", "autoformat"):
        attrs = []
        while args and not args[0].startswith("-"):
            attrs.append(_check_expression(args.pop(0), raw))
        if not attrs:
            raise UsageError("option %s needs at least one attribute" % raw)
        output.af_attrs.extend(attrs)
        output.af_modifiers += modifiers
    elif base in ("long", "l"):
        output.long = True
    elif base == "json":
        output.json = True
    else:
        return False
    return True


def parse_q_args(argv: Sequence[str]) -> QOptions:
    opts = QOptions()
    args = list(argv)
    while args:
        raw = args.pop(0)
        if not raw.startswith("-") or raw == "-":
            _positional(raw, opts)
            continue
        flag = raw.lstrip("-").lower()
        if _parse_output_option(flag, raw, args, opts.output):
            continue
        if flag in ("constraint", "const", "cons", "constr"):
            opts.constraints.append(_check_expression(_take(args, raw)[0], raw))
        elif flag in ("totals", "total", "tot"):
            opts.totals = True
        elif flag == "batch":
            opts.batch = True
        elif flag == "nobatch":
            opts.batch = False
        elif flag == "name":
            opts.name = _take(args, raw)[0]
        elif flag in ("pool", "limit", "attributes", "attrs"):
            _take(args, raw)
        elif flag in ("allusers", "wide", "w", "global", "g", "run", "hold", "idle", "dag",
                      "nowide", "unused"):
            _filter_flag(flag, opts)
        elif flag in ("h", "help"):
            opts.help = True
        else:
            raise UsageError("unrecognized option %s (see condor_q -help)" % raw)
    return opts


def _filter_flag(flag: str, opts: QOptions) -> None:
    wanted = {"run": "JobStatus == 2", "hold": "JobStatus == 5", "idle": "JobStatus == 1"}
    if flag in wanted:
        opts.constraints.append(wanted[flag])


def _positional(text: str, opts: QOptions) -> None:
    cluster, dot, proc = text.partition(".")
    if cluster.isdigit() and len(cluster) <= 12 and (not dot or (proc.isdigit() and len(proc) <= 12)):
        opts.ids.append((int(cluster), int(proc) if dot else None))
    elif text[:1].isalpha() and all(c.isalnum() or c in "._-@" for c in text) and len(text) <= 256:
        opts.owners.append(text)
    else:
        raise UsageError("not an owner or a job id: %r" % text[:80])


def parse_status_args(argv: Sequence[str]) -> StatusOptions:
    opts = StatusOptions()
    args = list(argv)
    while args:
        raw = args.pop(0)
        flag = raw.lstrip("-").lower()
        if not raw.startswith("-"):
            raise UsageError("unexpected argument %r (see condor_status -help)" % raw[:80])
        if _parse_output_option(flag, raw, args, opts.output):
            continue
        if flag in ("schedd", "scheduler"):
            opts.schedd = True
        elif flag in ("constraint", "const"):
            opts.constraints.append(_check_expression(_take(args, raw)[0], raw))
        elif flag == "name":
            opts.name = _take(args, raw)[0]
        elif flag == "pool":
            _take(args, raw)
        elif flag in ("total", "totals", "any", "wide", "w"):
            continue
        elif flag in ("h", "help"):
            opts.help = True
        else:
            raise UsageError("unrecognized option %s (see condor_status -help)" % raw)
    return opts


# ---------------------------------------------------------------- selecting

def select_jobs(opts: QOptions, job_list: Sequence[Job], now: float) -> List[Job]:
    def wanted(job: Job) -> bool:
        if opts.owners or opts.ids:
            by_owner = job.get("Owner") in opts.owners
            by_id = any(job.get("ClusterId") == c and (p is None or job.get("ProcId") == p)
                        for c, p in opts.ids)
            if not (by_owner or by_id):
                return False
        return _matches(job, opts.constraints, now)
    return [job for job in job_list if wanted(job)]


def _matches(ad: Mapping[str, Any], constraints: Sequence[str], now: float) -> bool:
    return all(classad.is_true(classad.evaluate(c, ad, now)) for c in constraints)


# ---------------------------------------------------------------- printing ads

def render_ads(output: Output, ads: Sequence[Mapping[str, Any]], now: float) -> str:
    if output.json:
        return json.dumps([_json_ad(ad) for ad in ads], indent=2) + "\n"
    if output.long:
        return "".join("".join("%s = %s\n" % (k, classad.unparse(ad[k]))
                               for k in sorted(ad, key=str.lower)) + "\n" for ad in ads)
    if output.formats:
        return "".join("".join(classad.format_printf(fmt, classad.evaluate(attr, ad, now))
                               for fmt, attr in output.formats) for ad in ads)
    return _autoformat(output, ads, now)


def _autoformat(output: Output, ads: Sequence[Mapping[str, Any]], now: float) -> str:
    mods = output.af_modifiers
    separator = "\t" if "t" in mods else (", " if "," in mods else " ")
    raw = "r" in mods or "V" in mods
    lines = []
    if "h" in mods:
        lines.append(separator.join((["ID"] if "j" in mods else []) + output.af_attrs))
    for ad in ads:
        cells = []
        if "j" in mods:
            cells.append("%s.%s" % (ad.get("ClusterId"), ad.get("ProcId")))
        for attr in output.af_attrs:
            value = classad.evaluate(attr, ad, now)
            text = classad.unparse(value) if raw else classad.format_autoformat(value)
            cells.append("%s = %s" % (attr, text) if "l" in mods else text)
        lines.append(separator.join(cells))
    return "".join(line + "\n" for line in lines)


def _json_ad(ad: Mapping[str, Any]) -> Dict[str, Any]:
    result = {}
    for name, value in ad.items():
        if isinstance(value, classad.Expr):
            value = "\\/Expr(%s)\\/" % value.text
        elif value is classad.UNDEFINED or value is classad.ERROR:
            value = None
        result[name] = value
    return result


# ---------------------------------------------------------------- condor_q

def render_q(opts: QOptions, job_list: Sequence[Job], *, now: float, schedd_name: str) -> str:
    selected = select_jobs(opts, job_list, now)
    if opts.output.custom():
        return render_ads(opts.output, selected, now)
    totals = _totals_lines(selected, job_list, opts.owners)
    if opts.totals:
        return totals
    if opts.constraints:
        # Upstream's contract, which AliEn counts with `wc -l`: one line per job, nothing else.
        return _job_table(selected, now, header=False)
    header = "\n\n-- Schedd: %s : <127.0.0.1> @ %s\n" % (
        schedd_name, time.strftime("%m/%d/%y %H:%M:%S", time.localtime(now)))
    table = _batch_table(selected, now) if opts.batch else _job_table(selected, now)
    return header + table + "\n" + totals


def _job_table(selected: Sequence[Job], now: float, header: bool = True) -> str:
    lines = [" ID          OWNER            SUBMITTED     RUN_TIME ST PRI SIZE  CMD"] if header else []
    for job in selected:
        command = str(job.get("Cmd", "")).rsplit("/", 1)[-1]
        arguments = job.get("Arguments") or ""
        lines.append("%-12s %-14s %11s %12s %-2s %-3s %-5.1f %s" % (
            "%s.%s" % (job.get("ClusterId"), job.get("ProcId")),
            str(job.get("Owner", ""))[:14], _date(job.get("QDate"), now),
            _run_time(job, now), STATUS_LETTERS.get(job.get("JobStatus"), "?"),
            job.get("JobPrio", 0), 0.0, (command + " " + str(arguments)).strip()[:60]))
    return "".join(line + "\n" for line in lines)


def _batch_table(selected: Sequence[Job], now: float) -> str:
    groups: Dict[Tuple[str, str], List[Job]] = {}
    for job in selected:
        batch = job.get("JobBatchName") or "ID: %s" % job.get("ClusterId")
        groups.setdefault((str(job.get("Owner", "")), str(batch)), []).append(job)
    lines = ["OWNER          BATCH_NAME            SUBMITTED   DONE   RUN    IDLE   HOLD  TOTAL JOB_IDS"]
    for (owner, batch), members in groups.items():
        count = lambda status: sum(1 for j in members if j.get("JobStatus") == status) or "_"
        ids = ["%s.%s" % (j.get("ClusterId"), j.get("ProcId")) for j in members]
        lines.append("%-14s %-20s %11s %6s %6s %6s %6s %6d %s" % (
            owner, batch, _date(min(j.get("QDate", 0) for j in members), now),
            "_", count(JobStatus.RUNNING), count(JobStatus.IDLE), count(JobStatus.HELD), len(members),
            ids[0] if len(ids) == 1 else "%s-%s" % (ids[0], ids[-1])))
    return "".join(line + "\n" for line in lines)


def _date(stamp: Any, now: float) -> str:
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return "?"
    return time.strftime("%m/%d %H:%M", time.localtime(stamp))


def _run_time(job: Job, now: float) -> str:
    seconds = 0
    start = job.get("JobCurrentStartDate")
    if job.get("JobStatus") == JobStatus.RUNNING and isinstance(start, int):
        seconds = max(0, int(now) - start)
    days, rest = divmod(seconds, 86400)
    return "%d+%02d:%02d:%02d" % (days, rest // 3600, rest % 3600 // 60, rest % 60)


def _counts(job_list: Sequence[Job]) -> str:
    def count(status: int) -> int:
        return sum(1 for j in job_list if j.get("JobStatus") == status)
    return ("%d jobs; %d completed, %d removed, %d idle, %d running, %d held, %d suspended"
            % (len(job_list), count(JobStatus.COMPLETED), count(JobStatus.REMOVED), count(JobStatus.IDLE),
               count(JobStatus.RUNNING), count(JobStatus.HELD), count(JobStatus.SUSPENDED)))


def _totals_lines(selected: Sequence[Job], everything: Sequence[Job], owners: Sequence[str]) -> str:
    lines = ["Total for query: " + _counts(selected)]
    for owner in owners:
        lines.append("Total for %s: %s" % (owner, _counts([j for j in everything
                                                           if j.get("Owner") == owner])))
    lines.append("Total for all users: " + _counts(everything))
    return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------- condor_status

def schedd_ad(job_list: Sequence[Job], schedd_name: str) -> Dict[str, Any]:
    def count(status: int) -> int:
        return sum(1 for j in job_list if j.get("JobStatus") == status)
    return {"MyType": "Scheduler", "Name": schedd_name, "Machine": schedd_name,
            "TotalRunningJobs": count(JobStatus.RUNNING), "TotalIdleJobs": count(JobStatus.IDLE),
            "TotalHeldJobs": count(JobStatus.HELD), "TotalRemovedJobs": count(JobStatus.REMOVED),
            "TotalJobAds": len(job_list), "TotalSchedulerJobsRunning": 0,
            "TotalLocalJobsRunning": 0, "TotalFlockedJobs": 0,
            "TotalSuspendedJobs": count(JobStatus.SUSPENDED)}


def render_status(opts: StatusOptions, job_list: Sequence[Job], *, now: float,
                  schedd_name: str) -> str:
    if not opts.schedd:
        return ""  # no machine ads: Work Queue workers are not HTCondor slots
    ads = [ad for ad in [schedd_ad(job_list, schedd_name)] if _matches(ad, opts.constraints, now)]
    if opts.output.custom():
        return render_ads(opts.output, ads, now)
    lines = ["Name                 Machine              RunningJobs   IdleJobs   HeldJobs", ""]
    for ad in ads:
        lines.append("%-20s %-20s %11d %10d %10d" % (ad["Name"][:20], ad["Machine"][:20],
                                                   ad["TotalRunningJobs"], ad["TotalIdleJobs"],
                                                   ad["TotalHeldJobs"]))
    return "".join(line + "\n" for line in lines)
