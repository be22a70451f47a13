"""Hostile input and trust boundaries, against the real tools and a running master."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from awq.queue_view import read_queue_view
from awq.spool import Spool
from conftest import (JOB_DONE_WITHIN, LOAD_ALLOWANCE, MASTER_WAITS_EVERY, PROGRAM_STARTS_WITHIN,
                      PYTHON, REPO, REQUEST_SHOWN_WITHIN, product_env, write_script)
from testkit import wait_until

# A worker just started connects at once; Work Queue checks its password inside the
# master's next wait().
WORKER_REFUSED_WITHIN = (PROGRAM_STARTS_WITHIN + MASTER_WAITS_EVERY) * LOAD_ALLOWANCE

NOBODY = 65534


def spool_fingerprint(workdir: str) -> dict:
    """Everything a submission or removal could have changed."""
    result = {}
    for sub in ("queue", "rm"):
        base = os.path.join(workdir, sub)
        for dirpath, _, files in os.walk(base):
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as handle:
                    result[os.path.relpath(path, workdir)] = hashlib.sha1(handle.read()).hexdigest()
    counter = os.path.join(workdir, "next_cluster")
    result["next_cluster"] = open(counter).read() if os.path.exists(counter) else None
    return result


def assert_one_clean_error(result: subprocess.CompletedProcess,
                           prefix: str = "ERROR: ") -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines, "no error message"
    assert "Traceback" not in result.stderr
    assert any(line.startswith(prefix) for line in lines), result.stderr


@pytest.fixture
def running_master(tmp_path, start_master, tool):
    master = start_master()
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/sh\necho ok\n")
    ok.chmod(0o755)
    # One accepted job so the spool has a counter and a record to compare.
    assert tool("condor_submit", stdin="executable = %s\nqueue\n" % ok).returncode == 0
    queue_dir = os.path.join(master.workdir, "queue")
    wait_until(lambda: not [n for n in os.listdir(queue_dir) if n.endswith(".job")],
               REQUEST_SHOWN_WITHIN, what="the master to take the first record")
    return master


def hostile_descriptions(tmp_path) -> list:
    ok = str(tmp_path / "ok.sh")
    unreadable = tmp_path / "unreadable.sh"
    unreadable.write_text("#!/bin/sh\n")
    unreadable.chmod(0o000)
    return [
        ("binary bytes", b"\xff\xfe\x00\x81executable = /bin/true\nqueue\n"),
        ("NUL byte", ("executable = %s\narguments = a\0b\nqueue\n" % ok).encode()),
        ("10 MB line", b"executable = " + b"x" * (10 * 1024 * 1024) + b"\nqueue\n"),
        ("unbalanced double quote", ('executable = %s\narguments = "a b\nqueue\n' % ok).encode()),
        ("unbalanced single quote", ("executable = %s\narguments = \"'a b\"\nqueue\n" % ok).encode()),
        ("unbalanced env quote", ("executable = %s\nenvironment = \"A='x\"\nqueue\n" % ok).encode()),
        ("missing executable", b"output = /tmp/x\nqueue\n"),
        ("nonexistent executable", b"executable = /nonexistent/agent.sh\nqueue\n"),
        ("directory as executable", ("executable = %s\nqueue\n" % tmp_path).encode()),
        ("../ path to nowhere", ("executable = %s/../../nonexistent/../x.sh\nqueue\n" % tmp_path).encode()),
        ("output in a missing directory", ("executable = %s\noutput = %s/no/such/dir/o\nqueue\n"
                                           % (ok, tmp_path)).encode()),
        ("100,000 queue items", ("executable = %s\nqueue 100000\n" % ok).encode()),
        ("no queue statement", ("executable = %s\n" % ok).encode()),
        ("garbage line", ("executable = %s\nthis is not a command\nqueue\n" % ok).encode()),
        ("bad +attribute expression", ("executable = %s\n+Foo = (1 +\nqueue\n" % ok).encode()),
        ("recursive macros", ("executable = %s\na = $(b)\nb = $(a)\narguments = $(a)\nqueue\n"
                              % ok).encode()),
        ("empty input", b""),
        ("output path with a space", ("executable = %s\noutput = %s/a b.out\nqueue\n"
                                      % (ok, tmp_path)).encode()),
        ("2,016 +attributes", ("executable = %s\n%squeue\n" % (ok, "".join(
            "+A%d = %d\n" % (i, i) for i in range(2016)))).encode()),
        ("10,000 jobs of 10 KB arguments", ("executable = %s\narguments = %s\nqueue 10000\n"
                                            % (ok, "x" * 10240)).encode()),
    ] + ([] if os.geteuid() == 0 else
         [("unreadable executable", ("executable = %s\nqueue\n" % unreadable).encode())])


def test_hostile_submit_descriptions_get_one_error_and_change_nothing(tmp_path, running_master,
                                                                     workdir):
    env = product_env(workdir)
    for label, data in hostile_descriptions(tmp_path):
        before = spool_fingerprint(workdir)
        result = subprocess.run([PYTHON, "-m", "awq.cli.condor_submit"], input=data,
                                capture_output=True, env=env, cwd=str(tmp_path), timeout=120)
        decoded = subprocess.CompletedProcess(result.args, result.returncode,
                                              result.stdout.decode(errors="replace"),
                                              result.stderr.decode(errors="replace"))
        try:
            assert_one_clean_error(decoded)
            assert len(decoded.stderr.strip().splitlines()) == 1, decoded.stderr
        except AssertionError as err:
            raise AssertionError("%s: %s" % (label, err))
        assert spool_fingerprint(workdir) == before, label
    assert running_master.proc.poll() is None


@pytest.mark.parametrize("tool_name, args", [
    ("condor_q", ["-constraint"]),
    ("condor_q", ["-constraint", "JobStatus == (1"]),
    ("condor_q", ["-format"]),
    ("condor_q", ["-format", "%d"]),
    ("condor_q", ["-bogus-option"]),
    ("condor_q", ["-name", "wrong.docker"]),
    ("condor_q", ["-af"]),
    ("condor_rm", []),
    ("condor_rm", ["-constraint"]),
    ("condor_rm", ["-constraint", "JobStatus ==="]),
    ("condor_rm", ["12.x"]),
    ("condor_rm", ["../../etc/passwd"]),
    ("condor_rm", ["-name", "wrong.docker", "1"]),
    ("condor_rm", ["99999999"]),
    ("condor_rm", ["-bogus"]),
    ("condor_rm", ["\x01\x02"]),
    ("condor_status", ["-schedd", "-af"]),
    ("condor_status", ["-name", "wrong.docker", "-schedd"]),
])
def test_malformed_query_and_removal_arguments(running_master, workdir, tool, tool_name, args):
    before = spool_fingerprint(workdir)
    result = tool(tool_name, *args)
    # HTCondor's own wording for a job that is not in the queue.
    unknown_job = tool_name == "condor_rm" and args == ["99999999"]
    assert_one_clean_error(result, "Couldn't find/remove" if unknown_job else "ERROR: ")
    assert spool_fingerprint(workdir) == before
    assert running_master.proc.poll() is None


def test_condor_rm_with_a_wrong_schedd_name_leaves_the_job(tmp_path, running_master, tool):
    jobs_before = tool("condor_q", "-af", "ClusterId").stdout
    result = tool("condor_rm", "-name", "wrong.docker", "1")
    assert result.returncode != 0
    assert "Can't find address for schedd wrong.docker" in result.stderr
    assert tool("condor_q", "-af", "ClusterId").stdout == jobs_before


def test_forged_records_are_quarantined_and_the_master_keeps_running(tmp_path, running_master,
                                                                     workdir):
    queue_dir = os.path.join(workdir, "queue")
    forged = {
        "900.job": b"\x80\x04 not json",
        "901.job": json.dumps({"version": 1, "jobs": [{"ClusterId": 1, "ProcId": 0}]}).encode(),
        "902.job": json.dumps({"version": 1, "jobs": [{
            "ClusterId": 902, "ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "relative.sh"}]}).encode(),
        "903.job": json.dumps({"version": 1, "jobs": [{
            "ClusterId": 903, "ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "/bin/true",
            "Out": "/tmp/../etc/x"}]}).encode(),
        "904.job": json.dumps({"version": 1, "jobs": []}).encode(),
        "906.job": json.dumps({"version": 1, "jobs": [{
            "ClusterId": 906, "ProcId": 0, "JobStatus": 1, "QDate": 1,
            "Cmd": "x\n2026-01-01 alien_work_queue[1] ERROR: forged line"}]}).encode(),
    }
    for name, data in forged.items():
        path = os.path.join(queue_dir, name)
        with open(path, "wb") as handle:
            handle.write(data)
    group_writable = os.path.join(queue_dir, "905.job")
    with open(group_writable, "wb") as handle:
        handle.write(b"{}")
    os.chmod(group_writable, 0o666)
    wait_until(lambda: not any(n in os.listdir(queue_dir) for n in forged), REQUEST_SHOWN_WITHIN,
               what="forged records to be taken out of the queue")
    quarantined = os.listdir(os.path.join(queue_dir, "bad"))
    for name in forged:
        assert any(q.startswith(name) for q in quarantined), name
    log = running_master.log()
    assert "refused spool record 902.job" in log and "absolute" in log
    assert "Traceback" not in log
    assert running_master.proc.poll() is None
    # A refused job that can be named stays in sight, held with the reason; nothing else appears.
    def refused_jobs() -> dict:
        return {j["ClusterId"]: j for j in read_queue_view(Spool(workdir)).jobs.ads()
                if j["ClusterId"] >= 900}
    wait_until(lambda: len(refused_jobs()) >= 4, REQUEST_SHOWN_WITHIN,
               what="the refused jobs to show up held")
    shown = refused_jobs()
    assert sorted(shown) == [901, 902, 903, 906]
    for job in shown.values():
        assert job["JobStatus"] == 5 and job["HoldReason"].startswith("the master refused this job")
    assert "absolute" in shown[902]["HoldReason"] and "normalised" in shown[903]["HoldReason"]
    assert "refused spool record 906.job" in log
    assert not any(line.startswith("2026-01-01") for line in log.splitlines()), "forged log line"


@pytest.mark.e2e
def test_spool_owned_by_another_user_is_refused_by_every_tool(tmp_path, workdir):
    spool = Spool(workdir, create=True)
    spool.published.write_snapshot({"jobs": {}})
    os.chown(workdir, NOBODY, -1)
    env = product_env(workdir)
    for argv in (["-m", "awq.cli.condor_q"], ["-m", "awq.cli.condor_rm", "1"],
                 ["-m", "awq.cli.condor_submit"],
                 ["-m", "awq.cli.alien_work_queue", "--work-dir", workdir, "--port", "0"]):
        result = subprocess.run([PYTHON] + argv, input="executable=/bin/true\nqueue\n",
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode != 0, argv
        assert "owned by" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.e2e
def test_group_writable_snapshot_is_refused_and_not_loaded(tmp_path, workdir):
    spool = Spool(workdir, create=True)
    spool.published.write_snapshot({"jobs": {}})
    os.chmod(spool.snapshot_path, 0o664)
    env = product_env(workdir)
    master = subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", workdir, "--port", "0"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert master.returncode != 0
    assert "writable by group" in master.stderr and "Traceback" not in master.stderr
    spool.published.write_stat(0, 0)
    query = subprocess.run([PYTHON, "-m", "awq.cli.condor_q"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert query.returncode != 0 and "writable by group" in query.stderr


def test_unauthenticated_worker_gets_no_task(tmp_path, start_master, start_worker, tool):
    password = tmp_path / "pw"
    password.write_text("s3cret-for-this-test\n")
    password.chmod(0o600)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    master = start_master("--password", str(password))
    job = write_script(tmp_path / "pilot.sh", "echo pilot ran\n")
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nqueue\n"
                % (job, out)).returncode == 0
    no_password = start_worker(master.port, password=None)
    wrong_password = start_worker(master.port, password=str(wrong))
    # The front refuses both and logs it (one line per peer a minute: both are 127.0.0.1);
    # each worker's own log says why.
    wait_until(lambda: "requires a password" in open(no_password.log_path).read()
               and "wrong password for manager" in open(wrong_password.log_path).read(),
               WORKER_REFUSED_WITHIN, what="both workers to be refused")
    assert "refused a connection from 127.0.0.1" in master.log()
    assert not out.exists()
    queue = tool("condor_q", "-af", "JobStatus").stdout.split()
    assert queue == ["1"]
    for worker in (no_password, wrong_password):
        assert not re.search(r"pilot ran", open(worker.log_path).read())
    start_worker(master.port, password=str(password))
    wait_until(lambda: out.exists() and "pilot ran" in out.read_text(), JOB_DONE_WITHIN,
               what="the authenticated worker to run the pilot")


def test_master_makes_a_private_password_and_a_plain_worker_gets_nothing(tmp_path, start_master,
                                                                         start_worker, tool):
    master = start_master()
    password = os.path.join(master.workdir, "password")
    assert os.stat(password).st_mode & 0o777 == 0o600
    assert "workers authenticate with the password in %s" % password in master.log()
    assert "not encrypted" in master.log()
    job = write_script(tmp_path / "pilot.sh", "echo pilot ran\n")
    proxy = tmp_path / "proxy"
    proxy.write_text("fake proxy\n")
    proxy.chmod(0o600)
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nx509userproxy = %s\nqueue\n"
                % (job, out, proxy)).returncode == 0
    plain = start_worker(master.port, password=None)
    wait_until(lambda: "password" in master.log().split("not encrypted", 1)[1],
               WORKER_REFUSED_WITHIN,
               what="the master to refuse the plain worker")
    scratch = tmp_path / "worker1"
    assert not out.exists()
    assert not [f for _, _, files in os.walk(str(scratch)) for f in files if "proxy" in f or "x509" in f]
    assert plain.poll() is None or "pilot ran" not in open(plain.log_path).read()
    start_worker(master.port)  # the spool's password, as alien_wq_worker.sh finds it
    wait_until(lambda: out.exists() and "pilot ran" in out.read_text(), JOB_DONE_WITHIN,
               what="the authenticated worker to run the pilot")
    # The same password on the next start: workers keep working across restarts.
    before = open(password).read()
    master.stop()
    start_master()
    assert open(password).read() == before


@pytest.mark.e2e
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_password_file_others_can_read_is_refused(tmp_path, workdir, mode):
    password = tmp_path / "pw"
    password.write_text("secret\n")
    password.chmod(mode)
    result = subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", workdir,
                             "--port", "0", "--password", str(password)],
                            capture_output=True, text=True, env=product_env(workdir), timeout=60)
    assert result.returncode != 0
    errors = [l for l in result.stderr.splitlines() if l.startswith("ERROR: ")]
    assert len(errors) == 1 and "chmod 600" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_insecure_master_warns_and_serves_any_worker(tmp_path, start_master, start_worker, tool):
    master = start_master("--insecure")
    assert "--insecure: no password" in master.log()
    assert not os.path.exists(os.path.join(master.workdir, "password"))
    job = write_script(tmp_path / "pilot.sh", "echo pilot ran\n")
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nqueue\n"
                % (job, out)).returncode == 0
    start_worker(master.port, password=None)
    wait_until(lambda: out.exists() and "pilot ran" in out.read_text(), JOB_DONE_WITHIN,
               what="the plain worker to run the pilot")


def held_by_a_later_pass(tool, executable) -> None:
    """Submit a job its first periodic pass holds, and wait until it is held: the master
    passes over its jobs in the order it took them, so every older job was looked at too."""
    result = tool("condor_submit", "-terse", stdin="executable = %s\nperiodic_hold = true\nqueue\n"
                  % executable)
    assert result.returncode == 0, result.stderr
    cluster = result.stdout.split(".")[0].strip()
    wait_until(lambda: tool("condor_q", cluster, "-af", "JobStatus").stdout.split() == ["5"],
               REQUEST_SHOWN_WITHIN, what="a periodic pass to hold job %s" % cluster)


def test_the_deep_expression_chain_leaves_the_master_running(tmp_path, start_master, tool):
    master = start_master("--periodic-interval", "0.2")
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/sh\n")
    ok.chmod(0o755)
    chain = "".join("+A%d = %sA%d\n" % (i, "-" * 190, i + 1) for i in range(64))
    result = tool("condor_submit", stdin="executable = %s\n%s+A64 = 5\n"
                  "periodic_hold = -A0 > 1000000\nqueue\n" % (ok, chain))
    assert result.returncode == 0, result.stderr
    deep = result.stdout.strip().rsplit(" ", 1)[-1].rstrip(".")
    wait_until(lambda: tool("condor_q", deep, "-af", "JobStatus").stdout.split() == ["1"],
               REQUEST_SHOWN_WITHIN, what="the master to take the job")
    for _ in range(2):  # two periodic passes over the job at least
        held_by_a_later_pass(tool, ok)
    assert master.proc.poll() is None and "Traceback" not in master.log()
    # condor_q evaluates it too, to ERROR, without an exception of its own.
    assert tool("condor_q", deep, "-af", "JobStatus", "PeriodicHold").stdout == "1 error\n"
    master.stop()
    again = start_master("--periodic-interval", "0.2")
    held_by_a_later_pass(tool, ok)  # the reloaded job was looked at too
    assert again.proc.poll() is None
