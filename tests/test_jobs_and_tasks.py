"""Pure pieces the master relies on: record validation and job -> task translation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from awq import classad, jobs
from conftest import product_env

from awq.tasks import STDERR_NAME, STDOUT_NAME, WRAPPER_NAME, sandbox_name, task_spec


def ad(**extra) -> dict:
    base = {"ClusterId": 5, "ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "/opt/agent.sh",
            "Arguments": "-x 'two words'", "Environment": "A=1 B='x y'",
            "Out": "/logs/o", "Err": "/logs/e", "Iwd": "/logs"}
    base.update(extra)
    return base


def test_a_good_record_passes():
    assert jobs.validate_job(ad(), 5) == ad()


@pytest.mark.parametrize("bad, message", [
    ({"ClusterId": 6}, "does not match"),
    ({"ProcId": "0"}, "ProcId"),
    ({"JobStatus": 2}, "JobStatus"),
    ({"Cmd": ""}, "Cmd"),
    ({"Out": "relative/path"}, "absolute"),
    ({"Err": "/logs/../etc/passwd"}, "normalised"),
    ({"Arguments": ["a"]}, "Arguments"),
    ({"Environment": 3}, "Environment"),
    ({"Bad Name": 1}, "attribute name"),
    ({"Big": "x" * (jobs.MAX_STRING_LENGTH + 1)}, "longer"),
    ({"Nul": "a\0b"}, "NUL"),
    ({"Obj": object()}, "unsupported type"),
])
def test_bad_records_are_refused(bad, message):
    with pytest.raises(jobs.InvalidJob, match=message):
        jobs.validate_job(ad(**bad), 5)


def test_non_dict_record_is_refused():
    with pytest.raises(jobs.InvalidJob):
        jobs.validate_job(["not", "a", "job"], 5)


def test_task_runs_the_executable_with_quoted_arguments_and_separate_streams():
    spec = task_spec(ad())
    assert spec.inputs == [("/opt/agent.sh", "agent.sh")]
    assert spec.outputs == [("/logs/o", STDOUT_NAME), ("/logs/e", STDERR_NAME)]
    assert "./agent.sh -x 'two words' > awq.stdout 2> awq.stderr" in spec.command
    assert spec.environment == {"A": "1", "B": "x y"}
    assert spec.tag == "5.0" and spec.cores == 1
    # Nominal memory and disk: Work Queue then packs tasks by cores alone.
    assert (spec.memory_mb, spec.disk_mb) == (1, 1)


def test_without_error_file_stderr_joins_stdout():
    without_err = {k: v for k, v in ad().items() if k != "Err"}
    spec = task_spec(without_err)
    assert spec.command.endswith("> awq.stdout 2>&1")
    assert spec.outputs == [("/logs/o", STDOUT_NAME)]


def test_wrapper_is_shipped_and_runs_the_job():
    spec = task_spec(ad(), wrapper="/etc/wrapper.sh")
    assert ("/etc/wrapper.sh", WRAPPER_NAME) in spec.inputs
    assert "./%s ./agent.sh -x" % WRAPPER_NAME in spec.command


def test_requests_are_evaluated_over_the_job():
    spec = task_spec(ad(DaskWorkerCores=2, DaskWorkerMemory=2000000000,
                        RequestCpus=classad.Expr("MY.DaskWorkerCores"),
                        RequestMemory=classad.Expr("floor(MY.DaskWorkerMemory / 1048576)"),
                        RequestDisk=2048000))
    assert (spec.cores, spec.memory_mb, spec.disk_mb) == (2, 1907, 2000)


def test_executable_not_transferred_runs_in_place():
    spec = task_spec(ad(Cmd="/bin/sh", TransferExecutable=False, Arguments="-c 'echo hi'"))
    assert spec.inputs == []
    assert spec.command.endswith("exec $_awq_setsid /bin/sh -c 'echo hi' > awq.stdout 2> awq.stderr")


def test_proxy_is_shipped_and_exported():
    spec = task_spec(ad(X509UserProxy="/tmp/x509up_u1000"))
    assert ("/tmp/x509up_u1000", "awq.x509up") in spec.inputs
    assert 'X509_USER_PROXY="$PWD/awq.x509up"' in spec.command


@pytest.mark.parametrize("path, name", [
    ("/a/agent.startup.1234", "agent.startup.1234"),
    ("/a/we ird;name", "we_ird_name"),
    ("/a/.hidden", "job_hidden"),
    ("/a/awq.stdout", "job_awq.stdout"),
])
def test_sandbox_names_are_shell_safe(path, name):
    assert sandbox_name(path) == name


def test_transfer_input_files_land_in_the_sandbox_under_their_names():
    job = {"ClusterId": 1, "ProcId": 0, "Cmd": "/bin/bash", "TransferExecutable": False,
           "Arguments": "script.sh", "TransferInput": "/home/u/run/script.sh, /home/u/data/"}
    spec = task_spec(job)
    assert ("/home/u/run/script.sh", "script.sh") in spec.inputs
    assert ("/home/u/data/", "data") in spec.inputs


def run_task_command(tmp_path, command: str, new_session: bool) -> subprocess.CompletedProcess:
    """Run a task's command as the worker does (/bin/sh -c), in or out of our own group."""
    return subprocess.run(["/bin/sh", "-c", command], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=30, start_new_session=new_session)


@pytest.mark.e2e
@pytest.mark.parametrize("new_session", [True, False])
def test_the_pilot_leads_its_own_process_group_and_keeps_its_pid(tmp_path, new_session):
    # Started inside pytest's group (new_session=False), as CCTools 8 sometimes starts a task.
    pilot = tmp_path / "pilot.sh"
    pilot.write_text("#!/bin/sh\nread -r pid _ _ _ pgid _ < /proc/$$/stat\n"
                     "echo \"$pid $pgid $PPID\"\nexit 3\n")
    pilot.chmod(0o755)
    spec = task_spec({"ClusterId": 1, "ProcId": 0, "Cmd": str(pilot), "TransferExecutable": False,
                      "Out": "/o"})
    result = run_task_command(tmp_path, spec.command, new_session)
    assert result.returncode == 3, result.stderr  # exec: the pilot's own exit status
    pid, pgid, ppid = (tmp_path / STDOUT_NAME).read_text().split()
    assert pid == pgid  # its own group, led by the task's shell PID (kept through exec)
    assert int(ppid) == os.getpid()  # no extra process between the worker and the pilot


@pytest.mark.e2e
def test_a_signal_that_ends_the_pilot_reaches_the_worker_as_a_signal(tmp_path):
    spec = task_spec({"ClusterId": 1, "ProcId": 0, "Cmd": "/bin/sh", "TransferExecutable": False,
                      "Arguments": "-c 'kill -TERM $$'", "Out": "/o"})
    assert run_task_command(tmp_path, spec.command, new_session=False).returncode == -15


WAKE_PROBE = r"""
import os, time
from awq.workqueue import Backend
backend = Backend(0, password_file=None)
assert backend.enable_wake_on_child_exit()
backend.reap_children()                      # the first look is unconditional
looks = []
wait_native = backend._wake._process_wait
backend._wake._process_wait = lambda timeout: looks.append(timeout) or wait_native(timeout)
assert [backend.reap_children() for _ in range(3)] == [[], [], []]
assert looks == [], looks                    # no SIGCHLD since: no wait4, no ctypes call
pid = os.posix_spawn("/bin/true", ["true"], dict(os.environ))
reaped, deadline = [], time.monotonic() + 10
while pid not in reaped and time.monotonic() < deadline:
    time.sleep(0.01)
    reaped += backend.reap_children()
assert reaped == [pid], (pid, reaped)
print("looks", len(looks))
"""


@pytest.mark.e2e
def test_exited_children_are_looked_for_only_after_a_sigchld():
    """Work Queue's process module must be emptied of exited children (else wait() returns at
    once forever), but looking costs a wait4 and a ctypes call a turn: a SIGCHLD gates it."""
    probe = subprocess.run([sys.executable, "-c", WAKE_PROBE], env=product_env(),
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.startswith("looks "), probe.stdout


BRIEF_PROBE = r"""
import os, time
from awq.workqueue import Backend
from awq.tasks import TaskSpec
backend = Backend(0, password_file=None)
assert backend.enable_wake_on_child_exit()
spec = TaskSpec("true", "1.0")
backend.submit(spec)                        # waits: no worker will ever come
assert [backend.wait_briefly() for _ in range(3)] == [None] * 3
assert backend.drain_children() == []       # the placeholders are no children
pid = os.posix_spawn("/bin/true", ["true"], dict(os.environ))
reaped, deadline = [], time.monotonic() + 10
while pid not in reaped and time.monotonic() < deadline:
    backend.wait_briefly()                  # the process module collects it in wait()
    reaped += backend.drain_children()
assert reaped == [pid], (pid, reaped)
print("ok")
"""


@pytest.mark.e2e
def test_a_brief_wait_leaves_only_real_children_to_reap():
    """Backend.wait_briefly ends Work Queue's wait() with a placeholder in the process
    module's list of exited children (several managers, awq/shards.py): the placeholders
    are never reported as children, and a real child's exit still is."""
    probe = subprocess.run([sys.executable, "-c", BRIEF_PROBE], env=product_env(),
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip() == "ok", probe.stdout
