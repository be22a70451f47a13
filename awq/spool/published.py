"""What the master publishes for the query tools: its table, stat/, and the history.

state.pickle is the master's job table, by column (awq.snapshot), replaced
atomically; state.pickle.1 is the generation before it (the file state.pickle
was until the last write). A damaged current generation falls back to the
previous one, and the master deletes a record or request only once both
generations hold what it brought, so losing one generation loses nothing.
stat/latest is upstream's WAITING/RUNNING/TIMESTAMP heartbeat;
stat/master.json is what the master knows beyond the table (Work Queue's
counters) for --status.

history/history holds the jobs that left the queue, one JSON object a line,
for condor_history. Lines are appended (and fsync'ed) after the snapshot that
no longer holds the jobs: a crash in between repeats a job, never loses one,
and the reader keeps the last line for each job id. Removed jobs are appended
before the snapshot without them instead (their request is kept until two
snapshots hold the result, so a crash repeats the removal, and the line). Past max_bytes the file
becomes history.1 and the one before goes. condor_history reads it from the
end, a block at a time, so `-limit 1` costs one block, not the file.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Dict, Iterator, List, Optional, Tuple

    from awq.jobs import Job, JobId
    from awq.snapshot import Columns

from awq import classad, jobs
from awq.spool import codec
from awq.spool.codec import SnapshotDamaged
from awq.spool.files import (SpoolError, atomic_write, check_stat, fsync_dir, open_trusted,
                              read_trusted)

MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
MAX_STAT_BYTES = 4096
MAX_MASTER_STATUS_BYTES = 1 << 20
MAX_HISTORY_BYTES = 128 * 1024 * 1024
PREVIOUS_SUFFIX = ".1"          # state.pickle.1: the generation before state.pickle
DAMAGED_SUFFIX = ".damaged."    # + the time it was set aside: kept for the admin
HISTORY_BLOCK_BYTES = 64 * 1024  # what condor_history reads at a time, from the end
MAX_HISTORY_LINE_BYTES = 64 * 1024 * 1024   # a job line is at most a record (records.py)


class SnapshotLoad:
    """What loading the snapshot found: state, the newest readable generation's (None when
    there is none); path, where it came from; damaged, (path, why) of each newer
    generation that could not be read. path differs from the current generation's when a
    fallback happened (damaged, or the current one is missing)."""

    __slots__ = ("state", "path", "damaged")

    def __init__(self, state: Optional[Dict[str, Any]], path: Optional[str],
                 damaged: List[Tuple[str, str]]):
        self.state = state
        self.path = path
        self.damaged = damaged


class Published:
    def __init__(self, snapshot_path: str, stat_dir: str, stat_path: str,
                 master_status_path: str):
        self.snapshot_path = snapshot_path
        self.previous_snapshot_path = snapshot_path + PREVIOUS_SUFFIX
        self.stat_dir = stat_dir
        self.stat_path = stat_path
        self.master_status_path = master_status_path

    # -- the snapshot

    def generations(self) -> List[str]:
        """The snapshot's files, newest first: state.pickle, then state.pickle.1."""
        return [self.snapshot_path, self.previous_snapshot_path]

    def write_snapshot(self, state: Dict[str, Any]) -> None:
        """A new current generation; the current one becomes the previous (state.pickle.1)."""
        atomic_write(self.snapshot_path, codec.encode_snapshot(state),
                     previous=self.previous_snapshot_path)

    def load_snapshot(self) -> Optional[Dict[str, Any]]:
        """The whole state the master saved, from the newest readable generation; None
        before its first save. Raises SnapshotDamaged when every generation is damaged."""
        loaded = self.load_generation()
        if loaded.state is None and loaded.damaged:
            raise SnapshotDamaged(_damaged_text(loaded.damaged))
        return loaded.state

    def load_generation(self) -> SnapshotLoad:
        """The newest generation that reads whole, and what was wrong with newer ones.

        Only damage falls back: a generation refused for its owner, its mode or a newer
        format stops here (SpoolError), as it must not be replaced silently."""
        damaged: List[Tuple[str, str]] = []
        for path in self.generations():
            data = self._snapshot_bytes(path)
            if data is None:
                continue
            try:
                return SnapshotLoad(codec.loads_snapshot(data), path, damaged)
            except SnapshotDamaged as err:
                damaged.append((path, str(err)))
        return SnapshotLoad(None, None, damaged)

    def snapshot_columns(self) -> Optional[Columns]:
        """The saved table opened by column (what condor_q reads), from the newest
        generation that opens; None before the first save."""
        return self.snapshot_generation()[1]

    def snapshot_generation(self) -> Tuple[Optional[str], Optional[Columns]]:
        """(path, columns) of the newest generation that opens; (None, None) before the
        first save. Raises SnapshotDamaged when every generation is damaged."""
        damaged: List[Tuple[str, str]] = []
        for path in self.generations():
            try:
                return path, self.open_generation(path)
            except FileNotFoundError:
                continue
            except SnapshotDamaged as err:
                damaged.append((path, str(err)))
        if damaged:
            raise SnapshotDamaged(_damaged_text(damaged))
        return None, None

    def open_generation(self, path: str) -> Columns:
        """One generation's columns, each read from the file when first asked for (the
        file stays open while they are in use: a rename by the master does not change what
        they read); FileNotFoundError, SnapshotDamaged or SpoolError."""
        fd, size = open_trusted(path, MAX_SNAPSHOT_BYTES)
        return codec.open_snapshot_at(_OpenFile(fd).read_at, size)

    def set_aside(self, path: str, now: Optional[float] = None) -> str:
        """Move a damaged generation out of the way, kept for the admin; its new path.

        The master does this before its next write, which would otherwise keep the
        damaged file as the previous generation."""
        target = "%s%s%d" % (self.snapshot_path, DAMAGED_SUFFIX, int(now or time.time()))
        os.rename(path, target)
        fsync_dir(os.path.dirname(path) or ".")
        return target

    def _snapshot_bytes(self, path: str) -> Optional[bytes]:
        try:
            return read_trusted(path, MAX_SNAPSHOT_BYTES)
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
        self.bytes_read = 0   # by newest_first: what its bounded-memory promise is held to

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
        """Finished jobs, oldest first, the last line for a job id winning (a crash may
        repeat one)."""
        return list(reversed(list(self.newest_first())))

    def newest_first(self) -> Iterator[Job]:
        """Finished jobs from the end of the history (history, then history.1), each job
        once, as its last line has it. Reads a block at a time and only as far as the
        caller iterates: `condor_history -limit 1` reads one block of a 128 MB file."""
        seen = set()
        for path in (self.history_path, self.history_path + ".1"):
            for line in self._lines_from_end(path):
                try:
                    job = codec.decode_job_line(line)
                    jid = jobs.job_id(job)
                except (ValueError, KeyError, TypeError, classad.ClassAdError):
                    continue  # a torn last line after a crash
                if jid not in seen:
                    seen.add(jid)
                    yield job

    def _lines_from_end(self, path: str) -> Iterator[bytes]:
        """The file's lines, last first, in bounded memory (a line longer than a record
        could hold is skipped, not gathered)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return
        except OSError as err:
            raise SpoolError("cannot open %s: %s" % (path, err.strerror))
        try:
            end = check_stat(path, os.fstat(fd), want_dir=False).st_size
            partial = b""      # the end of a line whose start lies in an earlier block
            skipping = False   # inside a line too long to be a job: drop it
            while end > 0:
                start = max(0, end - HISTORY_BLOCK_BYTES)
                block = os.pread(fd, end - start, start)
                self.bytes_read += len(block)
                end = start
                pieces = (block + partial).split(b"\n")
                if skipping:
                    if len(pieces) == 1:
                        partial = b""
                        continue
                    pieces[-1] = b""
                    skipping = False
                partial = pieces[0]
                for line in reversed(pieces[1:]):
                    if line:
                        yield line
                if len(partial) > MAX_HISTORY_LINE_BYTES:
                    partial, skipping = b"", True
            if partial and not skipping:
                yield partial
        finally:
            os.close(fd)


class _OpenFile:
    """A descriptor read at offsets, closed when the last reader lets go of it."""

    def __init__(self, fd: int):
        self.fd = fd

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to length bytes at offset (fewer only at the end of the file)."""
        data = os.pread(self.fd, length, offset)
        while len(data) < length:
            more = os.pread(self.fd, length - len(data), offset + len(data))
            if not more:
                break
            data += more
        return data

    def __del__(self) -> None:
        os.close(self.fd)


def _damaged_text(damaged: List[Tuple[str, str]]) -> str:
    return "; ".join("%s: %s" % (path, why) for path, why in damaged)
