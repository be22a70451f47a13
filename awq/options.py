"""Errors a command reports as one line, and the helpers that take an option's values.

The core's option parsers (awq/query.py for condor_q and condor_status) raise
these, and awq/cli/common.py turns them into one `ERROR:` line and an exit
status; they live here so that the core never imports the command line.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import List


class CommandError(Exception):
    """A failure to report to the user as one line, with an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class UsageError(CommandError):
    """Bad options or arguments."""


def take_value(args: List[str], flag: str) -> str:
    """The value after an option such as `-name NAME`; an error when it is missing."""
    return take_values(args, flag, 1)[0]


def take_values(args: List[str], flag: str, count: int) -> List[str]:
    """The count values after an option, taken off the front of args."""
    if len(args) < count:
        raise UsageError("option %s needs %s" % (flag, "a value" if count == 1 else
                                                 "%d values" % count))
    values = args[:count]
    del args[:count]
    return values
