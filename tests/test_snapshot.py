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


def _reader(data: bytes, asked: list):
    """open_reader over data, noting each (offset, length) it reads."""
    def read_at(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return data[offset:offset + length]
    return snapshot.open_reader(read_at, len(data))


def test_a_reader_reads_and_decodes_only_the_columns_it_asks_for():
    big = {(c, 0): {"ClusterId": c, "ProcId": 0, "JobStatus": 1, "Environment": "A=%0500d" % c}
           for c in range(1, 2001)}
    data = snapshot.encode({"jobs": big})
    asked: list = []
    columns = _reader(data, asked)
    assert columns.raw_column("JobStatus") == [1] * 2000
    assert sum(length for _, length in asked) < len(data) // 10   # not the environments
    header = pickle.loads(data)   # the file starts with a pickle: its header
    assert header["version"] == 3 and [c[0] for c in header["columns"]] == [
        "ClusterId", "ProcId", "JobStatus", "Environment"]


def test_a_ruined_column_spoils_only_itself():
    data = bytearray(snapshot.encode({"jobs": table()}))
    header = pickle.loads(bytes(data))
    end = len(data) - header["body"]
    _, _, offset, length = [c for c in header["columns"] if c[0] == "Owner"][0]
    data[end + offset:end + offset + length] = b"\xff" * length     # Owner's column ruined
    damaged = snapshot.open_columns(bytes(data))
    assert damaged.raw_column("JobStatus") == [1, 1, 2]
    with pytest.raises(snapshot.SnapshotError, match="column Owner"):
        damaged.raw_column("Owner")


@pytest.mark.parametrize("cut", [1, 100])
def test_a_file_shorter_or_longer_than_its_header_says_is_damaged(cut):
    data = snapshot.encode({"jobs": table()})
    for wrong in (data[:-cut], data + b"x" * cut):
        with pytest.raises(snapshot.SnapshotError, match="damaged|unreadable"):
            snapshot.open_columns(wrong)


def test_a_header_longer_than_the_first_read_is_read_whole():
    records = ["%d.job" % n for n in range(20000)]    # the names of the records it holds
    data = snapshot.encode({"jobs": table(), "records": records})
    assert len(pickle.dumps(records)) > snapshot.HEADER_GUESS
    columns = _reader(data, [])
    assert columns.header["records"] == records and columns.raw_column("JobStatus") == [1, 1, 2]


def test_a_format_2_snapshot_one_pickle_is_still_read():
    jobs = table()
    data = snapshot.encode({"jobs": jobs, "max_cluster_id": 2})
    new = snapshot.open_columns(data)
    old = pickle.dumps({"version": 2, "count": new.count, "max_cluster_id": 2,
                        "columns": [[name, new.plain(name)] for name in new.names],
                        "data": {name: pickle.dumps(new.raw_column(name), 4)
                                 for name in new.names}}, protocol=4)
    state = snapshot.open_columns(old).state()
    assert state["jobs"] == jobs and state["version"] == 2 and state["max_cluster_id"] == 2


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


def _without_hints(data: bytes) -> bytes:
    """The same snapshot as a writer without hints made it (the body is unchanged)."""
    header = pickle.loads(data)
    end = len(data) - header["body"]
    del header["hints"]
    return pickle.dumps(header, snapshot.PROTOCOL) + data[end:]


def test_hints_say_each_plain_columns_types_its_one_value_and_the_id_texts():
    jobs = {(c, p): {"ClusterId": c, "ProcId": p, "JobStatus": 1 + c % 2, "Owner": "alice",
                     "Start": None if c % 2 else 7, "One": 1, "Expr": classad.Expr("1 + 1")}
            for c in (1, 22, 10 ** 9, 10 ** 12) for p in (0, 5)}
    jobs[(1, 0)]["One"] = 1.0   # equal to 1, but another type: not one value
    columns = snapshot.open_columns(snapshot.encode({"jobs": jobs}))
    assert columns.kinds("JobStatus") == frozenset((int,))
    assert columns.kinds("Start") == frozenset((int, type(None)))
    assert columns.kinds("One") == frozenset((int, float))
    assert columns.kinds("Expr") is None                        # not plain: scanned
    assert columns.kinds("Nobody") == frozenset((type(None),))  # no job has it
    assert columns.same("Owner") == ("alice",) and columns.raw_column("Owner") == ["alice"] * 8
    assert columns.same("ProcId") is None and columns.same("One") is None
    assert columns.id_texts() == ["%d.%d" % jid for jid in sorted(jobs)]
    assert "hints" not in columns.state()   # the master's state holds no reader's hints


def test_no_job_id_texts_unless_every_id_is_an_int():
    jobs = {(1, 0): {"ClusterId": 1, "ProcId": 0}, (2, 0): {"ClusterId": "2", "ProcId": 0}}
    assert snapshot.open_columns(snapshot.encode({"jobs": jobs})).id_texts() is None


def test_a_snapshot_without_hints_is_read_as_before():
    data = _without_hints(snapshot.encode({"jobs": table(), "written": 1.5}))
    columns = snapshot.open_columns(data)
    assert columns.kinds("JobStatus") is None and columns.same("ProcId") is None
    assert columns.id_texts() is None
    assert columns.state()["jobs"] == table()


@pytest.mark.parametrize("hints", [
    "nonsense", {"kinds": {"JobStatus": ["object"]}, "same": {"ProcId": "0"}},
    {"kinds": [], "same": [], "id_texts": [10 ** 9, 5]}, {"id_texts": "x"}])
def test_hints_not_as_written_are_ignored(hints):
    data = snapshot.encode({"jobs": table()})
    header = pickle.loads(data)
    end = len(data) - header["body"]
    header["hints"] = hints
    columns = snapshot.open_columns(pickle.dumps(header, snapshot.PROTOCOL) + data[end:])
    assert columns.kinds("JobStatus") is None and columns.same("ProcId") is None
    assert columns.id_texts() is None
    assert columns.state()["jobs"] == table()


def test_id_lines_between_any_rows_are_the_split_lines():
    """IdLines hands out the same texts as splitting the whole string, for ranges in order
    (condor_q's chunks), backwards, skipping ahead, past the end, and lines much longer
    than the others (its window grows)."""
    import random
    rng = random.Random(7)
    for _ in range(200):
        texts = ["%d.%d" % (rng.choice([1, 22, 10 ** rng.randint(0, 14)]), rng.randint(0, 99))
                 for _ in range(rng.randint(1, 60))]
        lines = snapshot.IdLines("\n".join(texts), len(texts))
        for _ in range(10):
            start = rng.randint(0, len(texts) + 2)
            stop = start + rng.randint(0, 20)
            assert lines.between(start, stop) == texts[start:stop], (texts, start, stop)
        assert snapshot.IdLines("\n".join(texts), len(texts)).between(0, len(texts)) == texts


def test_job_id_texts_that_are_not_one_a_job_are_damaged():
    jobs = {(c, 0): {"ClusterId": c, "ProcId": 0} for c in (1, 2, 3)}
    data = snapshot.encode({"jobs": jobs})
    header = pickle.loads(data)
    end = len(data) - header["body"]
    offset, length = header["hints"]["id_texts"]
    body = bytearray(data[end:])
    wrong = pickle.dumps("1.0\n2.0", snapshot.PROTOCOL)   # two lines for three jobs
    body[offset:offset + length] = wrong
    header["hints"]["id_texts"] = [offset, len(wrong)]
    header["body"] = len(body)
    columns = snapshot.open_columns(pickle.dumps(header, snapshot.PROTOCOL) + bytes(body))
    with pytest.raises(snapshot.SnapshotError):
        columns.id_lines()
