"""The unit tier stays pure: a test that is not e2e cannot start a program."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import E2E, StartsAProgram


def test_a_unit_test_that_starts_a_program_fails_and_names_the_mark(request):
    assert request.node.get_closest_marker(E2E) is None
    with pytest.raises(StartsAProgram, match="pytest.mark.e2e"):
        subprocess.run(["/bin/echo", "hello"], capture_output=True)
    with pytest.raises(StartsAProgram):
        os.posix_spawn("/bin/echo", ["echo"], dict(os.environ))


def test_the_masters_own_timer_programs_are_allowed():
    assert subprocess.run(["true"]).returncode == 0


@pytest.mark.e2e
def test_an_e2e_test_starts_what_it_needs():
    assert subprocess.run(["/bin/echo", "hello"], capture_output=True).stdout == b"hello\n"


def test_the_real_process_fixtures_make_a_test_e2e(request, procs):
    assert request.node.get_closest_marker(E2E) is not None
