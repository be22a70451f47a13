"""The queue condor_q shows: the published snapshot merged with records not taken yet."""

from __future__ import annotations

import os

import pytest

from awq import jobs
from awq.queue_view import read_queue_view
from awq.spool import Spool, atomic_write


def job(cluster: int, proc: int = 0, **extra) -> dict:
    ad = {"ClusterId": cluster, "ProcId": proc, "JobStatus": 1, "QDate": 1, "Cmd": "/bin/true",
          "Owner": "alice", "EnteredCurrentStatus": 1}
    ad.update(extra)
    return ad


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool"), create=True)


def test_queue_view_merges_snapshot_records_and_removals(spool):
    spool.published.write_snapshot({"jobs": {(1, 0): job(1, JobStatus=2),
                                             (2, 0): job(2, JobStatus=4)}})
    spool.records.submit(lambda cid: [job(cid)])  # takes id 3: past the snapshot's ids
    spool.records.submit(lambda cid: [job(cid)])
    spool.requests.leave("rm", [(4, 0)])
    view = read_queue_view(spool)
    # As in HTCondor: a finished job still in the table shows C, one with a removal
    # request shows X until the master takes it out.
    assert [(jobs.job_id(j), j["JobStatus"]) for j in view.jobs.ads()] == \
        [((1, 0), 2), ((2, 0), 4), ((3, 0), 1), ((4, 0), 3)]


def test_queue_view_leaves_out_a_record_the_master_would_refuse(spool):
    spool.records.submit(lambda cid: [job(cid)])
    atomic_write(spool.records.path_of(2), b'{"version": 1, "jobs": [{"ClusterId": 9, '
                 b'"ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "/bin/true"}]}')
    atomic_write(spool.records.path_of(3), b'{"version": 1, "jobs": [{"ClusterId": 3, '
                 b'"ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "relative"}]}')
    assert read_queue_view(spool).jobs.ids() == [(1, 0)]


def test_queue_view_says_whether_a_master_runs_and_when_it_last_beat(spool):
    view = read_queue_view(spool)
    assert (view.heartbeat, view.master_pid, view.master_alive) == (None, None, False)
    lock = spool.master_files.lock()
    try:
        spool.published.write_stat(0, 0, now=1234567890)
        view = read_queue_view(spool)
        assert (view.heartbeat, view.master_alive) == (1234567890.0, True)
        assert view.master_pid == os.getpid()
    finally:
        lock.release()
    assert read_queue_view(spool).master_alive is False
