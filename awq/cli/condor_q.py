"""condor_q: show the queue as the master last published it."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List

from awq import query
from awq.cli.common import run_main, run_query


def main(argv: List[str]) -> int:
    return run_query(argv, query.parse_q_args, query.Q_USAGE, query.render_q_chunks, "the queue")


def cli() -> None:
    """Console-script entry point (pip install)."""
    run_main(main, skip_teardown=True)


if __name__ == "__main__":
    cli()
