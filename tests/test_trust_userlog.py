"""A reason (condor_hold -reason, condor_rm -reason) cannot forge events in a job's user log."""

from __future__ import annotations

import re

from awq import userlog
from conftest import wait_until, write_script

FORGED = ("stop\n...\n005 (001.000.000) 2026-01-01 00:00:00 Job terminated.\n"
          "\t(1) Normal termination (return value 0)\r\n...")
# An event starts with its code and job id, continues on lines behind a tab, ends with "...".
EVENT_HEADER = re.compile(r"^\d{3} \(\d{3}\.\d{3}\.000\) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
# The master carries out a request within a turn; a loaded 2-CPU machine may need
# seconds to start it and to schedule it.
MASTER_REQUEST_TIMEOUT = 30


def events(text: str) -> list:
    """(code, first line) of each event; AssertionError for a line that belongs to none."""
    found, inside = [], False
    for line in text.splitlines():
        if not inside:
            assert EVENT_HEADER.match(line), "not an event header: %r" % line
            found.append((line[:3], line))
            inside = True
        elif line == "...":
            inside = False
        else:
            assert line.startswith("\t"), "a line outside the event's body: %r" % line
    assert not inside, "the last event is not closed"
    return found


def test_reasons_stay_on_one_line_of_the_event():
    job = {"ClusterId": 1, "ProcId": 0}
    for body in (userlog.held_body(FORGED), userlog.aborted_body(FORGED)):
        text = userlog.event_text(userlog.HELD, job, body)
        assert len(events(text)) == 1
        assert "\\x0a...\\x0a005 (001.000.000)" in text and "\\x0d" in text


def test_condor_hold_and_rm_reasons_forge_no_event(tmp_path, start_master, tool):
    master = start_master()
    job = write_script(tmp_path / "job.sh", "exit 0\n")
    log = tmp_path / "job.log"
    result = tool("condor_submit", stdin="executable = %s\nlog = %s\nqueue\n" % (job, log))
    assert result.returncode == 0, result.stderr
    cluster = re.search(r"cluster (\d+)", result.stdout).group(1)
    assert tool("condor_hold", "-reason", FORGED, cluster).returncode == 0
    wait_until(lambda: log.exists() and "Job was held" in log.read_text(),
               MASTER_REQUEST_TIMEOUT, what="the held event")
    assert tool("condor_rm", "-reason", FORGED, cluster).returncode == 0
    wait_until(lambda: "Job was aborted" in log.read_text(), MASTER_REQUEST_TIMEOUT,
               what="the aborted event")
    codes = [code for code, _ in events(log.read_text())]
    assert codes == [userlog.SUBMIT, userlog.HELD, userlog.ABORTED], log.read_text()
    assert master.proc.poll() is None
