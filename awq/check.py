"""alien_work_queue --check: verify a spool offline and say what a master would recover.

Read only: it opens nothing for writing and takes no lock, so it runs beside a
live master as well as on a stopped one (what it shows may then move while the
master works). Each finding has a level: fine; the master recovers it by
itself on its next start (and says so in its log); or it needs the admin
because starting would lose jobs or reuse ids. The exit status is the worst
level: 0 sound, 2 the master recovers it, 1 it needs you (as for any error
that stops the check).
"""

from __future__ import annotations

import os
import time
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

from awq import jobs, snapshot
from awq.spool import Spool, SpoolError
from awq.spool.codec import SnapshotDamaged
from awq.spool.files import TEMP_NAME_PATTERN, visible_names
from awq.spool.published import DAMAGED_SUFFIX
from awq.spool.records import UPSTREAM_PREFIX, cluster_of_record
from awq.spool.starts import read_journal

SOUND = 0
NEEDS_ADMIN = 1
RECOVERS = 2
_SEVERITY = {SOUND: 0, RECOVERS: 1, NEEDS_ADMIN: 2}
_LABEL = {SOUND: "ok", RECOVERS: "recovers", NEEDS_ADMIN: "NEEDS YOU"}


class Finding(NamedTuple):
    level: int      # SOUND, RECOVERS or NEEDS_ADMIN
    text: str


class Generation(NamedTuple):
    path: str
    state: Optional[Dict]    # None: missing or unreadable
    problem: str             # why it is unreadable ("" when it reads, or is missing)
    refused: bool = False    # refused for its owner, mode or format: never fallen back from


def check_spool(spool: Spool) -> List[Finding]:
    """Everything --check reports, in the order a master would meet it on start."""
    findings: List[Finding] = []
    if spool.master_files.is_running():
        findings.append(Finding(SOUND, "a master (PID %s) is running on this spool: this check "
                                       "only reads, and what it shows may move meanwhile"
                                % (spool.master_files.pid() or "unknown")))
    used = _check_generations(spool, findings)
    in_snapshot: Set[jobs.JobId] = set(used["jobs"]) if used else set()
    held = set(used.get("records") or ()) if used else set()
    highest = _check_records(spool, in_snapshot, held, findings)
    if used:
        highest = max([highest, int(used.get("max_cluster_id", 0) or 0)]
                      + [jid[0] for jid in in_snapshot])
    _check_counter(spool, highest, findings)
    _check_start_journal(spool, used, findings)
    _check_leftovers(spool, findings)
    return findings


def worst_level(findings: List[Finding]) -> int:
    return max((f.level for f in findings), key=_SEVERITY.__getitem__, default=SOUND)


def render(spool: Spool, findings: List[Finding]) -> str:
    lines = ["%-9s %s" % (_LABEL[f.level] + ":", f.text) for f in findings]
    level = worst_level(findings)
    lines.append({SOUND: "spool %s: sound",
                  RECOVERS: "spool %s: the master recovers the above by itself on its next "
                            "start, losing no accepted job",
                  NEEDS_ADMIN: "spool %s: needs you before the master starts (see NEEDS YOU)"}
                 [level] % spool.root)
    return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------- the snapshot

def _read_generation(spool: Spool, path: str) -> Generation:
    try:
        columns = spool.published.open_generation(path)
        return Generation(path, columns.state(), "")
    except FileNotFoundError:
        return Generation(path, None, "")
    except (SnapshotDamaged, snapshot.SnapshotError) as err:
        return Generation(path, None, str(err) or "damaged")
    except SpoolError as err:
        return Generation(path, None, str(err), refused=True)


def _describe(generation: Generation) -> str:
    state = generation.state or {}
    counts = jobs.count_by_status(state.get("jobs", {}).values())
    written = state.get("written")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(written)) \
        if isinstance(written, (int, float)) else "at an unknown time"
    return "%d jobs (%s), written %s" % (
        len(state.get("jobs", {})),
        ", ".join("%d %s" % (n, jobs.status_name(s)) for s, n in sorted(counts.items())) or "none",
        when)


def _check_generations(spool: Spool, findings: List[Finding]) -> Optional[Dict]:
    """The state a master would restore, after noting each generation's condition."""
    current, previous = (_read_generation(spool, path) for path in spool.published.generations())
    # The master reads the previous generation only when the current one does not read.
    for generation in (current,) if current.state is not None else (current, previous):
        if generation.refused:
            findings.append(Finding(NEEDS_ADMIN, "the master refuses to start on %s: %s"
                                    % (generation.path, generation.problem)))
            return None
    if current.state is not None:
        findings.append(Finding(SOUND, "%s: %s" % (current.path, _describe(current))))
        if previous.problem:
            findings.append(Finding(SOUND, "%s (the previous generation) cannot be used (%s): the "
                                           "next snapshot replaces it" % (previous.path,
                                                                          previous.problem)))
        return current.state
    if previous.state is not None:
        why = ("is damaged (%s)" % current.problem) if current.problem else "is missing"
        findings.append(Finding(RECOVERS, "%s %s: the master restores the previous generation "
                                          "%s: %s%s" % (
                                              current.path, why, previous.path,
                                              _describe(previous),
                                              "; the damaged file is set aside"
                                              if current.problem else "")))
        return previous.state
    damaged = [g for g in (current, previous) if g.problem]
    if damaged:
        findings.append(Finding(NEEDS_ADMIN, "no readable snapshot generation (%s): the master "
                                             "refuses to start; the jobs only they held are "
                                             "lost, the records below are not" % "; ".join(
                                                 "%s: %s" % (g.path, g.problem) for g in damaged)))
    else:
        findings.append(Finding(SOUND, "no snapshot yet (a master never saved one here)"))
    return None


# ---------------------------------------------------------------- records and requests

def _check_records(spool: Spool, in_snapshot: Set[jobs.JobId], held: Set[str],
                   findings: List[Finding]) -> int:
    """Note what a master does with each record; returns the highest cluster id seen."""
    to_take: List[Tuple[str, int]] = []
    saved: List[str] = []
    highest = 0
    for name in spool.records.pending():
        cluster = cluster_of_record(name)
        highest = max(highest, cluster or 0)
        if name in held:
            saved.append(name)
            continue
        try:
            found_cluster, content = spool.records.read(name)
            if found_cluster is None:
                to_take.append((name, 0))   # upstream's description: parsed when taken
                continue
            new = [jobs.validate_job(job, found_cluster) for job in content]
            if not new:
                raise jobs.InvalidJob("the record holds no job")
        except FileNotFoundError:
            continue    # taken meanwhile by a running master
        except (SpoolError, OSError, jobs.InvalidJob) as err:
            findings.append(Finding(RECOVERS, "record %s cannot be taken (%s): the master moves "
                                              "it to queue/bad/ and shows its jobs held"
                                    % (name, err)))
            continue
        if all(jobs.job_id(job) in in_snapshot for job in new):
            saved.append(name)
        else:
            to_take.append((name, sum(jobs.job_id(job) not in in_snapshot for job in new)))
    if to_take:
        upstream = sum(1 for name, _ in to_take if name.startswith(UPSTREAM_PREFIX))
        findings.append(Finding(SOUND, "%d records waiting to be taken: %d jobs%s" % (
            len(to_take), sum(n for _, n in to_take),
            " (and %d upstream descriptions)" % upstream if upstream else "")))
    if saved:
        findings.append(Finding(SOUND, "%d records already held by the snapshot: deleted once "
                                       "two generations hold them" % len(saved)))
    requests: Dict[str, int] = {}
    for action, _, _ in spool.requests.pending():
        requests[action] = requests.get(action, 0) + 1
    if requests:
        findings.append(Finding(SOUND, "requests waiting: %s" % ", ".join(
            "%d %s" % (n, action) for action, n in sorted(requests.items()))))
    refused = visible_names(spool.bad_dir)
    if refused:
        findings.append(Finding(SOUND, "%d refused records kept in %s for you to read (the "
                                       "master's log says why)" % (len(refused), spool.bad_dir)))
    return highest


def _check_counter(spool: Spool, highest: int, findings: List[Finding]) -> None:
    try:
        with open(spool.counter_path, "rb") as handle:
            text = handle.read(64).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return  # condor_submit rebuilds it past every id it knows
    except OSError as err:
        findings.append(Finding(NEEDS_ADMIN, "cannot read %s: %s" % (spool.counter_path,
                                                                     err.strerror)))
        return
    if not text.isdigit() or int(text) < 1:
        findings.append(Finding(NEEDS_ADMIN, "the cluster counter %s is corrupt (%r): write "
                                             "%d into it" % (spool.counter_path, text[:20],
                                                             highest + 1)))
    elif int(text) <= highest:
        findings.append(Finding(NEEDS_ADMIN, "the cluster counter %s says %s, but cluster %d "
                                             "exists: new jobs would reuse ids; write %d into it"
                                % (spool.counter_path, text, highest, highest + 1)))


def _check_start_journal(spool: Spool, used: Optional[Dict], findings: List[Finding]) -> None:
    """Starts the journal holds and the snapshot a master would restore does not."""
    try:
        found = read_journal(spool.starts_dir)
    except SpoolError as err:
        findings.append(Finding(NEEDS_ADMIN, "the master refuses to start on its start "
                                             "journal: %s" % err))
        return
    saved = used["jobs"] if used else {}
    missed = [jid for jid, start in found.latest.items()
              if start.starts > int(saved.get(jid, {}).get("NumJobStarts", 0) or 0)]
    if missed:
        running = spool.master_files.is_running()
        findings.append(Finding(
            SOUND if running else RECOVERS,
            "the start journal %s holds starts of %d jobs (%d of them not in the snapshot, "
            "taken from their records since) that the snapshot does not count: %s"
            % (spool.starts_dir, len(missed), sum(jid not in saved for jid in missed),
               "the running master's next snapshot will" if running else
               "the master counts them in NumJobStarts on its next start")))
    if found.damaged_lines:
        findings.append(Finding(SOUND, "the start journal %s has %d damaged lines (a crash "
                                       "tears the last one): skipped, those starts are not "
                                       "counted" % (spool.starts_dir, found.damaged_lines)))


def _check_leftovers(spool: Spool, findings: List[Finding]) -> None:
    import re
    temp_name = re.compile(TEMP_NAME_PATTERN)
    temps = [name for directory in spool.master_files.temp_file_dirs
             for name in _all_names(directory) if temp_name.match(name)]
    if temps:
        findings.append(Finding(SOUND, "%d half-written temp files: a master deletes those whose "
                                       "writer died when it starts" % len(temps)))
    prefix = os.path.basename(spool.snapshot_path) + DAMAGED_SUFFIX
    kept = [name for name in _all_names(spool.root) if name.startswith(prefix)]
    if kept:
        findings.append(Finding(SOUND, "%d damaged snapshots set aside earlier (%s*): keep them "
                                       "for inspection or delete them" % (
                                           len(kept), os.path.join(spool.root, prefix))))


def _all_names(directory: str) -> List[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []
