"""Issue 7: the released HTCondor clients, unchanged, against a live master and real workers.

Each test imports the client (Parsl's CondorProvider, cobald-tardis' HTCondorAdapter,
law's HTCondorJobManager, dask-jobqueue's HTCondorCluster) and drives its own code:
the client builds its own command lines and parses our answers with its own
parser. Our commands are first on PATH through small wrappers, so what the
client runs is `condor_submit` etc. exactly as it would on an HTCondor site.
A client that is not installed is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time

import pytest

from conftest import JOB_DONE_WITHIN, JOB_RUNS_WITHIN, PYTHON, REMOVED_JOB_GONE_WITHIN, REPO
from testkit import wait_until

TOOLS = ("condor_submit", "condor_q", "condor_rm", "condor_status", "condor_history",
         "condor_hold", "condor_release", "condor_suspend", "condor_continue", "condor_version")


@pytest.fixture
def condor_path(tmp_path, workdir, monkeypatch):
    """A bin directory with our condor_* first on PATH, bound to this test's spool."""
    bindir = tmp_path / "condor-bin"
    bindir.mkdir()
    for name in TOOLS:
        wrapper = bindir / name
        wrapper.write_text('#!/bin/sh\nPYTHONPATH="%s" AWQ_WORKDIR="%s" exec "%s" -m awq.cli.%s'
                           ' "$@"\n' % (REPO, workdir, PYTHON, name))
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")))
    monkeypatch.delenv("AWQ_WORKDIR", raising=False)
    return str(bindir)


def queue_status(workdir: str) -> dict:
    """{job id: JobStatus} of what condor_q lists: the test's own look, beside the client's."""
    out = subprocess.run([PYTHON, "-m", "awq.cli.condor_q", "-af:j", "JobStatus"],
                         capture_output=True, text=True, check=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=REPO, AWQ_WORKDIR=workdir))
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


# --------------------------------------------------------------------------- Parsl


def test_parsl_condor_provider(tmp_path, condor_path, start_master, start_worker):
    from parsl.jobs.states import JobState
    from parsl.providers import CondorProvider

    master = start_master()
    start_worker(master.port, cores=2)
    scripts = tmp_path / "parsl-scripts"
    scripts.mkdir()
    # Parsl's own options: environment (a quote in a value), worker_init, cores and memory.
    provider = CondorProvider(init_blocks=0, max_blocks=2, cmd_timeout=60, cores_per_slot=1,
                              mem_per_slot=0.25, environment={"PARSL_SITE": "awq's"},
                              worker_init="export PARSL_INIT=done")
    provider.script_dir = str(scripts)

    short = provider.submit("echo parsl block ran on $JOBNAME at $PARSL_SITE: $PARSL_INIT "
                            "$PARSL_CORES $PARSL_MEMORY_GB", 1, job_name="short")
    long = provider.submit("sleep 300", 1, job_name="long")
    assert short.endswith(".0") and long.endswith(".0"), (short, long)

    def state(job_id):
        return provider.status([job_id])[0].state
    wait_until(lambda: state(long) == JobState.RUNNING, JOB_RUNS_WITHIN, 0.2,
               what="the long block running")
    wait_until(lambda: state(short) == JobState.COMPLETED, JOB_DONE_WITHIN, 0.2,
               what="the short block completed (kept by leave_in_queue)")
    outputs = [p for p in scripts.iterdir() if p.name.endswith(".stdout")
               and "short" in p.name]
    assert len(outputs) == 1
    # SingleNodeLauncher's own lines around the command's; JOBNAME came through `environment`.
    lines = outputs[0].read_text().splitlines()
    assert lines[-1] == "All workers done" and \
        lines[-2] == "parsl block ran on %s at awq\"s: done 1 0.25" \
        % outputs[0].name[:-len(".stdout")], lines  # Parsl turns ' into " on purpose

    assert provider.cancel([long]) == [True]
    assert state(long) == JobState.CANCELLED
    # Parsl's cancel runs condor_rm and returns: from there on it is the master's removal.
    wait_until(lambda: long not in queue_status(master.workdir), REMOVED_JOB_GONE_WITHIN, 0.2,
               what="the cancelled block gone from condor_q")
    assert provider.cancel([short]) == [True]
    wait_until(lambda: queue_status(master.workdir) == {}, REMOVED_JOB_GONE_WITHIN, 0.2,
               what="an empty queue")


# --------------------------------------------------------------------------- TARDIS


def tardis_adapter(tmp_path, jdl_body: str):
    from tardis.adapters.sites.htcondor import HTCondorAdapter
    from tardis.configuration.configuration import Configuration

    jdl = tmp_path / "drone.jdl"
    jdl.write_text(jdl_body)
    Configuration().update_config({
        "Sites": [{"name": "AwqSite", "adapter": "HTCondor", "quota": 2}],
        "AwqSite": {
            "MachineTypes": ["pilot"],
            "MachineTypeConfiguration": {"pilot": {"jdl": str(jdl)}},
            "MachineMetaData": {"pilot": {"Cores": 1, "Memory": 1, "Disk": 1}},
            "bulk_size": 10,
            "bulk_delay": 0.05,
        },
    })
    return HTCondorAdapter(machine_type="pilot", site_name="AwqSite")


def test_tardis_htcondor_adapter(tmp_path, condor_path, start_master, start_worker):
    from tardis.exceptions.tardisexceptions import TardisResourceStatusUpdateFailed
    from tardis.interfaces.siteadapter import ResourceStatus
    from tardis.utilities.attributedict import AttributeDict

    master = start_master()
    start_worker(master.port, cores=2)
    drone = tmp_path / "drone.sh"
    drone.write_text("#!/bin/sh\necho \"drone $TardisDroneUuid $*\"\n"
                     "[ \"$TardisDroneUuid\" = long-drone ] && exec sleep 300\nexit 0\n")
    drone.chmod(0o755)
    adapter = tardis_adapter(tmp_path, (
        "executable = %s\narguments = ${Arguments}\n"
        # The JDL is a string.Template for TARDIS: $$ is a literal $.
        "output = %s/$$(Cluster).$$(Process).out\nerror = %s/$$(Cluster).$$(Process).err\n"
        "log = %s/drones.log\nenvironment = ${Environment}\n"
        "request_cpus = ${Cores}\nrequest_memory = ${Memory}\nrequest_disk = ${Disk}\n")
        % (drone, tmp_path, tmp_path, tmp_path))
    mapping = AttributeDict(Cores=1, Memory=1024, Disk=1024 * 1024)

    async def scenario():
        def attrs(uuid):
            return AttributeDict(drone_uuid=uuid, obs_machine_meta_data_translation_mapping=mapping)
        # One bulk call: a single `condor_submit -verbose -maxjobs 2` with two queue statements.
        long, short = await asyncio.gather(adapter.deploy_resource(attrs("long-drone")),
                                           adapter.deploy_resource(attrs("short-drone")))
        assert long.remote_resource_uuid.split(".")[1] == "0"
        assert short.remote_resource_uuid == long.remote_resource_uuid[:-1] + "1"

        async def status(resource):
            return (await adapter.resource_status(resource)).resource_status

        async def until(resource, wanted, what):
            deadline = time.monotonic() + 60
            while await status(resource) != wanted:
                assert time.monotonic() < deadline, "timed out waiting for " + what
                await asyncio.sleep(0.2)

        await until(long, ResourceStatus.Running, "the long drone running")
        await until(short, ResourceStatus.Deleted, "the short drone done and gone")
        out = tmp_path / ("%s.out" % short.remote_resource_uuid)
        assert out.read_text() == "drone short-drone --cores=1 --memory=1024 --disk=1048576 " \
            "--uuid=short-drone\n"
        # A drone that already left: TARDIS's graceful path, from our "Job C.P not found".
        for gone_call in (adapter.stop_resource, adapter.terminate_resource):
            with pytest.raises(TardisResourceStatusUpdateFailed):
                await gone_call(short)
        await adapter.stop_resource(long)
        await until(long, ResourceStatus.Stopped, "the long drone suspended")
        await adapter.terminate_resource(long)
        await until(long, ResourceStatus.Deleted, "the long drone gone")
        return long.remote_resource_uuid

    long_id = asyncio.run(asyncio.wait_for(scenario(), 150))
    assert long_id not in queue_status(master.workdir)


# --------------------------------------------------------------------------- law


def test_law_htcondor_job_manager(tmp_path, condor_path, start_master, start_worker):
    import law
    law.contrib.load("htcondor")
    from law.contrib.htcondor import HTCondorJobFileFactory, HTCondorJobManager

    master = start_master()
    start_worker(master.port, cores=2)
    job = tmp_path / "law_job.sh"
    # law's grouped submission passes the job's postfix (and a log name) as arguments.
    job.write_text("#!/bin/sh\necho \"law job $1 of $LAW_HTCONDOR_JOB_CLUSTER."
                   "$LAW_HTCONDOR_JOB_PROCESS\"\n"
                   "case \"$1\" in *long) exec sleep 300;; esac\nexit 0\n")
    job.chmod(0o755)
    manager = HTCondorJobManager()
    assert manager.htcondor_version and manager.htcondor_ge_v833  # from our condor_version
    assert manager.job_grouping_submit  # law's default: one file, `queue ... from (` items

    factory = HTCondorJobFileFactory(dir=str(tmp_path / "law"), mkdtemp=False, cleanup=False)
    job_file, config = factory.create(grouped_submission=True, executable=str(job),
                                      arguments=["first", "second"], postfix=["_short", "_long"])
    short_id, long_id = manager.submit(job_file, job_files=[job_file])
    assert long_id == short_id[:-1] + "1"

    def status(job_id):
        return manager.query(job_id)["status"]
    wait_until(lambda: status(long_id) == manager.RUNNING, JOB_RUNS_WITHIN, 0.2,
               what="the long law job running")
    # The short one finishes and leaves the queue: law finds it through condor_history.
    wait_until(lambda: status(short_id) == manager.FINISHED, JOB_DONE_WITHIN, 0.2,
               what="the short law job finished (through condor_history)")
    done = manager.query(short_id)
    assert done["code"] == 0 and done["error"] is None, done
    both = manager.query([short_id, long_id])
    assert (both[short_id]["status"], both[long_id]["status"]) == \
        (manager.FINISHED, manager.RUNNING)
    out = tmp_path / "law" / "stdout_short.txt"
    assert out.read_text() == "law job _short of %s\n" % short_id

    manager.cancel(long_id)
    wait_until(lambda: long_id not in queue_status(master.workdir), REMOVED_JOB_GONE_WITHIN,
               0.2, what="the cancelled law job gone from condor_q")
    removed = manager.query(long_id)
    # Status 3 in condor_history: law calls it failed, with our RemoveReason as the error.
    assert removed["status"] == manager.FAILED and removed["error"].startswith("via condor_rm"), \
        removed


# --------------------------------------------------------------------------- dask-jobqueue


def history(workdir: str, job_id: str, *attrs: str) -> list:
    out = subprocess.run([PYTHON, "-m", "awq.cli.condor_history", job_id, "-af"] + list(attrs),
                         capture_output=True, text=True, check=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=REPO, AWQ_WORKDIR=workdir))
    return out.stdout.split()


def test_dask_jobqueue_htcondor_cluster(tmp_path, condor_path, start_master, start_worker):
    from dask.distributed import Client
    from dask_jobqueue import HTCondorCluster

    master = start_master()
    start_worker(master.port, cores=2)
    logs = tmp_path / "dask-logs"
    logs.mkdir()

    async def scenario():
        async with HTCondorCluster(
                cores=1, memory="512MB", disk="256MB", processes=1, python=sys.executable,
                log_directory=str(logs), asynchronous=True,
                scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
                worker_extra_args=["--host", "127.0.0.1", "--no-nanny"]) as cluster:
            assert "MY.JobId = \"$(ClusterId).$(ProcId)\"" in cluster.job_script()
            async with Client(cluster, asynchronous=True) as client:
                # First worker: its job runs, computes, and ends when the worker is retired.
                await cluster.scale(1)
                await asyncio.wait_for(client.wait_for_workers(1), 90)
                assert await client.submit(lambda x: x * 7, 6) == 42
                # It runs in a Work Queue sandbox (a worker holding no data can be retired).
                where = list((await client.run(os.getcwd)).values())
                assert len(where) == 1 and where[0].startswith(str(tmp_path / "worker1")), where
                first = next(iter(cluster.workers.values())).job_id
                deadline = time.monotonic() + 60
                # dask keeps a worker that still holds a result; it is released soon after.
                while not await client.retire_workers(close_workers=True):
                    assert time.monotonic() < deadline, "dask never retired the first worker"
                    await asyncio.sleep(0.2)
                while history(master.workdir, first, "JobStatus", "ExitCode") != ["4", "0"]:
                    assert time.monotonic() < deadline, "the retired worker's job never completed"
                    await asyncio.sleep(0.2)
                # Second worker: running when the cluster closes, so close() runs condor_rm.
                await cluster.scale(2)
                await asyncio.wait_for(client.wait_for_workers(1), 90)
                second = [job.job_id for job in cluster.workers.values() if job.job_id != first]
                assert len(second) == 1
                # condor_q may say running a moment after the worker connects (HTCondor too).
                while queue_status(master.workdir).get(second[0]) != "2":
                    assert time.monotonic() < deadline + 30, "condor_q never showed it running"
                    await asyncio.sleep(0.2)
        return first, second[0]

    first, second = asyncio.run(asyncio.wait_for(scenario(), 150))
    assert first.endswith(".0") and second.endswith(".0") and first != second
    # close() ran condor_rm on the running worker's job: it leaves the queue, removed.
    wait_until(lambda: second not in queue_status(master.workdir), REMOVED_JOB_GONE_WITHIN, 0.2,
               what="the dask worker's job gone after close")
    assert history(master.workdir, second, "JobStatus") == ["3"]
    # The completed worker's log files, named through $F(MY.JobId).
    err = (logs / ("worker-%s.err" % first)).read_text()
    assert "Starting Worker" in err and "Stopping worker" in err, err
    assert (logs / ("worker-%s.out" % first)).exists()
