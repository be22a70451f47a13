"""alien_work_queue: the master's command line. Parse, wire, run (see awq/master.py)."""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

if TYPE_CHECKING:
    import socket

    from awq.workqueue import Backend

from awq import (__version__, classad, front, front_process, jobs, periodic, spool as spool_mod,
                 status)
from awq.cli.common import run_main
from awq.dispatch import MAX_TASKS
from awq.master import Master
from awq.publish import UNFIT_GRACE
from awq.queue_view import read_queue_view
from awq.shards import TASKS_PER_MANAGER, Shards, managers_for
from awq.spool import Spool

log = logging.getLogger("awq.master")

DEFAULT_PORT = 9094
DEFAULT_CATALOG_PORT = 9097  # CCTools' catalog_server default
# In the spool, the directory (ours alone) of the Unix socket the front hands Work Queue
# its workers through.
WORK_QUEUE_SOCKET_DIR = "workqueue"
MAX_MANAGERS = 16           # --managers: past a few, the passes of each turn cost more than they save
LOG_MAX_MB = 100             # --log-file is rotated at this size...
LOG_BACKUPS = 5              # ...keeping this many old files


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = _parser()
    options = parser.parse_args(argv)
    problem = _problem(options)
    if problem:
        parser.error(problem)
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alien_work_queue",
        description="Run the alien-workqueue master: take jobs that condor_submit "
                    "spooled, run them as Work Queue tasks, publish their state for condor_q.")
    parser.add_argument("--job-wrapper", metavar="FILE",
                        help="run every job through this wrapper (e.g. $ALIEN_WORKQUEUE/etc/"
                             "alien_job_wrapper.sh), sent to the worker with the job")
    parser.add_argument("--work-dir", metavar="DIR", default=None,
                        help="spool directory (default: $AWQ_WORKDIR or %s)"
                             % spool_mod.DEFAULT_WORKDIR)
    _add_network_options(parser)
    _add_pace_options(parser)
    _add_log_options(parser)
    _add_status_options(parser)
    parser.add_argument("--version", action="version",
                        version="alien_work_queue (alien-workqueue) %s" % __version__)
    return parser


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog-host", metavar="HOST",
                        help="advertise this master to the catalog server HOST (catalog mode)")
    parser.add_argument("--catalog-port", metavar="PORT", type=int, default=DEFAULT_CATALOG_PORT,
                        help="catalog server port (default: %d)" % DEFAULT_CATALOG_PORT)
    parser.add_argument("--project-name", metavar="NAME", default="alien_jobs",
                        help="project name advertised in catalog mode (default: alien_jobs)")
    parser.add_argument("--port", metavar="PORT", type=int, default=DEFAULT_PORT,
                        help="port workers and foremen connect to (default: %d; 0 picks a free one)"
                             % DEFAULT_PORT)
    parser.add_argument("--interface", metavar="ADDR", default="",
                        help="listen for workers on this address only (e.g. 127.0.0.1 behind a "
                             "tunnel; default: every address). In catalog mode, workers try "
                             "each address of this host the catalog lists")
    parser.add_argument("--password", metavar="FILE",
                        help="workers and foremen authenticate with the password in FILE (yours, "
                             "mode 0600; default: WORK_DIR/password, created on first start)")
    parser.add_argument("--insecure", action="store_true",
                        help="no password: any host that reaches the port can take jobs and the "
                             "proxies they carry (upstream's behaviour)")
    parser.add_argument("--ssl-key", metavar="FILE",
                        help="TLS key for worker connections (needs a Work Queue built with TLS)")
    parser.add_argument("--ssl-cert", metavar="FILE",
                        help="TLS certificate for worker connections (with --ssl-key)")


def _add_pace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-tasks", metavar="N", type=int, default=MAX_TASKS,
                        help="at most N jobs handed to Work Queue at once (default: %d)" % MAX_TASKS)
    parser.add_argument("--managers", metavar="K", type=_managers, default=0,
                        help="Work Queue managers behind the one port: each holds a K-th of the "
                             "tasks, since one manager's hand-out slows with every task it "
                             "holds (default: auto, one per %d of --max-tasks)"
                             % TASKS_PER_MANAGER)
    parser.add_argument("--periodic-interval", metavar="S", type=float, default=periodic.INTERVAL,
                        help="evaluate the jobs' periodic_hold/periodic_release/periodic_remove "
                             "every S seconds (default: %d, as HTCondor)" % periodic.INTERVAL)
    parser.add_argument("--unfit-grace", metavar="S", type=float, default=UNFIT_GRACE,
                        help="after S seconds idle, a job no connected worker is big enough for "
                             "gets LastRejectedMatchReason and a warning (default: %d)"
                             % UNFIT_GRACE)


def _add_status_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="store_true",
                        help="print whether the master on the spool is healthy and exit: 0 "
                             "healthy, 1 master down, 2 degraded (needs no running master)")
    parser.add_argument("--json", action="store_true", help="with --status: print JSON")
    parser.add_argument("--check", action="store_true",
                        help="verify the spool (read only; with or without a running master), "
                             "say what a master would recover on start, and exit: 0 sound, "
                             "2 the master recovers it by itself, 1 it needs you")


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-file", metavar="FILE", help="append the master's log to FILE "
                                                         "(default: standard error)")
    parser.add_argument("--log-max-mb", metavar="MB", type=int, default=LOG_MAX_MB,
                        help="rotate --log-file at this size, keeping %d old files (default: %d)"
                             % (LOG_BACKUPS, LOG_MAX_MB))
    parser.add_argument("--debug", action="store_true",
                        help="verbose log, and Work Queue's own debug log in the spool")
    parser.add_argument("--wq-log", metavar="FILE",
                        help="write Work Queue's performance log to FILE (plot it with "
                             "work_queue_graph_log)")


def _managers(text: str) -> int:
    """--managers: a count, or auto (0)."""
    if text == "auto":
        return 0
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 1 <= count <= MAX_MANAGERS:
        raise argparse.ArgumentTypeError("must be auto or a number from 1 to %d" % MAX_MANAGERS)
    return count


def _problem(options: argparse.Namespace) -> Optional[str]:
    """What is wrong with the options taken together, if anything."""
    if options.json and not options.status:
        return "--json goes with --status"
    if options.check and options.status:
        return "--check and --status exclude each other"
    if options.insecure and options.password:
        return "--insecure and --password exclude each other"
    if bool(options.ssl_key) != bool(options.ssl_cert):
        return "--ssl-key and --ssl-cert go together"
    for flag, path in (("--job-wrapper", options.job_wrapper), ("--password", options.password),
                       ("--ssl-key", options.ssl_key), ("--ssl-cert", options.ssl_cert)):
        if path and not os.access(path, os.R_OK):
            return "%s %s: file does not exist or is not readable" % (flag, path)
    if not 0 <= options.port <= 65535:
        return "--port %d is not a TCP port" % options.port
    if options.max_tasks < 1:
        return "--max-tasks must be at least 1"
    if options.log_max_mb < 1:
        return "--log-max-mb must be at least 1"
    if options.periodic_interval <= 0:
        return "--periodic-interval must be positive"
    if options.unfit_grace < 0:
        return "--unfit-grace cannot be negative"
    return None


class OneLineFormatter(logging.Formatter):
    """Job data in a message cannot forge a log line: control characters are escaped.

    The master logs two lines per job; the date part is made once a second.
    """

    _second = -1
    _date = ""
    _HEAD, _TAIL = "%(asctime)s", "%(levelname)s: %(message)s"

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        # The master's own layout is put together directly: logging's general path builds
        # a dict of the record's fields and then formats it, for each of two lines per job.
        middle = fmt[len(self._HEAD):-len(self._TAIL)]
        self._middle = middle if (fmt.startswith(self._HEAD) and fmt.endswith(self._TAIL)
                                  and "%" not in middle) else None

    def format(self, record: logging.LogRecord) -> str:
        if self._middle is None or record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = classad.escape_control(record.getMessage())
        return "%s%s%s: %s" % (self.formatTime(record), self._middle, record.levelname,
                               record.message)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = classad.escape_control(record.message)
        return super().formatMessage(record)

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._date = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._date, record.msecs)


def setup_logging(log_file: Optional[str], debug: bool, max_mb: int = LOG_MAX_MB) -> None:
    handler: logging.Handler
    if log_file:
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_mb << 20,
                                                       backupCount=LOG_BACKUPS)
    else:
        handler = logging.StreamHandler(sys.stderr)
    # What the format does not print is not gathered (the logging HOWTO's "Optimization"):
    # the caller's frame, thread and process names, at two lines per job.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler.setFormatter(OneLineFormatter("%%(asctime)s alien_work_queue[%d] "
                                          "%%(levelname)s: %%(message)s" % os.getpid()))
    root = logging.getLogger("awq")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def install_signal_handlers(master: Master) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        log.info("signal %d: saving the job table and exiting", signum)
        master.stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # SIGCHLD is the early wake-up's (awq.workqueue.EarlyWake): only it has children.


def main(argv: List[str]) -> int:
    options = parse_args(argv)
    if options.status:
        return print_status(Spool(options.work_dir), options.json)
    if options.check:
        return print_check(Spool(options.work_dir))
    from awq.workqueue import tls_supported  # late: --help works without Work Queue
    # What the network refuses is said before a spool or a password is made for nothing.
    if options.ssl_key and not tls_supported():
        raise OSError("--ssl-key/--ssl-cert: the installed Work Queue has no TLS support "
                      "(Debian's CCTools 8 has none): tunnel the port instead (README, Security)")
    public = front.listen(options.interface, options.port)
    # The spool first: a --log-file inside a spool made on this start must find its directory.
    spool = Spool(options.work_dir, create=True)
    setup_logging(options.log_file, options.debug, options.log_max_mb)
    lock = spool.master_files.lock()
    password = workers_password(spool, options)
    tls = (_absolute(options.ssl_key), _absolute(options.ssl_cert)) if options.ssl_key else None
    backend = _backend(options, spool, password, tls)
    try:
        gate = start_front(backend, public, None if tls else password,
                           os.path.join(spool.root, WORK_QUEUE_SOCKET_DIR))
    except BaseException:
        _close(backend)
        raise
    if tls is None:
        log.warning("worker connections are not encrypted%s: keep the port on a trusted network "
                    "or tunnel it (README, Security)", "" if backend.supports_tls else
                    " (this Work Queue has no TLS)")
    master = _master(options, spool, backend)
    install_signal_handlers(master)
    front_ended = watch_front(gate, master)
    try:
        status = master.run()
        return 1 if front_ended.is_set() else status
    finally:
        gate.stop()
        _close(backend)
        lock.release()


def _close(backend: "Union[Backend, Shards]") -> None:
    if isinstance(backend, Shards):
        backend.close()


def _backend(options: argparse.Namespace, spool: Spool, password: Optional[str],
             tls: Optional[Tuple[str, str]]) -> "Union[Backend, Shards]":
    """Work Queue as the options ask (one manager or several, awq/shards.py), each on a
    port of its own until the front takes its place."""
    from awq.workqueue import Backend  # late: --help works without Work Queue
    count = options.managers or managers_for(options.max_tasks)
    made = []
    for index in range(count):
        # The first alone reports to a catalog; the others' files are told apart by number.
        suffix = ".%d" % index if index else ""
        made.append(Backend(
            0, password_file=password, tls=tls,
            catalog_host=None if index else options.catalog_host,
            catalog_port=options.catalog_port, project_name=options.project_name,
            debug_log=os.path.join(spool.root, "work_queue.debug" + suffix)
            if options.debug else None,
            stats_log=_absolute(options.wq_log) + suffix if options.wq_log else None,
            staging_dir=os.path.join(spool.root, "outputs" + suffix)))
    if count == 1:
        return made[0]
    log.info("%d Work Queue managers share the tasks (--managers)", count)
    return Shards(made)


def _master(options: argparse.Namespace, spool: Spool, backend: "Backend") -> Master:
    return Master(spool, backend, owner=jobs.current_owner(),
                  job_wrapper=_absolute(options.job_wrapper), max_tasks=options.max_tasks,
                  periodic_interval=options.periodic_interval,
                  project_name=options.project_name if options.catalog_host else "",
                  unfit_grace=options.unfit_grace)


def watch_front(gate: front_process.FrontProcess, master: Master) -> "threading.Event":
    """Stop the master if its front ends: no worker could reach it any more.

    A thread that waits for the front's exit: the master's own loop blocks inside
    Work Queue, and SIGCHLD is the early wake-up's. The master then exits (1) with its
    table saved, for its supervisor to start it again with a new front.
    """
    ended = threading.Event()

    def wait() -> None:
        gate.wait_for_exit()
        if not gate.stopping:
            ended.set()
            log.error("the front (PID %d) ended: workers can no longer connect; stopping so "
                      "that the master can be started again", gate.pid)
            master.stop_requested = True

    threading.Thread(target=wait, name="front-watch", daemon=True).start()
    return ended


def start_front(backend: "Union[Backend, Shards]", public: "socket.socket", password: Optional[str],
                socket_dir: str) -> front_process.FrontProcess:
    """Work Queue behind the front: it listens on a Unix socket in socket_dir that only we
    reach and reports the public port as its own (to the catalog too); the front listens on
    the public port."""
    address = public.getsockname()
    inner = backend.listen_privately(socket_dir, address[1])
    doorbell = backend.doorbell if isinstance(backend, Shards) else None
    gate = front_process.start_front(public, inner, password, doorbell_fd=doorbell.front_end()
                                     if doorbell else None)
    public.close()  # the front's now
    if doorbell:
        doorbell.close_front_end()
    log.info("the front (PID %d) takes workers on %s:%d and hands Work Queue, on %s, only "
             "those that prove the password", gate.pid, address[0], address[1],
             ", ".join(inner))
    return gate


def print_status(spool: Spool, as_json: bool) -> int:
    view = read_queue_view(spool)
    report = status.health_report(
        queue=view.jobs.ads(), history=spool.history.read(), master_alive=view.master_alive,
        master_pid=view.master_pid, heartbeat=view.heartbeat,
        master_status=spool.published.read_master_status(), spool_root=spool.root,
        spool_bytes=spool.size_in_bytes(), now=time.time())
    sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n" if as_json
                     else status.render_report(report))
    return report["health"]


def print_check(spool: Spool) -> int:
    from awq import check  # only here: the master itself never needs it
    findings = check.check_spool(spool)
    sys.stdout.write(check.render(spool, findings))
    return check.worst_level(findings)


def workers_password(spool: Spool, options: argparse.Namespace) -> Optional[str]:
    """The password file workers must present; None only with --insecure."""
    if options.insecure:
        log.warning("--insecure: no password; any host that reaches the port can take jobs "
                    "and the X509 proxies they carry")
        return None
    if options.password:
        path = os.path.abspath(options.password)
        spool_mod.check_secret_file(path)
        return path
    path, created = spool.master_files.ensure_password()
    log.info("workers authenticate with the password in %s%s", path,
             " (created now: copy it to the worker nodes)" if created else "")
    return path


def _absolute(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(path) if path else None


def cli() -> None:
    """Console-script entry point."""
    run_main(main, handles_version=True)


if __name__ == "__main__":
    cli()
