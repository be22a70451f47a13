"""condor_q: show the queue as the master last published it."""

from __future__ import annotations

import gc

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List


def main(argv: List[str]) -> int:
    from awq import query
    from awq.cli.common import run_query

    return run_query(argv, query.parse_q_args, query.Q_USAGE, query.render_q_chunks, "the queue")


def cli() -> None:
    """Console-script entry point (pip install)."""
    # The process lives for one answer and makes no cycles worth collecting: the collector's
    # passes over what its imports and the queue's columns allocate would be pure cost, so
    # it is off before they are imported (here, not at this module's import).
    gc.disable()
    from awq.cli.common import run_main

    run_main(main, skip_teardown=True)


if __name__ == "__main__":
    cli()
