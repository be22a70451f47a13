"""The private single-node Slurm that the fleet tests and benchmarks start for themselves."""

from __future__ import annotations

import os
import socket

import pytest

import slurm_cluster as slurm_module
from slurm_cluster import (JOB_END_TIMEOUT, JOB_START_TIMEOUT, SlurmCluster, SlurmError,
                           SlurmUnavailable, wait_for, pid_alive, port_listening, slurm_cluster)  # noqa: F401

# Every test here starts Slurm's daemons: the e2e tier.
pytestmark = pytest.mark.e2e


def read_when_written(path: str) -> str:
    """The file's text once it ends with a newline (the job's last echo)."""
    def complete() -> str:
        try:
            with open(path) as handle:
                text = handle.read()
        except FileNotFoundError:
            return ""
        return text if text.endswith("\n") else ""
    return str(wait_for(complete, JOB_START_TIMEOUT, "%s to be written" % path))


def test_the_node_comes_up_idle_with_the_cpus_it_was_given(slurm_cluster):
    assert slurm_cluster.node_state() == "idle"
    cpus = slurm_cluster.run(["sinfo", "--noheader", "--format", "%c %P"]).stdout.split()
    # More CPUs than this machine has: config_overrides lets pilots that sleep share cores.
    assert cpus == [str(slurm_cluster.cpus), slurm_cluster.partition + "*"]
    assert slurm_cluster.env["SLURM_CONF"] == slurm_cluster.conf_path
    assert all(pid_alive(pid) for pid in slurm_cluster.daemon_pids.values())


def test_a_batch_job_runs_and_writes_its_output(slurm_cluster, tmp_path):
    output = str(tmp_path / "job.out")
    job_id = slurm_cluster.sbatch(["--output", output, "--wrap",
                                   'echo "job $SLURM_JOB_ID on $SLURM_JOB_PARTITION"'])
    assert read_when_written(output) == "job %s on %s\n" % (job_id, slurm_cluster.partition)
    assert slurm_cluster.wait_for_job_state(job_id, {"COMPLETED"}) == "COMPLETED"


def test_a_sleeping_job_runs_until_scancel_ends_it(slurm_cluster, tmp_path):
    pid_file = str(tmp_path / "job.pid")
    name = "awq pilot|1"
    job_id = slurm_cluster.sbatch(["--job-name", name, "--output", "/dev/null", "--wrap",
                                   'echo $$ > "%s"; exec sleep 600' % pid_file])
    slurm_cluster.wait_for_job_state(job_id, {"RUNNING"}, JOB_START_TIMEOUT)
    job_pid = int(read_when_written(pid_file))
    assert pid_alive(job_pid)
    [listed] = [job for job in slurm_cluster.jobs() if job.job_id == job_id]
    assert (listed.name, listed.state, listed.user) == (name, "RUNNING", "root")

    slurm_cluster.scancel([job_id])
    assert slurm_cluster.wait_for_job_state(job_id, {"CANCELLED", None}) in ("CANCELLED", None)
    wait_for(lambda: not pid_alive(job_pid), JOB_END_TIMEOUT, "the cancelled job's sleep to end")
    assert slurm_cluster.jobs() == []


# Where Debian's packaged Slurm and munge keep their sockets, state and logs.
SYSTEM_PLACES = ("/run/munge", "/var/lib/munge", "/var/log/munge", "/etc/munge", "/run/slurm",
                 "/var/lib/slurm", "/var/log/slurm", "/var/spool/slurmd", "/etc/slurm")


def system_files() -> dict:
    """Every file under the system Slurm's and munge's places, with its size and mtime."""
    found = {}
    for place in SYSTEM_PLACES:
        for directory, _, names in os.walk(place):
            for name in [""] + names:
                path = os.path.join(directory, name)
                info = os.lstat(path)
                found[path] = (info.st_size, info.st_mtime_ns)
    return found


def test_teardown_cancels_jobs_ends_every_daemon_by_pid_and_system_slurm_is_untouched(tmp_path):
    pid_file = str(tmp_path / "job.pid")
    before = system_files()
    with SlurmCluster(cpus=2) as cluster:
        directory = cluster.directory
        daemon_pids = dict(cluster.daemon_pids)
        ports = cluster.ports
        assert all(port_listening(port) for port in ports)
        job_id = cluster.sbatch(["--output", "/dev/null", "--wrap",
                                 'echo $$ > "%s"; exec sleep 600' % pid_file])
        cluster.wait_for_job_state(job_id, {"RUNNING"}, JOB_START_TIMEOUT)
        job_pid = int(read_when_written(pid_file))
    assert sorted(daemon_pids) == ["munged", "slurmctld", "slurmd"]
    assert [name for name, pid in daemon_pids.items() if pid_alive(pid)] == []
    assert not pid_alive(job_pid)
    assert [port for port in ports if port_listening(port)] == []
    assert not os.path.exists(directory)
    assert system_files() == before


def test_teardown_ends_a_job_process_that_escaped_slurms_tracking(tmp_path):
    # A daemonized child (a worker's own helper, say) leaves the process tree that
    # proctrack/linuxproc follows, so scancel misses it; our marker variable does not.
    pid_file = str(tmp_path / "escaped.pid")
    with SlurmCluster(cpus=2) as cluster:
        job_id = cluster.sbatch(["--output", "/dev/null", "--wrap",
                                 'setsid sh -c \'sleep 600 & echo $! > "%s"\'; exec sleep 600'
                                 % pid_file])
        escaped_pid = int(read_when_written(pid_file))
        cluster.scancel([job_id])
        cluster.wait_for_no_active_jobs()
        assert pid_alive(escaped_pid)
    assert not pid_alive(escaped_pid)


def test_a_missing_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(slurm_module, "SEARCH_PATH", str(tmp_path))
    with pytest.raises(SlurmUnavailable, match="install Debian's munge slurmctld slurmd slurm-client"):
        SlurmCluster().start()


def test_a_daemon_that_cannot_start_is_reported_with_its_log_and_nothing_is_left(monkeypatch):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    choose_ports = slurm_module.free_ports
    monkeypatch.setattr(slurm_module, "free_ports", lambda count: [taken] + choose_ports(count - 1))
    cluster = SlurmCluster(cpus=2)
    try:
        with pytest.raises(SlurmError, match="(?s)slurmctld exited.*Address already in use"):
            cluster.start()
    finally:
        holder.close()
    assert cluster.daemon_pids and not any(pid_alive(pid) for pid in cluster.daemon_pids.values())
    assert cluster.directory == ""
