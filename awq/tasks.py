"""How a job becomes a Work Queue task: a pure function of the job ad.

Kept apart from awq/workqueue.py so the translation is testable without
Work Queue, and so the master only decides *when*, never *how*.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import shlex
from typing import Dict, List, Mapping, NamedTuple, Optional, Protocol, Set, Tuple

from awq import classad, jobs
from awq.jobs import Job

STDOUT_NAME = "awq.stdout"
STDERR_NAME = "awq.stderr"
STDIN_NAME = "awq.stdin"
WRAPPER_NAME = "awq_job_wrapper.sh"
PROXY_NAME = "awq.x509up"
_RESERVED = {STDOUT_NAME, STDERR_NAME, STDIN_NAME, WRAPPER_NAME, PROXY_NAME}
# Work Queue gives a task that names only cores a share of memory and disk
# that a foreman does not advertise, so it sends each foreman one task at a
# time and the foreman's other workers wait. A nominal request lets cores
# alone decide, as upstream's "1 core per pilot" meant.
NOMINAL_MB = 1
KB_PER_MB = 1024             # HTCondor's RequestDisk is in KB, Work Queue's disk in MB
SANDBOX_NAMES_CACHED = 1024  # a queue runs a few pilot scripts: their names are made once


@dataclasses.dataclass
class TaskSpec:
    """Everything Work Queue needs to run one job."""

    command: str
    tag: str
    inputs: List[Tuple[str, str]] = dataclasses.field(default_factory=list)   # (local, sandbox name)
    # Inputs that are the same file for many jobs (sandbox names): worth caching on workers.
    shareable: List[str] = dataclasses.field(default_factory=list)
    cached_inputs: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    outputs: List[Tuple[str, str]] = dataclasses.field(default_factory=list)  # (local, sandbox name)
    environment: Dict[str, str] = dataclasses.field(default_factory=dict)
    cores: int = 1
    memory_mb: int = NOMINAL_MB
    disk_mb: int = NOMINAL_MB


class TaskResult(NamedTuple):
    """A finished task, reduced to what the job table needs."""

    task_id: int
    succeeded: bool
    exit_code: Optional[int]
    failure: str       # why Work Queue could not run it; empty when it succeeded
    host: Optional[str] = None   # the worker that ran it, by its host name
    # The signal that ended the task, when the backend can tell one from an exit status.
    # CCTools' worker cannot: it reports WTERMSIG in place of the exit status
    # (work_queue_worker.c, handle_completed_tasks), so workqueue.Backend leaves it None.
    exit_signal: Optional[int] = None
    # The worker's address:port: another than where its start was counted means Work Queue
    # ran the task again after that worker went away (task_watch.TaskWatch.started_on).
    address: Optional[str] = None


class TaskBackend(Protocol):
    """What the master needs of Work Queue (awq.workqueue.Backend; tests may fake it)."""

    port: int
    manager_count: int   # Work Queue managers behind it (awq/shards.py)

    def submit(self, spec: TaskSpec) -> int: ...

    def cancel(self, task_id: int) -> None: ...

    def task_state(self, task_id: int) -> "TaskState": ...

    def task_host(self, task_id: int) -> Optional[str]: ...

    def task_address(self, task_id: int) -> Optional[str]: ...

    def wait(self, timeout: int) -> Optional[TaskResult]: ...

    def empty(self) -> bool: ...

    def stranded_tasks(self) -> List[int]: ...

    def stats(self) -> Dict[str, int]: ...

    def forget_cached(self, local: str) -> None: ...

    def tell_jobs_held_back(self, count: int) -> None: ...

    def enable_wake_on_child_exit(self) -> bool: ...

    def reap_children(self) -> List[int]: ...


class TaskState(enum.Enum):
    """Where a task is, in the master's terms (Work Queue has finer states)."""

    WAITING = "waiting"      # queued at the manager, on no worker
    ON_WORKER = "on worker"  # running, or finished and not yet collected
    FINISHED = "finished"    # collected: wait() returns it, or has
    UNKNOWN = "unknown"      # cancelled, or never submitted


@functools.lru_cache(maxsize=SANDBOX_NAMES_CACHED)   # a pilot script's path recurs with every job
def sandbox_name(path: str) -> str:
    """The executable's name inside the sandbox: its own name, made shell-safe."""
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", path.rstrip("/").rsplit("/", 1)[-1])
    if not base or base.startswith(".") or base in _RESERVED:
        base = "job_" + base.lstrip(".")
    return base


def task_spec(job: Job, wrapper: Optional[str] = None, now: Optional[float] = None) -> TaskSpec:
    spec = TaskSpec("", jobs.format_job_id(jobs.job_id(job)))
    prelude: List[str] = []
    if job.get("TransferExecutable", True) is False:
        program = shlex.quote(str(job["Cmd"]))
    else:
        name = sandbox_name(str(job["Cmd"]))
        spec.inputs.append((str(job["Cmd"]), name))
        spec.shareable.append(name)
        # HTCondor makes the transferred executable executable; so do we.
        prelude.append(_make_executable("./" + shlex.quote(name)))
        program = "./" + shlex.quote(name)
    argv = [program] + [shlex.quote(a) for a in jobs.argv_of(job)]
    if wrapper:
        spec.inputs.append((wrapper, WRAPPER_NAME))
        spec.shareable.append(WRAPPER_NAME)
        prelude.append(_make_executable("./" + WRAPPER_NAME))
        argv.insert(0, "./" + WRAPPER_NAME)
    spec.environment = dict(jobs.environment_of(job))
    proxy = job.get("X509UserProxy")
    if proxy:
        spec.inputs.append((str(proxy), PROXY_NAME))
        prelude.append('X509_USER_PROXY="$PWD/%s"; export X509_USER_PROXY' % PROXY_NAME)
    _transfer_inputs(job, spec)
    redirections = _redirections(job, spec)
    # exec: the pilot's exit status and signals reach the worker as its own.
    spec.command = "; ".join([_LEAD_OWN_GROUP] + prelude
                             + ["exec $%s " % _SETSID + " ".join(argv) + redirections])
    _apply_requests(job, spec, now)
    return spec


# Work Queue cancels a task by killing its process group, then waits for it. CCTools 8's
# worker sets the task's group from the parent after fork, and often loses that race to
# the child's exec under load: the task stays in the worker's group, the kill reaches
# nothing and the worker blocks until the pilot ends by itself.
# So a shell that does not lead its own group execs the pilot through setsid, which does
# not fork then (same PID, new group). `kill -0 -$$` asks "does group $$ exist?" with a
# builtin: the common case costs no extra process and no read of /proc.
_SETSID = "_awq_setsid"
_LEAD_OWN_GROUP = ("%s=; kill -0 -$$ 2>/dev/null || ! command -v setsid >/dev/null || %s=setsid"
                   % (_SETSID, _SETSID))


def _make_executable(path: str) -> str:
    """A test builtin first: a chmod is a process, and most executables need none."""
    return "[ -x %s ] || chmod u+x %s" % (path, path)


def _transfer_inputs(job: Job, spec: TaskSpec) -> None:
    """transfer_input_files: each file or directory lands in the sandbox under its own name."""
    listed = job.get("TransferInput")
    if not isinstance(listed, str):
        return
    for path in (p.strip() for p in listed.split(",")):
        if path:
            spec.inputs.append((path, path.rstrip("/").rsplit("/", 1)[-1]))


def _redirections(job: Job, spec: TaskSpec) -> str:
    text = ""
    if job.get("In"):
        spec.inputs.append((str(job["In"]), STDIN_NAME))
        text += " < " + STDIN_NAME
    out, err = job.get("Out"), job.get("Err")
    if out and out != "/dev/null":
        spec.outputs.append((str(out), STDOUT_NAME))
        text += " > " + STDOUT_NAME
    else:
        text += " > /dev/null"
    if err and err != "/dev/null":
        if err == out:
            return text + " 2>&1"
        spec.outputs.append((str(err), STDERR_NAME))
        return text + " 2> " + STDERR_NAME
    if err == "/dev/null":
        return text + " 2> /dev/null"
    # No error file: stderr goes with stdout, as upstream did.
    return text + " 2>&1"


REQUEST_ATTRIBUTES = ("RequestCpus", "RequestMemory", "RequestDisk")


def requested_resources(job: Job, now: Optional[float] = None) -> Tuple[int, int, int]:
    """(cores, memory MB, disk MB) the job's task asks Work Queue for."""
    # Most jobs name only RequestCpus: the others are found missing once, in any case.
    named = None if all(name in job for name in REQUEST_ATTRIBUTES) \
        else {name.lower() for name in job}
    cores = _positive_number(job, "RequestCpus", now, named)
    memory = _positive_number(job, "RequestMemory", now, named)          # MB
    disk = _positive_number(job, "RequestDisk", now, named)              # KB in HTCondor
    return (max(1, int(cores)) if cores is not None else 1,
            int(memory) if memory is not None else NOMINAL_MB,
            max(1, int(disk) // KB_PER_MB) if disk is not None else NOMINAL_MB)


def unfit_reason(job: Job, largest: Mapping[str, int]) -> Optional[str]:
    """Why no connected worker can ever take this job, or None if one can (or we cannot tell).

    largest: Work Queue's counters for its largest connected worker (max_cores,
    max_memory and max_disk, in MB), as the backend's stats() gives them.
    """
    try:
        cores, memory_mb, disk_mb = requested_resources(job)
    except Exception:
        return None  # the dispatcher holds such a job with its own reason
    wants = (("cores", cores, largest.get("max_cores", 0), ""),
             ("memory", memory_mb, largest.get("max_memory", 0), " MB"),
             ("disk", disk_mb, largest.get("max_disk", 0), " MB"))
    for what, asked, has, unit in wants:
        if has > 0 and asked > has:
            return "no connected worker has %d%s of %s (the largest has %d%s)" % (
                asked, unit, what, has, unit)
    return None


def _apply_requests(job: Job, spec: TaskSpec, now: Optional[float]) -> None:
    spec.cores, spec.memory_mb, spec.disk_mb = requested_resources(job, now)


def _positive_number(job: Mapping, name: str, now: Optional[float],
                     named: Optional[Set[str]]) -> Optional[float]:
    """named: the job's attribute names in lower case (None: they include name)."""
    value = job.get(name)
    if value is None and named is not None and name.lower() not in named:
        return None
    if type(value) not in (int, float):   # an expression, or the name in another case
        value = classad.evaluate_attr(job, name, now)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)
