"""condor_version: HTCondor's two lines, naming the release whose command line we follow."""

from __future__ import annotations

import platform
import sys
from typing import List

from awq import __version__
from awq.cli.common import fail, run_main

# The HTCondor release whose tools' options and output this project follows.
FOLLOWS_HTCONDOR = "23.0.0"
RELEASE_DATE = "2023-09-29"

USAGE = """Usage: condor_version [-help]

Print the HTCondor version this alien-workqueue answers as, and its own version.
"""


def version_text() -> str:
    return ("$CondorVersion: %s %s BuildID: alien-workqueue-%s $\n"
            "$CondorPlatform: %s-Linux_alien-workqueue $\n"
            % (FOLLOWS_HTCONDOR, RELEASE_DATE, __version__, platform.machine().upper() or "X86_64"))


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
