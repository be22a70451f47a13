"""The jobs the master holds, by id and by status, and whether a snapshot is due.

The storage under the job table (awq/jobtable.py): kept apart so the table's own
class is its transitions, the one place a job changes state, and the restart path
(awq/jobtable_restore.py) can load jobs without reaching into the table's internals.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Set, Tuple

from awq import jobs
from awq.jobs import FINAL_STATES, Job, JobId, JobStatus


class Counts(NamedTuple):
    """Jobs by the states upstream's stat file counts (WAITING, RUNNING)."""

    idle: int
    running: int


class StatusIndex:
    """Job ids by status, for what the master asks on every turn.

    Dispatch walks the idle jobs on every pass, the counts are published several
    times a second and each snapshot retires the finished jobs: answered by a scan
    of the table, each would make the master's cost per job grow with the queue.
    """

    def __init__(self) -> None:
        self.idle: Dict[JobId, None] = {}   # a dict for its order: oldest first
        self.running: Set[JobId] = set()
        self.finished: Set[JobId] = set()

    def note(self, jid: JobId, status: Optional[int]) -> None:
        """Where jid belongs now; an idle job that stays idle keeps its place."""
        if status == JobStatus.IDLE:
            self.idle[jid] = None
        else:
            self.idle.pop(jid, None)
        if status == JobStatus.RUNNING:
            self.running.add(jid)
        else:
            self.running.discard(jid)
        if status in FINAL_STATES:
            self.finished.add(jid)
        else:
            self.finished.discard(jid)

    def forget_finished(self, finished: Iterable[JobId]) -> None:
        self.finished.difference_update(finished)

class JobStore:
    """Every job, by id, with an index by status: read by method; a job comes in by put()."""

    def __init__(self) -> None:
        self._jobs: Dict[JobId, Job] = {}
        self._by_status = StatusIndex()
        self._changed = False
        self.max_cluster_id = 0

    def put(self, job: Job) -> None:
        """Store a job as it is (every write to the table goes through here)."""
        jid = jobs.job_id(job)
        self._jobs[jid] = job
        self._by_status.note(jid, job.get("JobStatus"))
        self._changed = True

    @property
    def changed(self) -> bool:
        """Whether the table changed since the last snapshot was written."""
        return self._changed

    def mark_changed(self) -> None:
        """A snapshot is due although no job changed (e.g. a spool file waits to be deleted)."""
        self._changed = True

    def mark_saved(self) -> None:
        """A snapshot holding every change so far is durable."""
        self._changed = False

    def __contains__(self, jid: JobId) -> bool:
        return jid in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def job(self, jid: JobId) -> Job:
        """The job as stored, to read: it changes only through the table's methods."""
        return self._jobs[jid]

    def items(self) -> List[Tuple[JobId, Job]]:
        """Every (id, job), as a list: the table may change while the caller walks it."""
        return list(self._jobs.items())

    def status(self, jid: JobId) -> Optional[int]:
        job = self._jobs.get(jid)
        return job.get("JobStatus") if job is not None else None

    def idle_jobs(self) -> List[JobId]:
        return list(self._by_status.idle)

    def iter_idle(self) -> Iterator[JobId]:
        """Idle jobs, oldest first, without a copy: no state change while iterating."""
        return iter(self._by_status.idle)

    def counts(self) -> Counts:
        """Idle and running jobs, as upstream's stat file has them."""
        return Counts(len(self._by_status.idle), len(self._by_status.running))

    def active(self) -> bool:
        """Whether any job is idle or running (a drain waits for none)."""
        return bool(self._by_status.idle or self._by_status.running)

    def snapshot(self) -> Dict[str, Any]:
        return {"jobs": self._jobs, "max_cluster_id": self.max_cluster_id}


def updated(job: Job, attributes: Mapping[str, Any]) -> Job:
    """A copy of job with attributes set; None deletes one (e.g. HoldReason once released)."""
    job = dict(job)
    for name, value in attributes.items():
        if value is None:
            job.pop(name, None)
        else:
            job[name] = value
    return job