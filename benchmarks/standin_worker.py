"""A Work Queue worker stand-in: many workers in one process, tasks held without processes.

    python -m benchmarks.standin_worker --workers 200 --cores 250 --password FILE \\
        --control DIR 127.0.0.1 PORT

Each of --workers connections speaks the installed work_queue_worker's protocol to the
manager (the password challenge, the greeting, resources, tasks, results, output files,
keepalives, kill, release) as read in CCTools' work_queue_worker.c, work_queue.c and
dttools' link_auth.c for the installed version. The greeting line (protocol number, OS,
architecture, CCTools version) is taken from the installed work_queue_worker itself: it is
started once against a throw-away listener and its first line kept (`installed_greeting`),
so a master that refuses a worker of another protocol would refuse the stand-in too.

A task the manager sends is held, not run: it is "running" from the moment it arrives (a
real worker forks then) until its cue, whichever comes first:
- its duration: --task-seconds, else the first `sleep N` found in its command line or in
  a small input file the manager sent (a pilot script ending in `exec sleep N`);
- a cue file dropped into --control DIR (written whole, then renamed to *.cue):
  `finish COUNT [EXIT]` finishes the COUNT oldest held tasks with exit status EXIT (0),
  `finish-all [EXIT]` all of them, `drop COUNT` closes COUNT connections as a lost worker
  would (they come back as a real worker does).
A finished task is reported as a real worker reports it: `available_results`, then on
`send_results` one `result` line per task and `end`; each output file the manager then
asks for with `get` is sent as an empty file (what a `sleep` pilot leaves in its
redirections), or --output-text.

A lost connection drops its tasks (a real worker kills them) and reconnects as a real
worker does: 5 s after a session that ended, then 1 s, doubling up to 60 s while refused.
--control DIR/status.json is rewritten (atomically) every STATUS_INTERVAL s: workers
connected, tasks held, finished, dropped, reconnects, the stand-in's own CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Deque, Dict, List, Optional, Sequence, Tuple

# What a real worker does after losing its manager (work_queue_worker.c): it sleeps 5 s
# unless the manager released it, then retries after init_backoff_interval (1 s), doubled
# after each failed attempt up to max_backoff_interval (60 s).
SLEEP_AFTER_SESSION = 5.0
INIT_BACKOFF = 1.0
MAX_BACKOFF = 60.0
CONTROL_POLL = 0.1          # s between looks into --control for cue files
STATUS_INTERVAL = 1.0       # s between rewrites of --control/status.json
STATUS_REFILLS = 1000       # refill times status.json keeps (the newest)
LINE_MAX = 4096             # WORK_QUEUE_LINE_MAX: the longest line either side sends
SMALL_INPUT = 65536         # input files up to this size are kept to look for `sleep N`
GREETING_WITHIN = 10.0      # s the installed worker gets to connect and greet
AUTH_IDENT = "auth password sha1"
SLEEP_RE = re.compile(rb"(?:^|[\s;&|(])sleep\s+(\d+(?:\.\d+)?)\b")

# WORK_QUEUE_RESULT_SUCCESS in the result line: the task ran; its exit status follows.
RESULT_SUCCESS = 0


class ProtocolError(Exception):
    """The manager sent something a worker of this protocol would refuse."""


# ---------------------------------------------------------------- the pure protocol

def auth_response(password: bytes, peer_key: str) -> str:
    """link_auth_password's answer to a challenge: hex SHA-1 of "<password> <key>" (the
    password file's whole content, its newline included, as copy_file_to_buffer reads it)."""
    return hashlib.sha1(password + b" " + peer_key.encode()).hexdigest()


def parse_greeting(line: str) -> Tuple[int, str, str, str, str]:
    """`workqueue PROTOCOL HOST OS ARCH VERSION` -> its fields (protocol as int)."""
    words = line.split()
    if len(words) != 6 or words[0] != "workqueue" or not words[1].isdigit():
        raise ProtocolError("not a worker greeting: %r" % line)
    return int(words[1]), words[2], words[3], words[4], words[5]


def greeting_lines(greeting: str, worker_id: str, cores: int, memory_mb: int,
                   disk_mb: int) -> List[str]:
    """What report_worker_ready sends: greeting, worker id, keepalive with resources (one
    worker, no GPUs; total, smallest, largest alike), the end time (0: none)."""
    lines = [greeting, "info worker-id %s" % worker_id, "alive"]
    for name, value in (("workers", 1), ("disk", disk_mb), ("memory", memory_mb),
                        ("gpus", 0), ("cores", cores)):
        lines.append("resource %s %d %d %d" % (name, value, value, value))
    lines += ["resource tag 0", "info end_of_resource_update 0", "info tasks_running 0",
              "info worker-end-time 0"]
    return lines


def result_line(exit_status: int, stdout_length: int, usecs: int, task_id: int) -> str:
    """report_task_complete: `result TASK_STATUS EXIT_STATUS STDOUT_LENGTH USECS TASKID`."""
    return "result %d %d %d %d %d" % (RESULT_SUCCESS, exit_status, stdout_length, usecs,
                                      task_id)


class HeldTask:
    """One task as do_task reads it; `payload` says how many raw bytes to read next."""

    __slots__ = ("task_id", "command", "category", "inputs", "outputs", "environment",
                 "resources", "payload", "_pending", "received", "duration", "done")

    def __init__(self, task_id: int):
        self.task_id = task_id
        self.command = ""
        self.category = ""
        self.inputs: List[Tuple[str, str, int]] = []    # (cache name, sandbox name, flags)
        self.outputs: List[Tuple[str, str, int]] = []
        self.environment: Dict[str, str] = {}
        self.resources: Dict[str, str] = {}
        self.payload = 0            # raw bytes that follow the last line (cmd, env)
        self._pending = ""
        self.received = 0.0
        self.duration: Optional[float] = None
        self.done = False

    def feed_line(self, line: str) -> bool:
        """One line of the task message; False once its `end` arrived."""
        if line == "end":
            return False
        verb, _, rest = line.partition(" ")
        words = rest.split()
        if verb in ("cmd", "coprocess") and len(words) == 1 and words[0].isdigit():
            self.payload, self._pending = int(words[0]), verb
        elif verb == "env" and len(words) == 1 and words[0].isdigit():
            # do_task reads the variable and its newline: length + 1 bytes.
            self.payload, self._pending = int(words[0]) + 1, "env"
        elif verb in ("infile", "outfile") and len(words) == 3 and _is_int(words[2]):
            entry = (words[0], url_decode(words[1]), int(words[2]))
            (self.inputs if verb == "infile" else self.outputs).append(entry)
        elif verb == "category" and words:
            self.category = words[0]
        elif verb == "dir" and words:
            pass        # an empty directory in the sandbox: nothing to hold
        elif verb in ("cores", "memory", "disk", "gpus", "wall_time", "end_time") and words:
            self.resources[verb] = words[0]
        else:
            raise ProtocolError("invalid command from manager in task %d: %r"
                                % (self.task_id, line))
        return True

    def feed_payload(self, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        if self._pending == "cmd":
            self.command = text
        elif self._pending == "env":
            name, sep, value = text[:-1].partition("=")
            if sep:
                self.environment[name] = value
        self.payload, self._pending = 0, ""

    def cores(self) -> float:
        try:
            return max(1.0, float(self.resources.get("cores", "1")))
        except ValueError:
            return 1.0


def url_decode(text: str) -> str:
    """url_decode of dttools: %XX escapes (names here have none, but a worker decodes)."""
    if "%" not in text:
        return text
    from urllib.parse import unquote
    return unquote(text)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def sleep_seconds(command: str, small_files: Sequence[bytes]) -> Optional[float]:
    """How long the task would run: the first `sleep N` of its command or its small inputs."""
    for text in [command.encode()] + list(small_files):
        found = SLEEP_RE.search(text)
        if found:
            return float(found.group(1))
    return None


def parse_cue(text: str) -> List[Tuple[str, int, int]]:
    """A cue file's lines -> (action, count, exit status); count -1 means all."""
    cues = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "finish" and 2 <= len(words) <= 3 and all(map(_is_int, words[1:])):
            cues.append(("finish", int(words[1]), int(words[2]) if len(words) == 3 else 0))
        elif words[0] == "finish-all" and len(words) <= 2 and all(map(_is_int, words[1:])):
            cues.append(("finish", -1, int(words[1]) if len(words) == 2 else 0))
        elif words[0] == "drop" and len(words) == 2 and words[1].isdigit():
            cues.append(("drop", int(words[1]), 0))
        else:
            raise ValueError("bad cue line: %r" % line)
    return cues


# ---------------------------------------------------------------- the installed worker

def installed_greeting(worker: str = "work_queue_worker") -> str:
    """The greeting line the installed work_queue_worker sends first (no password asked)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(GREETING_WITHIN)
    port = listener.getsockname()[1]
    scratch = tempfile.mkdtemp(prefix="standin-greet-")
    proc = subprocess.Popen([worker, "--single-shot", "--timeout", "5", "--workdir", scratch,
                             "127.0.0.1", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        conn, _ = listener.accept()
        conn.settimeout(GREETING_WITHIN)
        with conn, conn.makefile("rb") as stream:
            line = stream.readline(LINE_MAX).decode().strip()
    finally:
        listener.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    parse_greeting(line)
    return line


def host_memory_mb() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


# ---------------------------------------------------------------- the asyncio workers

class Fleet:
    """Every simulated worker, the tasks they hold in arrival order, and the counters."""

    def __init__(self, options: argparse.Namespace, greeting: str, password: Optional[bytes]):
        self.options = options
        self.greeting = greeting
        self.password = password
        self.order: Deque[Tuple["Connection", HeldTask]] = collections.deque()
        self.connections: List["Connection"] = []
        self.counts = {"received": 0, "finished": 0, "dropped": 0, "killed": 0,
                       "reconnects": 0, "sessions": 0, "refused": 0, "duplicates": 0}
        self.stop = asyncio.Event()
        # --job-variable: each held task's job, to see one job held twice at once.
        self.running = 0
        self.held_by_job: Dict[str, int] = {}
        self.duplicated_jobs: List[str] = []
        # When a task finished and no task has come in since: a slot the manager has yet
        # to refill. Each task that comes in takes the oldest; its wait is a refill time.
        self.unfilled: Deque[float] = collections.deque()
        self.refills: Deque[float] = collections.deque(maxlen=STATUS_REFILLS)
        self.finished_jobs: Deque[str] = collections.deque(maxlen=STATUS_REFILLS)

    def hold(self, task: HeldTask) -> None:
        self.counts["received"] += 1
        self.running += 1
        if self.unfilled:
            self.refills.append(task.received - self.unfilled.popleft())
        job = task.environment.get(self.options.job_variable)
        if job is not None:
            held = self.held_by_job.get(job, 0) + 1
            self.held_by_job[job] = held
            if held > 1:
                self.counts["duplicates"] += 1
                if len(self.duplicated_jobs) < 20:
                    self.duplicated_jobs.append(job)

    def release(self, task: HeldTask, finished: bool) -> None:
        """A held task is done: finished by its cue or duration (a slot to refill), killed
        or dropped with its connection."""
        task.done = True
        self.running -= 1
        job = task.environment.get(self.options.job_variable)
        if finished:
            self.unfilled.append(time.monotonic())
            if job is not None:
                self.finished_jobs.append(job)
        if job is not None:
            left = self.held_by_job.get(job, 1) - 1
            if left > 0:
                self.held_by_job[job] = left
            else:
                self.held_by_job.pop(job, None)

    def held(self) -> int:
        return self.running

    def finish(self, count: int, exit_status: int) -> int:
        done = 0
        while self.order and (count < 0 or done < count):
            conn, task = self.order.popleft()
            if task.done or conn.tasks.get(task.task_id) is not task:
                continue        # killed, dropped or finished already
            conn.complete(task, exit_status)
            done += 1
        return done

    def status(self) -> Dict[str, object]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        doc: Dict[str, object] = dict(self.counts)
        doc.update(connected=sum(1 for c in self.connections if c.connected),
                   held=self.held(), jobs_held=len(self.held_by_job),
                   duplicated_jobs=self.duplicated_jobs, refills=list(self.refills),
                   finished_jobs=list(self.finished_jobs),
                   cpu_seconds=usage.ru_utime + usage.ru_stime,
                   rss_mb=usage.ru_maxrss / 1024.0, time=time.time())
        return doc


class Connection:
    """One simulated worker: its session with the manager and the tasks it holds."""

    def __init__(self, fleet: Fleet, index: int):
        self.fleet = fleet
        self.index = index
        self.tasks: Dict[int, HeldTask] = {}
        self.completed: List[Tuple[HeldTask, int]] = []
        self.outputs: Dict[str, bytes] = {}     # cache name -> content, until fetched
        self.small_inputs: Dict[str, bytes] = {}
        self.writer: Optional[asyncio.StreamWriter] = None
        self.connected = False
        self.results_announced = False
        self.timers: Dict[int, asyncio.TimerHandle] = {}

    def send(self, *lines: str) -> None:
        if self.writer is not None:
            self.writer.write("".join(line + "\n" for line in lines).encode())

    def complete(self, task: HeldTask, exit_status: int) -> None:
        self.fleet.release(task, finished=True)
        timer = self.timers.pop(task.task_id, None)
        if timer is not None:
            timer.cancel()
        text = self.fleet.options.output_text.encode()
        for cache_name, _, _ in task.outputs:
            self.outputs[cache_name] = text
        self.completed.append((task, exit_status))
        self.fleet.counts["finished"] += 1
        if not self.results_announced and self.connected:
            self.results_announced = True
            self.send("available_results")

    async def run(self) -> None:
        options = self.fleet.options
        backoff = INIT_BACKOFF
        while not self.fleet.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(options.host, options.port,
                                                               limit=1 << 20)
            except OSError:
                self.fleet.counts["refused"] += 1
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = INIT_BACKOFF
            released = False
            try:
                released = await self._session(reader, writer)
            except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError,
                    UnicodeDecodeError) as err:
                if options.verbose:
                    print("worker %d: %s" % (self.index, err), file=sys.stderr, flush=True)
            finally:
                self._lose_tasks()
                writer.close()
            if self.fleet.stop.is_set():
                break
            self.fleet.counts["reconnects"] += 1
            if not released:
                await self._pause(SLEEP_AFTER_SESSION)
            await self._pause(INIT_BACKOFF)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.fleet.stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _lose_tasks(self) -> None:
        self.connected = False
        self.writer = None
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        for task in self.tasks.values():
            if not task.done:
                self.fleet.counts["dropped"] += 1
                self.fleet.release(task, finished=False)
        self.tasks.clear()
        self.completed.clear()
        self.outputs.clear()
        self.small_inputs.clear()
        self.results_announced = False

    async def _authenticate(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        assert self.fleet.password is not None
        my_key = secrets.token_hex(32)          # RANDOM_KEY_LENGTH: 64 characters
        writer.write(("%s\n%s\n" % (AUTH_IDENT, my_key)).encode())
        if await _line(reader) != AUTH_IDENT:
            raise ProtocolError("the manager does not use password authentication")
        peer_key = await _line(reader)
        writer.write((auth_response(self.fleet.password, peer_key) + "\n").encode())
        expected = auth_response(self.fleet.password, my_key)
        writer.write(b"ok\n" if await _line(reader) == expected else b"failure\n")
        if await _line(reader) != "ok":
            raise ProtocolError("wrong password for the manager")

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One connection's life; True when the manager released the worker."""
        options = self.fleet.options
        if self.fleet.password is not None:
            await self._authenticate(reader, writer)
        self.writer = writer
        self.connected = True
        self.fleet.counts["sessions"] += 1
        self.send(*greeting_lines(self.fleet.greeting, "worker-%s" % secrets.token_hex(16),
                                  options.cores, options.memory, options.disk))
        while True:
            line = await _line(reader)
            verb, _, rest = line.partition(" ")
            words = rest.split()
            if verb == "task" and len(words) == 1 and _is_int(words[0]):
                await self._receive_task(reader, int(words[0]))
            elif verb == "put" and len(words) == 3:
                await self._receive_file(reader, words[0], int(words[1]))
            elif verb == "dir" and len(words) == 1:
                await self._receive_dir(reader)
            elif verb in ("puturl", "putcmd", "tlq", "unlink", "invalidate-file"):
                self.small_inputs.pop(words[0] if words else "", None)
            elif verb == "get" and len(words) == 2:
                self._send_output(words[0])
            elif verb == "kill" and len(words) == 1 and _is_int(words[0]):
                self._kill(int(words[0]))
            elif verb == "send_results":
                self._send_results()
            elif verb == "check":
                self.send("alive", "info tasks_running %d" % self._running())
            elif verb == "release":
                return True
            elif verb == "exit":
                self.fleet.stop.set()
                return False
            elif verb == "auth":
                raise ProtocolError("this manager requires a password (use --password)")
            else:
                raise ProtocolError("unrecognized manager message: %r" % line)
            await writer.drain()

    def _running(self) -> int:
        return sum(1 for t in self.tasks.values() if not t.done)

    async def _receive_task(self, reader: asyncio.StreamReader, task_id: int) -> None:
        task = HeldTask(task_id)
        while task.feed_line(await _line(reader)):
            if task.payload:
                task.feed_payload(await reader.readexactly(task.payload))
        task.received = time.monotonic()
        self.tasks[task_id] = task
        self.fleet.order.append((self, task))
        self.fleet.hold(task)
        duration = self.fleet.options.task_seconds
        if duration is None:
            duration = sleep_seconds(task.command, [self.small_inputs[name] for name, _, _
                                                    in task.inputs if name in self.small_inputs])
        task.duration = duration
        if duration is not None:
            loop = asyncio.get_running_loop()
            self.timers[task_id] = loop.call_later(duration, self._expire, task)
        self.send("info tasks_running %d" % self._running())

    def _expire(self, task: HeldTask) -> None:
        self.timers.pop(task.task_id, None)
        if not task.done and self.tasks.get(task.task_id) is task:
            self.complete(task, 0)

    async def _receive_file(self, reader: asyncio.StreamReader, name: str, length: int) -> None:
        data = await _read_counted(reader, length)
        if length <= SMALL_INPUT:
            self.small_inputs[url_decode(name)] = data

    async def _receive_dir(self, reader: asyncio.StreamReader) -> None:
        """The recursive put: `put`s and `dir`s up to the `end` of this directory."""
        while True:
            line = await _line(reader)
            if line == "end":
                return
            words = line.split()
            if words[0] == "put" and len(words) == 4:
                await _read_counted(reader, int(words[2]))
            elif words[0] == "symlink" and len(words) == 3:
                await _read_counted(reader, int(words[2]))
            elif words[0] == "dir" and len(words) == 2:
                await self._receive_dir(reader)
            else:
                raise ProtocolError("invalid message in a directory: %r" % line)

    def _send_results(self) -> None:
        """report_tasks_complete: every finished task's result line and stdout, then end."""
        chunks = []
        for task, exit_status in self.completed:
            usecs = int((time.monotonic() - task.received) * 1e6)
            self.tasks.pop(task.task_id, None)
            # As report_task_complete: the result, its stdout (none), the stats update.
            chunks.append(("%s\ninfo tasks_running %d\n" % (
                result_line(exit_status, 0, usecs, task.task_id), self._running())).encode())
        self.completed.clear()
        self.results_announced = False
        chunks.append(b"end\n")
        if self.writer is not None:
            self.writer.write(b"".join(chunks))

    def _send_output(self, name: str) -> None:
        """do_get: the file (`file NAME LENGTH` and its bytes) or `missing`, then end."""
        data = self.outputs.pop(name, None)
        if self.writer is None:
            return
        if data is None:
            self.writer.write(("missing %s 2\nend\n" % name).encode())
        else:
            self.writer.write(("file %s %d\n" % (name, len(data))).encode() + data + b"end\n")

    def _kill(self, task_id: int) -> None:
        task = self.tasks.pop(task_id, None)
        if task is None:
            return
        if not task.done:
            self.fleet.counts["killed"] += 1
            self.fleet.release(task, finished=False)
        timer = self.timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()
        self.completed = [(t, s) for t, s in self.completed if t is not task]


async def _line(reader: asyncio.StreamReader) -> str:
    data = await reader.readline()
    if not data.endswith(b"\n"):
        raise asyncio.IncompleteReadError(data, None)
    if len(data) > LINE_MAX:
        raise ProtocolError("a line longer than %d bytes" % LINE_MAX)
    return data[:-1].decode()


async def _read_counted(reader: asyncio.StreamReader, length: int) -> bytes:
    if length < 0:
        raise ProtocolError("negative length %d" % length)
    return await reader.readexactly(length)


# ---------------------------------------------------------------- control and main

async def _watch_control(fleet: Fleet, directory: str) -> None:
    last_status = 0.0
    while not fleet.stop.is_set():
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".cue"):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path) as handle:
                    cues = parse_cue(handle.read())
            except (OSError, ValueError) as err:
                print("standin: cue %s: %s" % (name, err), file=sys.stderr, flush=True)
                cues = []
            os.replace(path, path[:-4] + ".taken")
            for action, count, exit_status in cues:
                if action == "finish":
                    fleet.finish(count, exit_status)
                elif action == "drop":
                    for conn in [c for c in fleet.connections if c.writer is not None][:count]:
                        assert conn.writer is not None
                        conn.writer.transport.abort()
        now = time.monotonic()
        if now - last_status >= STATUS_INTERVAL:
            _write_status(fleet, directory)
            last_status = now
        try:
            await asyncio.wait_for(fleet.stop.wait(), CONTROL_POLL)
        except asyncio.TimeoutError:
            pass
    _write_status(fleet, directory)


def _write_status(fleet: Fleet, directory: str) -> None:
    path = os.path.join(directory, "status.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(fleet.status(), handle)
    os.replace(path + ".tmp", path)


async def _main(options: argparse.Namespace, greeting: str, password: Optional[bytes]) -> None:
    fleet = Fleet(options, greeting, password)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, fleet.stop.set)
    fleet.connections = [Connection(fleet, i) for i in range(options.workers)]
    jobs = [asyncio.ensure_future(c.run()) for c in fleet.connections]
    if options.control:
        jobs.append(asyncio.ensure_future(_watch_control(fleet, options.control)))
    await fleet.stop.wait()
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
    if options.control:
        _write_status(fleet, options.control)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.standin_worker",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--workers", type=int, default=1, help="connections (workers) to pose as")
    parser.add_argument("--cores", type=int, default=1, help="cores each worker announces")
    parser.add_argument("--memory", type=int, default=None,
                        help="MB each announces (default: the host's, as a real worker)")
    parser.add_argument("--disk", type=int, default=None,
                        help="MB each announces (default: free space of the current directory)")
    parser.add_argument("--password", metavar="FILE", help="the manager's password file")
    parser.add_argument("--control", metavar="DIR", help="cue files in, status.json out")
    parser.add_argument("--task-seconds", type=float, default=None,
                        help="every task ends after this (default: its `sleep N`, else a cue)")
    parser.add_argument("--job-variable", default="AWQ_BENCH_JOB",
                        help="the environment variable naming a task's job: a job held by "
                             "two tasks at once is counted as duplicated")
    parser.add_argument("--output-text", default="", help="the content of every output file")
    parser.add_argument("--greeting", help="the greeting line (default: the installed worker's)")
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args(list(argv))
    if options.workers < 1 or options.cores < 1:
        parser.error("--workers and --cores must be at least 1")
    return options


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        greeting = options.greeting or installed_greeting()
        parse_greeting(greeting)
        password = None
        if options.password:
            with open(options.password, "rb") as handle:
                password = handle.read()
        if options.memory is None:
            options.memory = host_memory_mb()
        if options.disk is None:
            options.disk = shutil.disk_usage(".").free // (1 << 20)
        if options.control:
            os.makedirs(options.control, exist_ok=True)
    except (OSError, ProtocolError, socket.timeout) as err:
        print("standin_worker: %s" % err, file=sys.stderr)
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, _nofile_wanted(options.workers))
    asyncio.run(_main(options, greeting, password))
    return 0


def _nofile_wanted(workers: int) -> Tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = workers + 64
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return max(soft, wanted), hard


if __name__ == "__main__":
    sys.exit(main())
