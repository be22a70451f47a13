"""ClassAd expressions evaluated over a whole JobSet at once, column by column.

condor_q evaluates one constraint over every job in the queue: walking the
tree once per job costs more than everything else it does. Here each node
of the tree yields a list of values, one per job, computed from the set's
columns with a fast path for the common case (integers compared with
integers, booleans joined by && and ||) and classad's own operators
(binary_values, logical, unary_value) for everything else, so the answers
are the same. Evaluating both sides of && and || for every job is safe:
evaluation has no side effects, and the operator still picks the result
as if the right side had not been computed.

What columns cannot say (an attribute holding an expression, or a list,
whose value depends on the rest of the ad) is marked NEEDS_AD, and those
jobs alone are evaluated by classad.evaluate on their whole ad.
"""

from __future__ import annotations

# The C module operator.py re-exports: importing operator.py costs a query tool's start
# more than the functions taken from it.
import _operator as operator
from itertools import compress

from awq import classad
from awq.classad import ERROR, UNDEFINED
from awq.jobset import JobSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Sequence, Set


class _NeedsAd:
    def __repr__(self) -> str:
        return "NEEDS_AD"


NEEDS_AD = _NeedsAd()
_PLAIN = frozenset((str, int, float, bool))
_NUMBERS = frozenset((int, float))
_BOOL = frozenset((bool,))
_FAST = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
         ">": operator.gt, ">=": operator.ge, "+": operator.add, "-": operator.sub,
         "*": operator.mul}


def evaluate_all(text: str, jobs: JobSet, now: float, indices: Sequence[int]) -> List[Any]:
    """The value of expression text in the ad of each job in indices."""
    tree = classad.parse(text)
    by_value = _by_distinct_values(text, tree, jobs, now, indices)
    if by_value is not None:
        return by_value
    try:
        values = _values(tree, jobs, int(now), indices)
        marked = _reads_a_column_not_plain(tree, jobs)
    except RecursionError:
        values, marked = [NEEDS_AD] * len(indices), True
    if marked and NEEDS_AD in values:
        for position, value in enumerate(values):
            if value is NEEDS_AD:
                values[position] = classad.evaluate(tree, jobs.ad(indices[position]), now)
    return values


# An expression of one attribute is evaluated once per distinct value of that attribute
# when the attribute takes at most this many values (a status, a priority), and every job
# then looks its answer up in C: `JobStatus == 1 || JobStatus == 2` over a large queue.
DISTINCT_VALUES_AT_MOST = 64
_ONE_KIND_KEYS = (frozenset((int,)), frozenset((str,)))


def _by_distinct_values(text: str, tree: tuple, jobs: JobSet, now: float,
                        indices: Sequence[int]) -> Optional[List[Any]]:
    """The values of an expression that reads one attribute (no function, no scope, not
    CurrentTime), from classad.evaluate on an ad holding that attribute alone, once per
    distinct value; None when the expression or the column does not qualify. Keys of one
    kind only (ints, or strings; None is a job without the attribute): 1, 1.0 and true are
    equal as keys but not as ClassAd values."""
    if tree[0] in ("lit", "attr"):
        return None   # a literal or a bare attribute costs nothing more by column
    names: Set[str] = set()
    try:
        if not _one_attribute(tree, names) or len(names) != 1:
            return None
    except RecursionError:
        return None   # deeper than the column way's walk too: it falls back job by job
    name = jobs.resolve(names.pop())
    if name is None or not jobs.plain(name):
        return None
    column = picked(jobs.column(name), indices)
    distinct = set(column)
    if len(distinct) > DISTINCT_VALUES_AT_MOST:
        return None
    distinct.discard(None)
    if distinct and frozenset(map(type, distinct)) not in _ONE_KIND_KEYS:
        return None
    answers = {value: classad.evaluate(text, {} if value is None else {name: value}, now)
               for value in distinct}
    answers[None] = classad.evaluate(text, {}, now)
    return list(map(answers.__getitem__, column))


def _one_attribute(node: tuple, names: Set[str]) -> bool:
    """Whether the tree holds only literals, unscoped attributes other than CurrentTime,
    and operators; the attributes' names (lower case) are added to names."""
    kind = node[0]
    if kind == "lit":
        return True
    if kind == "attr":
        name = node[1].lower()
        names.add(name)
        return "." not in name and name != "currenttime"
    if kind == "bin":
        return _one_attribute(node[2], names) and _one_attribute(node[3], names)
    if kind == "un":
        return _one_attribute(node[2], names)
    if kind == "cond":
        return all(_one_attribute(part, names) for part in node[1:4])
    return False


def select(jobs: JobSet, constraints: Sequence[str], now: float,
           indices: Sequence[int]) -> Sequence[int]:
    """The indices whose job makes every constraint true (indices itself when every job
    does)."""
    for text in constraints:
        picked = _picked_by_distinct_values(text, jobs, now, indices)
        if picked is not None:
            indices = picked
            continue
        values = evaluate_all(text, jobs, now, indices)
        if values.count(True) == len(values):
            continue   # every job stays (a value equal to true is a true number)
        if set(map(type, values)) <= _BOOL:   # the common case: compress picks in C
            indices = list(compress(indices, values))
        else:
            indices = list(compress(indices, map(_keeps, values)))
    return indices


def _keeps(value: Any) -> bool:
    """Whether a constraint's value keeps a job: true, or a number other than 0."""
    return value is True or type(value) in _NUMBERS and value != 0


def _picked_by_distinct_values(text: str, jobs: JobSet, now: float,
                               indices: Sequence[int]) -> Optional[Sequence[int]]:
    """select's answer for one constraint that reads no attribute (evaluated once) or one
    attribute of few distinct values (evaluated once per value, as _by_distinct_values):
    indices itself when every value keeps its job, so a constraint every job meets costs
    no list; None when the constraint does not qualify."""
    tree = classad.parse(text)
    names: Set[str] = set()
    try:
        if not _one_attribute(tree, names) or len(names) > 1:
            return None
    except RecursionError:
        return None
    if not names:   # true or false for every job alike
        return indices if _keeps(classad.evaluate(text, {}, now)) else []
    name = jobs.resolve(names.pop())
    if name is None:
        return indices if _keeps(classad.evaluate(text, {}, now)) else []
    if not jobs.plain(name):
        return None
    column = picked(jobs.column(name), indices)
    distinct = set(column)
    if len(distinct) > DISTINCT_VALUES_AT_MOST:
        return None
    values = distinct - {None}
    if values and frozenset(map(type, values)) not in _ONE_KIND_KEYS:
        return None
    keeps = {value: _keeps(classad.evaluate(text, {} if value is None else {name: value}, now))
             for value in distinct}
    if all(keeps.values()):
        return indices
    if not any(keeps.values()):
        return []
    return list(compress(indices, map(keeps.__getitem__, column)))


def _values(node: tuple, jobs: JobSet, now: int, indices: Sequence[int]) -> List[Any]:
    kind = node[0]
    if kind == "lit":
        return [node[1]] * len(indices)
    if kind == "attr":
        return _attribute(node[1], jobs, now, indices)
    if kind == "bin":
        left = _values(node[2], jobs, now, indices)
        right = _values(node[3], jobs, now, indices)
        if node[1] in ("&&", "||"):
            return _logical(node[1], left, right)
        return _binary(node[1], left, right)
    if kind == "un":
        op = node[1]
        return [value if value is NEEDS_AD else classad.unary_value(op, value)
                for value in _values(node[2], jobs, now, indices)]
    if kind == "cond":
        return _conditional(*(_values(part, jobs, now, indices) for part in node[1:4]))
    # A function call or a list: this subtree alone, job by job, on each whole ad.
    return [classad.evaluate(node, jobs.ad(i), now) for i in indices]


def _reads_a_column_not_plain(node: tuple, jobs: JobSet) -> bool:
    """Whether _values may mark a job NEEDS_AD for the tree: only an attribute whose
    column holds an expression or a list does (a function call is evaluated on each ad);
    without one, the values need no scan for the mark."""
    kind = node[0]
    if kind == "attr":
        name = node[1]
        if "." in name:
            return True   # a scoped name: not worth telling apart
        stored = jobs.resolve(name)
        return stored is not None and not jobs.plain(stored)
    if kind == "bin":
        return _reads_a_column_not_plain(node[2], jobs) or \
            _reads_a_column_not_plain(node[3], jobs)
    if kind == "un":
        return _reads_a_column_not_plain(node[2], jobs)
    if kind == "cond":
        return any(_reads_a_column_not_plain(part, jobs) for part in node[1:4])
    return False


def _attribute(name: str, jobs: JobSet, now: int, indices: Sequence[int]) -> List[Any]:
    scope, _, rest = name.rpartition(".")
    if scope:
        if scope.lower() not in ("my", "self"):
            return [UNDEFINED] * len(indices)   # no TARGET ad in a query, as in classad
        name = rest
    missing = now if name.lower() == "currenttime" else UNDEFINED
    column = jobs.column(name)
    if column is None:
        return [missing] * len(indices)
    values = picked(column, indices)
    if values is column:
        values = list(column)
    kinds = jobs.kinds(name)   # from the snapshot's hints: no scan of the values
    if kinds is not None and type(None) not in kinds:
        return values   # plain values only (a column with kinds known is plain)
    if kinds is not None or None in values or not jobs.plain(name):
        values = [value if type(value) in _PLAIN else
                  missing if value is None else NEEDS_AD for value in values]
    return values


def picked(column: List[Any], indices: Sequence[int]) -> List[Any]:
    """column[i] for i in indices, in C (the column itself when indices are all of it)."""
    if isinstance(indices, range) and indices.step == 1:
        if indices.start == 0 and indices.stop == len(column):
            return column
        return column[indices.start:indices.stop]
    return list(map(column.__getitem__, indices))


def _binary(op: str, left: List[Any], right: List[Any]) -> List[Any]:
    fast = _FAST.get(op)
    if fast is None:
        return [_slow_binary(op, a, b) for a, b in zip(left, right)]
    if _only(int, left) and _only(int, right):
        return list(map(fast, left, right))      # the common case, at C speed
    return [fast(a, b) if type(a) is int and type(b) is int else _slow_binary(op, a, b)
            for a, b in zip(left, right)]


def _only(kind: type, values: List[Any]) -> bool:
    return set(map(type, values)) == {kind}


def _slow_binary(op: str, left: Any, right: Any) -> Any:
    if left is NEEDS_AD or right is NEEDS_AD:
        return NEEDS_AD
    return classad.binary_values(op, left, right)


def _logical(op: str, left: List[Any], right: List[Any]) -> List[Any]:
    if _only(bool, left) and _only(bool, right):
        return list(map(operator.or_ if op == "||" else operator.and_, left, right))
    decides = op == "||"   # the value of the left side that decides alone
    return [a if a is decides else
            b if a is (not decides) and type(b) is bool else _slow_logical(op, a, b)
            for a, b in zip(left, right)]


def _slow_logical(op: str, left: Any, right: Any) -> Any:
    if left is NEEDS_AD:
        return NEEDS_AD
    if right is NEEDS_AD:
        # Only a left side that decides alone makes the right side's value irrelevant.
        decided = classad.logical(op, left, lambda: ERROR)
        return decided if decided is (op == "||") else NEEDS_AD
    return classad.logical(op, left, lambda: right)


def _conditional(test: List[Any], then: List[Any], otherwise: List[Any]) -> List[Any]:
    result = []
    for value, yes, no in zip(test, then, otherwise):
        if value is NEEDS_AD:
            result.append(NEEDS_AD)
        elif type(value) is bool or type(value) in _NUMBERS:
            result.append(yes if value else no)
        else:
            result.append(UNDEFINED if value is UNDEFINED else ERROR)
    return result
