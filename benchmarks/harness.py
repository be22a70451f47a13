"""What every scenario shares: processes ended by their PID, the two targets, timing.

Every process is started in its own session (start_new_session=True) and
ended with killpg on that PID; nothing is ever looked up or killed by name.
Every wait is bounded. Everything listens on 127.0.0.1 and lives in one
temporary directory that is removed at the end.
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import testkit
from testkit import Processes, free_port, port_is_free

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The interpreter an install's commands and master run: CMake's AWQ_PYTHON, the one Work
# Queue was built for (Debian's /usr/bin/python3), outside any virtual environment. Our
# commands and master run on it here too, and the yardstick is its bare start: a venv's
# interpreter does more at start (its site-packages, the system's too) and, as the unit,
# would flatter every ratio.
PYTHON = "/usr/bin/python3"
YARDSTICK = (PYTHON, "-c", "pass")
YARDSTICK_TEXT = " ".join(YARDSTICK)
WQ_WORKER = shutil.which("work_queue_worker") or "work_queue_worker"
UPSTREAM_PORT = 9094  # upstream's master cannot listen anywhere else
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A scenario could not be measured; the message says why."""


# ---------------------------------------------------------------- small helpers

def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = 0.02) -> object:
    """testkit.wait_until, failing with BenchError; looks often, as some figures end with it."""
    return testkit.wait_until(predicate, timeout, interval, what, failure=BenchError)


def wait_for_count(count: Callable[[], int], total: int, what: str, stall: float = 120,
                   timeout: float = 3600, interval: float = 0.2) -> None:
    """Until count() >= total; fails when it has not grown for `stall` seconds."""
    deadline = time.monotonic() + timeout
    best, moved = -1, time.monotonic()
    while True:
        value = count()
        if value >= total:
            return
        now = time.monotonic()
        if value > best:
            best, moved = value, now
        if now - moved > stall:
            raise BenchError("stalled: %d of %d %s, none more in %.0f s" % (best, total, what,
                                                                           stall))
        if now > deadline:
            raise BenchError("timed out after %.0f s: %d of %d %s" % (timeout, best, total, what))
        time.sleep(interval)


def cpu_seconds(pid: int) -> float:
    """CPU a process has cost: its own utime + stime, its reaped children's (cutime +
    cstime) and its live children's (the master's front, a watcher), from /proc."""
    fields = _stat_fields(pid)
    total = sum(int(value) for value in fields[11:15])
    for child in _children_of(pid):
        try:
            child_fields = _stat_fields(child)
        except OSError:
            continue  # ended meanwhile: its CPU shows in cutime at its reaping
        total += int(child_fields[11]) + int(child_fields[12])
    return total / CLK_TCK


def _stat_fields(pid: int) -> List[str]:
    """/proc/PID/stat after the command name: [0] is the state, [1] the parent's PID."""
    with open("/proc/%d/stat" % pid) as handle:
        return handle.read().rsplit(")", 1)[1].split()


def _children_of(pid: int) -> List[int]:
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def read_stat(spool: str) -> Dict[str, int]:
    """upstream's stat/latest (both masters write it): WAITING, RUNNING, TIMESTAMP."""
    values = {}
    try:
        with open(os.path.join(spool, "stat", "latest")) as handle:
            for line in handle:
                key, sep, value = line.strip().partition("=")
                if sep and value.isdigit():
                    values[key] = int(value)
    except OSError:
        pass
    return values


def waiting_and_running(spool: str) -> int:
    """The jobs the master has taken and not finished, as its stat/latest counts them."""
    stat = read_stat(spool)
    return stat.get("WAITING", 0) + stat.get("RUNNING", 0)


def write_executable(path: str, text: str) -> str:
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o755)
    return path


def count_files(directory: str) -> int:
    try:
        return len(os.listdir(directory))
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------- statistics

def summarize(samples: Sequence[float]) -> Dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1, q3 = ordered[0], ordered[-1]
    return {"n": len(ordered), "median": statistics.median(ordered), "min": ordered[0],
            "max": ordered[-1], "q1": q1, "q3": q3}


def figure(name: str, samples: Sequence[float], unit: str, yardstick: Optional[float],
           target: Optional[str] = None, limit: Optional[float] = None,
           ratio_limit: Optional[float] = None, time_like: bool = True,
           note: str = "") -> Dict[str, object]:
    """One line of the report: median, spread, and the yardstick ratio (time / yardstick)."""
    fig: Dict[str, object] = {"name": name, "unit": unit}
    fig.update(summarize(samples))
    fig["samples"] = [round(s, 6) for s in samples]
    median = fig.get("median")
    seconds = {"s": 1.0, "ms": 1e-3}.get(unit)
    if time_like and yardstick and median is not None and seconds:
        fig["ratio"] = median * seconds / yardstick
    else:
        fig["ratio"] = None
    if target:
        fig["target"] = target
        met = None
        if median is not None and limit is not None:
            met = median <= limit
        if median is not None and ratio_limit is not None and fig["ratio"] is not None:
            met = fig["ratio"] <= ratio_limit
        fig["met"] = met
    if note:
        fig["note"] = note
    return fig


def unsupported(name: str, why: str) -> Dict[str, object]:
    return {"name": name, "unit": "", "n": 0, "unsupported": why, "ratio": None}


def run_bounded(argv: Sequence[str], env: Dict[str, str], cwd: str, timeout: float = 600,
                input: Optional[str] = None, capture: bool = False) -> subprocess.CompletedProcess:
    """Run a command to its end, killed (its own process group, by PID) after `timeout`.

    Not subprocess.run(timeout=...): with a timeout, Popen.wait polls with
    sleeps of up to 50 ms, which would quantize every figure to 50 ms steps.
    Here the wait is a blocking waitpid and a timer thread does the bounding.
    """
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if input is not None
                            else subprocess.DEVNULL, stdout=pipe, stderr=pipe, env=env, cwd=cwd,
                            text=True, start_new_session=True)
    expired = []

    def kill() -> None:
        expired.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        out, err = proc.communicate(input)
    finally:
        timer.cancel()
    if expired:
        raise BenchError("%s did not finish within %.0f s" % (" ".join(argv)[:200], timeout))
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def time_command(argv: Sequence[str], env: Dict[str, str], cwd: str,
                 timeout: float = 600) -> float:
    start = time.perf_counter()
    run_bounded(argv, env, cwd, timeout)
    return time.perf_counter() - start


def yardstick(env: Dict[str, str], cwd: str, runs: int) -> List[float]:
    """YARDSTICK's times: the unit every figure is scaled by."""
    time_command(YARDSTICK, env, cwd)  # warm the page cache
    return [time_command(YARDSTICK, env, cwd) for _ in range(runs)]


def machine() -> Dict[str, object]:
    mem_kb = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    wq = ""
    try:
        wq = subprocess.run([WQ_WORKER, "--version"], capture_output=True, text=True,
                            timeout=10).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "memory_gb": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "python_executable": PYTHON, "work_queue": wq,
            "loadavg_at_start": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# ---------------------------------------------------------------- targets

# As CMakeLists.txt starts them: the read-only queries without site's scan.
QUERY_TOOLS = ("condor_q", "condor_status", "condor_history")
QUERY_FLAGS = "-IS"
WRAPPER = open(os.path.join(REPO, "bin", "awq-command.in")).read() \
    if os.path.exists(os.path.join(REPO, "bin", "awq-command.in")) else None
TOOLS = ("condor_submit", "condor_q", "condor_rm", "condor_status")


class Target:
    """How to start a master and run the HTCondor-like commands of one implementation."""

    name = ""
    supports_queue_n = True          # `queue N` in one condor_submit
    supports: Dict[str, bool] = {}   # tool -> present

    def __init__(self, root: str):
        self.root = root
        self.bindir = os.path.join(root, "bin")
        os.makedirs(self.bindir, exist_ok=True)
        self.env = dict(os.environ, USER=getpass.getuser(), TMPDIR=root, LC_ALL="C")
        # As installed: byte-compiled modules (CMake runs compileall), not sources compiled
        # again by every command because the environment forbids writing __pycache__.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PATH"] = self.bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin")

    def spool_env(self, spool: str) -> Dict[str, str]:
        return dict(self.env, AWQ_WORKDIR=spool)

    def has(self, tool: str) -> bool:
        return os.access(os.path.join(self.bindir, tool), os.X_OK)

    def start_master(self, procs: Processes, spool: str, name: str = "master",
                     port: Optional[int] = None) -> "Master":
        """port: where workers connect; None lets the target pick (ours: a free one)."""
        raise NotImplementedError

    def descriptions(self, executable: str, output: str, count: int, env: str = "",
                     extra: str = "") -> List[str]:
        """Submit descriptions for `count` jobs (output may hold {i}, the job's index)."""
        raise NotImplementedError


class Master:
    def __init__(self, proc: subprocess.Popen, spool: str, port: int,
                 password: Optional[str]):
        self.proc = proc
        self.spool = spool
        self.port = port
        self.password = password

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_args(self) -> List[str]:
        return ["--password", self.password] if self.password else []


class Ours(Target):
    name = "awq"

    def __init__(self, root: str):
        super().__init__(root)
        self.env["PYTHONPATH"] = REPO + (":" + os.environ["PYTHONPATH"]
                                         if os.environ.get("PYTHONPATH") else "")
        modules = {"condor_submit": "awq.cli.condor_submit", "condor_q": "awq.cli.condor_q",
                   "condor_rm": "awq.cli.condor_rm", "condor_status": "awq.cli.condor_status"}
        subprocess.run([PYTHON, "-m", "compileall", "-q", os.path.join(REPO, "awq")],
                       check=True, stdout=subprocess.DEVNULL)
        for tool, module in modules.items():
            # The same wrapper an install makes (bin/awq-command.in): a fixed interpreter.
            text = WRAPPER or '#!/bin/bash\nexec "@AWQ_PYTHON@" -m @AWQ_MODULE@ "$@"\n'
            text = (text.replace("@AWQ_COMMAND@", tool).replace("@AWQ_PYTHONPATH@", REPO)
                    .replace("@AWQ_PYTHON@", PYTHON).replace("@AWQ_MODULE@", module)
                    .replace("@AWQ_FLAGS@", QUERY_FLAGS if tool in QUERY_TOOLS else "-I"))
            write_executable(os.path.join(self.bindir, tool), text)

    # How long a master may take to listen and to write its first heartbeat.
    PORT_WITHIN, HEARTBEAT_WITHIN = 60, 30

    def master_argv(self, spool: str, port: Optional[int], name: str) -> List[str]:
        # A restart passes the port the first master got: workers reconnect to it by themselves.
        return [PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", spool, "--port",
                str(port or 0)]

    def start_master(self, procs: Processes, spool: str, name: str = "master",
                     port: Optional[int] = None) -> Master:
        proc = procs.start(self.master_argv(spool, port, name), name,
                           env=self.spool_env(spool), cwd=REPO)

        def listening() -> Optional[int]:
            found = re.findall(r"listening for workers on port (\d+)", procs.log_of(proc))
            if found:
                return int(found[-1])
            if proc.poll() is not None:
                raise BenchError("the master exited early:\n" + procs.log_of(proc)[-2000:])
            return None
        number = int(wait_until(listening, self.PORT_WITHIN, "the master's port"))
        wait_until(lambda: read_stat(spool).get("TIMESTAMP"), self.HEARTBEAT_WITHIN,
                   "the master's heartbeat")
        return Master(proc, spool, number, os.path.join(spool, "password"))

    def descriptions(self, executable: str, output: str, count: int, env: str = "",
                     extra: str = "") -> List[str]:
        text = "executable = %s\noutput = %s\n" % (executable, output.replace("{i}", "$(Process)"))
        if env:
            text += "environment = %s\n" % env.replace("{i}", "$(Process)")
        return [text + extra + ("queue %d\n" % count if count != 1 else "queue\n")]


class Upstream(Target):
    """The C++ master and bash shims from github.com/dberzano/alien-workqueue, installed in DIR."""

    name = "upstream"
    supports_queue_n = False

    def __init__(self, root: str, prefix: str):
        super().__init__(root)
        self.prefix = os.path.abspath(prefix)
        for tool in TOOLS:
            path = os.path.join(self.prefix, "bin", tool)
            if os.access(path, os.X_OK):
                os.symlink(path, os.path.join(self.bindir, tool))

    def start_master(self, procs: Processes, spool: str, name: str = "master",
                     port: Optional[int] = None) -> Master:
        if port not in (None, UPSTREAM_PORT):
            raise BenchError("upstream's master listens on port %d only" % UPSTREAM_PORT)
        if not port_is_free(UPSTREAM_PORT):
            raise BenchError("port %d is taken: upstream's master listens nowhere else"
                             % UPSTREAM_PORT)
        os.makedirs(spool, exist_ok=True)
        argv = [os.path.join(self.prefix, "bin", "alien_work_queue"), "--work-dir", spool]
        proc = procs.start(argv, name, env=self.spool_env(spool))

        def listening() -> bool:
            if proc.poll() is not None:
                raise BenchError("upstream's master exited:\n" + procs.log_of(proc)[-2000:])
            return "listening on port" in procs.log_of(proc)
        wait_until(listening, 30, "upstream's master")
        wait_until(lambda: read_stat(spool).get("TIMESTAMP"), 60, "upstream's heartbeat")
        return Master(proc, spool, UPSTREAM_PORT, None)

    def descriptions(self, executable: str, output: str, count: int, env: str = "",
                     extra: str = "") -> List[str]:
        # One job per description (it reads executable, output, environment only), and
        # the spool file is named after the content's SHA-1: each must differ.
        result = []
        for index in range(count):
            text = "executable = %s\noutput = %s\n" % (executable, output.replace("{i}", str(index)))
            if env:
                text += "environment = %s\n" % env.replace("{i}", str(index))
            result.append(text + extra + "queue\n")
        return result


def make_target(kind: str, root: str, upstream_dir: Optional[str]) -> Target:
    if kind == "awq":
        return Ours(os.path.join(root, "awq-tools"))
    assert upstream_dir
    return Upstream(os.path.join(root, "upstream-tools"), upstream_dir)


# ---------------------------------------------------------------- clusters

class Cluster:
    """A master and its foremen and workers on loopback, all in one directory."""

    def __init__(self, target: Target, root: str):
        self.target = target
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.spool = os.path.join(root, "spool")
        self.procs = Processes(root, cwd=root)
        self.master: Optional[Master] = None
        self.foreman_ports: List[int] = []
        self.workers: List[subprocess.Popen] = []
        self.env = target.spool_env(self.spool)
        self.worker_root = worker_scratch(root)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start_master(self, port: Optional[int] = None, name: str = "master") -> Master:
        self.master = self.target.start_master(self.procs, self.spool, name, port)
        return self.master

    def kill_master(self) -> None:
        """kill -9 of the master's PID, as a crash or the OOM killer would do it.

        Then, still by that PID (its group cannot be reused while the killed leader is
        unreaped), whatever the master forked (its spool watcher), and the master is reaped
        and forgotten: nothing later signals a PID that may belong to someone else by then.
        """
        assert self.master
        proc = self.master.proc
        os.kill(proc.pid, signal.SIGKILL)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(30)
        self.procs.started.remove(proc)

    def _dir(self, name: str) -> str:
        path = os.path.join(self.worker_root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def start_foreman(self) -> int:
        assert self.master
        index = len(self.foreman_ports)
        port = free_port()
        name = "foreman%d" % index
        self.procs.start([WQ_WORKER, "--foreman", "--foreman-port", str(port), "--timeout", "300",
                          "--workdir", self._dir(name)] + self.master.worker_args()
                         + ["127.0.0.1", str(self.master.port)], name, own_session=False)
        self.foreman_ports.append(port)
        return port

    def start_worker(self, cores: int = 1, manager_port: Optional[int] = None) -> None:
        assert self.master
        name = "worker%d" % len(self.workers)
        proc = self.procs.start([WQ_WORKER, "--cores", str(cores), "--timeout", "300",
                                 "--workdir", self._dir(name)] + self.master.worker_args()
                                + ["127.0.0.1", str(manager_port or self.master.port)], name,
                                own_session=False)
        self.workers.append(proc)

    def submit(self, description: str, check: bool = True) -> subprocess.CompletedProcess:
        result = run_bounded(["condor_submit"], self.env, self.root, input=description,
                             capture=True)
        if check and result.returncode != 0:
            raise BenchError("condor_submit failed: %s" % result.stderr.strip()[-500:])
        return result

    def tool(self, argv: Sequence[str], timeout: float = 600) -> subprocess.CompletedProcess:
        return run_bounded(argv, self.env, self.root, timeout, capture=True)

    def stop(self) -> None:
        self.procs.stop_all()
        reap_strays(self.root)
        if self.worker_root != self.root:
            reap_strays(self.worker_root)
            shutil.rmtree(self.worker_root, ignore_errors=True)


WORKER_SCRATCH = "/dev/shm"


def worker_scratch(root: str) -> str:
    """Where the foremen and workers of a cluster keep their sandboxes.

    They stand in for other machines, so their disk should not be the master's: a worker
    creates and deletes a directory per task, and on an ext4 without a journal (this
    machine's) every file created in the next 60-300 s skips the inodes just freed, each
    skip a buffer lookup (measured: 30 us per file created fresh, 377 us after 10,000
    deletions), which the master would pay for each job's output file. tmpfs when present.
    """
    if os.path.isdir(WORKER_SCRATCH) and os.access(WORKER_SCRATCH, os.W_OK | os.X_OK):
        return tempfile.mkdtemp(prefix="awq-bench-workers-", dir=WORKER_SCRATCH)
    return root


def live_pilots(marker: str, value: str, cmdline: bytes) -> Dict[str, List[int]]:
    """Live processes whose command line is `cmdline` and whose environment has marker=value,
    by the value of their AWQ_BENCH_JOB: job id -> PIDs (each pilot is one process).

    Read from /proc (our own processes' environments), so it sees what really runs, whatever
    the master believes.
    """
    found: Dict[str, List[int]] = {}
    want = ("%s=%s" % (marker, value)).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                if handle.read() != cmdline:
                    continue
            with open("/proc/%s/environ" % entry, "rb") as handle:
                env = handle.read().split(b"\0")
        except OSError:
            continue
        if want not in env:
            continue
        for var in env:
            if var.startswith(b"AWQ_BENCH_JOB="):
                found.setdefault(var[len(b"AWQ_BENCH_JOB="):].decode(), []).append(int(entry))
    return found


def system_tasks() -> int:
    """Processes and threads on the whole machine (/proc/loadavg), which pid_max bounds."""
    with open("/proc/loadavg") as handle:
        return int(handle.read().split()[3].split("/")[1])


def mem_available_mb() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reap_strays(root: str) -> List[int]:
    """Kill, by PID, any process still working inside our directory (a task a worker left).

    Found by its current directory under `root`, which only what we started can be in.
    """
    killed = []
    prefix = os.path.realpath(root) + os.sep
    for _ in range(3):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cwd = os.readlink("/proc/%s/cwd" % entry)
            except OSError:
                continue
            if (cwd + os.sep).startswith(prefix):
                found.append(int(entry))
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.2)
    return killed
