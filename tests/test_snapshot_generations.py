"""Snapshot generations: a damaged state.pickle falls back to the previous one, records go
only once two generations hold them, and alien_work_queue --check says what it would recover
(issue 21, item 5)."""

from __future__ import annotations

import logging
import os
import re
import signal

import pytest

from awq import check
from awq.queue_view import read_queue_view
from awq.spool import Spool, SpoolError
from conftest import run_tool, wait_until
from test_queue_view import idle_master, job, master_saves

# A master writes its snapshot 0.25 s after a change at the earliest, and a second one
# (to delete what the first holds) as long after; under load it waits at most 10 s a write
# (awq.master.MAX_FLUSH_INTERVAL): two generations take at most twice that, plus its start.
TWO_GENERATIONS_TIMEOUT = 2 * 10.0 + 30.0


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool"), create=True)


def truncate(path: str, size: int = 100) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def saved_spool(spool: Spool, count: int = 50):
    """A master that took a record of `count` jobs and wrote two generations (the record gone)."""
    master = idle_master(spool)
    spool.records.submit(lambda cid: [job(cid, proc) for proc in range(count)])
    master_saves(master)
    assert spool.records.pending() == ["1.job"]    # one generation holds it: kept
    master_saves(master)
    assert spool.records.pending() == []
    return master


def test_each_write_keeps_the_one_before_as_the_previous_generation(spool):
    spool.published.write_snapshot({"jobs": {(1, 0): job(1)}})
    assert not os.path.exists(spool.published.previous_snapshot_path)
    spool.published.write_snapshot({"jobs": {(1, 0): job(1), (2, 0): job(2)}})
    current, previous = spool.published.generations()
    assert os.stat(current).st_ino != os.stat(previous).st_ino
    assert len(spool.published.open_generation(current).state()["jobs"]) == 2
    assert len(spool.published.open_generation(previous).state()["jobs"]) == 1
    assert os.stat(previous).st_mode & 0o777 == 0o600


def test_a_truncated_snapshot_falls_back_to_the_previous_generation(spool):
    saved_spool(spool)
    truncate(spool.snapshot_path)
    loaded = spool.published.load_generation()
    assert loaded.path == spool.published.previous_snapshot_path
    assert len(loaded.state["jobs"]) == 50
    assert loaded.damaged and loaded.damaged[0][0] == spool.snapshot_path
    assert len(read_queue_view(spool).jobs) == 50     # condor_q falls back the same way
    os.unlink(spool.snapshot_path)                     # moved aside by hand: the same
    assert len(spool.published.load_snapshot()["jobs"]) == 50


def test_a_snapshot_refused_for_its_mode_is_not_replaced_silently(spool):
    saved_spool(spool, count=2)
    os.chmod(spool.snapshot_path, 0o620)
    with pytest.raises(SpoolError, match="writable by group or others"):
        spool.published.load_generation()


def test_the_master_restores_the_previous_generation_and_says_so(spool, caplog):
    saved_spool(spool)
    truncate(spool.snapshot_path)
    master = idle_master(spool)
    with caplog.at_level(logging.INFO, logger="awq.master"):
        master.recover()
    assert len(master.table) == 50
    text = caplog.text
    assert "state.pickle is damaged" in text and "kept as" in text
    assert "restored the job table from the previous generation" in text
    assert "No accepted job is lost" in text
    # The damaged file is out of the way: the next write keeps the good one as previous.
    assert not os.path.exists(spool.snapshot_path)
    assert [n for n in os.listdir(spool.root) if n.startswith("state.pickle.damaged.")]
    master.flush(force=True)
    assert len(spool.published.open_generation(spool.published.previous_snapshot_path)
               .state()["jobs"]) == 50


def test_no_readable_generation_refuses_to_start_and_says_what_to_do(spool):
    saved_spool(spool)
    spool.records.submit(lambda cid: [job(cid)])
    for path in spool.published.generations():
        truncate(path)
    with pytest.raises(SpoolError) as caught:
        idle_master(spool).recover()
    message = str(caught.value)
    assert "no generation of the job table snapshot is readable" in message
    assert "--check" in message and "the 1 records still in" in message
    assert os.path.exists(spool.snapshot_path)    # left as found, for the admin


def spool_listing(root: str) -> list:
    return sorted((os.path.relpath(os.path.join(d, n), root), os.lstat(os.path.join(d, n)).st_mtime_ns)
                  for d, dirs, names in os.walk(root) for n in names + dirs)


def test_check_finds_a_cluster_counter_behind_the_ids_in_use(spool):
    saved_spool(spool, count=1)
    with open(spool.counter_path, "wb") as handle:
        handle.write(b"1\n")
    findings = check.check_spool(spool)
    assert check.worst_level(findings) == check.NEEDS_ADMIN
    assert "new jobs would reuse ids; write 2 into it" in check.render(spool, findings)


def test_check_of_a_sound_spool(spool):
    saved_spool(spool, count=3)
    spool.records.submit(lambda cid: [job(cid), job(cid, 1)])
    spool.requests.leave("hold", [(1, 0)])
    findings = check.check_spool(spool)
    assert check.worst_level(findings) == check.SOUND
    text = check.render(spool, findings)
    assert "3 jobs (3 idle)" in text and "1 records waiting to be taken: 2 jobs" in text
    assert "requests waiting: 1 hold" in text and text.endswith(": sound\n")


def test_check_says_what_the_master_would_recover_and_changes_nothing(spool, workdir, tool):
    spool = Spool(workdir, create=True)
    saved_spool(spool)
    truncate(spool.snapshot_path)
    before = spool_listing(spool.root)
    result = tool("alien_work_queue", "--check", "--work-dir", spool.root)
    assert result.returncode == check.RECOVERS, result.stderr
    assert "restores the previous generation" in result.stdout
    assert "50 jobs (50 idle)" in result.stdout
    assert spool_listing(spool.root) == before
    # With a master's lock held (a master running): still read only, and it says so.
    lock = spool.master_files.lock()
    try:
        result = tool("alien_work_queue", "--check", "--work-dir", spool.root)
    finally:
        lock.release()
    assert "a master (PID %d) is running" % os.getpid() in result.stdout
    assert result.returncode == check.RECOVERS


def test_check_of_a_spool_that_needs_the_admin(spool, workdir, tool):
    spool = Spool(workdir, create=True)
    saved_spool(spool)
    for path in spool.published.generations():
        truncate(path)
    with open(spool.counter_path, "wb") as handle:
        handle.write(b"x\n")
    result = tool("alien_work_queue", "--check", "--work-dir", spool.root)
    assert result.returncode == check.NEEDS_ADMIN
    assert "no readable snapshot generation" in result.stdout
    assert "cluster counter %s is corrupt" % spool.counter_path in result.stdout
    assert result.stdout.rstrip().endswith("(see NEEDS YOU)")
    missing = tool("alien_work_queue", "--check", "--work-dir", spool.root + "-nowhere")
    assert missing.returncode == 1 and missing.stderr.startswith("ERROR:")
    assert "Traceback" not in missing.stderr


def test_a_truncated_snapshot_loses_none_of_50_queued_jobs_on_restart(start_master, workdir, tool,
                                                                       tmp_path):
    master = start_master()
    description = "executable = /bin/true\nqueue 50\n"
    assert tool("condor_submit", stdin=description).returncode == 0
    spool = Spool(workdir)
    # Two generations hold the jobs once the record is gone.
    wait_until(lambda: not spool.records.pending(), TWO_GENERATIONS_TIMEOUT,
               what="the master to delete the record")
    master.stop(signal.SIGTERM)
    truncate(spool.snapshot_path)
    assert tool("condor_q", "-totals").returncode == 0   # condor_q falls back meanwhile
    restarted = start_master()
    listed = tool("condor_q", "-af", "ClusterId", "ProcId")
    assert sorted(listed.stdout.split("\n"))[1:] == sorted("1 %d" % p for p in range(50))
    log = restarted.log()
    assert re.search(r"state\.pickle is damaged .* kept as .*state\.pickle\.damaged\.\d+", log)
    assert "restored the job table from the previous generation" in log
    assert tool("alien_work_queue", "--check", "--work-dir", workdir).returncode == check.SOUND


def test_check_reports_a_snapshot_the_master_refuses(spool):
    saved_spool(spool, count=1)
    os.chmod(spool.snapshot_path, 0o620)
    findings = check.check_spool(spool)
    assert check.worst_level(findings) == check.NEEDS_ADMIN
    assert "writable by group or others" in check.render(spool, findings)
