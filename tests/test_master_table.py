"""The master's rules alone: job table transitions, periodic expressions, task bookkeeping.

A fake backend stands in for Work Queue here because these are rules on
dicts; the end-to-end tests run the same code against real workers.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import pytest

from awq import classad, jobs, periodic
from awq.dispatch import Dispatcher, TaskMap
from awq.jobs import JobStatus
from awq.jobtable import JobTable
from awq.master import Master
from awq.pacing import ManualClock
from awq.spool import Spool
from awq.task_watch import CAPACITY_INTERVAL, FULL_SWEEP_INTERVAL
from awq.tasks import TaskResult, TaskSpec, TaskState


class FakeBackend:
    """Implements awq.tasks.TaskBackend with a dict of task states."""

    port = 0

    def __init__(self) -> None:
        self.states: Dict[int, TaskState] = {}
        self.cancelled: List[int] = []
        self.results: List[TaskResult] = []
        self.total_cores = 0

    def submit(self, spec: TaskSpec) -> int:
        task_id = len(self.states) + 1
        self.states[task_id] = TaskState.WAITING
        return task_id

    def cancel(self, task_id: int) -> None:
        self.cancelled.append(task_id)
        self.states[task_id] = TaskState.UNKNOWN

    def task_state(self, task_id: int) -> TaskState:
        return self.states.get(task_id, TaskState.UNKNOWN)

    def task_host(self, task_id: int) -> Optional[str]:
        return "127.0.0.1:9" if self.states.get(task_id) == TaskState.ON_WORKER else None

    def task_address(self, task_id: int) -> Optional[str]:
        if self.states.get(task_id) != TaskState.ON_WORKER:
            return None
        return getattr(self, "addresses", {}).get(task_id, "127.0.0.1:9")

    def wait(self, timeout: int) -> Optional[TaskResult]:
        return self.results.pop(0) if self.results else None

    def empty(self) -> bool:
        return not any(s != TaskState.UNKNOWN for s in self.states.values())

    manager_count = 1

    def stranded_tasks(self) -> List[int]:
        return []

    def enable_wake_on_child_exit(self) -> bool:
        return False

    def stats(self) -> Dict[str, int]:
        return {"workers_connected": 1, "total_cores": self.total_cores,
                "committed_cores": sum(s == TaskState.ON_WORKER for s in self.states.values())}

    def reap_children(self) -> List[int]:
        return []

    def forget_cached(self, local: str) -> None:
        pass

    def tell_jobs_held_back(self, count: int) -> None:
        self.held_back = count


def one_job_submitted(clock=None):
    """(backend, table, dispatcher) with job 1.0 handed to Work Queue as task 1."""
    backend, table = FakeBackend(), JobTable()
    table.put(ad())
    dispatcher = Dispatcher(backend, clock=clock or ManualClock())
    assert dispatcher.submit_idle(table) == 1
    return backend, table, dispatcher


def ad(**extra) -> dict:
    base = {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "QDate": 1, "Cmd": "/bin/true",
            "EnteredCurrentStatus": 1}
    base.update(extra)
    return base


def master_with(tmp_path, job: dict, periodic_interval: float = 0.001) -> Master:
    master = Master(Spool(str(tmp_path / "spool"), create=True), FakeBackend(), owner="u",
                    periodic_interval=periodic_interval, clock=ManualClock())
    master.table.put(job)
    return master


def test_periodic_release_clears_the_hold(tmp_path):
    master = master_with(tmp_path, ad(JobStatus=5, HoldReason="x", HoldReasonCode=3,
                                      PeriodicRelease=classad.Expr("JobStatus == 5")))
    master.apply_periodic_expressions()
    job = master.table.job((1, 0))
    assert job["JobStatus"] == 1 and "HoldReason" not in job and job["LastJobStatus"] == 5
    assert type(job["JobStatus"]) is int  # the snapshot's unpickler knows plain data only


def test_false_or_undefined_expressions_change_nothing(tmp_path):
    master = master_with(tmp_path, ad(PeriodicHold=classad.Expr("Missing > 3"),
                                      PeriodicRemove=classad.Expr("CurrentTime - QDate < 0")))
    master.table.mark_saved()
    master.apply_periodic_expressions()
    assert master.table.job((1, 0))["JobStatus"] == 1 and not master.table.changed


def test_running_job_held_by_expression_loses_its_task(tmp_path):
    master = master_with(tmp_path, ad(JobStatus=2, PeriodicHold=True))
    master.dispatcher.tasks.add((1, 0), 42)
    master.apply_periodic_expressions()
    job = master.table.job((1, 0))
    assert job["JobStatus"] == 5 and job["HoldReasonCode"] == 3
    assert master.backend.cancelled == [42] and (1, 0) not in master.dispatcher.tasks


def test_periodic_remove_wins_over_hold():
    job = ad(PeriodicHold=True, PeriodicRemove=classad.Expr("QDate < 10"))
    assert periodic.periodic_action(job, now=100).kind == "remove"
    assert periodic.periodic_action(ad(JobStatus=4, PeriodicRemove=True), now=100) is None


def test_task_map_keeps_both_directions_in_step():
    tasks = TaskMap()
    tasks.add((1, 0), 7)
    tasks.add((1, 1), 8)
    assert tasks.pop_task(7) == (1, 0) and (1, 0) not in tasks
    assert tasks.pop_job((1, 1)) == 8 and tasks.pop_task(8) is None and len(tasks) == 0


def test_a_finished_task_never_sends_its_job_back_to_idle():
    backend, table, dispatcher = one_job_submitted()
    seen = []
    for state in (TaskState.WAITING, TaskState.ON_WORKER, TaskState.FINISHED):
        backend.states[1] = state
        dispatcher.check_every_task(table)
        seen.append(table.status((1, 0)))
    assert seen == [JobStatus.IDLE, JobStatus.RUNNING, JobStatus.RUNNING]
    dispatcher.record_result(TaskResult(1, True, 0, ""), table)
    assert table.status((1, 0)) == JobStatus.COMPLETED and table.job((1, 0))["NumJobStarts"] == 1


def test_a_task_back_in_the_queue_requeues_its_job():
    backend, table, dispatcher = one_job_submitted()
    backend.states[1] = TaskState.ON_WORKER
    dispatcher.check_every_task(table)
    backend.states[1] = TaskState.WAITING  # the worker went away
    dispatcher.check_every_task(table)
    backend.states[1] = TaskState.ON_WORKER
    dispatcher.check_every_task(table)
    job = table.job((1, 0))
    assert job["JobStatus"] == JobStatus.RUNNING and job["NumJobStarts"] == 2


def test_running_tasks_are_asked_about_once_a_worker_left_or_a_full_sweep_is_due():
    class Departures(FakeBackend):
        removed = 0

        def stats(self) -> Dict[str, int]:
            return dict(super().stats(), total_workers_removed=self.removed)
    clock = ManualClock()
    backend, table = Departures(), JobTable()
    table.put(ad())
    dispatcher = Dispatcher(backend, clock=clock)
    dispatcher.submit_idle(table)
    backend.states[1] = TaskState.ON_WORKER
    dispatcher.check_tasks(table)                 # a waiting task is always looked at
    assert table.status((1, 0)) == JobStatus.RUNNING
    backend.states[1] = TaskState.WAITING         # given back by a worker that stays
    clock.advance(CAPACITY_INTERVAL)
    dispatcher.check_tasks(table)
    assert table.status((1, 0)) == JobStatus.RUNNING   # no worker left: running ones not asked
    backend.removed = 1                           # Work Queue removed a worker
    clock.advance(CAPACITY_INTERVAL)
    dispatcher.check_tasks(table)
    assert table.status((1, 0)) == JobStatus.IDLE
    backend.states[1] = TaskState.ON_WORKER
    clock.advance(CAPACITY_INTERVAL)
    dispatcher.check_tasks(table)                 # waiting again: looked at
    backend.states[1] = TaskState.WAITING
    clock.advance(CAPACITY_INTERVAL)
    dispatcher.check_tasks(table)
    assert table.status((1, 0)) == JobStatus.RUNNING
    clock.advance(FULL_SWEEP_INTERVAL)            # but every task is looked at this often
    dispatcher.check_tasks(table)
    job = table.job((1, 0))
    assert job["JobStatus"] == JobStatus.IDLE and job["NumJobStarts"] == 2


def test_free_cores_are_asked_of_work_queue_only_while_jobs_wait_for_a_task():
    class Counting(FakeBackend):
        asked = 0

        def stats(self) -> Dict[str, int]:
            self.asked += 1
            return super().stats()
    clock = ManualClock()
    backend, table = Counting(), JobTable()
    table.put(ad())
    dispatcher = Dispatcher(backend, clock=clock)
    assert dispatcher.submit_idle(table) == 1 and backend.asked == 1
    clock.advance(CAPACITY_INTERVAL)
    assert dispatcher.submit_idle(table) == 0 and backend.asked == 1  # the idle job has its task


def test_a_job_whose_task_cannot_be_made_is_held_and_others_go_on():
    class Refusing(FakeBackend):
        def submit(self, spec: TaskSpec) -> int:
            if spec.tag == "1.0":
                raise ValueError("no such file")
            return super().submit(spec)
    table = JobTable()
    table.put(ad())
    table.put(ad(ProcId=1))
    assert Dispatcher(Refusing()).submit_idle(table) == 1
    assert table.status((1, 0)) == JobStatus.HELD and "no such file" in table.job((1, 0))["HoldReason"]
    assert table.status((1, 1)) == JobStatus.IDLE


def test_a_job_whose_expression_blows_up_is_held_and_the_others_go_on(tmp_path, monkeypatch):
    master = master_with(tmp_path, ad(PeriodicHold=classad.Expr("Boom > 1")))
    master.table.put(ad(ProcId=1, PeriodicRemove=True))
    real = periodic.periodic_action

    def exploding(job, now):
        if job["ProcId"] == 0:
            raise RecursionError("maximum recursion depth exceeded")
        return real(job, now)
    monkeypatch.setattr(periodic, "periodic_action", exploding)
    master.apply_periodic_expressions()
    held = master.table.job((1, 0))
    assert held["JobStatus"] == JobStatus.HELD and "RecursionError" in held["HoldReason"]
    assert master.table.job((1, 1))["JobStatus"] == JobStatus.REMOVED


def requested(master: Master, action: str, reason: str = "") -> dict:
    master.spool.requests.leave(action, [(1, 0)], reason)
    master.apply_requests()
    job = master.table.job((1, 0))
    master.intake.commit()  # carried out: the next request of this kind is a new one
    return job


def test_hold_release_suspend_continue_requests(tmp_path):
    master = master_with(tmp_path, ad(JobStatus=2, RemoteHost="127.0.0.1:9"))
    master.dispatcher.tasks.add((1, 0), 42)
    job = requested(master, "hold", "site maintenance")
    assert (job["JobStatus"], job["HoldReason"], job["HoldReasonCode"]) == (5, "site maintenance", 1)
    assert master.backend.cancelled == [42] and job["LastRemoteHost"] == "127.0.0.1:9"
    assert "RemoteHost" not in job
    assert requested(master, "suspend")["JobStatus"] == 5  # a held job is not suspended
    assert requested(master, "release")["JobStatus"] == 1
    assert requested(master, "suspend")["JobStatus"] == JobStatus.SUSPENDED
    assert master.dispatcher.submit_idle(master.table) == 0  # a suspended job does not start
    assert requested(master, "continue")["JobStatus"] == 1
    assert master.dispatcher.submit_idle(master.table) == 1


def test_leave_in_queue_keeps_a_finished_job_until_condor_rm(tmp_path):
    master = master_with(tmp_path, ad(JobStatus=4, LeaveJobInQueue=classad.Expr("JobStatus == 4")))
    master.table.put(ad(ProcId=1, JobStatus=4))
    assert [jobs.job_id(j) for j in master.table.retire_finished()] == [(1, 1)]
    assert (1, 0) in master.table
    requested(master, "rm")
    assert [jobs.job_id(j) for j in master.table.retire_finished()] == [(1, 0)]


def test_a_running_job_that_is_removed_keeps_its_last_host(tmp_path):
    master = master_with(tmp_path, ad())
    master.dispatcher.submit_idle(master.table)
    master.backend.states[1] = TaskState.ON_WORKER
    master.dispatcher.check_every_task(master.table)
    assert master.table.job((1, 0))["RemoteHost"] == "127.0.0.1:9"
    job = requested(master, "rm", "not needed")
    assert job["JobStatus"] == 3 and job["RemoveReason"] == "not needed"
    assert job["LastRemoteHost"] == "127.0.0.1:9" and master.backend.cancelled == [1]


def test_an_idle_job_bigger_than_every_worker_says_so_after_a_grace(tmp_path):
    master = master_with(tmp_path, ad(RequestCpus=8, EnteredCurrentStatus=1000))
    largest = {"workers_connected": 2, "max_cores": 4, "max_memory": 2000, "max_disk": 9000}
    master.publisher.note_unfit_jobs(largest, now=1030)
    assert "LastRejectedMatchReason" not in master.table.job((1, 0))  # within the grace
    master.publisher.note_unfit_jobs(largest, now=1100)
    assert master.table.job((1, 0))["LastRejectedMatchReason"] == \
        "no connected worker has 8 of cores (the largest has 4)"
    master.publisher.note_unfit_jobs(dict(largest, max_cores=8), now=1200)
    assert "LastRejectedMatchReason" not in master.table.job((1, 0))


def test_restart_requeues_running_jobs_and_keeps_jobs_left_in_queue():
    table = JobTable()
    finished = table.restore({"max_cluster_id": 3, "jobs": {
        (1, 0): ad(JobStatus=2, RemoteHost="127.0.0.1:9", NumJobStarts=1),
        (2, 0): ad(ClusterId=2, JobStatus=4, LeaveJobInQueue=True),
        (3, 0): ad(ClusterId=3, JobStatus=4)}})
    assert [jobs.job_id(j) for j in finished] == [(3, 0)]
    requeued = table.job((1, 0))
    assert requeued["JobStatus"] == 1 and requeued["LastJobStatus"] == 2
    assert requeued["LastRemoteHost"] == "127.0.0.1:9" and "RemoteHost" not in requeued
    assert table.status((2, 0)) == 4 and table.max_cluster_id == 3


def test_a_turn_that_raises_is_retried_and_the_master_goes_on(tmp_path, monkeypatch):
    from awq.master import RETRY_PAUSE_STEP
    master = master_with(tmp_path, ad())
    calls = []

    def flaky_flush(force=False):
        calls.append(force)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        master.stop_requested = True
    monkeypatch.setattr(master, "flush", flaky_flush)
    paused_from = master.clock.now()
    assert master.run() == 0
    assert len(calls) >= 2  # the failed turn, then the next one (and the last flush)
    assert master.clock.now() - paused_from >= RETRY_PAUSE_STEP  # it paused before the retry


def test_the_idle_index_follows_every_change():
    table = JobTable()
    for proc in range(4):
        table.add(ad(ProcId=proc))
    table.mark_running((1, 1))
    table.hold((1, 2), "x")
    table.requeue((1, 1), "worker gone")
    table.remove((1, 3), "rm")
    assert table.idle_jobs() == [(1, 0), (1, 1)]
    assert table.idle_jobs() == [jid for jid, j in table.items() if j["JobStatus"] == 1]
    table.release((1, 2), "ok")
    assert sorted(table.idle_jobs()) == [(1, 0), (1, 1), (1, 2)]


def test_a_request_for_many_jobs_is_one_file_and_reaches_every_job(tmp_path):
    master = master_with(tmp_path, ad())
    for cluster in range(2, 201):
        master.table.put(ad(ClusterId=cluster))
    master.spool.requests.leave("hold", [(c, 0) for c in range(1, 201)],
                                "disk full\nat the site")
    assert os.listdir(master.spool.request_dir("hold"))[0].startswith("batch.")
    assert len(os.listdir(master.spool.request_dir("hold"))) == 1
    master.apply_requests()
    held = [job for _, job in master.table.items() if job["JobStatus"] == 5]
    assert len(held) == 200 and {job["HoldReason"] for job in held} == {"disk full at the site"}
    master.apply_requests()  # seen once: nothing is applied twice
    assert master.intake.commit()   # one snapshot generation holds it: the file stays
    assert len(os.listdir(master.spool.request_dir("hold"))) == 1
    assert not master.intake.commit()
    assert os.listdir(master.spool.request_dir("hold")) == []


def after_the_intervals(clock: ManualClock) -> None:
    """Time enough for the dispatcher to look again at started tasks and free cores."""
    from awq.dispatch import NOTE_STARTED_INTERVAL
    clock.advance(max(CAPACITY_INTERVAL, NOTE_STARTED_INTERVAL))


def test_work_queue_gets_only_the_tasks_its_workers_can_start_soon():
    from awq.dispatch import MIN_WAITING
    backend, table, clock = FakeBackend(), JobTable(), ManualClock()
    for proc in range(MIN_WAITING * 3):
        table.put(ad(ProcId=proc))
    dispatcher = Dispatcher(backend, clock=clock)

    def submit_idle() -> int:  # each call a look: the intervals have passed
        after_the_intervals(clock)
        return dispatcher.submit_idle(table)
    assert submit_idle() == MIN_WAITING  # the rest wait in our table
    assert submit_idle() == 0
    for task_id in (1, 2, 3):
        backend.states[task_id] = TaskState.ON_WORKER
    assert submit_idle() == 3  # started jobs make room, oldest first
    assert [table.status((1, p)) for p in range(4)] == [JobStatus.RUNNING] * 3 + [JobStatus.IDLE]
    assert (1, MIN_WAITING + 2) in dispatcher.tasks and (1, MIN_WAITING + 3) not in dispatcher.tasks
    dispatcher.cancel((1, 5))  # a cancelled task leaves room too
    assert submit_idle() == 1


def test_thousands_of_free_cores_get_their_tasks_in_batches():
    from awq.dispatch import MAX_HANDOVER, MIN_WAITING
    backend, table, clock = FakeBackend(), JobTable(), ManualClock()
    backend.total_cores = 5000
    for proc in range(3000):
        table.put(ad(ProcId=proc))
    dispatcher = Dispatcher(backend, clock=clock)

    def submit_idle() -> int:
        after_the_intervals(clock)
        return dispatcher.submit_idle(table)
    batch = MIN_WAITING + MAX_HANDOVER
    assert submit_idle() == batch                   # not 3,000 at once: Work Queue walks them
    assert dispatcher.refill_wanted()               # and the master comes back soon for more
    assert submit_idle() == 0 and dispatcher.refill_wanted()
    for task_id in backend.states:                  # Work Queue sent the batch to workers
        backend.states[task_id] = TaskState.ON_WORKER
    assert submit_idle() == batch
    for task_id in backend.states:
        backend.states[task_id] = TaskState.ON_WORKER
    backend.total_cores = 2 * batch                 # every core busy now
    assert submit_idle() == MIN_WAITING
    assert not dispatcher.refill_wanted()           # nothing could start: no hurry


def test_a_master_with_held_back_jobs_wakes_within_the_refill_interval(tmp_path):
    from awq.dispatch import REFILL_INTERVAL
    master = master_with(tmp_path, ad(), periodic_interval=60)
    master.backend.total_cores = 1000
    for proc in range(1, 600):
        master.table.put(ad(ProcId=proc))
    master.table.mark_saved()
    master.apply_periodic_expressions()
    master.flush()                      # the heartbeat: written, not due for a while
    assert master.time_to_next_duty() > 1.0
    master.dispatcher.submit_idle(master.table)
    assert master.time_to_next_duty() <= REFILL_INTERVAL


def test_started_tasks_are_looked_for_at_most_every_interval():
    from awq.dispatch import NOTE_STARTED_INTERVAL
    clock = ManualClock()
    backend, table, dispatcher = one_job_submitted(clock)  # it has just looked
    backend.states[1] = TaskState.ON_WORKER
    dispatcher.submit_idle(table)
    assert table.status((1, 0)) == JobStatus.IDLE
    clock.advance(NOTE_STARTED_INTERVAL)                   # the interval is over
    dispatcher.submit_idle(table)
    assert table.status((1, 0)) == JobStatus.RUNNING


def test_the_running_and_finished_indexes_follow_every_change():
    table = JobTable()
    for proc in range(4):
        table.add(ad(ProcId=proc))
    table.mark_running((1, 0))
    table.mark_running((1, 1))
    table.complete((1, 1), 0)
    table.remove((1, 2), "rm")
    assert table.counts() == (1, 1)
    assert [jobs.job_id(j) for j in table.retire_finished()] == [(1, 1), (1, 2)]
    assert table.retire_finished() == [] and table.counts() == (1, 1)
    table.requeue((1, 0), "worker gone")
    assert table.counts() == (2, 0)
    assert (table.counts().idle, table.counts().running) == (2, 0)


def test_a_table_is_active_while_a_job_is_idle_or_running():
    table = JobTable()
    assert not table.active()
    table.add(ad())
    assert table.active()
    table.mark_running((1, 0))
    assert table.active()
    table.hold((1, 0), "x")
    assert not table.active()   # a drain does not wait for held jobs
    table.release((1, 0), "ok")
    table.remove((1, 0), "rm")
    assert not table.active()


def test_every_change_is_marked_for_the_next_snapshot_and_only_changes():
    table = JobTable()
    table.add(ad())
    assert table.changed
    table.mark_saved()
    table.annotate((1, 0), LastRejectedMatchReason=None)   # nothing to delete: no change
    assert not table.changed
    table.annotate((1, 0), LastRejectedMatchReason="too big")
    assert table.changed and table.job((1, 0))["LastRejectedMatchReason"] == "too big"
    table.mark_saved()
    table.mark_running((1, 0), "127.0.0.1:9")
    assert table.changed
    table.mark_saved()
    table.complete((1, 0), 0)
    assert [jobs.job_id(j) for j in table.retire_finished()] == [(1, 0)] and table.changed
    table.mark_saved()
    assert table.retire_finished() == [] and not table.changed


def test_each_transition_writes_its_user_log_event(tmp_path):
    log_path = tmp_path / "job.log"
    table = JobTable()
    table.add(ad(UserLog=str(log_path)))
    table.mark_running((1, 0), "127.0.0.1:9")
    table.hold((1, 0), "disk full")
    table.release((1, 0), "ok")          # HTCondor writes no event for a release
    table.mark_running((1, 0))
    table.complete((1, 0), 3)
    table.add(ad(ProcId=1, UserLog=str(log_path)))
    table.remove((1, 1), "not needed")
    events = [line.split(" ")[0:2] for line in log_path.read_text().splitlines()
              if line[:3].isdigit()]
    assert events == [["000", "(001.000.000)"], ["001", "(001.000.000)"],
                      ["012", "(001.000.000)"], ["001", "(001.000.000)"],
                      ["005", "(001.000.000)"], ["000", "(001.001.000)"],
                      ["009", "(001.001.000)"]]
    text = log_path.read_text()
    assert "<127.0.0.1:9>" in text and "<unknown>" in text and "disk full" in text
    assert "(return value 3)" in text and "not needed" in text


def test_work_queue_is_told_the_idle_jobs_kept_in_our_table():
    from awq.dispatch import MIN_WAITING
    backend, table = FakeBackend(), JobTable()
    for proc in range(MIN_WAITING + 10):
        table.put(ad(ProcId=proc))
    dispatcher = Dispatcher(backend)
    assert dispatcher.submit_idle(table) == MIN_WAITING
    # A factory sizes the fleet from tasks waiting + tasks left: together, every idle job.
    assert backend.held_back == 10
    table.put(ad(ProcId=MIN_WAITING + 10))
    dispatcher.submit_idle(table)
    assert backend.held_back == 11


def test_the_same_request_made_again_after_it_was_carried_out_is_carried_out_again(tmp_path):
    """hold/1.0 stays in the spool until two snapshots hold its result; condor_hold 1.0 after
    a release rewrites that file, and is a new request."""
    master = master_with(tmp_path, ad())
    master.spool.requests.leave("hold", [(1, 0)], "first")
    master.apply_requests()
    assert master.intake.commit()          # hold/1.0 is kept for the next generation
    master.spool.requests.leave("release", [(1, 0)])
    master.apply_requests()
    assert master.table.status((1, 0)) == JobStatus.IDLE
    _, first_mtime = master.spool.requests.stamp("hold", "1.0")
    master.spool.requests.leave("hold", [(1, 0)], "second")
    # Within one tick of the file system's clock the rewrite could keep the mtime: a
    # command started after the release never comes that soon, so say it did not.
    path = os.path.join(master.spool.requests.directory("hold"), "1.0")
    os.utime(path, ns=(first_mtime + 1, first_mtime + 1))
    master.apply_requests()
    assert master.table.job((1, 0))["HoldReason"] == "second"
    master.apply_requests()                # and only once
    master.intake.commit()
    master.intake.commit()
    assert os.listdir(master.spool.request_dir("hold")) == []


@pytest.mark.parametrize("leaving", [True, False])
def test_the_snapshot_after_jobs_leave_is_paced_by_the_table_left(tmp_path, monkeypatch, leaving):
    """condor_rm -all of a large queue: the write holding the jobs removed costs a large
    table's interval; the one showing them gone costs what is left, and comes at once."""
    from awq import master as master_module
    master = master_with(tmp_path, ad(JobStatus=3 if leaving else 1), periodic_interval=60)
    for proc in range(1, 100):
        master.table.put(ad(ProcId=proc, JobStatus=3 if leaving else 1))
    ticks = iter(range(0, 1000, 10))    # every write seems to take 10 s of CPU
    monkeypatch.setattr(master_module.time, "process_time", lambda: float(next(ticks)))
    master.flush()
    assert len(master.table) == (0 if leaving else 100)
    assert master.flushing.interval == (master_module.FLUSH_INTERVAL if leaving
                                        else master_module.MAX_FLUSH_INTERVAL)


def test_a_bulk_removal_logs_one_line_and_writes_each_user_log_once(tmp_path, caplog,
                                                                     monkeypatch):
    """condor_rm -all of a large queue: one master-log line (how many, which ids), not one a
    job; one write to the shared user log; no user-log work for jobs without a log."""
    from awq import userlog
    from awq.control import LOG_EACH_UP_TO
    count = 4 * LOG_EACH_UP_TO
    log_path = tmp_path / "pilots.log"
    master = master_with(tmp_path, ad())
    for cluster in range(2, count + 1):
        extra = {"UserLog": str(log_path)} if cluster % 2 else {}
        master.table.put(ad(ClusterId=cluster, **extra))
    master.table.put(ad(ClusterId=count + 5))   # a gap: a second range
    opened: List[str] = []
    real_open = userlog.job_files.open_job_file
    monkeypatch.setattr(userlog.job_files, "open_job_file",
                        lambda path, **kw: opened.append(path) or real_open(path, **kw))
    master.spool.requests.leave("rm", [jid for jid, _ in master.table.items()], "drained")
    with caplog.at_level("INFO", logger="awq.master"):
        master.apply_requests()
    lines = [r.getMessage() for r in caplog.records if r.name == "awq.master"]
    assert lines == ["condor_rm: %d jobs removed: drained; jobs 1.0-%d.0, %d.0"
                     % (count + 1, count, count + 5)], lines
    assert opened == [str(log_path)]
    events = [line for line in log_path.read_text().splitlines() if line.startswith("009 ")]
    assert [line.split(" ")[1] for line in events] == [
        "(%03d.000.000)" % cluster for cluster in range(3, count + 1, 2)]


def test_removed_jobs_leave_before_a_snapshot_holds_them_and_their_request_stays(tmp_path):
    """The removed jobs go to history (JobStatus 3) and the next snapshot is written without
    them; the request file stays until two snapshots hold the result, so a master killed
    in between removes them again from the request."""
    master = master_with(tmp_path, ad())
    for cluster in range(2, 101):
        master.table.put(ad(ClusterId=cluster))
    master.flush(force=True)   # the jobs idle in the snapshot
    master.intake.commit()
    master.spool.requests.leave("rm", [(c, 0) for c in range(1, 101)])
    master.apply_requests()
    master.flush(force=True)
    assert len(master.table) == 0
    state = master.spool.published.load_generation().state
    assert len(state["jobs"]) == 0
    assert sorted((jobs.job_id(job), job["JobStatus"]) for job in master.spool.history.read()) \
        == [((c, 0), 3) for c in range(1, 101)]
    assert len(os.listdir(master.spool.request_dir("rm"))) == 1   # one generation holds it
    master.flush(force=True)
    assert os.listdir(master.spool.request_dir("rm")) == []


def test_a_master_killed_after_removed_jobs_reached_history_removes_them_again(tmp_path):
    """Killed between the history append and the snapshot without the jobs: the restart
    restores them idle, the kept request removes them again, and history holds each once
    (its reader keeps a job's last line)."""
    first = master_with(tmp_path, ad())
    for cluster in range(2, 101):
        first.table.put(ad(ClusterId=cluster))
    first.flush(force=True)
    first.intake.commit()
    first.spool.requests.leave("rm", [(c, 0) for c in range(1, 101)], "drained")
    first.apply_requests()
    first.retire_removed()   # history written; the master dies before its snapshot
    assert len(first.spool.history.read()) == 100
    again = Master(Spool(str(tmp_path / "spool")), FakeBackend(), owner="u",
                   periodic_interval=60, clock=ManualClock())
    again.recover()
    assert sorted(again.table.idle_jobs()) == [(c, 0) for c in range(1, 101)]
    again.apply_requests()
    again.flush(force=True)
    assert len(again.table) == 0
    assert [(jobs.job_id(job), job["JobStatus"], job["RemoveReason"])
            for job in again.spool.history.read()] == [((c, 0), 3, "drained")
                                                        for c in range(1, 101)]


def started_in_one_look(tmp_path, caplog, count: int):
    """A master with `count` idle jobs whose tasks all reached a worker by its next look;
    the master and its log lines about jobs running after that look."""
    master = master_with(tmp_path, ad())
    master.backend.total_cores = count
    for cluster in range(2, count + 1):
        master.table.put(ad(ClusterId=cluster))
    master.dispatcher.submit_idle(master.table)
    for task_id in master.backend.states:
        master.backend.states[task_id] = TaskState.ON_WORKER
    with caplog.at_level("INFO", logger="awq.master"):
        master.dispatcher.check_waiting_tasks(master.table)
    return master, [r.getMessage() for r in caplog.records
                    if r.name == "awq.master" and "running" in r.getMessage()]


def test_thousands_of_pilots_starting_in_one_look_log_one_line(tmp_path, caplog):
    """A restart hands out thousands of pilots: past LOG_EACH_UP_TO starts in one look, one
    master-log line names them (how many, which ids); each job's line is at DEBUG."""
    from awq.jobs import LOG_EACH_UP_TO
    count = 2 * LOG_EACH_UP_TO
    master, lines = started_in_one_look(tmp_path, caplog, count)
    assert lines == ["%d jobs idle -> running; jobs 1.0-%d.0" % (count, count)], lines
    assert master.table.counts().running == count


def test_a_few_pilots_starting_log_a_line_each(tmp_path, caplog):
    _, lines = started_in_one_look(tmp_path, caplog, 3)
    assert len(lines) == 3 and all("idle -> running: on " in line for line in lines), lines
