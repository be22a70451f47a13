"""The job table snapshot's encoding: bytes in, plain data out, no file I/O.

The snapshot is a pickle (DESIGN.md: the user asked for pickle). Format 2
stores the table by column, so a reader pays only for the attributes it asks
for: `condor_q -constraint 'JobStatus==1' | wc -l` unpickles the JobStatus
column of a 100,000-job table and nothing else. The pickle holds::

    {"version": 2, "count": N, "columns": [[name, plain], ...],
     "data": {name: pickled list, one value per job, None where the job lacks
              the attribute}, ...the master's extras (max_cluster_id, ...)}

An expression is stored as ["$expr", text], an undefined or error value as
["$special", name], a list as [items..., "$list"]: the columns hold plain
data only ("plain" says a column holds no such entry), and the unpickler
refuses every class but those format 1 used. The C unpickler is used
directly: the pickle module would import re, which costs a query tool more
than its work. Format 1 (a pickle of {"jobs": {(C, P): job}}) is still read.
"""

from __future__ import annotations

import io
import operator

from awq import classad

try:
    import _pickle as _pickle_impl
except ImportError:  # not CPython
    import pickle as _pickle_impl  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Tuple

FORMAT = 2
PROTOCOL = 4                 # read by every Python 3 since 3.4
_PLAIN = (str, int, float, bool)
_PLAIN_OR_NONE = frozenset(_PLAIN + (type(None),))


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
            ) -> Tuple[List[Any], bool]:
    """The column of one attribute, and whether it holds plain values only."""
    if everyone_has_it:
        column = list(map(operator.itemgetter(name), job_list))   # C speed: most columns
    else:
        column = [job.get(name) for job in job_list]
    if set(map(type, column)) <= _PLAIN_OR_NONE:
        return column, True
    return [value if type(value) in _PLAIN or value is None else _encode_value(value)
            for value in column], False


# ---------------------------------------------------------------- writing

def encode(state: Dict[str, Any]) -> bytes:
    """state: {"jobs": {(C, P): job}, ...plain extras}; jobs are stored in job id order."""
    table = state["jobs"]
    job_list = [table[jid] for jid in sorted(table)]
    shapes = list(dict.fromkeys(map(tuple, job_list)))   # the distinct lists of names
    names = list(dict.fromkeys(name for shape in shapes for name in shape))
    common = set(shapes[0]).intersection(*shapes[1:]) if shapes else set()
    columns, data = [], {}
    for name in names:
        column, plain = _column(job_list, name, name in common)
        columns.append([name, plain])
        data[name] = _pickle_impl.dumps(column, PROTOCOL)
    outer = {key: value for key, value in state.items() if key != "jobs"}
    outer.setdefault("version", FORMAT)
    outer.update(count=len(job_list), columns=columns, data=data)
    return _pickle_impl.dumps(outer, PROTOCOL)


# ---------------------------------------------------------------- reading

class Columns:
    """A format-2 snapshot opened for reading: each column unpickled when first asked for."""

    def __init__(self, outer: Dict[str, Any]):
        self.header = {key: value for key, value in outer.items() if key != "data"}
        self.version: int = outer["version"]
        if self.version > FORMAT:
            return  # the caller refuses it, with the version in the message
        try:
            self.count: int = int(outer["count"])
            self._names = [str(name) for name, _ in outer["columns"]]
            self._plain = {str(name) for name, plain in outer["columns"] if plain is True}
            self._data: Dict[str, bytes] = outer["data"]
            if not all(isinstance(self._data[name], bytes) for name in self._names):
                raise TypeError("a column is not bytes")
        except (KeyError, TypeError, ValueError) as err:
            raise SnapshotError("the job table snapshot is damaged: %s" % err)
        self._loaded: Dict[str, List[Any]] = {}

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
        blob = self._data.get(name)
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
                 if key not in ("count", "columns")}
        state["jobs"] = self.jobs()
        return state


def open_columns(data: bytes) -> Columns:
    """A reader for either format (format 1 is converted in memory)."""
    try:
        outer = _loads(data)
    except Exception as err:  # whatever a damaged pickle raises
        raise SnapshotError("the job table snapshot is unreadable: %s" % err)
    version = outer.get("version") if isinstance(outer, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError("the job table snapshot has an unknown format")
    if version == 1:
        if not isinstance(outer.get("jobs"), dict):
            raise SnapshotError("the job table snapshot has an unknown format")
        outer = _loads(encode(dict(outer, version=FORMAT)))
    return Columns(outer)
