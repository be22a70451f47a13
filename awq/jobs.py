"""The job model: a job is a dict of HTCondor attribute names to values.

Values are plain Python (int, float, str, bool) or ``awq.classad.Expr`` for an
expression kept unevaluated (e.g. ``PeriodicRemove``).  This module holds the
names shared by every part of the system, nothing else.
"""

from typing import Any, Dict, Tuple

Job = Dict[str, Any]
JobId = Tuple[int, int]

IDLE = 1
RUNNING = 2
REMOVED = 3
COMPLETED = 4
HELD = 5
TRANSFERRING_OUTPUT = 6
SUSPENDED = 7

STATUS_NAMES = {
    IDLE: "Idle",
    RUNNING: "Running",
    REMOVED: "Removed",
    COMPLETED: "Completed",
    HELD: "Held",
    TRANSFERRING_OUTPUT: "Transferring Output",
    SUSPENDED: "Suspended",
}

# States a job leaves the queue from (it then lives only in history).
FINAL_STATES = (REMOVED, COMPLETED)


def job_id(job: Job) -> JobId:
    return (int(job["ClusterId"]), int(job["ProcId"]))


def format_job_id(jid: JobId) -> str:
    return "%d.%d" % jid


# ---------------------------------------------------------------- validation
#
# A record in the spool is input like any other: the master checks it before
# it turns into a task that runs with the site's credentials.

MAX_ATTRIBUTES = 1000
MAX_NAME_LENGTH = 256
MAX_STRING_LENGTH = 1024 * 1024
PATH_ATTRIBUTES = ("Cmd", "Iwd", "Out", "Err", "UserLog", "In", "X509UserProxy")
SUBMITTABLE_STATES = (IDLE, HELD)


class InvalidJob(ValueError):
    pass


def validate_job(job: Any, cluster_id: int) -> Job:
    """Return job if it is a well-formed job ad of this cluster; raise InvalidJob."""
    if not isinstance(job, dict):
        raise InvalidJob("a job is not an attribute table")
    if len(job) > MAX_ATTRIBUTES:
        raise InvalidJob("a job has %d attributes, more than %d" % (len(job), MAX_ATTRIBUTES))
    for name, value in job.items():
        _check_attribute(name, value)
    for name in ("ClusterId", "ProcId", "JobStatus", "QDate"):
        if not _is_int(job.get(name)):
            raise InvalidJob("attribute %s is missing or not an integer" % name)
    if job["ClusterId"] != cluster_id:
        raise InvalidJob("ClusterId %r does not match the record's cluster %d"
                         % (job["ClusterId"], cluster_id))
    if job["ProcId"] < 0:
        raise InvalidJob("ProcId is negative")
    if job["JobStatus"] not in SUBMITTABLE_STATES:
        raise InvalidJob("a new job cannot have JobStatus %r" % job["JobStatus"])
    if not isinstance(job.get("Cmd"), str) or not job["Cmd"]:
        raise InvalidJob("attribute Cmd is missing")
    for name in PATH_ATTRIBUTES:
        _check_path(job, name)
    for name in ("Arguments", "Environment"):
        if name in job and not isinstance(job[name], str):
            raise InvalidJob("attribute %s is not a string" % name)
    return job


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_attribute(name: Any, value: Any) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH \
            or not all(c.isalnum() or c in "_." for c in name):
        raise InvalidJob("bad attribute name %r" % (name if not isinstance(name, str)
                                                     else name[:40]))
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise InvalidJob("attribute %s is longer than %d characters"
                             % (name, MAX_STRING_LENGTH))
        if "\0" in value:
            raise InvalidJob("attribute %s holds a NUL character" % name)
        return
    from awq import classad  # late: classad imports nothing from here, but keep jobs light
    if value is None or isinstance(value, (bool, int, float, classad.Expr)):
        return
    raise InvalidJob("attribute %s has an unsupported type %s" % (name, type(value).__name__))


def _check_path(job: Job, name: str) -> None:
    if name not in job:
        return
    value = job[name]
    if not isinstance(value, str) or not value:
        raise InvalidJob("attribute %s is not a path" % name)
    if name == "Cmd" and job.get("TransferExecutable") is False:
        return  # a command found on the execute node's PATH
    if not value.startswith("/"):
        raise InvalidJob("attribute %s is not an absolute path: %s" % (name, value[:200]))
    if "/../" in value + "/" or "/./" in value + "/":
        raise InvalidJob("attribute %s is not a normalised path: %s" % (name, value[:200]))
