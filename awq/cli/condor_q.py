"""condor_q: show the queue as the master last published it."""

from __future__ import annotations

import sys
import time
from typing import List

from awq import query
from awq.cli.common import check_schedd_name, fail, run_main, schedd_name
from awq.spool import Spool, SpoolError, default_workdir

# Upstream's contract, relied on by AliEn's health check: a master silent for
# this long is dead, and condor_q must say so with its exit status.
STALE_AFTER = 200


def load_live_queue(what: str) -> "tuple":
    """The jobs in the queue, after the health checks every query shares."""
    try:
        view = Spool(default_workdir()).read_queue()
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


def main(argv: List[str]) -> int:
    try:
        options = query.parse_q_args(argv)
    except query.UsageError as err:
        fail(str(err))
    if getattr(options, "help", False):
        sys.stdout.write(query.Q_USAGE)
        return 0
    check_schedd_name(options.name)
    job_list, now = load_live_queue("the queue")
    sys.stdout.write(query.render_q(options, job_list, now=now, schedd_name=schedd_name()))
    return 0


def cli() -> None:
    """Console-script entry point (pip install)."""
    run_main(main)


if __name__ == "__main__":
    cli()
