"""condor_status: the schedd's own ad (job totals) for tools that ask for it."""

from __future__ import annotations

import gc

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List


def main(argv: List[str]) -> int:
    from awq import query
    from awq.cli.common import run_query

    return run_query(argv, query.parse_status_args, query.STATUS_USAGE, query.render_status, "the schedd totals")


def cli() -> None:
    """Console-script entry point (pip install)."""
    gc.disable()   # as condor_q's: one answer, no cycles worth collecting
    from awq.cli.common import run_main

    run_main(main)


if __name__ == "__main__":
    cli()
