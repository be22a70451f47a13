"""HTCondor's submit-description language -> job ads. Pure: no I/O.

Two steps, so condor_submit can validate before it takes a cluster id:
``parse_description`` checks the syntax, ``build_jobs`` expands macros and
produces one job ad per queued job (see awq/jobs.py for the job model).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import posixpath
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from awq import classad, jobs
from awq.jobs import Job

MAX_JOBS_PER_SUBMIT = 10000
MAX_LINE = 1024 * 1024
MAX_MACRO_DEPTH = 32

UNIVERSES = {"standard": 1, "vanilla": 5, "docker": 5, "container": 5, "scheduler": 7,
             "grid": 9, "java": 10, "parallel": 11, "local": 12, "vm": 13}

# Submit commands that have an HTCondor attribute of another name.
ATTRIBUTE_NAMES = {
    "output": "Out", "error": "Err", "log": "UserLog", "input": "In",
    "batch_name": "JobBatchName", "grid_resource": "GridResource",
    "periodic_hold": "PeriodicHold", "periodic_remove": "PeriodicRemove",
    "periodic_release": "PeriodicRelease", "on_exit_remove": "OnExitRemove",
    "on_exit_hold": "OnExitHold", "requirements": "Requirements", "rank": "Rank",
    "job_lease_duration": "JobLeaseDuration", "should_transfer_files": "ShouldTransferFiles",
    "when_to_transfer_output": "WhenToTransferOutput", "priority": "JobPrio",
    "notification": "JobNotification", "notify_user": "NotifyUser",
    "leave_in_queue": "LeaveJobInQueue", "transfer_input_files": "TransferInput",
    "transfer_output_files": "TransferOutput", "accounting_group": "AcctGroup",
    "accounting_group_user": "AcctGroupUser", "description": "JobDescription",
    "max_retries": "JobMaxRetries", "stream_output": "StreamOut", "stream_error": "StreamErr",
    "x509userproxy": "X509UserProxy", "transfer_executable": "TransferExecutable",
    "request_cpus": "RequestCpus", "requestcpus": "RequestCpus",
    "request_memory": "RequestMemory", "requestmemory": "RequestMemory",
    "request_disk": "RequestDisk", "requestdisk": "RequestDisk",
}
EXPRESSION_COMMANDS = {"periodic_hold", "periodic_remove", "periodic_release", "on_exit_remove",
                       "on_exit_hold", "requirements", "rank", "leave_in_queue"}
INTEGER_COMMANDS = {"job_lease_duration", "priority", "max_retries"}
PATH_ATTRIBUTES = {"Out", "Err", "UserLog", "In", "X509UserProxy"}
# Handled by build_jobs itself rather than copied as attributes.
SPECIAL_COMMANDS = {"executable", "cmd", "arguments", "args", "environment", "env", "getenv",
                    "initialdir", "initial_dir", "iwd", "universe", "hold", "use_x509userproxy"}

_KEY = re.compile(r"^(\+|MY\.)?([A-Za-z_][A-Za-z0-9_.]*)$", re.I)
_MACRO = re.compile(r"(?<!\$)\$(ENV|F[A-Za-z]*)?\(([A-Za-z0-9_.]+)(?::([^()]*))?\)", re.I)


class SubmitError(ValueError):
    """Bad submit description; the message is what follows `ERROR: `."""


@dataclasses.dataclass
class Queue:
    """One queue statement: `count` jobs per item (one when there is no item list)."""

    count: int
    variables: List[str]
    items: Optional[List[str]]

    def size(self) -> int:
        return self.count * (len(self.items) if self.items is not None else 1)


@dataclasses.dataclass
class Statement:
    """A `key = value` command, or a queue statement (then key is empty)."""

    line: int
    key: str = ""
    value: str = ""
    queue: Optional[Queue] = None


@dataclasses.dataclass
class SubmitDescription:
    statements: List[Statement]

    def job_count(self) -> int:
        return sum(s.queue.size() for s in self.statements if s.queue)


# ---------------------------------------------------------------- parsing

def parse_description(text: str, append: Sequence[str] = (),
                      queue_override: Optional[str] = None) -> SubmitDescription:
    """Check the syntax; `append` lines go before the first queue statement."""
    if "\0" in text:
        raise SubmitError("the submit description contains a NUL character")
    statements = [s for s in _statements(_logical_lines(text))]
    extra = [_statement(0, line) for line in append]
    if queue_override is not None:
        statements = [s for s in statements if not s.queue]
        statements.extend(extra + [_statement(0, "queue " + queue_override)])
    elif extra:
        first_queue = next((i for i, s in enumerate(statements) if s.queue), len(statements))
        statements[first_queue:first_queue] = extra
    desc = SubmitDescription([s for s in statements if s is not None])
    if not any(s.queue for s in desc.statements):
        raise SubmitError("no 'queue' statement in the submit description: no job to submit")
    total = desc.job_count()
    if total > MAX_JOBS_PER_SUBMIT:
        raise SubmitError("the description queues %d jobs; at most %d may be submitted at once"
                          % (total, MAX_JOBS_PER_SUBMIT))
    if total == 0:
        raise SubmitError("the queue statements queue no job")
    return desc


def _logical_lines(text: str) -> Iterable[Tuple[int, str]]:
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise SubmitError("line %d is longer than %d characters" % (number, MAX_LINE))
        if not pending:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\") and not stripped.lstrip().startswith("#"):
            pending += stripped[:-1] + " "
            if len(pending) > MAX_LINE:
                raise SubmitError("line %d is longer than %d characters" % (start, MAX_LINE))
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _statements(lines: Iterable[Tuple[int, str]]) -> Iterable[Statement]:
    lines = iter(lines)
    for number, line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _OPEN_ITEM_LIST.match(stripped):
            stripped = _item_list_lines(number, stripped, lines)
        yield _statement(number, stripped)


# `queue a, b from (` with its items on the following lines, up to a line `)` (law does this).
_OPEN_ITEM_LIST = re.compile(r"(?i)^queue\b[^(]*\b(in|from)\s*\([^)]*$")


def _item_list_lines(number: int, first: str, lines: Iterable[Tuple[int, str]]) -> str:
    collected = [first]
    size = len(first)
    for _, line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        collected.append(stripped)
        size += len(stripped) + 1
        if size > MAX_LINE:
            raise SubmitError("line %d: the queue item list is longer than %d characters"
                              % (number, MAX_LINE))
        if stripped.endswith(")"):
            return "\n".join(collected)
    raise SubmitError("line %d: the queue item list has no closing parenthesis" % number)


def _statement(number: int, line: str) -> Statement:
    line = line.strip()
    where = ("line %d" % number) if number else "command-line argument"
    if re.match(r"(?i)^queue(\s|$)", line):
        return Statement(number, queue=_parse_queue(line[5:].strip(), where))
    key, sep, value = line.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise SubmitError("Parse error in submit description at %s: %r is not a "
                          "'name = value' command" % (where, line[:80]))
    return Statement(number, key, value.strip())


def _parse_queue(args: str, where: str) -> Queue:
    if not args:
        return Queue(1, [], None)
    match = re.match(r"^(\d+)?\s*(.*)$", args, re.S)
    count = int(match.group(1)) if match.group(1) else 1
    if count > MAX_JOBS_PER_SUBMIT:
        raise SubmitError("%s queues %d jobs; at most %d may be submitted at once"
                          % (where, count, MAX_JOBS_PER_SUBMIT))
    rest = match.group(2).strip()
    if not rest:
        return Queue(count, [], None)
    loop = re.match(r"(?i)^([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)?\s*"
                    r"\b(in|from|matching)\b\s*(.*)$", rest, re.S)
    if not loop:
        raise SubmitError("%s: cannot understand 'queue %s'" % (where, args[:80]))
    variables = [v.strip() for v in (loop.group(1) or "Item").split(",")]
    mode, items_text = loop.group(2).lower(), loop.group(3).strip()
    if mode == "matching":
        raise SubmitError("%s: 'queue ... matching' is not supported" % where)
    if items_text.startswith("("):
        if not items_text.endswith(")"):
            raise SubmitError("%s: unbalanced parenthesis in the queue item list" % where)
        items_text = items_text[1:-1]
    elif mode == "from":
        raise SubmitError("%s: 'queue ... from FILE' is not supported; list the items "
                          "in parentheses" % where)
    if mode == "from":
        items = [line.strip() for line in re.split(r"[\n;]", items_text) if line.strip()]
    else:
        items = [item for item in re.split(r"[\s,]+", items_text) if item]
    if count * len(items) > MAX_JOBS_PER_SUBMIT:
        raise SubmitError("%s queues %d jobs; at most %d may be submitted at once"
                          % (where, count * len(items), MAX_JOBS_PER_SUBMIT))
    return Queue(count, variables, items)


# ---------------------------------------------------------------- macros

class _Macros:
    def __init__(self, settings: Dict[str, Tuple[str, str]], builtins: Dict[str, str],
                 environ: Mapping[str, str]):
        self.settings = settings
        self.builtins = builtins
        self.environ = environ

    def expand(self, text: str, depth: int = 0) -> str:
        if "$" not in text:
            return text
        if depth > MAX_MACRO_DEPTH:
            raise SubmitError("macro expansion nested more than %d deep (a macro refers "
                              "to itself?)" % MAX_MACRO_DEPTH)
        return _MACRO.sub(lambda m: self._one(m, depth), text)

    def _one(self, match: "re.Match[str]", depth: int) -> str:
        kind, name, default = match.group(1), match.group(2), match.group(3)
        if kind and kind.upper() == "ENV":
            return self.environ.get(name, default or "")
        value = self.value(name, depth)
        if value is None:
            value = default or ""
        if kind:
            return _filename_part(kind[1:].lower(), value)
        return value

    def value(self, name: str, depth: int) -> Optional[str]:
        lower = name.lower()
        if lower in self.builtins:
            return self.builtins[lower]
        if lower in self.settings:
            return self.expand(self.settings[lower][1], depth + 1)
        if lower.startswith("my.") and "+" + lower[3:] in self.settings:
            return self.expand(self.settings["+" + lower[3:]][1], depth + 1)
        return None


def _filename_part(letters: str, value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not letters or letters == "q":
        return value
    directory, base = posixpath.split(value)
    stem, ext = posixpath.splitext(base)
    parts = []
    if "p" in letters or "d" in letters:
        parts.append(directory + "/" if directory else "")
    if "n" in letters:
        parts.append(stem)
    if "x" in letters:
        parts.append(ext)
    if "b" in letters:
        parts.append(base)
    return "".join(parts)


# ---------------------------------------------------------------- building

def build_jobs(desc: SubmitDescription, *, cluster_id: int, cwd: str,
               environ: Mapping[str, str], owner: str, uid: int, now: int) -> List[Job]:
    settings: Dict[str, Tuple[str, str]] = {}
    result: List[Job] = []
    for statement in desc.statements:
        if statement.queue is None:
            lower = statement.key.lower()
            if lower.startswith("my."):
                lower = "+" + lower[3:]
            settings[lower] = (statement.key, statement.value)
            continue
        queue = statement.queue
        for item in (queue.items if queue.items is not None else [""]):
            for step in range(queue.count):
                builtins = _builtins(cluster_id, len(result), step, item, queue.variables)
                # A loop variable named like a submit command is that command for this job:
                # `queue input, arguments from (...)` (HTCondor's manual; law submits this way).
                job_settings = dict(settings)
                for name in queue.variables if queue.items is not None else []:
                    if name.lower() in _COMMANDS:
                        job_settings[name.lower()] = (name, builtins[name.lower()])
                macros = _Macros(job_settings, builtins, environ)
                result.append(_job(job_settings, macros, cluster_id, len(result), cwd, environ,
                                   owner, uid, now))
    return result


_COMMANDS = set(ATTRIBUTE_NAMES) | EXPRESSION_COMMANDS | INTEGER_COMMANDS | SPECIAL_COMMANDS


def _builtins(cluster: int, proc: int, step: int, item: str, variables: List[str]) -> Dict[str, str]:
    values = {"cluster": str(cluster), "clusterid": str(cluster), "process": str(proc),
              "procid": str(proc), "step": str(step), "row": "0", "node": "#pArAlLeLnOdE#"}
    # Fields are separated by commas and/or white space; the last variable takes the rest.
    parts = re.split(r"[\s,]+", item.strip(), maxsplit=len(variables) - 1) \
        if len(variables) > 1 else [item]
    for index, name in enumerate(variables or ["Item"]):
        values[name.lower()] = parts[index] if index < len(parts) else ""
    values.setdefault("item", item)
    return values


def _job(settings: Dict[str, Tuple[str, str]], macros: _Macros, cluster: int, proc: int,
         cwd: str, environ: Mapping[str, str], owner: str, uid: int, now: int) -> Job:
    def get(*names: str) -> Optional[str]:
        for name in names:
            if name in settings:
                return macros.expand(settings[name][1]).strip()
        return None

    job: Job = {"ClusterId": cluster, "ProcId": proc, "JobStatus": int(jobs.JobStatus.IDLE), "Owner": owner,
                "QDate": now, "EnteredCurrentStatus": now, "NumJobStarts": 0, "JobPrio": 0,
                "MyType": "Job", "JobUniverse": 5, "RequestCpus": 1, "TransferExecutable": True}
    iwd = _absolute(get("initialdir", "initial_dir", "iwd") or cwd, cwd)
    job["Iwd"] = iwd
    for lower, (key, _) in settings.items():
        if lower not in SPECIAL_COMMANDS:
            _set_attribute(job, lower, key, get(lower) or "", iwd)
    universe = (get("universe") or "vanilla").lower()
    if universe not in UNIVERSES:
        raise SubmitError("unknown universe %r" % universe)
    job["JobUniverse"] = UNIVERSES[universe]
    executable = get("executable", "cmd")
    if not executable:
        raise SubmitError("no 'executable' (or 'cmd') command in the submit description")
    if job.get("TransferExecutable") is False and "/" not in executable:
        job["Cmd"] = executable
    else:
        job["Cmd"] = _absolute(executable, iwd)
    arguments = get("arguments", "args")
    job["Arguments"] = jobs.join_arguments(parse_arguments(arguments) if arguments else [])
    job["Environment"] = jobs.join_environment(_environment(get("environment", "env"),
                                                       get("getenv"), environ))
    if _boolean(get("hold") or "false", "hold"):
        job["JobStatus"] = int(jobs.JobStatus.HELD)
        job["HoldReason"] = "submitted on hold"
    if "X509UserProxy" not in job and _boolean(get("use_x509userproxy") or "false",
                                               "use_x509userproxy"):
        job["X509UserProxy"] = environ.get("X509_USER_PROXY") or "/tmp/x509up_u%d" % uid
    return job


def _set_attribute(job: Job, lower: str, key: str, value: str, iwd: str) -> None:
    if lower.startswith("+"):
        name = key.lstrip("+")
        name = name[3:] if name.lower().startswith("my.") else name
        if not value:
            job[name] = classad.Expr("undefined")  # HTCondor: `+Name =` sets it to undefined
            return
        try:
            job[name] = classad.parse_value(value)
        except classad.ClassAdError as err:
            raise SubmitError("attribute %s: %s is not a valid ClassAd expression (%s)"
                              % (name, value[:80], err))
        return
    name = ATTRIBUTE_NAMES.get(lower, key)
    if not value:
        job.pop(name, None)  # HTCondor reads `command =` (empty) as unset, e.g. Parsl's requirements
    elif name in PATH_ATTRIBUTES:
        job[name] = _absolute(value, iwd)
    elif name == "TransferInput":
        job[name] = ",".join(_absolute(p.strip(), iwd) + ("/" if p.strip().endswith("/") else "")
                             for p in value.split(",") if p.strip())
    elif name in ("TransferExecutable", "StreamOut", "StreamErr"):
        job[name] = _boolean(value, key)
    elif name in ("RequestMemory", "RequestDisk"):
        job[name] = _size(value, key, "MB" if name == "RequestMemory" else "KB")
    elif name == "RequestCpus" or lower in EXPRESSION_COMMANDS:
        job[name] = _expression(value, key)
    elif lower in INTEGER_COMMANDS:
        if not re.match(r"^-?\d+$", value):
            raise SubmitError("%s must be an integer, not %r" % (key, value[:80]))
        job[name] = int(value)
    else:
        job[name] = value


def _expression(value: str, key: str) -> Any:
    try:
        return classad.parse_value(value)
    except classad.ClassAdError as err:
        raise SubmitError("%s: %s is not a valid ClassAd expression (%s)" % (key, value[:80], err))


_UNITS = {"": None, "K": 1.0 / 1024, "KB": 1.0 / 1024, "M": 1, "MB": 1, "G": 1024, "GB": 1024,
          "T": 1024 * 1024, "TB": 1024 * 1024}


def _size(value: str, key: str, unit: str) -> Any:
    match = re.match(r"^(\d+(?:\.\d+)?)\s*([KMGT]B?)?$", value.strip(), re.I)
    if not match:
        return _expression(value, key)
    number, suffix = float(match.group(1)), (match.group(2) or "").upper()
    if not suffix:
        return int(number) if number.is_integer() else number
    megabytes = number * _UNITS[suffix]
    amount = megabytes if unit == "MB" else megabytes * 1024
    return int(-(-amount // 1))  # round up: never ask for less than was written


_TRUE_WORDS = ("true", "yes", "1", "t", "y")
_FALSE_WORDS = ("false", "no", "0", "f", "n", "")


def _boolean_word(value: str) -> Optional[bool]:
    """HTCondor's spellings of true and false; None for anything else."""
    lower = value.strip().lower()
    if lower in _TRUE_WORDS:
        return True
    if lower in _FALSE_WORDS:
        return False
    return None


def _boolean(value: str, key: str) -> bool:
    word = _boolean_word(value)
    if word is not None:
        return word
    raise SubmitError("%s must be true or false, not %r" % (key, value[:80]))


def _absolute(path: str, base: str) -> str:
    return posixpath.normpath(posixpath.join(base, path))


# ---------------------------------------------------------------- arguments

def _split_quoted(text: str, what: str) -> List[str]:
    # HTCondor undoes the doubled "" of the double-quoted value first, then splits the words:
    # so "" is a literal " inside '...' too (Parsl's environment writes NAME='it""s').
    if '"' in text.replace('""', ""):
        raise SubmitError('a double quote inside %s must be doubled ("")' % what)
    try:
        return jobs.split_words(text.replace('""', '"'), what)
    except jobs.WordSyntaxError as err:
        raise SubmitError(str(err))


def _new_syntax(value: str) -> Optional[str]:
    value = value.strip()
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise SubmitError("unbalanced double quote in %s" % value[:80])
        return value[1:-1]
    return None


def parse_arguments(value: str) -> List[str]:
    inner = _new_syntax(value)
    if inner is not None:
        return _split_quoted(inner, "arguments")
    if re.search(r'(?<!\\)"', value):
        raise SubmitError("arguments: a double quote in the old syntax must be written \\\"; "
                          "or wrap the whole value in double quotes (new syntax)")
    return [word.replace('\\"', '"') for word in value.split()]


# ---------------------------------------------------------------- environment

def _environment(value: Optional[str], getenv: Optional[str],
                 environ: Mapping[str, str]) -> Dict[str, str]:
    env: Dict[str, str] = {}
    if getenv:
        env.update(_inherited(getenv, environ))
    if value:
        env.update(parse_environment(value))
    return env


def _inherited(getenv: str, environ: Mapping[str, str]) -> Dict[str, str]:
    word = _boolean_word(getenv)
    if word is not None:
        return dict(environ) if word else {}
    patterns = [p for p in re.split(r"[\s,]+", getenv) if p]
    return {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def parse_environment(value: str) -> Dict[str, str]:
    inner = _new_syntax(value)
    if inner is not None:
        pairs = _split_quoted(inner, "environment")
    else:
        pairs = [p.strip() for p in value.split(";") if p.strip()]
    env: Dict[str, str] = {}
    for pair in pairs:
        name, sep, val = pair.partition("=")
        if not sep or not name or re.search(r"\s", name):
            raise SubmitError("environment: %r is not NAME=value" % pair[:80])
        env[name] = val
    return env


# ---------------------------------------------------------------- checks

def files_to_check(job: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """(kind, path) pairs condor_submit verifies on disk before queueing."""
    checks = [("initialdir", job["Iwd"])]
    if job.get("TransferExecutable", True) is not False:
        checks.append(("executable", job["Cmd"]))
    for name, kind in (("In", "input"), ("X509UserProxy", "proxy")):
        if job.get(name):
            checks.append((kind, job[name]))
    for name, kind in (("Out", "output"), ("Err", "error"), ("UserLog", "log")):
        if job.get(name) and job[name] != "/dev/null":
            checks.append((kind, job[name]))
    for path in (job.get("TransferInput") or "").split(","):
        if path:
            checks.append(("transfer_input", path.rstrip("/") or "/"))
    return checks
