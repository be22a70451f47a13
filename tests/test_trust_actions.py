"""Job actions whose -constraint matches nothing answer as HTCondor's tools do."""

from __future__ import annotations

import os

import pytest

from conftest import write_script

VERBS = {"condor_rm": "remove", "condor_hold": "hold", "condor_release": "release",
         "condor_suspend": "suspend", "condor_continue": "continue"}


@pytest.fixture
def one_idle_job(tmp_path, tool):
    job = write_script(tmp_path / "job.sh", "exit 0\n")
    result = tool("condor_submit", stdin="executable = %s\nqueue\n" % job)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("tool_name", sorted(VERBS))
def test_a_constraint_that_matches_nothing_fails_with_htcondors_words(one_idle_job, workdir,
                                                                       tool, tool_name):
    result = tool(tool_name, "-constraint", "ClusterId == 999")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("Couldn't find/%s all jobs matching constraint (ClusterId == 999)\n"
                             % VERBS[tool_name])
    request_dir = os.path.join(workdir, tool_name.split("_")[1])
    assert not os.path.isdir(request_dir) or not os.listdir(request_dir)


def test_a_constraint_that_matches_still_succeeds(one_idle_job, tool):
    result = tool("condor_hold", "-constraint", "ClusterId == 1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Jobs matching constraint (ClusterId == 1) have been held\n"
