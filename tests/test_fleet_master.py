"""Multi-core pilots against real workers: a job runs where it fits, and says so where it does not."""

from __future__ import annotations

import re

from conftest import write_script
from testkit import wait_until


def test_a_four_core_pilot_waits_with_a_reason_then_runs_on_a_four_core_worker(
        tmp_path, start_master, start_worker, tool):
    master = start_master("--unfit-grace", "1")
    start_worker(master.port, cores=1)
    pilot = write_script(tmp_path / "pilot.sh", "echo four cores\n")
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nrequest_cpus = 4\nqueue\n"
                % (pilot, out)).returncode == 0

    def reason() -> str:
        text = tool("condor_q", "-l").stdout
        match = re.search(r'^LastRejectedMatchReason = "(.*)"$', text, re.M)
        return match.group(1) if match else ""
    wait_until(reason, 30, interval=0.5, what="condor_q -l to say why the job stays idle")
    assert reason() == "no connected worker has 4 of cores (the largest has 1)"
    assert "job 1.0 stays idle: no connected worker has 4 of cores" in master.log()
    assert tool("condor_q", "-af", "JobStatus").stdout == "1\n"
    start_worker(master.port, cores=4)
    wait_until(lambda: out.exists() and out.read_text() == "four cores\n", 60,
               what="the pilot to run on the 4-core worker")
