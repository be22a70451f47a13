"""`getenv`: which of the submitter's variables a job gets, as HTCondor 24's condor_submit picks.

The rules (booleans, match lists, `!`, `*`, case, values HTCondor cannot store) are checked
one by one here, and against HTCondor's own library (htcondor==24.0.24, offline, test-only)
for a fixed list and for generated match lists over an environment of awkward names.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from typing import Dict, List

import pytest

from awq import jobs, submit
from submit_oracle import ORACLE_TIMEOUT

SUBMITTER = {
    "A": "1", "AB": "2", "ABC": "3", "ABCX": "4", "AXBYC": "5", "AXCBC": "6", "XAB": "7",
    "A?": "literal ?", "[A]": "literal [", "B_X": "8", "Mixed_Case": "m", "lower": "l",
    "yes": "y", "no": "n", "t": "t", "f": "f", "PATH": "/usr/bin:/bin",
    "PYTHONPATH": "/the/users/own", "EMPTY": "", "SEMI": "a;b", "EQ": "a=b", "DQ": 'a"b',
    "SQ": "a'b", "SPACES": " x y ", "TAB": "a\tb", "CR": "a\rb", "NEWLINE": "a\nb",
    # What the oracle's interpreter sets in its own environment (locale coercion, and the
    # htcondor module's null configuration): given here so both sides see the same.
    "LC_CTYPE": "C.UTF-8", "CONDOR_CONFIG": "/dev/null",
}


def inherited(getenv: str, environ: Dict[str, str] = SUBMITTER) -> Dict[str, str]:
    desc = submit.parse_description("executable = /bin/true\ngetenv = %s\nqueue\n" % getenv,
                                    cwd="/tmp")
    job = submit.build_jobs(desc, cluster_id=1, cwd="/tmp", environ=environ, owner="tester",
                            uid=1000, now=0)[0]
    return jobs.environment_of(job)


EVERYTHING = sorted(name for name, value in SUBMITTER.items() if "\n" not in value)


@pytest.mark.parametrize("getenv, expected", [
    ("true", EVERYTHING), ("TRUE", EVERYTHING), ("1", EVERYTHING), ("*", EVERYTHING),
    ("false", []), ("0", []), ("!*", []),
    # A ClassAd expression giving a boolean or a number is a switch; any other word a name.
    ("yes", ["yes"]), ("no", ["no"]), ("t", ["t"]), ("!false", EVERYTHING), ("2", EVERYTHING),
    ("!true", []), ("0.0", []),
    ("mixed_case", ["Mixed_Case"]), ("LOWER", ["lower"]),
    ("A;AB, ABC\tXAB", ["A", "AB", "ABC", "XAB"]),
    ("A?", ["A?"]), ("[A]", ["[A]"]), ("A[B]", []),
    ("A*C", ["ABC", "AXBYC", "AXCBC"]), ("*B*", ["AB", "ABC", "ABCX", "AXBYC", "AXCBC", "B_X", "TAB", "XAB"]),
    ("A*B*", ["AB", "ABC", "ABCX", "AXBYC", "AXCBC"]), ("A*B*C", []), ("a*b*c*", []),
    ("!A*,A*", []), ("A*,!*C*", ["A", "A?", "AB"]),
    ("!PATH,!PYTHONPATH", sorted(set(EVERYTHING) - {"PATH", "PYTHONPATH"})),
    ("NEWLINE", []),
])
def test_getenv_imports_what_htcondor_imports(getenv, expected):
    assert sorted(inherited(getenv)) == expected


def test_values_are_copied_byte_for_byte_and_environment_overrides_them():
    assert inherited("SPACES,DQ,SQ,TAB,CR,SEMI,EQ,EMPTY") == {
        name: SUBMITTER[name] for name in ("SPACES", "DQ", "SQ", "TAB", "CR", "SEMI", "EQ", "EMPTY")}
    desc = submit.parse_description("executable = /bin/true\ngetenv = true\n"
                                    "environment = A=mine\nqueue\n", cwd="/tmp")
    job = submit.build_jobs(desc, cluster_id=1, cwd="/tmp", environ=SUBMITTER, owner="tester",
                            uid=1000, now=0)[0]
    assert jobs.environment_of(job)["A"] == "mine"


# The oracle once for a whole list: one process, many descriptions.
_ORACLE_GETENV = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import htcondor
out = []
for getenv in json.load(sys.stdin):
    ad = list(htcondor.Submit("executable = /bin/true\ngetenv = %s\nqueue\n" % getenv)
              .jobs(count=1, clusterid=1))[0]
    out.append(ad.get("Environment", ""))
json.dump(out, sys.stdout)
"""


def their_environments(getenvs: List[str]) -> List[Dict[str, str]]:
    done = subprocess.run([sys.executable, "-c", _ORACLE_GETENV], input=json.dumps(getenvs),
                          env=SUBMITTER, capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    return [jobs.environment_of({"Environment": text}) for text in json.loads(done.stdout)]


FRAGMENTS = ["A", "a", "B", "b", "C", "X", "_", "?", "[", "*", "PATH", "yes", "TRUE", "1", "0"]
GENERATED = 300


def generated_match_lists(count: int) -> List[str]:
    """Match lists of 1-3 members: fragments, stars anywhere, some negated, any separator."""
    rng = random.Random(22)   # fixed: every run checks the same lists
    lists = []
    for _ in range(count):
        members = []
        for _ in range(rng.randint(1, 3)):
            member = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 4)))
            members.append(("!" if rng.random() < 0.25 else "") + member)
        lists.append(rng.choice([",", ";", " ", ", "]).join(members))
    return lists


@pytest.mark.e2e
def test_getenv_agrees_with_htcondor():
    fixed = ["true", "TRUE", "True", "1", "0", "false", "yes", "no", "t", "f", "*", "**", "!*",
             "!", "A?", "A[B]", "[A]", "A*B*C", "A*C", "*B*", "A*B*", "*A", "A|AB", "A\tAB",
             "A, ,AB", "a*b*c*", "*C*X", "!A", "!A,B*", "A,!A", "*_*", "B*X", "*X*", "mixed*",
             "LOWER", "AB*B", "A*BC", "*,!NEWLINE", "!path,!a*", "True,A", "e*", "NEWLINE",
             "!TRUE", "!FALSE", "2", "1+1", "TRUE && FALSE", "0.0", "-1", "!1", '"true"',
             "1 ? false : true", "isUndefined(x)", "!true,A", " true "]
    getenvs = fixed + generated_match_lists(GENERATED)
    theirs = their_environments(getenvs)
    disagree = [(g, sorted(inherited(g)), sorted(t)) for g, t in zip(getenvs, theirs)
                if inherited(g) != t]
    assert disagree == [], "%d of %d disagree, first: %r" % (len(disagree), len(getenvs),
                                                             disagree[:3])


def test_condor_submit_reads_the_environment_it_was_started_with(tmp_path, monkeypatch):
    from awq.cli.condor_submit import starting_environment
    block = tmp_path / "environ"
    block.write_bytes(b"A=1\0B=x=y\0A=second\0NOVALUE\0=nameless\0EMPTY=\0LATIN=\xe9\0")
    assert starting_environment(str(block)) == {"A": "1", "B": "x=y", "EMPTY": "",
                                                "LATIN": os.fsdecode(b"\xe9")}
    # Where the kernel's copy cannot be read: the interpreter's view.
    monkeypatch.setenv("AWQ_ONLY_HERE", "yes")
    assert starting_environment(str(tmp_path / "missing"))["AWQ_ONLY_HERE"] == "yes"
    # This process's own block holds what it was started with, not what it set since.
    assert "AWQ_ONLY_HERE" not in starting_environment()
