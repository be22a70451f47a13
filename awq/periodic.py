"""PeriodicHold, PeriodicRelease and PeriodicRemove, as HTCondor's schedd applies them.

Pure: a job and the time in, the action out. The master carries it out.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from awq import classad
from awq.jobs import FINAL_STATES, Job, JobStatus

INTERVAL = 60.0     # s, HTCondor's PERIODIC_EXPR_INTERVAL default


class Action(NamedTuple):
    kind: str       # "hold", "release" or "remove"
    reason: str


def periodic_action(job: Job, now: float) -> Optional[Action]:
    """What the job's periodic expressions ask for now, if anything.

    Remove wins over hold: JAliEn sends both, and a job past its removal
    deadline must leave the queue even while it is held.
    """
    status = job.get("JobStatus")
    if status in FINAL_STATES:
        return None
    if _true(job, "PeriodicRemove", now):
        return Action("remove", _reason(job, "PeriodicRemove"))
    if status != JobStatus.HELD and _true(job, "PeriodicHold", now):
        return Action("hold", _reason(job, "PeriodicHold"))
    if status == JobStatus.HELD and _true(job, "PeriodicRelease", now):
        return Action("release", "PeriodicRelease is true")
    return None


def _true(job: Job, name: str, now: float) -> bool:
    if name not in job:
        return False
    return classad.is_true(classad.evaluate_attr(job, name, now)) is True


def _reason(job: Job, name: str) -> str:
    value = job.get(name)
    text = value.text if isinstance(value, classad.Expr) else classad.unparse(value)
    return "The job attribute %s expression '%s' evaluated to TRUE" % (name, text)
