"""What comes into the master through the spool: job records and removal requests.

A record or request is deleted only once two snapshot generations hold what
it brought (state.pickle and state.pickle.1, see awq/spool/published.py): if
the current one is found damaged, the previous one stands in and still holds
it. So the intake remembers what it took through two snapshot writes
(``commit`` after each). A record the master cannot take is moved aside to
queue/bad with the reason in the log; it is never retried in a loop.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Dict, List, Optional, Set, Tuple

from awq import jobs, submit
from awq.jobs import Job, JobId, Request
from awq.jobtable import JobTable
from awq.spool import Spool, SpoolError

log = logging.getLogger("awq.master")

RequestFile = Tuple[str, str]             # (action, file name)
Stamp = Optional[Tuple[int, int]]         # a request file's inode and mtime (Requests.stamp)


class SpoolIntake:
    def __init__(self, spool: Spool, owner: str):
        self.spool = spool
        self.owner = owner
        # Taken since the last snapshot, and held by the current snapshot alone: what the
        # next commit deletes is the second set (now in two generations).
        self.taken_records: Set[str] = set()
        self.records_saved_once: Set[str] = set()
        self.done_requests: Set[Tuple[str, str, JobId]] = set()   # (action, file, job)
        self.requests_saved_once: Set[Tuple[str, str, JobId]] = set()
        # What each request file was when carried out: rewritten since, it is a new request.
        self.request_stamps: Dict[RequestFile, Stamp] = {}

    def take_records(self, table: JobTable) -> int:
        """Put the jobs of new records in the table; returns how many came in."""
        added = 0
        for name in self.spool.records.pending():
            if name in self.taken_records or name in self.records_saved_once:
                continue
            try:
                new_jobs = self._read(name)
            except FileNotFoundError:
                continue
            except (SpoolError, jobs.InvalidJob, submit.SubmitError, OSError) as err:
                self._refuse(name, err, table)
                continue
            added += sum(1 for job in new_jobs if table.add(job))
            self.taken_records.add(name)
            # Even when every job was taken before a crash: the record goes with the next snapshot.
            table.mark_changed()
        return added

    def requests(self) -> List[Request]:
        """What condor_rm, condor_hold, ... asked that was not carried out yet."""
        wanted = []
        reasons: Dict[RequestFile, str] = {}   # a batch file holds one reason for all
        stamps: Dict[RequestFile, Stamp] = {}    # one stat a file per look
        for action, name, jid in self.spool.requests.pending():
            key, request_file = (action, name, jid), (action, name)
            if request_file not in stamps:
                stamps[request_file] = self.spool.requests.stamp(action, name)
            if key in self.done_requests or key in self.requests_saved_once:
                if stamps[request_file] == self.request_stamps.get(request_file):
                    continue
                # condor_hold 1.0 again after a release rewrites hold/1.0: a new request.
                # The old one's result is saved; the file goes after its own generations.
                self.done_requests.discard(key)
                self.requests_saved_once.discard(key)
            self.done_requests.add(key)
            self.request_stamps[request_file] = stamps[request_file]
            if request_file not in reasons:
                reasons[request_file] = self.spool.requests.reason(action, name)
            wanted.append(Request(action, jid, reasons[request_file]))
        return wanted

    def held_records(self) -> List[str]:
        """Records whose jobs the table holds and whose files are still in queue/: the
        snapshot names them, so condor_q takes their jobs from it, not from the file."""
        return sorted(self.taken_records | self.records_saved_once)

    def commit(self) -> bool:
        """A snapshot holding everything taken is durable: what the one before held too can
        go. True when something waits for the next snapshot to go (the caller writes one)."""
        self.spool.records.remove(self.records_saved_once)
        self.spool.requests.remove({(action, name) for action, name, _
                                    in self.requests_saved_once})
        self.records_saved_once, self.taken_records = self.taken_records, set()
        self.requests_saved_once, self.done_requests = self.done_requests, set()
        kept = {(action, name) for action, name, _ in self.requests_saved_once}
        self.request_stamps = {request_file: stamp for request_file, stamp
                               in self.request_stamps.items() if request_file in kept}
        return bool(self.records_saved_once or self.requests_saved_once)

    def _read(self, name: str) -> List[Job]:
        cluster, content = self.spool.records.read(name)
        if cluster is None:
            return self._jobs_from_upstream(content)
        new_jobs = [jobs.validate_job(job, cluster, spool_dir=self.spool.root) for job in content]
        if not new_jobs:
            raise jobs.InvalidJob("the record holds no job")
        return new_jobs

    def _jobs_from_upstream(self, text: str) -> List[Job]:
        """A raw description that upstream's condor_submit spooled before an upgrade."""
        desc = submit.parse_description(text)
        build_args = dict(cwd=os.path.expanduser("~"), environ=dict(os.environ),
                          owner=self.owner, uid=os.getuid(), now=int(time.time()))
        submit.build_jobs(desc, cluster_id=1, **build_args)  # validate before taking an id
        cluster = self.spool.records.allocate_cluster_id()
        return [jobs.validate_job(job, cluster, spool_dir=self.spool.root)
                for job in submit.build_jobs(desc, cluster_id=cluster, **build_args)]

    def _refuse(self, name: str, err: Exception, table: JobTable) -> None:
        """Keep the record for the admin; its jobs, where they can be named, stay visible held."""
        reason = "the master refused this job: %s" % err
        for stub in self._held_stubs(name, reason):
            table.add(stub)
        try:
            where = self.spool.records.quarantine(name)
            log.error("refused spool record %s: %s (moved to %s)", name, err, where)
        except OSError as move_err:
            log.error("refused spool record %s: %s (and cannot move it aside: %s)",
                      name, err, move_err)

    def _held_stubs(self, name: str, reason: str) -> List[Job]:
        try:
            cluster, content = self.spool.records.read(name)
        except (SpoolError, OSError):
            return []
        if cluster is None:
            return []
        stubs = {}
        for raw in content:
            stub = jobs.held_stub(raw, cluster, reason)
            if stub is not None:
                stubs[jobs.job_id(stub)] = stub
        return list(stubs.values())
