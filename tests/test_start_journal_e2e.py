"""A pilot that started in the last moment before a kill -9 of the master is counted:
the start journal (awq/spool/starts.py) holds what no snapshot did yet."""

from __future__ import annotations

import os
import re
import shutil
import signal

import pytest

from awq import jobs
from awq.spool import Spool
from awq.spool.starts import merge_lines
from conftest import (FOREMAN_HOP_WITHIN, JOB_DONE_WITHIN, JOB_RUNS_WITHIN, LOAD_ALLOWANCE,
                      MASTER_LISTENS_WITHIN, PILOT_ENDS_WITHIN, PYTHON, REPO,
                      REQUEST_SHOWN_WITHIN, WORKER_JOINS_WITHIN, MasterHandle, master_on_port,
                      password_args, product_env, run_tool, write_script)
from testkit import free_port, wait_until

pytestmark = pytest.mark.e2e

WQ_WORKER = shutil.which("work_queue_worker") or "work_queue_worker"

# The master of the round that gets killed writes its first snapshot at once and then
# none for this long: every start it sees lands in the journal alone, as a start just
# before the next snapshot would, without a race against the snapshot timer.
NO_SNAPSHOT_FOR = 3600.0
SLOW_SNAPSHOT_MASTER = (
    "import awq.master as m\n"
    "m.FLUSH_INTERVAL = m.MAX_FLUSH_INTERVAL = %r\n"
    "from awq.cli.alien_work_queue import cli\n"
    "cli()\n" % NO_SNAPSHOT_FOR)


class SlowSnapshotMaster(MasterHandle):
    def start(self, timeout: float = MASTER_LISTENS_WITHIN) -> "SlowSnapshotMaster":
        argv = [PYTHON, "-c", SLOW_SNAPSHOT_MASTER, "--work-dir", self.workdir] + self.extra_args
        self.proc = self.procs.start(argv, self.name, env=self.env, cwd=REPO)
        self.port = int(wait_until(self._logged_port, timeout, what="the master's port"))
        return self


def submit(workdir: str, description: str) -> int:
    result = run_tool("condor_submit", [], workdir, stdin=description)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"submitted to cluster (\d+)\.", result.stdout).group(1))


def journaled_starts(workdir: str) -> dict:
    directory = os.path.join(workdir, "starts")
    latest: dict = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as segment:
            merge_lines(segment.read(), latest)
    return {jid: start.starts for jid, start in latest.items()}


def snapshot_jobs(workdir: str) -> dict:
    state = Spool(workdir).published.load_snapshot()
    return state["jobs"] if state else {}


def test_a_start_just_before_a_kill_minus_nine_is_counted(tmp_path, procs, workdir,
                                                          start_worker):
    port = free_port()
    # First run: leaves a mark and runs until killed; second run: ends at once.
    pilot = write_script(tmp_path / "pilot.sh",
                         'if [ -e "$1" ]; then exit 0; fi\n: > "$1"\nexec sleep 600\n')
    master = master_on_port(procs, workdir, port, 0)
    in_snapshot = submit(workdir, "executable = %s\narguments = %s\nqueue\n"
                         % (pilot, tmp_path / "mark-a"))
    wait_until(lambda: (in_snapshot, 0) in snapshot_jobs(workdir), REQUEST_SHOWN_WITHIN,
               what="job A in a snapshot")
    master.stop()

    slow = SlowSnapshotMaster(procs, workdir, ["--port", str(port)], product_env(workdir),
                              name="master-1").start()
    # Its one snapshot, written in its first turn: job B must come after it.
    wait_until(lambda: (Spool(workdir).published.load_snapshot() or {}).get("master_pid")
               == slow.proc.pid, MASTER_LISTENS_WITHIN, what="the slow master's one snapshot")
    # Job B is taken from its record by this master and is in none of its snapshots.
    record_only = submit(workdir, "executable = %s\narguments = %s\nqueue\n"
                         % (pilot, tmp_path / "mark-b"))
    start_worker(port, cores=2)
    both = {(in_snapshot, 0): 1, (record_only, 0): 1}
    wait_until(lambda: journaled_starts(workdir) == both, JOB_RUNS_WITHIN,
               what="both starts in the journal")
    saved = snapshot_jobs(workdir)
    assert saved[(in_snapshot, 0)]["JobStatus"] == jobs.JobStatus.IDLE
    assert saved[(in_snapshot, 0)].get("NumJobStarts", 0) == 0
    assert (record_only, 0) not in saved
    slow.proc.send_signal(signal.SIGKILL)
    slow.proc.wait(MASTER_LISTENS_WITHIN)

    again = master_on_port(procs, workdir, port, 2)

    def counted_from_journal():
        # Job A when the snapshot is restored, job B once its record is taken again.
        counts = re.findall(r"(\d+) job\(s\) started after the last snapshot", again.log())
        return sum(map(int, counts)) == 2
    wait_until(counted_from_journal, MASTER_LISTENS_WITHIN, what="the journal replayed")
    history = Spool(workdir).history

    def both_done():
        done = {jobs.job_id(job): job for job in history.read()}
        return done if set(both) <= set(done) else None
    # The worker ends the dead master's pilots, rejoins, and runs both again.
    done = wait_until(both_done, PILOT_ENDS_WITHIN + WORKER_JOINS_WITHIN * LOAD_ALLOWANCE
                      + JOB_DONE_WITHIN, interval=0.2, what="both jobs run again")
    for jid in both:
        assert done[jid]["JobStatus"] == jobs.JobStatus.COMPLETED
        assert done[jid]["NumJobStarts"] == 2 and done[jid]["JobRunCount"] == 2, done[jid]
        assert "job %d.0: idle -> running: on" % jid[0] in again.log()
        assert "(start 2)" in again.log()


def submit_pilot_that_runs_twice(tmp_path, workdir):
    """A pilot whose first run writes its PID and sleeps, and whose second run ends at once
    (printing "second run"): returns its cluster and the PID file of the first run."""
    pid_file = tmp_path / "pilot.pid"
    pilot = write_script(tmp_path / "pilot.sh",
                         'if [ -e "$1" ]; then echo second run; exit 0; fi\n: > "$1"\n'
                         'echo $$ > "$2.tmp" && mv "$2.tmp" "$2"\nexec sleep 600\n')
    cluster = submit(workdir, "executable = %s\narguments = %s %s\noutput = %s\nqueue\n"
                     % (pilot, tmp_path / "mark", pid_file, tmp_path / "pilot.out"))
    return cluster, pid_file


def kill_worker_and_its_pilot(worker, pid_file) -> None:
    """The worker dies by kill -9, which leaves its pilot running; then that pilot is
    killed by the PID it wrote, so only a second run can write the output."""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(MASTER_LISTENS_WITHIN)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_foremans_own_retry_is_invisible_to_the_master(tmp_path, procs, workdir,
                                                         start_master):
    """The limit the README states: a foreman re-runs a pilot whose worker died on another
    of its workers, and Work Queue tells the master nothing (the task stays on the
    foreman). The job shows one start; if Work Queue ever tells, this fails and the
    README's limit must go."""
    master = start_master()
    foreman_port = free_port()
    password = password_args(workdir)
    (tmp_path / "foreman").mkdir()
    procs.start([WQ_WORKER, "--foreman", "--foreman-port", str(foreman_port), "--workdir",
                 str(tmp_path / "foreman"), "--timeout", "120"] + password
                + ["127.0.0.1", str(master.port)], "foreman")

    def worker_of_foreman(name: str):
        (tmp_path / name).mkdir()
        return procs.start([WQ_WORKER, "--cores", "1", "--workdir", str(tmp_path / name),
                            "--timeout", "120"] + password
                           + ["127.0.0.1", str(foreman_port)], name)
    first = worker_of_foreman("worker1")
    cluster, pid_file = submit_pilot_that_runs_twice(tmp_path, workdir)
    wait_until(lambda: pid_file.exists() and "job %d.0: idle -> running" % cluster
               in master.log(), JOB_RUNS_WITHIN + FOREMAN_HOP_WITHIN,
               what="the pilot running under the foreman")
    kill_worker_and_its_pilot(first, pid_file)  # the worker dies; its pilot too
    worker_of_foreman("worker2")               # the foreman runs the pilot again here
    history = Spool(workdir).history
    done = wait_until(lambda: {jobs.job_id(j): j for j in history.read()}.get((cluster, 0)),
                      JOB_DONE_WITHIN + FOREMAN_HOP_WITHIN, interval=0.2,
                      what="the pilot's second run to end")
    assert (tmp_path / "pilot.out").read_text() == "second run\n"   # it did run twice
    assert done["JobStatus"] == jobs.JobStatus.COMPLETED
    assert done["NumJobStarts"] == 1           # and the master saw one start
    assert master.log().count("job %d.0: idle -> running" % cluster) == 1
    assert "job %d.0: running -> idle" % cluster not in master.log()


def test_a_rerun_after_a_worker_on_the_master_died_is_a_start_and_a_log_line(
        tmp_path, workdir, start_master, start_worker):
    """Where Work Queue does tell: a worker straight on the master dies, its task goes back
    to waiting, and its next start is counted and logged."""
    master = start_master()
    first = start_worker(master.port)
    cluster, pid_file = submit_pilot_that_runs_twice(tmp_path, workdir)
    wait_until(lambda: pid_file.exists() and "job %d.0: idle -> running" % cluster
               in master.log(), JOB_RUNS_WITHIN, what="the pilot running")
    kill_worker_and_its_pilot(first, pid_file)
    start_worker(master.port)
    history = Spool(workdir).history
    done = wait_until(lambda: {jobs.job_id(j): j for j in history.read()}.get((cluster, 0)),
                      JOB_DONE_WITHIN, interval=0.2, what="the pilot's second run to end")
    assert done["NumJobStarts"] == 2 and done["JobRunCount"] == 2
    assert done["JobLastStartDate"] <= done["JobCurrentStartDate"]
    log = master.log()
    assert "job %d.0: running -> idle: its worker" % cluster in log
    assert "job %d.0: idle -> running: on" % cluster in log and "(start 2)" in log
