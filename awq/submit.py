"""HTCondor's submit-description language -> job ads, as HTCondor 24 reads it.

Two steps, so condor_submit can validate before it takes a cluster id:
``parse_description`` checks the syntax (conditionals, include, every queue
form), ``build_jobs`` expands macros and produces one job ad per queued job (see
awq/jobs.py for the job model, awq/submit_commands.py for the command table,
awq/submit_queue.py for the queue statement's forms). Pure but for the files a
description names itself (include, `queue ... from FILE`, `queue ... matching`),
read through a SubmitFiles given by the caller (awq/submit_files.py, beside
SubmitError).
"""

from __future__ import annotations

import dataclasses
import posixpath
import random
import re
import signal
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from awq import classad, jobs
from awq import submit_commands as commands
from awq.jobs import Job
from awq.submit_files import MAX_LINE, NoFiles, SubmitError, SubmitFiles
from awq.submit_queue import (MAX_JOBS_PER_SUBMIT, Queue, item_list_lines, opens_item_list,
                              parse_queue)

MAX_MACRO_DEPTH = 32
MAX_INCLUDE_DEPTH = 16

# The HTCondor version `if version >= X.Y` compares with: the language implemented here.
LANGUAGE_VERSION = (24, 0, 24)

UNIVERSES = {"standard": 1, "vanilla": 5, "docker": 5, "container": 5, "scheduler": 7,
             "grid": 9, "java": 10, "parallel": 11, "local": 12, "vm": 13}

# Kept for callers that look a command's attribute up by name.
ATTRIBUTE_NAMES = {command: name for command, (name, _) in commands.COMMANDS.items()}
PATH_ATTRIBUTES = {name for name, kind in commands.COMMANDS.values() if kind == commands.PATH}
SPECIAL_COMMANDS = commands.SPECIAL

_KEY = re.compile(r"^(\+|MY\.)?([A-Za-z_][A-Za-z0-9_.]*)$", re.I)
# $(name), $(name:default), and the function macros; an argument holds no parenthesis, so
# the innermost is expanded first and the text is expanded again until nothing is left.
_MACRO = re.compile(r"(?<!\$)\$(ENV|INT|REAL|CHOICE|RANDOM_CHOICE|RANDOM_INTEGER|F[A-Za-z]*)?"
                    r"\(([^()]*)\)", re.I)
_PRINTF = re.compile(r"^%[-+ 0#]*\d{0,3}(?:\.\d{1,3})?[diouxXeEfgG]$")


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

def parse_description(text: str, append: Sequence[str] = (), cwd: Optional[str] = None,
                      queue_override: Optional[str] = None,
                      environ: Optional[Mapping[str, str]] = None) -> SubmitDescription:
    """Check the syntax; `append` lines go before the first queue statement. `cwd`, the
    directory condor_submit runs in, is where include and queue read files; without it
    they are refused."""
    files = SubmitFiles(cwd) if cwd is not None else NoFiles()
    parser = _Parser(files, environ or {})
    statements = list(parser.statements(text, 0))
    extra = [parser.statement(0, line) for line in append]
    if queue_override is not None:
        statements = [s for s in statements if not s.queue]
        statements.extend(extra + [parser.statement(0, "queue " + queue_override)])
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
    """Lines with their continuations joined: HTCondor drops the backslash and the next
    line's leading white space, and adds nothing between them."""
    if "\0" in text:
        raise SubmitError("the submit description contains a NUL character")
    pending: Optional[str] = None
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise SubmitError("line %d is longer than %d characters" % (number, MAX_LINE))
        if pending is None:
            start = number
            piece = line
        else:
            piece = pending + line.lstrip()
        stripped = piece.rstrip()
        if stripped.endswith("\\") and not stripped.lstrip().startswith("#"):
            pending = stripped[:-1]
            if len(pending) > MAX_LINE:
                raise SubmitError("line %d is longer than %d characters" % (start, MAX_LINE))
            continue
        yield start, piece
        pending = None
    if pending is not None:
        yield start, pending


_CONDITIONAL = re.compile(r"(?i)^(if|elif|else|endif)(?:\s+(.*))?$")
_INCLUDE = re.compile(r"(?i)^include\s*(command\s*)?:\s*(.*)$")


class _Parser:
    """Statements of a description, with conditionals decided and includes read as it goes:
    a condition sees the macros set above it, as in HTCondor."""

    def __init__(self, files: SubmitFiles, environ: Mapping[str, str]):
        self.files = files
        self.environ = environ
        self.settings: Dict[str, Tuple[str, str]] = {}

    def statements(self, text: str, depth: int) -> Iterator[Statement]:
        lines = iter(_logical_lines(text))
        # One entry per open `if`: (this branch is taken, a branch was taken, seen else).
        stack: List[List[bool]] = []
        for number, line in lines:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            conditional = _CONDITIONAL.match(stripped)
            if conditional and not re.match(r"(?i)^\w+\s*=", stripped):
                self._conditional(number, conditional.group(1).lower(),
                                  (conditional.group(2) or "").strip(), stack)
                continue
            if not all(frame[0] for frame in stack):
                if opens_item_list(stripped):
                    item_list_lines(number, stripped, lines)
                continue
            include = _INCLUDE.match(stripped)
            if include:
                yield from self._include(number, include, depth)
                continue
            if opens_item_list(stripped):
                stripped = item_list_lines(number, stripped, lines)
            statement = self.statement(number, stripped)
            if statement.queue is None:
                lower = statement.key.lower()
                self.settings["+" + lower[3:] if lower.startswith("my.") else lower] = \
                    (statement.key, statement.value)
            yield statement
        if stack:
            raise SubmitError("an 'if' has no 'endif' at the end of the submit description")

    def _conditional(self, number: int, word: str, condition: str,
                     stack: List[List[bool]]) -> None:
        where = "line %d" % number
        enclosing = all(frame[0] for frame in stack)
        if word == "if":
            taken = enclosing and self._condition(condition, where)
            stack.append([taken, taken, False])
            return
        if not stack:
            raise SubmitError("%s: '%s' without 'if'" % (where, word))
        frame = stack[-1]
        if word == "endif":
            stack.pop()
        elif frame[2]:
            raise SubmitError("%s: '%s' after 'else'" % (where, word))
        elif word == "else":
            frame[0], frame[2] = not frame[1], True
        else:
            outer = all(f[0] for f in stack[:-1])
            frame[0] = not frame[1] and outer and self._condition(condition, where)
            frame[1] = frame[1] or frame[0]

    def _condition(self, text: str, where: str) -> bool:
        macros = _Macros(self.settings, {}, self.environ)
        expanded = macros.expand(text).strip()
        negate = expanded.startswith("!")
        if negate:
            expanded = expanded[1:].strip()
        defined = re.match(r"(?i)^defined\s+([A-Za-z_][A-Za-z0-9_.]*)$", expanded)
        version = re.match(r"(?i)^version\s*(==|!=|>=|<=|>|<)\s*(\d+)\.(\d+)(?:\.(\d+))?$",
                           expanded)
        if defined:
            result = macros.value(defined.group(1), 0) is not None
        elif version:
            wanted = tuple(int(v) for v in version.group(2, 3)) + (int(version.group(4) or 0),)
            result = _ordered(version.group(1), LANGUAGE_VERSION, wanted)
        else:
            word = _boolean_word(expanded) if expanded else None
            if word is None:
                number = re.match(r"^-?\d+(\.\d*)?$", expanded)
                if not number:
                    raise SubmitError("%s: %r is not a valid if condition (HTCondor takes "
                                      "'defined NAME', 'version OP X.Y', or a boolean or number)"
                                      % (where, text[:80]))
                word = float(expanded) != 0
            result = word
        return result != negate

    def _include(self, number: int, include: "re.Match[str]", depth: int) -> Iterator[Statement]:
        where = "line %d" % number
        if include.group(1):
            raise SubmitError("%s: 'include command' is not supported: condor_submit runs no "
                              "command a description names" % where)
        name = include.group(2).strip()
        if not name:
            raise SubmitError("%s: include names no file" % where)
        if depth >= MAX_INCLUDE_DEPTH:
            raise SubmitError("%s: includes nested more than %d deep (a file includes itself?)"
                              % (where, MAX_INCLUDE_DEPTH))
        name = _Macros(self.settings, {}, self.environ).expand(name)
        yield from self.statements(self.files.read_text(name, "include file"), depth + 1)

    def statement(self, number: int, line: str) -> Statement:
        line = line.strip()
        where = ("line %d" % number) if number else "command-line argument"
        if re.match(r"(?i)^queue(\s|$)", line):
            return Statement(number, queue=parse_queue(line[5:].strip(), where, self.files))
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise SubmitError("Parse error in submit description at %s: %r is not a "
                              "'name = value' command" % (where, line[:80]))
        return Statement(number, key, value.strip())

def _ordered(op: str, left: Tuple[int, ...], right: Tuple[int, ...]) -> bool:
    return {"==": left == right, "!=": left != right, ">=": left >= right,
            "<=": left <= right, ">": left > right, "<": left < right}[op]


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
        for _ in range(MAX_MACRO_DEPTH):
            expanded = _MACRO.sub(lambda m: self._one(m, depth), text)
            if expanded == text:
                return expanded
            text = expanded
        raise SubmitError("macro expansion nested more than %d deep" % MAX_MACRO_DEPTH)

    def _one(self, match: "re.Match[str]", depth: int) -> str:
        kind, inside = (match.group(1) or "").upper(), match.group(2)
        if kind in ("", "ENV") or kind.startswith("F"):
            name, _, default = inside.partition(":")
            name = name.strip()
            if not re.match(r"^[A-Za-z0-9_.]+$", name):
                return match.group(0)
            if kind == "ENV":
                value = self.environ.get(name)
                # HTCondor writes UNDEFINED for a variable that is not set and has no default.
                return value if value is not None else (default if ":" in inside else "UNDEFINED")
            value = self.value(name, depth)
            if value is None:
                value = default
            return _filename_part(kind[1:].lower(), value) if kind else value
        arguments = [a.strip() for a in inside.split(",")]
        if kind in ("INT", "REAL"):
            return self._number(kind, arguments, depth)
        if kind == "CHOICE":
            return self._choice(arguments, depth)
        if kind == "RANDOM_CHOICE":
            if not arguments or not any(arguments):
                raise SubmitError("$RANDOM_CHOICE() needs a list of choices")
            return random.choice(arguments)
        return self._random_integer(arguments, depth)

    def value(self, name: str, depth: int) -> Optional[str]:
        lower = name.lower()
        if lower in self.builtins:
            return self.builtins[lower]
        if lower in self.settings:
            return self.expand(self.settings[lower][1], depth + 1)
        if lower.startswith("my.") and "+" + lower[3:] in self.settings:
            return self.expand(self.settings["+" + lower[3:]][1], depth + 1)
        return None

    def _evaluated(self, kind: str, text: str, depth: int) -> Any:
        """A macro's value, or the text itself, as a ClassAd expression (HTCondor's $INT)."""
        value = self.value(text, depth) if re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", text) else None
        source = value if value is not None else text
        try:
            result = classad.evaluate(source, {})
        except classad.ClassAdError:
            result = None
        if isinstance(result, bool) or not isinstance(result, (int, float)):
            raise SubmitError("$%s(): %s does not evaluate to a number" % (kind, text[:80]))
        return result

    def _number(self, kind: str, arguments: List[str], depth: int) -> str:
        if not arguments[0]:
            raise SubmitError("$%s() needs a macro name or an expression" % kind)
        evaluated = self._evaluated(kind, arguments[0], depth)
        form = arguments[1] if len(arguments) > 1 else ("%d" if kind == "INT" else "%.16G")
        if not _PRINTF.match(form):
            raise SubmitError("$%s(): %r is not a printf format for one number" % (kind, form))
        try:
            return form % (int(evaluated) if kind == "INT" else float(evaluated))
        except (TypeError, ValueError, OverflowError) as err:
            raise SubmitError("$%s(): %s" % (kind, err))

    def _choice(self, arguments: List[str], depth: int) -> str:
        if len(arguments) < 2:
            raise SubmitError("$CHOICE() needs an index and a list")
        index = self._evaluated("CHOICE", arguments[0], depth)
        choices = arguments[1:]
        if len(choices) == 1:
            listed = self.value(choices[0], depth)
            if listed is not None:
                choices = [c.strip() for c in listed.split(",")]
        if not isinstance(index, int) or not 0 <= index < len(choices):
            raise SubmitError("$CHOICE(): index %s is outside the list of %d"
                              % (arguments[0][:80], len(choices)))
        return choices[index]

    def _random_integer(self, arguments: List[str], depth: int) -> str:
        if len(arguments) not in (2, 3):
            raise SubmitError("$RANDOM_INTEGER() takes a minimum, a maximum and a step")
        low, high = (self._evaluated("RANDOM_INTEGER", a, depth) for a in arguments[:2])
        step = self._evaluated("RANDOM_INTEGER", arguments[2], depth) if len(arguments) == 3 else 1
        if not all(isinstance(v, int) for v in (low, high, step)) or step <= 0 or high < low:
            raise SubmitError("$RANDOM_INTEGER(): %s is not an integer range" % ",".join(arguments))
        return str(random.randrange(low, high + 1, step))


def _filename_part(letters: str, value: str) -> str:
    """$F(): parts of a path. p the directory, d its last component (dd the last two), n the
    name without extension, x the extension, q double quotes around the result; with no
    part letter the whole value. The value's own double quotes are dropped."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    directory, base = posixpath.split(value)
    stem, ext = posixpath.splitext(base)
    dirs = letters.count("d")
    if dirs:
        parts = [p for p in directory.split("/") if p]
        result = "".join(p + "/" for p in parts[-dirs:])
    elif "p" in letters:
        result = directory + "/" if directory else ""
    else:
        result = ""
    if "n" in letters:
        result += stem
    if "x" in letters:
        result += ext
    if not (dirs or set(letters) & set("pnx")):
        result = value
    return '"%s"' % result if "q" in letters else result


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
        for row, item in enumerate(queue.items if queue.items is not None else [""]):
            for step in range(queue.count):
                builtins = _builtins(cluster_id, len(result), step, row, item, queue.variables)
                # A loop variable named like a submit command is that command for this job:
                # `queue input, arguments from (...)` (HTCondor's manual; law submits this way).
                job_settings = dict(settings)
                for name in queue.variables if queue.items is not None else []:
                    if name.lower() in commands.ALL:
                        job_settings[name.lower()] = (name, builtins[name.lower()])
                macros = _Macros(job_settings, builtins, environ)
                result.append(_job(job_settings, macros, cluster_id, len(result), cwd, environ,
                                   owner, uid, now))
    return result


def _builtins(cluster: int, proc: int, step: int, row: int, item: str,
              variables: List[str]) -> Dict[str, str]:
    values = {"cluster": str(cluster), "clusterid": str(cluster), "process": str(proc),
              "procid": str(proc), "step": str(step), "row": str(row), "itemindex": str(row),
              "node": "#pArAlLeLnOdE#"}
    # Fields are separated by commas and/or white space; the last variable takes the rest.
    parts = re.split(r"[\s,]+", item.strip(), maxsplit=len(variables) - 1) \
        if len(variables) > 1 else [item]
    for index, name in enumerate(variables or ["Item"]):
        values[name.lower()] = parts[index] if index < len(parts) else ""
    return values


def _job(settings: Dict[str, Tuple[str, str]], macros: _Macros, cluster: int, proc: int,
         cwd: str, environ: Mapping[str, str], owner: str, uid: int, now: int) -> Job:
    def get(*names: str) -> Optional[str]:
        for name in names:
            if name in settings:
                return macros.expand(settings[name][1]).strip()
        return None

    job: Job = {"ClusterId": cluster, "ProcId": proc, "JobStatus": int(jobs.JobStatus.IDLE), "Owner": owner,
                "QDate": now, "EnteredCurrentStatus": now, "NumJobStarts": 0, "NumJobCompletions": 0,
                "JobPrio": 0,
                "MyType": "Job", "JobUniverse": 5, "RequestCpus": 1, "TransferExecutable": True}
    iwd = _absolute(get("initialdir", "initial_dir", "iwd") or cwd, cwd)
    job["Iwd"] = iwd
    for lower, (key, _) in settings.items():
        if lower.startswith("+"):
            _set_job_attribute(job, key, get(lower) or "")
        elif lower in commands.COMMANDS and commands.YIELDS_TO.get(lower) not in settings:
            _set_attribute(job, lower, get(lower) or "", iwd)
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
        # HTCondor resolves the executable against the submit directory, not initialdir.
        job["Cmd"] = _absolute(executable, cwd)
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
    _retries(job, get("retry_until"), settings)
    _accounting(job, owner, _boolean(get("nice_user") or "false", "nice_user"))
    _companions(job)
    return job


def _companions(job: Job) -> None:
    """What HTCondor adds, drops or bounds beside the attributes commands set one by one."""
    for name, companions in commands.COMPANIONS.items():
        if name in job:
            for companion, value in companions.items():
                job.setdefault(companion, value)
    for name, needed in commands.ONLY_WITH.items():
        if name in job and needed not in job:
            del job[name]
    if job["JobUniverse"] != UNIVERSES["grid"]:
        job.pop("GridResource", None)
    lease = job.get("JobLeaseDuration")
    if isinstance(lease, int) and 0 < lease < commands.MIN_JOB_LEASE:
        job["JobLeaseDuration"] = commands.MIN_JOB_LEASE
    for name in ("KillSig", "HoldKillSig", "RemoveKillSig"):
        if isinstance(job.get(name), str) and job[name].isdigit():
            job[name] = _signal_name(int(job[name]))


def _signal_name(number: int) -> str:
    """HTCondor stores a signal given by number under its name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        raise SubmitError("%d is not a signal number" % number)


def _retries(job: Job, retry_until: Optional[str], settings: Mapping[str, Any]) -> None:
    """max_retries, retry_until and success_exit_code: HTCondor rewrites OnExitRemove so that
    a job is run again until it succeeds or has run JobMaxRetries + 1 times."""
    if not (retry_until or "max_retries" in settings or "success_exit_code" in settings):
        return
    job.setdefault("JobMaxRetries", 2)
    success = "JobSuccessExitCode" if "JobSuccessExitCode" in job else "0"
    terms = ["NumJobCompletions > JobMaxRetries", "ExitCode is %s" % success]
    if retry_until:
        if re.match(r"^-?\d+$", retry_until):
            terms.append("ExitCode is %d" % int(retry_until))
        else:
            terms.append(classad.unparse(_expression(retry_until, "retry_until")))
    elif "OnExitRemove" in job:
        terms.append(classad.unparse(job["OnExitRemove"]))
    job["OnExitRemove"] = classad.Expr(" || ".join(terms))


def _accounting(job: Job, owner: str, nice_user: bool) -> None:
    """AccountingGroup is group.user, the user being the submitter unless named."""
    if "AcctGroup" in job:
        job.setdefault("AcctGroupUser", owner)
        job["AccountingGroup"] = "%s.%s" % (job["AcctGroup"], job["AcctGroupUser"])
    elif "AcctGroupUser" in job:
        job["AccountingGroup"] = job["AcctGroupUser"]
    elif nice_user:
        job["AccountingGroup"] = "nice-user.%s" % owner


def _set_job_attribute(job: Job, key: str, value: str) -> None:
    """`+Name = expr` and `MY.Name = expr`: a job attribute, any name."""
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


def _set_attribute(job: Job, command: str, value: str, iwd: str) -> None:
    name, kind = commands.COMMANDS[command]
    if not value:
        job.pop(name, None)  # HTCondor reads `command =` (empty) as unset, e.g. Parsl's requirements
    elif kind == commands.PATH:
        job[name] = _absolute(value, iwd)
    elif kind == commands.PATH_LIST:
        job[name] = ",".join(_absolute(p, iwd) + ("/" if p.endswith("/") else "")
                             for p in _list(value))
    elif kind == commands.LIST:
        job[name] = ",".join(_list(value))
    elif kind == commands.LOWER_LIST:
        job[name] = ",".join(_list(value.lower()))
    elif kind == commands.KEYWORD:
        job[name] = value.upper()
    elif kind == commands.QUOTED_STRING:
        job[name] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    elif kind == commands.BOOLEAN:
        job[name] = _boolean(value, command)
    elif kind in (commands.MEGABYTES, commands.KILOBYTES):
        job[name] = _size(value, command, "MB" if kind == commands.MEGABYTES else "KB")
    elif kind == commands.EXPRESSION:
        job[name] = _expression(value, command)
    elif kind == commands.INTEGER:
        if not re.match(r"^-?\d+$", value):
            raise SubmitError("%s must be an integer, not %r" % (command, value[:80]))
        job[name] = int(value)
    elif kind == commands.NOTIFICATION:
        if value.lower() not in commands.NOTIFICATIONS:
            raise SubmitError("notification must be never, always, complete or error, not %r"
                              % value[:80])
        job[name] = commands.NOTIFICATIONS[value.lower()]
    else:
        job[name] = value


def _list(value: str) -> List[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


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
    """The submitter's variables `getenv` imports, as HTCondor 24's condor_submit picks them.

    A value that is a ClassAd expression giving a boolean or a number (`true`, `1`,
    `!false`) is every variable when true or non-zero, none otherwise; anything else is a
    match list (names split at commas, semicolons and white space, compared without case;
    `*` as in _name_matches; `!NAME` excludes, and a list of exclusions alone starts from
    every variable). A value with a newline cannot be written into the job ad: HTCondor
    skips that variable.
    """
    try:
        switch = classad.evaluate(getenv, {})
    except classad.ClassAdError:
        switch = None   # not an expression: a match list
    if isinstance(switch, (bool, int, float)):
        if not classad.is_true(switch):
            return {}
        wanted, unwanted = ["*"], []
    else:
        members = [m.lower() for m in re.split(r"[\s,;]+", getenv) if m]
        unwanted = [m[1:] for m in members if m.startswith("!")]
        wanted = [m for m in members if not m.startswith("!")] or ["*"]
    chosen: Dict[str, str] = {}
    for name, value in environ.items():
        if "\n" in value:
            continue
        lower = name.lower()
        if (any(_name_matches(lower, p) for p in wanted)
                and not any(_name_matches(lower, p) for p in unwanted)):
            chosen[name] = value
    return chosen


def _name_matches(name: str, pattern: str) -> bool:
    """HTCondor's wildcard: one `*` anywhere (prefix*suffix), or two when the second ends
    the pattern (prefix*middle*: the middle anywhere after the prefix). `?`, `[` and any
    other character are literal; any other placement of `*` matches nothing."""
    stars = pattern.count("*")
    if stars == 0:
        return name == pattern
    if stars == 1:
        prefix, suffix = pattern.split("*")
        return (len(name) >= len(prefix) + len(suffix) and name.startswith(prefix)
                and name.endswith(suffix))
    if stars == 2 and pattern.endswith("*"):
        prefix, middle = pattern[:-1].split("*")
        return name.startswith(prefix) and middle in name[len(prefix):]
    return False


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
