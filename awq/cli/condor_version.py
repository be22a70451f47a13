"""condor_version: HTCondor's two lines, naming the release whose command line we follow."""

from __future__ import annotations

import sys
from typing import List

from awq.cli.common import fail, run_main, version_text

USAGE = """Usage: condor_version [-help]

Print the HTCondor version this alien-workqueue answers as, and its own version.
"""


def main(argv: List[str]) -> int:
    for arg in argv:
        if arg.lstrip("-").lower() in ("h", "help"):
            sys.stdout.write(USAGE)
            return 0
        fail("unknown option %s (see condor_version -help)" % arg)
    sys.stdout.write(version_text())
    return 0


def cli() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    cli()
