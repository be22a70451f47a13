"""The command lines TARDIS, law and Parsl run (clients.md), against a live master and workers.

Each test drives our commands exactly as the client does and parses the answer
with the client's own regular expression.
"""

from __future__ import annotations

import os
import re
import time

from conftest import (JOB_DONE_WITHIN, JOB_RUNS_WITHIN, REMOVED_JOB_GONE_WITHIN,
                      REQUEST_SHOWN_WITHIN, write_script)
from testkit import wait_until

TARDIS_SUBMIT = re.compile(r"^\*\* Proc (\d+\.\d+):$", re.M)
LAW_SUBMIT = re.compile(r"^(\d+) job\(s\) submitted to cluster (\d+)\.$", re.M)
LAW_BLOCK = re.compile(r"(\w+) \= \"?([^\"\n]*)\"?\n")


def wait_for_a_later_snapshot(tool, workdir: str) -> None:
    """Return once the master has written a snapshot after everything it had decided when
    this was called. A new job's record leaves queue/ only after a snapshot holding the job is
    written, so its departure is that snapshot, written after whatever came before."""
    assert tool("condor_submit", stdin="executable = /bin/true\nqueue\n").returncode == 0
    queue = os.path.join(workdir, "queue")
    wait_until(lambda: not [name for name in os.listdir(queue) if name.endswith(".job")],
               REQUEST_SHOWN_WITHIN, what="the master to take a new job (a later snapshot)")


def law_blocks(text: str) -> list:
    """law's reading of `-af:lng`: one dict per job, blocks separated by a blank line."""
    return [dict(LAW_BLOCK.findall(block + "\n")) for block in text.split("\n\n") if block.strip()]


def test_tardis_submit_status_suspend_and_remove(tmp_path, start_master, start_worker, tool):
    master = start_master()
    start_worker(master.port)
    pilot = write_script(tmp_path / "drone.sh", "sleep 300\n")
    submitted = tool("condor_submit", "-verbose", "-maxjobs", "1",
                     stdin="executable = %s\nqueue 1\n" % pilot)
    assert submitted.returncode == 0, submitted.stderr
    job_id = TARDIS_SUBMIT.search(submitted.stdout).group(1)

    def status() -> list:
        return tool("condor_q", job_id, "-af:t", "JobStatus", "ClusterId", "ProcId").stdout \
            .rstrip("\n").split("\t")
    wait_until(lambda: status()[0] == "2", JOB_RUNS_WITHIN, what="the drone to run")
    assert status()[1:] == job_id.split(".")
    suspended = tool("condor_suspend", job_id)
    assert suspended.returncode == 0 and suspended.stdout == "Job %s suspended\n" % job_id
    wait_until(lambda: status()[0] == "7", REQUEST_SHOWN_WITHIN,
               what="status 7 after condor_suspend")
    assert tool("condor_continue", job_id).stdout == "Job %s continued\n" % job_id
    # Continued: requeued, then its way to running once more.
    wait_until(lambda: status()[0] == "2", JOB_RUNS_WITHIN, what="the drone to run again")
    removed = tool("condor_rm", job_id)
    assert removed.returncode == 0 and removed.stdout == "Job %s marked for removal\n" % job_id
    wait_until(lambda: status() == [""], REMOVED_JOB_GONE_WITHIN,
               what="the drone to leave the queue")
    too_many = tool("condor_submit", "-verbose", "-maxjobs", "1",
                    stdin="executable = %s\nqueue 2\n" % pilot)
    assert too_many.returncode == 1 and too_many.stderr.startswith("ERROR: ")


def test_law_submit_query_and_history(tmp_path, start_master, start_worker, tool):
    master = start_master()
    start_worker(master.port)
    job = write_script(tmp_path / "law_job.sh", "echo law ran\nexit 3\n")
    (tmp_path / "job.jdl").write_text("executable = %s\noutput = out.txt\nerror = err.txt\n"
                                      "log = log.txt\nqueue\n" % job)
    version = tool("condor_version")
    assert re.match(r"^\$CondorVersion: (\d+)\.(\d+)\.(\d+) .+$", version.stdout.split("\n")[0])
    submitted = tool("condor_submit", "job.jdl", cwd=str(tmp_path))
    count, cluster = LAW_SUBMIT.search(submitted.stdout).groups()
    assert count == "1"
    attrs = ["ClusterId", "ProcId", "JobStatus", "ExitCode", "ExitStatus", "HoldReason",
             "RemoveReason", "MemoryUsage", "RemoteHost"]
    queued = law_blocks(tool("condor_q", "%s.0" % cluster, "-af:lng", *attrs).stdout)
    assert len(queued) in (0, 1)  # it may have finished already
    wait_until(lambda: law_blocks(tool("condor_history", "%s.0" % cluster, "-af:lng",
                                       *attrs).stdout), JOB_DONE_WITHIN,
               what="the job in condor_history")
    done = law_blocks(tool("condor_history", "%s.0" % cluster, "-af:lng", *attrs).stdout)[0]
    assert (done["ClusterId"], done["ProcId"], done["JobStatus"], done["ExitCode"]) == \
        (cluster, "0", "4", "3")
    assert done["HoldReason"] == "undefined"
    assert (tmp_path / "out.txt").read_text() == "law ran\n"
    assert "005 (%03d.000.000)" % int(cluster) in (tmp_path / "log.txt").read_text()


def test_parsl_leave_in_queue_and_remove_then_forcex(tmp_path, start_master, start_worker, tool,
                                                     workdir):
    master = start_master()
    start_worker(master.port)
    work = tmp_path / "parsl"
    work.mkdir()
    (work / "parsl.sh").write_text("echo parsl block ran\n")
    (work / "parsl.submit").write_text(
        "universe = vanilla\nexecutable = /bin/bash\narguments = parsl.sh\n"
        "transfer_executable = false\ntransfer_input_files = parsl.sh\n"
        "output = parsl.out\nerror = parsl.err\nrequirements =\n+projectname =\n"
        "leave_in_queue = TRUE\nqueue\n")
    submitted = tool("condor_submit", "parsl.submit", cwd=str(work))
    assert submitted.returncode == 0, submitted.stderr
    cluster = LAW_SUBMIT.search(submitted.stdout).group(2)
    job_id = "%s.0" % cluster

    def status() -> str:
        return tool("condor_q", job_id, "-af:jr", "JobStatus").stdout.strip()
    wait_until(lambda: status() == "%s 4" % job_id, JOB_DONE_WITHIN,
               what="the job completed, still listed")
    assert (work / "parsl.out").read_text() == "parsl block ran\n"
    # A completed job leaves with the snapshot after the one that showed it completed,
    # unless leave_in_queue keeps it: it stays.
    wait_for_a_later_snapshot(tool, workdir)
    assert status() == "%s 4" % job_id
    assert tool("condor_rm", job_id).returncode == 0
    last = tool("condor_rm", "-forcex", job_id)
    assert last.returncode == 0, last.stderr
    wait_until(lambda: status() == "", REMOVED_JOB_GONE_WITHIN,
               what="condor_rm to take it out of the queue")


def test_a_job_status_never_goes_backwards(tmp_path, start_master, start_worker, tool, workdir):
    from awq.queue_view import read_queue_view
    from awq.spool import Spool
    master = start_master()
    start_worker(master.port)
    job = write_script(tmp_path / "six.sh", "sleep 3\n")
    cluster = LAW_SUBMIT.search(tool("condor_submit", stdin="executable = %s\nqueue\n"
                                     % job).stdout).group(2)
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = [j for j in read_queue_view(Spool(workdir)).jobs.ads()
                if j["ClusterId"] == int(cluster)]
        status = view[0]["JobStatus"] if view else "gone"
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "gone" and len(seen) > 1:
            break
        time.sleep(0.1)
    # Idle, running, completed (maybe too briefly to sample), gone: never back to idle.
    assert seen[0] == 1 and seen[-1] == "gone" and 2 in seen, seen
    assert seen.count(1) == 1 and seen.count(2) == 1, seen
