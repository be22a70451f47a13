"""The spool directory: every byte of durable state goes through this package.

Layout (upstream's names kept)::

    $AWQ_WORKDIR/            default /tmp/awq, 0700 (0750 with AWQ_SPOOL_GROUP)
      queue/C.job            records from condor_submit (JSON), taken by the master
      queue/job-<sha1>       raw descriptions left by upstream's condor_submit
      queue/bad/             records the master refused, kept for the admin
      rm/C.P                 removal requests from condor_rm (the file holds the reason)
      rm/batch.PID.RANDOM    one request for more than 64 jobs: the reason, then a C.P a line
      hold/, release/, suspend/, continue/   the same for condor_hold, condor_release, ...
      state.pickle           the master's job table, a pickle by column (awq.snapshot),
                             atomic replace
      stat/latest            upstream's WAITING/RUNNING/TIMESTAMP heartbeat
      stat/master.json       the master's PID, port, start time and Work Queue's counters
      next_cluster           cluster id counter, changed under submit.lock
      master.lock            flock held by the running master; holds its PID
      history/history        finished jobs, one JSON object a line
      drain                  upstream's drain switch
      password               the workers' password, made by the master (0600)
      starts/N               the master's start journal: a line per job start (starts.py)

A Spool knows these paths and is made of one part a concern, each given only
the paths it uses: ``records`` (queue/ and the cluster counter, records.py),
``requests`` (rm/, hold/, ..., requests.py), ``published`` and ``history``
(the snapshot, stat/ and history/, published.py) and ``master_files``
(master.lock, the password, crash leftovers, master_files.py). The master's
start journal (starts.py) is the master's alone: it makes its own from
``starts_dir``, so a query tool never imports it. files.py holds
the durable primitives they all write with, codec.py the encodings. What
condor_q shows, the snapshot merged with the records not taken yet, is
awq.queue_view's.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Optional

from awq.spool.codec import (SNAPSHOT_UPGRADES, SNAPSHOT_VERSION, decode_jobs, encode_jobs,
                             loads_snapshot)
from awq.spool.files import (FileLock, LockTimeout, SpoolError, atomic_write, check_secret_file,
                             check_trusted, make_spool_directory)
from awq.spool.master_files import MasterFiles
from awq.spool.published import History, Published
from awq.spool.records import Records
from awq.spool.requests import REQUEST_ACTIONS, Requests

__all__ = ["DEFAULT_WORKDIR", "REQUEST_ACTIONS", "SNAPSHOT_UPGRADES", "SNAPSHOT_VERSION",
           "FileLock", "LockTimeout", "Spool", "SpoolError", "atomic_write", "check_secret_file",
           "decode_jobs", "default_workdir", "encode_jobs", "loads_snapshot"]

DEFAULT_WORKDIR = "/tmp/awq"


def default_workdir() -> str:
    return os.environ.get("AWQ_WORKDIR") or DEFAULT_WORKDIR


class Spool:
    """The spool directory: its paths, and one part for each concern (see the module text).

    Each part is given the paths it uses and nothing else, so a part reads on its own.
    """

    def __init__(self, workdir: Optional[str] = None, create: bool = False):
        self.root = os.path.abspath(workdir or default_workdir())
        self.queue_dir = os.path.join(self.root, "queue")
        self.bad_dir = os.path.join(self.queue_dir, "bad")
        self.rm_dir = os.path.join(self.root, "rm")
        self.stat_dir = os.path.join(self.root, "stat")
        self.history_dir = os.path.join(self.root, "history")
        self.snapshot_path = os.path.join(self.root, "state.pickle")
        self.stat_path = os.path.join(self.stat_dir, "latest")
        self.master_status_path = os.path.join(self.stat_dir, "master.json")
        self.counter_path = os.path.join(self.root, "next_cluster")
        self.submit_lock_path = os.path.join(self.root, "submit.lock")
        self.master_lock_path = os.path.join(self.root, "master.lock")
        self.history_path = os.path.join(self.history_dir, "history")
        self.drain_path = os.path.join(self.root, "drain")
        self.password_path = os.path.join(self.root, "password")
        self.shared_dir = os.path.join(self.root, "shared")  # the master's (awq/shared_inputs.py)
        self.starts_dir = os.path.join(self.root, "starts")  # the master's (spool/starts.py)
        self.request_dirs = {action: os.path.join(self.root, action) for action in REQUEST_ACTIONS}

        self.published = Published(self.snapshot_path, self.stat_dir, self.stat_path,
                                   self.master_status_path)
        self.records = Records(self.queue_dir, self.bad_dir, self.counter_path,
                               self.submit_lock_path, self.published.snapshot_columns)
        self.requests = Requests(self.request_dirs)
        self.history = History(self.history_dir, self.history_path)
        self.master_files = MasterFiles(self.root, self.master_lock_path, self.password_path,
                                        (self.root, self.queue_dir, self.stat_dir))
        if create:
            self._create()
        self._check_layout()

    def request_dir(self, action: str) -> str:
        return self.requests.directory(action)

    def _create(self) -> None:
        for path in (self.root, self.queue_dir, self.bad_dir, self.stat_dir,
                     self.history_dir) + tuple(self.request_dirs.values()):
            make_spool_directory(path)

    def _check_layout(self) -> None:
        try:
            check_trusted(self.root, want_dir=True)
        except FileNotFoundError:
            raise SpoolError("the spool %s does not exist (no job was ever submitted, "
                             "or AWQ_WORKDIR points elsewhere)" % self.root)
        for path in (self.queue_dir, self.rm_dir):
            try:
                check_trusted(path, want_dir=True)
            except FileNotFoundError:
                raise SpoolError("the spool %s is incomplete: %s is missing" % (self.root, path))

    def size_in_bytes(self) -> int:
        total = 0
        for directory, _, names in os.walk(self.root):
            for name in names:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_size
                except OSError:
                    continue  # taken or replaced meanwhile
        return total
