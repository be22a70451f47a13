"""The queue condor_q shows: the published snapshot merged with records not taken yet."""

from __future__ import annotations

import copy
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awq import jobs
from awq.master import Master
from awq.queue_view import read_queue_view
from awq.spool import Spool, atomic_write
from test_spool import job, spool  # noqa: F401 (the spool fixture and the job ad, shared)


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


def test_a_batch_removal_shows_every_job_it_names_removed_and_a_finished_one_as_it_is(spool):
    table = {(c, p): job(c, ProcId=p, JobStatus=4 if c == 7 else 1)
             for c in range(1, 101) for p in range(3)}
    spool.published.write_snapshot({"jobs": table})
    named = [jid for jid in sorted(table) if jid[0] % 2]     # 150 of them, as condor_rm writes
    spool.requests.leave("rm", named)                        # one batch file for them all
    atomic_write(os.path.join(spool.requests.directory("rm"), "batch.1.hand"),
                 b"by hand\n02.0\n2.01\nnonsense\n")     # leading zeros: still jobs 2.0, 2.1
    assert [name for name in os.listdir(spool.requests.directory("rm"))
            if not name.startswith("batch.")] == []
    status = dict(zip(read_queue_view(spool).jobs.ids(),
                      read_queue_view(spool).jobs.column("JobStatus")))
    assert {jid for jid, st in status.items() if st == 3} == set(named) - {
        (7, p) for p in range(3)} | {(2, 0), (2, 1)}
    assert status[(7, 0)] == 4 and status[(2, 2)] == 1


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


# ---------------------------------------------------------------- the view while the master takes jobs

class IdleBackend:
    """Work Queue with no worker: these tests drive the master's intake and snapshots only."""

    port = 0

    def stats(self) -> dict:
        return {"workers_connected": 0, "total_cores": 0, "committed_cores": 0}

    def empty(self) -> bool:
        return True

    manager_count = 1

    def stranded_tasks(self) -> list:
        return []

    def enable_wake_on_child_exit(self) -> bool:
        return False

    def reap_children(self) -> list:
        return []

    def forget_cached(self, local: str) -> None:
        pass


class Interposed:
    """A spool part whose every call first runs hook(): the master acts between the view's
    reads. The parts are plain objects, so the view is handed a spool holding these."""

    def __init__(self, part, hook):
        self._part = part
        self._hook = hook

    def __getattr__(self, name):
        attr = getattr(self._part, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._hook()
            return attr(*args, **kwargs)
        return call


def interposed_spool(spool: Spool, hook) -> Spool:
    viewed = copy.copy(spool)
    for part in ("records", "requests", "published"):
        setattr(viewed, part, Interposed(getattr(spool, part), hook))
    return viewed


def idle_master(spool: Spool) -> Master:
    return Master(spool, IdleBackend(), owner="alice")


def master_saves(master: Master) -> None:
    """One pass of the master's intake as its turn does it: take, then write a snapshot
    (after which it deletes what two generations hold)."""
    master.intake.take_records(master.table)
    master.apply_requests()
    master.flush(force=True)


def view_ids(spool: Spool) -> set:
    return set(read_queue_view(spool).jobs.ids())


def count_view_calls(spool: Spool) -> int:
    calls = [0]

    def hook():
        calls[0] += 1
    read_queue_view(interposed_spool(spool, hook))
    return calls[0]


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_a_job_accepted_before_condor_q_is_counted_wherever_the_master_saves_it(tmp_path, passes):
    """The master takes the record, writes its snapshot(s) and deletes the record at every
    point between the view's reads; passes=2 is the cycle that deletes it."""
    calls = None
    point = 0
    while calls is None or point < calls:
        spool = Spool(str(tmp_path / ("spool-%d-%d" % (passes, point))), create=True)
        master = idle_master(spool)
        spool.records.submit(lambda cid: [job(cid)])
        master_saves(master)
        master_saves(master)            # cluster 1 is in the snapshot, its record gone
        spool.records.submit(lambda cid: [job(cid, proc) for proc in range(3)])
        accepted = {(1, 0), (2, 0), (2, 1), (2, 2)}
        if calls is None:
            calls = count_view_calls(spool)
            assert calls >= 3
        seen = [0]

        def hook():
            seen[0] += 1
            if seen[0] == point + 1:
                for _ in range(passes):
                    master_saves(master)
        assert view_ids(interposed_spool(spool, hook)) == accepted, \
            "the master saved %d time(s) before the view's call %d" % (passes, point + 1)
        point += 1
    # One generation keeps the record; from two on, the master deleted it along the way.
    assert spool.records.pending() == ([] if passes >= 2 else ["2.job"])


def test_a_removal_carried_out_between_the_views_reads_still_shows(tmp_path):
    spool = Spool(str(tmp_path / "spool"), create=True)
    master = idle_master(spool)
    spool.records.submit(lambda cid: [job(cid)])
    master_saves(master)
    master_saves(master)
    spool.requests.leave("rm", [(1, 0)])
    for point in range(count_view_calls(spool)):
        seen = [0]

        def hook():
            seen[0] += 1
            if seen[0] == point + 1:
                master_saves(master)
                master_saves(master)
        view = read_queue_view(interposed_spool(spool, hook))
        statuses = dict(zip(view.jobs.ids(), view.jobs.column("JobStatus") or []))
        assert statuses.get((1, 0), 3) == 3   # removed (X), or gone from the queue


def test_the_snapshot_names_the_records_it_holds_and_the_view_trusts_it(tmp_path):
    spool = Spool(str(tmp_path / "spool"), create=True)
    master = idle_master(spool)
    spool.records.submit(lambda cid: [job(cid)])
    master_saves(master)
    assert spool.published.snapshot_columns().header["records"] == ["1.job"]
    assert spool.records.pending() == ["1.job"]     # one generation holds it: kept
    # A job of a named record that finished and left is not brought back from the file...
    spool.published.write_snapshot({"jobs": {}, "records": ["1.job"]})
    assert view_ids(spool) == set()
    # ...while a snapshot that names no record (an older master's) leaves the file to show.
    spool.published.write_snapshot({"jobs": {}})
    assert view_ids(spool) == {(1, 0)}


OPERATIONS = ("submit", "take_and_save", "save", "complete", "remove")


def writer_step(data, spool: Spool, master: Master, accepted: set, finished: set) -> None:
    operation = data.draw(st.sampled_from(OPERATIONS))
    if operation == "submit":
        size = data.draw(st.integers(1, 3))
        cluster = spool.records.submit(lambda cid: [job(cid, proc) for proc in range(size)])
        accepted.update((cluster, proc) for proc in range(size))
    elif operation == "take_and_save":
        master_saves(master)
    elif operation == "save":
        master.table.mark_changed()
        master.flush(force=True)
    else:
        live = sorted(jid for jid, ad in master.table.items()
                      if ad["JobStatus"] not in jobs.FINAL_STATES)
        if not live:
            return
        jid = data.draw(st.sampled_from(live))
        if operation == "complete":
            master.table.complete(jid, 0)
        else:
            spool.requests.leave("rm", [jid])
        finished.add(jid)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_condor_q_counts_every_accepted_job_whatever_the_order(data):
    """Any order of the spool's writes (condor_submit, the master's intake and snapshots,
    jobs finishing) and condor_q's reads: every job accepted before the view started and
    not finished by its end is counted, and no job that was never accepted is."""
    with tempfile.TemporaryDirectory() as root:
        spool = Spool(os.path.join(root, "spool"), create=True)
        master = idle_master(spool)
        accepted, finished = set(), set()
        for _ in range(data.draw(st.integers(0, 8), label="steps before condor_q")):
            writer_step(data, spool, master, accepted, finished)
        before = set(accepted)

        def hook():
            for _ in range(data.draw(st.integers(0, 3), label="steps before this read")):
                writer_step(data, spool, master, accepted, finished)
        seen = view_ids(interposed_spool(spool, hook))
        assert before - finished <= seen
        assert seen <= accepted


@pytest.mark.parametrize("statuses", [[1] * 6, [1, 2, 1, 2, 4, 1], [2] * 6])
@pytest.mark.parametrize("removing", [[(3, 0)], "all"])
def test_a_removal_waiting_shows_in_every_form_as_in_the_jobs_themselves(spool, statuses,
                                                                         removing):
    """A job shown removed (X) while its removal waits is removed in the table too, when
    the snapshot's hints said one status throughout (they no longer hold), for one job
    and for condor_rm -all's batch."""
    from awq import query
    table = {(c, 0): job(c, JobStatus=status) for c, status in enumerate(statuses, 1)}
    spool.published.write_snapshot({"jobs": table})
    spool.requests.leave("rm", sorted(table) if removing == "all" else removing)
    view = read_queue_view(spool)
    ads = [dict(table[jid]) for jid in sorted(table)]
    for ad in ads:
        if (removing == "all" or (ad["ClusterId"], 0) in removing) and ad["JobStatus"] != 4:
            ad["JobStatus"] = 3
    for argv in ([], ["-totals"], ["-constraint", "JobStatus == 3"], ["-af", "JobStatus"]):
        opts = query.parse_q_args(argv)
        assert query.render_q(opts, view.jobs, now=1e9, schedd_name="s") == \
            query.render_q(opts, ads, now=1e9, schedd_name="s"), argv
