"""A job's exit as HTCondor decides it (awq/exit_rules.py), with HTCondor's classad2 as the
oracle for the expressions condor_submit writes (max_retries, retry_until,
success_exit_code rewrite OnExitRemove)."""

from __future__ import annotations

import classad2
import pytest
from hypothesis import given, settings, strategies as st

from awq import classad, submit, userlog
from awq.exit_rules import COMPLETE, HOLD, REQUEUE, decide_exit
from awq.jobs import JobStatus
from awq.jobtable import JobTable

CONTEXT = dict(cwd="/home/vobox", environ={"HOME": "/home/vobox"}, owner="vobox", uid=1000,
               now=1700000000)


def described(*lines: str) -> dict:
    """The job condor_submit makes of a description with these lines."""
    text = "executable = /bin/true\n" + "".join(line + "\n" for line in lines) + "queue\n"
    job_list = submit.build_jobs(submit.parse_description(text), cluster_id=1, **CONTEXT)
    assert len(job_list) == 1
    return dict(job_list[0], JobStatus=JobStatus.RUNNING)


def runs_until_it_leaves(job: dict, exit_code: int, most: int = 10) -> tuple:
    """(how many runs, the last outcome) of a pilot that always exits with exit_code."""
    for run in range(1, most + 1):
        outcome = decide_exit(job, exit_code)
        if outcome.action != REQUEUE:
            return run, outcome
        job = dict(job, **{k: v for k, v in outcome.attributes.items() if v is not None})
    return most, outcome


def test_without_a_policy_any_exit_completes_and_is_written_into_the_ad():
    outcome = decide_exit(described(), 3)
    assert outcome.action == COMPLETE
    assert outcome.attributes == {"NumJobCompletions": 1, "ExitBySignal": False, "ExitCode": 3,
                                  "ExitSignal": None}


def test_a_signal_sets_exit_signal_and_no_exit_code():
    outcome = decide_exit(dict(described(), ExitCode=0, NumJobCompletions=4), None, 9)
    assert outcome.action == COMPLETE
    assert outcome.attributes == {"NumJobCompletions": 5, "ExitBySignal": True, "ExitSignal": 9,
                                  "ExitCode": None}


def test_max_retries_runs_a_failing_pilot_max_retries_plus_one_times():
    assert runs_until_it_leaves(described("max_retries = 2"), 3)[0] == 3
    assert runs_until_it_leaves(described("max_retries = 0"), 3)[0] == 1
    assert runs_until_it_leaves(described("max_retries = 2"), 0)[0] == 1


def test_success_exit_code_and_retry_until():
    assert runs_until_it_leaves(described("success_exit_code = 3"), 3)[0] == 1
    assert runs_until_it_leaves(described("success_exit_code = 3"), 0)[0] == 3  # default 2 retries
    assert runs_until_it_leaves(described("retry_until = 7", "max_retries = 5"), 7)[0] == 1
    assert runs_until_it_leaves(described("retry_until = ExitCode > 5", "max_retries = 5"), 6)[0] == 1
    assert runs_until_it_leaves(described("retry_until = ExitCode > 5", "max_retries = 5"), 1)[0] == 6


def test_a_requeue_names_the_expression_that_was_false():
    run, outcome = runs_until_it_leaves(described("on_exit_remove = false"), 0, most=1)
    assert outcome.action == REQUEUE
    assert outcome.reason == "The job attribute OnExitRemove expression 'false' evaluated to FALSE"


def test_on_exit_hold_with_reason_and_subcode():
    job = described("on_exit_hold = ExitCode == 3", 'on_exit_hold_reason = "pilot said 3"',
                    "on_exit_hold_subcode = 42")
    outcome = decide_exit(job, 3)
    assert outcome == (HOLD, outcome.attributes, "pilot said 3", 3, 42)
    assert decide_exit(job, 0).action == COMPLETE


def test_on_exit_hold_without_a_reason_says_which_expression_fired():
    outcome = decide_exit(described("on_exit_hold = ExitCode == 3"), 3)
    assert outcome.reason == "The job attribute OnExitHold expression 'ExitCode == 3' evaluated to TRUE"
    assert (outcome.code, outcome.subcode) == (3, 0)


def test_on_exit_hold_comes_before_on_exit_remove():
    job = described("on_exit_hold = true", "max_retries = 2")
    assert decide_exit(job, 3).action == HOLD


def test_counters_are_set_before_the_expressions_see_them():
    job = described("on_exit_hold = NumJobCompletions == 2 && ExitCode == 3")
    assert decide_exit(job, 3).action == COMPLETE
    assert decide_exit(dict(job, NumJobCompletions=1), 3).action == HOLD


@pytest.mark.parametrize("text", ["foo == 1", '"a string"', "error", "1/0", "{1, 2}"])
def test_an_expression_without_a_truth_value_holds_with_code_4(text):
    for name in ("OnExitHold", "OnExitRemove"):
        outcome = decide_exit(dict(described(), **{name: classad.Expr(text)}), 0)
        assert (outcome.action, outcome.code, outcome.subcode) == (HOLD, 4, 0), (name, text)
        assert outcome.reason == ("The job attribute %s expression '%s' evaluated to UNDEFINED"
                                  % (name, text))


def test_the_literal_undefined_is_false():
    assert decide_exit(dict(described(), OnExitHold=classad.Expr("undefined")), 0).action == COMPLETE
    assert decide_exit(dict(described(), OnExitRemove=classad.Expr("(undefined)")), 0).action == REQUEUE


def test_numbers_count_by_their_integer_part():
    assert decide_exit(dict(described(), OnExitHold=classad.Expr("0.5")), 0).action == COMPLETE
    assert decide_exit(dict(described(), OnExitHold=classad.Expr("2")), 0).action == HOLD
    assert decide_exit(dict(described(), OnExitRemove=0), 0).action == REQUEUE


def test_a_reason_or_subcode_of_the_wrong_type_falls_back():
    job = dict(described("on_exit_hold = true"), OnExitHoldReason=classad.Expr("17"),
               OnExitHoldSubCode=classad.Expr('"x"'))
    outcome = decide_exit(job, 0)
    assert outcome.reason.endswith("evaluated to TRUE") and outcome.subcode == 0


# ---------------------------------------------------------------- against classad2

RETRY_LINES = st.lists(st.sampled_from([
    "max_retries = 0", "max_retries = 1", "max_retries = 3", "success_exit_code = 3",
    "success_exit_code = 0", "retry_until = 4", "retry_until = ExitCode >= 5",
    "retry_until = ExitCode == 1 || NumJobCompletions > 1", "on_exit_remove = ExitCode != 2",
]), min_size=1, max_size=3, unique=True)


@settings(max_examples=200, deadline=None)
@given(RETRY_LINES, st.integers(min_value=0, max_value=255),
       st.integers(min_value=0, max_value=5))
def test_on_exit_remove_as_classad2_evaluates_it(lines, exit_code, completions):
    job = dict(described(*lines), NumJobCompletions=completions)
    outcome = decide_exit(job, exit_code)
    oracle = classad2.ClassAd()
    for name, value in job.items():
        if isinstance(value, classad.Expr):
            oracle[name] = classad2.ExprTree(value.text)
        elif isinstance(value, (bool, int, float, str)):
            oracle[name] = value
    oracle["NumJobCompletions"] = completions + 1
    oracle["ExitCode"] = exit_code
    oracle["ExitBySignal"] = False
    expected = oracle.eval("OnExitRemove") if "OnExitRemove" in job else True
    assert isinstance(expected, bool)
    assert outcome.action == (COMPLETE if expected else REQUEUE), (lines, exit_code)


# ---------------------------------------------------------------- nothing raises

EXPRESSION_TEXT = st.recursive(
    st.sampled_from(["ExitCode", "ExitSignal", "ExitBySignal", "NumJobCompletions", "Missing",
                     "true", "false", "undefined", "error", "0", "1", "2.5", '"s"', "{1}",
                     "OnExitHold", "OnExitRemove", "real(\"NaN\")", "1e308 * 10"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["==", "!=", "&&", "||", "+", "/", "%", "<", "is",
                                          "=?=", "*"]), inner).map(" ".join),
        inner.map(lambda e: "!(%s)" % e), inner.map(lambda e: "-(%s)" % e),
        st.tuples(inner, inner, inner).map(lambda t: "%s ? %s : %s" % t),
        inner.map(lambda e: "int(%s)" % e), inner.map(lambda e: "strcat(%s)" % e)),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(EXPRESSION_TEXT, EXPRESSION_TEXT, EXPRESSION_TEXT, EXPRESSION_TEXT,
       st.one_of(st.none(), st.integers(-3, 300)), st.one_of(st.none(), st.integers(1, 64)))
def test_no_expression_makes_the_decision_raise(hold, remove, reason, subcode, code, signal):
    job = dict(described(), OnExitHold=classad.Expr(hold), OnExitRemove=classad.Expr(remove),
               OnExitHoldReason=classad.Expr(reason), OnExitHoldSubCode=classad.Expr(subcode))
    outcome = decide_exit(job, code, signal)
    assert outcome.action in (COMPLETE, REQUEUE, HOLD)
    assert isinstance(outcome.reason, str) and isinstance(outcome.subcode, int)
    table = JobTable()
    table.put(job)
    table.end_run((1, 0), outcome)   # and the table carries any outcome out
    assert table.status((1, 0)) in (JobStatus.COMPLETED, JobStatus.IDLE, JobStatus.HELD)


def test_a_job_with_broken_values_still_gets_an_outcome():
    job = dict(described(), NumJobCompletions="many", OnExitHold=classad.Expr.trusted("(("),
               OnExitRemove=classad.Expr.trusted("ExitCode =="))
    outcome = decide_exit(job, 1)
    assert outcome.action == HOLD and outcome.code == 4
    assert outcome.attributes["NumJobCompletions"] == 1


# ---------------------------------------------------------------- the table and the user log

def test_the_table_requeues_holds_and_completes_with_their_events(tmp_path):
    log_path = tmp_path / "job.log"
    table = JobTable()
    table.add(dict(described("max_retries = 1", "log = %s" % log_path), JobStatus=JobStatus.IDLE))
    jid = (1, 0)
    for run in (1, 2):
        table.mark_running(jid, "127.0.0.1:9")
        table.end_run(jid, decide_exit(table.job(jid), 3))
    job = table.job(jid)
    assert job["JobStatus"] == JobStatus.COMPLETED and job["NumJobCompletions"] == 2
    assert job["NumJobStarts"] == 2 and job["ExitCode"] == 3 and job["ExitBySignal"] is False
    text = log_path.read_text()
    codes = [line[:3] for line in text.splitlines() if line[:3].isdigit()]
    assert codes == ["000", "001", "004", "001", "005"]
    assert "\t(0) Job terminated and was requeued\n" in text
    assert "\t(1) Normal termination (return value 3)\n" in text
    assert "The job attribute OnExitRemove expression" in text and "evaluated to FALSE" in text


def test_a_held_exit_writes_its_reason_code_and_subcode(tmp_path):
    log_path = tmp_path / "job.log"
    table = JobTable()
    table.add(dict(described("on_exit_hold = ExitCode == 3", 'on_exit_hold_reason = "three"',
                             "on_exit_hold_subcode = 7", "log = %s" % log_path),
                   JobStatus=JobStatus.IDLE))
    table.mark_running((1, 0))
    table.end_run((1, 0), decide_exit(table.job((1, 0)), 3))
    job = table.job((1, 0))
    assert (job["JobStatus"], job["HoldReason"], job["HoldReasonCode"],
            job["HoldReasonSubCode"]) == (JobStatus.HELD, "three", 3, 7)
    assert job["ExitCode"] == 3 and job["NumJobCompletions"] == 1
    assert "012 (001.000.000)" in log_path.read_text()
    assert "Job was held.\n\tthree\n\tCode 3 Subcode 7\n..." in log_path.read_text()
    table.release((1, 0), "condor_release")
    assert "HoldReasonSubCode" not in table.job((1, 0))


def test_a_signal_is_written_as_an_abnormal_termination(tmp_path):
    log_path = tmp_path / "job.log"
    table = JobTable()
    table.add(dict(described("log = %s" % log_path), JobStatus=JobStatus.IDLE))
    table.mark_running((1, 0))
    table.end_run((1, 0), decide_exit(table.job((1, 0)), None, 9))
    job = table.job((1, 0))
    assert job["ExitBySignal"] is True and job["ExitSignal"] == 9 and "ExitCode" not in job
    assert "\t(0) Abnormal termination (signal 9)\n\t(0) No core file\n" in log_path.read_text()
    body = userlog.requeued_body(None, 15, "why")
    assert "(0) Abnormal termination (signal 15)" in body and body.endswith("\twhy")
