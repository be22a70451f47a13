"""A job's output and error land only in files the master makes or the user owns: no link
someone else planted is followed, and new files are 0644 (HTCondor's mode), never executable."""

from __future__ import annotations

import os
import re
import stat

import pytest

from awq import job_files
from awq.queue_view import read_queue_view
from awq.spool import Spool
from conftest import wait_until, write_script

NOBODY = 65534
# A job runs through a real master and worker: a turn, a dispatch, the worker's start and
# the fetch of its outputs take seconds on a loaded 2-CPU machine, not more.
JOB_TIMEOUT = 90


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_job_file_is_0644_and_an_existing_one_is_truncated(tmp_path, usual_umask):
    path = str(tmp_path / "out")
    os.close(job_files.open_job_file(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    with open(path, "w") as handle:
        handle.write("old content")
    os.close(job_files.open_job_file(path))
    assert os.path.getsize(path) == 0


def test_links_and_strangers_files_are_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.symlink(str(victim), str(tmp_path / "symlink"))
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "dangling"))
    os.link(str(victim), str(tmp_path / "hardlink"))
    os.mkfifo(str(tmp_path / "fifo"))
    stranger = tmp_path / "stranger"
    stranger.write_text("theirs")
    os.chown(str(stranger), NOBODY, NOBODY)
    for name, words in (("symlink", "symbolic link"), ("dangling", "symbolic link"),
                        ("hardlink", "hard links"), ("fifo", "cannot open"),
                        ("stranger", "another user")):
        with pytest.raises(job_files.JobFileError, match=words):
            job_files.open_job_file(str(tmp_path / name))
    assert victim.read_text() == "precious" and stranger.read_text() == "theirs"
    assert not (tmp_path / "nowhere").exists()


def job_status(workdir: str, cluster: int) -> dict:
    for job in read_queue_view(Spool(workdir)).jobs.ads():
        if job["ClusterId"] == cluster:
            return job
    return {}


def submit(tool, description: str) -> int:
    result = tool("condor_submit", stdin=description)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"cluster (\d+)", result.stdout).group(1))


def test_a_planted_link_in_a_sticky_directory_is_not_followed(tmp_path, usual_umask, start_master,
                                                             start_worker, tool, workdir):
    master = start_master()
    start_worker(master.port)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(str(sticky), 0o1777)
    victim = tmp_path / "victim"          # a file of the master's user
    victim.write_text("precious\n")
    planted = sticky / "job.out"          # another user's link to it, planted in /tmp
    os.symlink(str(victim), str(planted))
    os.lchown(str(planted), NOBODY, NOBODY)
    job = write_script(tmp_path / "job.sh", "echo overwritten; echo also >&2\n")
    fresh_out, fresh_err = sticky / "fresh.out", sticky / "fresh.err"

    # And a link in a plain directory, which no kernel protection stops.
    plain = tmp_path / "plain"
    plain.mkdir()
    os.symlink(str(victim), str(plain / "job.err"))

    planted_cluster = submit(tool, "executable = %s\noutput = %s\nqueue\n" % (job, planted))
    plain_cluster = submit(tool, "executable = %s\nerror = %s\nqueue\n" % (job, plain / "job.err"))
    fresh_cluster = submit(tool, "executable = %s\noutput = %s\nerror = %s\nqueue\n"
                           % (job, fresh_out, fresh_err))

    held = wait_until(lambda: job_status(workdir, planted_cluster).get("JobStatus") == 5
                      and job_status(workdir, planted_cluster), JOB_TIMEOUT,
                      what="the job with the planted output to be held")
    assert "symbolic link" in held["HoldReason"], held["HoldReason"]
    held = wait_until(lambda: job_status(workdir, plain_cluster).get("JobStatus") == 5
                      and job_status(workdir, plain_cluster), JOB_TIMEOUT,
                      what="the job with the linked error file to be held")
    assert "symbolic link" in held["HoldReason"], held["HoldReason"]
    assert victim.read_text() == "precious\n"
    assert os.path.islink(str(planted))

    wait_until(lambda: fresh_err.exists() and fresh_err.read_text() == "also\n", JOB_TIMEOUT,
               what="the other job's error file")
    assert fresh_out.read_text() == "overwritten\n"
    for path in (fresh_out, fresh_err):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    wait_until(lambda: job_status(workdir, fresh_cluster).get("JobStatus") in (4, None) or
               not job_status(workdir, fresh_cluster), JOB_TIMEOUT, what="the job to complete")
    assert not os.listdir(os.path.join(workdir, "outputs")), "staged outputs left behind"
    assert master.proc.poll() is None


def test_a_directory_swapped_for_a_link_to_the_spool_since_submit_is_refused(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "password").write_text("secret")
    os.symlink(str(spool), str(tmp_path / "outdir"))   # was a plain directory at submit
    staged = tmp_path / "staged"
    staged.write_text("pilot output")
    with pytest.raises(job_files.JobFileError, match="leads into the spool"):
        job_files.deliver(str(staged), str(tmp_path / "outdir" / "password"), 0o644,
                          spool=str(spool))
    assert (spool / "password").read_text() == "secret"


def test_staged_outputs_are_delivered_or_dropped_never_left(tmp_path, usual_umask):
    from awq.workqueue import OutputStaging
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "outputs").mkdir(mode=0o700)
    (spool / "outputs" / "7.awq.stdout").write_text("left by a master that stopped")
    staging = OutputStaging(str(spool / "outputs"))
    assert os.listdir(str(spool / "outputs")) == []
    assert stat.S_IMODE(os.stat(str(spool / "outputs")).st_mode) == 0o700

    def stage(task_id: int, target) -> str:
        place = staging.place_for("awq.stdout")
        with open(place, "w") as handle:
            handle.write("task %d\n" % task_id)
        staging.expect(task_id, [(place, str(target))])
        return place

    stage(1, tmp_path / "one.out")
    assert staging.deliver(1) == ""
    assert (tmp_path / "one.out").read_text() == "task 1\n"
    os.symlink(str(tmp_path / "one.out"), str(tmp_path / "link.out"))
    stage(2, tmp_path / "link.out")
    assert "symbolic link" in staging.deliver(2)
    assert (tmp_path / "one.out").read_text() == "task 1\n"
    stage(3, tmp_path / "cancelled.out")
    staging.discard(3)
    assert not (tmp_path / "cancelled.out").exists()
    assert os.listdir(str(spool / "outputs")) == []
