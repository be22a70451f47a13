"""condor_history reads the history from its end, in bounded memory (issue 21)."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from awq import jobs, query
from awq.cli import condor_history
from awq.spool import Spool
from awq.spool.codec import encode_job_line
from awq.spool.published import HISTORY_BLOCK_BYTES

LARGE_HISTORY_BYTES = 200 * 1024 * 1024   # the size the issue measured (197 MB)
WRITE_CHUNK_BYTES = 8 * 1024 * 1024


def finished(cluster: int, proc: int = 0, **extra) -> dict:
    ad = {"ClusterId": cluster, "ProcId": proc, "JobStatus": 4, "QDate": 1, "Owner": "alice",
          "Cmd": "/bin/true", "Environment": "PAD=" + "x" * 900, "EnteredCurrentStatus": 2,
          "CompletionDate": 2, "ExitCode": 0}
    ad.update(extra)
    return ad


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool"), create=True)


def write_large_history(spool: Spool, size: int) -> int:
    """A history of about size bytes, written in big chunks of one line repeated (old
    jobs), then three newer jobs at the end; returns the number of lines."""
    line = encode_job_line(finished(1))
    chunk = line * (WRITE_CHUNK_BYTES // len(line))
    written = lines = 0
    with open(spool.history_path, "wb") as handle:
        while written < size:
            handle.write(chunk)
            written += len(chunk)
            lines += len(chunk) // len(line)
        for cluster in (2, 3, 4):
            handle.write(encode_job_line(finished(cluster)))
            lines += 1
    os.chmod(spool.history_path, 0o600)
    return lines


def test_limit_one_on_a_200_mb_history_reads_one_block_in_bounded_memory(spool, monkeypatch,
                                                                         capsys):
    write_large_history(spool, LARGE_HISTORY_BYTES)
    newest = spool.history.newest_first()
    assert jobs.job_id(next(newest)) == (4, 0)
    newest.close()
    assert spool.history.bytes_read <= HISTORY_BLOCK_BYTES
    # The command itself: its memory does not grow with the file.
    monkeypatch.setenv("AWQ_WORKDIR", spool.root)
    tracemalloc.start()
    try:
        assert condor_history.main(["-limit", "1", "-af", "ClusterId"]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert capsys.readouterr().out == "4\n"
    assert peak < 16 * HISTORY_BLOCK_BYTES, "peak %d bytes" % peak


def test_a_constraint_reads_only_as_far_as_its_matches(spool, monkeypatch, capsys):
    write_large_history(spool, 4 * HISTORY_BLOCK_BYTES)
    spool.history.append([finished(5, Owner="bob"), finished(6)])
    monkeypatch.setenv("AWQ_WORKDIR", spool.root)
    reads = []
    real = Spool

    def counting_spool(root):
        opened = real(root)
        reads.append(opened.history)
        return opened
    monkeypatch.setattr(condor_history, "Spool", counting_spool)
    assert condor_history.main(["-limit", "2", "-constraint", 'Owner == "alice"',
                                "-af", "ClusterId"]) == 0
    assert capsys.readouterr().out == "6\n4\n"
    assert reads[0].bytes_read <= 2 * HISTORY_BLOCK_BYTES


def test_newest_first_is_the_order_jobs_left_and_the_last_line_of_a_job_wins(spool):
    # Rotated past three lines: history holds 7 and 5 again, history.1 holds 4, 5, 6.
    spool.history.max_bytes = len(encode_job_line(finished(1))) * 5 // 2
    for cluster in range(1, 8):
        spool.history.append([finished(cluster, JobStatus=3 if cluster == 5 else 4)])
    spool.history.append([finished(5)])     # a crash repeated job 5: its last line counts
    newest = list(spool.history.newest_first())
    assert [jobs.job_id(j)[0] for j in newest] == [5, 7, 6, 4]
    assert [j["JobStatus"] for j in newest if j["ClusterId"] == 5] == [4]
    assert [jobs.job_id(j)[0] for j in spool.history.read()] == [4, 6, 7, 5]


def test_a_torn_last_line_and_a_line_too_long_to_be_a_job_are_skipped(spool, monkeypatch):
    from awq.spool import published
    monkeypatch.setattr(spool.history, "max_bytes", published.MAX_HISTORY_BYTES)
    spool.history.append([finished(1)])
    with open(spool.history_path, "ab") as handle:
        handle.write(b"{" + b"y" * (3 * HISTORY_BLOCK_BYTES) + b"\n")
    spool.history.append([finished(2)])
    with open(spool.history_path, "ab") as handle:
        handle.write(b'{"ClusterId": 3, "Pro')   # the master died mid-line
    monkeypatch.setattr(published, "MAX_HISTORY_LINE_BYTES", HISTORY_BLOCK_BYTES)
    assert [jobs.job_id(j) for j in spool.history.newest_first()] == [(2, 0), (1, 0)]


def test_forwards_lists_the_oldest_first(spool):
    spool.history.append([finished(1), finished(2)])
    spool.history.append([finished(3)])
    options = query.parse_q_args(["-forwards", "-limit", "2", "-af", "ClusterId"],
                                 tool="condor_history")
    assert query.render_history(options, spool.history.newest_first(), now=10) == "1\n2\n"
    options = query.parse_q_args(["-af", "ClusterId"], tool="condor_history")
    assert query.render_history(options, spool.history.newest_first(), now=10) == "3\n2\n1\n"
