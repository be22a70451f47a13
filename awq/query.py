"""condor_q and condor_status: option parsing and output. Pure: ads in, text out."""

from __future__ import annotations

# The C module operator.py re-exports: importing operator.py costs a query tool's start
# more than the functions taken from it.
import _operator as operator
import time
from _bisect import bisect_left
from itertools import compress, islice, repeat

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional,
                        Sequence, Tuple, Union)

    JobList = Union[JobSet, Sequence[Job]]

from awq import adcompile, classad, jobs
from awq.jobs import Job, JobStatus, Target
from awq.jobset import JobSet
from awq.options import UsageError, take_value, take_values

Q_USAGE = """Usage: condor_q [options] [owner | cluster | cluster.proc ...]

Show the alien-workqueue queue, as HTCondor's condor_q does.

Options:
  -constraint EXPR      only jobs for which the ClassAd expression is true (-const)
  -format FMT ATTR      printf-style output, repeatable; nothing printed when ATTR is undefined
  -af[:,tnglhVrj] ATTR... one line per job with the values of ATTRs (-autoformat)
                        t: tab separated  ,: comma separated  n: newline after each value
                        g: blank line between jobs  l: name = value  h: header line
                        j: job id first   r/V: ClassAd syntax
  -limit N              at most N jobs
  -totals               only the totals lines
  -long, -l             every attribute of each job
  -json                 the jobs as JSON
  -nobatch / -batch     one line per job (default) / one line per batch
  -run / -idle          only running / idle jobs
  -hold                 held jobs with when and why they were held (ID OWNER HELD_SINCE HOLD_REASON)
  -allusers, -wide, -global   accepted
  -name NAME            the schedd (only the local one is known)
  -pool HOST            accepted
  -help                 this text

Fails (exit 1) when the master's heartbeat is 200 s old or more.
"""

HISTORY_USAGE = """Usage: condor_history [options] [owner | cluster | cluster.proc ...]

Show jobs that have left the alien-workqueue queue (completed or removed),
newest first, as HTCondor's condor_history does: read from the end of the
history, only as far as -limit needs.

Options:
  -constraint EXPR      only jobs for which the ClassAd expression is true
  -limit N, -match N    at most N jobs
  -forwards             oldest first (default: -backwards, newest first)
  -format FMT ATTR      printf-style output, repeatable
  -af[:,tnglhVrj] ATTR... one line per job with the values of ATTRs (see condor_q -help)
  -long, -l / -json     every attribute
  -name NAME            the schedd (only the local one is known)
  -help                 this text
"""

STATUS_USAGE = """Usage: condor_status -schedd [options]

Show the alien-workqueue schedd's ad (job totals), as HTCondor's condor_status does.

Options:
  -schedd               the schedd ad (without it there are no machine ads to show)
  -af[:lhtrjV,] ATTR... values of ATTRs (-autoformat), e.g. totalRunningJobs totalIdleJobs
  -format FMT ATTR      printf-style output
  -constraint EXPR      only ads for which EXPR is true
  -long, -l / -json     every attribute
  -total                accepted
  -name NAME, -pool HOST as for condor_q
  -help                 this text
"""

# Plain classes, not dataclasses: importing dataclasses costs condor_q more than its work.

class Output:
    """How ads are printed, shared by condor_q, condor_history and condor_status."""

    def __init__(self) -> None:
        self.formats: List[Tuple[str, str]] = []
        self.af_attrs: List[str] = []
        self.af_modifiers = ""
        self.long = False
        self.json = False

    def custom(self) -> bool:
        return bool(self.formats or self.af_attrs or self.long or self.json)


class Selection:
    """Which jobs a command means: ids, owners, constraints (all of them must hold)."""

    def __init__(self, targets: Optional[List[Target]] = None,
                 constraints: Optional[List[str]] = None) -> None:
        self.targets: List[Target] = list(targets or [])
        self.constraints: List[str] = list(constraints or [])

    def matches(self, job: Mapping[str, Any], now: float) -> bool:
        if self.targets and not any(t.matches(job) for t in self.targets):
            return False
        return _matches(job, self.constraints, now)

    @property
    def owners(self) -> List[str]:
        return [t.owner for t in self.targets if t.owner is not None]


class QOptions:
    def __init__(self) -> None:
        self.output = Output()
        self.selection = Selection()
        self.totals = False
        self.batch = False
        self.name: Optional[str] = None
        self.help = False
        self.limit: Optional[int] = None
        self.forwards = False      # condor_history: oldest first
        self.hold = False          # condor_q -hold: HTCondor's table of held jobs and reasons


class StatusOptions:
    def __init__(self) -> None:
        self.output = Output()
        self.constraints: List[str] = []
        self.schedd = False
        self.name: Optional[str] = None
        self.help = False


# ---------------------------------------------------------------- parsing

def check_expression(text: str, flag: str) -> str:
    try:
        classad.Expr(text)
    except classad.ClassAdError as err:
        raise UsageError("%s %r is not a valid ClassAd expression: %s" % (flag, text, err))
    return text


def _parse_output_option(flag: str, raw: str, args: List[str], output: Output) -> bool:
    """Handle an option both tools share; False when flag is not one of them."""
    base, _, modifiers = flag.partition(":")
    if base in ("format", "fmt", "f"):
        fmt, attr = take_values(args, raw, 2)
        output.formats.append((fmt, check_expression(attr, raw)))
    elif base in ("af", "autoformat"):
        attrs = []
        while args and not args[0].startswith("-"):
            attrs.append(check_expression(args.pop(0), raw))
        if not attrs:
            raise UsageError("option %s needs at least one attribute" % raw)
        output.af_attrs.extend(attrs)
        output.af_modifiers += modifiers
    elif base in ("long", "l"):
        output.long = True
    elif base == "json":
        output.json = True
    else:
        return False
    return True


def parse_q_args(argv: Sequence[str], tool: str = "condor_q") -> QOptions:
    """condor_q's options; condor_history takes the same, less the live-queue views."""
    opts = QOptions()
    args = list(argv)
    while args:
        raw = args.pop(0)
        if not raw.startswith("-") or raw == "-":
            opts.selection.targets.append(parse_target(raw))
            continue
        flag = raw.lstrip("-").lower()
        if _parse_output_option(flag, raw, args, opts.output) or \
                _parse_selection_option(flag, raw, args, opts):
            continue
        if tool == "condor_q" and flag in ("totals", "total", "tot"):
            opts.totals = True
        elif tool == "condor_q" and flag in ("batch", "nobatch"):
            opts.batch = flag == "batch"
        elif tool == "condor_q" and flag in ("allusers", "wide", "w", "global", "g", "run",
                                             "hold", "idle", "dag", "nowide", "unused"):
            _filter_flag(flag, opts)
        elif tool == "condor_history" and flag in ("backwards", "forwards"):
            opts.forwards = flag == "forwards"
        elif flag in ("h", "help"):
            opts.help = True
        else:
            raise UsageError("unrecognized option %s (see %s -help)" % (raw, tool))
    return opts


def _parse_selection_option(flag: str, raw: str, args: List[str], opts: QOptions) -> bool:
    """An option condor_q and condor_history share; False when flag is not one of them."""
    if flag in ("constraint", "const", "cons", "constr"):
        opts.selection.constraints.append(check_expression(take_value(args, raw), raw))
    elif flag == "name":
        opts.name = take_value(args, raw)
    elif flag in ("limit", "match", "m"):
        opts.limit = parse_count(take_value(args, raw), raw)
    elif flag in ("pool", "attributes", "attrs"):
        take_value(args, raw)
    else:
        return False
    return True


def _filter_flag(flag: str, opts: QOptions) -> None:
    wanted = {"run": "JobStatus == 2", "hold": "JobStatus == 5", "idle": "JobStatus == 1"}
    if flag in wanted:
        opts.selection.constraints.append(wanted[flag])
    opts.hold = opts.hold or flag == "hold"


def parse_target(text: str) -> Target:
    try:
        return jobs.parse_target(text)
    except ValueError as err:
        raise UsageError(str(err))


def parse_count(text: str, flag: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise UsageError("option %s needs a number, not %r" % (flag, text[:40]))
    return int(text)


def parse_status_args(argv: Sequence[str]) -> StatusOptions:
    opts = StatusOptions()
    args = list(argv)
    while args:
        raw = args.pop(0)
        flag = raw.lstrip("-").lower()
        if not raw.startswith("-"):
            raise UsageError("unexpected argument %r (see condor_status -help)" % raw[:80])
        if _parse_output_option(flag, raw, args, opts.output):
            continue
        if flag in ("schedd", "scheduler"):
            opts.schedd = True
        elif flag in ("constraint", "const"):
            opts.constraints.append(check_expression(take_value(args, raw), raw))
        elif flag == "name":
            opts.name = take_value(args, raw)
        elif flag == "pool":
            take_value(args, raw)
        elif flag in ("total", "totals", "any", "wide", "w"):
            continue
        elif flag in ("h", "help"):
            opts.help = True
        else:
            raise UsageError("unrecognized option %s (see condor_status -help)" % raw)
    return opts


# ---------------------------------------------------------------- selecting

def as_job_set(job_list: JobList) -> JobSet:
    return job_list if isinstance(job_list, JobSet) else JobSet.from_ads(job_list)


def select_jobs(selection: Selection, job_list: JobList, now: float) -> List[Job]:
    job_set = as_job_set(job_list)
    return job_set.ads(select_indices(selection, job_set, now))


def select_indices(selection: Selection, job_set: JobSet, now: float) -> List[int]:
    indices: Sequence[int] = range(len(job_set))
    if selection.targets:
        indices = _targeted(selection.targets, job_set, indices)
    return adcompile.select(job_set, selection.constraints, now, indices)


def _targeted(targets: Sequence[Target], job_set: JobSet,
              indices: Sequence[int]) -> Sequence[int]:
    """Target.matches, over columns (indices itself when every job matches)."""
    owners = {t.owner for t in targets if t.owner is not None}
    clusters = {t.cluster for t in targets if t.owner is None and t.proc is None}
    pairs = {(t.cluster, t.proc) for t in targets if t.owner is None and t.proc is not None}
    owner = job_set.same("Owner")
    if owner is not None and owner[0] in owners:
        return indices   # one owner throughout (a site's queue), and it is asked for
    nothing = [None] * len(job_set)
    matches = []
    if owners:
        matches.append(map(owners.__contains__, job_set.column("Owner") or nothing))
    if clusters or pairs:
        cluster = job_set.column("ClusterId") or nothing
        if clusters:
            matches.append(map(clusters.__contains__, cluster))
        if pairs:
            proc = job_set.column("ProcId") or nothing
            matches.append(map(pairs.__contains__, zip(cluster, proc)))
    if not matches:
        return []
    matched = list(matches[0]) if len(matches) == 1 else list(map(any, zip(*matches)))
    return list(compress(indices, adcompile.picked(matched, indices)))


def _matches(ad: Mapping[str, Any], constraints: Sequence[str], now: float) -> bool:
    return all(classad.is_true(classad.evaluate(c, ad, now)) for c in constraints)


# ---------------------------------------------------------------- printing ads

def render_ads(output: Output, job_list: JobList, now: float,
               indices: Optional[Sequence[int]] = None) -> str:
    return "".join(render_ads_chunks(output, job_list, now, indices))


def render_ads_chunks(output: Output, job_list: JobList, now: float,
                      indices: Optional[Sequence[int]] = None) -> Iterator[str]:
    """-format, -af, -long, -json: the text, CHUNK_ROWS ads at a time for -format and -af."""
    job_set = as_job_set(job_list)
    if indices is None or len(indices) == len(job_set):   # in order: every job
        indices = range(len(job_set))
    if output.json:
        import json  # only here: a query tool starts faster without it
        yield json.dumps([_json_ad(ad) for ad in job_set.ads(indices)], indent=2) + "\n"
    elif output.long:
        yield "".join("".join("%s = %s\n" % (k, classad.unparse(ad[k]))
                              for k in sorted(ad, key=str.lower)) + "\n"
                      for ad in job_set.ads(indices))
    elif output.formats:
        formatters = [(classad.printf_formatter(fmt), attr, _plain_kinds(attr, job_set))
                      for fmt, attr in output.formats]
        for rows in _chunks(indices):
            yield _joined([cell for text_of, attr, kinds in formatters
                           for cell in _text_cells(_values(attr, job_set, now, rows), text_of,
                                                   kinds)],
                          len(rows))
    else:
        yield _autoformat_header(output)
        for rows in _chunks(indices):
            yield _autoformat(output, job_set, now, rows)


def _plain_kinds(attr: str, job_set: JobSet) -> Optional[frozenset]:
    """The types of an expression's values when it is an attribute every job holds a plain
    value of, as the snapshot's hints say (None: scan the values)."""
    tree = classad.parse(attr)
    if tree[0] != "attr" or "." in tree[1]:
        return None
    kinds = job_set.kinds(tree[1])
    return None if kinds is None or type(None) in kinds else kinds


def _text_cells(values: List[Any], text_of: Callable[[Any], str],
                kinds: Optional[frozenset] = None) -> List[List[str]]:
    """[text_of(v) for v in values] as cells to join: for a plain `%d` of integers or `%s`
    of strings (an ID, a command: a text per job) the values' own texts with the format's
    constant text before and after as cells of their own, so no string is made per job
    but the number's; else each distinct value formatted once. kinds: the values' types,
    when known without a scan."""
    parts = getattr(text_of, "plain_parts", None)
    if parts is not None:
        before, conversion, after = parts
        if kinds is None:
            kinds = frozenset(map(type, values))
        if kinds == {int} and conversion == "d" or kinds == {str} and conversion == "s":
            texts = list(map(str, values)) if conversion == "d" else values
            return ([[before] * len(values)] if before else []) + [texts] \
                + ([[after] * len(values)] if after else [])
    return [_each_value([values], lambda row: text_of(row[0]), [kinds])]


def _joined(cells: List[List[str]], rows: int) -> str:
    """Row after row, each row's cells in order: one join, without a string per row.
    Neighbouring cells that hold one text throughout (a separator, the newline, an
    attribute no job has) are joined once, not once per row; when one cell alone varies
    (-format "%d " ClusterId -format "%s\\n" Cmd over pilots) the constant text around
    it is the join's separator, and no list of every cell is made."""
    if not rows:
        return ""
    merged: List[List[str]] = []
    constant: List[bool] = []
    for texts in cells:
        alike = _constant(texts)
        if merged and alike and constant[-1]:
            merged[-1] = [merged[-1][0] + texts[0]] * rows
        else:
            merged.append(texts)
            constant.append(alike)
    if constant.count(False) == 1:
        at = constant.index(False)
        before = merged[at - 1][0] if at else ""
        after = merged[at + 1][0] if at + 1 < len(merged) else ""
        return before + (after + before).join(merged[at]) + after
    return _interleaved(merged, rows)


def _constant(texts: List[str]) -> bool:
    """Whether every text is the first (a list of one text repeated: checked by identity
    in C; a column of distinct texts is told by its first and last)."""
    return texts[0] is texts[-1] and texts.count(texts[0]) == len(texts)


def _values(attr: str, job_set: JobSet, now: float, indices: Sequence[int]) -> List[Any]:
    """attr (an expression) evaluated for each job in indices."""
    return adcompile.evaluate_all(attr, job_set, now, indices)


def _autoformat(output: Output, job_set: JobSet, now: float, indices: Sequence[int]) -> str:
    """-af's lines with HTCondor's modifiers: , t n (value separators), g (blank line
    between ads), l (name = value), r/V (ClassAd syntax), j (job id first); h (the header)
    is _autoformat_header's."""
    mods = output.af_modifiers
    separator = _af_separator(mods)
    between = "\n\n" if "g" in mods else "\n"
    text_of = classad.unparse if "r" in mods or "V" in mods else classad.format_autoformat
    columns = []
    if "j" in mods:
        columns.append(list(map(_id_text, _rows_of(job_set.column("ClusterId"), indices),
                                _rows_of(job_set.column("ProcId"), indices))))
    for attr in output.af_attrs:
        if "l" in mods:
            named = "%s = %%s" % attr.replace("%", "%%")
            columns.append(_each_value([_values(attr, job_set, now, indices)],
                                       lambda row, named=named: named % text_of(row[0])))
        else:
            columns.append(_af_texts(_values(attr, job_set, now, indices), text_of,
                                     _plain_kinds(attr, job_set)))
    if not columns:
        return between * len(indices)
    cells: List[List[str]] = []
    for column in columns:
        cells.extend((column, [separator] * len(indices)))
    cells[-1] = [between] * len(indices)
    return _joined(cells, len(indices))


def _autoformat_header(output: Output) -> str:
    """-af:h's header line (nothing without h)."""
    mods = output.af_modifiers
    if "h" not in mods:
        return ""
    return _af_separator(mods).join((["ID"] if "j" in mods else []) + output.af_attrs) \
        + ("\n\n" if "g" in mods else "\n")


def _af_separator(mods: str) -> str:
    if "n" in mods:
        return "\n"
    return "\t" if "t" in mods else (", " if "," in mods else " ")


def _af_texts(values: List[Any], text_of: Callable[[Any], str],
              kinds: Optional[frozenset] = None) -> List[str]:
    """-af's text of each value: strings are their own text under format_autoformat.
    kinds: the values' types, when known without a scan."""
    if text_of is classad.format_autoformat and \
            (kinds if kinds is not None else set(map(type, values))) == {str}:
        return values
    return _each_value([values], lambda row: text_of(row[0]), [kinds])


def _id_text(cluster: Any, proc: Any) -> str:
    try:
        return jobs.format_job_id((int(cluster), int(proc)))
    except (TypeError, ValueError):
        return "%s.%s" % (cluster, proc)


def _job_id_text(ad: Mapping[str, Any]) -> str:
    return _id_text(ad.get("ClusterId"), ad.get("ProcId"))


def _json_ad(ad: Mapping[str, Any]) -> Dict[str, Any]:
    result = {}
    for name, value in ad.items():
        if isinstance(value, classad.Expr):
            value = "\\/Expr(%s)\\/" % value.text
        elif value is classad.UNDEFINED or value is classad.ERROR:
            value = None
        result[name] = value
    return result


# ---------------------------------------------------------------- condor_q

def render_q(opts: QOptions, job_list: JobList, *, now: float, schedd_name: str) -> str:
    return "".join(render_q_chunks(opts, job_list, now=now, schedd_name=schedd_name))


def render_q_chunks(opts: QOptions, job_list: JobList, *, now: float,
                    schedd_name: str) -> Iterator[str]:
    """condor_q's answer, a chunk of text at a time (see CHUNK_ROWS)."""
    job_set = as_job_set(job_list)
    selected = select_indices(opts.selection, job_set, now)
    if opts.limit is not None:
        selected = selected[:opts.limit]
    if opts.output.custom():
        yield from render_ads_chunks(opts.output, job_set, now, selected)
        return
    if opts.hold and not opts.totals:
        yield _banner(schedd_name, now) + _held_table(job_set, selected, now) + "\n" \
            + _totals_lines(job_set, selected, opts.selection.owners)
        return
    if opts.selection.constraints and not opts.totals:
        # Upstream's contract, which AliEn counts with `wc -l`: one line per job, nothing else.
        yield from _job_table_chunks(job_set, selected, now, header=False)
        return
    totals = _totals_lines(job_set, selected, opts.selection.owners)
    if opts.totals:
        yield totals
        return
    header = _banner(schedd_name, now)
    if opts.batch:
        yield "".join((header, _batch_table(job_set.ads(selected), now), "\n", totals))
        return
    yield from _job_table_chunks(job_set, selected, now, before=header, after="\n" + totals)


def _banner(schedd_name: str, now: float) -> str:
    return "\n\n-- Schedd: %s : <127.0.0.1> @ %s\n" % (
        schedd_name, time.strftime("%m/%d/%y %H:%M:%S", time.localtime(now)))


def _held_table(job_set: JobSet, selected: Sequence[int], now: float) -> str:
    """condor_q -hold: HTCondor's columns ID, OWNER, HELD_SINCE (when the job entered its
    status) and HOLD_REASON."""
    def column(name: str) -> List[Any]:   # only these columns: a job's others stay packed
        values = job_set.column(name) or [None] * len(job_set)
        return [values[i] for i in selected]

    lines = [" ID          OWNER          HELD_SINCE  HOLD_REASON\n"]
    for cluster, proc, owner, since, reason in zip(
            column("ClusterId"), column("ProcId"), column("Owner"),
            column("EnteredCurrentStatus"), column("HoldReason")):
        lines.append("%-12s %-14s %11s %s\n" % (
            _id_text(cluster, proc), _printable(_text(owner)[:14]), _date(since, now),
            _printable(_text(reason))))
    return "".join(lines)


def _job_table(job_set: JobSet, selected: Sequence[int], now: float, header: bool = True,
               before: str = "", after: str = "") -> str:
    return "".join(_job_table_chunks(job_set, selected, now, header, before, after))


_TABLE_HEADER = " ID          OWNER            SUBMITTED     RUN_TIME ST PRI SIZE  CMD\n"
_TABLE_COLUMNS = ("Owner", "QDate", "JobCurrentStartDate", "JobStatus", "JobPrio", "Cmd",
                  "Arguments")


def _job_table_chunks(job_set: JobSet, selected: Sequence[int], now: float,
                      header: bool = True, before: str = "", after: str = "") -> Iterator[str]:
    """One line per job (condor_q may print 100,000 of them), CHUNK_ROWS lines at a time,
    each chunk built column by column in C loops: each distinct combination of the cells
    after the ID is formatted once, and the lines are one join over the cells, without a
    string per line. `before` and `after` (the banner, the totals) come first and last."""
    yield before + (_TABLE_HEADER if header else "")
    if len(selected) == len(job_set):   # selected is in order: then it is every job
        selected = range(len(job_set))
    # A column every job holds one value of is not read per job (nor read at all).
    sames = [job_set.same(name) for name in _TABLE_COLUMNS]
    kinds = [job_set.kinds(name) for name in _TABLE_COLUMNS]
    columns = [job_set.column(name) if same is None else None
               for name, same in zip(_TABLE_COLUMNS, sames)]
    id_texts = job_set.id_texts()
    if id_texts is None:
        clusters, procs = job_set.column("ClusterId"), job_set.column("ProcId")
    one_proc = job_set.same("ProcId") is not None
    kept: Dict[Any, Any] = {}   # the texts of lines, across chunks
    rest_of_line = _LinesOfOneTable(now)
    padded_rest_of_line = _LinesOfOneTable(now, padded=True)

    for rows in _chunks(selected, by_span=id_texts is not None):
        rest = [_rows_of(column, rows) if same is None else same * len(rows)
                for column, same in zip(columns, sames)]
        if id_texts is None:
            cells = _id_cells(_rows_of(clusters, rows), _rows_of(procs, rows))
            cells.append(_each_value(rest, rest_of_line, kinds, sames))
        else:
            # The spaces after the ID go with the rest of the line: one cell, keyed by the
            # ID's length too (one length throughout most chunks).
            texts = id_texts.of(rows)
            length = len(texts[0])
            if one_proc and length == len(texts[-1]) and texts[0][0] != "-":
                # IDs in order, all of one proc: the clusters' texts grow in length, so
                # the first and the last are as long as every one between.
                lengths, same_length = [length] * len(texts), (length,)
            else:
                lengths, same_length = list(map(len, texts)), None
            cells = [texts, _each_value([lengths] + rest, padded_rest_of_line,
                                        [_INT] + kinds, [same_length] + sames, kept)]
        yield _interleaved(cells, len(rows))
    yield after


_INT = frozenset((int,))


# Lines (or -format/-af rows) made and written at a time. A query tool's answer is never
# one string (nor one encoded copy of it): the pages a fresh process touches for the first
# time cost it more than the text on them, and chunk after chunk reuses the same memory.
CHUNK_ROWS = 2048


def _chunks(selected: Sequence[int], by_span: bool = False) -> Iterator[Sequence[int]]:
    """selected (in order) CHUNK_ROWS at a time: ranges when it is a range. by_span: a
    chunk of some jobs spans at most CHUNK_ROWS jobs (the table's ID texts are split for
    every job a chunk spans)."""
    if not by_span or isinstance(selected, range):
        for start in range(0, len(selected), CHUNK_ROWS):
            yield selected[start:start + CHUNK_ROWS]
        return
    start = 0
    while start < len(selected):
        stop = bisect_left(selected, selected[start] + CHUNK_ROWS, start)
        yield selected[start:stop]
        start = stop


def _rows_of(values: Optional[List[Any]], rows: Sequence[int]) -> List[Any]:
    """values[i] for i in rows (None: a column no job has)."""
    if values is None:
        return [None] * len(rows)
    if isinstance(rows, range) and rows.step == 1:
        return values[rows.start:rows.stop]
    return list(map(values.__getitem__, rows))


def _interleaved(cells: List[List[str]], rows: int) -> str:
    """Row after row, each row's cells in order, in one join."""
    width = len(cells)
    flat: List[Any] = [None] * (width * rows)
    for position, texts in enumerate(cells):
        flat[position::width] = texts
    return "".join(flat)


# Spaces after an ID of each length, so that the ID and its spaces take 13 characters
# (at least one space after a longer one).
_ID_PADDING = {length: " " * (13 - length) for length in range(12)}


def _id_cells(clusters: List[Any], procs: List[Any]) -> List[List[str]]:
    """The ID column as cells to join: cluster, ".proc", padding."""
    if set(map(type, clusters)) | set(map(type, procs)) == {int}:
        cluster_texts = list(map(str, clusters))
        distinct_procs = set(procs)
        if len(distinct_procs) == 1:
            # One proc in every cluster (AliEn's): ".proc" and the padding are one cell,
            # chosen by the length of the cluster's text alone.
            proc_text = ".%d" % distinct_procs.pop()
            after = {length: proc_text + _ID_PADDING.get(length + len(proc_text), " ")
                     for length in set(map(len, cluster_texts))}
            return [cluster_texts, list(map(after.__getitem__, map(len, cluster_texts)))]
        proc_text = {proc: ".%d" % proc for proc in set(procs)}
        proc_texts = list(map(proc_text.__getitem__, procs))
    else:
        cluster_texts = [_id_text(cluster, proc) for cluster, proc in zip(clusters, procs)]
        proc_texts = [""] * len(clusters)
    lengths = map(operator.add, map(len, cluster_texts), map(len, proc_texts))
    return [cluster_texts, proc_texts, list(map(_ID_PADDING.get, lengths, repeat(" ")))]


def _rest_of_line(key: Tuple[Any, ...], now: float) -> str:
    """The cells after a job's ID: OWNER SUBMITTED RUN_TIME ST PRI SIZE CMD."""
    owner, qdate, start, status, prio, cmd, arguments = key
    return _line_head(owner, qdate, now) + _line_run_time(start, status, now) \
        + _line_tail(status, prio, cmd, arguments)


def _line_head(owner: Any, qdate: Any, now: float) -> str:
    return "%-14s %11s " % (_printable(_text(owner)[:14]), _date(qdate, now))


def _line_run_time(start: Any, status: Any, now: float) -> str:
    return "%12s" % _run_time(status, start if status == JobStatus.RUNNING else None, now)


def _line_tail(status: Any, prio: Any, cmd: Any, arguments: Any) -> str:
    command = (_text(cmd).rsplit("/", 1)[-1] + " "
               + (arguments if type(arguments) is str else str(arguments or ""))).strip()[:60]
    return " %-2s %-3s 0.0   %s\n" % (jobs.status_letter(status), 0 if prio is None else prio,
                                       _printable(command))


class _LinesOfOneTable:
    """_rest_of_line for the rows of one table: the cells before and after RUN_TIME are
    made once per distinct value of what they show (with its type: 1, 1.0 and true print
    apart), so a queue whose running jobs started at thousands of different times formats
    little more than their run times. padded: each key starts with the length of the
    row's ID, and the text with the spaces after the ID."""

    def __init__(self, now: float, padded: bool = False):
        self._now = now
        self._padded = padded
        self._heads: Dict[Tuple[Any, ...], str] = {}
        self._tails: Dict[Tuple[Any, ...], str] = {}

    def __call__(self, key: Tuple[Any, ...]) -> str:
        if self._padded:
            length, owner, qdate, start, status, prio, cmd, arguments = key
            padding = _ID_PADDING.get(length, " ")
        else:
            owner, qdate, start, status, prio, cmd, arguments = key
            padding = ""
        try:
            head = self._heads.get((type(owner), owner, type(qdate), qdate))
            if head is None:
                head = self._heads[(type(owner), owner, type(qdate), qdate)] = \
                    _line_head(owner, qdate, self._now)
            tail_key = (type(status), status, type(prio), prio, type(cmd), cmd,
                        type(arguments), arguments)
            tail = self._tails.get(tail_key)
            if tail is None:
                tail = self._tails[tail_key] = _line_tail(status, prio, cmd, arguments)
        except TypeError:   # a value that is no key (a list)
            return padding + _rest_of_line(key[1:] if self._padded else key, self._now)
        # _line_run_time's text, written out: this runs once per running job that started
        # at a time of its own.
        seconds = 0
        if status == JobStatus.RUNNING and isinstance(start, int):
            seconds = max(0, int(self._now) - start)
        return "%s%s%12s%s" % (padding, head, _duration(seconds), tail)


_NUMBER_KINDS = frozenset((bool, int, float))


def _each_value(columns: List[List[Any]], text_of: Callable[[Tuple[Any, ...]], str],
                known_kinds: Optional[Sequence[Optional[frozenset]]] = None,
                known_same: Optional[Sequence[Optional[Tuple[Any]]]] = None,
                kept: Optional[Dict[Any, Any]] = None) -> List[str]:
    """[text_of(row) for row in zip(*columns)], computing each distinct row's text once.
    Only the columns that vary make a row's key: a column holding one value throughout
    (the owner, the command of a queue of pilots) costs one pass, not a tuple slot per job.
    known_kinds: per column, the types its values may have (None: scan it); known_same:
    per column, (value,) when every entry is known to be that value (None: scan it);
    kept: texts made by earlier calls for the same columns (a table's chunks), used when
    every column's kinds are known (a kind scanned in one chunk may differ in the next)."""
    count = len(columns[0]) if columns else 0
    if count == 0:
        return []
    kinds = set()
    for position, values in enumerate(columns):
        known = known_kinds[position] if known_kinds else None
        kinds.update(map(type, values) if known is None else known)
    if len(kinds & _NUMBER_KINDS) > 1 or list in kinds:
        # True == 1 == 1.0: values of different kinds must not share one text; nor may a
        # list and another equal to it ([1] == [1.0]), and a list is no key.
        return list(map(text_of, zip(*columns)))
    varying = [position for position, values in enumerate(columns)
               if (not known_same or known_same[position] is None)
               and (values[0] != values[-1] or values.count(values[0]) != count)]
    row = [values[0] for values in columns]

    def text_with(key: Tuple[Any, ...]) -> str:
        for position, value in zip(varying, key):
            row[position] = value
        return text_of(tuple(row))

    if not varying:
        return [text_of(tuple(row))] * count
    try:
        if len(varying) == 1:
            texts = _Texts(lambda value: text_with((value,)))
        else:
            texts = _Texts(text_with)
        if kept is not None and known_kinds and None not in known_kinds:
            # The texts depend on which columns vary and on the others' one value.
            texts = kept.setdefault((tuple(varying), tuple(
                value for position, value in enumerate(row) if position not in varying)), texts)
        if len(varying) == 1:
            return list(map(texts.__getitem__, columns[varying[0]]))
        return list(map(texts.__getitem__, zip(*[columns[at] for at in varying])))
    except TypeError:   # a value that is no key
        return list(map(text_of, zip(*columns)))


class _Texts(dict):
    """Texts by key, each made when first asked for (the lookups stay in C)."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[Any], str]):
        super().__init__()
        self._make = make

    def __missing__(self, key: Any) -> str:
        text = self[key] = self._make(key)
        return text


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _printable(text: str) -> str:
    """Job data must not drive the terminal: control characters are escaped."""
    return text if text.isprintable() else classad.escape_control(text)


def _batch_table(selected: Sequence[Job], now: float) -> str:
    groups: Dict[Tuple[str, str], List[Job]] = {}
    for job in selected:
        batch = job.get("JobBatchName") or "ID: %s" % job.get("ClusterId")
        key = (classad.escape_control(str(job.get("Owner", ""))), classad.escape_control(str(batch)))
        groups.setdefault(key, []).append(job)
    lines = ["OWNER          BATCH_NAME            SUBMITTED   DONE   RUN    IDLE   HOLD  TOTAL JOB_IDS"]
    for (owner, batch), members in groups.items():
        by_status = jobs.count_by_status(members)
        count = lambda status: by_status[status] or "_"
        ids = [_job_id_text(j) for j in members]
        lines.append("%-14s %-20s %11s %6s %6s %6s %6s %6d %s" % (
            owner, batch, _date(min(j.get("QDate", 0) for j in members), now),
            count(JobStatus.COMPLETED), count(JobStatus.RUNNING), count(JobStatus.IDLE),
            count(JobStatus.HELD), len(members),
            ids[0] if len(ids) == 1 else "%s-%s" % (ids[0], ids[-1])))
    return "".join(line + "\n" for line in lines)


def _date(stamp: Any, now: float) -> str:
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return "?"
    return time.strftime("%m/%d %H:%M", time.localtime(stamp))


def _run_time(status: Any, start: Any, now: float) -> str:
    seconds = 0
    if status == JobStatus.RUNNING and isinstance(start, int):
        seconds = max(0, int(now) - start)
    return _duration(seconds)


def _duration(seconds: int) -> str:
    """HTCondor's RUN_TIME column: days+hh:mm:ss."""
    days, rest = divmod(seconds, 86400)
    return "%d+%02d:%02d:%02d" % (days, rest // 3600, rest % 3600 // 60, rest % 60)


def _statuses(job_set: JobSet, indices: Optional[Sequence[int]] = None) -> List[Any]:
    column = job_set.column("JobStatus") or [None] * len(job_set)
    return column if indices is None else [column[i] for i in indices]


_STATUSES_COUNTED = (JobStatus.COMPLETED, JobStatus.REMOVED, JobStatus.IDLE, JobStatus.RUNNING,
                     JobStatus.HELD, JobStatus.SUSPENDED)


def _counts(statuses: Sequence[Any]) -> str:
    by_status = _count_statuses(statuses)
    return ("%d jobs; %d completed, %d removed, %d idle, %d running, %d held, %d suspended"
            % ((len(statuses),) + tuple(map(by_status.__getitem__, _STATUSES_COUNTED))))


def _count_statuses(statuses: Sequence[Any]) -> Dict[int, int]:
    """How many of the statuses are each of _STATUSES_COUNTED."""
    counted = statuses if isinstance(statuses, list) else list(statuses)
    try:
        # Statuses are small integers: as bytes, each is counted at memory speed. Only
        # integers (and booleans) 0-255 convert, and those compare as list.count's do.
        counted = bytes(counted)
    except (TypeError, ValueError):
        pass   # list.count compares as Counter's keys do (1 == 1.0 == True), in C
    return {status: counted.count(status) for status in _STATUSES_COUNTED}


def _totals_lines(job_set: JobSet, selected: Sequence[int], owners: Sequence[str]) -> str:
    everything = _counts(_statuses(job_set))
    lines = ["Total for query: " + (everything if len(selected) == len(job_set)  # in order
                                    else _counts(_statuses(job_set, selected)))]
    for owner in owners:
        mine = _targeted([Target(owner=owner)], job_set, range(len(job_set)))
        lines.append("Total for %s: %s" % (owner, everything if len(mine) == len(job_set)
                                           else _counts(_statuses(job_set, mine))))
    lines.append("Total for all users: " + everything)
    return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------- condor_status

def schedd_ad(job_list: JobList, schedd_name: str) -> Dict[str, Any]:
    job_set = as_job_set(job_list)
    by_status = _count_statuses(_statuses(job_set))
    return {"MyType": "Scheduler", "Name": schedd_name, "Machine": schedd_name,
            "TotalRunningJobs": by_status[JobStatus.RUNNING],
            "TotalIdleJobs": by_status[JobStatus.IDLE], "TotalHeldJobs": by_status[JobStatus.HELD],
            "TotalRemovedJobs": by_status[JobStatus.REMOVED], "TotalJobAds": len(job_set),
            "TotalSchedulerJobsRunning": 0, "TotalLocalJobsRunning": 0, "TotalFlockedJobs": 0,
            "TotalSuspendedJobs": by_status[JobStatus.SUSPENDED]}


def render_status(opts: StatusOptions, job_list: JobList, *, now: float,
                  schedd_name: str) -> str:
    if not opts.schedd:
        return ""  # no machine ads: Work Queue workers are not HTCondor slots
    ads = [ad for ad in [schedd_ad(job_list, schedd_name)] if _matches(ad, opts.constraints, now)]
    if opts.output.custom():
        return render_ads(opts.output, ads, now)
    lines = ["Name                 Machine              RunningJobs   IdleJobs   HeldJobs", ""]
    for ad in ads:
        lines.append("%-20s %-20s %11d %10d %10d" % (ad["Name"][:20], ad["Machine"][:20],
                                                   ad["TotalRunningJobs"], ad["TotalIdleJobs"],
                                                   ad["TotalHeldJobs"]))
    return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------- condor_history

HISTORY_CHUNK = 256   # history jobs selected at a time; -limit stops after the chunk that fills it


def render_history(opts: QOptions, newest_first: Iterable[Job], *, now: float) -> str:
    """Finished jobs in the order they left the queue, newest first (HTCondor reads its
    history file from the end), or oldest first with -forwards. Without -forwards only as
    many jobs are taken from newest_first as -limit needs."""
    if opts.forwards:
        selected = select_jobs(opts.selection, list(newest_first)[::-1], now)
        if opts.limit is not None:
            selected = selected[:opts.limit]
    else:
        selected = _first_selected(opts.selection, iter(newest_first), opts.limit, now)
    if opts.output.custom():
        return render_ads(opts.output, selected, now)
    lines = [" ID     OWNER          SUBMITTED   RUN_TIME     ST COMPLETED   CMD"]
    for job in selected:
        lines.append(" %-6s %-14s %11s %12s %-2s %11s %s" % (
            _job_id_text(job), classad.escape_control(str(job.get("Owner", ""))[:14]),
            _date(job.get("QDate"), now), _wall_time(job), jobs.status_letter(job.get("JobStatus")),
            _date(_finished_at(job) or None, now),
            classad.escape_control((str(job.get("Cmd", "")) + " "
                                    + str(job.get("Arguments") or "")).strip()[:60])))
    return "".join(line + "\n" for line in lines)


def _first_selected(selection: Selection, candidates: Iterator[Job], limit: Optional[int],
                    now: float) -> List[Job]:
    """The first jobs (up to limit) that selection matches, taking candidates a chunk at a
    time: the constraint is evaluated by column over a chunk, and no more is read."""
    selected: List[Job] = []
    while limit is None or len(selected) < limit:
        size = HISTORY_CHUNK if limit is None else min(HISTORY_CHUNK, limit - len(selected))
        chunk = list(islice(candidates, size))
        if not chunk:
            break
        selected.extend(select_jobs(selection, chunk, now))
    return selected if limit is None else selected[:limit]


def _finished_at(job: Job) -> float:
    for name in ("CompletionDate", "EnteredCurrentStatus"):
        value = job.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 0.0


def _wall_time(job: Job) -> str:
    start, end = job.get("JobCurrentStartDate"), _finished_at(job)
    return _duration(int(end - start) if isinstance(start, int) and end >= start else 0)
