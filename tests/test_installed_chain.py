"""The chain as a site runs it: CMake install, env.sh, alien_wq_worker.sh, installed commands."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import (JOB_DONE_WITHIN, LOAD_ALLOWANCE, MASTER_LISTENS_WITHIN, PROGRAM_STARTS_WITHIN,
                      MasterHandle, cmake_install, sourced_env)
from testkit import free_port, free_port_block, pid_alive, wait_until

pytestmark = pytest.mark.e2e

# A worker that alien_wq_worker.sh starts first comes up (a C binary: no timer before it
# listens), then runs the job it is handed as a joined worker does.
WORKER_RUNS_A_JOB_WITHIN = PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE + JOB_DONE_WITHIN
# What Work Queue's worker sets on every task (the task's allocation, the directories of its
# sandbox), and PWD, which the task's shell sets to the sandbox.
SET_ON_EVERY_TASK = {"CORES", "MEMORY", "DISK", "OMP_NUM_THREADS", "TMPDIR", "TMP", "TEMP",
                     "WORKER_TMPDIR", "WORK_QUEUE_SANDBOX", "PWD"}
# Those of them that replace the job's own value (the README lists them).
REPLACE_THE_JOBS = SET_ON_EVERY_TASK - {"WORK_QUEUE_SANDBOX", "WORKER_TMPDIR"}


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    cmake_install(str(root / "prefix"), str(root / "build"))
    return str(root / "prefix")


class Site:
    """An installed alien-workqueue with 3 foremen and 5 workers from alien_wq_worker.sh."""

    def __init__(self, prefix: str, tmp_path, procs):
        self.prefix = prefix
        self.tmp = tmp_path
        self.procs = procs
        self.port = free_port()
        self.spool = str(tmp_path / "spool")
        self.env = sourced_env(prefix, AWQ_WORKDIR=self.spool, WQ_MASTER="127.0.0.1:%d" % self.port,
                               WQ_WORKDIR=str(tmp_path / "wq"), WQ_DRAIN=str(tmp_path / "drain"),
                               WQ_MASTER_BASEPORT=str(free_port_block(3)), WQ_NUM_FOREMEN="3",
                               WQ_NUM_WORKERS="5", WQ_RESTART_DELAY="1")
        self.master = None

    def run(self, *argv: str, stdin=None) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True,
                              input=stdin, cwd=str(self.tmp), timeout=120)

    def start_master(self, *args: str) -> None:
        self.master = MasterHandle(self.procs, self.spool, [], self.env,
                                   name="master-%d" % len(self.procs.started))
        argv = [os.path.join(self.prefix, "bin", "alien_work_queue"), "--work-dir", self.spool,
                "--port", str(self.port)] + list(args)
        self.master.proc = self.procs.start(argv, self.master.name, env=self.env, cwd=str(self.tmp))
        self.master.port = self.port
        wait_until(lambda: "listening for workers" in self.master.log(), MASTER_LISTENS_WITHIN,
                   what="the master")

    def tracked_pids(self) -> list:
        piddir = os.path.join(self.env["WQ_WORKDIR"], "pids")
        # KIND-I.pid (a loop) and KIND-I.child (its process); .info and .argv describe them.
        return [int(open(os.path.join(piddir, n)).read()) for n in os.listdir(piddir)
                if n.endswith((".pid", ".child"))]


@pytest.fixture
def site(prefix, tmp_path, procs):
    site = Site(prefix, tmp_path, procs)
    yield site
    site.run("alien_wq_worker.sh", "stop")


def submit_and_read(site: Site, description: str, output: str, marker: str) -> str:
    result = site.run("condor_submit", stdin=description)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^1 job\(s\) submitted to cluster \d+\.$", result.stdout, re.M)
    path = os.path.join(str(site.tmp), output)
    return wait_until(lambda: os.path.exists(path) and marker in open(path).read()
                      and open(path).read(), 90, interval=0.1, what=output)


def test_installed_site_runs_jobs_with_and_without_the_wrapper(site):
    assert site.run("which", "condor_submit").stdout.strip() == site.prefix + "/bin/condor_submit"
    job = site.tmp / "job.sh"
    job.write_text('#!/bin/sh\necho "this is a ${ALIEN_TEST_VARIABLE}${FILTERED_OUT}"\n')
    job.chmod(0o755)
    site.start_master("--job-wrapper", site.prefix + "/etc/alien_job_wrapper.sh")
    assert site.run("alien_wq_worker.sh", "start-foremen").returncode == 0
    assert site.run("alien_wq_worker.sh", "start-workers").returncode == 0
    assert site.run("alien_wq_worker.sh", "count-foremen").stdout.strip() == "3"
    assert site.run("alien_wq_worker.sh", "count-workers").stdout.strip() == "5"
    description = ("executable = job.sh\noutput = job.out\n"
                   "environment = ALIEN_TEST_VARIABLE=test;FILTERED_OUT=yabba\nqueue\n")
    assert submit_and_read(site, description, "job.out", "this is a").strip() == "this is a test"

    site.master.stop()
    os.unlink(str(site.tmp / "job.out"))
    site.start_master()
    assert submit_and_read(site, description, "job.out", "this is a").strip() == "this is a testyabba"

    # AliEn's shape: stdin, arguments, $(Cluster).$(Process) in the environment.
    agent = site.tmp / "agent.startup.42"
    agent.write_text('#!/bin/sh\necho "args=$* id=$CONDOR_ID agent=$ALIEN_JOBAGENT_ID"\n')
    agent.chmod(0o755)
    text = submit_and_read(site, "executable = %s\narguments = -a b\noutput = alien.out\n"
                           "error = alien.err\nlog = alien.log\nenvironment=CONDOR_ID=$(Cluster)."
                           "$(Process);ALIEN_JOBAGENT_ID=42.0\nqueue\n" % agent, "alien.out", "args=")
    assert re.match(r"args=-a b id=\d+\.0 agent=42\.0$", text.strip()), text
    queue = site.run("condor_q", "-constraint", "JobStatus==1 || JobStatus==2")
    assert queue.returncode == 0

    pids = site.tracked_pids()
    assert len(pids) == 16
    assert site.run("alien_wq_worker.sh", "stop").returncode == 0
    assert [pid for pid in pids if pid_alive(pid)] == []


def environment_block(data: bytes) -> dict:
    entries = [e.decode() for e in data.split(b"\0") if b"=" in e]
    return dict(e.split("=", 1) for e in entries)


def test_a_getenv_job_gets_the_submitters_environment_and_nothing_of_ours(site):
    """The installed condor_submit, a master and a worker from alien_wq_worker.sh: a job with
    `getenv = true` sees every variable of the submitter's as it was (its own PYTHONPATH, none
    of ours, nothing of the master's), and besides them only what Work Queue sets on every task;
    the worker's environment is what alien_wq_worker.sh was given."""
    site.env.update(WQ_NUM_FOREMEN="0", WQ_NUM_WORKERS="1")
    # The master's own environment has a name no one else has: it must reach no job.
    site.env["AWQ_THE_MASTERS_OWN"] = "master"
    site.start_master()
    del site.env["AWQ_THE_MASTERS_OWN"]
    assert site.run("alien_wq_worker.sh", "start-workers").returncode == 0
    job = site.tmp / "printenv.sh"
    job.write_text("#!/bin/sh\nexec env -0\n")
    job.chmod(0o755)
    submitter = dict(site.env, PYTHONPATH="/the/users/own/python", WITH_SPACES=" a  b ",
                     WITH_QUOTES="it's \"quoted\";x=y", EMPTY="", NEWLINE="one\ntwo")
    submitter.update({name: "the submitter's " + name for name in SET_ON_EVERY_TASK})
    done = subprocess.run(["condor_submit"], input="executable = printenv.sh\noutput = job.env\n"
                          "getenv = true\nqueue\n", env=submitter, cwd=str(site.tmp),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    output = site.tmp / "job.env"
    seen = environment_block(wait_until(lambda: output.exists() and output.read_bytes(),
                                        WORKER_RUNS_A_JOB_WITHIN, what="the job's environment"))
    worker_pid = int(open(os.path.join(site.env["WQ_WORKDIR"], "pids", "worker-1.child")).read())
    with open("/proc/%d/environ" % worker_pid, "rb") as handle:
        workers = environment_block(handle.read())

    # HTCondor skips a value with a newline (it cannot be written into the job ad).
    expected = {k: v for k, v in submitter.items() if k != "NEWLINE"}
    assert {k for k in expected if seen.get(k) != expected[k]} == REPLACE_THE_JOBS
    assert seen["PYTHONPATH"] == "/the/users/own/python"
    assert "AWQ_THE_MASTERS_OWN" not in seen
    assert not [k for k, v in seen.items() if "lib/alien-workqueue" in v or "dist-packages" in v]
    # Nothing else: a name the job did not set would be the worker's, and the worker's
    # environment is what alien_wq_worker.sh was given, none of the settings it exports
    # for itself (WQ_PASSWORD, WQ_FACTORY_*, ...).
    assert set(seen) - set(expected) == set()
    assert set(workers) - set(site.env) == set()
