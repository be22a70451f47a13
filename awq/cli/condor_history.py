"""condor_history: jobs that have left the queue, from the spool's history."""

from __future__ import annotations

import sys
import time
from typing import List

from awq import query
from awq.cli.common import check_schedd_name, fail, run_main
from awq.spool import Spool, SpoolError, default_workdir


def main(argv: List[str]) -> int:
    options = query.parse_q_args(argv, tool="condor_history")
    if options.help:
        sys.stdout.write(query.HISTORY_USAGE)
        return 0
    check_schedd_name(options.name)
    try:
        # Lazily, from the end of the file: the rendering reads only as far as -limit needs.
        text = query.render_history(options, Spool(default_workdir()).history.newest_first(),
                                    now=time.time())
    except SpoolError as err:
        fail(str(err))
    sys.stdout.write(text)
    return 0


def cli() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    cli()
