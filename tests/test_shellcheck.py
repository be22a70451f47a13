"""Every shell script in the repository is shellcheck clean (templates with their @VARS@ filled)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e

SHELLCHECK = shutil.which("shellcheck") or "shellcheck"


def shell_files() -> list:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    found = []
    for name in tracked:
        if name.endswith(".sub"):
            continue  # a submit description, even one that starts with a #! line (dask's)
        with open("%s/%s" % (REPO, name), "rb") as handle:
            first = handle.readline()
        if name.endswith((".sh", ".sh.in")) or re.match(rb"^#!.*\b(ba)?sh\b", first):
            found.append(name)
    return found


def test_the_shell_scripts_are_found():
    names = shell_files()
    for expected in ("bin/alien_wq_worker.sh", "etc/alien_job_wrapper.sh", "scripts/test.sh",
                     ".ci/run", "etc/env.sh.in"):
        assert expected in names


def test_every_shell_script_is_shellcheck_clean(tmp_path):
    failures = []
    for name in shell_files():
        path = "%s/%s" % (REPO, name)
        args = [SHELLCHECK, "-s", "bash"]
        if name.endswith(".in"):
            # A template: CMake fills @VARS@; a filled-in literal is what shellcheck sees.
            filled = tmp_path / name.replace("/", "_")
            filled.write_text(re.sub(r"@[A-Z_]+@", "/opt/x", open(path).read()))
            path, args = str(filled), args + ["-e", "SC2157"]
        result = subprocess.run(args + [path], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            failures.append("%s:\n%s" % (name, result.stdout))
    assert not failures, "\n".join(failures)
