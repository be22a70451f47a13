"""The whole chain from the source tree: condor_submit -> master -> real workers -> condor_q."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from awq.spool import Spool
from conftest import (JOB_DONE_WITHIN, JOB_RUNS_WITHIN, LOAD_ALLOWANCE, MASTER_WAITS_EVERY,
                      REMOVED_JOB_GONE_WITHIN, REQUEST_SHOWN_WITHIN, product_env, write_script)
from test_fleet_master import CATALOG_UPDATE_PERIOD
from testkit import free_port, wait_until

IDLE_OR_RUNNING = "JobStatus==1 || JobStatus==2"


def submit_ok(tool, description: str, *args: str, cwd=None) -> int:
    result = tool("condor_submit", *args, stdin=description, cwd=cwd)
    assert result.returncode == 0, result.stderr
    match = re.search(r"^(\d+) job\(s\) submitted to cluster (\d+)\.$", result.stdout, re.M)
    assert match, result.stdout
    return int(match.group(2))


# The master writes a job's output as its result comes back, before the job reaches history.
def read_when_complete(path, marker: str, timeout: float = JOB_DONE_WITHIN) -> str:
    def content():
        if os.path.exists(path):
            text = open(path).read()
            if marker in text:
                return text
        return None
    return wait_until(content, timeout, what="%s to contain %r" % (path, marker))


def q_lines(tool, *args: str) -> list:
    result = tool("condor_q", *args)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def gated_job(tmp_path, name: str = "gated.sh") -> str:
    """A job that runs until the test creates the file 'go' (at most 60 s)."""
    gate = tmp_path / "go"
    return write_script(tmp_path / name,
                        "i=0\nwhile [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
                        "echo finished $1\n" % gate)


def test_alien_stdin_submission_runs_with_arguments_and_environment(tmp_path, start_master,
                                                                    start_worker, tool):
    master = start_master()
    start_worker(master.port)
    job = write_script(tmp_path / "agent.startup.1234",
                       'echo "argc=$#"; for a in "$@"; do echo "arg=[$a]"; done\n'
                       'echo "CONDOR_ID=$CONDOR_ID"; echo "PROXY=$ALIEN_CM_AS_LDAP_PROXY"\n'
                       'echo "AGENT=$ALIEN_JOBAGENT_ID"; echo to-stderr >&2\n')
    out, err = tmp_path / "tmpfile.out", tmp_path / "tmpfile.err"
    description = (
        "executable = %s\narguments = -x  two\ngrid_resource = condor host host:9619\n"
        "requirements = (Arch == \"X86_64\")\noutput = %s\nerror  = %s\nlog    = %s\n"
        "environment=CONDOR_ID=$(Cluster).$(Process);ALIEN_CM_AS_LDAP_PROXY=host:8084;"
        "ALIEN_JOBAGENT_ID=1234.0;ALIEN_ALICE_CM_AS_LDAP_PROXY=host:8084\nqueue\n"
        % (job, out, err, tmp_path / "tmpfile.log"))
    cluster = submit_ok(tool, description)
    text = read_when_complete(out, "AGENT=")
    assert "argc=2\narg=[-x]\narg=[two]\n" in text
    assert "CONDOR_ID=%d.0\n" % cluster in text
    assert "PROXY=host:8084\n" in text and "AGENT=1234.0\n" in text
    assert read_when_complete(err, "to-stderr").strip() == "to-stderr"
    log_text = read_when_complete(tmp_path / "tmpfile.log", "Job terminated")
    assert "(%03d.000.000)" % cluster in log_text and "return value 0" in log_text


def test_jalien_file_submission_with_cmd_and_new_syntax(tmp_path, start_master, start_worker,
                                                        tool):
    master = start_master()
    start_worker(master.port)
    job = write_script(tmp_path / "jobagent.sh",
                       'echo "proxy=[$ALIEN_CM_AS_LDAP_PROXY] quote=[$Q]"; echo "args=$*"\n')
    jdl = tmp_path / "jobagent_1795477777000.jdl"
    jdl.write_text(
        "cmd = %s\noutput = %s/out/jobagent.out\nerror = %s/out/jobagent.err\n"
        "log = %s/out/jobagent.log\n+TransferOutput = \"\"\n"
        "periodic_hold = JobStatus == 1 && GridJobStatus =?= undefined && CurrentTime - "
        "EnteredCurrentStatus > 1800 || JobStatus <= 2 && CurrentTime - EnteredCurrentStatus > 172800\n"
        "periodic_remove = CurrentTime - QDate > 259200\nuniverse = vanilla\n+WantJobRouter = True\n"
        "job_lease_duration = 7200\nShouldTransferFiles = YES\n"
        "arguments = \"'one arg' two\"\n"
        "environment = \"ALIEN_CM_AS_LDAP_PROXY='host:port' Q='it''s'\"\nqueue 1\n"
        % (job, tmp_path, tmp_path, tmp_path))
    (tmp_path / "out").mkdir()
    result = tool("condor_submit", str(jdl))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^1 job\(s\) submitted to cluster \d+\.$", result.stdout, re.M)
    text = read_when_complete(tmp_path / "out" / "jobagent.out", "args=")
    assert "proxy=[host:port] quote=[it's]" in text
    assert "args=one arg two" in text


def test_condor_q_counts_idle_and_running_the_way_clients_parse(tmp_path, start_master,
                                                                start_worker, tool):
    master = start_master()
    job = gated_job(tmp_path)
    description = "executable = %s\noutput = %s/o.$(Process)\nqueue 3\n" % (job, tmp_path)
    cluster = submit_ok(tool, description)
    assert len(q_lines(tool, "-constraint", "JobStatus==1")) == 3
    assert len(q_lines(tool, "-constraint", IDLE_OR_RUNNING)) == 3
    start_worker(master.port, cores=1)
    wait_until(lambda: len(q_lines(tool, "-constraint", "JobStatus==2")) == 1, JOB_RUNS_WITHIN,
               what="one running job")
    assert len(q_lines(tool, "-constraint", "JobStatus==1")) == 2
    assert len(q_lines(tool, "-constraint", IDLE_OR_RUNNING)) == 3
    totals = q_lines(tool, os.environ.get("USER", "root"), "-totals")[-1]
    match = re.search(r"(\d+) idle,\s+(\d+) running,\s+(\d+) held,\s+(\d+) suspended", totals)
    assert match and match.groups() == ("2", "1", "0", "0"), totals
    jalien = q_lines(tool, "-const", "JobStatus < 3", "-af", "JobStatus", "GridResource")
    statuses = sorted(re.match(r"^\s*([12]).*\s(\S+)", line).group(1) for line in jalien)
    assert statuses == ["1", "1", "2"]
    formatted = tool("condor_q", "-constraint", IDLE_OR_RUNNING, "-format", "%d ", "ClusterId",
                     "-format", "%s \\n", "Cmd").stdout
    assert formatted.count("%d %s \n" % (cluster, job)) == 3
    assert tool("condor_q").returncode == 0
    (tmp_path / "go").write_text("")
    # Taken in and the worker joined already: what is left is less than one job's way through.
    wait_until(lambda: not q_lines(tool, "-constraint", IDLE_OR_RUNNING), JOB_DONE_WITHIN,
               what="the queue to empty")
    for proc in range(3):
        assert "finished" in read_when_complete(tmp_path / ("o.%d" % proc), "finished")


def test_condor_rm_idle_job_never_runs_and_running_job_is_cancelled(tmp_path, start_master,
                                                                    start_worker, tool):
    master = start_master()
    idle_job = write_script(tmp_path / "never.sh", "echo ran > %s/never.ran\n" % tmp_path)
    idle_cluster = submit_ok(tool, "executable = %s\nqueue\n" % idle_job)
    removed = tool("condor_rm", str(idle_cluster))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "All jobs in cluster %d have been marked for removal\n" % idle_cluster
    wait_until(lambda: not q_lines(tool, "-constraint", IDLE_OR_RUNNING), REQUEST_SHOWN_WITHIN,
               what="the removed job to leave the queue")
    gated = gated_job(tmp_path)
    running_cluster = submit_ok(tool, "executable = %s\noutput = %s/g.out\nqueue\n"
                                % (gated, tmp_path))
    start_worker(master.port)
    wait_until(lambda: len(q_lines(tool, "-constraint", "JobStatus==2")) == 1, JOB_RUNS_WITHIN,
               what="the gated job to run")
    assert tool("condor_rm", "%d.0" % running_cluster).stdout.strip() \
        == "Job %d.0 marked for removal" % running_cluster
    wait_until(lambda: not q_lines(tool, "-constraint", IDLE_OR_RUNNING), REQUEST_SHOWN_WITHIN,
               what="the running job to be removed")
    log = master.log()
    assert "job %d.0: idle -> removed: via condor_rm" % idle_cluster in log
    assert "job %d.0: running -> removed: via condor_rm" % running_cluster in log
    # Both are in history as removed; the cancelled one never got to write its output.
    # A removed job goes to history as the snapshot that shows it removed is written.
    wait_until(lambda: [j["JobStatus"] for j in Spool(master.workdir).history.read()] == [3, 3],
               REQUEST_SHOWN_WITHIN, what="both jobs in history as removed")
    (tmp_path / "go").write_text("")
    assert not (tmp_path / "never.ran").exists()
    assert not (tmp_path / "g.out").exists() or "finished" not in (tmp_path / "g.out").read_text()


def test_condor_rm_of_unknown_job_fails(start_master, tool):
    start_master()
    result = tool("condor_rm", "424242")
    assert result.returncode != 0
    assert "424242" in result.stderr


def test_drain_holds_new_jobs_and_master_exits_after_running_ones(tmp_path, start_master,
                                                                  start_worker, tool, workdir):
    master = start_master()
    start_worker(master.port)
    gated = gated_job(tmp_path)
    submit_ok(tool, "executable = %s\noutput = %s/first.out\nqueue\n" % (gated, tmp_path))
    wait_until(lambda: len(q_lines(tool, "-constraint", "JobStatus==2")) == 1, JOB_RUNS_WITHIN,
               what="the first job to run")
    open(os.path.join(workdir, "drain"), "w").close()
    later = write_script(tmp_path / "later.sh", "echo later\n")
    later_cluster = submit_ok(tool, "executable = %s\noutput = %s/later.out\nqueue\n"
                              % (later, tmp_path))
    assert master.proc.poll() is None
    (tmp_path / "go").write_text("")
    # The running job ends, then the master sees the queue empty under the drain: no later
    # than the job's result back and one more look.
    assert master.proc.wait(JOB_DONE_WITHIN) == 0
    assert "finished" in (tmp_path / "first.out").read_text()
    assert not (tmp_path / "later.out").exists()
    assert os.path.exists(os.path.join(workdir, "queue", "%d.job" % later_cluster))


def test_catalog_mode_lists_the_master_under_its_project(tmp_path, procs, start_master):
    port = free_port()
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    procs.start([shutil.which("catalog_server"), "-p", str(port), "-I", "127.0.0.1",
                 "-H", str(catalog_dir), "--update-host=127.0.0.1"], "catalog")
    project = "awq_test_%d" % os.getpid()
    start_master("--catalog-host", "127.0.0.1", "--catalog-port", str(port),
                 "--project-name", project)

    def listed():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/query.text" % port, timeout=5) as r:
                return "project %s" % project in r.read().decode(errors="replace")
        except OSError:
            return False
    # The master's first wait() reports to the catalog; if that came before the catalog
    # listened, Work Queue's next report follows one update period later.
    wait_until(listed, CATALOG_UPDATE_PERIOD + MASTER_WAITS_EVERY * LOAD_ALLOWANCE, interval=0.5,
               what="the catalog to list the project")


def test_condor_q_fails_when_the_heartbeat_is_stale(start_master, tool, workdir):
    master = start_master()
    assert tool("condor_q").returncode == 0
    master.stop()
    recent = tool("condor_q")
    assert recent.returncode == 0
    assert "not running" in recent.stderr
    with open(os.path.join(workdir, "stat", "latest"), "w") as handle:
        handle.write("WAITING=0\nRUNNING=0\nTIMESTAMP=%d\n" % (time.time() - 200))
    stale = tool("condor_q", "-constraint", "JobStatus==1")
    assert stale.returncode != 0
    assert stale.stdout == ""
    assert stale.stderr.startswith("ERROR: ") and "heartbeat" in stale.stderr


def test_condor_q_fails_when_no_master_ever_ran(tool):
    result = tool("condor_q")
    assert result.returncode != 0
    assert result.stderr.startswith("ERROR: ")


def test_second_master_on_the_same_spool_is_refused(start_master, workdir):
    first = start_master()
    second = subprocess.run([__import__("sys").executable, "-m", "awq.cli.alien_work_queue",
                             "--work-dir", workdir, "--port", "0"], capture_output=True,
                            text=True, env=product_env(workdir), timeout=60)
    assert second.returncode != 0
    assert "PID %d" % first.proc.pid in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.e2e
def test_master_rejects_unknown_arguments(workdir):
    result = subprocess.run([__import__("sys").executable, "-m", "awq.cli.alien_work_queue",
                             "--bogus"], capture_output=True, text=True,
                            env=product_env(workdir), timeout=60)
    assert result.returncode != 0
    assert "--bogus" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.e2e
def test_the_old_module_entry_says_where_the_master_went(workdir):
    result = subprocess.run([__import__("sys").executable, "-m", "awq.master"],
                            capture_output=True, text=True, env=product_env(workdir), timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("ERROR: ") and "awq.cli.alien_work_queue" in result.stderr


@pytest.mark.parametrize("wrapper", [False, True])
def test_job_wrapper_keeps_only_alien_variables(tmp_path, start_master, start_worker, tool,
                                                wrapper):
    args = ["--job-wrapper", os.path.join(os.path.dirname(os.path.dirname(__file__)), "etc",
                                          "alien_job_wrapper.sh")] if wrapper else []
    master = start_master(*args)
    start_worker(master.port)
    job = write_script(tmp_path / "job.sh", 'echo "this is a ${ALIEN_TEST_VARIABLE}${FILTERED_OUT}"\n')
    submit_ok(tool, "executable = job.sh\noutput = job.out\n"
                    "environment = ALIEN_TEST_VARIABLE=test;FILTERED_OUT=yabba\nqueue\n",
              cwd=str(tmp_path))
    text = read_when_complete(tmp_path / "job.out", "this is a")
    assert text.strip() == ("this is a test" if wrapper else "this is a testyabba")


def test_periodic_hold_and_remove_are_applied_like_htcondor(tmp_path, start_master, tool, workdir):
    start_master("--periodic-interval", "0.5")
    job = write_script(tmp_path / "pilot.sh", "echo pilot\n")
    held = submit_ok(tool, "executable = %s\nperiodic_hold = JobStatus == 1 && "
                           "CurrentTime - EnteredCurrentStatus >= 0\nqueue\n" % job)
    removed = submit_ok(tool, "executable = %s\nperiodic_remove = CurrentTime - QDate >= 0\n"
                              "queue\n" % job)
    wait_until(lambda: tool("condor_q", str(held), "-af", "JobStatus", "HoldReasonCode").stdout
               == "5 3\n", REQUEST_SHOWN_WITHIN, what="PeriodicHold to hold the job")
    reason = tool("condor_q", str(held), "-af", "HoldReason").stdout
    assert "PeriodicHold" in reason and "evaluated to TRUE" in reason
    wait_until(lambda: tool("condor_q", str(removed), "-af", "ClusterId").stdout == "",
               REMOVED_JOB_GONE_WITHIN, what="PeriodicRemove to remove the job")
    from awq.spool import Spool
    history = {j["ClusterId"]: j for j in Spool(workdir).history.read()}
    assert history[removed]["JobStatus"] == 3
    assert "PeriodicRemove" in history[removed]["RemoveReason"]


def test_a_pilot_script_rewritten_in_place_runs_in_its_new_version(tmp_path, start_master,
                                                                   start_worker, tool, workdir):
    # Work Queue caches the executable on the worker (sent once); a copy named by its
    # content keeps a script rewritten at the same path from running stale.
    master = start_master()
    start_worker(master.port)
    job = write_script(tmp_path / "agent.startup", "echo version-1\n")
    for version in (1, 2):
        if version == 2:
            write_script(tmp_path / "agent.startup", "echo version-2\n")
        submit_ok(tool, "executable = %s\noutput = %s/out.%d\nqueue\n" % (job, tmp_path, version))
        text = read_when_complete(tmp_path / ("out.%d" % version), "version-")
        assert text.strip() == "version-%d" % version
    shared = os.path.join(workdir, "shared")
    assert len(os.listdir(shared)) == 2 and os.stat(shared).st_mode & 0o077 == 0
