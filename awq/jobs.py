"""The job model: a job is a dict of HTCondor attribute names to values.

Values are plain Python (int, float, str, bool) or ``awq.classad.Expr`` for an
expression kept unevaluated (e.g. ``PeriodicRemove``).  This module holds the
rules shared by every part of the system about a job: its states, its id,
which jobs a command-line target names, the stored forms of ``Arguments`` and
``Environment``, and the validation every record passes before it is queued.
"""

from __future__ import annotations

import os
import pwd

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

    Job = Dict[str, Any]
    JobId = Tuple[int, int]
else:
    Job, JobId = dict, tuple   # for modules importing the names; annotations stay text


class JobStatus:
    """HTCondor's JobStatus values, plain ints as jobs store them. Not an IntEnum: importing
    enum costs a query tool as much as the rest of its start. JobStatus(2) is 2, so a
    format-1 snapshot holding an IntEnum member still loads as an int."""

    IDLE = 1
    RUNNING = 2
    REMOVED = 3
    COMPLETED = 4
    HELD = 5
    TRANSFERRING_OUTPUT = 6
    SUSPENDED = 7

    def __new__(cls, value: Any) -> int:  # type: ignore[misc]
        if value not in ALL_STATES:
            raise ValueError("%r is not a JobStatus" % (value,))
        return int(value)


ALL_STATES = tuple(range(JobStatus.IDLE, JobStatus.SUSPENDED + 1))
_NAMES = {1: "idle", 2: "running", 3: "removed", 4: "completed", 5: "held",
          6: "transferring_output", 7: "suspended"}
_LETTERS = dict(zip(ALL_STATES, "IRXCH>S"))   # condor_q's ST column


# States a job leaves the queue from (it then lives only in history).
FINAL_STATES = (JobStatus.REMOVED, JobStatus.COMPLETED)


def status_letter(status: Any) -> str:
    try:
        return _LETTERS.get(status, "?")
    except TypeError:   # an unhashable value
        return "?"


def status_name(status: Any) -> str:
    """idle, running, ... for the log; the value itself if it is no JobStatus."""
    try:
        return _NAMES.get(status) or str(status)
    except TypeError:
        return str(status)


def count_by_status(job_list: Iterable[Mapping[str, Any]]) -> "Counter[int]":
    """How many jobs are in each JobStatus."""
    return count_values(job.get("JobStatus") for job in job_list)


def count_values(statuses: Iterable[Any]) -> "Counter[int]":
    """How many of each JobStatus value (a column of them)."""
    from collections import Counter   # here: the query tools start faster without it
    return Counter(statuses)


def job_id(job: Mapping[str, Any]) -> JobId:
    return (int(job["ClusterId"]), int(job["ProcId"]))


def format_job_id(jid: JobId) -> str:
    return "%d.%d" % jid


def parse_job_id(text: str) -> Optional[JobId]:
    """"C.P" -> (C, P); None for anything else."""
    cluster, sep, proc = text.partition(".")
    if not sep or not cluster.isdigit() or not proc.isdigit() or len(text) > 25:
        return None
    return int(cluster), int(proc)


def current_owner() -> str:
    """The Owner of jobs this process submits: the user it runs as."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER", str(os.getuid()))


# ---------------------------------------------------------------- targets
#
# HTCondor's tools name jobs as `cluster`, `cluster.proc` or `owner`.

class Target(tuple):
    """cluster, cluster.proc or owner: which jobs a command-line target names (a tuple of
    the three, as a named tuple would be; written out, because collections costs a query
    tool's start more than its work)."""

    __slots__ = ()

    def __new__(cls, cluster: Optional[int] = None, proc: Optional[int] = None,
                owner: Optional[str] = None) -> "Target":
        return tuple.__new__(cls, (cluster, proc, owner))

    @property
    def cluster(self) -> Optional[int]:
        return self[0]

    @property
    def proc(self) -> Optional[int]:
        return self[1]

    @property
    def owner(self) -> Optional[str]:
        return self[2]

    def __repr__(self) -> str:
        return "Target(cluster=%r, proc=%r, owner=%r)" % self

    def __getnewargs__(self) -> Tuple[Any, ...]:
        return tuple(self)

    def matches(self, job: Mapping[str, Any]) -> bool:
        if self.owner is not None:
            return job.get("Owner") == self.owner
        return job.get("ClusterId") == self.cluster and \
            (self.proc is None or job.get("ProcId") == self.proc)


def parse_target(text: str) -> Target:
    """A job target from the command line; ValueError with a message otherwise."""
    cluster, dot, proc = text.partition(".")
    if cluster.isdigit() and len(cluster) <= 12:
        if not dot:
            return Target(cluster=int(cluster))
        if proc.isdigit() and len(proc) <= 12:
            return Target(cluster=int(cluster), proc=int(proc))
    if text[:1].isalpha() and all(c.isalnum() or c in "._-@" for c in text) and len(text) <= 256:
        return Target(owner=text)
    raise ValueError("not a job id or user name: %r" % text[:80])


class Request(tuple):
    """What condor_rm, condor_hold, condor_release, condor_suspend or condor_continue asks
    of one job: action is the tool's request directory (rm, hold, ...; spool.REQUEST_ACTIONS),
    reason what the user gave with -reason (may be empty). A tuple of the three, as a named
    tuple would be (see Target)."""

    __slots__ = ()

    def __new__(cls, action: str, job_id: JobId, reason: str) -> "Request":
        return tuple.__new__(cls, (action, job_id, reason))

    @property
    def action(self) -> str:
        return self[0]

    @property
    def job_id(self) -> JobId:
        return self[1]

    @property
    def reason(self) -> str:
        return self[2]

    def __repr__(self) -> str:
        return "Request(action=%r, job_id=%r, reason=%r)" % self

    def __getnewargs__(self) -> Tuple[Any, ...]:
        return tuple(self)


# ---------------------------------------------------------------- stored words
#
# Arguments and Environment are stored in HTCondor's new ("V2") syntax without
# the enclosing double quotes: words separated by white space, a word with
# white space or quotes inside single quotes, '' for a quote inside them.

class WordSyntaxError(ValueError):
    pass


def split_words(text: str, what: str, doubled_double_quotes: bool = False) -> List[str]:
    """Split V2 text into words. In a submit file a double quote is written "" inside
    the double-quoted value (doubled_double_quotes); in the stored form it is itself."""
    words: List[str] = []
    current: List[str] = []
    in_word = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _quoted_part(text, i + 1, current, what)
            in_word = True
        elif char == '"' and doubled_double_quotes:
            if text[i + 1:i + 2] != '"':
                raise WordSyntaxError('a double quote inside %s must be doubled ("")' % what)
            current.append('"')
            in_word = True
            i += 2
        elif char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            i += 1
        else:
            current.append(char)
            in_word = True
            i += 1
    if in_word:
        words.append("".join(current))
    return words


def _quoted_part(text: str, i: int, current: List[str], what: str) -> int:
    """Append the inside of '...' starting at i; return the index after the closing quote."""
    while i < len(text):
        if text[i] == "'":
            if text[i + 1:i + 2] != "'":
                return i + 1
            current.append("'")
            i += 2
            continue
        current.append(text[i])
        i += 1
    raise WordSyntaxError("unbalanced single quote in %s" % what)


def quote_word(word: str) -> str:
    if word and not any(c.isspace() or c in "'\"" for c in word):
        return word
    return "'" + word.replace("'", "''") + "'"


def join_arguments(argv: Iterable[str]) -> str:
    return " ".join(quote_word(a) for a in argv)


def join_environment(env: Mapping[str, str]) -> str:
    return " ".join("%s=%s" % (name, quote_word(value)) for name, value in env.items())


def argv_of(job: Mapping[str, Any]) -> List[str]:
    text = job.get("Arguments") or ""
    return split_words(text, "arguments") if isinstance(text, str) else []


def environment_of(job: Mapping[str, Any]) -> Dict[str, str]:
    text = job.get("Environment") or ""
    if not isinstance(text, str):
        return {}
    env = {}
    for pair in split_words(text, "environment"):
        name, _, value = pair.partition("=")
        env[name] = value
    return env


# ---------------------------------------------------------------- validation
#
# A record in the spool is input like any other: the master checks it before
# it turns into a task that runs with the site's credentials.

MAX_ATTRIBUTES = 1000
MAX_NAME_LENGTH = 256
MAX_STRING_LENGTH = 1024 * 1024
PATH_ATTRIBUTES = ("Cmd", "Iwd", "Out", "Err", "UserLog", "In", "X509UserProxy")
# Files the master writes for a job: never into the spool (its password, counter, snapshot).
WRITTEN_PATH_ATTRIBUTES = ("Out", "Err", "UserLog")
PATH_MAX_BYTES = 4096   # Linux's PATH_MAX, its NUL included
NAME_MAX_BYTES = 255
SUBMITTABLE_STATES = (JobStatus.IDLE, JobStatus.HELD)
# A record the master could not take: HTCondor has no code for that, so "Unspecified".
HOLD_CODE_REFUSED = 0

# Limits a job's data meets on its way to the pilot, enforced here once so that what
# condor_submit accepts also runs. Each is set below the measured edge with a margin.
#
# Work Queue (CCTools 8) sends every environment variable as one protocol message,
# "env LENGTH\nNAME=value\n", formatted in a buffer of 4096 bytes; a longer message
# aborts the whole master (fatal in buffer.c) whenever a worker connects. NAME=value
# passes up to 4085 bytes.
MAX_ENVIRONMENT_ENTRY_BYTES = 4000
# exec() gives a program its arguments and environment together in ARG_MAX bytes (a
# quarter of the stack limit: 2 MiB under the usual 8 MiB), shared with the worker's own
# environment and counted as each string, its NUL and its pointer. A quarter of the usual
# ARG_MAX leaves the rest to the worker and to sites with a smaller stack.
MAX_ENVIRONMENT_BYTES = 512 * 1024
# The worker runs a task's command as `sh -c COMMAND`, and Linux refuses one exec argument
# of 128 KiB or more (MAX_ARG_STRLEN): 131071 bytes pass, 131072 fail with "Argument list
# too long" and the job comes back without its output. The arguments (with the program)
# are counted as the task command quotes them; the margin holds the rest of the command
# (process-group prelude, chmod, wrapper, redirections: under 2 KiB).
MAX_COMMAND_LINE_BYTES = 120 * 1024
_POINTER_BYTES = 8


class InvalidJob(ValueError):
    pass


def validate_job(job: Any, cluster_id: int, spool_dir: Optional[str] = None) -> Job:
    """Return job if it is a well-formed job ad of this cluster; raise InvalidJob.

    spool_dir: the spool the job goes to; its output, error and log may not point into it
    (condor_submit and the master pass it; a query tool need not)."""
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
    _check_transfer_input(job)
    for name in ("Arguments", "Environment"):
        if name in job and not isinstance(job[name], str):
            raise InvalidJob("attribute %s is not a string" % name)
    try:
        argv = argv_of(job)
        environment = environment_of(job)
    except WordSyntaxError as err:
        raise InvalidJob(str(err))
    _check_command_line(job, argv)
    _check_environment(environment)
    if spool_dir is not None:
        _check_outside_spool(job, spool_dir)
    return job


def quoted_length(word: str) -> int:
    """Bytes word takes in a task's command once shell-quoted (shlex.quote), at most."""
    return len(word.encode("utf-8", "surrogateescape")) + 2 + 4 * word.count("'")


def command_line_length(job: Mapping[str, Any], argv: List[str]) -> int:
    """The bytes the program and its arguments take in the task's command, at most."""
    program = str(job.get("Cmd", ""))
    if job.get("TransferExecutable", True) is not False:
        program = program.rsplit("/", 1)[-1]   # the sandbox name: the executable's own
    return quoted_length(program) + sum(quoted_length(word) + 1 for word in argv)


def _check_command_line(job: Job, argv: List[str]) -> None:
    length = command_line_length(job, argv)
    if length > MAX_COMMAND_LINE_BYTES:
        raise InvalidJob("the command line (executable and arguments) is %d bytes once quoted, "
                         "more than the limit of %d (a worker's shell takes at most 128 KiB)"
                         % (length, MAX_COMMAND_LINE_BYTES))


def _check_environment(environment: Mapping[str, str]) -> None:
    total = 0
    for name, value in environment.items():
        entry = len(name.encode("utf-8", "surrogateescape")) + 1 \
            + len(value.encode("utf-8", "surrogateescape"))
        if entry > MAX_ENVIRONMENT_ENTRY_BYTES:
            raise InvalidJob("environment variable %s is %d bytes (NAME=value), more than the "
                             "limit of %d for one variable (Work Queue's protocol)"
                             % (name[:80], entry, MAX_ENVIRONMENT_ENTRY_BYTES))
        total += entry + 1 + _POINTER_BYTES
    if total > MAX_ENVIRONMENT_BYTES:
        raise InvalidJob("the environment is %d bytes as exec counts it, more than the limit of "
                         "%d for all variables together" % (total, MAX_ENVIRONMENT_BYTES))


def held_stub(raw: Any, cluster_id: int, reason: str) -> Optional[Job]:
    """What is left of a refused job: its id and a HoldReason, so it is seen, not lost."""
    if not isinstance(raw, dict) or not _is_int(raw.get("ProcId")) or raw["ProcId"] < 0:
        return None
    stub: Job = {"ClusterId": cluster_id, "ProcId": raw["ProcId"],
                 "JobStatus": int(JobStatus.HELD), "HoldReason": reason[:1000],
                 "HoldReasonCode": HOLD_CODE_REFUSED}
    for name in ("Owner", "QDate", "EnteredCurrentStatus", "Cmd"):
        value = raw.get(name)
        if isinstance(value, (int, str)) and not isinstance(value, bool) \
                and len(str(value)) <= 4096 and "\0" not in str(value):
            stub[name] = value
    stub.setdefault("QDate", 0)
    stub.setdefault("Cmd", "")
    return stub


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_GOOD_NAMES: Set[str] = set()   # names already checked: a queue's jobs share a few dozen


def _check_attribute(name: Any, value: Any) -> None:
    if name not in _GOOD_NAMES:
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH \
                or not all(c.isalnum() or c in "_." for c in name):
            raise InvalidJob("bad attribute name %r" % (name if not isinstance(name, str)
                                                         else name[:40]))
        if len(_GOOD_NAMES) < 10000:
            _GOOD_NAMES.add(name)
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise InvalidJob("attribute %s is longer than %d characters"
                             % (name, MAX_STRING_LENGTH))
        if "\0" in value:
            raise InvalidJob("attribute %s holds a NUL character" % name)
        return
    if value is None or type(value) in (bool, int, float):   # before the import: most values
        return
    from awq import classad  # late: classad imports nothing from here, but keep jobs light
    if isinstance(value, (bool, int, float, classad.Expr)):
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
    _check_path_text(name, value)


def _check_transfer_input(job: Job) -> None:
    listed = job.get("TransferInput")
    if listed is None:
        return
    if not isinstance(listed, str):
        raise InvalidJob("attribute TransferInput is not a list of paths")
    for path in listed.split(","):
        _check_path_text("TransferInput", path.rstrip("/") or "/")


def _check_path_text(name: str, value: str) -> None:
    if not value.startswith("/"):
        raise InvalidJob("attribute %s is not an absolute path: %s" % (name, value[:200]))
    if "/../" in value + "/" or "/./" in value + "/":
        raise InvalidJob("attribute %s is not a normalised path: %s" % (name, value[:200]))
    if len(value.encode("utf-8", "surrogateescape")) >= PATH_MAX_BYTES \
            or any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES
                   for part in value.split("/")):
        # Longer than Linux lets a file be named: no file is there to send, and a name
        # of any length would otherwise reach the task's command.
        raise InvalidJob("attribute %s is longer than a path can be (%d bytes, %d a name): %s..."
                         % (name, PATH_MAX_BYTES - 1, NAME_MAX_BYTES, value[:80]))
    if not value.isprintable() or " " in value:   # every other white space is unprintable
        # Work Queue's protocol names files in space-separated messages.
        raise InvalidJob("attribute %s: a path with white space or control characters "
                         "cannot be sent to a worker: %r" % (name, value[:200]))


def _check_outside_spool(job: Job, spool_dir: str) -> None:
    """Refuse output, error and log paths inside the spool, also through a link to it."""
    spool, inside = _spool_prefixes(spool_dir)
    for name in WRITTEN_PATH_ATTRIBUTES:
        value = job.get(name)
        if not isinstance(value, str) or value == "/dev/null":
            continue
        directory, _, base = value.rpartition("/")
        # Where the directory leads now, resolved (also "//", a link to the spool). A link
        # in the file's own place is never followed when the file is written (job_files).
        real = _real_directory(directory or "/").rstrip("/") + "/" + base
        if real in spool or real.startswith(inside):
            raise InvalidJob("attribute %s points into the spool %s: %s (the master's own "
                             "files live there)" % (name, spool_dir, value[:200]))


_REAL_DIRECTORIES: Dict[str, str] = {}   # 10,000 jobs of a cluster share one output directory
_SPOOL_PREFIXES: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {}


def _real_directory(directory: str) -> str:
    real = _REAL_DIRECTORIES.get(directory)
    if real is None:
        real = os.path.realpath(directory)
        if len(_REAL_DIRECTORIES) >= 256:   # functools' cache would cost a query tool's start
            _REAL_DIRECTORIES.clear()
        _REAL_DIRECTORIES[directory] = real
    return real


def _spool_prefixes(spool_dir: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """The spool's names (as given and resolved), and the prefixes of what lies inside."""
    found = _SPOOL_PREFIXES.get(spool_dir)
    if found is None:
        names = tuple({os.path.normpath(spool_dir), os.path.realpath(spool_dir)})
        found = (names, tuple(name.rstrip("/") + "/" for name in names))
        _SPOOL_PREFIXES[spool_dir] = found
    return found


# Changes of one kind in one go (condor_rm of many jobs, pilots starting by thousands) up
# to which each job gets its own log line; past it one line names them all (describe_ids):
# a person follows a few job by job, and thousands of lines cost more than the changes.
LOG_EACH_UP_TO = 64
MAX_LOGGED_RANGES = 20   # a summary line stays one readable line however scattered the ids


def id_ranges(ids: Iterable[JobId]) -> List[Tuple[JobId, JobId]]:
    """Job ids as (first, last) ranges in id order. A range is one cluster's consecutive
    procs (3.0-3.9), or consecutive clusters' proc 0 (1.0-500.0: AliEn submits one job a
    cluster), never a mix, so it reads back unambiguously."""
    ranges: List[List[JobId]] = []
    for jid in sorted(set(ids)):
        if ranges:
            run = ranges[-1]
            first, last = run
            same_cluster = first[0] == jid[0] and jid[1] == last[1] + 1
            next_cluster = first[1] == last[1] == jid[1] == 0 and jid[0] == last[0] + 1
            if same_cluster or next_cluster:
                run[1] = jid
                continue
        ranges.append([jid, jid])
    return [(first, last) for first, last in ranges]


def describe_ids(ids: Iterable[JobId], limit: int = MAX_LOGGED_RANGES) -> str:
    """"1.0-500.0, 700.0-700.3" (id_ranges), the first limit ranges and how many more."""
    ranges = id_ranges(ids)
    texts = [format_job_id(first) if first == last else
             "%s-%s" % (format_job_id(first), format_job_id(last))
             for first, last in ranges[:limit]]
    more: Optional[str] = None
    if len(ranges) > limit:
        more = "and %d more ranges" % (len(ranges) - limit)
    return ", ".join(texts + ([more] if more else []))
