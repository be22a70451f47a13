"""Operating it: systemd units, Work Queue's performance log, upgrades of the spool."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess

from awq.spool import Spool
from conftest import PYTHON, REPO, cmake_install, product_env, wait_until

FIXTURE = os.path.join(REPO, "tests", "fixtures", "snapshot-format-1.pickle")
UNITS = ("alien-work-queue", "alien-wq-foremen", "alien-wq-workers")


def test_systemd_units_install_with_the_prefix_and_verify(tmp_path):
    prefix = str(tmp_path / "prefix")
    cmake_install(prefix, str(tmp_path / "build"))
    paths = [os.path.join(prefix, "share", "alien-workqueue", "systemd", unit + ".service")
             for unit in UNITS]
    for path in paths:
        text = open(path).read()
        assert "@" not in text and prefix + "/bin/" in text
    assert "TimeoutStopSec=120" in open(paths[0]).read()  # time to save the table on stop
    result = subprocess.run(["systemd-analyze", "verify"] + paths, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_work_queue_graph_log_plots_the_masters_performance_log(tmp_path, start_master,
                                                                start_worker, tool):
    log = tmp_path / "wq.log"
    master = start_master("--wq-log", str(log))
    start_worker(master.port, cores=2)
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\nsleep 0.2\n")
    job.chmod(0o755)
    assert tool("condor_submit", stdin="executable = %s\nqueue 6\n" % job).returncode == 0
    wait_until(lambda: len(Spool(master.workdir).read_history()) == 6, 60, what="6 jobs done")
    master.stop()
    result = subprocess.run([shutil.which("work_queue_graph_log") or "work_queue_graph_log",
                             "-o", str(tmp_path / "plot"), str(log)], capture_output=True,
                            text=True, timeout=120, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    plots = sorted(p.name for p in tmp_path.glob("plot.*.svg"))
    assert "plot.tasks.svg" in plots and "plot.workers.svg" in plots, plots
    assert all((tmp_path / p).stat().st_size > 1000 for p in plots)


def test_a_snapshot_of_the_previous_format_loads_with_every_job(tmp_path, start_master, tool,
                                                                workdir):
    Spool(workdir, create=True)
    shutil.copy(FIXTURE, os.path.join(workdir, "state.pickle"))
    os.chmod(os.path.join(workdir, "state.pickle"), 0o600)
    master = start_master()
    rows = tool("condor_q", "-af", "ClusterId", "JobStatus", "NumJobStarts", "HoldReason").stdout
    assert rows.splitlines() == ["1 1 0 undefined", "2 1 1 undefined", "3 5 0 site maintenance"]
    assert "recovered 3 jobs from the snapshot (1 requeued after running)" in master.log()


def test_a_snapshot_from_the_future_is_refused_and_left_alone(tmp_path, workdir):
    spool = Spool(workdir, create=True)
    future = pickle.dumps({"version": 99, "jobs": {}}, protocol=4)
    with open(spool.snapshot_path, "wb") as handle:
        handle.write(future)
    os.chmod(spool.snapshot_path, 0o600)
    result = subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", workdir,
                             "--port", "0"], capture_output=True, text=True,
                            env=product_env(workdir), timeout=60)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "newer alien-workqueue" in errors[0], result.stderr
    assert open(spool.snapshot_path, "rb").read() == future


def test_every_command_reports_the_same_version():
    expected = subprocess.run([PYTHON, "-m", "awq", "--version"], capture_output=True, text=True,
                              env=product_env(), timeout=60).stdout.split()[-1]
    for tool in ("alien_work_queue", "condor_submit", "condor_q", "condor_rm", "condor_status",
                 "condor_history", "condor_hold", "condor_release", "condor_suspend",
                 "condor_continue"):
        result = subprocess.run([PYTHON, "-m", "awq.cli.%s" % tool, "--version"],
                                capture_output=True, text=True, env=product_env(), timeout=60)
        assert result.returncode == 0 and expected in result.stdout, (tool, result)
        assert result.stdout.startswith("$CondorVersion: ") or tool == "alien_work_queue"
