"""The snapshot's column format (awq.snapshot): round trips, and reads only what is asked."""

from __future__ import annotations

import pickle

import pytest

from awq import classad, snapshot
from awq.jobset import JobSet


def table() -> dict:
    return {
        (2, 0): {"ClusterId": 2, "ProcId": 0, "JobStatus": 2, "Owner": "bob",
                 "PeriodicRemove": classad.Expr("JobStatus == 5"), "Tags": ["a", 1, ["b"]],
                 "Odd": classad.UNDEFINED, "Ratio": 0.5, "Flag": False},
        (1, 0): {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "Owner": "alice",
                 "Trap": ["$expr", "x"], "Err": classad.ERROR},
        (1, 1): {"ClusterId": 1, "ProcId": 1, "JobStatus": 1},
    }


def test_every_value_comes_back_as_it_was_in_job_id_order():
    data = snapshot.encode({"jobs": table(), "max_cluster_id": 9, "written": 1.5})
    state = snapshot.open_columns(data).state()
    assert state["jobs"] == table() and list(state["jobs"]) == [(1, 0), (1, 1), (2, 0)]
    assert state["max_cluster_id"] == 9 and state["written"] == 1.5
    assert state["version"] == snapshot.FORMAT
    restored = state["jobs"][(2, 0)]
    assert isinstance(restored["PeriodicRemove"], classad.Expr)
    assert restored["Odd"] is classad.UNDEFINED and state["jobs"][(1, 0)]["Err"] is classad.ERROR
    assert "Owner" not in state["jobs"][(1, 1)]   # absent stays absent


def test_a_reader_decodes_only_the_columns_it_asks_for():
    outer = pickle.loads(snapshot.encode({"jobs": table()}))
    assert outer["version"] == 2 and set(outer["data"]) >= {"Owner", "JobStatus"}
    outer["data"]["Owner"] = b"\xff" * 40     # Owner's column ruined
    damaged = snapshot.open_columns(pickle.dumps(outer))
    assert damaged.raw_column("JobStatus") == [1, 1, 2]
    with pytest.raises(snapshot.SnapshotError, match="column Owner"):
        damaged.raw_column("Owner")


def test_columns_say_whether_they_hold_plain_values_only():
    columns = snapshot.open_columns(snapshot.encode({"jobs": table()}))
    assert columns.plain("JobStatus") and columns.plain("Owner")
    assert not columns.plain("PeriodicRemove") and not columns.plain("Tags")
    job_set = JobSet(columns)
    assert job_set.column("owner") == ["alice", None, "bob"]   # names are case-insensitive
    assert job_set.column("PeriodicRemove")[2] == classad.Expr("JobStatus == 5")
    assert job_set.ad(1) == table()[(1, 1)]


@pytest.mark.parametrize("data, message", [
    (b"", "unreadable"),
    (b"garbage", "unreadable"),
    (pickle.dumps({"version": 2, "count": 1}), "damaged"),
    (pickle.dumps({"version": 2, "count": 1, "columns": [["A", True]], "data": {"A": 5}}),
     "damaged"),
    (pickle.dumps({"version": 2, "count": 2, "columns": [["A", True]],
                   "data": {"A": pickle.dumps([1])}}), "column A is damaged"),
    (pickle.dumps(["not", "a", "dict"]), "unknown format"),
])
def test_damaged_bytes_are_a_clear_error(data, message):
    with pytest.raises(snapshot.SnapshotError, match=message):
        snapshot.open_columns(data).state()


def test_a_snapshot_naming_any_other_class_is_refused():
    evil = pickle.dumps({"version": 2, "count": 0, "columns": [], "data": {}, "x": complex(1, 2)})
    with pytest.raises(snapshot.SnapshotError, match="builtins.complex is not allowed"):
        snapshot.open_columns(evil)
