"""condor_version: the two lines clients parse (law reads the first to pick its options)."""

from __future__ import annotations

import re
import subprocess

import pytest

from awq import __version__
from conftest import PYTHON, product_env

pytestmark = pytest.mark.e2e

LAW = re.compile(r"^\$CondorVersion: (\d+)\.(\d+)\.(\d+) .+$")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "awq.cli.condor_version"] + list(args),
                          capture_output=True, text=True, env=product_env(), timeout=60)


def test_two_lines_in_htcondors_format_naming_our_version():
    result = run()
    assert result.returncode == 0 and result.stderr == ""
    first, second = result.stdout.splitlines()
    assert LAW.match(first).groups() == ("23", "0", "0")
    assert first.endswith("BuildID: alien-workqueue-%s $" % __version__)
    assert re.match(r"^\$CondorPlatform: \S+ \$$", second)


def test_unknown_option_is_one_error_line():
    result = run("-bogus")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "ERROR: unknown option -bogus (see condor_version -help)\n"
