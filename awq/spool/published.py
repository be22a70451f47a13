"""What the master publishes for the query tools: its table (the snapshot) and stat/.

state.pickle is the master's job table, by column (awq.snapshot), replaced
atomically; stat/latest is upstream's WAITING/RUNNING/TIMESTAMP heartbeat;
stat/master.json is what the master knows beyond the table (Work Queue's
counters) for --status.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Dict, Optional

    from awq.snapshot import Columns

from awq.spool import codec
from awq.spool.files import atomic_write, read_trusted

MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
MAX_STAT_BYTES = 4096
MAX_MASTER_STATUS_BYTES = 1 << 20


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
