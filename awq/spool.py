"""The spool directory: every byte of durable state goes through this module.

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

Every file that matters is written with temp + fsync + rename + fsync of
the directory, so a ``kill -9`` at any instant leaves either the old or the
new version. Nothing owned by another user, or writable by group/world, is
ever trusted, and the snapshot is decoded only after that check.

condor_q imports this module on every call: json, needed only for records
and history, is imported by the functions that use it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from awq import classad, jobs, snapshot
from awq.jobset import JobSet
from awq.jobs import Job, JobId

DEFAULT_WORKDIR = "/tmp/awq"
RECORD_SUFFIX = ".job"
UPSTREAM_PREFIX = "job-"
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
MAX_HISTORY_BYTES = 128 * 1024 * 1024   # then history rotates to history.1
LOCK_TIMEOUT = 60.0
SNAPSHOT_VERSION = 2   # see awq.snapshot
# Requests condor_rm, condor_hold, ... leave for the master: one directory each.
REQUEST_ACTIONS = ("rm", "hold", "release", "suspend", "continue")
MAX_REASON_BYTES = 1024
BATCH_ABOVE = 64           # a request for more jobs is one file listing them
BATCH_PREFIX = "batch."


class SpoolError(Exception):
    """The spool cannot be used as asked; the message says why, in one line."""


def default_workdir() -> str:
    return os.environ.get("AWQ_WORKDIR") or DEFAULT_WORKDIR


# ---------------------------------------------------------------- trust checks

def _describe_owner(uid: int) -> str:
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return "uid %d" % uid


def check_trusted(path: str, want_dir: bool) -> os.stat_result:
    """Refuse anything another user owns or could have written."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise SpoolError("cannot inspect %s: %s" % (path, err.strerror))
    return _check_stat(path, st, want_dir)


def _check_stat(path: str, st: os.stat_result, want_dir: bool) -> os.stat_result:
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        what = "a directory" if want_dir else "a regular file"
        raise SpoolError("%s is not %s (symbolic links are refused)" % (path, what))
    if st.st_uid != os.geteuid():
        raise SpoolError("%s is owned by %s, not by %s: refusing to use it"
                         % (path, _describe_owner(st.st_uid), _describe_owner(os.geteuid())))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SpoolError("%s is writable by group or others (mode %04o): refusing to use it"
                         % (path, stat.S_IMODE(st.st_mode)))
    return st


def check_secret_file(path: str) -> None:
    """A password file must be ours and readable by nobody else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise SpoolError("cannot open the password file %s: %s" % (path, err.strerror))
    try:
        st = _check_stat(path, os.fstat(fd), want_dir=False)
    finally:
        os.close(fd)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SpoolError("the password file %s can be read by group or others (mode %04o): "
                         "chmod 600 it" % (path, stat.S_IMODE(st.st_mode)))


# ---------------------------------------------------------------- atomic files

def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Replace path with data so that a crash leaves the old or the new file.

    durable=False skips the fsyncs: the file appears whole, but only for as long as the
    machine stays up (for files a restart throws away anyway).
    """
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, ".%s.tmp.%d.%s" % (name, os.getpid(), os.urandom(4).hex()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(directory or ".")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def read_trusted(path: str, limit: int) -> bytes:
    """Read a file we own and only we can write, refusing files larger than limit.

    The checks apply to the open descriptor, not the path: the master swaps
    files in by rename at any moment, and what we read must be what we checked.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SpoolError("%s is a symbolic link: refusing to use it" % path)
        raise SpoolError("cannot open %s: %s" % (path, err.strerror))
    try:
        st = _check_stat(path, os.fstat(fd), want_dir=False)
        if st.st_size > limit:
            raise SpoolError("%s is %d bytes, more than the %d allowed" % (path, st.st_size, limit))
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SpoolError("%s grew past the %d bytes allowed" % (path, limit))
    return data


class LockTimeout(SpoolError):
    pass


class FileLock:
    """An flock on a lock file, taken with a bounded wait."""

    def __init__(self, path: str, exclusive: bool = True, timeout: float = LOCK_TIMEOUT):
        self.path = path
        self.exclusive = exclusive
        self.timeout = timeout
        self.fd = -1

    def acquire(self) -> "FileLock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        op = (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, op)
                return self
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                self.release()
                raise LockTimeout("timed out after %.0f s waiting for the lock %s"
                                  % (self.timeout, self.path))
            time.sleep(0.005)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ---------------------------------------------------------------- encodings

def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"$expr"} or not isinstance(value["$expr"], str):
            raise ValueError("unexpected object value")
        return classad.Expr(value["$expr"])
    return value


def _expression_as_object(value: Any) -> Any:
    """json's hook for what it cannot encode itself: an expression (anything else raises)."""
    if isinstance(value, classad.Expr):
        return {"$expr": value.text}
    raise TypeError("%s is not a job attribute value" % type(value).__name__)


_job_encoder: Any = None   # made on first use: json stays out of condor_q's imports


def _encode_jobs_json(value: Any) -> bytes:
    """Jobs (or a document of them) as compact JSON; expressions as {"$expr": text}.

    The hook, not a copy of each job with its expressions encoded: json's C encoder
    then walks every job once."""
    global _job_encoder
    if _job_encoder is None:
        import json
        _job_encoder = json.JSONEncoder(separators=(",", ":"), default=_expression_as_object)
    return _job_encoder.encode(value).encode()


def _encode_job_line(job: Job) -> bytes:
    return _encode_jobs_json(job) + b"\n"


def encode_jobs(job_list: List[Job]) -> bytes:
    return _encode_jobs_json({"version": 1, "jobs": job_list})


def decode_jobs(data: bytes) -> List[Job]:
    import json
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise SpoolError("not a job record: %s" % err)
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise SpoolError("not a job record: no job list")
    result = []
    # The jobs of a record repeat most strings (Owner, Cmd, Iwd, ...). Equal ones become
    # one object: the table holds it once, and the snapshot's pickler writes it once and
    # refers to it after (a third smaller, a quarter faster at 10,000 jobs). Strings
    # only: 1 == 1.0 == True would hand one type's value to another.
    shared: Dict[str, str] = {}
    for raw in doc["jobs"]:
        if not isinstance(raw, dict):
            raise SpoolError("not a job record: a job is not an object")
        try:
            result.append({k: shared.setdefault(v, v) if type(v) is str
                           else _decode_value(v) for k, v in raw.items()})
        except (ValueError, classad.ClassAdError) as err:
            raise SpoolError("bad value in job record: %s" % err)
    return result


# format N -> format N+1, applied in turn on load; the next write saves the new format.
# (Format 1 -> 2 changed only the encoding: awq.snapshot reads both.)
SNAPSHOT_UPGRADES: Dict[int, Callable[[Dict[str, Any]], Dict[str, Any]]] = {}


def dumps_snapshot(state: Dict[str, Any]) -> bytes:
    return snapshot.encode(state)


def open_snapshot(data: bytes) -> snapshot.Columns:
    """The snapshot's columns, after the version checks every reader shares."""
    try:
        columns = snapshot.open_columns(data)
    except snapshot.SnapshotError as err:
        raise SpoolError(str(err))
    version = columns.version
    if version > SNAPSHOT_VERSION:
        raise SpoolError("the job table snapshot was written by a newer alien-workqueue (format "
                         "%d; this one reads up to %d): run the newer version, or move the "
                         "snapshot aside; it was left untouched" % (version, SNAPSHOT_VERSION))
    return columns


def loads_snapshot(data: bytes) -> Dict[str, Any]:
    columns = open_snapshot(data)
    try:
        state = columns.state()
    except snapshot.SnapshotError as err:
        raise SpoolError(str(err))
    version = columns.version
    while version < SNAPSHOT_VERSION:
        state = SNAPSHOT_UPGRADES[version](state)
        version = state["version"]
    return state


# ---------------------------------------------------------------- the spool

class QueueView(namedtuple("QueueView", "jobs heartbeat master_pid master_alive")):
    """What condor_q and condor_status see: the queue as of now. jobs is a JobSet
    (read_queue_set) or a list of jobs (read_queue); heartbeat is stat/latest's
    TIMESTAMP or None; master_alive says whether master.lock is held."""

    __slots__ = ()


class _Records:
    """condor_submit's records in queue/: cluster ids, writing, taking, refusing."""

    # -- submission

    def submit(self, build: Callable[[int], List[Job]]) -> int:
        """Take the next cluster id, build the jobs, write their record; return the id."""
        with FileLock(self.submit_lock_path):
            cluster_id = self._next_cluster_id()
            data = encode_jobs(build(cluster_id))
            if len(data) > MAX_RECORD_BYTES:
                # The master would refuse it: say so now, while the submitter is listening.
                raise SpoolError("the jobs' description is %d MB, more than the %d MB a "
                                 "submission may hold" % (len(data) >> 20, MAX_RECORD_BYTES >> 20))
            # The counter moves first: a crash then leaves a gap, never a reused id.
            atomic_write(self.counter_path, b"%d\n" % (cluster_id + 1))
            atomic_write(self.record_path(cluster_id), data)
        return cluster_id

    def allocate_cluster_id(self) -> int:
        with FileLock(self.submit_lock_path):
            cluster_id = self._next_cluster_id()
            atomic_write(self.counter_path, b"%d\n" % (cluster_id + 1))
        return cluster_id

    def _next_cluster_id(self) -> int:
        try:
            text = read_trusted(self.counter_path, 64).decode("ascii").strip()
            value = int(text)
            if value < 1:
                raise ValueError(text)
            return value
        except FileNotFoundError:
            return self._highest_known_cluster() + 1
        except (ValueError, UnicodeDecodeError):
            raise SpoolError("the cluster counter %s is corrupt; the highest cluster "
                             "id in the spool is %d" % (self.counter_path,
                                                        self._highest_known_cluster()))

    def _highest_known_cluster(self) -> int:
        """Where to restart the counter if its file is missing: past every id we know."""
        highest = 0
        for name in _listdir(self.queue_dir):
            cluster = _cluster_of_record(name)
            if cluster is not None:
                highest = max(highest, cluster)
        columns = self.snapshot_columns_if_present()
        if columns is not None:
            highest = max(highest, int(columns.header.get("max_cluster_id", 0)))
            highest = max([highest] + [c for c in columns.raw_column("ClusterId") or []
                                       if isinstance(c, int)])
        return highest

    def record_path(self, cluster_id: int) -> str:
        return os.path.join(self.queue_dir, "%d%s" % (cluster_id, RECORD_SUFFIX))

    # -- records (master side)

    def pending_records(self) -> List[str]:
        """Names of records waiting in queue/, oldest cluster first."""
        names = [n for n in _listdir(self.queue_dir)
                 if _cluster_of_record(n) is not None or n.startswith(UPSTREAM_PREFIX)]
        return sorted(names, key=_record_sort_key)

    def read_record(self, name: str) -> Tuple[Optional[int], Any]:
        """(cluster id, jobs) for our records, (None, description text) for upstream's."""
        path = os.path.join(self.queue_dir, name)
        data = read_trusted(path, MAX_RECORD_BYTES)
        cluster = _cluster_of_record(name)
        if cluster is None:
            try:
                return None, data.decode("utf-8")
            except UnicodeDecodeError:
                raise SpoolError("%s is not UTF-8 text" % path)
        return cluster, decode_jobs(data)

    def remove_records(self, names: Iterable[str]) -> None:
        removed = False
        for name in names:
            _unlink_quietly(os.path.join(self.queue_dir, name))
            removed = True
        if removed:
            fsync_dir(self.queue_dir)

    def quarantine_record(self, name: str) -> str:
        """Move a record the master refused aside, so it is neither lost nor retried."""
        os.makedirs(self.bad_dir, mode=0o700, exist_ok=True)
        target = os.path.join(self.bad_dir, "%s.%d" % (name, int(time.time())))
        os.rename(os.path.join(self.queue_dir, name), target)
        fsync_dir(self.queue_dir)
        return target


class _Requests:
    """Requests condor_rm, condor_hold, ... leave for the master, one directory a kind."""

    # -- requests

    def request_dir(self, action: str) -> str:
        if action not in REQUEST_ACTIONS:
            raise ValueError("unknown request %r" % action)
        return os.path.join(self.root, action)

    def request(self, action: str, ids: Iterable[JobId], reason: str = "") -> None:
        """Leave the master a request (rm, hold, release, suspend, continue) for each job."""
        directory = self.request_dir(action)
        if not os.path.isdir(directory):
            self._create()  # a spool made before this request kind existed
        data = reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
        ids = list(ids)
        if len(ids) > BATCH_ABOVE:
            # condor_rm -all on 10,000 jobs: one file, not 10,000 of them.
            name = "%s%d.%s" % (BATCH_PREFIX, os.getpid(), os.urandom(4).hex())
            lines = [data.replace(b"\n", b" ")] + [jobs.format_job_id(jid).encode() for jid in ids]
            atomic_write(os.path.join(directory, name), b"\n".join(lines) + b"\n")
            return
        for jid in ids:
            path = os.path.join(directory, jobs.format_job_id(jid))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        if ids:
            # The file's name is the request, made durable by one fsync of the directory
            # (one per file cost condor_rm -all 17 s on 5,000 jobs); after a crash at worst
            # the reason text is lost, not the request.
            fsync_dir(directory)

    def request_removal(self, ids: Iterable[JobId], reason: str = "") -> None:
        self.request("rm", ids, reason)

    def pending_requests(self) -> List[Tuple[str, str, JobId]]:
        """(action, file name, job id) of every request waiting for the master (a batch
        file names many jobs)."""
        result = []
        for action in REQUEST_ACTIONS:
            for name in _listdir(os.path.join(self.root, action)):
                if name.startswith(BATCH_PREFIX):
                    result.extend((action, name, jid) for jid in self._batch_ids(action, name))
                    continue
                jid = jobs.parse_job_id(name)
                if jid is not None:
                    result.append((action, name, jid))
        return result

    def _batch_lines(self, action: str, name: str) -> List[str]:
        try:
            data = read_trusted(os.path.join(self.request_dir(action), name), MAX_RECORD_BYTES)
        except (FileNotFoundError, SpoolError):
            return []   # carried out meanwhile, or not ours: ignored
        return data.decode("utf-8", "replace").split("\n")

    def _batch_ids(self, action: str, name: str) -> List[JobId]:
        ids = (jobs.parse_job_id(line) for line in self._batch_lines(action, name)[1:])
        return [jid for jid in ids if jid is not None]

    def pending_removals(self) -> List[Tuple[str, JobId]]:
        return [(name, jid) for action, name, jid in self.pending_requests() if action == "rm"]

    def request_reason(self, action: str, name: str) -> str:
        if name.startswith(BATCH_PREFIX):
            return (self._batch_lines(action, name) or [""])[0].strip()
        try:
            data = read_trusted(os.path.join(self.request_dir(action), name), MAX_REASON_BYTES)
        except (FileNotFoundError, SpoolError):
            return ""
        return data.decode("utf-8", "replace").strip()

    def remove_requests(self, done: Iterable[Tuple[str, str]]) -> None:
        """Delete (action, file name) requests the master has carried out."""
        touched = set()
        for action, name in done:
            _unlink_quietly(os.path.join(self.request_dir(action), name))
            touched.add(action)
        for action in touched:
            fsync_dir(self.request_dir(action))


class _Published:
    """What the master publishes: its table (snapshot), stat files, history."""

    # -- snapshot

    def write_snapshot(self, state: Dict[str, Any]) -> None:
        state = dict(state, version=SNAPSHOT_VERSION)
        atomic_write(self.snapshot_path, dumps_snapshot(state))

    def load_snapshot_if_present(self) -> Optional[Dict[str, Any]]:
        data = self._snapshot_bytes()
        return None if data is None else loads_snapshot(data)

    def snapshot_columns_if_present(self) -> Optional[snapshot.Columns]:
        data = self._snapshot_bytes()
        return None if data is None else open_snapshot(data)

    def _snapshot_bytes(self) -> Optional[bytes]:
        try:
            return read_trusted(self.snapshot_path, MAX_SNAPSHOT_BYTES)
        except FileNotFoundError:
            return None

    # -- stats and heartbeat

    def write_stat(self, waiting: int, running: int, now: Optional[float] = None) -> None:
        os.makedirs(self.stat_dir, mode=0o700, exist_ok=True)
        text = "WAITING=%d\nRUNNING=%d\nTIMESTAMP=%d\n" % (waiting, running, int(now or time.time()))
        atomic_write(self.stat_path, text.encode(), mode=0o644)

    def write_master_status(self, status: Dict[str, Any]) -> None:
        """What the master knows beyond the job table (Work Queue's counters), for --status."""
        import json
        os.makedirs(self.stat_dir, mode=0o700, exist_ok=True)
        atomic_write(self.master_status_path, json.dumps(status, sort_keys=True).encode())

    def read_master_status(self) -> Dict[str, Any]:
        import json
        try:
            data = read_trusted(self.master_status_path, 1 << 20)
            status = json.loads(data.decode("utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError):
            return {}  # torn by hand: atomic writes never leave it so
        return status if isinstance(status, dict) else {}

    def read_stat(self) -> Dict[str, int]:
        try:
            data = read_trusted(self.stat_path, 4096).decode("ascii", "replace")
        except FileNotFoundError:
            return {}
        values = {}
        for line in data.splitlines():
            key, sep, value = line.partition("=")
            if sep and value.strip().isdigit():
                values[key.strip()] = int(value.strip())
        return values

    # -- history

    def append_history(self, finished: List[Job]) -> None:
        if not finished:
            return
        os.makedirs(self.history_dir, mode=0o700, exist_ok=True)
        self._rotate_history()
        lines = b"".join(_encode_job_line(job) for job in finished)
        fd = os.open(self.history_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                     0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rotate_history(self) -> None:
        """Keep history bounded: past MAX_HISTORY_BYTES it becomes history.1 (the old one goes)."""
        try:
            if os.lstat(self.history_path).st_size < MAX_HISTORY_BYTES:
                return
        except FileNotFoundError:
            return
        os.rename(self.history_path, self.history_path + ".1")
        fsync_dir(self.history_dir)

    def read_history(self) -> List[Job]:
        """Finished jobs, the last line for a job id winning (a crash may repeat one)."""
        import json
        latest: Dict[JobId, Job] = {}
        for path in (self.history_path + ".1", self.history_path):
            try:
                data = read_trusted(path, MAX_HISTORY_BYTES * 2)
            except FileNotFoundError:
                continue
            for line in data.splitlines():
                try:
                    raw = json.loads(line.decode("utf-8"))
                    job = {k: _decode_value(v) for k, v in raw.items()}
                    latest[jobs.job_id(job)] = job
                except (ValueError, KeyError, TypeError, UnicodeDecodeError,
                        classad.ClassAdError):
                    continue  # a torn last line after a crash
        return list(latest.values())


class _MasterSide:
    """The running master's own files: its lock, its workers' password, crash leftovers."""

    # -- crash leftovers

    def sweep_temp_files(self) -> List[str]:
        """Delete temp files whose writer is dead: a crash mid-write leaves them behind.

        atomic_write puts the writer's PID in every temp name, so a live
        condor_submit's half-written file is never touched.
        """
        import re  # here: only the master sweeps, and condor_q starts faster without re
        temp_name = re.compile(_TEMP_NAME)
        removed = []
        for directory in (self.root, self.queue_dir, self.stat_dir):
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                match = temp_name.match(name)
                if match and not _pid_exists(int(match.group(1))):
                    _unlink_quietly(os.path.join(directory, name))
                    removed.append(os.path.join(directory, name))
        return removed

    # -- the workers' password

    def ensure_password(self) -> Tuple[str, bool]:
        """The spool's own password file, made (random, 0600) on first use: (path, created)."""
        try:
            check_secret_file(self.password_path)
            return self.password_path, False
        except FileNotFoundError:
            atomic_write(self.password_path, os.urandom(32).hex().encode() + b"\n", mode=0o600)
            return self.password_path, True

    # -- master lock

    def lock_master(self) -> FileLock:
        """Hold master.lock for the master's lifetime; a second master is refused by name."""
        # condor_q may hold a shared probe of the lock for an instant: wait a little.
        lock = FileLock(self.master_lock_path, timeout=2.0)
        try:
            lock.acquire()
        except LockTimeout:
            pid = self.master_pid()
            raise SpoolError("another alien_work_queue (PID %s) is already running on the "
                             "spool %s" % (pid if pid else "unknown", self.root))
        os.ftruncate(lock.fd, 0)
        os.write(lock.fd, b"%d\n" % os.getpid())
        os.fsync(lock.fd)
        return lock

    def master_pid(self) -> Optional[int]:
        try:
            with open(self.master_lock_path, "rb") as handle:
                text = handle.read(64).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        except OSError:
            return None

    def master_alive(self) -> bool:
        """True when some process holds master.lock (an flock, so never stale)."""
        try:
            fd = os.open(self.master_lock_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False


class Spool(_Records, _Requests, _Published, _MasterSide):
    """The spool directory. Each base class holds one concern; all share the paths set here."""

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
        if create:
            self._create()
        self._check_layout()

    # -- layout

    def _create(self) -> None:
        group = os.environ.get("AWQ_SPOOL_GROUP")
        mode = 0o750 if group else 0o700
        for path in (self.root, self.queue_dir, self.bad_dir, self.stat_dir, self.history_dir) \
                + tuple(os.path.join(self.root, action) for action in REQUEST_ACTIONS):
            try:
                os.mkdir(path, mode)
            except FileExistsError:
                continue
            except OSError as err:
                raise SpoolError("cannot create the spool directory %s: %s" % (path, err.strerror))
            if group:
                _chgrp(path, group)
                os.chmod(path, mode)  # mkdir's mode is filtered by the umask

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

    # -- the view condor_q reads

    def read_queue(self) -> QueueView:
        """read_queue_set's jobs as dicts (condor_rm and friends, the master's --status)."""
        view = self.read_queue_set()
        return view._replace(jobs=view.jobs.ads())

    def read_queue_set(self) -> QueueView:
        """The master's table, plus records it has not taken yet, as condor_q shows them,
        in job id order, as a JobSet (columns are read only when asked for).

        An untaken record passes the master's own validation first, so condor_q
        never lists a job the master will refuse; a job with a removal request
        shows as removed (X), as in HTCondor until it leaves the queue.
        """
        columns = self.snapshot_columns_if_present()
        job_set = JobSet(columns)
        untaken = [job for name in self.pending_records() for job in self._untaken_jobs(name)]
        if untaken:
            known = set(job_set.ids())
            untaken = [job for job in untaken if jobs.job_id(job) not in known]
            job_set = _in_id_order(JobSet(columns, sorted(untaken, key=jobs.job_id)))
        removals = self.pending_removals()
        if removals:
            where = {jid: index for index, jid in enumerate(job_set.ids())}
            status = job_set.column("JobStatus") or []
            for _, jid in removals:
                index = where.get(jid)
                if index is not None and status[index] not in jobs.FINAL_STATES:
                    job_set.set_value(index, "JobStatus", int(jobs.JobStatus.REMOVED))
        heartbeat = self.read_stat().get("TIMESTAMP")
        return QueueView(job_set, float(heartbeat) if heartbeat is not None else None,
                         self.master_pid(), self.master_alive())

    def _untaken_jobs(self, name: str) -> List[Job]:
        try:
            cluster, content = self.read_record(name)
            if cluster is None:
                return []  # an upstream description: it has no job ad until taken
            return [jobs.validate_job(job, cluster) for job in content]
        except (SpoolError, OSError, jobs.InvalidJob):
            return []  # vanished (taken) meanwhile, or refused: the master reports it


# ---------------------------------------------------------------- helpers

_TEMP_NAME = r"^\..+\.tmp\.(\d+)\.[0-9a-f]+$"   # what atomic_write leaves if it dies


def _in_id_order(job_set: JobSet) -> JobSet:
    ids = job_set.ids()
    if all(a < b for a, b in zip(ids, ids[1:])):
        return job_set
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return JobSet.from_ads(job_set.ads(order))


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listdir(path: str) -> List[str]:
    try:
        return [n for n in os.listdir(path) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def _cluster_of_record(name: str) -> Optional[int]:
    if not name.endswith(RECORD_SUFFIX):
        return None
    stem = name[: -len(RECORD_SUFFIX)]
    if not stem.isdigit() or len(stem) > 12:
        return None
    return int(stem)


def _record_sort_key(name: str) -> Tuple[int, int, str]:
    cluster = _cluster_of_record(name)
    return (0, cluster, name) if cluster is not None else (1, 0, name)


def _chgrp(path: str, group: str) -> None:
    import grp
    try:
        gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
    except KeyError:
        raise SpoolError("AWQ_SPOOL_GROUP names an unknown group: %s" % group)
    os.chown(path, -1, gid)

