"""What the master publishes for the query tools: its table, stat/, and the history.

state.pickle is the master's job table, by column (awq.snapshot), replaced
atomically; stat/latest is upstream's WAITING/RUNNING/TIMESTAMP heartbeat;
stat/master.json is what the master knows beyond the table (Work Queue's
counters) for --status.

history/history holds the jobs that left the queue, one JSON object a line,
for condor_history. Lines are appended (and fsync'ed) after the snapshot that
no longer holds the jobs: a crash in between repeats a job, never loses one,
and the reader keeps the last line for each job id. Past max_bytes the file
becomes history.1 and the one before goes.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Dict, List, Optional

    from awq.jobs import Job, JobId
    from awq.snapshot import Columns

from awq import classad, jobs
from awq.spool import codec
from awq.spool.files import atomic_write, fsync_dir, read_trusted

MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
MAX_STAT_BYTES = 4096
MAX_MASTER_STATUS_BYTES = 1 << 20
MAX_HISTORY_BYTES = 128 * 1024 * 1024


class Published:
    def __init__(self, snapshot_path: str, stat_dir: str, stat_path: str,
                 master_status_path: str):
        self.snapshot_path = snapshot_path
        self.stat_dir = stat_dir
        self.stat_path = stat_path
        self.master_status_path = master_status_path

    # -- the snapshot

    def write_snapshot(self, state: Dict[str, Any]) -> None:
        atomic_write(self.snapshot_path, codec.encode_snapshot(state))

    def load_snapshot(self) -> Optional[Dict[str, Any]]:
        """The whole state the master saved (what it restores); None before its first save."""
        data = self._snapshot_bytes()
        return None if data is None else codec.loads_snapshot(data)

    def snapshot_columns(self) -> Optional[Columns]:
        """The saved table opened by column (what condor_q reads); None before the first save."""
        data = self._snapshot_bytes()
        return None if data is None else codec.open_snapshot(data)

    def _snapshot_bytes(self) -> Optional[bytes]:
        try:
            return read_trusted(self.snapshot_path, MAX_SNAPSHOT_BYTES)
        except FileNotFoundError:
            return None

    # -- the heartbeat and the master's counters

    def write_stat(self, waiting: int, running: int, now: Optional[float] = None) -> None:
        os.makedirs(self.stat_dir, mode=0o700, exist_ok=True)
        text = "WAITING=%d\nRUNNING=%d\nTIMESTAMP=%d\n" % (waiting, running,
                                                           int(now or time.time()))
        atomic_write(self.stat_path, text.encode(), mode=0o644)

    def read_stat(self) -> Dict[str, int]:
        """stat/latest's numbers by name; {} before the master's first heartbeat."""
        try:
            data = read_trusted(self.stat_path, MAX_STAT_BYTES).decode("ascii", "replace")
        except FileNotFoundError:
            return {}
        values = {}
        for line in data.splitlines():
            key, sep, value = line.partition("=")
            if sep and value.strip().isdigit():
                values[key.strip()] = int(value.strip())
        return values

    def write_master_status(self, status: Dict[str, Any]) -> None:
        """What the master knows beyond the job table (Work Queue's counters), for --status."""
        import json
        os.makedirs(self.stat_dir, mode=0o700, exist_ok=True)
        atomic_write(self.master_status_path, json.dumps(status, sort_keys=True).encode())

    def read_master_status(self) -> Dict[str, Any]:
        import json
        try:
            data = read_trusted(self.master_status_path, MAX_MASTER_STATUS_BYTES)
            status = json.loads(data.decode("utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError):
            return {}  # torn by hand: atomic writes never leave it so
        return status if isinstance(status, dict) else {}


class History:
    def __init__(self, history_dir: str, history_path: str):
        self.history_dir = history_dir
        self.history_path = history_path
        self.max_bytes = MAX_HISTORY_BYTES

    def append(self, finished: List[Job]) -> None:
        if not finished:
            return
        os.makedirs(self.history_dir, mode=0o700, exist_ok=True)
        self._rotate()
        lines = b"".join(codec.encode_job_line(job) for job in finished)
        fd = os.open(self.history_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                     0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        try:
            if os.lstat(self.history_path).st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        os.rename(self.history_path, self.history_path + ".1")
        fsync_dir(self.history_dir)

    def read(self) -> List[Job]:
        """Finished jobs, the last line for a job id winning (a crash may repeat one)."""
        latest: Dict[JobId, Job] = {}
        for path in (self.history_path + ".1", self.history_path):
            try:
                data = read_trusted(path, self.max_bytes * 2)
            except FileNotFoundError:
                continue
            for line in data.splitlines():
                try:
                    job = codec.decode_job_line(line)
                    latest[jobs.job_id(job)] = job
                except (ValueError, KeyError, TypeError, classad.ClassAdError):
                    continue  # a torn last line after a crash
        return list(latest.values())
