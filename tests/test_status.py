"""alien_work_queue --status: against a live master and real workers, and its rules alone."""

from __future__ import annotations

import json
import socket
import subprocess

from awq import status
from awq.publish import STATUS_INTERVAL
from conftest import JOB_DONE_WITHIN, LOAD_ALLOWANCE, PYTHON, product_env
from testkit import wait_until


def run_status(workdir: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--status", "--work-dir",
                           workdir] + list(extra), capture_output=True, text=True,
                          env=product_env(workdir), timeout=60)


def test_status_of_a_live_master_then_of_a_stopped_one(tmp_path, start_master, start_worker, tool,
                                                        workdir):
    master = start_master()
    start_worker(master.port, cores=2)
    pilot = tmp_path / "pilot.sh"
    pilot.write_text("#!/bin/sh\nexit 0\n")
    pilot.chmod(0o755)
    assert tool("condor_submit", stdin="executable = %s\nqueue 3\n" % pilot).returncode == 0

    def healthy_report():
        result = run_status(workdir, "--json")
        report = json.loads(result.stdout)
        done = report["completed_last_hour"] == 3 and report["workers"]["connected"] == 1
        return (result, report) if done else None
    # The worker count is Work Queue's, published every STATUS_INTERVAL.
    result, report = wait_until(healthy_report, JOB_DONE_WITHIN + STATUS_INTERVAL * LOAD_ALLOWANCE,
                                interval=0.5, what="3 jobs done, 1 worker")
    assert result.returncode == 0 and report["health"] == 0
    assert report["master"]["pid"] == master.proc.pid and report["master"]["port"] == master.port
    assert report["workers"]["cores_total"] == 2
    # Each job's whole life in the master's log, one line per state change.
    life = [line.split(": ", 1)[1] for line in master.log().splitlines() if "job 1.0:" in line]
    host = socket.gethostname()  # Work Queue names a worker by its host name
    assert life == ["job 1.0: idle -> running: on %s" % host,
                    "job 1.0: running -> completed: exit code 0"], life
    text = run_status(workdir)
    assert text.returncode == 0 and "health: OK" in text.stdout
    assert "PID %d" % master.proc.pid in text.stdout
    master.stop()
    down = run_status(workdir)
    assert down.returncode == 1 and "master: DOWN since" in down.stdout


def test_idle_jobs_and_no_worker_for_ten_minutes_is_degraded():
    now = 10000.0
    queue = [{"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "EnteredCurrentStatus": now - 900}]
    facts = dict(queue=queue, history=[], master_alive=True, master_pid=7, heartbeat=now,
                 spool_root="/s", spool_bytes=0, now=now)
    fresh = status.health_report(master_status={"started": now - 60, "workqueue": {}}, **facts)
    assert fresh["health"] == status.HEALTHY  # the master only just started
    stale = status.health_report(master_status={"started": now - 3600, "workers_seen": now - 700,
                                                "workqueue": {}}, **facts)
    assert stale["health"] == status.DEGRADED and "no worker for 700 s" in stale["problems"][0]
    assert stale["oldest_idle_seconds"] == 900
