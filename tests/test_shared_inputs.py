"""Content-named copies of the inputs many jobs share (awq/shared_inputs.py)."""

from __future__ import annotations

import os
import stat

from awq.dispatch import SWEEP_INTERVAL, Dispatcher
from awq.jobtable import JobTable
from awq.pacing import ManualClock
from awq.shared_inputs import SharedInputs
from awq.tasks import TaskResult, TaskSpec
from test_master_table import FakeBackend, ad


def shared_in(tmp_path, grace: float = 600.0) -> SharedInputs:
    shared = SharedInputs(str(tmp_path / "shared"), grace=grace)
    shared.reset()
    return shared


def script(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_one_copy_per_content_named_by_it_and_private(tmp_path):
    shared = shared_in(tmp_path)
    a = shared.acquire(script(tmp_path, "agent.startup.1", "#!/bin/sh\necho hi\n"))
    b = shared.acquire(script(tmp_path, "agent.startup.2", "#!/bin/sh\necho hi\n"))
    c = shared.acquire(script(tmp_path, "other.sh", "#!/bin/sh\necho ho\n"))
    assert a == b != c and open(a).read() == "#!/bin/sh\necho hi\n"
    assert shared.in_use(a) == 2 and shared.in_use(c) == 1
    assert stat.S_IMODE(os.stat(tmp_path / "shared").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(a).st_mode) & 0o077 == 0
    assert sorted(os.listdir(tmp_path / "shared")) == sorted({os.path.basename(a),
                                                              os.path.basename(c)})


def test_a_script_rewritten_in_place_gets_a_new_copy(tmp_path):
    shared = shared_in(tmp_path)
    path = script(tmp_path, "pilot.sh", "echo v1\n")
    first = shared.acquire(path)
    with open(path, "w") as handle:   # same size, maybe the same mtime: ctime tells
        handle.write("echo v2\n")
    second = shared.acquire(path)
    assert first != second and open(second).read() == "echo v2\n"
    assert open(first).read() == "echo v1\n"   # a task may still be sending it


def test_what_cannot_be_copied_is_sent_as_before(tmp_path):
    shared = shared_in(tmp_path)
    assert shared.acquire(str(tmp_path / "missing")) is None
    assert shared.acquire(str(tmp_path)) is None       # a directory
    os.mkfifo(tmp_path / "fifo")
    assert shared.acquire(str(tmp_path / "fifo")) is None


def test_a_copy_is_removed_only_when_unused_for_the_grace_period(tmp_path):
    shared = shared_in(tmp_path, grace=100.0)
    copy = shared.acquire(script(tmp_path, "pilot.sh", "echo hi\n"))
    shared.acquire(script(tmp_path, "pilot.sh", "echo hi\n"))
    shared.release(copy)
    far = 1e12
    assert shared.sweep(far) == [] and os.path.exists(copy)   # one task still uses it
    shared.release(copy)
    assert shared.sweep(0.0) == [] and os.path.exists(copy)   # just released
    assert shared.sweep(far) == [copy] and not os.path.exists(copy)
    again = shared.acquire(str(tmp_path / "pilot.sh"))        # the same stat: copied anew
    assert again == copy and open(again).read() == "echo hi\n"


def test_reset_empties_what_a_previous_master_left(tmp_path):
    shared = shared_in(tmp_path)
    copy = shared.acquire(script(tmp_path, "pilot.sh", "echo hi\n"))
    (tmp_path / "shared" / "x.tmp.1").write_text("torn")
    shared.reset()
    assert os.listdir(tmp_path / "shared") == []
    assert shared.acquire(str(tmp_path / "pilot.sh")) == copy and os.path.exists(copy)


class RecordingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.specs = []
        self.forgotten = []

    def submit(self, spec: TaskSpec) -> int:
        self.specs.append(spec)
        return super().submit(spec)

    def forget_cached(self, local: str) -> None:
        self.forgotten.append(local)


def test_the_dispatcher_caches_the_executable_and_releases_it_with_the_task(tmp_path):
    shared = shared_in(tmp_path, grace=0.0)
    exe = script(tmp_path, "pilot.sh", "echo hi\n")
    backend, table = RecordingBackend(), JobTable()
    table.put(ad(Cmd=exe, Out=str(tmp_path / "o.0")))
    table.put(ad(ProcId=1, Cmd=exe, Out=str(tmp_path / "o.1")))
    clock = ManualClock()
    dispatcher = Dispatcher(backend, shared=shared, clock=clock)
    assert dispatcher.submit_idle(table) == 2
    copy = backend.specs[0].cached_inputs[0][0]
    assert [s.cached_inputs for s in backend.specs] == [[(copy, "pilot.sh")]] * 2
    assert all(exe not in dict(s.inputs) for s in backend.specs)
    dispatcher.record_result(TaskResult(1, True, 0, ""), table)
    dispatcher.cancel((1, 1))
    assert shared.in_use(copy) == 0
    clock.advance(SWEEP_INTERVAL)
    dispatcher.forget_unused_copies()
    assert backend.forgotten == [copy] and not os.path.exists(copy)
