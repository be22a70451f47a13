"""What every command-line entry point shares: error reporting, schedd names."""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Callable, Iterable, List, NoReturn, Optional, Sequence, Tuple, Union

from awq import __version__
from awq.jobset import JobSet
from awq.options import CommandError
from awq.queue_view import read_queue_view
from awq.spool import Spool, SpoolError, default_workdir


# The HTCondor release whose tools' options and output this project follows.
FOLLOWS_HTCONDOR = "23.0.0"
FOLLOWS_HTCONDOR_DATE = "2023-09-29"


def version_text() -> str:
    """condor_version's two lines, naming that release and our own version (law parses the first)."""
    return ("$CondorVersion: %s %s BuildID: alien-workqueue-%s $\n"
            "$CondorPlatform: %s-Linux_alien-workqueue $\n"
            % (FOLLOWS_HTCONDOR, FOLLOWS_HTCONDOR_DATE, __version__,
               os.uname().machine.upper() or "X86_64"))


# What a shell reports for a command a Ctrl-C ended: 128 + SIGINT.
EXIT_INTERRUPTED = 130


def fail(message: str, status: int = 1) -> NoReturn:
    raise CommandError(message, status)


def run_main(main: Callable[[List[str]], int], argv: Optional[Sequence[str]] = None,
             handles_version: bool = False, skip_teardown: bool = False) -> NoReturn:
    """Run main(argv); turn every exception into one `ERROR:` line and exit 1.

    No traceback reaches a user: HTCondor's tools answer bad input with a
    single line, and AliEn/JAliEn only look at the exit status.
    skip_teardown: a read-only query holds nothing to save or release once its output is
    flushed, and freeing a large queue's columns object by object at exit would cost it
    more than printing them: the process ends at once.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-version"], ["--version"]) and not handles_version:
        sys.stdout.write(version_text())  # HTCondor's tools answer -version with these lines
        sys.exit(0)
    try:
        status = main(args)
        sys.stdout.flush()
    except CommandError as err:
        _print_error(str(err))
        status = err.status
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        # e.g. `condor_q | head -1`: not an error worth reporting.
        _silence_stdout()
        status = 0
    except Exception as err:  # the last line of defence: never a traceback
        _print_error("%s: %s" % (type(err).__name__, err) if not str(err) else str(err))
        status = 1
    if skip_teardown:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:   # closed, or None: already answered above, the status stands
                pass
        os._exit(status)
    sys.exit(status)


def _print_error(message: str) -> None:
    line = " ".join(message.split("\n")).strip()
    try:
        sys.stderr.write("ERROR: %s\n" % line)
        sys.stderr.flush()
    except Exception:
        pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except Exception:
        pass


# Upstream's contract, relied on by AliEn's health check: a master silent for
# this long is dead, and condor_q must say so with its exit status.
STALE_AFTER = 200


def load_live_queue(what: str) -> Tuple[JobSet, float]:
    """The jobs in the queue, after the health checks every query shares."""
    try:
        view = read_queue_view(Spool(default_workdir()))
    except SpoolError as err:
        fail(str(err))
    now = time.time()
    if view.heartbeat is None:
        fail("the alien_work_queue master has never run on the spool %s" % default_workdir())
    age = now - view.heartbeat
    if age >= STALE_AFTER:
        fail("the alien_work_queue master's heartbeat is %d s old (limit %d s): "
             "it is not running; %s would be out of date" % (age, STALE_AFTER, what))
    if not view.master_alive:
        sys.stderr.write("WARNING: the alien_work_queue master is not running; "
                         "showing the queue as it saved it %d s ago\n" % age)
    return view.jobs, now


def schedd_names() -> List[str]:
    """Names this schedd answers to: $AWQ_SCHEDD_NAME, the host name, its FQDN."""
    import socket  # here: getfqdn may ask DNS, and only -name needs it

    names = [schedd_name()]
    host = os.uname().nodename
    names.append(host)
    names.append(host.split(".")[0])
    try:
        names.append(socket.getfqdn())
    except OSError:
        pass
    names.extend(["localhost", "127.0.0.1"])
    return names


def schedd_name() -> str:
    return os.environ.get("AWQ_SCHEDD_NAME") or os.uname().nodename


def check_schedd_name(name: Optional[str]) -> None:
    """HTCondor's tools refuse a -name that is not the local schedd."""
    if name is None:
        return
    wanted = name.lower()
    for known in schedd_names():
        known = known.lower()
        if wanted == known or wanted.split("@")[-1] == known:
            return
    fail("Can't find address for schedd %s" % name)


def run_query(argv: List[str], parse: Callable[[List[str]], Any], usage: str,
              render: Callable[..., Union[str, Iterable[str]]], what: str) -> int:
    """condor_q and condor_status: parse, answer -help, check the schedd, print the live
    queue (render gives the text, or its chunks)."""
    options = parse(argv)
    if options.help:
        sys.stdout.write(usage)
        return 0
    check_schedd_name(options.name)
    job_list, now = load_live_queue(what)
    write_out(render(options, job_list, now=now, schedd_name=schedd_name()))
    return 0


def write_out(text: Union[str, Iterable[str]]) -> None:
    """text (or its chunks, in order) on standard output, each chunk encoded as the stream
    would and written to its descriptor at once: a large answer goes out as it is made,
    without the text layer's copy of it."""
    chunks = (text,) if isinstance(text, str) else text
    stream = sys.stdout
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):   # not a file (a test's capture)
        for chunk in chunks:
            stream.write(chunk)
        return
    stream.flush()   # what was written through the stream comes first
    encoding, errors = stream.encoding, stream.errors
    for chunk in chunks:
        data = memoryview(chunk.encode(encoding, errors))
        while data:
            data = data[os.write(fd, data):]
