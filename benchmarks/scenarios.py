"""The scenarios: each takes a Target and a Context and returns its figures.

A scenario returns {"yardstick": {...}, "figures": [...], "notes": [...]}.
Every figure carries the median and spread of its samples and its ratio to
`python3 -c pass` timed in the same run (see harness.figure).
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
from typing import Callable, Dict, List, Optional, Sequence

from benchmarks.harness import (PYTHON, REPO, BenchError, Cluster, Processes, Target,
                                count_files, cpu_seconds, figure, held, read_stat, rss_mb, run_bounded,
                                summarize, time_command, unsupported, wait_for_count, wait_until,
                                write_executable, yardstick)

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
        self._count += 1
        path = os.path.join(self.tmp, "%02d-%s" % (self._count, name))
        os.makedirs(path)
        return path

    def done_with(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)


def _ys(target: Target, ctx: Context, runs: int = 7) -> List[float]:
    return yardstick(target.env, ctx.tmp, runs)


def _ys_summary(samples: Sequence[float]) -> Dict[str, object]:
    result: Dict[str, object] = {"command": "python3 -c pass (%s)" % PYTHON}
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
    ys = _ys(target, ctx)
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
        finally:
            ctx.done_with(root)
        limit = 1.2 if foreman else 0.2
        target_text = "<= %.1f s (issue 8)" % limit
        figures.append(figure("%s: condor_submit -> job started" % label, starts, "s",
                              statistics.median(ys)))
        figures.append(figure("%s: condor_submit -> output on disk" % label, outputs, "s",
                              statistics.median(ys), target=target_text, limit=limit))
    ys += _ys(target, ctx)
    notes = ["each sample runs condor_submit (a fresh process, as AliEn does) for a job that "
             "stamps its start time and prints one line; one warm-up sample is not counted"]
    if upstream:
        notes.append("upstream looks at its spool once per 30 s loop")
    return {"yardstick": _ys_summary(ys), "figures": figures, "notes": notes,
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
    ys = _ys(target, ctx)
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

            def all_held() -> bool:
                for proc in procs:
                    if proc.pid not in exits and proc.poll() is not None:
                        exits[proc.pid] = time.monotonic()
                return held(cluster.spool) >= total
            wait_until(all_held, 300 if upstream else 120, "the master to hold %d jobs" % total,
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
        ctx.done_with(root)
    ys += _ys(target, ctx)
    y = statistics.median(ys)
    rates = [total / t for t in totals]
    figures = [
        figure("%d jobs from %d concurrent submitters: start -> master holds all" % (total, submitters),
               totals, "s", y, target="<= 5 s (issue 8)" if total == 10000 else None,
               limit=5.0),
        figure("submitters' own time (start -> last condor_submit exits)", submit_times, "s", y),
        figure("master lag after the last submitter exits", lags, "s", y),
        figure("ingest rate (jobs / end-to-end time)", rates, "jobs/s", y, time_like=False),
        figure("master CPU per job ingested (= s per 1,000 jobs)", cpu_ms, "ms", y),
    ]
    how = ("4 bash loops, each running upstream's condor_submit once per job (%d calls)" % total
           if upstream else "4 processes, each `condor_submit FILE` with `queue %d`"
           % (total // submitters))
    notes = ["submitters: " + how,
             "held = WAITING + RUNNING in stat/latest, which the master writes after handing "
             "the jobs to Work Queue; no workers are attached"]
    return {"yardstick": _ys_summary(ys), "figures": figures, "notes": notes,
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
    spool.write_snapshot({"jobs": table, "max_cluster_id": count, "master_pid": os.getpid(),
                          "written": time.time()})
    spool.write_stat(idle, running)
    lock = spool.lock_master()
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
    sh_ys = ["/bin/sh", "-c", "%s -c pass" % PYTHON]
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
            ys.append(time_command(sh_ys, env, cwd))
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


def condor_q(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    sizes = [10000] if ctx.quick else [10000, 100000]
    figures: List[Dict[str, object]] = []
    all_ys: List[float] = []
    notes = ["each form and `python3 -c pass` both run through /bin/sh -c, interleaved, "
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
            if size == 10000:
                kwargs = dict(ratio_limit=3.0, target_text="<= 3x python3 -c pass (issue 8)")
            else:
                kwargs = dict(limit=0.5, target_text="< 0.5 s (issue 8)")
            repeats = ctx.repeats(15 if size == 10000 else 10, 3)
            figs, ys = time_forms(target, spool_dir, idle, running, repeats, root,
                                  label="%d jobs: " % size, **kwargs)
            figures += figs
            all_ys += ys
            notes.append("%d jobs: spool built in %.1f s" % (size, build_s))
        finally:
            if lock is not None:
                lock.release()
        ctx.done_with(root)
    return {"yardstick": _ys_summary(all_ys), "figures": figures, "notes": notes,
            "command": _cmd("condor_q")}


# ================================================================ throughput

def throughput(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    # Upstream runs about one job a second through a foreman (its tasks name only cores, so
    # Work Queue sends a foreman one at a time, and it waits in 5 s slices): fewer jobs.
    total = (30 if ctx.quick else 200) if upstream else (300 if ctx.quick else 10000)
    n_foremen, n_workers = (1, 2) if ctx.quick else (4, 8)
    repeats = ctx.repeats(1, 1)
    ys = _ys(target, ctx)
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
        ctx.done_with(root)
        wall.append(end - start)
        rates.append(total / (end - start))
        cpu_ms.append((cpu1 - cpu0) * 1000.0 / total)
    ys += _ys(target, ctx)
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
             "master CPU from /proc/PID/stat over the same window (submit -> last output)"]
    return {"yardstick": _ys_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("throughput")}


# ================================================================ scale

def scale(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    n_workers, cores = (2, 50) if ctx.quick else (20, 250)
    pilots = n_workers * cores
    window = 3.0 if ctx.quick else 20.0
    ys = _ys(target, ctx)
    figures: List[Dict[str, object]] = []
    notes = ["%d `sleep` pilots on %d workers x %d cores, attached directly" % (
        pilots, n_workers, cores)]
    root = ctx.workdir("scale")
    with Cluster(target, root) as cluster:
        master = cluster.start_master()
        for _ in range(n_workers):
            cluster.start_worker(cores)
        _workers_connected(cluster, n_workers)
        sleeper = write_executable(os.path.join(root, "pilot.sh"), "#!/bin/sh\nexec sleep 3600\n")
        out = os.path.join(root, "out")
        os.makedirs(out)
        descriptions = target.descriptions(sleeper, out + "/o.{i}", pilots)
        start = time.monotonic()
        procs = _submit_many(cluster, descriptions, 4, "scale")
        wait_for_count(lambda: read_stat(cluster.spool).get("RUNNING", 0), pilots,
                       "pilots running", interval=0.1)
        all_running = time.monotonic() - start
        _wait_submitters(procs, 60)
        figures.append(figure("%d pilots: condor_submit -> all running" % pilots, [all_running],
                              "s", statistics.median(ys)))
        # While they run: the master's CPU share and memory, one sample a second.
        shares, rss = [], []
        last_cpu, last_t = cpu_seconds(master.pid), time.monotonic()
        end = last_t + window
        while time.monotonic() < end:
            time.sleep(1.0)
            cpu, now = cpu_seconds(master.pid), time.monotonic()
            shares.append(100.0 * (cpu - last_cpu) / (now - last_t))
            rss.append(rss_mb(master.pid))
            last_cpu, last_t = cpu, now
        figures.append(figure("master CPU while %d pilots run (1 s samples)" % pilots, shares,
                              "% of a core", None, time_like=False))
        figures.append(figure("master RSS while %d pilots run" % pilots, rss, "MB", None,
                              time_like=False))
        idle = read_stat(cluster.spool).get("WAITING", 0)
        running = read_stat(cluster.spool).get("RUNNING", 0)
        q_figs, q_ys = time_forms(target, cluster.spool, idle, running, ctx.repeats(7, 3), root,
                                  forms=CLIENT_FORMS[:1], label="while %d run: " % pilots)
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
            wait_until(lambda: held(cluster.spool) == 0, 600, "the queue to drain",
                       interval=0.05)
            drained = time.monotonic() - start
            figures.append(figure("condor_rm -all (the command)", [rm_s], "s",
                                  statistics.median(ys)))
            figures.append(figure("condor_rm -all -> stat/latest shows 0 jobs", [drained], "s",
                                  statistics.median(ys)))
        else:
            figures.append(unsupported("condor_rm -all -> drained", "%s has no condor_rm"
                                       % target.name))
    ctx.done_with(root)
    ys += _ys(target, ctx)
    notes.append("one run: the spread of the CPU and RSS figures is over 1 s samples in a "
                 "%.0f s window" % window)
    return {"yardstick": _ys_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("scale")}


# ================================================================ condor_submit

def submit(target: Target, ctx: Context) -> Result:
    upstream = target.name != "awq"
    ys = _ys(target, ctx)
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
            case_ys.append(time_command(["/bin/sh", "-c", "%s -c pass" % PYTHON], env, root))
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
    ctx.done_with(root)
    notes = ["a fresh spool for every call and no master running (its intake would compete "
             "for the CPUs); the description is AliEn's (executable, arguments, output, error, "
             "log, environment, periodic_remove)"]
    return {"yardstick": _ys_summary(ys), "figures": figures, "notes": notes,
            "command": _cmd("submit")}


SCENARIOS: Dict[str, Callable[[Target, Context], Result]] = {
    "latency": latency,
    "burst": burst,
    "condor_q": condor_q,
    "throughput": throughput,
    "scale": scale,
    "submit": submit,
}
