"""pip install . : the awq package and its commands, for a Python-only install.

The commands are console scripts, so pip writes them with the interpreter
that installs them: a fixed path, never a shim looked up at every call.
Work Queue's own module must be importable by that interpreter (conda's
ndcctools, or a venv made with --system-site-packages on Debian).
"""

import re

from setuptools import find_packages, setup

with open("awq/__init__.py") as handle:
    VERSION = re.search(r'__version__ = "([^"]+)"', handle.read()).group(1)

setup(
    name="alien-workqueue",
    version=VERSION,
    description="HTCondor-compatible front end (condor_submit, condor_q, ...) for CCTools Work Queue",
    # Every package under awq/ (awq.cli, awq.spool, ...): a new one cannot be left out.
    packages=find_packages(include=["awq", "awq.*"]),
    python_requires=">=3.9",
    entry_points={"console_scripts": [
        "condor_submit = awq.cli.condor_submit:cli",
        "condor_q = awq.cli.condor_q:cli",
        "condor_rm = awq.cli.condor_rm:cli",
        "condor_status = awq.cli.condor_status:cli",
        "condor_version = awq.cli.condor_version:cli",
        "condor_hold = awq.cli.condor_hold:cli",
        "condor_release = awq.cli.condor_release:cli",
        "condor_suspend = awq.cli.condor_suspend:cli",
        "condor_continue = awq.cli.condor_continue:cli",
        "condor_history = awq.cli.condor_history:cli",
        "alien_work_queue = awq.cli.alien_work_queue:cli",
        "alien_wq_fleet = awq.fleet:cli",   # alien_wq_worker.sh's factory planner
    ]},
    scripts=["bin/alien_wq_worker.sh", "etc/alien_job_wrapper.sh"],
)
