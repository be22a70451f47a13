"""Cancel means stopped: a removed, held or orphaned pilot ends on its worker within seconds.

Real master, real workers, real pilots (`sleep`), with the machine's CPUs busy.
Each pilot records its PID and process group in a file named after its job, so
the test knows exactly which processes are pilots, and ends them by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import pytest

from conftest import (LOAD_ALLOWANCE, PILOT_ENDS_WITHIN, REQUEST_SHOWN_WITHIN, TASK_STARTS_WITHIN,
                      WORKER_KILL_FLOOR, MasterHandle, master_on_port)
from testkit import free_port, pid_alive, wait_until

PILOT = """#!/bin/sh
read -r pid _ _ _ pgid _ < /proc/$$/stat
echo "$pid $pgid" >> {rundir}/$1
exec sleep {seconds}
"""


@pytest.fixture
def pilots(tmp_path):
    """Where pilots record themselves; every recorded pilot is killed by PID at the end."""
    rundir = tmp_path / "pilots"
    rundir.mkdir()
    yield rundir
    for pid, _ in recorded(rundir).values():
        for one in pid:
            try:
                os.kill(one, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def busy_cpus():
    """Two busy loops, as a loaded worker node has; ended by PID."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for loop in loops:
        loop.kill()
        loop.wait(10)


def recorded(rundir) -> Dict[str, Tuple[List[int], List[int]]]:
    """Job id -> (PIDs, process groups) of every start of its pilot."""
    result: Dict[str, Tuple[List[int], List[int]]] = {}
    for name in os.listdir(str(rundir)):
        with open(os.path.join(str(rundir), name)) as handle:
            rows = [line.split() for line in handle if len(line.split()) == 2]
        result[name] = ([int(r[0]) for r in rows], [int(r[1]) for r in rows])
    return result


def alive_pilots(rundir) -> Dict[str, List[int]]:
    """Job id -> PIDs of its pilots that still run `sleep`."""
    alive = {}
    for job, (pids, _) in recorded(rundir).items():
        running = [p for p in pids if pid_alive(p) and _runs_sleep(p)]
        if running:
            alive[job] = running
    return alive


def _runs_sleep(pid: int) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().split(b"\0")[0].endswith(b"sleep")
    except OSError:
        return False


def write_pilot(tmp_path, rundir, seconds: int = 300) -> str:
    path = tmp_path / "pilot.sh"
    path.write_text(PILOT.format(rundir=rundir, seconds=seconds))
    path.chmod(0o755)
    return str(path)


def submit_pilots(tool, pilot: str, count: int, extra: str = "") -> int:
    result = tool("condor_submit", stdin="executable = %s\narguments = $(Cluster).$(Process)\n"
                                         "%squeue %d\n" % (pilot, extra, count))
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().rsplit(" ", 1)[-1].rstrip("."))


def running_count(tool) -> int:
    result = tool("condor_q", "-constraint", "JobStatus == 2")
    return len(result.stdout.splitlines()) if result.returncode == 0 else -1


def test_every_task_of_200_leads_its_own_process_group(tmp_path, pilots, busy_cpus, start_master,
                                                       start_worker, tool):
    master = start_master()
    start_worker(master.port, cores=100)
    start_worker(master.port, cores=100)
    pilot = write_pilot(tmp_path, pilots, seconds=3)
    submit_pilots(tool, pilot, 200)
    wait_until(lambda: len(recorded(pilots)) == 200, 120, interval=0.5,
               what="200 pilots to start")
    for job, (pids, groups) in recorded(pilots).items():
        assert pids == groups, "job %s: pilot %s in groups %s" % (job, pids, groups)


# work_queue_worker's main loop waits on its manager's connection at most this long a round;
# the kernel closes a killed master's sockets, and the closed link ends the wait at once,
# but the round the worker was in (starting or reporting tasks) finishes first.
WORKER_ROUND_WITHIN = 5.0
# A worker whose master died kills all its tasks as it disconnects: none younger than
# WORKER_KILL_FLOOR.
ORPHANS_END_WITHIN = (WORKER_ROUND_WITHIN + WORKER_KILL_FLOOR) * LOAD_ALLOWANCE

REMOVE_AFTER = 20  # s after submit when periodic_remove turns true
# QDate is in whole seconds, and periodic_remove is looked at every --periodic-interval (1 s
# here): it turns true, as the master sees it, this long after REMOVE_AFTER at most.
PERIODIC_REMOVE_GRANULARITY = 1 + 1


@pytest.mark.parametrize("how", ["condor_rm", "periodic_remove"])
def test_removed_pilots_end_and_the_worker_takes_new_work(tmp_path, pilots, busy_cpus, start_master,
                                                          start_worker, tool, how):
    master = start_master("--periodic-interval", "1")
    start_worker(master.port, cores=60)
    pilot = write_pilot(tmp_path, pilots)
    extra = "periodic_remove = CurrentTime - QDate > %d\n" % REMOVE_AFTER \
        if how == "periodic_remove" else ""
    submitted = time.time()
    submit_pilots(tool, pilot, 60, extra)
    wait_until(lambda: len(alive_pilots(pilots)) == 60, REMOVE_AFTER, interval=0.5,
               what="60 running pilots")
    if how == "condor_rm":
        assert tool("condor_rm", "-all").returncode == 0
        removed_at = time.time()
    else:
        # HTCondor's granularity: the expression is looked at every --periodic-interval s.
        removed_at = submitted + REMOVE_AFTER + PERIODIC_REMOVE_GRANULARITY
    wait_until(lambda: not alive_pilots(pilots),
               max(0, removed_at - time.time()) + PILOT_ENDS_WITHIN,
               interval=0.2, what="every removed pilot to end")
    ended_after = time.time() - removed_at
    assert ended_after <= PILOT_ENDS_WITHIN, \
        "%s: the last pilot ended %.1f s after removal" % (how, ended_after)
    newcomer = write_pilot(tmp_path, pilots, seconds=1)
    cluster = submit_pilots(tool, newcomer, 1)
    wait_until(lambda: "%d.0" % cluster in recorded(pilots), TASK_STARTS_WITHIN, interval=0.2,
               what="a new job to start on the same worker")


def test_condor_hold_stops_the_pilot(tmp_path, pilots, busy_cpus, start_master, start_worker,
                                     tool, workdir):
    master = start_master()
    start_worker(master.port, cores=60)
    pilot = write_pilot(tmp_path, pilots)
    cluster = submit_pilots(tool, pilot, 60)
    wait_until(lambda: len(alive_pilots(pilots)) == 60, 120, interval=0.5,
               what="60 running pilots")
    assert tool("condor_hold", str(cluster)).returncode == 0
    wait_until(lambda: not alive_pilots(pilots), PILOT_ENDS_WITHIN, interval=0.2,
               what="every held pilot to end")
    wait_until(lambda: tool("condor_q", "-af", "JobStatus").stdout.split() == ["5"] * 60,
               REQUEST_SHOWN_WITHIN, what="condor_q to show the 60 jobs held")


def test_kill_minus_nine_of_the_master_leaves_no_orphan_and_never_two_copies(
        tmp_path, procs, pilots, workdir, start_worker, tool):
    port = free_port()

    def start(round_number: int) -> MasterHandle:
        return master_on_port(procs, workdir, port, round_number)
    master = start(0)
    for _ in range(4):
        start_worker(port, cores=250)
    pilot = write_pilot(tmp_path, pilots)
    submit_pilots(tool, pilot, 1000)
    wait_until(lambda: len(alive_pilots(pilots)) == 1000, 240, interval=1,
               what="1000 running pilots")
    first_generation = {job: pids[0] for job, (pids, _) in recorded(pilots).items()}
    master.proc.send_signal(signal.SIGKILL)
    master.proc.wait(10)
    start(1)
    deadline = time.monotonic() + ORPHANS_END_WITHIN
    worst = 0
    while time.monotonic() < deadline:
        alive = alive_pilots(pilots)
        worst = max([worst] + [len(pids) for pids in alive.values()])
        orphans = [job for job, pid in first_generation.items() if pid_alive(pid) and _runs_sleep(pid)]
        if not orphans:
            break
        time.sleep(0.2)
    assert not orphans, "%d pilots of the dead master still run" % len(orphans)
    # The requeued copies start again; at no sample did one job run twice.
    wait_until(lambda: len(alive_pilots(pilots)) == 1000, 240, interval=1,
               what="1000 requeued pilots running again")
    for _ in range(10):
        worst = max([worst] + [len(pids) for pids in alive_pilots(pilots).values()])
        time.sleep(0.2)
    assert worst == 1
