"""A single-node Slurm of our own, started and ended by a test or a benchmark.

`SlurmCluster` starts a private munged, slurmctld and slurmd from Debian's packages
(`munge slurmctld slurmd slurm-client`, installed by scripts/setup-deps.sh) with every
file under one temp directory and private ports on 127.0.0.1; it never reads or writes
a system Slurm's or munge's files, sockets or ports. Use it as a context manager:

    with SlurmCluster(cpus=8) as cluster:
        job_id = cluster.sbatch(["--output", out, "--wrap", "hostname"])
        cluster.wait_for_job_state(job_id, {"RUNNING", "COMPLETED"})
        subprocess.run(["squeue"], env=cluster.env)      # SLURM_CONF points at ours

The module imports pytest only for the optional `slurm_cluster` fixture, so benchmarks
can use the class without it. A test module gets the fixture with
`from slurm_cluster import slurm_cluster  # noqa: F401`, or one of its own size with
`slurm_big = slurm_fixture(cpus=64)`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Union

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # testkit, shared by the tests and the benchmarks, lives at the root

# pid_alive is testkit's, re-exported: tests import it from here too.
from testkit import free_port_block, pid_alive, wait_until  # noqa: E402,F401

PACKAGES = "munge slurmctld slurmd slurm-client"
# Where Debian puts them; looked up here rather than on PATH so a test's PATH (an
# installed prefix, a wrapper directory) cannot swap in something else.
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")

# Slurm's own timeout for one request between its daemons and commands; the bounds
# below are derived from it, so it is written into slurm.conf rather than left implicit.
MESSAGE_TIMEOUT = 10
# How long slurmd gives a cancelled job's processes after SIGTERM before SIGKILL; kept
# short so teardown and scancel-based tests do not wait Slurm's default 30 s.
KILL_WAIT = 3
# A daemon started with -f daemonizes and writes its PID file once it has read its
# configuration and opened its port: one local step, no network round trip.
DAEMON_START_TIMEOUT = MESSAGE_TIMEOUT
# slurmd registers with slurmctld as it starts; the node turns idle when slurmctld
# has answered that registration, which is one message (retried once on a timeout).
NODE_IDLE_TIMEOUT = 2 * MESSAGE_TIMEOUT + DAEMON_START_TIMEOUT
# Slurm's default batch_sched_delay: how long slurmctld may hold a submitted batch job
# before scheduling it. A job on an idle node starts within that plus the launch
# request to slurmd (one message).
BATCH_SCHED_DELAY = 3
JOB_START_TIMEOUT = BATCH_SCHED_DELAY + 2 * MESSAGE_TIMEOUT
# A cancelled job leaves squeue once its processes ended (SIGTERM, then SIGKILL after
# KillWait) and slurmd's epilog reply reached slurmctld (one message).
JOB_END_TIMEOUT = KILL_WAIT + 2 * MESSAGE_TIMEOUT
# A daemon that got SIGTERM saves its state and exits; slurmctld may first wait on one
# outstanding message.
DAEMON_STOP_TIMEOUT = MESSAGE_TIMEOUT
POLL_INTERVAL = 0.1
# Every process we start carries this variable (the cluster's directory as value); the
# final sweep ends only processes whose environment holds it with our value.
MARKER_VARIABLE = "AWQ_TEST_SLURM_CLUSTER"
# squeue's states of a job that still holds, or will hold, a node.
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                           "RESIZING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING",
                           "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"})


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be started here: a package is missing, or we are not root."""


class SlurmError(RuntimeError):
    """A daemon or a Slurm command failed; the message carries its output."""


class SlurmJob:
    """One line of squeue: a job of our cluster."""

    def __init__(self, job_id: str, name: str, state: str, reason: str, user: str):
        self.job_id = job_id
        self.name = name
        self.state = state
        self.reason = reason
        self.user = user

    def __repr__(self) -> str:
        return "SlurmJob(%s, %r, %s, %s)" % (self.job_id, self.name, self.state, self.reason)


# squeue's fields, separated by a character no field can hold (job names may hold '|').
SQUEUE_FIELDS = ("%i", "%j", "%T", "%r", "%u")
SQUEUE_SEPARATOR = "\x1f"


def free_ports(count: int) -> List[int]:
    """count distinct ports free on 127.0.0.1 now."""
    base = free_port_block(count)
    return list(range(base + 1, base + count + 1))


def port_listening(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def find_program(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        raise SlurmUnavailable("%s not found in %s: install Debian's %s (scripts/setup-deps.sh)"
                               % (name, SEARCH_PATH, PACKAGES))
    return path


def wait_for(predicate: Callable[[], object], timeout: float,
             what: Union[str, Callable[[], str]]) -> object:
    """testkit's wait_until at POLL_INTERVAL, failing as a SlurmError; what (or what() when
    it is a function, called on timeout so it can tell the last thing seen) names the wait."""
    return wait_until(predicate, timeout, interval=POLL_INTERVAL, what=what, failure=SlurmError)


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no %s)\n" % path


class SlurmCluster:
    """A private single-node Slurm: munged, slurmctld and slurmd on 127.0.0.1.

    cpus: what the node advertises (it may exceed the machine's: SlurmdParameters=
    config_overrides); memory_mb: the node's RealMemory, only checked against --mem at
    submission since CR_Core does not consume memory; partition: the default partition's
    name; keep: leave the directory (logs, state) behind after stop.
    """

    def __init__(self, cpus: int = 16, memory_mb: int = 1 << 20, partition: str = "awq",
                 keep: bool = False):
        if cpus < 1:
            raise ValueError("a node needs at least one CPU")
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.partition = partition
        self.keep = keep
        self.node_name = socket.gethostname().split(".")[0]
        self.directory = ""
        self.conf_path = ""
        self.munge_socket = ""
        self.ctld_port = 0
        self.slurmd_port = 0
        self.daemon_pids: Dict[str, int] = {}
        self._programs: Dict[str, str] = {}
        self._env: Dict[str, str] = {}

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> "SlurmCluster":
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        for name in DAEMONS + CLIENTS:
            self._programs[name] = find_program(name)
        if os.geteuid() != 0:
            # SlurmUser=root and munged's key checks need it; a test cluster run as an
            # ordinary user would need a second configuration nobody exercises.
            raise SlurmUnavailable("a private Slurm needs root (its daemons run as SlurmUser=root)")
        # /tmp keeps the munge socket's path under the 108 bytes a Unix socket allows.
        self.directory = tempfile.mkdtemp(prefix="awq-slurm-", dir="/tmp")
        # The daemons fork away from us: a benchmark that exits without stop() must not
        # leave them running.
        atexit.register(self.stop)
        try:
            self._prepare()
            self._start_munged()
            self._start_daemon("slurmctld", [self._programs["slurmctld"], "-f", self.conf_path],
                               self._path("state", "slurmctld.pid"),
                               self._path("log", "slurmctld.log"))
            self._start_daemon("slurmd", [self._programs["slurmd"], "-f", self.conf_path],
                               self._path("state", "slurmd.pid"),
                               self._path("log", "slurmd.log"))
            wait_for(self._node_idle, NODE_IDLE_TIMEOUT,
                     "node %s to turn idle (slurmd's registration with slurmctld)"
                     % self.node_name)
        except BaseException as error:
            logs = self.log_tails()
            self.stop()
            if isinstance(error, (SlurmError, SlurmUnavailable)):
                raise SlurmError("%s\n%s" % (error, logs)) from None
            raise
        return self

    def stop(self) -> None:
        """Cancel our jobs, end every daemon by its PID (TERM, then KILL), remove the files."""
        if not self.directory:
            return
        atexit.unregister(self.stop)
        failures = []
        if self.daemon_pids.get("slurmctld") and pid_alive(self.daemon_pids["slurmctld"]):
            try:
                self._cancel_everything()
            except (SlurmError, subprocess.TimeoutExpired) as error:
                failures.append("cancelling our jobs: %s" % error)
        # Each process is ended even when one before it could not be.
        for name in reversed(DAEMONS):
            pid = self.daemon_pids.get(name)
            if pid:
                try:
                    _end_process(pid)
                except SlurmError as error:
                    failures.append("%s: %s" % (name, error))
        try:
            self._sweep_marked_processes()
        except SlurmError as error:
            failures.append("a job's process: %s" % error)
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = ""
        if failures:
            raise SlurmError("stopping the private Slurm: " + "; ".join(failures))

    # -- for tests and benchmarks ----------------------------------------------

    @property
    def env(self) -> Dict[str, str]:
        """The environment for sbatch, squeue, scancel, sinfo (and work_queue_factory -T slurm)."""
        return dict(self._env)

    @property
    def ports(self) -> List[int]:
        return [self.ctld_port, self.slurmd_port]

    def run(self, argv: Sequence[str], check: bool = True,
            timeout: float = 2 * MESSAGE_TIMEOUT) -> subprocess.CompletedProcess:
        """Run a Slurm command (argv[0] a name like "squeue") against this cluster."""
        program = self._programs.get(argv[0]) or find_program(argv[0])
        result = subprocess.run([program] + list(argv[1:]), env=self._env, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise SlurmError("%s exited %d: %s" % (" ".join(argv), result.returncode,
                                                    result.stderr.strip() or result.stdout.strip()))
        return result

    def sbatch(self, arguments: Sequence[str]) -> str:
        """Submit with sbatch (arguments as on its command line); the job id."""
        output = self.run(["sbatch", "--parsable"] + list(arguments)).stdout.strip()
        return output.split(";")[0]

    def jobs(self, all_states: bool = False) -> List[SlurmJob]:
        """Our jobs as squeue lists them: those still active, or with all_states every job
        slurmctld still remembers (finished ones for MinJobAge)."""
        argv = ["squeue", "--noheader", "--format", SQUEUE_SEPARATOR.join(SQUEUE_FIELDS)]
        if all_states:
            argv.append("--states=all")
        found = []
        for line in self.run(argv).stdout.splitlines():
            fields = line.split(SQUEUE_SEPARATOR)
            if len(fields) == len(SQUEUE_FIELDS):
                found.append(SlurmJob(*fields))
        return found

    def job_state(self, job_id: str) -> Optional[str]:
        """The job's state per squeue, or None once slurmctld no longer knows it."""
        for job in self.jobs(all_states=True):
            if job.job_id == job_id:
                return job.state
        return None

    def wait_for_job_state(self, job_id: str, states: Iterable[str],
                           timeout: float = JOB_END_TIMEOUT) -> Optional[str]:
        """Wait until the job is in one of states (None among them: gone); the state seen."""
        wanted: Set[Optional[str]] = set(states)
        seen: List[Optional[str]] = []

        def reached() -> bool:
            state = self.job_state(job_id)
            seen[:] = [state]
            return state in wanted

        wait_for(reached, timeout, lambda: "job %s to be %s (last seen: %s)"
                  % (job_id, " or ".join(sorted(str(state) for state in wanted)), seen[0]))
        return seen[0]

    def wait_for_no_active_jobs(self, timeout: float = JOB_END_TIMEOUT) -> None:
        wait_for(lambda: not self.jobs(), timeout, "every job to leave squeue")

    def scancel(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if ids:
            self.run(["scancel"] + ids)

    def node_state(self) -> str:
        return self.run(["sinfo", "--noheader", "--nodes", self.node_name,
                         "--format", "%T"]).stdout.strip()

    def log_tails(self) -> str:
        """The end of every daemon's log, for a failure message."""
        if not self.directory:
            return ""
        return "".join("--- %s ---\n%s" % (name, _tail(self._path("log", name + ".log")))
                       for name in DAEMONS)

    # -- set-up -------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    def _prepare(self) -> None:
        # munged wants every directory above its socket searchable by all; 0711 lets
        # others reach the socket without listing what is beside it.
        os.chmod(self.directory, 0o711)
        os.mkdir(self._path("munge"), 0o711)
        for private in ("etc", "state", "state/ctld", "spool", "spool/slurmd", "log"):
            os.mkdir(self._path(private), 0o700)
        self.munge_socket = self._path("munge", "munge.socket")
        self.ctld_port, self.slurmd_port = free_ports(2)
        self.conf_path = self._path("etc", "slurm.conf")
        _write_private(self.conf_path, self._slurm_conf())
        self._env = {key: value for key, value in os.environ.items()
                     if not key.startswith(("SLURM_", "SBATCH_", "SQUEUE_", "SALLOC_", "SRUN_"))}
        self._env["SLURM_CONF"] = self.conf_path
        self._env[MARKER_VARIABLE] = self.directory

    def _slurm_conf(self) -> str:
        lines = [
            "ClusterName=awqtest",
            "SlurmctldHost=%s(127.0.0.1)" % self.node_name,
            "SlurmctldPort=%d" % self.ctld_port,
            "SlurmdPort=%d" % self.slurmd_port,
            # Bind to the node's address (127.0.0.1), not to every interface.
            "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "AuthInfo=socket=%s" % self.munge_socket,
            "StateSaveLocation=%s" % self._path("state", "ctld"),
            "SlurmdSpoolDir=%s" % self._path("spool", "slurmd"),
            "SlurmctldPidFile=%s" % self._path("state", "slurmctld.pid"),
            "SlurmdPidFile=%s" % self._path("state", "slurmd.pid"),
            "SlurmctldLogFile=%s" % self._path("log", "slurmctld.log"),
            "SlurmdLogFile=%s" % self._path("log", "slurmd.log"),
            # Slurm's default, /bin/mail, is not installed and no test wants mail.
            "MailProg=/bin/true",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # No cgroups in a container: track processes by their parent links.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "MessageTimeout=%d" % MESSAGE_TIMEOUT,
            "KillWait=%d" % KILL_WAIT,
            # A node that was down comes back as soon as its slurmd registers.
            "ReturnToService=2",
            # The node may advertise more CPUs than the machine has (sleeping pilots).
            "SlurmdParameters=config_overrides",
            "NodeName=%s NodeAddr=127.0.0.1 CPUs=%d RealMemory=%d State=UNKNOWN"
            % (self.node_name, self.cpus, self.memory_mb),
            "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP"
            % (self.partition, self.node_name),
        ]
        return "\n".join(lines) + "\n"

    def _start_munged(self) -> None:
        # Our own random key, root-owned 0600 as munged demands: Debian's key is owned by
        # the munge user (munged as root refuses it) and is the system munge's secret.
        key_path = self._path("etc", "munge.key")
        _write_private(key_path, os.urandom(1024))
        self._start_daemon("munged", [self._programs["munged"],
                                      "--socket=%s" % self.munge_socket,
                                      "--key-file=%s" % key_path,
                                      "--pid-file=%s" % self._path("state", "munged.pid"),
                                      "--log-file=%s" % self._path("log", "munged.log"),
                                      "--seed-file=%s" % self._path("state", "munged.seed")],
                           self._path("state", "munged.pid"), self._path("log", "munged.log"))
        wait_for(lambda: os.path.exists(self.munge_socket), DAEMON_START_TIMEOUT,
                  "munged's socket %s" % self.munge_socket)

    def _start_daemon(self, name: str, argv: List[str], pid_file: str, log_file: str) -> None:
        """Run a daemon that forks itself away; its PID from the PID file it writes."""
        result = subprocess.run(argv, env=self._env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=DAEMON_START_TIMEOUT)
        if result.returncode != 0:
            raise SlurmError("%s exited %d: %s" % (name, result.returncode,
                                                    (result.stderr or result.stdout).strip()))
        pid = wait_for(lambda: _read_pid(pid_file), DAEMON_START_TIMEOUT,
                        "%s's PID file %s" % (name, pid_file))
        self.daemon_pids[name] = int(pid)  # type: ignore[arg-type]
        if not pid_alive(self.daemon_pids[name]):
            raise SlurmError("%s exited after starting; see %s" % (name, log_file))

    def _node_idle(self) -> bool:
        for name in ("slurmctld", "slurmd"):
            if not pid_alive(self.daemon_pids[name]):
                raise SlurmError("%s exited while the node was coming up" % name)
        result = self.run(["sinfo", "--noheader", "--nodes", self.node_name, "--format", "%T"],
                          check=False)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    # -- teardown -----------------------------------------------------------------

    def _cancel_everything(self) -> None:
        # Every job on this private cluster is ours.
        active = [job.job_id for job in self.jobs()]
        if active:
            self.scancel(active)
            self.wait_for_no_active_jobs()

    def _sweep_marked_processes(self) -> None:
        """End what the daemons left (a job's slurmstepd, a job's children): only processes
        whose environment carries our marker with this cluster's directory."""
        marker = ("%s=%s" % (MARKER_VARIABLE, self.directory)).encode()
        for pid in _marked_pids(marker):
            _end_process(pid)


def _marked_pids(marker: bytes) -> Iterator[int]:
    own = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                variables = handle.read().split(b"\0")
        except OSError:
            continue
        if marker in variables:
            yield int(entry)


def _end_process(pid: int) -> None:
    """SIGTERM, a bounded wait, then SIGKILL: one process, by its PID."""
    for sig, timeout in ((signal.SIGTERM, DAEMON_STOP_TIMEOUT), (signal.SIGKILL, DAEMON_STOP_TIMEOUT)):
        if not pid_alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL / 2)
    if pid_alive(pid):
        raise SlurmError("process %d survived SIGKILL for %d s" % (pid, DAEMON_STOP_TIMEOUT))


def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _write_private(path: str, content: object) -> None:
    """Write a file only its owner can read, atomically (temp file, fsync, rename)."""
    data = content if isinstance(content, bytes) else str(content).encode()
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.rename(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


try:
    import pytest
except ImportError:  # a benchmark run without pytest still gets the class
    pytest = None  # type: ignore[assignment]


def slurm_fixture(scope: str = "module", **options: object) -> Callable[..., Iterator[SlurmCluster]]:
    """A pytest fixture yielding a SlurmCluster(**options), one per scope (starting one
    takes seconds): `slurm_big = slurm_fixture(cpus=64)` at a test module's top level."""
    if pytest is None:
        raise SlurmUnavailable("slurm_fixture needs pytest")

    @pytest.fixture(scope=scope)
    def fixture() -> Iterator[SlurmCluster]:
        with SlurmCluster(**options) as cluster:  # type: ignore[arg-type]
            yield cluster
    return fixture


if pytest is not None:
    slurm_cluster = slurm_fixture()
