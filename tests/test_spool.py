"""The spool: atomic files, locks, cluster ids, trust checks, records, requests, history."""

from __future__ import annotations

import multiprocessing
import os
import pickle

import pytest

from awq import classad, jobs, snapshot
from awq.queue_view import read_queue_view
from awq.spool import Spool, SpoolError, atomic_write, loads_snapshot

NOBODY = 65534


def job(cluster: int, proc: int = 0, **extra) -> dict:
    ad = {"ClusterId": cluster, "ProcId": proc, "JobStatus": 1, "QDate": 1, "Cmd": "/bin/true",
          "Owner": "alice", "EnteredCurrentStatus": 1}
    ad.update(extra)
    return ad


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool"), create=True)


def test_new_spool_is_private(spool):
    assert os.stat(spool.root).st_mode & 0o777 == 0o700
    for sub in (spool.queue_dir, spool.rm_dir):
        assert os.stat(sub).st_mode & 0o077 == 0


def test_missing_spool_is_a_clear_error(tmp_path):
    with pytest.raises(SpoolError, match="does not exist"):
        Spool(str(tmp_path / "nowhere"))


def test_group_writable_spool_is_refused(spool):
    os.chmod(spool.root, 0o770)
    with pytest.raises(SpoolError, match="writable by group"):
        Spool(spool.root)


def test_spool_owned_by_another_user_is_refused(spool):
    os.chown(spool.root, NOBODY, -1)
    with pytest.raises(SpoolError, match="owned by"):
        Spool(spool.root)


def test_snapshot_owned_by_another_user_is_never_unpickled(spool):
    spool.published.write_snapshot({"jobs": {}})
    os.chown(spool.snapshot_path, NOBODY, -1)
    with pytest.raises(SpoolError, match="owned by"):
        spool.published.load_snapshot()


def test_group_writable_record_is_not_read(spool):
    spool.records.submit(lambda cid: [job(cid)])
    path = spool.records.path_of(1)
    os.chmod(path, 0o660)
    with pytest.raises(SpoolError, match="writable by group"):
        spool.records.read(os.path.basename(path))


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/awq-evil-should-not-exist",))


def test_snapshot_unpickler_refuses_arbitrary_classes(tmp_path):
    data = pickle.dumps({"version": 1, "jobs": {}, "x": _Evil()})
    with pytest.raises(SpoolError, match="not allowed"):
        loads_snapshot(data)
    assert not os.path.exists("/tmp/awq-evil-should-not-exist")


def test_snapshot_round_trips_expressions(spool):
    table = {(1, 0): job(1, PeriodicRemove=classad.Expr("CurrentTime - QDate > 10"))}
    spool.published.write_snapshot({"jobs": table})
    loaded = spool.published.load_snapshot()["jobs"][(1, 0)]
    assert loaded["PeriodicRemove"] == classad.Expr("CurrentTime - QDate > 10")


def test_atomic_write_leaves_no_temp_file(tmp_path):
    target = tmp_path / "f"
    atomic_write(str(target), b"one")
    atomic_write(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_cluster_ids_increase_and_records_hold_the_jobs(spool):
    first = spool.records.submit(lambda cid: [job(cid)])
    second = spool.records.submit(lambda cid: [job(cid, 0), job(cid, 1)])
    assert (first, second) == (1, 2)
    assert [j["ProcId"] for j in spool.records.read("2.job")[1]] == [0, 1]


def test_build_failure_writes_nothing_and_burns_no_id(spool):
    def broken(cid):
        raise ValueError("boom")
    with pytest.raises(ValueError):
        spool.records.submit(broken)
    assert spool.records.pending() == []
    assert spool.records.submit(lambda cid: [job(cid)]) == 1


def test_a_record_the_master_would_refuse_for_its_size_is_never_written(spool):
    spool.records.max_record_bytes = 4096
    with pytest.raises(SpoolError, match="more than"):
        spool.records.submit(lambda cid: [dict(job(cid), Arguments="x" * 5000)])
    assert spool.records.pending() == []
    assert spool.records.submit(lambda cid: [job(cid)]) == 1


def _submit_many(root: str, count: int, out) -> None:
    spool = Spool(root)
    out.put([spool.records.submit(lambda cid: [job(cid)]) for _ in range(count)])


def test_concurrent_submitters_get_distinct_ids(spool):
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_submit_many, args=(spool.root, 20, queue))
               for _ in range(6)]
    for proc in workers:
        proc.start()
    ids = []
    for _ in workers:
        ids.extend(queue.get(timeout=60))
    for proc in workers:
        proc.join(60)
    assert sorted(ids) == list(range(1, 121))
    assert len(spool.records.pending()) == 120


def test_counter_restarts_past_known_ids_when_its_file_is_lost(spool):
    spool.records.submit(lambda cid: [job(cid)])
    spool.published.write_snapshot({"jobs": {(7, 0): job(7)}, "max_cluster_id": 7})
    os.unlink(spool.counter_path)
    assert spool.records.submit(lambda cid: [job(cid)]) == 8


def test_history_keeps_the_last_line_per_job(spool):
    spool.history.append([job(1, JobStatus=2)])
    spool.history.append([job(1, JobStatus=4, ExitCode=0)])
    with open(spool.history_path, "ab") as handle:
        handle.write(b'{"ClusterId": 2, "ProcId"')  # torn by a crash
    history = spool.history.read()
    assert [(j["ClusterId"], j["JobStatus"]) for j in history] == [(1, 4)]


def test_master_alive_follows_the_lock(spool):
    import fcntl
    assert not spool.master_files.is_running()
    fd = os.open(spool.master_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert spool.master_files.is_running()
    finally:
        os.close(fd)
    assert not spool.master_files.is_running()


def test_stat_file_has_upstreams_format(spool):
    spool.published.write_stat(3, 2, now=1234567890)
    with open(spool.stat_path) as handle:
        assert handle.read() == "WAITING=3\nRUNNING=2\nTIMESTAMP=1234567890\n"
    assert spool.published.read_stat() == {"WAITING": 3, "RUNNING": 2, "TIMESTAMP": 1234567890}


def test_a_snapshot_from_a_newer_version_is_refused_and_left_untouched(spool):
    spool.published.write_snapshot({"jobs": {}})
    data = snapshot.encode({"version": 99, "jobs": {}, "new_thing": 1})
    atomic_write(spool.snapshot_path, data)
    with pytest.raises(SpoolError, match="newer alien-workqueue .format 99"):
        spool.published.load_snapshot()
    assert open(spool.snapshot_path, "rb").read() == data


def test_an_older_snapshot_is_converted_on_load(spool, monkeypatch):
    from awq.spool import codec
    monkeypatch.setattr(codec, "SNAPSHOT_VERSION", 4)
    monkeypatch.setattr(snapshot, "FORMAT", 4)
    monkeypatch.setitem(codec.SNAPSHOT_UPGRADES, 3,
                        lambda state: dict(state, version=4, upgraded=True))
    atomic_write(spool.snapshot_path, snapshot.encode({"version": 3, "jobs": {}}))
    state = spool.published.load_snapshot()
    assert state["version"] == 4 and state["upgraded"] is True


def test_a_format_1_snapshot_a_pickle_is_still_read(spool):
    old = {(1, 0): job(1, PeriodicRemove=classad.Expr("JobStatus == 5"), Tags=["a", 2]),
           (2, 0): job(2, JobStatus=2, Odd=classad.UNDEFINED)}
    atomic_write(spool.snapshot_path, pickle.dumps({"version": 1, "jobs": old,
                                                    "max_cluster_id": 7}, protocol=4))
    state = spool.published.load_snapshot()
    assert state["jobs"] == old and state["max_cluster_id"] == 7
    assert read_queue_view(spool).jobs.ids() == [(1, 0), (2, 0)]
    spool.published.write_snapshot(state)
    assert pickle.loads(open(spool.snapshot_path, "rb").read())["version"] == snapshot.FORMAT
    assert spool.published.load_snapshot()["jobs"] == old


def test_history_rotates_and_still_reads_both_files(spool):
    spool.history.max_bytes = 300
    for cluster in range(1, 10):
        spool.history.append([job(cluster, JobStatus=4)])
    assert os.path.getsize(spool.history_path) < 600
    assert os.path.exists(spool.history_path + ".1")
    kept = sorted(jobs.job_id(j)[0] for j in spool.history.read())
    assert kept[-1] == 9 and kept == list(range(kept[0], 10)) and kept[0] > 1


def test_a_request_made_again_is_a_new_file_in_a_changed_directory(spool):
    """Parsl cancels with `condor_rm ID; condor_rm -forcex ID`: the second request for the same
    job must wake the master (the directory changes) and be told apart from the first, which
    is kept until two snapshots hold it (a new inode)."""
    spool.requests.leave("rm", [(7, 0)])
    first = spool.requests.stamp("rm", "7.0")
    directory = spool.requests.directory("rm")
    before = os.stat(directory).st_ino, os.stat(directory).st_mtime_ns
    os.utime(directory, ns=(0, 0))            # any later change of the directory shows
    spool.requests.leave("rm", [(7, 0)], "again")
    assert spool.requests.stamp("rm", "7.0")[0] != first[0]
    assert os.stat(directory).st_mtime_ns != 0 and before[0] == os.stat(directory).st_ino
    assert sorted(os.listdir(directory)) == ["7.0"]        # no temp file left behind
    assert spool.requests.reason("rm", "7.0") == "again"
