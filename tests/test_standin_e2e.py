"""A real master runs pilots on the worker stand-in (benchmarks/standin_worker.py), which
the scaling benchmark uses beyond the pilots this machine can run: the tasks arrive, are
held without a process, finish on cue with the exit status asked for, and their output
files reach the disk, as with a real worker."""

from __future__ import annotations

import json
import os

import pytest

from conftest import (JOB_DONE_WITHIN, JOB_RUNS_WITHIN, PROGRAM_STARTS_WITHIN, PYTHON, REPO,
                      product_env)
from testkit import wait_until

pytestmark = pytest.mark.e2e

PILOTS = 3
# The stand-in starts the installed work_queue_worker once for its greeting, then joins.
STANDIN_RUNS_WITHIN = PROGRAM_STARTS_WITHIN + JOB_RUNS_WITHIN


def _queue(tool) -> dict:
    result = tool("condor_q", "-af", "ProcId", "JobStatus")
    assert result.returncode == 0, result.stderr
    return dict(tuple(map(int, line.split())) for line in result.stdout.splitlines())


def _cue(control: str, name: str, text: str) -> None:
    path = os.path.join(control, name)
    with open(path, "w") as handle:
        handle.write(text)
    os.rename(path, path + ".cue")


def test_a_master_runs_pilots_on_the_stand_in(procs, start_master, workdir, tool, tmp_path):
    master = start_master()
    control = str(tmp_path / "control")
    procs.start([PYTHON, "-m", "benchmarks.standin_worker", "--workers", "2", "--cores", "2",
                 "--password", os.path.join(workdir, "password"), "--control", control,
                 "127.0.0.1", str(master.port)], "standin", env=product_env(), cwd=REPO)
    pilot = tmp_path / "pilot.sh"
    pilot.write_text("#!/bin/sh\nexec sleep 86399\n")
    pilot.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    result = tool("condor_submit", stdin="executable = %s\noutput = %s/o.$(Process)\n"
                  "error = %s/e.$(Process)\nenvironment = AWQ_BENCH_JOB=$(Process)\nqueue %d\n"
                  % (pilot, out, out, PILOTS))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: set(_queue(tool).values()) == {2}, STANDIN_RUNS_WITHIN,
               what=lambda: "every pilot running on the stand-in: %s" % _queue(tool))

    def status() -> dict:
        try:
            with open(os.path.join(control, "status.json")) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}
    assert wait_until(lambda: status().get("jobs_held") == PILOTS, JOB_RUNS_WITHIN,
                      what=lambda: "the stand-in's status: %s" % status())

    _cue(control, "one", "finish 1 3\n")  # the oldest held pilot ends with exit status 3
    wait_until(lambda: len(_queue(tool)) == PILOTS - 1, JOB_DONE_WITHIN,
               what=lambda: "one pilot to leave the queue: %s" % _queue(tool))
    finished = (set(range(PILOTS)) - set(_queue(tool))).pop()
    history = tool("condor_history", "-af", "ProcId", "ExitCode")
    assert "%d 3" % finished in history.stdout.splitlines(), history.stdout
    # Its output files came back (empty, as a `sleep` pilot leaves them).
    assert (out / ("o.%d" % finished)).read_text() == ""
    assert (out / ("e.%d" % finished)).read_text() == ""

    _cue(control, "rest", "finish-all\n")
    wait_until(lambda: not _queue(tool), JOB_DONE_WITHIN,
               what=lambda: "the queue to empty: %s" % _queue(tool))
    final = status()
    assert final.get("duplicates") == 0, final
    assert wait_until(lambda: status().get("finished") == PILOTS, JOB_DONE_WITHIN)
