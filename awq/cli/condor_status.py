"""condor_status: the schedd's own ad (job totals) for tools that ask for it."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List

from awq import query
from awq.cli.common import run_main, run_query


def main(argv: List[str]) -> int:
    return run_query(argv, query.parse_status_args, query.STATUS_USAGE, query.render_status, "the schedd totals")


def cli() -> None:
    """Console-script entry point (pip install)."""
    run_main(main)


if __name__ == "__main__":
    cli()
