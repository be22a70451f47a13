"""The command line of CCTools' work_queue_factory, as `alien_wq_worker.sh start-factory` runs it.

The shell script keeps the processes; the decisions worth testing live here:

* the route by which the factory learns the master's demand. CCTools 8 as
  Debian ships it cannot send a password in its direct query of a master
  (fixed upstream in 2022), so against a master with a password it would keep
  its minimum whatever is queued; it then reads the master's entry in a
  catalog instead (WQ_CATALOG, WQ_PROJECT_NAME: the master's --catalog-host,
  --catalog-port, --project-name). With no password, or a factory whose
  direct query authenticates, it asks the master directly (no catalog delay).
* nothing reports to a catalog the admin did not name: the factory sends its
  own status to a catalog every cycle, to CCTools' public one unless told, so
  it is always given --catalog (WQ_CATALOG, else this host's loopback).
* `-T condor` submits with the site's HTCondor, never with our condor_submit.

`python -m awq.fleet factory-plan DIR INDEX` reads the WQ_* settings from the
environment, writes DIR/factory-INDEX.argv (the command, NUL-separated) and
DIR/factory-INDEX.info (one line for `status`: what the slot was started with),
and prints that line. Bad settings: one line on stderr, exit status 1.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

# Where the factory sends its own status when the admin named no catalog: this host only.
LOOPBACK_CATALOG = "127.0.0.1:9097"
# The master's own default --project-name (awq/cli/alien_work_queue.py).
DEFAULT_PROJECT = "alien_jobs"
# Only a factory built after CCTools' fix of its direct query (PR #2960) prints this.
AUTHENTICATED_QUERY_MARK = b"wrong password for manager"
# The factory and a worker read a project name as a regular expression: keep it literal.
PROJECT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
HOST_PORT = re.compile(r"^[A-Za-z0-9.:\[\]_-]+:[0-9]+$")
# Our own condor_submit (a bin/ wrapper or a pip console script) names its module.
OUR_CONDOR_SUBMIT_MARK = b"awq.cli.condor_submit"


class FleetError(ValueError):
    """A setting that cannot work; the message says which and what to do."""


class Route(NamedTuple):
    kind: str      # "direct" or "catalog"
    reason: str    # why, in a few words, for `status`


class Settings(NamedTuple):
    batch_type: str
    min_workers: int
    max_workers: int
    workers_per_cycle: int
    cores: int
    memory_mb: Optional[int]
    disk_mb: Optional[int]
    idle_timeout: int
    batch_options: str
    extra_options: List[str]
    scratch_dir: str
    master: str
    catalog: Optional[str]
    project: str
    password: Optional[str]
    debug_file: Optional[str]
    worker_binary: Optional[str]
    condor_submit: Optional[str]


def _number(env: Mapping[str, str], name: str, default: Optional[int]) -> Optional[int]:
    text = env.get(name, "")
    if text == "":
        return default
    if not text.isdigit():
        raise FleetError("%s must be a number, not '%s'" % (name, text))
    return int(text)


def _required_number(env: Mapping[str, str], name: str, default: int) -> int:
    value = _number(env, name, default)
    assert value is not None
    return value


def settings_from(env: Mapping[str, str], index: int) -> Settings:
    """The factory's settings from alien_wq_worker.sh's variables (their defaults applied there)."""
    workdir = env.get("WQ_WORKDIR", "")
    if not workdir:
        raise FleetError("WQ_WORKDIR is not set")
    max_workers = _required_number(env, "WQ_FACTORY_MAX", 1)
    min_workers = _required_number(env, "WQ_FACTORY_MIN", 1)
    if min_workers > max_workers:
        raise FleetError("WQ_FACTORY_MIN (%d) is more than WQ_FACTORY_MAX (%d)"
                         % (min_workers, max_workers))
    # The factory's own default, 5 new workers a 30 s cycle, would take 20 minutes to a
    # fleet of 200: by default the whole shortfall is submitted in one cycle.
    per_cycle = _required_number(env, "WQ_FACTORY_PER_CYCLE", max_workers) or max_workers
    catalog = env.get("WQ_CATALOG") or None
    if catalog is not None and not HOST_PORT.match(catalog):
        raise FleetError("WQ_CATALOG must be host:port, not '%s'" % catalog)
    project = env.get("WQ_PROJECT_NAME") or DEFAULT_PROJECT
    if not PROJECT_NAME.match(project):
        raise FleetError("WQ_PROJECT_NAME may hold only letters, digits, '_' and '-', not '%s'"
                         % project)
    if env.get("WQ_PROJECT_NAME") and catalog is None:
        raise FleetError("WQ_PROJECT_NAME needs WQ_CATALOG=HOST:PORT, the catalog the master "
                         "reports to (its --catalog-host and --catalog-port)")
    try:
        extra = shlex.split(env.get("WQ_FACTORY_OPTIONS", ""))
    except ValueError as err:
        raise FleetError("WQ_FACTORY_OPTIONS cannot be read as shell words: %s" % err)
    scratch = env.get("WQ_FACTORY_SCRATCH") or os.path.join(workdir, "factory-%d" % index)
    worker_bin = env.get("WQ_WORKER_BIN", "work_queue_worker")
    return Settings(
        batch_type=env.get("WQ_FACTORY_TYPE") or "local",
        min_workers=min_workers, max_workers=max_workers, workers_per_cycle=per_cycle,
        cores=_required_number(env, "WQ_WORKER_CORES", 1),
        memory_mb=_number(env, "WQ_WORKER_MEMORY", None),
        disk_mb=_number(env, "WQ_WORKER_DISK", None),
        idle_timeout=_required_number(env, "WQ_IDLETIMEOUT", 100),
        batch_options=env.get("WQ_FACTORY_BATCH_OPTIONS", ""),
        extra_options=extra, scratch_dir=os.path.abspath(scratch),
        master=env.get("WQ_MASTER", ""), catalog=catalog, project=project,
        password=env.get("WQ_PASSWORD") or None,
        debug_file=(os.path.join(workdir, "log", "factory-%d.debug" % index)
                    if env.get("WQ_DEBUG") else None),
        worker_binary=None if worker_bin == "work_queue_worker" else worker_bin,
        condor_submit=env.get("WQ_CONDOR_SUBMIT") or None)


def queries_with_password(factory_path: str) -> bool:
    """Whether this work_queue_factory's direct query of a master sends the password."""
    try:
        with open(factory_path, "rb") as handle:
            return AUTHENTICATED_QUERY_MARK in handle.read()
    except OSError:
        return False


def choose_route(settings: Settings, authenticated_query: bool) -> Route:
    """Directly when the factory can read the master's queue, else through the catalog."""
    if settings.password is None:
        return Route("direct", "the master has no password: the factory asks it directly")
    if authenticated_query:
        return Route("direct", "this work_queue_factory sends the password in its direct query")
    if settings.catalog is None:
        raise FleetError(
            "with a password, this work_queue_factory cannot read the master's queue directly "
            "(CCTools before 2022-08 sends no password in that query): set WQ_CATALOG=HOST:PORT "
            "and WQ_PROJECT_NAME to the master's --catalog-host/--catalog-port/--project-name")
    return Route("catalog", "this work_queue_factory sends no password in a direct query")


def _our_bin_dirs(env: Mapping[str, str], script_dir: str) -> List[str]:
    dirs = [os.path.realpath(script_dir)]
    if env.get("ALIEN_WORKQUEUE"):
        dirs.append(os.path.realpath(os.path.join(env["ALIEN_WORKQUEUE"], "bin")))
    return dirs


def _is_ours(path: str, our_dirs: Sequence[str]) -> bool:
    if os.path.realpath(os.path.dirname(path)) in our_dirs:
        return True
    try:
        with open(path, "rb") as handle:
            return OUR_CONDOR_SUBMIT_MARK in handle.read(1 << 16)
    except OSError:
        return False


def site_condor_submit(settings: Settings, env: Mapping[str, str], script_dir: str) -> str:
    """The site's HTCondor condor_submit: named by WQ_CONDOR_SUBMIT, else first on PATH not ours."""
    ours = _our_bin_dirs(env, script_dir)
    if settings.condor_submit:
        path = os.path.abspath(settings.condor_submit)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise FleetError("WQ_CONDOR_SUBMIT=%s is not an executable file" % path)
        if _is_ours(path, ours):
            raise FleetError("WQ_CONDOR_SUBMIT=%s is alien-workqueue's own condor_submit: name "
                             "the site's HTCondor one" % path)
        return path
    for directory in env.get("PATH", "").split(os.pathsep):
        path = os.path.join(directory or ".", "condor_submit")
        if os.path.isfile(path) and os.access(path, os.X_OK) and not _is_ours(path, ours):
            return os.path.abspath(path)
    raise FleetError("-T condor needs the site's HTCondor condor_submit: none on PATH besides "
                     "alien-workqueue's own; set WQ_CONDOR_SUBMIT=/path/to/condor_submit")


def factory_path_for_condor(condor_submit: str, env: Mapping[str, str], script_dir: str) -> str:
    """PATH for a -T condor factory: the site's HTCondor first, none of our condor_* on it."""
    ours = _our_bin_dirs(env, script_dir)
    kept = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and os.path.realpath(d) not in ours]
    return os.pathsep.join([os.path.dirname(condor_submit)] + kept)


def factory_command(settings: Settings, route: Route, factory: str = "work_queue_factory"
                    ) -> List[str]:
    """work_queue_factory's argument list for these settings and this route."""
    argv = [factory, "-T", settings.batch_type,
            "--min-workers", str(settings.min_workers),
            "--max-workers", str(settings.max_workers),
            "--workers-per-cycle", str(settings.workers_per_cycle),
            "--cores", str(settings.cores)]
    if settings.memory_mb is not None:
        argv += ["--memory", str(settings.memory_mb)]
    if settings.disk_mb is not None:
        argv += ["--disk", str(settings.disk_mb)]
    argv += ["--timeout", str(settings.idle_timeout), "--scratch-dir", settings.scratch_dir,
             "--parent-death", "--catalog", settings.catalog or LOOPBACK_CATALOG]
    if settings.batch_options:
        argv += ["--batch-options", settings.batch_options]
    if settings.password:
        argv += ["--password", settings.password]
    if settings.debug_file:
        argv += ["-d", "all", "-o", settings.debug_file]
    if settings.worker_binary:
        argv += ["--worker-binary", settings.worker_binary]
    argv += settings.extra_options
    if route.kind == "catalog":
        argv += ["--manager-name", settings.project]
    else:
        host, _, port = settings.master.rpartition(":")
        argv += [host, port]
    return argv


def describe(settings: Settings, route: Route) -> str:
    """What the slot was started with, for `alien_wq_worker.sh status`."""
    if route.kind == "catalog":
        where = "route catalog %s project %s" % (settings.catalog, settings.project)
    else:
        where = "route direct %s" % settings.master
    return "-T %s, %d..%d workers of %d cores, %s (%s), reports to catalog %s" % (
        settings.batch_type, settings.min_workers, settings.max_workers, settings.cores, where,
        route.reason, settings.catalog or LOOPBACK_CATALOG)


def _which(name: str, path: str) -> Optional[str]:
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def plan_factory(env: Mapping[str, str], index: int, script_dir: str
                 ) -> Tuple[List[str], str]:
    """(argv, description) of factory slot index: the one entry point the script uses."""
    settings = settings_from(env, index)
    if settings.master and not HOST_PORT.match(settings.master):
        raise FleetError("WQ_MASTER must be host:port, not '%s'" % settings.master)
    factory = _which("work_queue_factory", env.get("PATH", ""))
    if factory is None:
        raise FleetError("work_queue_factory not found on PATH: source etc/env.sh first")
    route = choose_route(settings, queries_with_password(factory))
    if route.kind == "direct" and not settings.master:
        raise FleetError("WQ_MASTER is not set")
    if settings.worker_binary:
        worker = _which(settings.worker_binary, env.get("PATH", "")) \
            if os.sep not in settings.worker_binary else os.path.abspath(settings.worker_binary)
        if worker is None:
            raise FleetError("WQ_WORKER_BIN %s not found" % settings.worker_binary)
        settings = settings._replace(worker_binary=worker)
    argv = factory_command(settings, route, factory)
    description = describe(settings, route)
    if settings.batch_type == "condor":
        condor_submit = site_condor_submit(settings, env, script_dir)
        # env(1) execs the factory: the slot's process is the factory itself.
        argv = ["env", "PATH=" + factory_path_for_condor(condor_submit, env, script_dir)] + argv
        description += ", condor_submit %s" % condor_submit
    return argv, description


def _write_private(path: str, data: bytes) -> None:
    temp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def write_plan(directory: str, index: int, argv: Sequence[str], description: str) -> None:
    """The slot's command (NUL-separated) and its one-line description, each replaced whole."""
    base = os.path.join(directory, "factory-%d" % index)
    _write_private(base + ".argv", b"".join(os.fsencode(a) + b"\0" for a in argv))
    _write_private(base + ".info", (description + "\n").encode())


def main(argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> int:
    env = dict(os.environ) if env is None else env
    if len(argv) != 3 or argv[0] != "factory-plan" or not argv[2].isdigit():
        sys.stderr.write("usage: python -m awq.fleet factory-plan DIR INDEX\n")
        return 2
    script_dir = env.get("AWQ_SCRIPT_DIR", os.getcwd())
    try:
        command, description = plan_factory(env, int(argv[2]), script_dir)
        write_plan(argv[1], int(argv[2]), command, description)
    except (FleetError, OSError) as err:
        sys.stderr.write("alien_wq_worker.sh: %s\n" % err)
        return 1
    print(description)
    return 0


def cli() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    cli()
