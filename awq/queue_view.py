"""The queue as condor_q shows it: the master's published table merged with what it has
not taken yet.

condor_q never talks to the master. It reads the snapshot, adds the records
still waiting in queue/ (jobs condor_submit has accepted but the master has
not taken), and shows jobs with a removal request waiting as removed (X), as
HTCondor does until they leave the queue.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Iterable, List, Optional, Set, Tuple

    from awq.jobs import JobId
    from awq.snapshot import Columns
    from awq.spool import Spool

from itertools import compress

from awq import jobs
from awq.jobs import Job
from awq.jobset import JobSet
from awq.spool import SpoolError


class QueueView:
    """What condor_q reads: jobs, a JobSet in job id order (columns are read only when
    asked for; .ads() for dicts); heartbeat, stat/latest's TIMESTAMP or None;
    master_pid, the PID in master.lock; master_alive, whether master.lock is held."""

    __slots__ = ("jobs", "heartbeat", "master_pid", "master_alive")

    def __init__(self, job_set: JobSet, heartbeat: Optional[float], master_pid: Optional[int],
                 master_alive: bool):
        self.jobs = job_set
        self.heartbeat = heartbeat
        self.master_pid = master_pid
        self.master_alive = master_alive


# Reading again is needed only when the master deleted a record while this view was
# being read (once per snapshot write at most): a few tries settle it, and the last one is
# kept whatever it shows (it may count a job that just finished, never miss one).
CONSISTENT_READS = 3


def read_queue_view(spool: Spool) -> QueueView:
    """The master's table, plus records it has not taken yet, as condor_q shows them.

    The records and the removal requests are read before the snapshot. The master
    deletes a record (or a request) only after snapshots holding what it brought are
    durable, so whatever is gone by the time this view looks for it is in the snapshot it
    reads afterwards: every job accepted before the view started is counted, at any
    moment of the master's intake. (Read the other way round, a snapshot written and a
    record deleted between the two reads hid the record's jobs from both.) The snapshot
    names the records it holds (its "records" entry), and holds their jobs as they are
    now: for those, the file is ignored.

    An untaken record passes the master's own validation first, so condor_q
    never lists a job the master will refuse.
    """
    for attempt in range(1, CONSISTENT_READS + 1):
        removals = spool.requests.removal_texts()
        untaken = _untaken_records(spool)
        columns = spool.published.snapshot_columns()
        held = _held_records(columns)
        if held:
            untaken = [(name, found) for name, found in untaken if name not in held]
        job_set = JobSet(columns)
        known = set(job_set.ids()) if untaken else set()   # ids cost two columns: only if asked
        if attempt == CONSISTENT_READS or not _taken_meanwhile(spool, untaken, known):
            break
    extra = [job for _, found in untaken for job in found if jobs.job_id(job) not in known]
    if extra:
        job_set = _in_id_order(JobSet(columns, sorted(extra, key=jobs.job_id)))
    if removals:
        _show_removed(job_set, removals)
    heartbeat = spool.published.read_stat().get("TIMESTAMP")
    return QueueView(job_set, float(heartbeat) if heartbeat is not None else None,
                     spool.master_files.pid(), spool.master_files.is_running())


def _show_removed(job_set: JobSet, removals: Set[str]) -> None:
    """Jobs with a removal waiting (removals: their "C.P") show as removed (X), as HTCondor
    shows them until they leave; a job that finished meanwhile keeps its state.
    condor_rm -all names every job: the jobs are found in C, not looked up one by one, by
    the snapshot's own ID texts when it has them."""
    id_texts = job_set.id_texts()
    if id_texts is not None:
        texts: Iterable[Optional[str]] = id_texts.of(range(len(job_set)))
    else:
        clusters, procs = job_set.column("ClusterId"), job_set.column("ProcId")
        if clusters is not None and procs is not None \
                and set(map(type, clusters)) | set(map(type, procs)) == {int}:
            texts = map("%d.%d".__mod__, zip(clusters, procs))
        else:
            texts = (jobs.format_job_id(jid) if set(map(type, jid)) == {int} else None
                     for jid in job_set.ids())
    named = list(compress(range(len(job_set)), map(removals.__contains__, texts)))
    if not named:
        return
    status = job_set.column("JobStatus")
    removed = int(jobs.JobStatus.REMOVED)
    if status is None:
        for index in named:
            job_set.set_value(index, "JobStatus", removed)
        return
    job_set.touch("JobStatus")   # changed in place: the snapshot's hints of it no longer hold
    final = jobs.FINAL_STATES
    if len(named) == len(status):
        status[:] = [value if value in final else removed for value in status]
        return
    for index in named:
        if status[index] not in final:
            status[index] = removed


def _untaken_records(spool: Spool) -> List[Tuple[str, List[Job]]]:
    """(name, valid jobs) of the records in queue/ now that the snapshot does not already
    hold. Records a snapshot names are not read: their jobs are in every later snapshot,
    the one read next included (a big record stays until two snapshots hold it, and
    validating its jobs again would be most of condor_q's work meanwhile)."""
    names = spool.records.pending()
    if not names:
        return []
    held = _held_records(spool.published.snapshot_columns())
    return [(name, _untaken_jobs(spool, name)) for name in names if name not in held]


def _held_records(columns: Optional[Columns]) -> Set[str]:
    """The records a snapshot names as holding (older masters name none)."""
    held = columns.header.get("records") if columns is not None else None
    return set(held) if isinstance(held, list) else set()


def _taken_meanwhile(spool: Spool, untaken: List[Tuple[str, List[Job]]],
                     in_snapshot: Set[JobId]) -> bool:
    """Whether a record the snapshot does not name, with jobs it does not hold, was deleted
    after it was read. The snapshot is then older than the record's taking (its jobs must be
    shown from the record) or newer than its deletion (its jobs finished and left: shown
    from the record, a finished job would count as idle); reading again tells which."""
    return any(not spool.records.exists(name) for name, found in untaken
               if any(jobs.job_id(job) not in in_snapshot for job in found))


def _untaken_jobs(spool: Spool, name: str) -> List[Job]:
    try:
        cluster, content = spool.records.read(name)
        if cluster is None:
            return []  # an upstream description: it has no job ad until taken
        return [jobs.validate_job(job, cluster) for job in content]
    except (SpoolError, OSError, jobs.InvalidJob):
        return []  # vanished (taken) meanwhile, or refused: the master reports it


def _in_id_order(job_set: JobSet) -> JobSet:
    ids = job_set.ids()
    if all(a < b for a, b in zip(ids, ids[1:])):
        return job_set
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return JobSet.from_ads(job_set.ads(order))
