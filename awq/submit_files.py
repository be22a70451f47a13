"""What a submit description reads besides its own text, and the error the language raises.

The lowest part of the submit language (awq/submit.py reads descriptions,
awq/submit_queue.py queue statements): the files a description names itself
(include, `queue ... from FILE`, `queue ... matching`) through a SubmitFiles the caller
gives, the limits on what is read, and SubmitError, which every part raises.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from typing import List

MAX_LINE = 1024 * 1024
MAX_INCLUDED_FILE = 16 * 1024 * 1024


class SubmitError(ValueError):
    """Bad submit description; the message is what follows `ERROR: `."""


class SubmitFiles:
    """The files a description names itself, relative to the directory condor_submit runs in."""

    def __init__(self, directory: str):
        self.directory = directory

    def read_text(self, name: str, what: str) -> str:
        path = posixpath.join(self.directory, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_INCLUDED_FILE + 1)
        except OSError as err:
            raise SubmitError("%s %s: %s" % (what, name, err.strerror))
        if len(data) > MAX_INCLUDED_FILE:
            raise SubmitError("%s %s is larger than %d bytes" % (what, name, MAX_INCLUDED_FILE))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SubmitError("%s %s is not UTF-8 text" % (what, name))

    def matching(self, pattern: str, files: bool, dirs: bool) -> List[str]:
        """Names in the directory matching a glob pattern, directories with a trailing /."""
        where, _, base = pattern.rpartition("/")
        directory = posixpath.join(self.directory, where)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return []
        found = []
        for name in names:
            if name.startswith(".") and not base.startswith(".") or \
                    not fnmatch.fnmatchcase(name, base):
                continue
            shown = (where + "/" + name) if where else name
            if os.path.isdir(posixpath.join(directory, name)):
                if dirs:
                    found.append(shown + "/")
            elif files:
                found.append(shown)
        return found


class NoFiles(SubmitFiles):
    """No submit directory: a description that names a file is refused."""

    def __init__(self) -> None:
        super().__init__("")

    def read_text(self, name: str, what: str) -> str:
        raise SubmitError("%s %s: no submit directory to read it from" % (what, name))

    def matching(self, pattern: str, files: bool, dirs: bool) -> List[str]:
        raise SubmitError("queue ... matching %s: no submit directory to look in" % pattern)
