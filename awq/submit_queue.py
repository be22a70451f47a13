"""Queue statements of the submit language: `queue [N] [vars] [in|from|matching] [items]`.

Functions only: awq/submit.py's parser hands each queue statement here, with the
SubmitFiles that `queue ... from FILE` and `queue ... matching` read through.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterator, List, Optional, Tuple

from awq.submit_files import MAX_LINE, SubmitError, SubmitFiles

MAX_JOBS_PER_SUBMIT = 10000

# `queue a, b from (` with its items on the following lines, up to a line `)` (law does this).
_OPEN_ITEM_LIST = re.compile(r"(?i)^queue\b[^(]*\b(in|from)\s*\([^)]*$")


@dataclasses.dataclass
class Queue:
    """One queue statement: `count` jobs per item (one when there is no item list)."""

    count: int
    variables: List[str]
    items: Optional[List[str]]

    def size(self) -> int:
        return self.count * (len(self.items) if self.items is not None else 1)


def parse_queue(args: str, where: str, files: SubmitFiles) -> Queue:
    """The queue statement whose arguments (what follows `queue`) are args."""
    if not args:
        return Queue(1, [], None)
    match = re.match(r"^(\d+)?\s*(.*)$", args, re.S)
    count = int(match.group(1)) if match.group(1) else 1
    if count > MAX_JOBS_PER_SUBMIT:
        raise SubmitError("%s queues %d jobs; at most %d may be submitted at once"
                          % (where, count, MAX_JOBS_PER_SUBMIT))
    rest = match.group(2).strip()
    if not rest:
        return Queue(count, [], None)
    loop = re.match(r"(?i)^((?:[A-Za-z_][A-Za-z0-9_.]*(?:\s*,\s*|\s+))*?)"
                    r"\b(in|from|matching)\b\s*(.*)$", rest, re.S)
    if not loop:
        raise SubmitError("%s: cannot understand 'queue %s'" % (where, args[:80]))
    names = [v for v in re.split(r"[\s,]+", loop.group(1)) if v]
    variables = names or ["Item"]
    mode, items_text = loop.group(2).lower(), loop.group(3).strip()
    if mode == "matching":
        items = _matching(items_text, files)
    elif items_text.startswith("("):
        if not items_text.endswith(")"):
            raise SubmitError("%s: unbalanced parenthesis in the queue item list" % where)
        items = _items(mode, items_text[1:-1])
    elif mode == "from":
        text = files.read_text(items_text, "queue item file")
        items = [line.strip() for line in text.splitlines()]
        while items and not items[-1]:
            items.pop()
    else:
        items = _items(mode, items_text)
    if count * len(items) > MAX_JOBS_PER_SUBMIT:
        raise SubmitError("%s queues %d jobs; at most %d may be submitted at once"
                          % (where, count * len(items), MAX_JOBS_PER_SUBMIT))
    return Queue(count, variables, items)


def opens_item_list(line: str) -> bool:
    """Whether line is a queue statement whose item list goes on over the next lines."""
    return _OPEN_ITEM_LIST.match(line) is not None


def item_list_lines(number: int, first: str, lines: Iterator[Tuple[int, str]]) -> str:
    """The queue statement first (at line number) with its item list's following lines,
    taken from lines up to the one that closes the list."""
    collected = [first]
    size = len(first)
    for _, line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        collected.append(stripped)
        size += len(stripped) + 1
        if size > MAX_LINE:
            raise SubmitError("line %d: the queue item list is longer than %d characters"
                              % (number, MAX_LINE))
        if stripped.endswith(")"):
            return "\n".join(collected)
    raise SubmitError("line %d: the queue item list has no closing parenthesis" % number)


def _matching(text: str, files: SubmitFiles) -> List[str]:
    kind = re.match(r"(?i)^(files|dirs)\b\s*(.*)$", text, re.S)
    want_files, want_dirs = True, True
    if kind:
        want_files, want_dirs = kind.group(1).lower() == "files", kind.group(1).lower() == "dirs"
        text = kind.group(2)
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    found: List[str] = []
    for pattern in (p for p in re.split(r"[\s,]+", text) if p):
        found.extend(n for n in files.matching(pattern, want_files, want_dirs) if n not in found)
    return found


def _items(mode: str, text: str) -> List[str]:
    if mode == "from":
        return [line.strip() for line in re.split(r"[\n;]", text) if line.strip()]
    return [item for item in re.split(r"[\s,]+", text) if item]
