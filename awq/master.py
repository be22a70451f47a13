"""alien_work_queue: turn spooled jobs into Work Queue tasks, and keep count.

The loop, in order of what matters:

1. Nothing accepted is lost. A job enters the table from its spool record;
   the record is deleted only after a snapshot holding the job is durable.
   On start the table is reloaded: idle jobs go back to Work Queue, jobs that
   were running are requeued (pilots are safe to rerun; NumJobStarts shows
   the attempt), removal requests left behind are carried out.
2. Jobs start fast. ``wait()`` blocks whole seconds while tasks are out; a
   watcher child exits when the spool changes and Work Queue's process
   module then ends the wait (see Backend.enable_wake_on_child_exit).
3. condor_q never talks to us: it reads the snapshot and stat/latest.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Dict, List, Optional, Set, Tuple

from awq import classad, jobs, spool as spool_mod, submit, userlog
from awq.jobs import Job, JobId, JobStatus
from awq.spool import Spool, SpoolError
from awq.tasks import task_spec

log = logging.getLogger("awq.master")

DEFAULT_PORT = 9094
MAX_TASKS = 10000
FLUSH_INTERVAL = 0.25        # s between snapshot writes while jobs change
HEARTBEAT_INTERVAL = 5.0     # s between stat/latest rewrites when idle
STATE_POLL_INTERVAL = 0.5    # s between task-state sweeps (idle -> running)
SPOOL_POLL_INTERVAL = 0.05   # s between spool looks when Work Queue is empty
WATCHER_LIFETIME = 30.0      # s: a watcher retires even if nothing happens
HOLD_CODE_WORK_QUEUE = 12    # HTCondor: "failed to transfer files"
HOLD_CODE_PERIODIC = 3       # HTCondor: "the PeriodicHold expression became true"
PERIODIC_INTERVAL = 60.0     # s, HTCondor's PERIODIC_EXPR_INTERVAL default


class MasterLocked(SpoolError):
    pass


class Master:
    def __init__(self, spool: Spool, backend, job_wrapper: Optional[str] = None,
                 max_tasks: int = MAX_TASKS, periodic_interval: float = PERIODIC_INTERVAL):
        self.spool = spool
        self.backend = backend
        self.job_wrapper = job_wrapper
        self.max_tasks = max_tasks
        self.periodic_interval = periodic_interval
        self.last_periodic = 0.0
        self.table: Dict[JobId, Job] = {}
        self.task_of: Dict[JobId, int] = {}
        self.job_of_task: Dict[int, JobId] = {}
        self.taken_records: Set[str] = set()
        self.done_removals: Set[str] = set()
        self.max_cluster_id = 0
        self.dirty = False
        self.last_flush = 0.0
        self.last_heartbeat = 0.0
        self.last_state_poll = 0.0
        self.stop_requested = False
        self.wake_enabled = False
        self.watcher_pid: Optional[int] = None
        self.watcher_deadline = 0.0
        self.rerun_count = 0

    # ------------------------------------------------------------ start

    def recover(self) -> None:
        state = self.spool.load_snapshot_if_present()
        if not state:
            return
        now = time.time()
        self.max_cluster_id = int(state.get("max_cluster_id", 0))
        finished = []
        for jid, job in state["jobs"].items():
            status = job.get("JobStatus")
            if status in jobs.FINAL_STATES:
                finished.append(job)
                continue
            if status == JobStatus.RUNNING:
                job = dict(job, JobStatus=JobStatus.IDLE, EnteredCurrentStatus=int(now),
                           LastJobStatus=JobStatus.RUNNING)
                self.rerun_count += 1
            self.table[jid] = job
            self.max_cluster_id = max(self.max_cluster_id, jid[0])
        # The snapshot may hold finished jobs whose history line was lost.
        self.spool.append_history(finished)
        self.dirty = True
        log.info("recovered %d jobs from the snapshot (%d requeued after running, "
                 "%d finished moved to history)", len(self.table), self.rerun_count,
                 len(finished))

    # ------------------------------------------------------------ spool -> table

    def ingest(self) -> int:
        """Take new records into the table; returns how many jobs came in."""
        added = 0
        for name in self.spool.pending_records():
            if name in self.taken_records:
                continue
            try:
                cluster, content = self.spool.read_record(name)
                if cluster is None:
                    new_jobs = self._jobs_from_upstream(content)
                else:
                    new_jobs = [jobs.validate_job(job, cluster) for job in content]
                    if not new_jobs:
                        raise jobs.InvalidJob("the record holds no job")
            except FileNotFoundError:
                continue
            except (SpoolError, jobs.InvalidJob, submit.SubmitError, OSError) as err:
                self._refuse(name, err)
                continue
            for job in new_jobs:
                jid = jobs.job_id(job)
                if jid in self.table:
                    continue  # taken before a crash, record not yet deleted
                self.table[jid] = job
                self.max_cluster_id = max(self.max_cluster_id, jid[0])
                userlog.write_event(job, userlog.SUBMIT, "Job submitted from host: <127.0.0.1>")
                added += 1
            self.taken_records.add(name)
            self.dirty = True
        return added

    def _jobs_from_upstream(self, text: str) -> List[Job]:
        """A raw description that upstream's condor_submit spooled before an upgrade."""
        desc = submit.parse_description(text)
        home = os.path.expanduser("~")
        owner = _current_user()
        build_args = dict(cwd=home, environ=dict(os.environ), owner=owner,
                          uid=os.getuid(), now=int(time.time()))
        submit.build_jobs(desc, cluster_id=1, **build_args)  # validate before taking an id
        cluster = self.spool.allocate_cluster_id()
        return [jobs.validate_job(job, cluster)
                for job in submit.build_jobs(desc, cluster_id=cluster, **build_args)]

    def _refuse(self, name: str, err: Exception) -> None:
        try:
            where = self.spool.quarantine_record(name)
            log.error("refused spool record %s: %s (moved to %s)", name, err, where)
        except OSError as move_err:
            log.error("refused spool record %s: %s (and cannot move it aside: %s)",
                      name, err, move_err)

    def apply_removals(self) -> None:
        for name, jid in self.spool.pending_removals():
            if name in self.done_removals:
                continue
            job = self.table.get(jid)
            if job is not None and job.get("JobStatus") not in jobs.FINAL_STATES:
                self._remove(jid, job)
            self.done_removals.add(name)
            self.dirty = True

    def _remove(self, jid: JobId, job: Job, reason: str = "via condor_rm") -> None:
        self._cancel_task(jid)
        self._set_status(jid, JobStatus.REMOVED, RemoveReason=reason)
        userlog.write_event(self.table[jid], userlog.ABORTED, "Job was aborted.\n\t%s" % reason)
        log.info("job %s removed: %s", jobs.format_job_id(jid), reason)

    def _cancel_task(self, jid: JobId) -> None:
        task_id = self.task_of.pop(jid, None)
        if task_id is not None:
            self.job_of_task.pop(task_id, None)
            self.backend.cancel(task_id)

    def apply_periodic_expressions(self) -> None:
        """PeriodicHold, PeriodicRelease, PeriodicRemove, as HTCondor's schedd applies them."""
        now = time.time()
        if now - self.last_periodic < self.periodic_interval:
            return
        self.last_periodic = now
        for jid in list(self.table):
            job = self.table[jid]
            status = job.get("JobStatus")
            if status in jobs.FINAL_STATES:
                continue
            if status != JobStatus.HELD and _expression_true(job, "PeriodicHold", now):
                self._cancel_task(jid)
                self._hold(jid, _periodic_reason(job, "PeriodicHold"), HOLD_CODE_PERIODIC)
            elif status == JobStatus.HELD and _expression_true(job, "PeriodicRelease", now):
                self._set_status(jid, JobStatus.IDLE, HoldReason=None, HoldReasonCode=None)
                log.info("job %s released: PeriodicRelease is true", jobs.format_job_id(jid))
            if _expression_true(self.table[jid], "PeriodicRemove", now):
                self._remove(jid, self.table[jid], _periodic_reason(job, "PeriodicRemove"))

    # ------------------------------------------------------------ table -> Work Queue

    def submit_idle(self) -> int:
        started = 0
        for jid, job in self.table.items():
            if len(self.task_of) >= self.max_tasks:
                break
            if job.get("JobStatus") != JobStatus.IDLE or jid in self.task_of:
                continue
            try:
                task_id = self.backend.submit(task_spec(job, self.job_wrapper))
            except Exception as err:  # one bad job must not stop the others
                self._hold(jid, "cannot create the Work Queue task: %s" % err)
                continue
            self.task_of[jid] = task_id
            self.job_of_task[task_id] = jid
            started += 1
        return started

    def poll_task_states(self) -> None:
        """Idle jobs whose task reached a worker are running; lost ones go back."""
        now = time.time()
        for jid, task_id in self.task_of.items():
            status = self.table[jid].get("JobStatus")
            running = self.backend.is_running(task_id)
            if running and status == JobStatus.IDLE:
                self._mark_running(jid, now)
            elif not running and status == JobStatus.RUNNING:
                self._set_status(jid, JobStatus.IDLE)
        self.last_state_poll = now

    def _mark_running(self, jid: JobId, now: float) -> None:
        job = self.table[jid]
        starts = int(job.get("NumJobStarts", 0)) + 1
        self._set_status(jid, JobStatus.RUNNING, NumJobStarts=starts,
                         JobCurrentStartDate=int(now), JobStartDate=job.get("JobStartDate", int(now)))
        userlog.write_event(self.table[jid], userlog.EXECUTE, "Job executing on host: <127.0.0.1>")

    def handle_result(self, result) -> None:
        jid = self.job_of_task.pop(result.task_id, None)
        if jid is None:
            return  # a task we cancelled
        self.task_of.pop(jid, None)
        job = self.table[jid]
        if job.get("JobStatus") == JobStatus.IDLE:
            self._mark_running(jid, time.time())  # finished between two sweeps
        if result.succeeded:
            self._set_status(jid, JobStatus.COMPLETED, ExitCode=result.exit_code,
                             ExitBySignal=False, CompletionDate=int(time.time()))
            userlog.write_event(self.table[jid], userlog.TERMINATED,
                                userlog.terminated_body(result.exit_code))
            log.info("job %s completed, exit code %d", jobs.format_job_id(jid), result.exit_code)
        else:
            self._hold(jid, result.failure)

    def _hold(self, jid: JobId, reason: str, code: int = HOLD_CODE_WORK_QUEUE) -> None:
        self._set_status(jid, JobStatus.HELD, HoldReason=reason, HoldReasonCode=code)
        userlog.write_event(self.table[jid], userlog.HELD, "Job was held.\n\t%s" % reason)
        log.warning("job %s held: %s", jobs.format_job_id(jid), reason)

    def _set_status(self, jid: JobId, status: int, **attributes) -> None:
        job = dict(self.table[jid])
        for name, value in attributes.items():
            if value is None:
                job.pop(name, None)  # e.g. HoldReason once a job is released
            else:
                job[name] = value
        job["LastJobStatus"] = job.get("JobStatus")
        job["JobStatus"] = status
        job["EnteredCurrentStatus"] = int(time.time())
        self.table[jid] = job
        self.dirty = True

    # ------------------------------------------------------------ durability

    def counts(self) -> Tuple[int, int]:
        waiting = running = 0
        for job in self.table.values():
            status = job.get("JobStatus")
            if status == JobStatus.IDLE:
                waiting += 1
            elif status == JobStatus.RUNNING:
                running += 1
        return waiting, running

    def flush(self, force: bool = False) -> None:
        now = time.time()
        if self.dirty and (force or now - self.last_flush >= FLUSH_INTERVAL):
            self.spool.write_snapshot({"jobs": self.table, "max_cluster_id": self.max_cluster_id,
                                       "master_pid": os.getpid(), "written": now})
            self.last_flush = now
            self.dirty = False
            # Only now are these jobs durable without their records.
            self.spool.remove_records(self.taken_records)
            self.taken_records = set()
            self.spool.remove_removal_requests(self.done_removals)
            self.done_removals = set()
            self._retire_finished()
            self._write_stat(now)
        elif now - self.last_heartbeat >= HEARTBEAT_INTERVAL:
            self._write_stat(now)

    def _retire_finished(self) -> None:
        finished = [jid for jid, job in self.table.items()
                    if job.get("JobStatus") in jobs.FINAL_STATES]
        if not finished:
            return
        self.spool.append_history([self.table[jid] for jid in finished])
        for jid in finished:
            del self.table[jid]
        self.dirty = True  # the next snapshot leaves them out

    def _write_stat(self, now: float) -> None:
        waiting, running = self.counts()
        self.spool.write_stat(waiting, running, now)
        self.last_heartbeat = now

    # ------------------------------------------------------------ the loop

    def active(self) -> bool:
        return any(job.get("JobStatus") in (JobStatus.IDLE, JobStatus.RUNNING)
                   for job in self.table.values())

    def draining(self) -> bool:
        return os.path.exists(self.spool.drain_path)

    def run(self) -> int:
        self.wake_enabled = self.backend.enable_wake_on_child_exit()
        log.info("listening for workers on port %d; spool %s; early wake-up %s",
                 self.backend.port, self.spool.root, "on" if self.wake_enabled else "off")
        for path in self.spool.sweep_temp_files():
            log.info("removed %s, left half-written by a process that died", path)
        self.recover()
        while not self.stop_requested:
            baseline = self._spool_mtimes()
            draining = self.draining()
            if not draining:
                self.ingest()
            self.apply_removals()
            self.apply_periodic_expressions()
            self.submit_idle()
            self.flush()
            if draining and not self.active():
                log.info("drain file %s present and no job left: exiting", self.spool.drain_path)
                break
            if self.backend.empty():
                self._sleep_until_spool_changes(baseline)
                continue
            self._wait_for_work_queue(baseline)
        self.flush(force=True)
        self._stop_watcher()
        return 0

    def _wait_for_work_queue(self, baseline: Tuple[int, ...]) -> None:
        if self.wake_enabled:
            self._ensure_watcher(baseline, self._time_to_next_duty())
        result = self.backend.wait(1)
        if self.watcher_pid is not None and self.watcher_pid in self.backend.reap_children():
            self.watcher_pid = None
        if result is not None:
            self.handle_result(result)
        if time.time() - self.last_state_poll >= STATE_POLL_INTERVAL:
            self.poll_task_states()

    def _time_to_next_duty(self) -> float:
        """How long wait() may block before a deferred snapshot write is due."""
        if not self.dirty:
            return WATCHER_LIFETIME
        return max(0.0, FLUSH_INTERVAL - (time.time() - self.last_flush))

    def _ensure_watcher(self, baseline: Tuple[int, ...], lifetime: float) -> None:
        deadline = time.monotonic() + lifetime
        if self.watcher_pid is not None and self.watcher_deadline <= deadline + 0.05:
            return  # the running watcher wakes us early enough
        self._stop_watcher()
        self.watcher_pid = spawn_watcher(self._watched_paths(), baseline,
                                         self.spool.drain_path, lifetime)
        self.watcher_deadline = deadline

    def _sleep_until_spool_changes(self, baseline: Tuple[int, ...]) -> None:
        deadline = time.monotonic() + HEARTBEAT_INTERVAL
        drain = self.draining()
        next_service = 0.0
        while not self.stop_requested and time.monotonic() < deadline:
            if time.monotonic() >= next_service:
                # Work Queue only accepts workers and updates the catalog inside
                # wait(); with nothing queued it returns at once.
                self.backend.wait(0)
                next_service = time.monotonic() + 1.0
            if self._spool_mtimes() != baseline or self.draining() != drain:
                return
            time.sleep(SPOOL_POLL_INTERVAL)

    def _watched_paths(self) -> Tuple[str, ...]:
        return (self.spool.queue_dir, self.spool.rm_dir)

    def _spool_mtimes(self) -> Tuple[int, ...]:
        return tuple(_mtime_ns(p) for p in self._watched_paths())

    def _stop_watcher(self) -> None:
        if self.watcher_pid is not None:
            try:
                os.kill(self.watcher_pid, signal.SIGKILL)
                os.waitpid(self.watcher_pid, 0)
            except OSError:
                pass  # already gone, or reaped by Work Queue's process module
            self.watcher_pid = None


def _expression_true(job: Job, name: str, now: float) -> bool:
    if name not in job:
        return False
    return classad.is_true(classad.evaluate_attr(job, name, now)) is True


def _periodic_reason(job: Job, name: str) -> str:
    value = job.get(name)
    text = value.text if isinstance(value, classad.Expr) else classad.unparse(value)
    return "The job attribute %s expression '%s' evaluated to TRUE" % (name, text)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def spawn_watcher(paths: Tuple[str, ...], baseline: Tuple[int, ...], drain_path: str,
                  lifetime: float) -> int:
    """Fork a child that exits when the spool differs from baseline, or after lifetime s."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        # The master's handlers are not ours: a TERM to the process group must just end us.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        drain = os.path.exists(drain_path)
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline and os.getppid() == parent:
            if tuple(_mtime_ns(p) for p in paths) != baseline or os.path.exists(drain_path) != drain:
                break
            time.sleep(SPOOL_POLL_INTERVAL / 2)
    finally:
        os._exit(0)


def _current_user() -> str:
    from awq.cli.common import current_user
    return current_user()


# ---------------------------------------------------------------- command line

def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="alien_work_queue",
        description="Run the alien-workqueue master: take jobs that condor_submit "
                    "spooled, run them as Work Queue tasks, publish their state for condor_q.")
    parser.add_argument("--job-wrapper", metavar="FILE",
                        help="run every job through this wrapper (e.g. $ALIEN_WORKQUEUE/etc/"
                             "alien_job_wrapper.sh), sent to the worker with the job")
    parser.add_argument("--work-dir", metavar="DIR", default=None,
                        help="spool directory (default: $AWQ_WORKDIR or %s)" % spool_mod.DEFAULT_WORKDIR)
    parser.add_argument("--catalog-host", metavar="HOST",
                        help="advertise this master to the catalog server HOST (catalog mode)")
    parser.add_argument("--catalog-port", metavar="PORT", type=int, default=9097,
                        help="catalog server port (default: 9097)")
    parser.add_argument("--project-name", metavar="NAME", default="alien_jobs",
                        help="project name advertised in catalog mode (default: alien_jobs)")
    parser.add_argument("--port", metavar="PORT", type=int, default=DEFAULT_PORT,
                        help="port workers and foremen connect to (default: %d; 0 picks a free one)"
                             % DEFAULT_PORT)
    parser.add_argument("--password", metavar="FILE",
                        help="require Work Queue password authentication with the password in FILE")
    parser.add_argument("--max-tasks", metavar="N", type=int, default=MAX_TASKS,
                        help="at most N jobs handed to Work Queue at once (default: %d)" % MAX_TASKS)
    parser.add_argument("--periodic-interval", metavar="S", type=float, default=PERIODIC_INTERVAL,
                        help="evaluate the jobs' periodic_hold/periodic_release/periodic_remove "
                             "every S seconds (default: %d, as HTCondor)" % PERIODIC_INTERVAL)
    parser.add_argument("--log-file", metavar="FILE", help="append the master's log to FILE "
                                                         "(default: standard error)")
    parser.add_argument("--debug", action="store_true",
                        help="verbose log, and Work Queue's own debug log in the spool")
    options = parser.parse_args(argv)
    for flag, path in (("--job-wrapper", options.job_wrapper), ("--password", options.password)):
        if path and not os.access(path, os.R_OK):
            parser.error("%s %s: file does not exist or is not readable" % (flag, path))
    if not 0 <= options.port <= 65535:
        parser.error("--port %d is not a TCP port" % options.port)
    if options.max_tasks < 1:
        parser.error("--max-tasks must be at least 1")
    if options.periodic_interval <= 0:
        parser.error("--periodic-interval must be positive")
    return options


def setup_logging(log_file: Optional[str], debug: bool) -> None:
    handler: logging.Handler
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s alien_work_queue[%(process)d] "
                                           "%(levelname)s: %(message)s"))
    root = logging.getLogger("awq")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def acquire_master_lock(spool: Spool) -> int:
    """Hold master.lock for our lifetime; a second master is refused by name."""
    import fcntl
    fd = os.open(spool.master_lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    deadline = time.monotonic() + 2.0  # condor_q may hold a shared probe for an instant
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                pid = spool.master_pid()
                raise MasterLocked("another alien_work_queue (PID %s) is already running on "
                                   "the spool %s" % (pid if pid else "unknown", spool.root))
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    os.fsync(fd)
    return fd


def main(argv: List[str]) -> int:
    options = parse_args(argv)
    setup_logging(options.log_file, options.debug)
    from awq.workqueue import Backend
    spool = Spool(options.work_dir, create=True)
    spool.ensure_dirs()
    lock_fd = acquire_master_lock(spool)
    job_wrapper = os.path.abspath(options.job_wrapper) if options.job_wrapper else None
    password = os.path.abspath(options.password) if options.password else None
    debug_log = os.path.join(spool.root, "work_queue.debug") if options.debug else None
    backend = Backend(options.port, password_file=password, catalog_host=options.catalog_host,
                      catalog_port=options.catalog_port, project_name=options.project_name,
                      debug_log=debug_log)
    master = Master(spool, backend, job_wrapper=job_wrapper, max_tasks=options.max_tasks,
                    periodic_interval=options.periodic_interval)
    install_signal_handlers(master)
    try:
        return master.run()
    finally:
        os.close(lock_fd)


def install_signal_handlers(master: Master) -> None:
    def request_stop(signum, _frame):
        log.info("signal %d: saving the job table and exiting", signum)
        master.stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # A Python-level handler makes SIGCHLD interrupt Work Queue's poll(), so
    # a watcher's exit ends wait() at once instead of at its timeout.
    signal.signal(signal.SIGCHLD, lambda *_: None)


def cli() -> None:
    """Console-script entry point (pip install)."""
    from awq.cli.common import run_main
    run_main(main)


if __name__ == "__main__":
    cli()
