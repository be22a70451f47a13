"""Jobs read by column: what condor_q works on, without a dict per job unless asked.

A JobSet is the snapshot's columns (see awq.snapshot) followed by jobs given
as dicts (records the master has not taken yet, or any list of ads). A
column is a list with one value per job, None where the job lacks the
attribute; names are found case-insensitively, as ClassAd attributes are.
"""

from __future__ import annotations

# The C module operator.py re-exports: importing operator.py costs a query tool's start
# more than the functions taken from it.
import _operator as operator
from itertools import repeat

from awq.snapshot import Columns, decode_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

    from awq.snapshot import IdLines


_PLAIN = frozenset((str, int, float, bool))


class JobSet:
    def __init__(self, columns: Optional[Columns] = None, extra: Sequence[Dict[str, Any]] = ()):
        self._columns = columns
        self._extra = list(extra)
        self._base = columns.count if columns is not None else 0
        names = columns.names if columns is not None else []
        for job in self._extra:
            names.extend(name for name in job if name not in names)
        self.names: List[str] = list(dict.fromkeys(names))
        self._by_lower: Dict[str, str] = {}
        for name in self.names:
            self._by_lower.setdefault(name.lower(), name)
        self._cache: Dict[str, List[Any]] = {}
        self._changed: Set[str] = set()   # columns set_value wrote: the snapshot's hints are stale

    @classmethod
    def from_ads(cls, ads: Iterable[Dict[str, Any]]) -> "JobSet":
        return cls(None, list(ads))

    def __len__(self) -> int:
        return self._base + len(self._extra)

    def resolve(self, name: str) -> Optional[str]:
        """The stored spelling of an attribute name, or None if no job has it."""
        if name in self._cache or name in self.names:
            return name
        return self._by_lower.get(name.lower())

    def column(self, name: str) -> Optional[List[Any]]:
        """One value per job (None: the job lacks it); None if no job has the attribute."""
        stored = self.resolve(name)
        if stored is None:
            return None
        column = self._cache.get(stored)
        if column is None:
            column = self._load(stored)
            self._cache[stored] = column
        return column

    def _load(self, name: str) -> List[Any]:
        column: List[Any] = []
        if self._columns is not None:
            raw = self._columns.raw_column(name)
            if raw is None:
                column = [None] * self._base
            elif self._columns.plain(name):
                column = list(raw) if self._extra else raw
            else:
                column = [decode_value(value) for value in raw]
        column.extend(job.get(name) for job in self._extra)
        return column

    def plain(self, name: str) -> bool:
        """True if the attribute's values are all str, int, float, bool (or missing)."""
        stored = self.resolve(name)
        if stored is None:
            return True
        if self._columns is not None and stored in self._columns.names \
                and not self._columns.plain(stored):
            return False
        return all(type(job.get(stored)) in _PLAIN or job.get(stored) is None
                   for job in self._extra)

    def kinds(self, name: str) -> Optional[frozenset]:
        """The types of the attribute's values (NoneType where a job lacks it), or None when
        only a scan of the column would tell."""
        stored = self.resolve(name)
        if stored is None:
            return frozenset((type(None),))
        if stored in self._changed:
            return None
        kinds: Set[type] = set()
        if self._base:
            if self._columns is None:
                return None
            known = self._columns.kinds(stored)
            if known is None:
                return None
            kinds.update(known)
        kinds.update(type(job.get(stored)) for job in self._extra)
        return frozenset(kinds)

    def same(self, name: str) -> Optional[Tuple[Any]]:
        """(value,) when every job is known to hold that one value (of one type), else None
        (it may still be so: the column was not scanned)."""
        stored = self.resolve(name)
        if stored is None:
            return (None,) if len(self) else None
        if stored in self._changed or self._columns is None or not self._base:
            return None
        known = self._columns.same(stored)
        if known is None:
            return None
        value = known[0]
        for job in self._extra:
            other = job.get(stored)
            if type(other) is not type(value) or other != value:
                return None
        return known

    def id_texts(self) -> Optional[IdTexts]:
        """Each job's "C.P", when the snapshot holds them and every id is an int; None:
        make them from the ClusterId and ProcId columns."""
        if self._columns is None or "ClusterId" in self._changed or "ProcId" in self._changed:
            return None
        lines = self._columns.id_lines()
        if lines is None:
            return None
        extra = []
        for job in self._extra:
            cluster, proc = job.get("ClusterId"), job.get("ProcId")
            if type(cluster) is not int or type(proc) is not int:
                return None
            extra.append("%d.%d" % (cluster, proc))
        return IdTexts(lines, self._base, extra)

    def touch(self, name: str) -> None:
        """The caller changes the column `name` in place (its list from column()): what
        the snapshot's hints say of it (its kinds, one value throughout) no longer holds."""
        self._changed.add(self.resolve(name) or name)

    def set_value(self, index: int, name: str, value: Any) -> None:
        self._changed.add(self.resolve(name) or name)
        column = self.column(name)
        if column is None:
            column = self._cache[name] = [None] * len(self)
            self.names.append(name)
            self._by_lower.setdefault(name.lower(), name)
        column[index] = value

    def ad(self, index: int) -> Dict[str, Any]:
        """Job number `index` as a dict (every column is read)."""
        result = {}
        for name in self.names:
            value = self.column(name)[index]
            if value is not None:
                result[name] = value
        return result

    def ads(self, indices: Optional[Iterable[int]] = None) -> List[Dict[str, Any]]:
        if indices is None:
            indices = range(len(self))
        columns = [(name, self.column(name)) for name in self.names]
        return [{name: column[i] for name, column in columns if column[i] is not None}
                for i in indices]

    def ids(self) -> List[Any]:
        """(ClusterId, ProcId) of every job, in order."""
        return list(zip(self.column("ClusterId") or [None] * len(self),
                        self.column("ProcId") or [None] * len(self)))


class IdTexts:
    """The "C.P" of the jobs of a JobSet, for a few rows at a time (see snapshot.IdLines)."""

    __slots__ = ("_lines", "_base", "_extra")

    def __init__(self, lines: IdLines, base: int, extra: List[str]):
        self._lines = lines
        self._base = base
        self._extra = extra

    def of(self, rows: Sequence[int]) -> List[str]:
        """The texts of rows (in increasing order; quickest a range, and each call after
        the rows of the one before)."""
        if not rows:
            return []
        first, last = rows[0], rows[-1]
        texts = self._lines.between(first, min(last + 1, self._base))
        if last >= self._base:
            texts += self._extra[max(first - self._base, 0):last + 1 - self._base]
        if isinstance(rows, range) and rows.step == 1:
            return texts
        return list(map(texts.__getitem__, map(operator.sub, rows, repeat(first))))
