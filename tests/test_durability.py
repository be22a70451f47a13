"""Nothing accepted is lost: kill -9 of the master or a foreman, concurrent submitters."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from awq import jobs
from awq.queue_view import read_queue_view
from awq.spool import Spool
from conftest import (FOREMAN_HOP_WITHIN, JOB_DONE_WITHIN, JOB_RUNS_WITHIN,
                      MASTER_LISTENS_WITHIN, PYTHON, REMOVED_JOB_GONE_WITHIN, REPO,
                      REQUEST_SHOWN_WITHIN, MasterHandle, master_on_port, password_args,
                      run_tool)
from testkit import free_port, free_port_block, pid_alive, wait_until

WQ_WORKER = shutil.which("work_queue_worker") or "work_queue_worker"


def short_job(tmp_path) -> str:
    path = tmp_path / "short.sh"
    path.write_text("#!/bin/sh\necho start $1\nsleep 0.1\necho end $1\n")
    path.chmod(0o755)
    return str(path)


def submit(workdir: str, description: str) -> int:
    result = run_tool("condor_submit", [], workdir, stdin=description)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"submitted to cluster (\d+)\.", result.stdout).group(1))


def start_foremen_and_workers(procs, tmp_path, master_port: int, foremen: int, workers: int,
                              extra=()):
    extra = password_args(str(tmp_path / "spool")) + list(extra)
    base = free_port_block(foremen)
    foreman_procs = []
    for index in range(1, foremen + 1):
        scratch = tmp_path / ("foreman%d" % index)
        scratch.mkdir()
        foreman_procs.append(procs.start(
            [WQ_WORKER, "--foreman", "--foreman-port", str(base + index), "--workdir", str(scratch),
             "--timeout", "300", "-d", "wq", "-o", str(tmp_path / ("foreman%d.debug" % index))] + list(extra) + ["127.0.0.1", str(master_port)],
            "foreman%d" % index))
    managers = ["127.0.0.1:%d" % (base + i) for i in range(1, foremen + 1)]
    worker_procs = []
    for index in range(workers):
        scratch = tmp_path / ("fworker%d" % index)
        scratch.mkdir()
        rotated = managers[index % foremen:] + managers[:index % foremen]
        worker_procs.append(procs.start(
            [WQ_WORKER, "--cores", "1", "--workdir", str(scratch), "--timeout", "300"]
            + list(extra) + [";".join(rotated)], "fworker%d" % index))
    return foreman_procs, worker_procs


def finished_jobs(workdir: str) -> dict:
    return {jobs.job_id(j): j for j in Spool(workdir).history.read()}


def test_kill_minus_nine_of_the_master_loses_no_job(tmp_path, procs, workdir):
    seed = int(os.environ.get("AWQ_CRASH_SEED", time.time()))
    rng = random.Random(seed)
    port = free_port()

    def start_master(round_number: int) -> MasterHandle:
        return master_on_port(procs, workdir, port, round_number)

    master = start_master(0)
    start_foremen_and_workers(procs, tmp_path, port, foremen=2, workers=6)
    job = short_job(tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    description = ("executable = %s\narguments = $(Cluster).$(Process)\n"
                   "output = %s/$(Cluster).$(Process).out\nqueue 5\n" % (job, outdir))
    clusters = []
    submitter_done = threading.Event()

    def submitter():
        for _ in range(60):
            clusters.append(submit(workdir, description))
            time.sleep(rng.uniform(0.0, 0.08))
        submitter_done.set()

    thread = threading.Thread(target=submitter)
    thread.start()
    # Kill at random points while jobs flow, so some are running when the master dies.
    for kill_round, threshold in enumerate(sorted(rng.sample(range(20, 240), 2))):
        wait_until(lambda: len(finished_jobs(workdir)) >= threshold, 300, interval=0.1,
                   what="%d finished jobs" % threshold)
        time.sleep(rng.uniform(0.0, 1.0))
        master.proc.send_signal(signal.SIGKILL)
        master.proc.wait(10)
        master = start_master(kill_round + 1)
    thread.join(300)
    assert submitter_done.is_set()
    expected = {(c, p) for c in clusters for p in range(5)}
    assert len(expected) == 300
    wait_until(lambda: set(finished_jobs(workdir)) >= expected, 400, interval=0.5,
               what="all 300 jobs to finish")
    history = finished_jobs(workdir)
    lost = [jid for jid in expected if history[jid]["JobStatus"] != jobs.JobStatus.COMPLETED]
    incomplete = [jid for jid in expected
                  if "end %d.%d" % jid not in (outdir / ("%d.%d.out" % jid)).read_text()]
    rerun = sum(1 for jid in expected if history[jid].get("NumJobStarts", 0) > 1)
    sys.stderr.write("crash test (AWQ_CRASH_SEED=%d): jobs=300 lost=%d incomplete=%d rerun=%d\n"
                     % (seed, len(lost), len(incomplete), rerun))
    assert lost == [] and incomplete == []
    assert all(history[jid].get("ExitCode") == 0 for jid in expected)


def test_killing_a_foreman_does_not_lose_its_jobs(tmp_path, procs, start_master):
    master = start_master()
    foremen, _ = start_foremen_and_workers(procs, tmp_path, master.port, foremen=2, workers=4)
    gate = tmp_path / "go"
    job = tmp_path / "gated.sh"
    job.write_text("#!/bin/sh\ni=0\nwhile [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.1; "
                   "i=$((i+1)); done\necho end $1\n" % gate)
    job.chmod(0o755)
    cluster = submit(master.workdir, "executable = %s\narguments = $(Process)\n"
                                     "output = %s/f.$(Process).out\nqueue 4\n" % (job, tmp_path))
    running = lambda: sum(1 for j in read_queue_view(Spool(master.workdir)).jobs.ads()
                          if j["JobStatus"] == jobs.JobStatus.RUNNING)
    wait_until(lambda: running() == 4, JOB_RUNS_WITHIN + FOREMAN_HOP_WITHIN,
               what="4 running jobs")
    foremen[0].kill()
    foremen[0].wait(10)
    gate.write_text("")
    # The master hears of the lost foreman inside its wait() and requeues its jobs; its
    # workers try the other foreman next: each job's way again, through one hop.
    wait_until(lambda: len([j for j in finished_jobs(master.workdir).values()
                            if j["ClusterId"] == cluster]) == 4,
               JOB_DONE_WITHIN + FOREMAN_HOP_WITHIN, interval=0.25,
               what="every job to finish after the foreman died")
    for proc in range(4):
        assert "end %d" % proc in (tmp_path / ("f.%d.out" % proc)).read_text()
    statuses = {j["JobStatus"] for j in finished_jobs(master.workdir).values()}
    assert statuses == {jobs.JobStatus.COMPLETED}


def _submit_batch(workdir: str, job: str, count: int) -> list:
    return [submit(workdir, "executable = %s\nqueue\n" % job) for _ in range(count)]


def test_concurrent_submitters_and_readers(tmp_path, start_master, start_worker, workdir):
    master = start_master()
    job = short_job(tmp_path)
    with ThreadPoolExecutor(max_workers=20) as pool:
        batches = list(pool.map(lambda _: _submit_batch(workdir, job, 25), range(20)))
    clusters = [c for batch in batches for c in batch]
    assert len(clusters) == 500 and len(set(clusters)) == 500
    wait_until(lambda: len(read_queue_view(Spool(workdir)).jobs) == 500, REQUEST_SHOWN_WITHIN,
               what="500 jobs in the queue view")
    listing = run_tool("condor_q", ["-af", "ClusterId"], workdir)
    assert sorted(int(x) for x in listing.stdout.split()) == sorted(clusters)
    # Let the master churn (jobs finish, snapshots rewritten) while readers read.
    for _ in range(2):
        start_worker(master.port)
    errors = []

    def read_many(count: int) -> None:
        for _ in range(count):
            try:
                view = read_queue_view(Spool(workdir))
                assert all(isinstance(j["ClusterId"], int) for j in view.jobs.ads())
            except Exception as err:  # any torn read is a failure
                errors.append(repr(err))
    readers = [threading.Thread(target=read_many, args=(240,)) for _ in range(4)]
    for reader in readers:
        reader.start()
    cli_failures = []
    for _ in range(40):
        result = run_tool("condor_q", ["-constraint", "JobStatus==1 || JobStatus==2"], workdir)
        if result.returncode != 0:
            cli_failures.append(result.stderr)
    for reader in readers:
        reader.join(300)
    assert errors == [] and cli_failures == []
    wait_until(lambda: len(finished_jobs(workdir)) == 500, 300, interval=0.5,
               what="all 500 jobs to finish")


def test_sigterm_saves_the_table_and_restart_requeues_running_jobs(tmp_path, start_master,
                                                                   start_worker, workdir, procs):
    master = start_master()
    gate = tmp_path / "go"
    job = tmp_path / "gated.sh"
    job.write_text("#!/bin/sh\ni=0\nwhile [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.1; "
                   "i=$((i+1)); done\necho end\n" % gate)
    job.chmod(0o755)
    worker = start_worker(master.port)
    cluster = submit(workdir, "executable = %s\noutput = %s/t.out\nqueue\n" % (job, tmp_path))
    wait_until(lambda: read_queue_view(Spool(workdir)).jobs.column("JobStatus") == [2],
               JOB_RUNS_WITHIN,
               what="the job to run")
    master.stop(signal.SIGTERM)
    assert master.proc.returncode == 0
    procs.stop(worker)
    saved = Spool(workdir).published.load_snapshot()["jobs"][(cluster, 0)]
    assert saved["JobStatus"] == jobs.JobStatus.RUNNING
    again = start_master()
    assert "requeued" in again.log()
    gate.write_text("")
    start_worker(again.port)
    wait_until(lambda: (cluster, 0) in finished_jobs(workdir), JOB_DONE_WITHIN,
               what="the requeued job")
    done = finished_jobs(workdir)[(cluster, 0)]
    assert done["JobStatus"] == jobs.JobStatus.COMPLETED and done["NumJobStarts"] == 2
    assert (tmp_path / "t.out").read_text() == "end\n"


def test_removal_requested_while_the_master_is_down_is_carried_out(tmp_path, start_master,
                                                                   start_worker, workdir):
    master = start_master()
    master.stop()
    job = tmp_path / "never.sh"
    job.write_text("#!/bin/sh\ntouch %s/ran\n" % tmp_path)
    job.chmod(0o755)
    cluster = submit(workdir, "executable = %s\nqueue\n" % job)
    removed = run_tool("condor_rm", [str(cluster)], workdir)
    assert removed.returncode == 0, removed.stderr
    again = start_master()
    start_worker(again.port)
    wait_until(lambda: (cluster, 0) in finished_jobs(workdir), REMOVED_JOB_GONE_WITHIN,
               what="the removal")
    assert finished_jobs(workdir)[(cluster, 0)]["JobStatus"] == jobs.JobStatus.REMOVED
    # It never reached a worker: no task was made for it, so it can never run later.
    assert "job %d.0: idle -> removed" % cluster in again.log()
    assert "job %d.0: idle -> running" % cluster not in again.log()
    assert not (tmp_path / "ran").exists()


def test_half_written_temp_files_are_ignored_then_swept(tmp_path, procs, start_master,
                                                       start_worker, workdir):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a writer that died mid-write: its PID is in the temp names
    live_pid = os.getpid()  # a writer still running: its file must survive
    Spool(workdir, create=True)
    queue_dir = os.path.join(workdir, "queue")
    torn = os.path.join(queue_dir, ".99.job.tmp.%d.abcd" % dead.pid)
    in_progress = os.path.join(queue_dir, ".98.job.tmp.%d.abcd" % live_pid)
    torn_state = os.path.join(workdir, ".state.pickle.tmp.%d.abcd" % dead.pid)
    for path, data in ((torn, b'{"version": 1, "jobs": [{"ClusterId": 99'),
                       (in_progress, b'{"version": 1'), (torn_state, b"\x80\x04garbage")):
        with open(path, "wb") as handle:
            handle.write(data)
    master = start_master()
    # The master sweeps just after it logs its port, which start_master waits for.
    wait_until(lambda: not os.path.exists(torn) and not os.path.exists(torn_state),
               MASTER_LISTENS_WITHIN, what="the sweep of dead writers' temp files")
    assert os.path.exists(in_progress)
    job = short_job(tmp_path)
    cluster = submit(workdir, "executable = %s\noutput = %s/h.out\nqueue\n" % (job, tmp_path))
    start_worker(master.port)
    wait_until(lambda: (cluster, 0) in finished_jobs(workdir), JOB_DONE_WITHIN, what="the job")
    assert master.proc.poll() is None and pid_alive(master.proc.pid)
    assert 99 not in [c for c, _ in finished_jobs(workdir)]
