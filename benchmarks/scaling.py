"""python -m benchmarks scaling: the master from 1,000 to 100,000 running pilots.

    python -m benchmarks scaling --fresh                 # the whole curve (about 55 minutes)
    python -m benchmarks scaling --points 1000 50000     # some points only
    python -m benchmarks scaling --quick                 # 1,000 and 2,000, a few minutes

Each point starts a master (benchmarks.timed_master: the master with its turns timed),
submits N `sleep` pilots and waits until the master shows them all running, then measures
while they run: the master's CPU share and RSS (its children, the front and the spool
watcher, counted with it), its turn time (busy time per turn, the waits left out),
condor_q (AliEn's and JAliEn's forms) beside `/usr/bin/python3 -c pass` timed in the same
point. Pilots are real (`work_queue_worker`s of 250 cores, one `sleep` process per pilot)
up to --real-up-to and what the machine's pid_max and memory hold; beyond, and at the
--validate points as well, they are held by benchmarks.standin_worker, one process posing
as N/250 workers. At stand-in points the stand-in also finishes pilots one at a time
(it stands for a foreman whose worker's pilot ended) and measures how long the master
takes to fill the slot again; at --kill-at the master is killed with kill -9 and started
again on the same spool and port while all pilots run.

Writes benchmarks/results/scaling.json and benchmarks/results/scaling.svg (the curve, drawn
by hand: no plotting library) and regenerates BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

from awq import periodic
from awq.shards import managers_for
from benchmarks import report
from benchmarks.harness import (CLK_TCK, PYTHON, REPO, YARDSTICK_TEXT, BenchError, Cluster,
                                Master, Ours, Processes, _children_of, cpu_seconds, figure,
                                machine, read_stat, rss_mb, run_bounded, summarize, time_command,
                                unsupported, wait_for_count, wait_until)
from benchmarks.scenarios import (Pilots, _pilots_that_fit, _queue_jobs, _submit_many,
                                  _wait_submitters, _workers_connected, _workers_now,
                                  _written_since)

POINTS = (1000, 10000, 25000, 50000, 100000)
QUICK_POINTS = (1000, 2000)
VALIDATE_AT = (10000, 25000)
REAL_UP_TO = 25000
KILL_AT = 50000
CORES_PER_WORKER = 250
SUBMIT_LIMIT = 10000        # jobs one condor_submit takes at once
# The master hands at most --max-tasks jobs to Work Queue (10,000 by default): the curve
# goes past it, so every point's master (the restarted one too) gets room for all.
MAX_TASKS = 200000
SUBMITTERS = 4              # condor_submit loops that share the descriptions of a point
# s of 1 s samples while the pilots run: the period of the master's slowest duty (the
# periodic expressions), so each window holds every duty alike.
WINDOW = periodic.INTERVAL
SETTLE = periodic.INTERVAL  # s from all running to the window: the slowest duty's period
VALIDATE_WINDOWS = 5        # windows at a --validate point: the median and spread of 5 means
QUICK_WINDOW = 5.0
REFILLS = 10                # pilots finished one at a time to time their refill
QUICK_REFILLS = 3
REFILL_WITHIN = 30.0        # s a single refill may take before the point fails
CONDOR_Q_REPEATS = 5
RECOVERY_LIMIT = 1800.0     # s the restarted master gets to run every pilot again
RECOVERY_GOAL = 60.0        # issue 23: all running again within 60 s of the kill
CPU_GOAL = 25.0             # % of a core while the pilots run, at 50,000
RSS_GOAL = 500.0            # MB at 50,000
REFILL_GOAL = 1.0           # s from a pilot's end to its slot taken again
VALIDATION_TOLERANCE = 0.20
SNAPSHOT_LAG = 60.0         # s: the master writes its snapshot at least every 10 s, busy or not
PROFILE_FROM = 50000        # points from this size get their turns profiled after the window
PROFILE_SECONDS = 10.0
PROFILE_LINES = 25
STANDIN_LOOK = 0.25         # s between looks at the stand-in's status.json
CONDOR_Q_FORMS = [
    ("AliEn: condor_q -constraint \"JobStatus==1 || JobStatus==2\" | wc -l",
     'condor_q -constraint "JobStatus==1 || JobStatus==2" | wc -l'),
    ("JAliEn: condor_q -const 'JobStatus < 3' -af JobStatus GridResource",
     "condor_q -const 'JobStatus < 3' -af JobStatus GridResource > /dev/null"),
]
RESULTS = os.path.join(REPO, "benchmarks", "results")


class TimedOurs(Ours):
    """Ours, with the master started through benchmarks.timed_master and --max-tasks."""

    # Restarting at 100,000 jobs the master reads a large snapshot before it listens.
    PORT_WITHIN, HEARTBEAT_WITHIN = 120, 60

    # Work Queue managers (--managers) of the point being measured: as a site sets them by
    # its --max-tasks (awq.shards.managers_for), not by this scenario's room for all.
    managers = 1

    def master_argv(self, spool: str, port: Optional[int], name: str) -> List[str]:
        return [PYTHON, "-m", "benchmarks.timed_master", "--turns-file", turns_file(spool, name),
                "--work-dir", spool, "--port", str(port or 0), "--max-tasks", str(MAX_TASKS),
                "--managers", str(self.managers)]

    def start_master(self, procs: Processes, spool: str, name: str = "master",
                     port: Optional[int] = None) -> Master:
        master = super().start_master(procs, spool, name, port)
        master.turns_file = turns_file(spool, name)  # type: ignore[attr-defined]
        return master


def turns_file(spool: str, name: str) -> str:
    return os.path.join(os.path.dirname(spool), "turns-%s.log" % name)


# ---------------------------------------------------------------- measuring

def pss_with_children(pid: int) -> float:
    """The master's and its children's proportional set size: pages they share since the
    fork counted once (RSS counts them in each)."""
    total = 0.0
    for one in [pid] + _children_of(pid):
        try:
            with open("/proc/%d/smaps_rollup" % one) as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) / 1024.0
                        break
        except OSError:
            pass
    return total


def rss_with_children(pid: int) -> float:
    """The master's RSS with its children's (the front, a spool watcher)."""
    total = rss_mb(pid)
    for child in _children_of(pid):
        try:
            total += rss_mb(child)
        except OSError:
            pass
    return total


def yardsticks(env: Dict[str, str], cwd: str, runs: int = 7) -> List[float]:
    time_command(["/bin/sh", "-c", YARDSTICK_TEXT], env, cwd)
    return [time_command(["/bin/sh", "-c", YARDSTICK_TEXT], env, cwd) for _ in range(runs)]


def turn_times(path: str, since: float, until: float) -> Tuple[List[float], List[float]]:
    """Busy and CPU seconds of the master's turns that ended in [since, until]
    (benchmarks.timed_master)."""
    inside = []
    try:
        with open(path) as handle:
            for line in handle:
                words = line.split()
                if len(words) == 4 and since <= float(words[0]) <= until:
                    inside.append([float(word) for word in words])
    except (OSError, ValueError):
        return [], []
    return [entry[1] for entry in inside], [entry[3] for entry in inside]


class StandIn:
    """The stand-in process of one point and its status.json."""

    def __init__(self, cluster: Cluster, workers: int, cores: int):
        assert cluster.master
        self.control = os.path.join(cluster.root, "standin")
        os.makedirs(self.control)
        self.cues = 0
        argv = [PYTHON, "-m", "benchmarks.standin_worker", "--workers", str(workers),
                "--cores", str(cores), "--control", self.control, "127.0.0.1",
                str(cluster.master.port)] + (["--password", cluster.master.password]
                                             if cluster.master.password else [])
        self.proc = cluster.procs.start(argv, "standin", env=cluster.env, cwd=REPO)

    def status(self) -> Dict[str, object]:
        try:
            with open(os.path.join(self.control, "status.json")) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def fresh_status(self) -> Dict[str, object]:
        """A status written after this call (the stand-in rewrites it every second)."""
        now = time.time()
        return wait_until(lambda: (lambda s: s if s.get("time", 0) > now else None)(
            self.status()), 10, "the stand-in's status")  # type: ignore[return-value]

    def cue(self, text: str) -> None:
        self.cues += 1
        path = os.path.join(self.control, "%06d" % self.cues)
        with open(path, "w") as handle:
            handle.write(text + "\n")
        os.rename(path, path + ".cue")


def _window(cluster: Cluster, seconds: float, extra_pids: Sequence[int],
            windows: int = 1) -> Dict[str, object]:
    """1 s samples while the pilots run: the master's CPU share and RSS, its turn times,
    and the CPU of whatever holds the pilots (real workers or the stand-in).

    `windows` windows of `seconds` back to back, each with its own mean: the master's
    steady CPU is a few per cent of a core made of duties due every 10 s (a snapshot, a
    sweep of every task) and every 60 s (the periodic expressions), so a window of a
    whole minute holds each duty as often as any other, and the windows' spread says how
    steady the mean is. Each window also says where the CPU went (the master process
    alone; its children, live or reaped: the front, the spool watcher, timers) and what
    the rest of the machine used meanwhile (all CPUs' busy time from /proc/stat, less
    the master's and the holders')."""
    master = cluster.master
    assert master
    shares, rss, pss, alone = [], [], [], []
    per_window: List[Dict[str, object]] = []
    start_t = time.monotonic()
    master_cpu0 = cpu_seconds(master.pid)
    extra0 = sum(_cpu_or_zero(pid) for pid in extra_pids)
    last_cpu, last_t = master_cpu0, start_t
    for _ in range(windows):
        w_load = list(os.getloadavg())
        w_t, w_cpu = time.monotonic(), cpu_seconds(master.pid)
        w_alone = own_cpu_seconds(master.pid)
        w_extra, w_box = sum(_cpu_or_zero(pid) for pid in extra_pids), box_busy_seconds()
        while time.monotonic() < w_t + seconds:
            time.sleep(1.0)
            cpu, now = cpu_seconds(master.pid), time.monotonic()
            shares.append(100.0 * (cpu - last_cpu) / (now - last_t))
            rss.append(rss_with_children(master.pid))
            pss.append(pss_with_children(master.pid))
            alone.append(rss_mb(master.pid))
            last_cpu, last_t = cpu, now
        elapsed = time.monotonic() - w_t
        cpu = cpu_seconds(master.pid) - w_cpu
        own = own_cpu_seconds(master.pid) - w_alone
        extra = sum(_cpu_or_zero(pid) for pid in extra_pids) - w_extra
        box = box_busy_seconds() - w_box

        def share(value: float) -> float:
            return 100.0 * value / elapsed
        per_window.append({"start": w_t, "seconds": elapsed, "cpu": share(cpu),
                           "master_alone": share(own), "children": share(cpu - own),
                           "holders": share(extra), "others": share(box - cpu - extra),
                           "loadavg": [w_load, list(os.getloadavg())]})
    elapsed = time.monotonic() - start_t
    extra = sum(_cpu_or_zero(pid) for pid in extra_pids) - extra0
    # The ring is written once a second: the window's last turns are in after one more.
    time.sleep(1.1)
    turns, turn_cpu = turn_times(master.turns_file, start_t,  # type: ignore[attr-defined]
                                 start_t + elapsed)
    return {"cpu_share": shares, "cpu_mean": statistics.median(w["cpu"] for w in per_window),
            "cpu_windows": [w["cpu"] for w in per_window], "windows": per_window,
            "rss": rss, "pss": pss, "rss_alone": alone,
            "turns_ms": [t * 1000.0 for t in turns],
            "turn_cpu_ms": [t * 1000.0 for t in turn_cpu],
            "holders_cpu_share": 100.0 * extra / elapsed,
            "loadavg": [per_window[0]["loadavg"][0], list(os.getloadavg())]}


def own_cpu_seconds(pid: int) -> float:
    """The process's own utime + stime, its children's left out."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def box_busy_seconds() -> float:
    """CPU seconds every CPU of the machine spent busy (all but idle and iowait), from
    /proc/stat: what the window's processes used plus everyone else's load."""
    with open("/proc/stat") as handle:
        words = handle.readline().split()
    ticks = [int(word) for word in words[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK


def _profile_turns(master: Master, seconds: float) -> List[str]:
    """The master's turns under cProfile for `seconds` (after the measured window): the
    functions with the most time of their own, as pstats prints them."""
    import io
    import pstats
    turns = master.turns_file  # type: ignore[attr-defined]
    trigger, result = turns + ".profile-on", turns + ".prof"
    open(trigger, "w").close()
    time.sleep(seconds)
    os.unlink(trigger)
    # The next turn writes it: a turn waits at most a second in Work Queue, unless busy.
    wait_until(lambda: os.path.exists(result), 60, "the master's profile")
    wait_until(lambda: os.path.getsize(result) > 0, 10, "the profile written")
    time.sleep(0.5)
    text = io.StringIO()
    stats = pstats.Stats(result, stream=text)
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    lines = [line.rstrip() for line in text.getvalue().splitlines() if line.strip()]
    return [line.replace(REPO + "/", "") for line in lines]


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def _time_condor_q(cluster: Cluster, label: str, repeats: int) -> Tuple[List[Dict], List[float]]:
    """Each form, interleaved with the yardstick, both through /bin/sh -c."""
    figures, ys_all = [], []
    for name, command in CONDOR_Q_FORMS:
        times, ys = [], []
        run_bounded(["/bin/sh", "-c", command], cluster.env, cluster.root)  # warm
        for _ in range(repeats):
            ys.append(time_command(["/bin/sh", "-c", YARDSTICK_TEXT], cluster.env, cluster.root))
            times.append(time_command(["/bin/sh", "-c", command], cluster.env, cluster.root))
        ys_all += ys
        fig = figure(label + name, times, "s", statistics.median(ys),
                     target="<= 3x python3 -c pass (issue 23)", ratio_limit=3.0)
        fig["command"] = command
        fig["yardstick_s"] = statistics.median(ys)
        figures.append(fig)
    return figures, ys_all


def _refills(cluster: Cluster, pilots: Pilots, standin: StandIn, count: int, y: float,
             label: str) -> Tuple[Dict[str, object], List[float]]:
    """Finish `count` pilots one at a time, each once the previous slot was refilled."""
    assert cluster.master
    extra = cluster.target.descriptions(pilots.script, pilots.out + "/r.$(Cluster).{i}", count,
                                        env=pilots.env())
    _wait_submitters(_submit_many(cluster, extra, 1, "refill"), 120)
    wait_until(lambda: read_stat(cluster.spool).get("WAITING", 0) >= count, 60,
               "the extra pilots to be taken (idle)")
    seen = len(standin.fresh_status().get("refills", []))
    times = []
    for _ in range(count):
        standin.cue("finish 1")
        status = wait_until(lambda: (lambda s: s if len(s.get("refills", [])) > seen else None)(
            standin.status()), REFILL_WITHIN, "a finished pilot's slot to be refilled",
            interval=STANDIN_LOOK)
        refills = status.get("refills", [])  # type: ignore[union-attr]
        times += refills[seen:]
        seen = len(refills)
    return figure(label + "a finished pilot's slot refilled (pilot ends -> its worker has "
                  "the next pilot; %d one at a time)" % count, times, "s", y,
                  target="< 1 s (issue 23)", limit=REFILL_GOAL), times


def _kill(cluster: Cluster, standin: StandIn, total: int, y: float,
          label: str) -> Tuple[List[Dict[str, object]], List[str]]:
    """kill -9 of the master with `total` pilots held, a new one at once on the same port."""
    assert cluster.master
    # The pilots finished just before (the refills) are in the snapshot first: a kill
    # before that write reruns them (their completion was not yet durable), which is the
    # design's promise but would take slots from the pilots counted here.
    finished = standin.fresh_status().get("finished_jobs", [])

    def finished_in_snapshot() -> bool:
        shown = _queue_jobs(cluster)
        return not any(shown.get(job, (4,))[0] in (1, 2) for job in finished)  # type: ignore
    wait_until(finished_in_snapshot, SNAPSHOT_LAG, "the snapshot to show the refilled "
               "slots' pilots finished", interval=1.0)
    # The active jobs: one that completed just before (a refilled slot's pilot) may leave
    # the queue for the history meanwhile, and is not lost.
    before = {job: state for job, state in _queue_jobs(cluster).items() if state[0] in (1, 2)}
    running_before = sum(1 for state in before.values() if state[0] == 2)
    held_before = standin.fresh_status()
    port = cluster.master.port
    wall, at = time.time(), time.monotonic()
    cluster.kill_master()
    restarted_at = time.monotonic()
    cluster.start_master(port=port, name="master-restarted")
    up = time.monotonic() - restarted_at
    seen: Dict[str, Optional[float]] = {"workers": None, "running": None, "held": None}
    workers = int(held_before.get("connected", 0))
    deadline = time.monotonic() + RECOVERY_LIMIT
    while time.monotonic() < deadline and None in seen.values():
        now = time.monotonic()
        status = standin.status()
        if seen["workers"] is None and _written_since(
                os.path.join(cluster.spool, "stat", "master.json"), wall) \
                and _workers_now(cluster.spool) >= workers:
            seen["workers"] = now
        if seen["running"] is None and _written_since(
                os.path.join(cluster.spool, "stat", "latest"), wall) \
                and read_stat(cluster.spool).get("RUNNING", 0) >= running_before:
            seen["running"] = now
        # Held again only counts once the workers came back: the stand-in's status may
        # still show the pilots the killed master's connections held.
        if seen["held"] is None and seen["workers"] is not None \
                and status.get("jobs_held", 0) >= running_before:
            seen["held"] = now
        time.sleep(STANDIN_LOOK)
    # condor_q reads the snapshot, written up to MAX_FLUSH_INTERVAL after stat/latest: look
    # until it shows every job running, for at most SNAPSHOT_LAG (then report what it shows).
    snapshot_deadline = time.monotonic() + SNAPSHOT_LAG
    while True:
        after = _queue_jobs(cluster)
        not_running = sorted(j for j, s in before.items()
                             if s[0] == 2 and after.get(j, (0,))[0] != 2)
        if not not_running or time.monotonic() > snapshot_deadline:
            break
        time.sleep(1.0)
    status = standin.fresh_status()
    lost = sorted(set(before) - set(after))
    duplicated = int(status.get("duplicates", 0)) - int(held_before.get("duplicates", 0))

    def since_kill(name: str, milestone: str) -> Dict[str, object]:
        reached = seen[milestone]
        if reached is None:
            return unsupported(label + name, "not within %.0f s" % RECOVERY_LIMIT)
        return figure(label + name, [reached - at], "s", y,
                      target="<= %.0f s (issue 23)" % RECOVERY_GOAL, limit=RECOVERY_GOAL)
    figures = [
        figure(label + "restart -> the new master listens", [up], "s", y),
        since_kill("kill -9 -> every stand-in worker connected again", "workers"),
        since_kill("kill -9 -> the master shows all %d running again (stat/latest)"
                   % running_before, "running"),
        since_kill("kill -9 -> the stand-in holds a pilot of every one of the %d jobs again"
                   % running_before, "held"),
        figure(label + "jobs lost across kill -9 + restart", [len(lost)], "jobs", None,
               target="0 (issue 23)", limit=0, time_like=False,
               note=" ".join(lost[:20])),
        figure(label + "jobs not running again after the restart", [len(not_running)], "jobs",
               None, target="0 (issue 23)", limit=0, time_like=False,
               note=" ".join(not_running[:20])),
        figure(label + "jobs duplicated (one job held by two tasks at once, stand-in's count)",
               [duplicated], "jobs", None, target="0 (issue 23)", limit=0, time_like=False,
               note=" ".join(str(j) for j in status.get("duplicated_jobs", []))),  # type: ignore
    ]
    notes = ["kill -9 at %d running: %d lost, %d duplicated, %d not running again; the "
             "stand-in's workers reconnect as work_queue_worker does (5 s after losing the "
             "manager, then 1 s, doubling while refused), so recovery includes those ~6 s"
             % (running_before, len(lost), duplicated, len(not_running))]
    return figures, notes


# ---------------------------------------------------------------- one point

def _descriptions(target: TimedOurs, pilots: Pilots, total: int) -> List[str]:
    """`total` pilots in `queue N` descriptions of at most SUBMIT_LIMIT jobs (condor_submit's
    limit), each its own cluster."""
    texts = []
    for first in range(0, total, SUBMIT_LIMIT):
        texts += target.descriptions(pilots.script, pilots.out + "/o.$(Cluster).{i}",
                                     min(SUBMIT_LIMIT, total - first), env=pilots.env())
    return texts


def _running_unless_failed(cluster: Cluster, submitters: List[subprocess.Popen]) -> int:
    for proc in submitters:
        if proc.poll() not in (None, 0):
            raise BenchError("a submitter failed:\n" + Processes.log_of(proc)[-1000:])
    return read_stat(cluster.spool).get("RUNNING", 0)


def measure_point(target: TimedOurs, tmp: str, total: int, kind: str, options: argparse.Namespace
                  ) -> Dict[str, object]:
    """One point of the curve: `total` pilots held by real workers or the stand-in."""
    label = "%d %s: " % (total, "real" if kind == "real" else "stand-in")
    target.managers = options.managers or managers_for(total)
    root = tempfile.mkdtemp(prefix="scaling-%s-%d-" % (kind, total), dir=tmp)
    ys = yardsticks(target.env, root)
    n_workers = math.ceil(total / CORES_PER_WORKER)
    point: Dict[str, object] = {"pilots": total, "kind": kind, "workers": n_workers,
                                "cores_per_worker": CORES_PER_WORKER,
                                "managers": options.managers or managers_for(total),
                                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                "loadavg_at_start": list(os.getloadavg())}
    figures: List[Dict[str, object]] = []
    notes: List[str] = []
    started = time.monotonic()
    with Cluster(target, root) as cluster:
        cluster.start_master()
        standin = None
        holders: List[int] = []
        if kind == "real":
            left = total
            while left > 0:
                cores = min(CORES_PER_WORKER, left)
                cluster.start_worker(cores)
                left -= cores
            holders = [proc.pid for proc in cluster.workers]
        else:
            # Cores for the pilots and no more: a refill needs every slot taken.
            standin = StandIn(cluster, n_workers, math.ceil(total / n_workers))
            holders = [standin.proc.pid]
        _workers_connected(cluster, n_workers, timeout=300)
        pilots = Pilots(root)
        master = cluster.master
        assert master
        cpu0, t0 = cpu_seconds(master.pid), time.monotonic()
        procs = _submit_many(cluster, _descriptions(target, pilots, total), SUBMITTERS,
                             "scaling")
        wait_for_count(lambda: _running_unless_failed(cluster, procs), total,
                       "pilots running", interval=0.2)
        ramp, ramp_cpu = time.monotonic() - t0, cpu_seconds(master.pid) - cpu0
        _wait_submitters(procs, 120)
        if kind == "real":
            wait_for_count(lambda: len(pilots.live()), total, "live pilot processes",
                           interval=1.0)
        else:
            assert standin
            wait_until(lambda: standin.status().get("held", 0) >= total, 120,
                       "the stand-in to hold every pilot", interval=STANDIN_LOOK)
        # The master says running once Work Queue sent the task; a real worker then forks
        # the pilot and reports it (`info tasks_running`), which the master reads too.
        live, live_cpu = time.monotonic() - t0, cpu_seconds(master.pid) - cpu0
        figures.append(figure(label + "condor_submit -> all running", [ramp], "s",
                              statistics.median(ys)))
        figures.append(figure(label + "master CPU per pilot started", [ramp_cpu * 1000 / total],
                              "ms", None, time_like=False))
        figures.append(figure(label + "master CPU per pilot, submission -> every pilot %s" % (
            "a live process" if kind == "real" else "held by the stand-in"),
            [live_cpu * 1000 / total], "ms", None, time_like=False))
        point.update(live_s=live, live_cpu_s=live_cpu, ramp_cpu_s=ramp_cpu)
        # The same phase for both kinds: a real point reaches here once the workers forked
        # every pilot, the stand-in at once, while the master's duties after the ramp (the
        # first snapshots, the periodic expressions) may still be due. From SETTLE after
        # all running, every duty has come due at least once since.
        time.sleep(max(0.0, t0 + ramp + SETTLE - time.monotonic()))
        since_all_running = time.monotonic() - (t0 + ramp)
        window = _window(cluster, options.window, holders, options.windows or (
            VALIDATE_WINDOWS if total in options.validate else 1))
        y = statistics.median(ys)
        at_goal = total >= KILL_AT
        figures.append(figure(label + "master CPU while the pilots run (with its front; 1 s "
                              "samples)", window["cpu_share"], "% of a core", None,
                              time_like=False, target="< 25 % of a core (issue 23)"
                              if at_goal else None, limit=CPU_GOAL))
        figures.append(figure(label + "master CPU over a window of %.0f s (its CPU seconds / "
                              "the window's; one figure a window)" % options.window,
                              window["cpu_windows"], "% of a core", None, time_like=False))
        figures.append(figure(label + "master RSS while the pilots run, its children's added "
                              "(the front, a spool watcher: forks, their shared pages counted "
                              "again)", window["rss"], "MB", None, time_like=False))
        figures.append(figure(label + "master PSS with its children (shared pages counted once)",
                              window["pss"], "MB", None, time_like=False,
                              target="< 500 MB (issue 23)" if at_goal else None, limit=RSS_GOAL))
        figures.append(figure(label + "master RSS, the master process alone", window["rss_alone"],
                              "MB", None, time_like=False))
        figures.append(figure(label + "master turn time (busy time per turn, waits left out)",
                              window["turns_ms"] or [0.0], "ms", y))
        figures.append(figure(label + "master CPU per turn (Work Queue's wait included)",
                              window["turn_cpu_ms"] or [0.0], "ms", y))
        figures.append(figure(label + "CPU of what holds the pilots (%s)" % (
            "the real workers" if kind == "real" else "the stand-in process"),
            [window["holders_cpu_share"]], "% of a core", None, time_like=False))
        q_figs, q_ys = _time_condor_q(cluster, label, options.condor_q_repeats)
        figures += q_figs
        ys += q_ys
        if total >= options.profile_from:
            point["profile"] = _profile_turns(master, PROFILE_SECONDS)
        if standin is not None and options.refills:
            refill_fig, _ = _refills(cluster, pilots, standin, options.refills, y, label)
            figures.append(refill_fig)
        if standin is not None and total in options.kill_at:
            kill_figs, kill_notes = _kill(cluster, standin, total, y, label)
            figures += kill_figs
            notes += kill_notes
        if standin is not None:
            point["standin"] = standin.fresh_status()
    ys += yardsticks(target.env, tmp)
    point.update(figures=figures, notes=notes, yardstick=ys, seconds=time.monotonic() - started,
                 cpu_share=window["cpu_share"], cpu_mean=window["cpu_mean"], rss=window["rss"],
                 pss=window["pss"], rss_alone=window["rss_alone"], turns_ms=window["turns_ms"],
                 turn_cpu_ms=window["turn_cpu_ms"],
                 condor_q=[fig["samples"] for fig in q_figs], ramp_s=ramp,
                 window_loadavg=window["loadavg"], window_after_ramp_s=since_all_running,
                 cpu_windows=window["cpu_windows"], windows=window["windows"],
                 ramp_ended=t0 + ramp)
    return point


# ---------------------------------------------------------------- the run

def plan(options: argparse.Namespace) -> Tuple[List[Tuple[int, str]], List[str]]:
    """(pilots, kind) for every point, and why a real point was made smaller or left out."""
    runs, notes = [], []
    for total in options.points:
        if total <= options.real_up_to:
            workers, cores, why = _pilots_that_fit((math.ceil(total / CORES_PER_WORKER),
                                                    CORES_PER_WORKER), {})
            if workers * cores >= total:
                runs.append((total, "real"))
            else:
                fit = workers * cores
                notes.append("%d real pilots do not fit (%s): %d real instead" % (total, why, fit))
                runs.append((fit, "real"))
        if total > options.real_up_to or total in options.validate:
            runs.append((total, "standin"))
    return runs, notes


def validation(instances: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """At each size measured both ways: the stand-in's figures over the real workers'.

    Each kind's figure is the median over its masters (one master a point, `--repeats`
    of them): one master's steady CPU holds steady from window to window, but masters
    of the same kind and size differ by a quarter and more. Most of it is Work Queue's
    task-table lookups (the every-task sweep), bound by memory latency: where the
    master's heap put 25,000 tasks and what else runs on the machine, not which worker
    holds them. A comparison of one master each would be a comparison of two draws."""
    rows = []
    by: Dict[Tuple[int, str], List[Dict[str, object]]] = {}
    for one in instances:
        if not one.get("error"):
            by.setdefault((one["pilots"], one["kind"]), []).append(one)  # type: ignore
    for (total, kind), reals in sorted(by.items()):
        standins = by.get((total, "standin"))
        if kind != "real" or not standins:
            continue
        row: Dict[str, object] = {"pilots": total, "masters": {"real": len(reals),
                                                                 "standin": len(standins)}}
        for key in ("cpu_mean", "pss", "rss_alone"):
            real_values = [_typical(p[key]) for p in reals if key in p]
            standin_values = [_typical(p[key]) for p in standins if key in p]
            if not real_values or not standin_values:
                continue
            r, s = statistics.median(real_values), statistics.median(standin_values)
            row[key] = {"real": r, "standin": s, "ratio": s / r if r else None,
                        "within": abs(s / r - 1) <= VALIDATION_TOLERANCE if r else None,
                        "real_masters": real_values, "standin_masters": standin_values}
        row["others"] = {"real": [w for p in reals for w in _others(p)],
                         "standin": [w for p in standins for w in _others(p)]}
        rows.append(row)
    return rows


def _instance(point: Dict[str, object]) -> Dict[str, object]:
    """What validation() needs of a point: its size, kind, date and steady figures."""
    keys = ("pilots", "kind", "date", "error", "cpu_mean", "cpu_windows", "windows", "pss",
            "rss_alone", "ramp_s", "ramp_cpu_s", "live_s", "live_cpu_s", "window_after_ramp_s")
    slim = {key: point[key] for key in keys if key in point}
    for key in ("pss", "rss_alone"):        # 1 s samples: their median is what is compared
        if isinstance(slim.get(key), list):
            slim[key] = statistics.median(slim[key])  # type: ignore[arg-type]
    return slim


def _merged_instances(path: str, instances: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """This run's masters for validation, and the previous run's at sizes not measured now."""
    try:
        with open(path) as handle:
            awq = json.load(handle)["runs"]["awq"]
        old = awq.get("validation_masters") or [_instance(p) for p in awq["points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return instances
    measured = {p["pilots"] for p in instances}
    both = {p.get("pilots") for p in old if p.get("kind") == "real"} & {
        p.get("pilots") for p in old if p.get("kind") == "standin"}
    return [p for p in old if p.get("pilots") in both - measured] + instances


def _others(point: Dict[str, object]) -> List[float]:
    """The rest of the machine's CPU (% of a core) in each of a point's windows."""
    return [w["others"] for w in point.get("windows", [])]  # type: ignore


def _typical(value: object) -> float:
    """A point's value: the median of its samples, or the one figure."""
    return statistics.median(value) if isinstance(value, list) else float(value)  # type: ignore


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scaling",
                                     description="The master from 1,000 to 100,000 running "
                                     "pilots: real workers, then the worker stand-in.")
    parser.add_argument("--points", nargs="+", type=int, help="pilots at each point (default: "
                        "%s)" % " ".join(map(str, POINTS)))
    parser.add_argument("--real-up-to", type=int, default=REAL_UP_TO,
                        help="largest point run with real workers (default %d)" % REAL_UP_TO)
    parser.add_argument("--validate", nargs="*", type=int, default=None,
                        help="points run both ways (default: %s)" % " ".join(map(str, VALIDATE_AT)))
    parser.add_argument("--kill-at", nargs="*", type=int, default=None,
                        help="stand-in points with a kill -9 of the master (default: %d)" % KILL_AT)
    parser.add_argument("--quick", action="store_true", help="1,000 and 2,000 pilots, short "
                        "windows: checks that the scenario works")
    parser.add_argument("--managers", type=int, default=0, metavar="K",
                        help="Work Queue managers of every point's master (default: as "
                             "--managers auto would for --max-tasks equal to the point)")
    parser.add_argument("--results-dir", default=RESULTS)
    parser.add_argument("--report", default=None, help="BENCHMARKS.md to regenerate")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile-from", type=int, default=PROFILE_FROM, metavar="N",
                        help="profile the master's turns (cProfile, %.0f s after the measured "
                             "window) at points of N pilots and more (default %d)"
                        % (PROFILE_SECONDS, PROFILE_FROM))
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help="seconds of 1 s samples while the pilots run (default %.0f; "
                             "%.0f with --quick)" % (WINDOW, QUICK_WINDOW))
    parser.add_argument("--windows", type=int, default=None, metavar="N",
                        help="windows measured back to back at each point, each with its "
                             "own mean CPU (default %d at --validate points, 1 elsewhere)"
                        % VALIDATE_WINDOWS)
    parser.add_argument("--repeats", type=int, default=1, metavar="R",
                        help="measure each --validate point R times, real and stand-in in "
                             "turn, each with a master of its own (default 1)")
    parser.add_argument("--fresh", action="store_true",
                        help="forget the points of earlier runs (by default a run replaces "
                             "the points it measures and keeps the others)")
    options = parser.parse_args(list(argv))
    quick = options.quick
    options.points = sorted(options.points or (QUICK_POINTS if quick else POINTS))
    options.validate = set(options.validate if options.validate is not None
                           else ((2000,) if quick else VALIDATE_AT))
    options.kill_at = set(options.kill_at if options.kill_at is not None
                          else ((2000,) if quick else (KILL_AT,)))
    if quick:
        options.real_up_to = min(options.real_up_to, 2000)
    options.window = options.window or (QUICK_WINDOW if quick else WINDOW)
    options.refills = QUICK_REFILLS if quick else REFILLS
    options.condor_q_repeats = 3 if quick else CONDOR_Q_REPEATS
    if options.repeats < 1:
        parser.error("--repeats must be at least 1")
    if any(n < 1 for n in options.points):
        parser.error("--points must be positive")
    return options


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    tmp = tempfile.mkdtemp(prefix="awq-scaling-")
    runs, notes = plan(options)
    doc: Dict[str, object] = {
        "scenario": "scaling", "quick": options.quick, "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m benchmarks scaling --fresh" + (" --quick" if options.quick else ""),
        "runs": {}}
    points: List[Dict[str, object]] = []
    again: List[Dict[str, object]] = []
    failures = 0
    started = time.monotonic()
    try:
        target = TimedOurs(os.path.join(tmp, "awq-tools"))
        # Every --validate point again, real and stand-in in turn: a master's steady CPU
        # differs from one master to the next (see validation()), so the comparison
        # needs several masters of each kind, not only longer windows of one.
        repeats = [(total, kind) for _ in range(options.repeats - 1) for total, kind in runs
                   if total in options.validate]
        for index, (total, kind) in enumerate(list(runs) + repeats):
            repeat = index >= len(runs)
            print("== scaling: %d pilots (%s)%s" % (total, kind, " again" if repeat else ""),
                  flush=True)
            try:
                point = measure_point(target, tmp, total, kind, options)
            except (BenchError, OSError, AssertionError, subprocess.TimeoutExpired) as err:
                failures += 1
                point = {"pilots": total, "kind": kind, "error": "%s: %s" % (
                    type(err).__name__, err)}
                print("   FAILED: %s" % point["error"], flush=True)
            for fig in point.get("figures", []):  # type: ignore[union-attr]
                print("   " + report.one_line(fig), flush=True)
            if repeat:
                again.append(_instance(point))
            else:
                points.append(point)
    finally:
        if options.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    instances = [_instance(p) for p in points if p["pilots"] in options.validate] + again
    if not options.fresh:
        previous = os.path.join(options.results_dir, "scaling.json")
        points = _merged(previous, points)
        instances = _merged_instances(previous, instances)
    figures = [fig for point in points for fig in point.get("figures", [])]  # type: ignore
    all_ys = [y for point in points for y in point.get("yardstick", [])]  # type: ignore
    run_notes = notes + [
        "every master here runs with --max-tasks %d: with the default (10,000) a master "
        "hands Work Queue at most 10,000 jobs and the rest wait idle, whatever the workers' "
        "cores" % MAX_TASKS,
        "the stand-in (benchmarks/standin_worker.py) speaks the installed worker's protocol "
        "(its greeting taken from the installed work_queue_worker, the password challenge, "
        "tasks, results, output files); at a refill it stands for a foreman: the master "
        "sees a foreman as one worker with many cores, so the time from a pilot's end to "
        "its slot's next pilot is the master's side of a refill through a foreman (the "
        "foreman's own hop to its worker is CCTools', not measured here)"]
    run_notes += [note for point in points for note in point.get("notes", [])]  # type: ignore
    run_notes += ["%d %s: failed: %s" % (p["pilots"], p["kind"], p["error"]) for p in points
                  if p.get("error")]
    doc["runs"] = {"awq": {"figures": figures, "points": points, "notes": run_notes,
                           "validation": validation(instances),
                           "validation_masters": instances,
                           "yardstick": report_yardstick(all_ys),
                           "seconds": round(time.monotonic() - started, 1)}}
    os.makedirs(options.results_dir, exist_ok=True)
    path = os.path.join(options.results_dir, "scaling.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(doc, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(path + ".tmp", path)
    svg = os.path.join(options.results_dir, "scaling.svg")
    with open(svg + ".tmp", "w") as handle:
        handle.write(report.scaling_svg(doc))
    os.replace(svg + ".tmp", svg)
    report_path = options.report or (os.path.join(REPO, "BENCHMARKS.md")
                                     if options.results_dir == RESULTS
                                     else os.path.join(options.results_dir, "BENCHMARKS.md"))
    report.write(options.results_dir, report_path)
    print("-> %s, %s, %s" % (path, svg, report_path), flush=True)
    return 1 if failures else 0


def _merged(path: str, points: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """This run's points, and the points of the previous results that it did not measure
    again (each point keeps its own date, load average and yardstick)."""
    try:
        with open(path) as handle:
            old = json.load(handle)["runs"]["awq"]["points"]
    except (OSError, ValueError, KeyError, TypeError):
        return points
    measured = {(p["pilots"], p["kind"]) for p in points}
    kept = [p for p in old if (p.get("pilots"), p.get("kind")) not in measured]
    return sorted(kept + points, key=lambda p: (p["pilots"], p["kind"] != "real"))


def report_yardstick(samples: List[float]) -> Dict[str, object]:
    result: Dict[str, object] = {"command": YARDSTICK_TEXT}
    result.update(summarize(samples))
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
