"""The scenarios: each takes a Target and a Context and returns its figures.

A scenario returns {"yardstick": {...}, "figures": [...], "notes": [...]}.
Every figure carries the median and spread of its samples and its ratio to
harness.YARDSTICK (`/usr/bin/python3 -c pass`) timed in the same run (see harness.figure).
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from benchmarks.harness import (REPO, YARDSTICK_TEXT, BenchError, Cluster, Processes, Target,
                                count_files, cpu_seconds, figure, live_pilots,
                                mem_available_mb, read_stat, rss_mb, run_bounded, summarize,
                                system_tasks, time_command, unsupported, wait_for_count,
                                wait_until, waiting_and_running, write_executable, yardstick)

Result = Dict[str, object]


class Context:
    """Options of this run: quick or full, where temporary files go, repeats."""

    def __init__(self, quick: bool, tmp: str, repeats: Optional[int] = None):
        self.quick = quick
        self.tmp = tmp
        self.repeats_override = repeats
        self._count = 0

    def repeats(self, full: int, quick: int) -> int:
        if self.repeats_override:
            return self.repeats_override
        return quick if self.quick else full

    def workdir(self, name: str) -> str:
        """A new directory, deleted with the whole run at its end, not before: deleting
        thousands of files slows every file created after it for minutes on some disks
        (see harness.worker_scratch), which would charge one scenario for another."""
        self._count += 1
        path = os.path.join(self.tmp, "%02d-%s" % (self._count, name))
        os.makedirs(path)
        return path


def _time_yardstick(target: Target, ctx: Context, runs: int = 7) -> List[float]:
    return yardstick(target.env, ctx.tmp, runs)


def _yardstick_summary(samples: Sequence[float]) -> Dict[str, object]:
    result: Dict[str, object] = {"command": YARDSTICK_TEXT}
    result.update(summarize(samples))
    result["samples"] = [round(s, 6) for s in samples]
    return result


def _submit_many(cluster: Cluster, descriptions: List[str], submitters: int,
                 name: str) -> List[subprocess.Popen]:
    """Start `submitters` processes that submit the descriptions between them.

    One description each: `condor_submit FILE`. Several: a bash loop of
    `condor_submit < FILE` (upstream takes one job per call).
    """
    procs = []
    for index in range(submitters):
        share = descriptions[index::submitters]
        if not share:
            continue
        directory = os.path.join(cluster.root, "%s-submit%d" % (name, index))
        os.makedirs(directory)
        for number, text in enumerate(share):
            with open(os.path.join(directory, "%06d.sub" % number), "w") as handle:
                handle.write(text)
        if len(share) == 1:
            argv = ["condor_submit", os.path.join(directory, "000000.sub")]
        else:
            argv = ["bash", "-c", 'for f in "$1"/*.sub; do condor_submit < "$f" > /dev/null '
                    '|| exit 1; done', "submit", directory]
        procs.append(cluster.procs.start(argv, "%s-submitter%d" % (name, index), env=cluster.env,
                                         cwd=cluster.root))
    return procs


def _wait_submitters(procs: List[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError("a submitter did not finish within %.0f s" % timeout)
        if proc.returncode != 0:
            raise BenchError("a submitter failed:\n" + Processes.log_of(proc)[-1000:])


def _workers_connected(cluster: Cluster, count: int, timeout: float = 60) -> None:
    """Ours says how many workers it has (stat/master.json); for upstream, give them time."""
    path = os.path.join(cluster.spool, "stat", "master.json")
    if cluster.target.name != "awq":
        time.sleep(5)
        return

    def connected() -> bool:
        import json
        try:
            with open(path) as handle:
                return json.load(handle).get("workqueue", {}).get("workers_connected", 0) >= count
        except (OSError, ValueError):
            return False
    wait_until(connected, timeout, "%d workers to connect" % count, interval=0.2)


def _cmd(name: str, quick_args: str = "") -> str:
    return "python -m benchmarks --only %s%s" % (name, quick_args)


# ================================================================ latency

LATENCY_JOB = '#!/bin/sh\ndate +%s.%N > "$AWQ_BENCH_STAMP"\necho "done $AWQ_BENCH_INDEX"\n'


def _wait_for_line(path: str, line: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                if line in handle.read():
                    return time.time()
        except OSError:
            pass
        time.sleep(0.005)
    raise BenchError("timed out after %.0f s waiting for %s" % (timeout, path))


def latency(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    samples = ctx.repeats(3 if upstream else 15, 3)
    configs = [("direct workers, queue idle", False, False),
               ("through one foreman, queue idle", True, False)]
    if not ctx.quick and not upstream:
        configs += [("direct workers, 2 long jobs running", False, True),
                    ("through one foreman, 2 long jobs running", True, True)]
    timeout = 120 if upstream else 60
    ys = _time_yardstick(target, ctx)
    figures: List[Dict[str, object]] = []
    for label, foreman, busy in configs:
        root = ctx.workdir("latency")
        try:
            starts, outputs = _latency_config(target, ctx, root, foreman, busy, samples, timeout)
        except BenchError as err:  # one configuration failing leaves the others' figures
            for what in ("job started", "output on disk"):
                figures.append(unsupported("%s: condor_submit -> %s" % (label, what),
                                           "failed: %s" % err))
            figures[-1]["log_tail"] = _log_tails(root)
            continue
        limit = 1.2 if foreman else 0.2
        target_text = "<= %.1f s (issue 8)" % limit
        figures.append(figure("%s: condor_submit -> job started" % label, starts, "s",
                              statistics.median(ys)))
        figures.append(figure("%s: condor_submit -> output on disk" % label, outputs, "s",
                              statistics.median(ys), target=target_text, limit=limit))
    ys += _time_yardstick(target, ctx)
    notes = ["each sample runs condor_submit (a fresh process, as AliEn does) for a job that "
             "stamps its start time and prints one line; one warm-up sample is not counted"]
    if upstream:
        notes.append("upstream looks at its spool once per 30 s loop")
    return {"yardstick": _yardstick_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("latency")}


def _log_tails(root: str) -> Dict[str, str]:
    tails = {}
    for name in ("master", "foreman0", "worker0"):
        try:
            with open(os.path.join(root, name + ".log"), errors="replace") as handle:
                tails[name] = handle.read()[-1500:]
        except OSError:
            pass
    return tails


def _latency_config(target: Target, ctx: Context, root: str, foreman: bool, busy: bool,
                    samples: int, timeout: float) -> tuple:
    with Cluster(target, root) as cluster:
        cluster.start_master()
        manager = cluster.start_foreman() if foreman else None
        for _ in range(3 if busy else 1):
            cluster.start_worker(1, manager)
        job = write_executable(os.path.join(root, "job.sh"), LATENCY_JOB)
        if busy:
            sleeper = write_executable(os.path.join(root, "sleep.sh"), "#!/bin/sh\nsleep 600\n")
            for text in target.descriptions(sleeper, os.path.join(root, "sleep.{i}"), 2):
                cluster.submit(text)
            wait_until(lambda: read_stat(cluster.spool).get("RUNNING", 0) >= 2, timeout,
                       "the 2 long jobs to run", interval=0.1)
        starts, outputs = [], []
        for index in range(-1, samples):  # -1: warm-up (workers connecting), not counted
            out = os.path.join(root, "out.%d" % (index + 1))
            stamp = os.path.join(root, "started.%d" % (index + 1))
            env = "AWQ_BENCH_STAMP=%s;AWQ_BENCH_INDEX=%d" % (stamp, index + 1)
            text = target.descriptions(job, out, 1, env=env)[0]
            submitted = time.time()
            cluster.submit(text)
            done = _wait_for_line(out, "done %d" % (index + 1), timeout)
            if index >= 0:
                outputs.append(done - submitted)
                with open(stamp) as handle:
                    starts.append(float(handle.read()) - submitted)
            time.sleep(0.2)
    return starts, outputs


# ================================================================ burst

ALIEN_DESCRIPTION = (
    "executable = {exe}\narguments = -a b\noutput = {out}/o.$(Cluster).$(Process)\n"
    "error = {out}/e.$(Cluster).$(Process)\nlog = {out}/log\n"
    "environment=CONDOR_ID=$(Cluster).$(Process);ALIEN_CM_AS_LDAP_PROXY=host:8084;"
    "ALIEN_JOBAGENT_ID=1234.0\nperiodic_remove = CurrentTime - QDate > 259200\n"
    "queue {n}\n")


def burst(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    total = 1000 if ctx.quick else 10000
    submitters = 4
    repeats = ctx.repeats(1 if upstream else 3, 1)
    ys = _time_yardstick(target, ctx)
    totals, lags, cpu_ms, submit_times = [], [], [], []
    for _ in range(repeats):
        root = ctx.workdir("burst")
        with Cluster(target, root) as cluster:
            master = cluster.start_master()
            exe = write_executable(os.path.join(root, "agent.sh"), "#!/bin/sh\nsleep 1\n")
            out = os.path.join(root, "out")
            os.makedirs(out)
            if upstream:
                descriptions = target.descriptions(exe, out + "/o.{i}", total,
                                                   env="ALIEN_JOBAGENT_ID={i}")
            else:
                descriptions = [ALIEN_DESCRIPTION.format(exe=exe, out=out, n=total // submitters)
                                for _ in range(submitters)]
            cpu0 = cpu_seconds(master.pid)
            start = time.monotonic()
            procs = _submit_many(cluster, descriptions, submitters, "burst")
            exits: Dict[int, float] = {}

            def all_taken() -> bool:
                for proc in procs:
                    if proc.pid not in exits and proc.poll() is not None:
                        exits[proc.pid] = time.monotonic()
                return waiting_and_running(cluster.spool) >= total
            wait_until(all_taken, 300 if upstream else 120, "the master to hold %d jobs" % total,
                       interval=0.01)
            end = time.monotonic()
            cpu1 = cpu_seconds(master.pid)
            _wait_submitters(procs, 60)
            for proc in procs:
                exits.setdefault(proc.pid, end)
            totals.append(end - start)
            submit_times.append(max(exits.values()) - start)
            lags.append(max(0.0, end - max(exits.values())))
            cpu_ms.append((cpu1 - cpu0) * 1000.0 / total)
    ys += _time_yardstick(target, ctx)
    y = statistics.median(ys)
    rates = [total / t for t in totals]
    figures = [
        figure("%d jobs from %d concurrent submitters: start -> master holds all" % (total, submitters),
               totals, "s", y),
        figure("submitters' own time (start -> last condor_submit exits)", submit_times, "s", y),
        # Issue 8's burst target: "all 10,000 in Work Queue <= 5 s after the last submit returns".
        # Ours hands Work Queue only what its workers can start soon (awq/dispatch.py): the
        # rest wait in the master's table, taken, durable and counted in stat/latest.
        figure("master holds all after the last condor_submit returns", lags, "s", y,
               target="<= 5 s (issue 8)" if total == 10000 else None, limit=5.0),
        figure("ingest rate (jobs / end-to-end time)", rates, "jobs/s", y, time_like=False),
        figure("master CPU per job ingested (= s per 1,000 jobs)", cpu_ms, "ms", y),
    ]
    how = ("4 bash loops, each running upstream's condor_submit once per job (%d calls)" % total
           if upstream else "4 processes, each `condor_submit FILE` with `queue %d`"
           % (total // submitters))
    notes = ["submitters: " + how,
             "held = WAITING + RUNNING in stat/latest, which the master writes once it has "
             "taken the jobs into its table (upstream: after handing them to Work Queue; ours "
             "hands Work Queue only what its workers can start soon, MIN_WAITING in "
             "awq/dispatch.py); no workers are attached"]
    return {"yardstick": _yardstick_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("burst")}


# ================================================================ condor_q

CLIENT_FORMS = [
    ("AliEn: condor_q -constraint \"JobStatus==1 || JobStatus==2\" | wc -l",
     'condor_q -constraint "JobStatus==1 || JobStatus==2" | wc -l', "active"),
    ("AliEn: condor_q -constraint \"JobStatus==1\" | wc -l",
     'condor_q -constraint "JobStatus==1" | wc -l', "idle"),
    ("AliEn: condor_q $USER -totals | tail -n 1", 'condor_q $USER -totals | tail -n 1', "totals"),
    ("AliEn: condor_q (exit status)", "condor_q > /dev/null", "exit"),
    ("AliEn: condor_q -format ClusterId/HoldReasonCode/GridJobId/Cmd",
     'condor_q -format "%d " ClusterId -format "HoldReason=%s " HoldReasonCode '
     '-format "%s " GridJobId -format "%s \\n" Cmd', "lines"),
    ("AliEn: condor_q -constraint idle||running -format ClusterId/Cmd",
     'condor_q -constraint "JobStatus==1 || JobStatus==2" -format "%d " ClusterId '
     '-format "%s \\n" Cmd', "lines"),
    ("JAliEn: condor_q -const 'JobStatus < 3' -af JobStatus GridResource",
     "condor_q -const 'JobStatus < 3' -af JobStatus GridResource", "af"),
    ("JAliEn (older): condor_status -schedd -af totalRunningJobs totalIdleJobs",
     "condor_status -schedd -af totalRunningJobs totalIdleJobs", "schedd"),
]
TOTALS_RE = re.compile(r"(\d+) idle,\s+(\d+) running,\s+(\d+) held,\s+(\d+) suspended")


def _check_form(kind: str, result: subprocess.CompletedProcess, idle: int, running: int) -> bool:
    out = result.stdout
    if result.returncode != 0:
        return False
    if kind == "active":
        return out.strip() == str(idle + running)
    if kind == "idle":
        return out.strip() == str(idle)
    if kind == "totals":
        match = TOTALS_RE.search(out)
        return bool(match) and (int(match.group(1)), int(match.group(2))) == (idle, running)
    if kind == "exit":
        return True
    if kind in ("lines", "af"):
        lines = out.splitlines()
        if len(lines) != idle + running:
            return False
        if kind == "af":  # JAliEn's own regular expression
            return all(re.match(r"^\s*([12]).*\s(\S+)", line) for line in lines[:50])
        return all(re.match(r"^\d+ \S", line) for line in lines[:50])  # ClusterId, then Cmd
    if kind == "schedd":
        return out.split() == [str(running), str(idle)]
    return False


def build_spool(spool_dir: str, count: int, upstream: bool) -> tuple:
    """A spool as the master leaves it with `count` jobs: 40% idle, 60% running.

    Ours: the snapshot and stat/latest written through awq.spool's API, and
    master.lock held by this process (so condor_q sees a live master).
    Upstream: only stat/latest, all its condor_q reads.
    """
    idle = count * 2 // 5
    running = count - idle
    if upstream:
        os.makedirs(os.path.join(spool_dir, "stat"), exist_ok=True)
        os.makedirs(os.path.join(spool_dir, "queue"), exist_ok=True)
        return idle, running, None
    sys.path.insert(0, REPO)
    from awq import submit
    from awq.spool import Spool
    now = int(time.time())
    desc = submit.parse_description(ALIEN_DESCRIPTION.format(exe="/bin/true", out="/tmp", n=1))
    template = submit.build_jobs(desc, cluster_id=1, cwd="/tmp", environ={},
                                 owner=getpass.getuser(), uid=os.getuid(), now=now)[0]
    table = {}
    for index in range(count):
        cluster = index + 1  # AliEn submits one job per cluster
        job = dict(template, ClusterId=cluster, Out="/tmp/o.%d.0" % cluster,
                   Err="/tmp/e.%d.0" % cluster,
                   Environment="CONDOR_ID=%d.0 ALIEN_CM_AS_LDAP_PROXY=host:8084 "
                               "ALIEN_JOBAGENT_ID=%d.0" % (cluster, cluster))
        if index % 5 >= 2:
            job.update(JobStatus=2, EnteredCurrentStatus=now, NumJobStarts=1,
                       JobCurrentStartDate=now, JobStartDate=now, RemoteHost="127.0.0.1:9123")
        table[(cluster, 0)] = job
    spool = Spool(spool_dir, create=True)
    spool.published.write_snapshot({"jobs": table, "max_cluster_id": count,
                                    "master_pid": os.getpid(), "written": time.time()})
    spool.published.write_stat(idle, running)
    lock = spool.master_files.lock()
    return idle, running, lock


def refresh_heartbeat(spool_dir: str, idle: int, running: int) -> None:
    """stat/latest as the master rewrites it (condor_q refuses a heartbeat 200 s old)."""
    path = os.path.join(spool_dir, "stat", "latest")
    tmp = path + ".bench"
    with open(tmp, "w") as handle:
        handle.write("WAITING=%d\nRUNNING=%d\nTIMESTAMP=%d\n" % (idle, running, int(time.time())))
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def time_forms(target: Target, spool_dir: str, idle: int, running: int, repeats: int,
               cwd: str, forms=CLIENT_FORMS, label: str = "", limit: Optional[float] = None,
               ratio_limit: Optional[float] = None, target_text: str = ""
               ) -> tuple:
    """Each client form, interleaved with `python3 -c pass`, both through /bin/sh -c."""
    env = dict(target.env, AWQ_WORKDIR=spool_dir)
    figures, all_ys = [], []
    sh_yardstick = ["/bin/sh", "-c", YARDSTICK_TEXT]
    for name, command, kind in forms:
        tool = command.split()[0]
        if not target.has(tool):
            figures.append(unsupported(label + name, "%s has no %s" % (target.name, tool)))
            continue
        refresh_heartbeat(spool_dir, idle, running)
        check = run_bounded(["/bin/sh", "-c", command], env, cwd, capture=True)
        correct = _check_form(kind, check, idle, running)
        form_times, ys = [], []
        for _ in range(repeats):
            ys.append(time_command(sh_yardstick, env, cwd))
            form_times.append(time_command(["/bin/sh", "-c", command], env, cwd))
        all_ys += ys
        fig = figure(label + name, form_times, "s", statistics.median(ys), target=target_text or None,
                     limit=limit, ratio_limit=ratio_limit)
        fig["command"] = command
        fig["yardstick_s"] = statistics.median(ys)
        fig["output_correct"] = correct
        if not correct:
            fig["output_sample"] = (check.stdout[:200] + check.stderr[:200]) or "(nothing)"
        figures.append(fig)
    return figures, all_ys


# Issue 23: condor_q within 3x of a bare interpreter start at these sizes, every form under
# 0.5 s at REMOVAL_SIZE, and condor_rm -all of that many jobs visible within 10 s.
RATIO_SIZES = (10000, 50000)
REMOVAL_SIZE = 100000
REMOVAL_VISIBLE_WITHIN = 10.0
SUBMIT_BATCH = 10000          # jobs per condor_submit when filling the queue


def condor_q(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    sizes = [10000] if ctx.quick else list(RATIO_SIZES) + [REMOVAL_SIZE]
    figures: List[Dict[str, object]] = []
    all_ys: List[float] = []
    notes = ["each form and `%s` both run through /bin/sh -c, interleaved, " % YARDSTICK_TEXT +
             "after one untimed run that also checks the output against the spool's numbers "
             "(output_correct)",
             "the spool is written through awq.spool's API as the master leaves it: one job a "
             "cluster (as AliEn submits), 40% idle, 60% running; this process holds master.lock"]
    if upstream:
        notes.append("upstream's condor_q reads only stat/latest (WAITING/RUNNING) and answers "
                     "the two -constraint forms; every other form prints nothing; it has no "
                     "condor_status; its master holds at most 10,000 jobs")
    for size in sizes:
        root = ctx.workdir("condor_q")
        spool_dir = os.path.join(root, "spool")
        start = time.monotonic()
        idle, running, lock = build_spool(spool_dir, size, upstream)
        build_s = time.monotonic() - start
        try:
            if size in RATIO_SIZES:
                kwargs = dict(ratio_limit=3.0, target_text="<= 3x python3 -c pass (issue 23)")
            else:
                kwargs = dict(limit=0.5, target_text="< 0.5 s (issue 23)")
            repeats = ctx.repeats(15 if size == 10000 else 10, 3)
            figs, ys = time_forms(target, spool_dir, idle, running, repeats, root,
                                  label="%d jobs: " % size, **kwargs)
            figures += figs
            all_ys += ys
            notes.append("%d jobs: spool built in %.1f s" % (size, build_s))
        finally:
            if lock is not None:
                lock.release()
    if not ctx.quick:
        if upstream:
            figures.append(unsupported("%d jobs: condor_rm -all -> condor_q" % REMOVAL_SIZE,
                                       "upstream's master holds at most 10,000 jobs"))
        else:
            figs, removal_notes = removal_visibility(target, ctx, REMOVAL_SIZE,
                                                     statistics.median(all_ys))
            figures += figs
            notes += removal_notes
    return {"yardstick": _yardstick_summary(all_ys), "figures": figures, "notes": notes,
            "command": _cmd("condor_q")}


def _totals(cluster: Cluster) -> Optional[Tuple[int, int, int, int]]:
    """(jobs, removed, idle, running) from condor_q -totals; None when it fails."""
    result = cluster.tool(["condor_q", "-totals"])
    found = re.search(r"all users: (\d+) jobs; \d+ completed, (\d+) removed, (\d+) idle, "
                      r"(\d+) running", result.stdout)
    if result.returncode != 0 or not found:
        return None
    return tuple(int(n) for n in found.groups())  # type: ignore[return-value]


def removal_visibility(target: Target, ctx: Context, size: int, y: float) -> tuple:
    """A live master with `size` idle jobs (no workers), condor_rm -all, then condor_q -totals
    run again and again: when it shows them removed (none idle or running: X, as HTCondor
    shows a removed job until it leaves) and when it shows no job left."""
    root = ctx.workdir("removal")
    notes = []
    with Cluster(target, root) as cluster:
        cluster.start_master()
        out = os.path.join(root, "out")
        os.makedirs(out)
        for _ in range(size // SUBMIT_BATCH):
            cluster.submit(ALIEN_DESCRIPTION.format(exe="/bin/true", out=out, n=SUBMIT_BATCH))
        queue_dir = os.path.join(cluster.spool, "queue")

        def all_taken() -> bool:
            totals = _totals(cluster)
            return bool(totals and totals[2] == size and not any(
                name.endswith(".job") for name in os.listdir(queue_dir)))
        wait_until(all_taken, 600, "the master to take %d jobs" % size, interval=0.5)
        start = time.monotonic()
        result = cluster.tool(["condor_rm", "-all"])
        returned = time.monotonic()
        if result.returncode != 0:
            raise BenchError("condor_rm -all failed: " + result.stderr[-500:])
        shown, gone, q_times = None, None, []
        while gone is None and time.monotonic() - returned < 600:
            asked = time.monotonic()
            totals = _totals(cluster)
            q_times.append(time.monotonic() - asked)
            if totals and shown is None and totals[2] + totals[3] == 0:
                shown = time.monotonic() - returned
            if totals and totals[0] == 0:
                gone = time.monotonic() - returned
        if gone is None:
            raise BenchError("condor_q still shows jobs 600 s after condor_rm -all")
        label = "%d jobs: condor_rm -all returns -> condor_q " % size
        target_text = "<= %g s (issue 23)" % REMOVAL_VISIBLE_WITHIN
        figures = [
            figure("%d jobs: condor_rm -all (the command)" % size, [returned - start], "s", y),
            figure(label + "shows them removed (X; none idle or running)", [shown], "s", y,
                   target=target_text, limit=REMOVAL_VISIBLE_WITHIN),
            figure(label + "shows no job left", [gone], "s", y),
            figure("%d jobs, removal waiting: condor_q -totals" % size, q_times, "s", y,
                   target="< 0.5 s (issue 23)", limit=0.5),
        ]
        notes.append("removal at %d jobs: one run; the jobs (AliEn's description, %d a "
                     "condor_submit, one user log) idle with no worker; condor_q -totals is "
                     "run back to back after condor_rm returns, %d times; a job leaves once "
                     "the master has carried the removal out (one master-log line for the "
                     "request, one write to the user log), appended it to history and "
                     "written a snapshot without it" % (size, SUBMIT_BATCH, len(q_times)))
    return figures, notes


# ================================================================ throughput

def throughput(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    # Upstream runs about one job a second through a foreman (its tasks name only cores, so
    # Work Queue sends a foreman one at a time, and it waits in 5 s slices): fewer jobs.
    total = (30 if ctx.quick else 200) if upstream else (300 if ctx.quick else 10000)
    n_foremen, n_workers = (1, 2) if ctx.quick else (4, 8)
    repeats = ctx.repeats(1, 1)
    ys = _time_yardstick(target, ctx)
    rates, cpu_ms, wall = [], [], []
    for _ in range(repeats):
        root = ctx.workdir("throughput")
        with Cluster(target, root) as cluster:
            master = cluster.start_master()
            ports = [cluster.start_foreman() for _ in range(n_foremen)]
            for index in range(n_workers):
                cluster.start_worker(1, ports[index % n_foremen])
            _workers_connected(cluster, n_foremen)
            warm = os.path.join(root, "warm")
            os.makedirs(warm)
            for text in target.descriptions("/bin/true", warm + "/o.{i}", n_foremen):
                cluster.submit(text)
            wait_until(lambda: count_files(warm) >= n_foremen, 120, "the warm-up jobs",
                       interval=0.1)
            out = os.path.join(root, "out")
            os.makedirs(out)
            descriptions = target.descriptions("/bin/true", out + "/o.{i}", total)
            cpu0 = cpu_seconds(master.pid)
            start = time.monotonic()
            procs = _submit_many(cluster, descriptions, 4, "throughput")
            wait_for_count(lambda: count_files(out), total, "outputs")
            end = time.monotonic()
            cpu1 = cpu_seconds(master.pid)
            _wait_submitters(procs, 60)
        wall.append(end - start)
        rates.append(total / (end - start))
        cpu_ms.append((cpu1 - cpu0) * 1000.0 / total)
    ys += _time_yardstick(target, ctx)
    y = statistics.median(ys)
    figures = [
        figure("%d x /bin/true through %d foremen and %d workers: condor_submit -> all outputs"
               % (total, n_foremen, n_workers), wall, "s", y),
        figure("throughput", rates, "jobs/s", y, time_like=False),
        figure("wall time per job", [1000.0 / r for r in rates], "ms", y),
        figure("master CPU (utime+stime) per job (= s per 1,000 jobs)", cpu_ms, "ms", y,
               target="<= 1 ms/job (issue 8)", limit=1.0),
    ]
    notes = ["submitted as %s; a job is done when its output file exists"
             % ("%d upstream condor_submit calls from 4 bash loops" % total if upstream
                else "4 condor_submit calls with `queue %d`" % (total // 4)),
             "master CPU from /proc (its own, its children's: the front, the watcher) over the same window (submit -> last output)"]
    return {"yardstick": _yardstick_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("throughput")}


# ================================================================ scale

# Each pilot leaves one empty file per start, named <job id>.<its PID> (exec keeps the PID),
# then becomes `sleep 86399`: one process per running pilot, found again in /proc by that
# command line and by AWQ_BENCH_STARTS (this run's directory) in its environment.
PILOT_SECONDS = 86399
PILOT = ('#!/bin/sh\n: > "$AWQ_BENCH_STARTS/$AWQ_BENCH_JOB.$$"\nexec sleep %d\n'
         % PILOT_SECONDS)
PILOT_CMDLINE = b"sleep\x00%d\x00" % PILOT_SECONDS
SCALE_WANTED = (40, 250)       # 10,000 concurrent pilots, if the machine has room
RESTART_SIZE = (20, 250)       # 5,000 pilots for the kill -9 + restart
PID_RESERVE = 4000             # processes and threads left to the rest of the machine
MEM_RESERVE_MB = 2048


class Pilots:
    """The pilot script of one cluster and what its pilots left behind."""

    def __init__(self, root: str):
        self.starts = os.path.join(root, "starts")
        os.makedirs(self.starts)
        self.script = write_executable(os.path.join(root, "pilot.sh"), PILOT)
        self.out = os.path.join(root, "out")
        os.makedirs(self.out)

    def env(self) -> str:
        return "AWQ_BENCH_STARTS=%s;AWQ_BENCH_JOB=$(Cluster).{i}" % self.starts

    def live(self) -> Dict[str, List[int]]:
        return live_pilots("AWQ_BENCH_STARTS", self.starts, PILOT_CMDLINE)

    def starts_by_job(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for name in os.listdir(self.starts):
            job = name.rsplit(".", 1)[0]
            counts[job] = counts.get(job, 0) + 1
        return counts


def _queue_jobs(cluster: Cluster) -> Dict[str, tuple]:
    """condor_q's view: job id -> (JobStatus, NumJobStarts)."""
    result = cluster.tool(["condor_q", "-af", "ClusterId", "ProcId", "JobStatus",
                           "NumJobStarts"])
    if result.returncode != 0:
        raise BenchError("condor_q -af failed: " + (result.stderr or result.stdout)[-500:])
    jobs = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) == 4:
            starts = int(words[3]) if words[3].isdigit() else 0
            jobs["%s.%s" % (words[0], words[1])] = (int(words[2]), starts)
    return jobs


def _ramp(cluster: Cluster, pilots: Pilots, count: int, name: str) -> tuple:
    """Submit `count` pilots; (seconds until the master shows them all running, master CPU s)."""
    assert cluster.master
    descriptions = cluster.target.descriptions(pilots.script, pilots.out + "/o.{i}", count,
                                               env=pilots.env())
    cpu0 = cpu_seconds(cluster.master.pid)
    start = time.monotonic()
    procs = _submit_many(cluster, descriptions, 4, name)
    wait_for_count(lambda: read_stat(cluster.spool).get("RUNNING", 0), count,
                   "pilots running", interval=0.1)
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(cluster.master.pid) - cpu0
    _wait_submitters(procs, 60)
    return elapsed, cpu


def _written_since(path: str, wall: float) -> bool:
    try:
        return os.stat(path).st_mtime > wall
    except OSError:
        return False


def _workers_now(spool: str) -> int:
    import json
    try:
        with open(os.path.join(spool, "stat", "master.json")) as handle:
            return int(json.load(handle).get("workqueue", {}).get("workers_connected", 0))
    except (OSError, ValueError):
        return 0


RECOVERY_STALL = 120.0          # s without one more new pilot before the restart step gives up
RECOVERY_LOOK_INTERVAL = 0.25   # s between looks while the restarted master recovers
SETTLE_LOOK_INTERVAL = 0.5      # s between the looks after it has recovered


class Kill(NamedTuple):
    """When the master was killed and restarted, and how long the new one took to listen."""
    wall: float         # time.time() of the kill: files written after it are the new master's
    at: float           # time.monotonic() of the kill
    restarted_at: float
    up: float           # s from the restart to the master listening


class Recovery:
    """What looks at /proc and at the spool saw after a restart: when each milestone was
    first reached (time.monotonic(), None if never) and the most live pilots of each job."""

    def __init__(self, cluster: Cluster, pilots: Pilots, old_pids: Set[int], n_workers: int,
                 kill: Kill):
        self.cluster = cluster
        self.pilots = pilots
        self.old_pids = old_pids
        self.n_workers = n_workers
        self.kill = kill
        self.seen: Dict[str, Optional[float]] = {
            "old_gone": None, "workers": None, "running": None, "live": None}
        self.most: Dict[str, int] = {}      # job -> most live pilots seen at once
        self.samples = 0
        self.old_alive = len(old_pids)

    def _count(self) -> Dict[str, List[int]]:
        live = self.pilots.live()
        self.samples += 1
        for job, pids in live.items():
            self.most[job] = max(self.most.get(job, 0), len(pids))
        self.old_alive = sum(1 for pids in live.values() for pid in pids if pid in self.old_pids)
        return live

    def _reached(self, milestone: str, now: float, condition: Callable[[], bool]) -> None:
        if self.seen[milestone] is None and condition():
            self.seen[milestone] = now

    def _look(self, total: int) -> int:
        """One look; the number of jobs with a new pilot live."""
        live = self._count()
        now = time.monotonic()
        spool = self.cluster.spool
        new_live = sum(1 for pids in live.values() if any(p not in self.old_pids for p in pids))
        self._reached("old_gone", now, lambda: self.old_alive == 0)
        self._reached("workers", now, lambda: _written_since(
            os.path.join(spool, "stat", "master.json"), self.kill.wall)
            and _workers_now(spool) >= self.n_workers)
        self._reached("running", now, lambda: _written_since(
            os.path.join(spool, "stat", "latest"), self.kill.wall)
            and read_stat(spool).get("RUNNING", 0) >= total)
        self._reached("live", now, lambda: new_live >= total)
        return new_live

    def watch(self, total: int, timeout: float) -> None:
        """Look until every milestone is reached, nothing moved for RECOVERY_STALL s, or
        `timeout`; a milestone never reached is reported, not raised: it is the finding."""
        deadline = time.monotonic() + timeout
        best, moved = -1, time.monotonic()
        while True:
            new_live = self._look(total)
            now = time.monotonic()
            if all(v is not None for v in self.seen.values()):
                return
            if new_live > best:
                best, moved = new_live, now
            if now - moved > RECOVERY_STALL or now > deadline:
                return
            time.sleep(RECOVERY_LOOK_INTERVAL)

    def settle(self, seconds: float) -> None:
        """A few more looks: a job that gets a second pilot late is still caught."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._count()
            time.sleep(SETTLE_LOOK_INTERVAL)
        self._count()


def _run_pilots(cluster: Cluster, pilots: Pilots, n_workers: int, cores: int,
                y: float) -> Tuple[Dict[str, object], Dict[str, float]]:
    """Start the master and workers and fill them with pilots: the ramp's figure, and what a
    running pilot costs the machine (processes and threads, memory), for _pilots_that_fit."""
    total = n_workers * cores
    tasks0, mem0 = system_tasks(), mem_available_mb()
    cluster.start_master()
    for _ in range(n_workers):
        cluster.start_worker(cores)
    _workers_connected(cluster, n_workers)
    ramp, _ = _ramp(cluster, pilots, total, "restart")
    ramp_figure = figure("%d pilots on %d workers x %d cores: condor_submit -> all running "
                         "(before the kill)" % (total, n_workers, cores), [ramp], "s", y,
                         target="<= 10 s (issue 8)" if total == 5000 else None, limit=10.0)
    wait_for_count(lambda: len(pilots.live()), total, "live pilot processes", interval=0.5)
    budget = {"tasks_per_pilot": (system_tasks() - tasks0) / total,
              "mb_per_pilot": max(0.0, mem0 - mem_available_mb()) / total}
    return ramp_figure, budget


def _before_the_kill(cluster: Cluster, pilots: Pilots,
                     total: int) -> Tuple[Dict[str, tuple], Set[int]]:
    """condor_q's jobs and the PIDs of their live pilots, all `total` of each."""
    before = _queue_jobs(cluster)
    old = pilots.live()
    if len(before) != total or len(old) != total:
        raise BenchError("before the kill: %d jobs in condor_q, %d live pilots, of %d"
                         % (len(before), len(old), total))
    return before, {pid for pids in old.values() for pid in pids}


def _kill_and_restart(cluster: Cluster) -> Kill:
    """kill -9 of the master, and a new one at once on the same spool and port."""
    assert cluster.master
    port = cluster.master.port
    wall, at = time.time(), time.monotonic()
    cluster.kill_master()
    restarted_at = time.monotonic()
    cluster.start_master(port=port, name="master-restarted")
    return Kill(wall, at, restarted_at, time.monotonic() - restarted_at)


def _requeued_by(master_log: str) -> int:
    """What the restarted master says it requeued (-1: it did not say)."""
    found = re.findall(r"recovered (\d+) jobs from the snapshot \((\d+) requeued", master_log)
    return int(found[-1][1]) if found else -1


def _recovery_figures(recovery: Recovery, total: int, n_workers: int,
                      y: float) -> List[Dict[str, object]]:
    kill = recovery.kill

    def timed(name: str, milestone: str, t0: float) -> Dict[str, object]:
        reached = recovery.seen[milestone]
        if reached is None:
            return unsupported(name, "never happened (waited until nothing moved for %.0f s)"
                               % RECOVERY_STALL)
        return figure(name, [reached - t0], "s", y)
    return [
        timed("kill -9 of the master -> its %d pilots all ended (each worker kills the tasks "
              "of a manager it lost)" % total, "old_gone", kill.at),
        figure("restart on the same spool and port -> the master listens again", [kill.up],
               "s", y),
        timed("restart -> all %d workers reconnected by themselves" % n_workers, "workers",
              kill.restarted_at),
        timed("restart -> the master shows all %d running again (stat/latest)" % total, "running",
              kill.restarted_at),
        timed("restart -> %d new pilot processes live, one per job (/proc)" % total, "live",
              kill.restarted_at),
    ]


class Losses(NamedTuple):
    """Issue 8's verdicts on a restart, as job ids."""
    lost: List[str]          # in condor_q before the kill, not after
    not_running: List[str]   # not running again after the restart
    duplicated: List[str]    # two pilots or more live at once


def _losses(before: Dict[str, tuple], after: Dict[str, tuple], recovery: Recovery) -> Losses:
    return Losses(sorted(set(before) - set(after)),
                  sorted(j for j in before if after.get(j, (0,))[0] != 2),
                  sorted(j for j, n in recovery.most.items() if n > 1))


def _loss_figures(losses: Losses, before: Dict[str, tuple], after: Dict[str, tuple],
                  starts: Dict[str, int], recovery: Recovery, requeued: int,
                  total: int) -> List[Dict[str, object]]:
    lost, not_running, duplicated = losses
    restarted = sum(1 for j in before if after.get(j, (0, 0))[1] >= 2)
    twice = sum(1 for j in before if starts.get(j, 0) == 2)
    more = sum(1 for j in before if starts.get(j, 0) > 2)
    return [
        figure("jobs lost across kill -9 + restart (in condor_q before, not after)", [len(lost)],
               "jobs", None, target="0 jobs lost (issue 8)", limit=0, time_like=False,
               note=("lost: %s" % " ".join(lost[:20])) if lost else ""),
        figure("jobs not running again after the restart (condor_q JobStatus != 2)",
               [len(not_running)], "jobs", None, target="0 (issue 8)", limit=0, time_like=False,
               note=("e.g. %s" % " ".join(not_running[:20])) if not_running else ""),
        figure("jobs duplicated: 2+ live pilots at once (%d looks at /proc)" % recovery.samples,
               [len(duplicated)], "jobs", None, target="0 duplicated (issue 8)", limit=0,
               time_like=False,
               note=("e.g. %s" % " ".join(duplicated[:20])) if duplicated else ""),
        figure("pilots of the killed master still alive at the end", [recovery.old_alive],
               "pilots", None, target="0 (issue 8)", limit=0, time_like=False),
        figure("jobs requeued by the restarted master (its log: \"N requeued after running\")",
               [requeued], "jobs", None, time_like=False,
               note="expected %d: every job was running" % total),
        figure("jobs condor_q shows with NumJobStarts >= 2 after the restart", [restarted],
               "jobs", None, time_like=False),
        figure("jobs whose pilot started exactly twice (start files)", [twice], "jobs", None,
               time_like=False, note="%d started more than twice" % more),
    ]


def _restart_notes(losses: Losses, recovery: Recovery, requeued: int, total: int,
                   settle: float) -> List[str]:
    verdict = ("kill -9 + restart with %d pilots running: %d jobs lost, %d duplicated, "
               "%d not running again, %d requeued, %d pilots of the killed master left alive"
               % (total, len(losses.lost), len(losses.duplicated), len(losses.not_running),
                  requeued, recovery.old_alive))
    return [verdict,
            "kill -9 hits the master's PID only (its forked spool watcher too); the new master "
            "starts at once on the same spool with --port <the port the first one got>; the "
            "workers (started with the master's address, --timeout 300) reconnect by "
            "themselves. Jobs: condor_q -af before the kill and after all run again; pilots: "
            "every /proc entry running `sleep %d` with this run's AWQ_BENCH_STARTS, looked at "
            "every %.2g s from the restart until all run again and for %.0f s more"
            % (PILOT_SECONDS, RECOVERY_LOOK_INTERVAL, settle)]


def _restart(target: Target, ctx: Context, y: float) -> tuple:
    """kill -9 of the master under N running pilots, a restart on the same spool and port."""
    n_workers, cores = (2, 25) if ctx.quick else RESTART_SIZE
    total = n_workers * cores
    settle = 2.0 if ctx.quick else 10.0
    root = ctx.workdir("scale-restart")
    with Cluster(target, root) as cluster:
        pilots = Pilots(root)
        ramp_figure, budget = _run_pilots(cluster, pilots, n_workers, cores, y)
        before, old_pids = _before_the_kill(cluster, pilots, total)
        recovery = Recovery(cluster, pilots, old_pids, n_workers, _kill_and_restart(cluster))
        recovery.watch(total, timeout=120 if ctx.quick else 900)
        recovery.settle(settle)
        after = _queue_jobs(cluster)
        starts = pilots.starts_by_job()
        assert cluster.master
        requeued = _requeued_by(Processes.log_of(cluster.master.proc))
    losses = _losses(before, after, recovery)
    figures = ([ramp_figure] + _recovery_figures(recovery, total, n_workers, y)
               + _loss_figures(losses, before, after, starts, recovery, requeued, total))
    return figures, _restart_notes(losses, recovery, requeued, total, settle), budget


def _pilots_that_fit(wanted: tuple, budget: Dict[str, float]) -> tuple:
    """(workers, cores, why): the wanted pilots, or fewer when the machine has no room."""
    n_workers, cores = wanted
    with open("/proc/sys/kernel/pid_max") as handle:
        pid_max = int(handle.read())
    in_use = system_tasks()
    measured = "tasks_per_pilot" in budget
    per_task = max(1.0, budget.get("tasks_per_pilot", 1.0))
    per_mb = budget.get("mb_per_pilot", 0.0)
    room = int((pid_max - in_use - PID_RESERVE) / per_task)
    if per_mb > 0:
        room = min(room, int((mem_available_mb() - MEM_RESERVE_MB) / per_mb))
    if measured:
        cost = ("%.2f per running pilot and %.2f MB each (measured at the restart step)"
                % (per_task, per_mb))
    else:
        cost = "1 per running pilot assumed (no restart step measured it)"
    why = ("pid_max %d, %d processes and threads in use before, %s, %d kept for the rest of "
           "the machine: room for %d pilots" % (pid_max, in_use, cost, PID_RESERVE, room))
    if room >= n_workers * cores:
        return n_workers, cores, why
    return max(1, room // cores), cores, why


def _pilots_at_scale(target: Target, ctx: Context, y: float, ys: List[float],
         budget: Dict[str, float]) -> tuple:
    """As many concurrent pilots as fit (10,000 wanted): ramp, cost while running, condor_q, rm."""
    if ctx.quick:
        n_workers, cores, why = 2, 50, ""
    else:
        n_workers, cores, why = _pilots_that_fit(SCALE_WANTED, budget)
    pilots_n = n_workers * cores
    window = 3.0 if ctx.quick else 20.0
    label = "%d pilots" % pilots_n
    figures: List[Dict[str, object]] = []
    notes = []
    if why:
        wanted = SCALE_WANTED[0] * SCALE_WANTED[1]
        notes.append("%d concurrent pilots wanted: %s; %s" % (
            wanted, why, "all %d run" % wanted if pilots_n == wanted
            else "so %d run (%d workers x %d cores)" % (pilots_n, n_workers, cores)))
    root = ctx.workdir("scale")
    tasks0 = system_tasks()
    with Cluster(target, root) as cluster:
        master = cluster.start_master()
        for _ in range(n_workers):
            cluster.start_worker(cores)
        _workers_connected(cluster, n_workers, timeout=120)
        pilots = Pilots(root)
        ramp, ramp_cpu = _ramp(cluster, pilots, pilots_n, "scale")
        figures.append(figure("%s on %d workers x %d cores: condor_submit -> all running"
                              % (label, n_workers, cores), [ramp], "s", y))
        figures.append(figure("master CPU per pilot started (submit -> all running)",
                              [ramp_cpu * 1000.0 / pilots_n], "ms", y))
        wait_for_count(lambda: len(pilots.live()), pilots_n, "live pilot processes",
                       interval=0.5)
        # While they run: the master's CPU share and memory, one sample a second.
        shares, rss, tasks = [], [], []
        last_cpu, last_t = cpu_seconds(master.pid), time.monotonic()
        end = last_t + window
        while time.monotonic() < end:
            time.sleep(1.0)
            cpu, now = cpu_seconds(master.pid), time.monotonic()
            shares.append(100.0 * (cpu - last_cpu) / (now - last_t))
            rss.append(rss_mb(master.pid))
            tasks.append(system_tasks())
            last_cpu, last_t = cpu, now
        full = not ctx.quick
        figures.append(figure("master CPU while %s run (1 s samples)" % label, shares,
                              "% of a core", None, time_like=False,
                              target="< 0.1 core (issue 8)" if full else None, limit=10.0))
        figures.append(figure("master RSS while %s run" % label, rss, "MB", None,
                              time_like=False,
                              target="<= 300 MB (issue 8)" if full else None, limit=300.0))
        notes.append("while %s ran: %d processes and threads on the machine (%d before the "
                     "workers started)" % (label, max(tasks), tasks0))
        idle = read_stat(cluster.spool).get("WAITING", 0)
        running = read_stat(cluster.spool).get("RUNNING", 0)
        forms = [CLIENT_FORMS[0], CLIENT_FORMS[6]]
        q_figs, q_ys = time_forms(target, cluster.spool, idle, running, ctx.repeats(7, 3), root,
                                  forms=forms, label="while %s run: " % label,
                                  ratio_limit=3.0 if full else None,
                                  target_text="<= 3x python3 -c pass (issue 8)" if full else "")
        for fig in q_figs:
            fig.pop("output_correct", None)  # the master rewrites stat/latest meanwhile
        figures += q_figs
        ys += q_ys
        if target.has("condor_rm"):
            start = time.monotonic()
            result = cluster.tool(["condor_rm", "-all"])
            rm_s = time.monotonic() - start
            if result.returncode != 0:
                raise BenchError("condor_rm -all failed: " + result.stderr[-500:])
            wait_until(lambda: waiting_and_running(cluster.spool) == 0, 600, "the queue to drain",
                       interval=0.05)
            drained = time.monotonic() - start
            wait_until(lambda: not pilots.live(), 300, "the pilots to end", interval=0.5)
            ended = time.monotonic() - start
            y2 = statistics.median(ys)
            figures.append(figure("condor_rm -all (the command)", [rm_s], "s", y2))
            figures.append(figure("condor_rm -all -> stat/latest shows 0 jobs", [drained], "s",
                                  y2))
            figures.append(figure("condor_rm -all -> no pilot process left (/proc)", [ended],
                                  "s", y2))
        else:
            figures.append(unsupported("condor_rm -all -> drained", "%s has no condor_rm"
                                       % target.name))
    notes.append("one run: the spread of the CPU and RSS figures is over 1 s samples in a "
                 "%.0f s window" % window)
    return figures, notes


def scale(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    ys = _time_yardstick(target, ctx)
    y = statistics.median(ys)
    figures: List[Dict[str, object]] = []
    notes = ["`sleep` pilots on workers attached directly to the master; each pilot is one "
             "process (the worker's `sh -c` execs the pilot script, which records its start "
             "and execs `sleep`)"]
    budget: Dict[str, float] = {}
    if upstream:
        figures.append(unsupported("kill -9 of the master + restart", "not measured for "
                                   "upstream (its condor_q has no per-job view to count with)"))
    else:
        restart_figs, restart_notes, budget = _restart(target, ctx, y)
        figures += restart_figs
        notes += restart_notes
    big_figs, big_notes = _pilots_at_scale(target, ctx, y, ys, budget)
    figures += big_figs
    notes += big_notes
    ys += _time_yardstick(target, ctx)
    return {"yardstick": _yardstick_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("scale")}


# ================================================================ condor_submit

def submit(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    ys = _time_yardstick(target, ctx)
    y = statistics.median(ys)
    figures: List[Dict[str, object]] = []
    root = ctx.workdir("submit")
    exe = write_executable(os.path.join(root, "agent.sh"), "#!/bin/sh\nsleep 1\n")
    out = os.path.join(root, "out")
    os.makedirs(out)
    cases = [("condor_submit of one job (AliEn description on stdin)", 1, ctx.repeats(15, 3))]
    if not upstream:
        cases.append(("condor_submit of `queue %d`" % (1000 if ctx.quick else 10000),
                      1000 if ctx.quick else 10000, ctx.repeats(5, 1)))
    for name, count, repeats in cases:
        times, case_ys = [], []
        for index in range(repeats + 1):
            spool = os.path.join(root, "spool-%d-%d" % (count, index))
            env = dict(target.env, AWQ_WORKDIR=spool)
            if upstream:
                text = target.descriptions(exe, out + "/o.{i}", 1, env="N=%d" % index)[0]
            else:
                text = ALIEN_DESCRIPTION.format(exe=exe, out=out, n=count)
            case_ys.append(time_command(["/bin/sh", "-c", YARDSTICK_TEXT], env, root))
            start = time.perf_counter()
            result = run_bounded(["condor_submit"], env, root, input=text, capture=True)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise BenchError("condor_submit failed: " + result.stderr[-500:])
            if index > 0:  # the first makes the interpreter's caches warm
                times.append(elapsed)
            shutil.rmtree(spool, ignore_errors=True)
        ys += case_ys
        figures.append(figure(name, times, "s", statistics.median(case_ys[1:] or case_ys)))
    if upstream:
        figures.append(unsupported("condor_submit of `queue 10000`",
                                   "upstream queues one job per call (see burst: 10,000 calls)"))
    notes = ["a fresh spool for every call and no master running (its intake would compete "
             "for the CPUs); the description is AliEn's (executable, arguments, output, error, "
             "log, environment, periodic_remove)"]
    return {"yardstick": _yardstick_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("submit")}


from benchmarks.fleet import fleet  # noqa: E402 (its own module: it needs a Slurm)

SCENARIOS: Dict[str, Callable[[Target, Context], Result]] = {
    "latency": latency,
    "burst": burst,
    "condor_q": condor_q,
    "throughput": throughput,
    "scale": scale,
    "submit": submit,
    "fleet": fleet,
}
