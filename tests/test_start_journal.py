"""The start journal: a start the master saw is counted even when it died before the
snapshot that would have held it (awq/spool/starts.py). Unit tier: a fake backend;
tests/test_start_journal_e2e.py kills a real master."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from awq.jobs import JobStatus
from awq.jobtable import JobTable
from awq.master import Master
from awq.pacing import ManualClock
from awq.spool import Spool, SpoolError
from awq.spool.starts import StartJournal, decode_start, encode_start, merge_lines
from awq.tasks import TaskState
from test_master_table import FakeBackend, ad


def a_master(spool_dir: str) -> Master:
    return Master(Spool(spool_dir, create=True), FakeBackend(), owner="u", clock=ManualClock())


def master_with_one_job(spool_dir: str) -> Master:
    """A master started on spool_dir, holding job 1.0 idle (not yet in any snapshot)."""
    master = a_master(spool_dir)
    master.recover()
    master.table.put(ad())
    return master


def restarted(spool_dir: str) -> Master:
    """A new master on the same spool, as after a kill -9 of the first: recovered."""
    master = a_master(spool_dir)
    master.recover()
    return master


def start_on_worker(master: Master, task_id: int = 1) -> None:
    """Hand the idle jobs to the fake Work Queue and let task task_id reach a worker."""
    master.dispatcher.submit_idle(master.table)
    master.backend.states[task_id] = TaskState.ON_WORKER
    master.dispatcher.check_every_task(master.table)


def segment_names(spool_dir: str):
    return sorted(os.listdir(os.path.join(spool_dir, "starts")), key=int)


# -- lines


def test_a_line_reads_back_as_written():
    line = encode_start((12, 3), 2, 1700000000, "wn042.example.org:9123")
    assert line == b"12.3 2 1700000000 wn042.example.org:9123\n"
    jid, start = decode_start(line[:-1])
    assert jid == (12, 3) and (start.starts, start.started_at, start.host) == (
        2, 1700000000, "wn042.example.org:9123")
    assert decode_start(encode_start((1, 0), 1, 5, None)[:-1])[1].host is None


def test_a_host_cannot_forge_a_line():
    line = encode_start((1, 0), 1, 5, "evil\n2.0 99 5 x")
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    data = line
    latest = {}
    assert merge_lines(data, latest) == 0
    assert list(latest) == [(1, 0)] and latest[(1, 0)].starts == 1


@pytest.mark.parametrize("damaged", [
    b"", b"garbage", b"1.0 2 5", b"1.0 2 5 h extra", b"1.x 2 5 h", b"1.0 -2 5 h", b"1.0 0 5 h",
    b"1.0 2 5 \xff\xfe", b"1.0 2 5 a b", b"1.0 2 5 ", b"1.0 99999999999999999999999 5 h",
    b"\x00\x00\x00\x00", b"1.0 2 5 h\r"])
def test_a_damaged_line_is_skipped_never_an_error(damaged):
    assert decode_start(damaged) is None
    latest = {}
    assert merge_lines(b"1.0 1 5 h\n" + damaged + b"\n1.1 1 6 h\n", latest) == 1
    assert sorted(latest) == [(1, 0), (1, 1)]


def test_the_largest_count_wins_and_a_torn_last_line_is_skipped():
    latest = {}
    skipped = merge_lines(b"1.0 2 10 a\n1.0 1 5 b\n1.0 3 20 c\n2.0 1 7 d\n1.0 4 3", latest)
    assert skipped == 1   # "1.0 4 3": a crash tore it before its newline
    assert (latest[(1, 0)].starts, latest[(1, 0)].host) == (3, "c")
    assert latest[(2, 0)].starts == 1


# -- segments and their rotation


def test_segments_are_ours_alone(tmp_path):
    journal = StartJournal(str(tmp_path / "starts"))
    assert journal.replay() == {}
    journal.record((1, 0), 1, 5, "h")
    assert stat.S_IMODE(os.stat(tmp_path / "starts").st_mode) == 0o700
    [segment] = journal.segments()
    assert stat.S_IMODE(os.stat(segment).st_mode) == 0o600
    journal.close()


def test_a_segment_goes_once_two_snapshots_hold_its_starts(tmp_path):
    journal = StartJournal(str(tmp_path / "starts"))
    journal.replay()
    journal.after_snapshot()           # nothing recorded: nothing to do
    assert os.listdir(tmp_path / "starts") == []
    journal.record((1, 0), 1, 5, "h")
    journal.after_snapshot()           # held by the current generation only
    assert os.listdir(tmp_path / "starts") == ["1"]
    journal.record((1, 1), 1, 6, "h")  # a new segment: the first is closed
    journal.after_snapshot()           # both generations hold segment 1 now
    assert os.listdir(tmp_path / "starts") == ["2"]
    journal.after_snapshot()
    assert os.listdir(tmp_path / "starts") == []


def test_segments_a_dead_master_left_stay_until_two_snapshots_after_the_replay(tmp_path):
    directory = str(tmp_path / "starts")
    first = StartJournal(directory)
    first.replay()
    first.record((1, 0), 1, 5, "h")
    first.after_snapshot()
    first.record((1, 0), 2, 9, "h")    # and then kill -9: no snapshot holds this one
    again = StartJournal(directory)
    assert again.replay()[(1, 0)].starts == 2
    again.record((2, 0), 1, 10, "h")
    assert segment_names(str(tmp_path)) == ["1", "2", "3"]   # numbers go on, never reused
    again.after_snapshot()
    assert segment_names(str(tmp_path)) == ["1", "2", "3"]
    again.after_snapshot()
    assert segment_names(str(tmp_path)) == []


def test_a_segment_another_user_could_write_is_refused(tmp_path):
    journal = StartJournal(str(tmp_path / "starts"))
    journal.replay()
    journal.record((1, 0), 1, 5, "h")
    journal.close()
    os.chmod(journal.segments()[0], 0o622)
    with pytest.raises(SpoolError, match="writable by group or others"):
        StartJournal(str(tmp_path / "starts")).replay()
    os.unlink(journal.segments()[0])
    os.symlink("/etc/passwd", journal.segments()[0])
    with pytest.raises(SpoolError, match="symbolic link"):
        StartJournal(str(tmp_path / "starts")).replay()


def test_a_journal_that_cannot_be_written_costs_a_log_line_not_the_start(tmp_path, caplog):
    journal = StartJournal(str(tmp_path / "starts"))
    journal.replay()
    os.rmdir(tmp_path / "starts")
    with caplog.at_level(logging.WARNING, logger="awq.master"):
        journal.record((1, 0), 1, 5, "h")
        journal.record((1, 1), 1, 5, "h")
    assert caplog.text.count("cannot write the start journal") == 1


# -- the master: every start journaled, replayed over the snapshot


def test_a_start_after_the_last_snapshot_counts_after_a_kill(tmp_path, caplog):
    spool_dir = str(tmp_path / "spool")
    master = master_with_one_job(spool_dir)
    master.flush(force=True)           # the snapshot has 1.0 idle, never started
    start_on_worker(master)
    assert master.table.job((1, 0))["NumJobStarts"] == 1
    # kill -9 here: no snapshot after the start, no close of the journal
    again = a_master(spool_dir)
    with caplog.at_level(logging.INFO, logger="awq.master"):
        again.recover()
    job = again.table.job((1, 0))
    assert job["JobStatus"] == JobStatus.IDLE and job["NumJobStarts"] == 1
    assert job["JobRunCount"] == 1 and job["LastJobStatus"] == JobStatus.RUNNING
    assert job["LastRemoteHost"] == "127.0.0.1:9" and "JobCurrentStartDate" in job
    assert "1 job(s) started after the last snapshot" in caplog.text
    start_on_worker(again)
    job = again.table.job((1, 0))
    assert job["NumJobStarts"] == 2 and job["JobRunCount"] == 2
    assert job["JobLastStartDate"] <= job["JobCurrentStartDate"]


def test_a_snapshot_that_already_counts_the_start_is_left_alone(tmp_path):
    spool_dir = str(tmp_path / "spool")
    master = master_with_one_job(spool_dir)
    start_on_worker(master)
    master.flush(force=True)           # the snapshot has the start: the journal adds nothing
    again = restarted(spool_dir)
    job = again.table.job((1, 0))
    assert job["NumJobStarts"] == 1 and job["JobStatus"] == JobStatus.IDLE


def test_a_job_taken_from_its_record_after_the_last_snapshot_gets_its_starts(tmp_path):
    spool_dir = str(tmp_path / "spool")
    master = master_with_one_job(spool_dir)
    start_on_worker(master)
    # kill -9 before any snapshot: the job's record is still in queue/, taken again
    again = restarted(spool_dir)
    assert (1, 0) not in again.table and list(again.unapplied_starts) == [(1, 0)]
    again.flush(force=True)
    assert segment_names(spool_dir), "the journal must wait for the record's jobs"
    again.table.add(ad())              # what take_records does in the first turn
    again.apply_journaled_starts(last_chance=True)
    assert again.table.job((1, 0))["NumJobStarts"] == 1 and not again.unapplied_starts


def test_starts_of_jobs_that_left_do_not_hold_the_journal_forever(tmp_path):
    spool_dir = str(tmp_path / "spool")
    master = master_with_one_job(spool_dir)
    start_on_worker(master)
    again = restarted(spool_dir)
    again.apply_journaled_starts(last_chance=True)   # the records taken: 1.0 was not there
    assert not again.unapplied_starts
    for _ in range(2):                 # two snapshots: both generations hold what it said
        again.table.mark_changed()
        again.flush(force=True)
    assert segment_names(spool_dir) == []


def test_a_start_after_a_lost_worker_is_counted_and_logged(tmp_path, caplog):
    master = master_with_one_job(str(tmp_path / "spool"))
    with caplog.at_level(logging.INFO, logger="awq.master"):
        start_on_worker(master)
        master.backend.states[1] = TaskState.WAITING     # Work Queue lost the worker
        master.dispatcher.check_every_task(master.table)
        master.backend.states[1] = TaskState.ON_WORKER   # and sent the task elsewhere
        master.dispatcher.check_waiting_tasks(master.table)
    assert master.table.job((1, 0))["NumJobStarts"] == 2
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job 1.0")]
    assert lines == ["job 1.0: idle -> running: on 127.0.0.1:9",
                     "job 1.0: running -> idle: its worker 127.0.0.1:9 went away or stopped "
                     "answering",
                     "job 1.0: idle -> running: on 127.0.0.1:9 (start 2)"], lines
    master.start_journal.close()
    latest = {}
    with open(master.start_journal.segments()[0], "rb") as segment:
        merge_lines(segment.read(), latest)
    assert latest[(1, 0)].starts == 2


def test_a_table_without_a_journal_still_counts_starts():
    table = JobTable()
    table.put(ad())
    table.mark_running((1, 0), "h")
    assert table.job((1, 0))["NumJobStarts"] == 1 and "JobLastStartDate" not in table.job((1, 0))


# -- alien_work_queue --check


def test_check_says_the_master_will_count_the_starts_the_snapshot_missed(tmp_path):
    from awq import check
    spool_dir = str(tmp_path / "spool")
    master = master_with_one_job(spool_dir)
    master.flush(force=True)
    start_on_worker(master)
    master.start_journal.close()

    def journal_files():
        return {name: os.stat(os.path.join(spool_dir, "starts", name)).st_mtime_ns
                for name in segment_names(spool_dir)}
    before = journal_files()
    findings = check.check_spool(Spool(spool_dir))
    text = check.render(Spool(spool_dir), findings)
    assert "holds starts of 1 jobs (0 of them not in the snapshot" in text, text
    assert "counts them in NumJobStarts on its next start" in text
    assert check.worst_level(findings) == check.RECOVERS
    assert journal_files() == before and before   # --check reads only
    master.flush(force=True)           # once the snapshot counts the start: sound again
    assert check.worst_level(check.check_spool(Spool(spool_dir))) == check.SOUND


def test_check_names_a_journal_the_master_would_refuse(tmp_path):
    from awq import check
    spool_dir = str(tmp_path / "spool")
    Spool(spool_dir, create=True)
    os.mkdir(os.path.join(spool_dir, "starts"), 0o700)
    with open(os.path.join(spool_dir, "starts", "1"), "wb") as segment:
        segment.write(b"1.0 1 5 h\ntorn")
    findings = check.check_spool(Spool(spool_dir))
    assert "1 damaged lines" in check.render(Spool(spool_dir), findings)
    os.chmod(os.path.join(spool_dir, "starts", "1"), 0o666)
    findings = check.check_spool(Spool(spool_dir))
    assert check.worst_level(findings) == check.NEEDS_ADMIN
    assert "refuses to start on its start journal" in check.render(Spool(spool_dir), findings)


# -- a task Work Queue sent again between two looks


def test_a_task_moved_to_another_worker_between_looks_is_a_new_start(tmp_path, caplog):
    master = master_with_one_job(str(tmp_path / "spool"))
    start_on_worker(master)
    backend, dispatcher = master.backend, master.dispatcher
    backend.addresses = {1: "127.0.0.1:2"}   # lost its worker, sent to another at once
    dispatcher.check_every_task(master.table)
    assert master.table.job((1, 0))["NumJobStarts"] == 1   # Work Queue lost no worker yet
    dispatcher.free_cores.workers_lost = 1     # as its stats say once it has
    with caplog.at_level(logging.INFO, logger="awq.master"):
        dispatcher.check_every_task(master.table)
    job = master.table.job((1, 0))
    assert job["NumJobStarts"] == 2 and job["JobStatus"] == JobStatus.RUNNING
    assert "running -> idle: its worker 127.0.0.1:9 went away" in caplog.text
    assert "(start 2)" in caplog.text
    dispatcher.check_every_task(master.table)  # the same address: no more starts
    assert master.table.job((1, 0))["NumJobStarts"] == 2


def test_a_task_that_ran_again_and_ended_between_looks_counts_both_starts(tmp_path):
    from awq.tasks import TaskResult
    master = master_with_one_job(str(tmp_path / "spool"))
    start_on_worker(master)
    master.dispatcher.record_result(TaskResult(1, True, 0, "", "h2", address="127.0.0.1:2"),
                                    master.table)
    job = master.table.job((1, 0))
    assert job["JobStatus"] == JobStatus.COMPLETED and job["NumJobStarts"] == 2
    assert job["LastRemoteHost"] == "h2"


def test_a_result_from_the_worker_the_start_was_counted_on_adds_none(tmp_path):
    from awq.tasks import TaskResult
    master = master_with_one_job(str(tmp_path / "spool"))
    start_on_worker(master)
    master.dispatcher.record_result(TaskResult(1, True, 0, "", "h", address="127.0.0.1:9"),
                                    master.table)
    assert master.table.job((1, 0))["NumJobStarts"] == 1
