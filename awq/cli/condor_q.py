"""condor_q: show the queue as the master last published it."""

from __future__ import annotations

import sys
from typing import List

from awq import query
from awq.cli.common import check_schedd_name, load_live_queue, run_main, schedd_name


def main(argv: List[str]) -> int:
    options = query.parse_q_args(argv)
    if options.help:
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
