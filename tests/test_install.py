"""Installing: CMake (both spellings), env.sh, pip, and the job wrapper."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from awq import classad, jobs
from conftest import REPO, cmake_install

pytestmark = pytest.mark.e2e

CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C"}


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    cmake_install(str(root / "prefix"), str(root / "build"))
    return str(root / "prefix")


INSTALLED = ["bin/alien_work_queue", "bin/condor_q", "bin/condor_submit", "bin/condor_rm",
             "bin/condor_version",
             "bin/condor_status", "bin/alien_wq_worker.sh", "etc/alien_job_wrapper.sh"]


def test_cmake_installs_upstreams_files(prefix):
    for name in INSTALLED:
        path = os.path.join(prefix, name)
        assert os.access(path, os.X_OK), name
    assert os.path.isfile(os.path.join(prefix, "etc", "env.sh"))
    assert os.path.isfile(os.path.join(prefix, "lib", "alien-workqueue", "python", "awq", "master.py"))


def package_modules(root: str) -> set:
    """Every .py file under root/awq, as a path relative to root (subpackages included)."""
    found = set()
    for directory, subdirs, names in os.walk(os.path.join(root, "awq")):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        found.update(os.path.relpath(os.path.join(directory, name), root)
                     for name in names if name.endswith(".py"))
    return found


def test_cmake_installs_every_module_byte_compiled(prefix):
    installed = os.path.join(prefix, "lib", "alien-workqueue", "python")
    modules = package_modules(REPO)
    assert "awq/spool/records.py" in modules
    assert package_modules(installed) == modules
    for module in modules:
        directory, name = os.path.split(os.path.join(installed, module))
        cached = os.listdir(os.path.join(directory, "__pycache__"))
        assert any(entry.startswith(name[:-3] + ".") for entry in cached), module


def test_wrappers_use_a_fixed_interpreter_and_export_nothing(prefix):
    text = open(os.path.join(prefix, "bin", "condor_q")).read()
    assert text.startswith("#!/usr/bin/python3 -IS\n")   # a query needs no site-packages
    master = open(os.path.join(prefix, "bin", "alien_work_queue")).read()
    assert master.startswith("#!/usr/bin/python3 -I\n")  # site finds Work Queue's bindings
    assert "/usr/bin/env" not in text
    assert "PYTHONPATH" not in text.split("\n", 6)[-1]   # past the comment that names it
    assert "from awq.cli.condor_q import cli" in text


def test_upstream_spelling_mkdir_build_make_install(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    subprocess.run(["cmake", REPO, "-DCMAKE_INSTALL_PREFIX=%s" % (tmp_path / "p"), "-DCCTOOLS=/usr"],
                   cwd=str(build), check=True, capture_output=True)
    subprocess.run(["make", "install"], cwd=str(build), check=True, capture_output=True)
    assert os.access(str(tmp_path / "p" / "bin" / "alien_work_queue"), os.X_OK)


def test_env_sh_sets_the_environment_and_is_idempotent(prefix, tmp_path):
    script = ('set -u; . "%s/etc/env.sh"; . "%s/etc/env.sh"; echo "$CCTOOLS"; echo "$ALIEN_WORKQUEUE"; '
              'echo "$PATH"; echo "${PYTHONPATH-unset}"; command -v condor_q; condor_q -version'
              ) % (prefix, prefix)
    for users_pythonpath in (None, "/the/users/own:/second"):
        env = dict(CLEAN_ENV, PYTHONPATH=users_pythonpath) if users_pythonpath else CLEAN_ENV
        out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                             cwd=str(tmp_path))  # not the repository: the installed awq runs
        assert out.returncode == 0, out.stderr
        cctools, home, path, pythonpath, condor_q, version = out.stdout.splitlines()[:6]
        assert (cctools, home) == ("/usr", prefix)
        assert path.split(":")[:2] == [prefix + "/bin", "/usr/bin"]
        assert path.count(prefix + "/bin") == 1
        # Left as the user had it: the commands need none, and a CE hands it to its jobs.
        assert pythonpath == (users_pythonpath or "unset")
        assert condor_q == prefix + "/bin/condor_q"
        assert version.startswith("$CondorVersion:")


def test_installed_commands_work_without_env_sh(prefix, tmp_path):
    env = dict(CLEAN_ENV, AWQ_WORKDIR=str(tmp_path / "spool"))
    help_text = subprocess.run([os.path.join(prefix, "bin", "condor_submit"), "-help"], env=env,
                               capture_output=True, text=True)
    assert help_text.returncode == 0 and "Usage: condor_submit" in help_text.stdout
    master = subprocess.run([os.path.join(prefix, "bin", "alien_work_queue"), "--help"], env=env,
                            capture_output=True, text=True)
    assert master.returncode == 0 and "--catalog-host" in master.stdout
    submitted = subprocess.run([os.path.join(prefix, "bin", "condor_submit")], env=env,
                               input="executable = /bin/true\nqueue 2\n", capture_output=True,
                               text=True, cwd=str(tmp_path))
    assert submitted.returncode == 0, submitted.stderr
    assert "2 job(s) submitted to cluster 1." in submitted.stdout


def test_condor_submit_hands_getenv_exactly_the_users_environment(prefix, tmp_path):
    """From any directory, whatever PYTHONPATH the user has: the installed command imports
    the installed package only, and a `getenv = true` job gets the environment condor_submit
    was started with, no variable added or changed (no PYTHONPATH of ours, no LC_CTYPE from
    the interpreter's locale coercion under LANG=C)."""
    decoy = tmp_path / "decoy"
    (decoy / "awq").mkdir(parents=True)
    (decoy / "awq" / "__init__.py").write_text('raise SystemExit("the decoy awq was imported")\n')
    users = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C", "LC_CTYPE": "C",
             "PYTHONPATH": str(decoy), "PYTHONHOME": "/nonexistent", "AWQ_WORKDIR": str(tmp_path / "s"),
             "WITH_SPACES": " a  b ", "WITH_QUOTES": "it's \"quoted\"", "EMPTY": "",
             "SHLVL": "3", "_": "/usr/bin/condor_submit", "NEWLINE": "one\ntwo"}
    done = subprocess.run([os.path.join(prefix, "bin", "condor_submit"), "-dry-run", "-"],
                          input="executable = /bin/true\ngetenv = true\nqueue\n", env=users,
                          cwd=str(decoy), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    line = next(l for l in done.stdout.splitlines() if l.startswith("Environment = "))
    environment = jobs.environment_of({"Environment": classad.parse_value(line.split(" = ", 1)[1])})
    # HTCondor skips a value with a newline: it cannot be written into the job ad.
    assert environment == {k: v for k, v in users.items() if k != "NEWLINE"}


def test_configure_fails_clearly_without_cctools(tmp_path):
    result = subprocess.run(["cmake", "-S", REPO, "-B", str(tmp_path / "b"),
                             "-DCCTOOLS=/nonexistent"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "has no bin/work_queue_worker" in result.stderr


def test_configure_fails_clearly_without_the_python_module(tmp_path):
    fake = tmp_path / "cctools"
    (fake / "bin").mkdir(parents=True)
    os.symlink("/usr/bin/work_queue_worker", str(fake / "bin" / "work_queue_worker"))
    result = subprocess.run(["cmake", "-S", REPO, "-B", str(tmp_path / "b"), "-DCCTOOLS=%s" % fake,
                             "-DPYTHON=/root/.pyenv/versions/3.11.7/bin/python3"
                             if os.path.exists("/root/.pyenv/versions/3.11.7/bin/python3")
                             else "-DPYTHON=/usr/bin/python3.11-nonexistent"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "can import Work Queue" in result.stderr


def test_pip_install_into_a_venv(tmp_path):
    # From a copy: setuptools builds inside the source tree, and a build/ left there by an
    # earlier run would install modules the package no longer has.
    source = tmp_path / "source"
    shutil.copytree(REPO, str(source), symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        "_demo"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    result = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("condor_submit", "condor_q", "condor_rm", "condor_status", "alien_work_queue",
                 "alien_wq_worker.sh", "alien_job_wrapper.sh"):
        assert os.access(str(venv / "bin" / name), os.X_OK), name
    assert open(str(venv / "bin" / "condor_q")).readline().strip() == "#!%s" % (venv / "bin" / "python3")
    out = subprocess.run([str(venv / "bin" / "condor_rm"), "-help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: condor_rm" in out.stdout
    site = subprocess.run([str(venv / "bin" / "python3"), "-c",
                           "import awq, os; print(os.path.dirname(os.path.dirname(awq.__file__)))"],
                          capture_output=True, text=True, cwd=str(tmp_path), check=True).stdout.strip()
    assert site.startswith(str(venv)), site
    assert package_modules(site) == package_modules(REPO)


def test_job_wrapper_keeps_only_a_minimal_environment():
    env = dict(CLEAN_ENV, ALIEN_FOO="a b 'c'\nnext line", OTHER="x", X509_USER_PROXY="/tmp/px",
               USER="vobox")
    out = subprocess.run([os.path.join(REPO, "etc", "alien_job_wrapper.sh"), "env", "-0"], env=env,
                         capture_output=True)
    assert out.returncode == 0
    seen = dict(entry.split("=", 1) for entry in out.stdout.decode().split("\0") if entry)
    assert seen["ALIEN_FOO"] == "a b 'c'\nnext line"
    assert seen["PATH"] == "/bin:/usr/bin" and seen["LANG"] == "C" and seen["USER"] == "vobox"
    assert seen["X509_USER_PROXY"] == "/tmp/px"
    assert "OTHER" not in seen


def test_job_wrapper_passes_the_exit_status():
    assert subprocess.run([os.path.join(REPO, "etc", "alien_job_wrapper.sh"), "sh", "-c", "exit 7"],
                          env=CLEAN_ENV).returncode == 7
