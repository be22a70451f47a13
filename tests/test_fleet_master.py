"""Multi-core pilots against real workers: a job runs where it fits, and says so where it does not."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from typing import Optional

from conftest import (JOB_DONE_WITHIN, LOAD_ALLOWANCE, MASTER_NOTICES_WITHIN, MASTER_WAITS_EVERY,
                      PROGRAM_STARTS_WITHIN, SNAPSHOT_WITHIN, WORKER_JOINS_WITHIN,
                      write_script)
from testkit import free_port, wait_until


UNFIT_GRACE = 1.0  # s an idle job waits here before the master says no worker fits it


def test_a_four_core_pilot_waits_with_a_reason_then_runs_on_a_four_core_worker(
        tmp_path, start_master, start_worker, tool):
    master = start_master("--unfit-grace", str(UNFIT_GRACE))
    start_worker(master.port, cores=1)
    pilot = write_script(tmp_path / "pilot.sh", "echo four cores\n")
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nrequest_cpus = 4\nqueue\n"
                % (pilot, out)).returncode == 0

    def reason() -> str:
        text = tool("condor_q", "-l").stdout
        match = re.search(r'^LastRejectedMatchReason = "(.*)"$', text, re.M)
        return match.group(1) if match else ""
    # Noticed, the small worker joined, the grace over, then the snapshot that carries why.
    wait_until(reason, (MASTER_NOTICES_WITHIN + WORKER_JOINS_WITHIN + UNFIT_GRACE + SNAPSHOT_WITHIN)
               * LOAD_ALLOWANCE, interval=0.5, what="condor_q -l to say why the job stays idle")
    assert reason() == "no connected worker has 4 of cores (the largest has 1)"
    assert "job 1.0 stays idle: no connected worker has 4 of cores" in master.log()
    assert tool("condor_q", "-af", "JobStatus").stdout == "1\n"
    start_worker(master.port, cores=4)
    wait_until(lambda: out.exists() and out.read_text() == "four cores\n", JOB_DONE_WITHIN,
               what="the pilot to run on the 4-core worker")


# Work Queue (CCTools 8) sends a manager's status to its catalog at its first wait() and
# then once a minute (WORK_QUEUE_UPDATE_INTERVAL in work_queue.c).
CATALOG_UPDATE_PERIOD = 60.0
CATALOG_START_BOUND = PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE  # catalog_server to listen


def start_catalog(procs, tmp_path) -> int:
    """A private catalog_server on loopback; its own reports stay on loopback too."""
    port = free_port()
    history = tmp_path / "catalog"
    history.mkdir()
    procs.start([shutil.which("catalog_server"), "-p", str(port), "-I", "127.0.0.1",
                 "-H", str(history), "--update-host=127.0.0.1"], "catalog")

    def answering() -> bool:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/query.text" % port, timeout=5):
                return True
        except OSError:
            return False
    # A manager's first update, lost on a catalog not yet listening, is sent again only a
    # CATALOG_UPDATE_PERIOD later: the catalog must answer before anyone reports to it.
    wait_until(answering, CATALOG_START_BOUND, what="catalog_server to answer")
    return port


def catalog_view(catalog_port: int, project: str) -> Optional[dict]:
    """The project's entry as `work_queue_status` reads it from the catalog (no master query)."""
    result = subprocess.run(["work_queue_status", "-C", "127.0.0.1:%d" % catalog_port, "-l"],
                            capture_output=True, text=True, timeout=60)
    try:
        entries = json.loads(result.stdout or "[]")
    except ValueError:
        return None   # the catalog not up yet answers nothing
    found = [e for e in entries if e.get("project") == project]
    return found[0] if found else None


def test_the_catalog_sees_every_idle_job_not_only_the_tasks_handed_over(
        tmp_path, procs, start_master, tool, workdir):
    catalog_port = start_catalog(procs, tmp_path)
    project = "awq_demand_%d" % os.getpid()
    pilot = write_script(tmp_path / "pilot.sh", "sleep 1\n")
    jobs = 20
    assert tool("condor_submit", stdin="executable = %s\nqueue %d\n" % (pilot, jobs)
                ).returncode == 0
    # The default password, no worker: the master hands Work Queue only a few tasks.
    start_master("--catalog-host", "127.0.0.1", "--catalog-port", str(catalog_port),
                 "--project-name", project)

    def whole_queue_listed() -> Optional[dict]:
        entry = catalog_view(catalog_port, project)
        if entry and entry["tasks_waiting"] + entry["tasks_left"] == jobs:
            return entry
        return None
    # The first report may leave before the jobs are taken in; the next follows a period later.
    listed_within = CATALOG_UPDATE_PERIOD + (MASTER_NOTICES_WITHIN + MASTER_WAITS_EVERY) \
        * LOAD_ALLOWANCE
    entry = wait_until(whole_queue_listed, listed_within, interval=0.5,
                       what="the catalog to list all %d idle jobs as demand" % jobs)
    assert 0 < entry["tasks_waiting"] < jobs   # handed over a few at a time, the rest told
    assert entry["workers"] == 0


def test_the_master_names_itself_to_no_catalog_unless_asked(monkeypatch):
    # Work Queue advertises a manager that has a name, to CATALOG_HOST or CCTools' public
    # catalog by default: without --catalog-host the master must have no name at all.
    from awq.workqueue import Backend
    monkeypatch.setenv("CATALOG_HOST", "catalog.invalid")
    monkeypatch.setenv("WORK_QUEUE_NAME", "leaked")
    assert Backend(0).queue.name is None
    named = Backend(0, catalog_host="127.0.0.1", catalog_port=9, project_name="site")
    assert named.queue.name == "site"
