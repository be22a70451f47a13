"""Accepted means queued: whatever condor_submit accepts, the master takes and can run.

condor_submit's checks are submit.parse_description + build_jobs +
jobs.validate_job (and files on disk, which this leaves aside); the master's are
spool decoding + jobs.validate_job + tasks.task_spec. Hypothesis writes the
descriptions from the pieces real clients use, with random values in them, and
one or two queue statements of every form (`queue`, `queue N`, `queue [N] vars
in|from (...)` on one line or several, `queue [N] vars from FILE`, `queue [N]
var matching [files|dirs] patterns`), the lines using the item variables and
$(Row), $(Step), $(ItemIndex), $(Process), $(Cluster).
"""

from __future__ import annotations

import itertools
import os
from typing import Optional

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from awq import classad, jobs, spool, submit, tasks

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n\r"),
               max_size=40)
WORD = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-./:"),
               min_size=1, max_size=20)
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)


def quoted_new_syntax(words):
    return '"%s"' % " ".join("'%s'" % w.replace("'", "''").replace('"', '""') for w in words)


LINES = st.one_of(
    st.builds(lambda v: "arguments = %s" % v, TEXT),
    st.builds(lambda ws: "arguments = %s" % quoted_new_syntax(ws), st.lists(TEXT, max_size=4)),
    st.builds(lambda n, v: "environment = %s=%s" % (n, v.replace(";", "")), NAME, WORD),
    st.builds(lambda n, v: 'environment = "%s=\'%s\'"' % (n, v.replace("'", "''").replace('"', '""')),
              NAME, TEXT),
    st.builds(lambda n, v: "+%s = %s" % (n, v), NAME, st.one_of(
        st.integers(-10**6, 10**6).map(str), WORD.map(lambda w: '"%s"' % w),
        st.sampled_from(["true", "JobStatus == 1", "CurrentTime - QDate > 60", "undefined",
                         "floor(2.5)", "strcmp(Owner, \"x\")", ""]))),
    st.builds(lambda v: "request_cpus = %d" % v, st.integers(1, 64)),
    st.builds(lambda v: "request_memory = %s" % v, st.sampled_from(["100", "2 GB", "512M", ""])),
    st.sampled_from(["periodic_remove = CurrentTime - QDate > 259200", "universe = vanilla",
                     "universe = grid", "+WantJobRouter = True", "job_lease_duration = 7200",
                     "ShouldTransferFiles = YES", "requirements =", "+projectname =",
                     "leave_in_queue = TRUE", "batch_name = dask-worker", "priority = 5",
                     "getenv = false", "hold = false", "transfer_executable = true"]),
    st.builds(lambda n, v: "%s = %s" % (n, v), NAME.filter(lambda n: n.lower() not in (
        "executable", "cmd", "universe", "queue", "hold", "getenv", "environment", "env",
        "arguments", "args", "initialdir", "initial_dir", "iwd", "use_x509userproxy",
        "transfer_executable", "output", "error", "log", "input", "transfer_input_files",
        "request_cpus", "request_memory", "request_disk", "requestcpus", "requestmemory",
        "requestdisk", "priority", "max_retries", "job_lease_duration", "x509userproxy",
        "leave_in_queue", "periodic_hold", "periodic_remove", "periodic_release",
        "on_exit_remove", "on_exit_hold", "requirements", "rank", "stream_output",
        "stream_error")), TEXT),
)


# ---------------------------------------------------------------- queue statements

# What `queue ... matching` finds in the submit directory (the submit_dir fixture).
MATCHABLE_FILES = ("a.dat", "b.dat", "notes.txt")
MATCHABLE_DIRS = ("d1", "d2")
VARIABLE = st.sampled_from(["x", "Item", "name", "a", "B_2", "run.id"])
ITEM = st.one_of(WORD.filter(lambda w: w not in ("in", "from", "matching")),
                 st.text(st.characters(whitelist_categories=("L", "Nd", "Zs"),
                                       whitelist_characters="_-./:$()"), min_size=1, max_size=12))
MACRO_USES = st.sampled_from(["$(Item)", "$(x)", "$(name)", "$(a)", "$(B_2)", "$(run.id)",
                              "$(Row)", "$(Step)", "$(ItemIndex)", "$(Process)", "$(Cluster)",
                              "$(Item:none)", "$INT(Step)", "$INT(ItemIndex,%03d)"])
USE_LINES = st.builds(lambda kind, use: kind % use, st.sampled_from([
    "arguments = --item %s", "environment = ITEM=%s;ROW=$(Row)", "+ItemSeen = \"%s\"",
    "output = /tmp/out.%s", "batch_name = b%s", "+Step = %s", "request_cpus = %s",
    "priority = %s"]), MACRO_USES)
_file_numbers = itertools.count()


@st.composite
def queue_statements(draw):
    """(statement, the text of its file for `from FILE` or None, the form's name)."""
    count = draw(st.sampled_from(["", "1 ", "2 ", "3 "]))
    names = draw(st.lists(VARIABLE, max_size=3, unique=True))
    separator = draw(st.sampled_from([", ", " ", ","]))
    variables = separator.join(names) + (" " if names else "")
    form = draw(st.sampled_from(["plain", "in", "from", "from multiline", "from file",
                                 "matching"]))
    if form == "plain":
        return ("queue %s" % count).rstrip(), None, "queue N" if count else "queue"
    if form == "matching":
        kind = draw(st.sampled_from(["", "files ", "dirs "]))
        patterns = draw(st.lists(st.sampled_from(["*.dat", "*", "d*", "*.txt", "none*", "a.dat"]),
                                 min_size=1, max_size=2))
        return ("queue %s%smatching %s%s" % (count, names[0] + " " if names else "", kind,
                                             " ".join(patterns)), None, "matching " + kind)
    rows = draw(st.lists(st.lists(ITEM, min_size=1, max_size=3), min_size=1, max_size=4))
    if form == "in":
        return "queue %s%sin (%s)" % (count, variables, ", ".join(r[0] for r in rows)), None, form
    lines = [draw(st.sampled_from([" ", ", ", ","])).join(row) for row in rows]
    if form == "from":
        return "queue %s%sfrom (%s)" % (count, variables, "; ".join(lines)), None, form
    if form == "from multiline":
        return "queue %s%sfrom (\n%s\n)" % (count, variables, "\n".join(lines)), None, form
    return "queue %s%sfrom {file}" % (count, variables), "\n".join(lines) + "\n", form


@pytest.fixture(scope="module")
def submit_dir(tmp_path_factory):
    """The directory condor_submit runs in: what `matching` finds, and `from FILE` files."""
    where = tmp_path_factory.mktemp("submit_dir")
    for name in MATCHABLE_FILES:
        (where / name).write_text("")
    for name in MATCHABLE_DIRS:
        (where / name).mkdir()
    return str(where)


def written_queue(submit_dir: str, statement: str, file_text: Optional[str]) -> str:
    if file_text is None:
        return statement
    name = "items-%d.txt" % next(_file_numbers)
    with open(os.path.join(submit_dir, name), "w") as handle:
        handle.write(file_text)
    return statement.format(file=name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, max_size=6), uses=st.lists(USE_LINES, max_size=3),
       queues=st.lists(st.tuples(queue_statements(), st.lists(st.one_of(LINES, USE_LINES),
                                                              max_size=2)),
                       min_size=1, max_size=2),
       executable=st.sampled_from(["/bin/true", "cmd = /opt/agent.startup.1",
                                   "/bin/sh", "relative/agent.sh"]))
def test_what_condor_submit_accepts_the_master_accepts_and_can_run(submit_dir, lines, uses,
                                                                   queues, executable):
    first = executable if executable.startswith("cmd") else "executable = %s" % executable
    body = [first] + lines + uses
    forms = []
    for (statement, file_text, form), more_lines in queues:
        # A second statement comes after lines of its own, as in HTCondor's manual.
        body += (more_lines if forms else []) + [written_queue(submit_dir, statement, file_text)]
        forms.append(form)
    text = "\n".join(body) + "\n"
    try:
        desc = submit.parse_description(text, cwd=submit_dir)
        built = submit.build_jobs(desc, cluster_id=7, cwd=submit_dir, environ={"HOME": "/h"},
                                  owner="vobox", uid=1000, now=1700000000)
        for job in built:
            jobs.validate_job(job, 7)
    except (submit.SubmitError, jobs.InvalidJob):
        event("refused at submit")
        return  # refused at submit, with a message: nothing to check
    event("accepted")
    assert len(built) == desc.job_count()
    for form in forms:
        event("accepted: " + form.strip())
    for builtin in ("$(Row)", "$(Step)", "$(ItemIndex)"):
        if builtin in text:
            event("accepted, using " + builtin)
    # The master's side: the record as the spool stores and reads it.
    taken = spool.decode_jobs(spool.encode_jobs(built))
    for job in taken:
        jobs.validate_job(job, 7)
        spec = tasks.task_spec(job)
        assert spec.command and spec.cores >= 1
        for name, value in job.items():
            if isinstance(value, classad.Expr):
                classad.evaluate(value, job)  # never raises
