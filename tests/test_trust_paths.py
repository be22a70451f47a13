"""Where a job's output, error and user log may land: never in the spool."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from awq import jobs
from awq.queue_view import read_queue_view
from awq.spool import Spool
from conftest import wait_until, write_script

# Everything the master keeps in its spool that a job's file could overwrite.
SPOOL_FILES = ("password", "next_cluster", "state.pickle", "history/history",
               "queue/1.job", "stat/latest", "stat/master.json", "drain", "")
# The master takes a record within a turn (it watches the spool); a loaded 2-CPU machine
# may need seconds to start it and schedule it.
MASTER_TAKES_RECORD_TIMEOUT = 30


def digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


@pytest.mark.parametrize("key", ["output", "error", "log"])
@pytest.mark.parametrize("inside", SPOOL_FILES)
def test_condor_submit_refuses_a_job_file_inside_the_spool(tmp_path, workdir, tool, key, inside):
    Spool(workdir, create=True)
    probe = write_script(tmp_path / "probe.sh", "echo hi\n")
    target = os.path.join(workdir, inside) if inside else workdir
    result = tool("condor_submit", stdin="executable = %s\n%s = %s\nqueue\n" % (probe, key, target))
    assert result.returncode == 1, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: attribute "), result.stderr
    assert "points into the spool" in lines[0]
    assert not os.path.exists(os.path.join(workdir, "queue", "1.job"))


def test_a_link_to_the_spool_does_not_get_around_the_check(tmp_path, workdir, tool):
    Spool(workdir, create=True)
    probe = write_script(tmp_path / "probe.sh", "echo hi\n")
    os.symlink(workdir, str(tmp_path / "innocent"))
    result = tool("condor_submit", stdin="executable = %s\noutput = %s\nqueue\n"
                  % (probe, tmp_path / "innocent" / "password"))
    assert result.returncode == 1 and "points into the spool" in result.stderr, result.stderr
    # A link in the file's own place is refused when the output is written
    # (test_trust_outputs.py): no output follows a link.


def test_validation_without_a_spool_leaves_the_paths_alone():
    job = {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "QDate": 0, "Cmd": "/bin/true",
           "Out": "/tmp/awq/password"}
    assert jobs.validate_job(job, 1) is job
    with pytest.raises(jobs.InvalidJob, match="points into the spool"):
        jobs.validate_job(job, 1, spool_dir="/tmp/awq/")


def test_the_master_refuses_a_record_that_writes_into_its_spool(tmp_path, start_master,
                                                               start_worker, workdir):
    """A record that bypassed condor_submit: held with the reason, the password intact."""
    master = start_master()
    start_worker(master.port)
    password = os.path.join(workdir, "password")
    before = digest(password)
    record = {"version": 1, "jobs": [{
        "ClusterId": 950, "ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "/bin/echo",
        "TransferExecutable": False, "Arguments": "forged", "Out": password}]}
    path = os.path.join(workdir, "queue", "950.job")
    with open(path + ".tmp", "w") as handle:
        json.dump(record, handle)
    os.rename(path + ".tmp", path)

    def held() -> object:
        for job in read_queue_view(Spool(workdir)).jobs.ads():
            if job["ClusterId"] == 950 and job["JobStatus"] == 5:
                return job
        return None
    job = wait_until(held, MASTER_TAKES_RECORD_TIMEOUT, what="the forged job to be held")
    assert "points into the spool" in job["HoldReason"]
    assert digest(password) == before
    assert master.proc.poll() is None
