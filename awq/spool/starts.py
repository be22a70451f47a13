"""The start journal: one short line per job start, so a master killed between two
snapshots still knows every start it saw.

The snapshot is written a few times a second at most, and more rarely the
larger the table. A job that starts after one write and whose master dies
(kill -9, the OOM killer) before the next comes back from the older snapshot
as never started: it runs again and NumJobStarts would count one start for
two. The master therefore appends ``C.P STARTS TIME HOST`` to the journal at
every start (STARTS: NumJobStarts after it), and on start replays the
journal over the snapshot: a job's NumJobStarts is the larger of the two.

Cheap on purpose: one os.write on a descriptor kept open (O_APPEND), no
fsync. A killed process loses nothing it wrote, since the data is in the
kernel's page cache already; only a crash of the machine itself may lose
the last lines, and with them only the count of starts whose pilots that
crash ended anyway (the workers lose their master too). An fsync per start
would cost a disk flush each, for every job, to guard that one case.

Layout: ``starts/N``, numbered segments, mode 0600 in a 0700 directory. New
lines go to the newest segment; after each durable snapshot (every line so
far is in it) the segments it holds are closed, and deleted after the next
durable snapshot: the snapshot's two generations (published.py) both hold
them then, so falling back to the previous generation still loses no start.
Segments found at start are kept the same way until two snapshots written
after the replay hold what they said.

A damaged line (torn by a crash, edited by hand) is skipped, never an error:
the journal only ever raises a count, so a skipped line loses the one start it
held and nothing else.
"""

from __future__ import annotations

import errno
import logging
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

    from awq.jobs import JobId

from awq.spool.files import SpoolError, check_stat, check_trusted, make_spool_directory

log = logging.getLogger("awq.master")

READ_CHUNK_BYTES = 1 << 20
MAX_HOST_CHARS = 255          # a host name's limit (RFC 1035); the line stays short
# What a host may hold in a line: anything else (white space, control characters, a
# newline that would forge a line) becomes "?".
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789.-_:[]")
UNKNOWN_HOST = "-"


class JournaledStart:
    """A job's latest start in the journal: how many starts it made, when, and where."""

    __slots__ = ("starts", "started_at", "host")

    def __init__(self, starts: int, started_at: int, host: Optional[str]):
        self.starts = starts
        self.started_at = started_at
        self.host = host

    def __repr__(self) -> str:
        return "JournaledStart(%d, %d, %r)" % (self.starts, self.started_at, self.host)


def encode_start(jid: JobId, starts: int, started_at: int, host: Optional[str]) -> bytes:
    """One journal line: "C.P STARTS TIME HOST\\n" (HOST "-" when unknown)."""
    if host and (len(host) > MAX_HOST_CHARS or not HOST_CHARS.issuperset(host)):
        host = "".join(c if c in HOST_CHARS else "?" for c in host[:MAX_HOST_CHARS])
    return ("%d.%d %d %d %s\n" % (jid[0], jid[1], starts, started_at,
                                  host or UNKNOWN_HOST)).encode("ascii")


def decode_start(line: bytes) -> Optional[Tuple[JobId, JournaledStart]]:
    """A journal line read back; None for anything that is not a whole line we wrote."""
    try:
        fields = line.decode("ascii").split(" ")
    except UnicodeDecodeError:
        return None
    if len(fields) != 4:
        return None
    job, starts, started_at, host = fields
    cluster, dot, proc = job.partition(".")
    numbers = (cluster, proc, starts, started_at)
    if not dot or not all(n.isdigit() and len(n) <= 20 for n in numbers) or not host:
        return None
    if len(host) > MAX_HOST_CHARS or not set(host) <= HOST_CHARS | {"?", UNKNOWN_HOST}:
        return None
    if int(starts) < 1:
        return None
    return ((int(cluster), int(proc)),
            JournaledStart(int(starts), int(started_at), None if host == UNKNOWN_HOST else host))


def merge_lines(data: bytes, into: Dict[JobId, JournaledStart]) -> int:
    """Fold a segment's whole lines into the latest start per job; returns the lines skipped
    (damaged). A last line without its newline was torn by a crash: skipped too."""
    skipped = 0
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()          # torn: no newline
        skipped += 1
    for line in lines:
        decoded = decode_start(line)
        if decoded is None:
            skipped += 1
            continue
        jid, start = decoded
        known = into.get(jid)
        if known is None or start.starts > known.starts:
            into[jid] = start
    return skipped


class JournalRead:
    """What the journal's segments say: the latest start per job, the lines skipped as
    damaged, and the segments' paths, oldest first."""

    __slots__ = ("latest", "damaged_lines", "segments")

    def __init__(self) -> None:
        self.latest: Dict[JobId, JournaledStart] = {}
        self.damaged_lines = 0
        self.segments: List[str] = []


def read_journal(directory: str) -> JournalRead:
    """Read every segment, changing nothing (the master's replay, and --check). A segment
    or directory another user owns or could write is refused (SpoolError)."""
    found = JournalRead()
    try:
        check_trusted(directory, want_dir=True)
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for number in sorted(int(name) for name in names if name.isdigit()):
        path = os.path.join(directory, str(number))
        data = _read_segment(path)
        if data is not None:
            found.damaged_lines += merge_lines(data, found.latest)
            found.segments.append(path)
    return found


def _read_segment(path: str) -> Optional[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SpoolError("%s is a symbolic link: refusing to use it" % path)
        raise SpoolError("cannot open %s: %s" % (path, err.strerror))
    try:
        check_stat(path, os.fstat(fd), want_dir=False)
        chunks = []
        while True:
            chunk = os.read(fd, READ_CHUNK_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class StartJournal:
    """The master's start journal (see the module text); the master alone writes it."""

    def __init__(self, directory: str):
        self.directory = directory
        self._fd = -1                      # the newest segment, open for appending
        self._next_number = 1
        # Segments no durable snapshot holds yet (the open one among them), then those one
        # snapshot holds: deleted at the next.
        self._unsaved: List[str] = []
        self._saved_once: List[str] = []
        self._write_failed = False         # said once per segment, not once per start

    # -- at start

    def replay(self) -> Dict[JobId, JournaledStart]:
        """Every job's latest journaled start, from the segments a dead master left.

        Creates the directory on first use. The segments stay until two snapshots written
        after this replay hold what they say (after_snapshot)."""
        make_spool_directory(self.directory)
        found = read_journal(self.directory)
        self._unsaved.extend(found.segments)
        if found.segments:
            self._next_number = int(os.path.basename(found.segments[-1])) + 1
        if found.damaged_lines:
            log.warning("the start journal %s had %d damaged lines (a crash tears the last "
                        "one); skipped them", self.directory, found.damaged_lines)
        return found.latest

    # -- while the master runs

    def record(self, jid: JobId, starts: int, started_at: int, host: Optional[str]) -> None:
        """A job started: one line, appended. A failed write is logged, never raised: the
        snapshot still counts the start unless the master also dies before its next write."""
        line = encode_start(jid, starts, started_at, host)
        try:
            if self._fd < 0:
                self._open_segment()
            os.write(self._fd, line)
        except OSError as err:
            if not self._write_failed:
                self._write_failed = True
                log.warning("cannot write the start journal in %s: %s; starts are counted "
                            "by the snapshot alone until it can", self.directory,
                            err.strerror or err)

    def _open_segment(self) -> None:
        path = os.path.join(self.directory, str(self._next_number))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
                           | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._next_number += 1
        self._unsaved.append(path)

    def after_snapshot(self) -> None:
        """A snapshot holding every start recorded so far is durable: the segments the one
        before held too go; the rest are held once now. Costs nothing while no job starts."""
        for path in self._saved_once:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:  # kept: replayed again, it only repeats counts held
                log.warning("cannot delete the start journal segment %s: %s", path,
                            err.strerror)
        self._saved_once, self._unsaved = self._unsaved, []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._write_failed = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def segments(self) -> List[str]:
        """The segments kept, oldest first (for tests and --check)."""
        return self._saved_once + self._unsaved
