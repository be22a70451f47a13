"""What becomes of a job whose pilot exited, as HTCondor's shadow decides it.

Pure: the job ad and how the pilot ended in, the outcome out; the job table carries it out.

HTCondor (condor_shadow, UserPolicy::AnalyzePolicy in src/condor_utils/user_job_policy.cpp
and ShadowUserPolicy::doAction): the exit is written into the ad first (ExitBySignal, then
ExitCode or ExitSignal, and NumJobCompletions counts the exit), then OnExitHold is
evaluated (true: hold, HoldReasonCode 3), then OnExitRemove (true or absent: the job
completes; false: it goes back to idle and runs again). An expression that is there but
does not evaluate to a number or a boolean (undefined, error, a string) holds the job with
HoldReasonCode 4 (JobPolicyUndefined), except the literal `undefined`, which counts as
false. A real counts by its integer part (0.5 is false), as classad's IsNumber gives it.
"""

from __future__ import annotations

import math
from typing import Any, Dict, NamedTuple, Optional

from awq import classad
from awq.jobs import Job

COMPLETE, REQUEUE, HOLD = "complete", "requeue", "hold"

HOLD_CODE_JOB_POLICY = 3             # HTCondor: JobPolicy, an on_exit_hold or periodic_hold
HOLD_CODE_JOB_POLICY_UNDEFINED = 4   # HTCondor: JobPolicyUndefined

ON_EXIT_HOLD, ON_EXIT_REMOVE = "OnExitHold", "OnExitRemove"


class ExitOutcome(NamedTuple):
    """What the table does with a job whose pilot ended."""

    action: str                  # COMPLETE, REQUEUE or HOLD
    attributes: Dict[str, Any]   # what the exit sets on the job (None deletes)
    reason: str                  # the hold reason, or why the job runs again
    code: int = 0                # HoldReasonCode, for HOLD
    subcode: int = 0             # HoldReasonSubCode, for HOLD


def exit_attributes(job: Job, exit_code: Optional[int],
                    exit_signal: Optional[int]) -> Dict[str, Any]:
    """What an exit sets on the ad: HTCondor writes ExitCode for an exit and ExitSignal for a
    signal (never both), ExitBySignal always, and counts the completion."""
    completions = job.get("NumJobCompletions", 0)
    if not isinstance(completions, int) or isinstance(completions, bool):
        completions = 0
    attributes: Dict[str, Any] = {"NumJobCompletions": completions + 1}
    if exit_signal is not None:
        attributes.update(ExitBySignal=True, ExitSignal=int(exit_signal), ExitCode=None)
    else:
        attributes.update(ExitBySignal=False, ExitCode=int(exit_code or 0), ExitSignal=None)
    return attributes


def decide_exit(job: Job, exit_code: Optional[int] = None, exit_signal: Optional[int] = None,
                now: Optional[float] = None) -> ExitOutcome:
    """The outcome of a pilot's exit (exit_signal set when a signal ended it).

    Never raises for a job's data: whatever an expression does, it is a value, and one
    that is no truth value holds the job, as in HTCondor.
    """
    attributes = exit_attributes(job, exit_code, exit_signal)
    ad = dict(job)
    for name, value in attributes.items():
        if value is None:
            ad.pop(name, None)
        else:
            ad[name] = value
    hold = _policy(ad, ON_EXIT_HOLD, now)
    if hold is None:
        return _undefined(attributes, ad, ON_EXIT_HOLD)
    if hold:
        return ExitOutcome(HOLD, attributes, _hold_reason(ad, now), HOLD_CODE_JOB_POLICY,
                           _subcode(ad, now))
    if ON_EXIT_REMOVE not in ad:
        return ExitOutcome(COMPLETE, attributes, "")
    remove = _policy(ad, ON_EXIT_REMOVE, now)
    if remove is None:
        return _undefined(attributes, ad, ON_EXIT_REMOVE)
    if remove:
        return ExitOutcome(COMPLETE, attributes, "")
    return ExitOutcome(REQUEUE, attributes, _fired(ad, ON_EXIT_REMOVE, "FALSE"))


def _policy(ad: Job, name: str, now: Optional[float]) -> Optional[bool]:
    """The expression's truth, False when absent; None when it has no truth value."""
    if name not in ad:
        return False
    value = ad[name]
    if value is classad.UNDEFINED or (isinstance(value, classad.Expr)
                                      and _literal_undefined(value)):
        return False   # HTCondor: an expression "defined to be undefined" is false
    number = _number(_evaluated(ad, name, now))
    return None if number is None else number != 0


def _literal_undefined(expr: classad.Expr) -> bool:
    try:
        node = classad.parse(expr.text)
    except Exception:   # a snapshot's expression that no longer parses evaluates to error
        return False
    return node[0] == "lit" and node[1] is classad.UNDEFINED


def _evaluated(ad: Job, name: str, now: Optional[float]) -> Any:
    try:
        return classad.evaluate_attr(ad, name, now)
    except Exception:   # one job's data must never stop the master's loop: error, as HTCondor
        return classad.ERROR


def _number(value: Any) -> Optional[int]:
    """classad's IsNumber: a boolean or an integer as it is, a real by its integer part."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # C++ converts NaN and infinities to the lowest integer: not zero, so true.
        return int(value) if math.isfinite(value) else -(2 ** 63)
    return None


def _hold_reason(ad: Job, now: Optional[float]) -> str:
    """OnExitHoldReason when it evaluates to a non-empty string, else HTCondor's sentence."""
    if "OnExitHoldReason" in ad:
        reason = _evaluated(ad, "OnExitHoldReason", now)
        if isinstance(reason, str) and reason:
            return reason
    return _fired(ad, ON_EXIT_HOLD, "TRUE")


def _subcode(ad: Job, now: Optional[float]) -> int:
    if "OnExitHoldSubCode" not in ad:
        return 0
    number = _number(_evaluated(ad, "OnExitHoldSubCode", now))
    if number is None:
        return 0
    return max(-(2 ** 31), min(number, 2 ** 31 - 1))   # HTCondor keeps it in a C int


def _fired(ad: Job, name: str, value_text: str) -> str:
    """HTCondor's reason for a policy expression (UserPolicy::FiringReason)."""
    return "The job attribute %s expression '%s' evaluated to %s" % (
        name, _expression_text(ad[name]), value_text)


def _expression_text(value: Any) -> str:
    return value.text if isinstance(value, classad.Expr) else classad.unparse(value)


def _undefined(attributes: Dict[str, Any], ad: Job, name: str) -> ExitOutcome:
    return ExitOutcome(HOLD, attributes, _fired(ad, name, "UNDEFINED"),
                       HOLD_CODE_JOB_POLICY_UNDEFINED, 0)
