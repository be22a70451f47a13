"""How jobs are written down: JSON for records and history, the snapshot's pickle by column.

An expression is kept unevaluated; in JSON it is the object {"$expr": text}.
The snapshot's encoding is awq.snapshot's; here are the version checks every
reader shares and the upgrades from older formats.

condor_q decodes records on every call: json, needed only for records and
history, is imported by the functions that use it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Callable, Dict, List

from awq import classad, snapshot
from awq.jobs import Job
from awq.spool.files import SpoolError

SNAPSHOT_VERSION = 3   # see awq.snapshot


class SnapshotDamaged(SpoolError):
    """The snapshot's bytes are not a whole snapshot (truncated, overwritten): an earlier
    generation may stand in for it. A snapshot that is refused for any other reason (a
    newer format, another owner) is never replaced silently."""

# format N -> format N+1, applied in turn on load; the next write saves the new format.
# (Formats 1 -> 2 -> 3 changed only the encoding: awq.snapshot reads them all.)
SNAPSHOT_UPGRADES: Dict[int, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    2: lambda state: dict(state, version=3),
}


# ---------------------------------------------------------------- JSON: records, history

def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"$expr"} or not isinstance(value["$expr"], str):
            raise ValueError("unexpected object value")
        return classad.Expr(value["$expr"])
    return value


def _expression_as_object(value: Any) -> Any:
    """json's hook for what it cannot encode itself: an expression (anything else raises)."""
    if isinstance(value, classad.Expr):
        return {"$expr": value.text}
    raise TypeError("%s is not a job attribute value" % type(value).__name__)


_job_encoder: Any = None   # made on first use: json stays out of condor_q's imports


def _encode_jobs_json(value: Any) -> bytes:
    """Jobs (or a document of them) as compact JSON; expressions as {"$expr": text}.

    The hook, not a copy of each job with its expressions encoded: json's C encoder
    then walks every job once."""
    global _job_encoder
    if _job_encoder is None:
        import json
        _job_encoder = json.JSONEncoder(separators=(",", ":"), default=_expression_as_object)
    return _job_encoder.encode(value).encode()


def encode_job_line(job: Job) -> bytes:
    """One history line."""
    return _encode_jobs_json(job) + b"\n"


def decode_job_line(line: bytes) -> Job:
    """A history line back into a job; ValueError (or a subclass) when it is torn or foreign."""
    import json
    raw = json.loads(line.decode("utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("a history line is not an object")
    return {k: _decode_value(v) for k, v in raw.items()}


def encode_jobs(job_list: List[Job]) -> bytes:
    """A submission record."""
    return _encode_jobs_json({"version": 1, "jobs": job_list})


def decode_jobs(data: bytes) -> List[Job]:
    """A submission record back into its jobs; SpoolError when it is not one."""
    import json
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise SpoolError("not a job record: %s" % err)
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise SpoolError("not a job record: no job list")
    result = []
    # The jobs of a record repeat most strings (Owner, Cmd, Iwd, ...). Equal ones become
    # one object: the table holds it once, and the snapshot's pickler writes it once and
    # refers to it after. Strings only: 1 == 1.0 == True would hand one type's value to
    # another.
    shared: Dict[str, str] = {}
    for raw in doc["jobs"]:
        if not isinstance(raw, dict):
            raise SpoolError("not a job record: a job is not an object")
        try:
            result.append({k: shared.setdefault(v, v) if type(v) is str
                           else _decode_value(v) for k, v in raw.items()})
        except (ValueError, classad.ClassAdError) as err:
            raise SpoolError("bad value in job record: %s" % err)
    return result


# ---------------------------------------------------------------- the snapshot

def encode_snapshot(state: Dict[str, Any]) -> bytes:
    """The master's table and extras, stamped with the format this code writes."""
    return snapshot.encode(dict(state, version=SNAPSHOT_VERSION))


def open_snapshot(data: bytes) -> snapshot.Columns:
    """The snapshot's columns, after the version checks every reader shares."""
    return open_snapshot_at(lambda offset, length: data[offset:offset + length], len(data))


def open_snapshot_at(read_at: Callable[[int, int], bytes], size: int) -> snapshot.Columns:
    """open_snapshot over a file read as its columns are asked for (snapshot.open_reader)."""
    try:
        columns = snapshot.open_reader(read_at, size)
    except snapshot.SnapshotError as err:
        raise SnapshotDamaged(str(err))
    version = columns.version
    if version > SNAPSHOT_VERSION:
        raise SpoolError("the job table snapshot was written by a newer alien-workqueue (format "
                         "%d; this one reads up to %d): run the newer version, or move the "
                         "snapshot aside; it was left untouched" % (version, SNAPSHOT_VERSION))
    return columns


def loads_snapshot(data: bytes) -> Dict[str, Any]:
    """The whole state the master saved, upgraded to the format this code writes."""
    columns = open_snapshot(data)
    try:
        state = columns.state()
    except snapshot.SnapshotError as err:
        raise SnapshotDamaged(str(err))
    version = columns.version
    while version < SNAPSHOT_VERSION:
        state = SNAPSHOT_UPGRADES[version](state)
        version = state["version"]
    return state
