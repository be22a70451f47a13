"""A job's exit as HTCondor decides it, with a real master and a real worker: max_retries,
success_exit_code, on_exit_remove and on_exit_hold, seen in condor_q -hold, condor_history
and the job's user log."""

from __future__ import annotations

import re

import pytest

from conftest import JOB_DONE_WITHIN, write_script
from test_e2e import submit_ok
from testkit import wait_until

pytestmark = pytest.mark.e2e


# A requeued job is handed to Work Queue again at the master's next turn, which its own
# result ends: each further run costs what the first one does, at most.
def runs_within(runs: int) -> float:
    return runs * JOB_DONE_WITHIN


def counting_pilot(tmp_path, exit_code: int, name: str = "pilot.sh") -> str:
    """A pilot that appends a line to runs-<name> at each run, then exits with exit_code."""
    return write_script(tmp_path / name, "echo run >> %s\nexit %d\n"
                        % (tmp_path / ("runs-" + name), exit_code))


def runs_of(tmp_path, name: str = "pilot.sh") -> int:
    path = tmp_path / ("runs-" + name)
    return len(path.read_text().splitlines()) if path.exists() else 0


def history_af(tool, cluster: int, *attrs: str) -> str:
    result = tool("condor_history", str(cluster), "-af", *attrs)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def left_the_queue(tool, cluster: int, runs: int, *attrs: str) -> str:
    return wait_until(lambda: history_af(tool, cluster, *attrs), runs_within(runs),
                      what="job %d.0 in condor_history" % cluster)


def event_codes(log_path) -> list:
    return [line[:3] for line in log_path.read_text().splitlines() if line[:3].isdigit()]


def test_a_pilot_exiting_3_with_max_retries_2_runs_three_times_then_completes(
        tmp_path, start_master, start_worker, tool):
    master = start_master()
    start_worker(master.port)
    log_path = tmp_path / "job.log"
    cluster = submit_ok(tool, "executable = %s\nmax_retries = 2\nlog = %s\nqueue\n"
                        % (counting_pilot(tmp_path, 3), log_path))
    done = left_the_queue(tool, cluster, 3, "JobStatus", "NumJobCompletions", "ExitCode",
                          "ExitBySignal", "NumJobStarts")
    assert done == "4 3 3 false 3"
    assert runs_of(tmp_path) == 3
    assert event_codes(log_path) == ["000", "001", "004", "001", "004", "001", "005"]
    text = log_path.read_text()
    assert text.count("\t(0) Job terminated and was requeued\n") == 2
    assert text.count("\t(1) Normal termination (return value 3)\n") == 3
    assert "The job attribute OnExitRemove expression 'NumJobCompletions > JobMaxRetries" in text
    assert re.search(r"job %d\.0: running -> idle: it runs again: " % cluster, master.log())


def test_on_exit_hold_holds_with_its_reason_in_condor_q_hold_and_the_user_log(
        tmp_path, start_master, start_worker, tool):
    master = start_master()
    start_worker(master.port)
    log_path = tmp_path / "job.log"
    cluster = submit_ok(tool, "executable = %s\non_exit_hold = ExitCode == 3\n"
                        'on_exit_hold_reason = strcat("pilot exited ", ExitCode)\n'
                        "on_exit_hold_subcode = 33\nlog = %s\nqueue\n"
                        % (counting_pilot(tmp_path, 3), log_path))
    row = re.compile(r"^%d\.0 +\S+ +\d+/\d+ \d+:\d+ pilot exited 3$" % cluster, re.M)

    def held_row():
        result = tool("condor_q", "-hold")
        assert result.returncode == 0, result.stderr
        return row.search(result.stdout) and result.stdout
    text = wait_until(held_row, runs_within(1), what="job %d.0 in condor_q -hold" % cluster)
    assert " ID          OWNER          HELD_SINCE  HOLD_REASON\n" in text
    attrs = tool("condor_q", str(cluster), "-af", "HoldReasonCode", "HoldReasonSubCode",
                 "ExitCode", "NumJobCompletions")
    assert attrs.stdout.strip() == "3 33 3 1"
    assert event_codes(log_path) == ["000", "001", "012"]
    assert "Job was held.\n\tpilot exited 3\n\tCode 3 Subcode 33\n...\n" in log_path.read_text()
    assert runs_of(tmp_path) == 1 and master.proc.poll() is None


def test_success_exit_code_and_a_bounded_on_exit_remove(tmp_path, start_master, start_worker,
                                                        tool):
    master = start_master()
    start_worker(master.port, cores=2)
    succeeding = submit_ok(tool, "executable = %s\nsuccess_exit_code = 3\nqueue\n"
                           % counting_pilot(tmp_path, 3, "three.sh"))
    # on_exit_remove false for exit 5, bounded by max_retries = 1: two runs.
    bounded = submit_ok(tool, "executable = %s\non_exit_remove = false\nmax_retries = 1\nqueue\n"
                        % counting_pilot(tmp_path, 5, "five.sh"))
    # on_exit_remove alone: run until it has completed twice.
    twice = submit_ok(tool, "executable = %s\non_exit_remove = NumJobCompletions >= 2\nqueue\n"
                      % counting_pilot(tmp_path, 0, "zero.sh"))
    assert left_the_queue(tool, succeeding, 1, "NumJobCompletions", "ExitCode") == "1 3"
    assert left_the_queue(tool, bounded, 2, "NumJobCompletions", "ExitCode") == "2 5"
    assert left_the_queue(tool, twice, 2, "NumJobCompletions", "ExitCode") == "2 0"
    assert [runs_of(tmp_path, name) for name in ("three.sh", "five.sh", "zero.sh")] == [1, 2, 2]
    assert master.proc.poll() is None
