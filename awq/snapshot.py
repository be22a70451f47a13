"""The job table snapshot's encoding: bytes in, plain data out, no file I/O.

The snapshot is a pickle (DESIGN.md: the user asked for pickle). Format 3
stores the table by column, each column a pickle of its own at an offset a
small header names, so a reader reads and unpickles only the attributes it
asks for: `condor_q -constraint 'JobStatus==1' | wc -l` reads the header
and the JobStatus column of a 100,000-job table and nothing else, not the
environments and paths that are most of its bytes. The file is::

    header: a pickle of {"version": 3, "count": N, "body": B,
                         "columns": [[name, plain, offset, length], ...],
                         ...the master's extras (max_cluster_id, records, ...)}
    body:   B bytes right after the header; a column is the pickled list at
            body[offset:offset + length], one value per job, None where the job
            lacks the attribute

The header's "hints" (optional: a reader does without) describe the columns so a
reader need not scan them: "kinds" {name: the type names its values have},
"same" {name: the one value every job holds}, and "id_texts" [offset, length]:
a pickled string of each job's "C.P", one a line, present when every
ClusterId and ProcId is an int (condor_q's ID column, not made per job).

An expression is stored as ["$expr", text], an undefined or error value as
["$special", name], a list as [items..., "$list"]: the columns hold plain
data only ("plain" says a column holds no such entry), and the unpickler
refuses every class but those format 1 used. The C unpickler is used
directly: the pickle module would import re, which costs a query tool more
than its work. A file shorter or longer than its header says is damaged.
Format 2 (one pickle, the columns' pickles in its "data" entry) and format 1
(a pickle of {"jobs": {(C, P): job}}) are still read.
"""

from __future__ import annotations

import io
# The C module operator.py re-exports: importing operator.py costs a query tool's start
# more than the functions taken from it.
import _operator as operator
import sys

from awq import classad


def _import_pickle() -> Any:
    """The C pickle module. Its start imports functools (and so collections) for one name,
    functools.partial, which is _functools.partial: a stand-in module holding that one
    name is what _pickle finds while it starts, and functools is left to import for real
    for whoever asks for it next: those imports cost a query tool's start more than its
    work."""
    try:
        import _functools
    except ImportError:   # not CPython
        _functools = None
    stand_in = None
    if _functools is not None and "functools" not in sys.modules:
        stand_in = type(sys)("functools")
        stand_in.partial = _functools.partial
        sys.modules["functools"] = stand_in
    try:
        import _pickle
        return _pickle
    except ImportError:   # not CPython
        import pickle
        return pickle
    finally:
        if stand_in is not None and sys.modules.get("functools") is stand_in:
            del sys.modules["functools"]


_pickle_impl = _import_pickle()

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

    ReadAt = Callable[[int, int], bytes]   # (offset, length) -> those bytes of the file

FORMAT = 3
PROTOCOL = 4                 # read by every Python 3 since 3.4
_PLAIN = (str, int, float, bool)
_PLAIN_OR_NONE = frozenset(_PLAIN + (type(None),))
_PLAIN_BY_NAME = {kind.__name__: kind for kind in _PLAIN_OR_NONE}


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version can read; the message says why."""


class _Unpickler(_pickle_impl.Unpickler):
    """Plain data, and the few classes format 1 held: nothing else is ever loaded."""

    ALLOWED = {("awq.classad", "Expr"), ("awq.classad", "UNDEFINED"), ("awq.classad", "ERROR"),
               ("builtins", "set"), ("builtins", "frozenset"), ("awq.jobs", "JobStatus")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise SnapshotError("%s.%s is not allowed in a snapshot" % (module, name))
        return super().find_class(module, name)


def _loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


def _load_header(data: bytes) -> Tuple[Any, int]:
    """The first pickle in data, and where it ends."""
    stream = io.BytesIO(data)
    return _Unpickler(stream).load(), stream.tell()


# ---------------------------------------------------------------- values

def _encode_value(value: Any) -> Any:
    if isinstance(value, classad.Expr):
        return ["$expr", value.text]
    if value is classad.UNDEFINED or value is classad.ERROR:
        return ["$special", "undefined" if value is classad.UNDEFINED else "error"]
    if isinstance(value, (list, tuple)):
        return [_encode_value(item) for item in value] + ["$list"]
    return value


def decode_value(value: Any) -> Any:
    """A column entry back to the job's value (plain values are themselves)."""
    if type(value) is not list:
        return value
    if len(value) == 2 and value[0] == "$expr":
        return classad.Expr.trusted(value[1])
    if len(value) == 2 and value[0] == "$special":
        return classad.UNDEFINED if value[1] == "undefined" else classad.ERROR
    if value and value[-1] == "$list":
        return [decode_value(item) for item in value[:-1]]
    raise SnapshotError("unexpected value in the job table snapshot: %r" % (value,))


def _column(job_list: Sequence[Dict[str, Any]], name: str, everyone_has_it: bool
            ) -> Tuple[List[Any], bool, Set[type]]:
    """The column of one attribute, whether it holds plain values only, and their types."""
    if everyone_has_it:
        column = list(map(operator.itemgetter(name), job_list))   # C speed: most columns
    else:
        column = [job.get(name) for job in job_list]
    kinds = set(map(type, column))
    if kinds <= _PLAIN_OR_NONE:
        return column, True, kinds
    return [value if type(value) in _PLAIN or value is None else _encode_value(value)
            for value in column], False, kinds


# The ID texts the last snapshots held, by job id: most jobs outlive many snapshots, and a
# lookup costs the master less than formatting the text again.
_id_texts_made: Dict[Tuple[int, int], str] = {}


def _id_texts(job_ids: List[Tuple[int, int]]) -> str:
    """Each job's "C.P", one a line."""
    global _id_texts_made
    made = _id_texts_made
    texts = list(map(made.get, job_ids))
    if None in texts:
        for position, text in enumerate(texts):
            if text is None:
                job_id = job_ids[position]
                texts[position] = made[job_id] = "%d.%d" % job_id
    if len(made) > 2 * len(job_ids) + 1024:   # mostly jobs gone: keep only the table's
        _id_texts_made = dict(zip(job_ids, texts))
    return "\n".join(texts)


def _same_value(column: List[Any], kinds: Set[type]) -> Optional[Tuple[Any]]:
    """(value,) when every entry is that one value (of one type: 1 == 1.0 == True)."""
    if len(kinds) != 1 or not column or not _PLAIN_OR_NONE.issuperset(kinds):
        return None
    first = column[0]
    if first is not column[-1] and first != column[-1]:
        return None
    return (first,) if column.count(first) == len(column) else None


# ---------------------------------------------------------------- writing

def encode(state: Dict[str, Any]) -> bytes:
    """state: {"jobs": {(C, P): job}, ...plain extras}; jobs are stored in job id order."""
    table = state["jobs"]
    job_list = [table[jid] for jid in sorted(table)]
    shapes = list(dict.fromkeys(map(tuple, job_list)))   # the distinct lists of names
    names = list(dict.fromkeys(name for shape in shapes for name in shape))
    common = set(shapes[0]).intersection(*shapes[1:]) if shapes else set()
    columns, blobs, offset = [], [], 0
    kinds_of: Dict[str, List[str]] = {}
    same: Dict[str, Any] = {}
    id_columns: Dict[str, List[Any]] = {}
    for name in names:
        column, plain, kinds = _column(job_list, name, name in common)
        if name in ("ClusterId", "ProcId"):
            id_columns[name] = column
        blob = _pickle_impl.dumps(column, PROTOCOL)
        columns.append([name, plain, offset, len(blob)])
        blobs.append(blob)
        offset += len(blob)
        if plain:
            kinds_of[name] = sorted(kind.__name__ for kind in kinds)
            value = _same_value(column, kinds)
            if value is not None:
                same[name] = value[0]
    hints: Dict[str, Any] = {"kinds": kinds_of, "same": same}
    if kinds_of.get("ClusterId") == ["int"] and kinds_of.get("ProcId") == ["int"]:
        blob = _pickle_impl.dumps(
            _id_texts(list(zip(id_columns["ClusterId"], id_columns["ProcId"]))), PROTOCOL)
        hints["id_texts"] = [offset, len(blob)]
        blobs.append(blob)
        offset += len(blob)
    header = {key: value for key, value in state.items() if key != "jobs"}
    header.setdefault("version", FORMAT)
    header.update(count=len(job_list), columns=columns, body=offset, hints=hints)
    return b"".join([_pickle_impl.dumps(header, PROTOCOL)] + blobs)


# ---------------------------------------------------------------- reading

class Columns:
    """A snapshot opened for reading: each column read and unpickled when first asked for.

    read_at(offset, length): the body's bytes (format 3); None for format 2, whose
    columns' pickles are in the header's "data"."""

    def __init__(self, outer: Dict[str, Any], read_at: Optional[ReadAt] = None):
        self.header = {key: value for key, value in outer.items() if key != "data"}
        self.version: int = outer["version"]
        if self.version > FORMAT:
            return  # the caller refuses it, with the version in the message
        self._read_at = read_at
        try:
            self.count: int = int(outer["count"])
            if read_at is None:
                self._names = [str(name) for name, _ in outer["columns"]]
                self._plain = {str(name) for name, plain in outer["columns"] if plain is True}
                self._data: Dict[str, bytes] = outer["data"]
                if not all(isinstance(self._data[name], bytes) for name in self._names):
                    raise TypeError("a column is not bytes")
            else:
                body = int(outer["body"])
                self._names = [str(entry[0]) for entry in outer["columns"]]
                self._plain = {str(entry[0]) for entry in outer["columns"] if entry[1] is True}
                self._spans: Dict[str, Tuple[int, int]] = {
                    str(name): (int(offset), int(length))
                    for name, _, offset, length in outer["columns"]}
                if any(offset < 0 or length < 0 or offset + length > body
                       for offset, length in self._spans.values()):
                    raise ValueError("a column lies outside the file")
        except (KeyError, TypeError, ValueError) as err:
            raise SnapshotError("the job table snapshot is damaged: %s" % err)
        self._loaded: Dict[str, List[Any]] = {}
        self._kinds: Dict[str, frozenset] = {}
        self._same: Dict[str, Any] = {}
        self._id_span: Optional[Tuple[int, int]] = None   # where id_texts are
        self._id_lines: Optional[IdLines] = None
        hints = outer.get("hints")
        if read_at is not None and isinstance(hints, dict):
            self._read_hints(hints, int(outer["body"]))

    def _read_hints(self, hints: Dict[str, Any], body: int) -> None:
        """What the writer knew of its columns; a hint that is not as written is ignored
        (the reader scans the column instead)."""
        kinds, same, span = hints.get("kinds"), hints.get("same"), hints.get("id_texts")
        if isinstance(kinds, dict):
            for name, type_names in kinds.items():
                if name in self._plain and isinstance(type_names, list) \
                        and all(kind in _PLAIN_BY_NAME for kind in type_names):
                    self._kinds[name] = frozenset(map(_PLAIN_BY_NAME.__getitem__, type_names))
        if isinstance(same, dict):
            self._same = {name: value for name, value in same.items()
                          if self._kinds.get(name) == frozenset((type(value),))}
        if isinstance(span, list) and len(span) == 2 and all(type(n) is int for n in span) \
                and 0 <= span[0] and 0 <= span[1] and span[0] + span[1] <= body:
            self._id_span = (span[0], span[1])

    def kinds(self, name: str) -> Optional[frozenset]:
        """The types of a column's values (NoneType where a job lacks it), or None when
        the snapshot does not say."""
        if name not in self._names:
            return frozenset((type(None),))
        return self._kinds.get(name)

    def same(self, name: str) -> Optional[Tuple[Any]]:
        """(value,) when the snapshot says every job holds that one value, else None."""
        return (self._same[name],) if name in self._same else None

    def id_texts(self) -> Optional[List[str]]:
        """Each job's "C.P" (its ClusterId and ProcId), when the writer stored them."""
        lines = self.id_lines()
        return None if lines is None else lines.between(0, self.count)

    def id_lines(self) -> Optional[IdLines]:
        """The jobs' "C.P" texts, handed out a few rows at a time (see IdLines), when the
        writer stored them."""
        if self._id_span is None:
            return None
        if self._id_lines is None:
            self._id_lines = self._read_id_lines()
        return self._id_lines

    def _read_id_lines(self) -> IdLines:
        try:
            texts = _loads(self._read_at(*self._id_span))
        except Exception as err:  # whatever a damaged pickle raises
            raise SnapshotError("the job table snapshot's job ids are unreadable: %s" % err)
        if not isinstance(texts, str) or \
                (texts.count("\n") + 1 if self.count else len(texts)) != self.count:
            raise SnapshotError("the job table snapshot's job ids are damaged")
        return IdLines(texts, self.count)

    @property
    def names(self) -> List[str]:
        return list(self._names)

    def plain(self, name: str) -> bool:
        """True if the column holds plain values only (str, int, float, bool or None)."""
        return name in self._plain

    def raw_column(self, name: str) -> Optional[List[Any]]:
        """Column entries as stored (see decode_value); None if no job has the attribute."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._same:   # one value throughout: nothing to read
            column = self._loaded[name] = [self._same[name]] * self.count
            return column
        if self._read_at is None:
            blob = self._data.get(name)
        else:
            span = self._spans.get(name)
            blob = None if span is None else self._read_at(*span)
        if blob is None:
            return None
        try:
            column = _loads(blob)
        except Exception as err:  # whatever a damaged pickle raises
            raise SnapshotError("the job table snapshot's column %s is unreadable: %s"
                                % (name, err))
        if not isinstance(column, list) or len(column) != self.count:
            raise SnapshotError("the job table snapshot's column %s is damaged" % name)
        self._loaded[name] = column
        return column

    def jobs(self) -> Dict[Any, Dict[str, Any]]:
        """Every job as a dict, keyed by (ClusterId, ProcId): what the master restores."""
        job_list: List[Dict[str, Any]] = [{} for _ in range(self.count)]
        for name in self._names:
            for job, value in zip(job_list, self.raw_column(name)):
                if value is not None:
                    job[name] = decode_value(value)
        table = {}
        for job in job_list:
            try:
                table[(job["ClusterId"], job["ProcId"])] = job
            except KeyError:
                raise SnapshotError("the job table snapshot holds a job without an id")
        return table

    def state(self) -> Dict[str, Any]:
        """The state the master saved: its extras and {"jobs": {(C, P): job}}."""
        state = {key: value for key, value in self.header.items()
                 if key not in ("count", "columns", "body", "hints")}
        state["jobs"] = self.jobs()
        return state


class IdLines:
    """The snapshot's "C.P" lines, split a range of rows at a time, in order: condor_q's
    table takes them a chunk at a time and never holds a string per job for the whole
    queue (every page a query tool touches for the first time costs it more than the
    text on it)."""

    __slots__ = ("_text", "_count", "_row", "_at", "_width")

    def __init__(self, text: str, count: int):
        self._text = text
        self._count = count
        self._row = 0      # the next row's line starts at self._at
        self._at = 0
        self._width = len(text) // count + 2 if count else 1   # a line's length, and some

    def between(self, start: int, stop: int) -> List[str]:
        """The lines of rows start (included) to stop (excluded); quickest when each call
        starts where the one before stopped."""
        stop = min(stop, self._count)
        if start >= stop:
            return []
        if start < self._row:
            self._row = self._at = 0
        if start > self._row:
            self._take(start - self._row)
        return self._take(stop - start)

    def _take(self, rows: int) -> List[str]:
        text, at = self._text, self._at
        window = rows * self._width
        while True:
            part = text[at:at + window]
            lines = part.split("\n", rows)
            if len(lines) > rows:
                self._at = at + len(part) - len(lines.pop())   # the rest, after the rows
                break
            if at + window >= len(text):
                self._at = len(text) + 1   # past the last line's (missing) newline
                break
            window *= 2   # a line longer than most: look further
        self._row += len(lines)
        return lines


def open_columns(data: bytes) -> Columns:
    """A reader for any format, over the whole file's bytes (format 1 is converted in
    memory)."""
    body = memoryview(data)
    return open_reader(lambda offset, length: bytes(body[offset:offset + length]), len(data))


# What a reader reads first: the header of a snapshot holding a few thousand records' names.
HEADER_GUESS = 64 * 1024


def open_reader(read_at: ReadAt, size: int) -> Columns:
    """A reader for any format that reads the file's bytes only as asked for: the header
    first, then each column when it is first wanted. read_at(offset, length) returns those
    bytes of the file, size is its length."""
    head = read_at(0, min(size, HEADER_GUESS))
    try:
        outer, end = _load_header(head)
    except Exception as err:  # whatever a damaged or cut pickle raises
        if len(head) == size:
            raise SnapshotError("the job table snapshot is unreadable: %s" % err)
        head = read_at(0, size)   # a longer header, or an older format: one pickle
        try:
            outer, end = _load_header(head)
        except Exception as err:
            raise SnapshotError("the job table snapshot is unreadable: %s" % err)
    version = outer.get("version") if isinstance(outer, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError("the job table snapshot has an unknown format")
    if version == 1:
        if not isinstance(outer.get("jobs"), dict):
            raise SnapshotError("the job table snapshot has an unknown format")
        return open_columns(encode(dict(outer, version=FORMAT)))
    if version > FORMAT or "body" not in outer:
        return Columns(outer)   # format 2 (or newer: refused by the caller)
    body = outer["body"]
    if not isinstance(body, int) or end + body != size:
        raise SnapshotError("the job table snapshot is damaged: %d bytes, its header says %s"
                            % (size, "%d" % (end + body) if isinstance(body, int) else "?"))
    return Columns(outer, lambda offset, length: read_at(end + offset, length))
