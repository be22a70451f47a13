"""Generated submit descriptions, expanded by our parser and by HTCondor's own submit.

Hypothesis writes descriptions from every command of awq/submit_commands.py (with
values of the command's kind), macros, and every queue form; tests/submit_oracle.py
runs htcondor==24.0.24 on each and the job ads must agree attribute by attribute.
A description HTCondor itself refuses proves nothing about ours and is not compared.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from awq import submit_commands as commands
from submit_oracle import OracleRefused, differences, oracle_ads, our_ads

# HTCondor's submit runs in a child interpreter (and the bank makes a proxy with
# openssl): the e2e tier.
pytestmark = pytest.mark.e2e

VALUES = {
    commands.PATH: ["out.$(Process)", "/tmp/awq-h/x.log", "logs/a.txt", "$(Item).out"],
    commands.STRING: ["abc", "two words", "$(Cluster)-$(Process)", "SIGTERM"],
    commands.QUOTED_STRING: ['"a = b"', '"a=b;c=d/$(Process)"', '"x = y/$(Item)"'],
    commands.PATH_LIST: ["a.txt, b.txt", "in/$(Item),  c", "d/"],
    commands.LIST: ["a, b ,c", "out.$(Process)", "x"],
    commands.LOWER_LIST: ["DB_A, db_b:2", "License"],
    commands.EXPRESSION: ["JobStatus == 1", "3", "true", '"text"', "CurrentTime - QDate > 60",
                          "ExitCode =!= 0 && NumJobStarts < $(Step) + 2"],
    commands.INTEGER: ["0", "5", "-3", "$(Process)"],
    commands.BOOLEAN: ["true", "False", "TRUE", "false"],
    commands.MEGABYTES: ["100", "2 GB", "512M", "1.5G"],
    commands.KILOBYTES: ["1000", "3M", "2 GB"],
    commands.NOTIFICATION: ["never", "Always", "complete", "ERROR"],
}
# Commands whose values HTCondor checks further than their kind.
BY_COMMAND = {"should_transfer_files": ["YES", "if_needed", "No"],
            "shouldtransferfiles": ["YES", "IF_NEEDED"],
            "when_to_transfer_output": ["ON_EXIT", "on_exit"],
            "whentotransferoutput": ["ON_EXIT"],
            "kill_sig": ["SIGTERM", "9", "SIGINT"], "hold_kill_sig": ["SIGTERM", "SIGQUIT"],
            "remove_kill_sig": ["SIGKILL", "2"], "job_lease_duration": ["0", "7200", "20"],
            "deferral_time": ["0", "60", "CurrentTime + 60"], "max_retries": ["1", "3"],
            "stream_output": ["true", "false"], "accounting_group": ["group_a", "g.sub"],
            "accounting_group_user": ["someone", "$(Item)x"], "stream_error": ["True", "FALSE"]}
# x509userproxy: HTCondor reads the proxy; the bank covers it with a real one.
GENERATED = sorted(set(commands.COMMANDS) - {"x509userproxy"})


def _command_line(command: str) -> st.SearchStrategy:
    _, kind = commands.COMMANDS[command]
    values = BY_COMMAND.get(command) or VALUES[kind]
    return st.tuples(st.sampled_from([command, command.upper()]), st.sampled_from(values)).map(
        lambda pair: "%s = %s" % pair)


COMMAND_LINES = st.one_of(*[_command_line(c) for c in GENERATED])
OTHER_LINES = st.sampled_from([
    "arguments = $(Item) $(Row) $(Step) $(ItemIndex) $(Process)",
    'arguments = "a \'b c\' $(Cluster)"', "arguments = $INT(N,%03d) $REAL(N) $Fn(F) $Fx(F) $Fp(F)",
    "environment = A=1;B=$(Process)", 'environment = "A=1 B=\'x y\'"',
    "N = 7", "F = /data/run1/events.root", "+Custom = $(Process) + 1", 'MY.Tag = "$(Item)"',
    "initialdir = sub", "universe = vanilla", "universe = local", "hold = true",
    "max_retries = 3", "retry_until = ExitCode == 4", "success_exit_code = 2",
    "accounting_group = group_a", "accounting_group_user = someone", "getenv = HOME",
    "executable = other.sh", "universe = grid", "output = o.$(Process)", "error = e",
    "if defined N\n+HasN = true\nelse\n+HasN = false\nendif",
    "if version >= 9.0\narguments = new\nendif", "include : common.inc",
    "arguments = $CHOICE(Step, x, y, z) $RANDOM_INTEGER(4, 4) $RANDOM_CHOICE(r, r)",
    "LIST = p, q, r", "arguments = $CHOICE(0, LIST) $(LIST)", "arguments = a\\\n  b \\\nc",
    "if defined NOPE\narguments = x\nelif defined N\narguments = y\nelse\narguments = z\nendif",
    "if ! defined N\n+NoN = true\nendif", "arguments = $Fdd(F) $Fpn(F) $(UNSET:fallback)",
    "arguments = $ENV(HOME) $ENV(AWQ_UNSET_VARIABLE) $ENV(AWQ_UNSET_VARIABLE:dflt)",
    "getenv = true", "environment = CONDOR_ID=$(Cluster).$(Process)", "cmd = /bin/sh",
])
QUEUES = st.sampled_from([
    "queue", "queue 3", "queue 2 in (a, b c)", "queue name from (\n x 1\n y 2\n)",
    "queue a, b from (\n p q\n r s\n)", "queue 2 x y from items.txt", "queue matching *.dat",
    "queue f matching files *.dat", "queue d matching dirs *", "queue in (one)",
])


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(COMMAND_LINES, OTHER_LINES), max_size=8), queue=QUEUES)
def test_generated_descriptions_agree_with_htcondor(lines, queue, tmp_path_factory):
    where = str(tmp_path_factory.mktemp("generated"))
    for directory in ("sub", "d1", "d2"):
        os.mkdir(os.path.join(where, directory))
    for name, text in (("a.dat", ""), ("b.dat", ""), ("items.txt", "k 1\nl 2\n"),
                       ("common.inc", "+Included = true\n")):
        with open(os.path.join(where, name), "w") as handle:
            handle.write(text)
    text = "executable = job.sh\n" + "\n".join(lines) + "\n" + queue + "\n"
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/home/tester"}
    try:
        theirs = oracle_ads(text, where, environ)
    except OracleRefused:
        event("HTCondor refuses the description")
        return
    ours = our_ads(text, where, environ)
    assert len(ours) == len(theirs), text
    for mine, other in zip(ours, theirs):
        assert differences(mine, other) == [], text
