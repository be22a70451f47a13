"""condor_submit: check a description, queue its jobs, answer like HTCondor."""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
import time
from typing import Dict, List, Optional

from awq import classad, jobs, query, submit
from awq.cli.common import check_schedd_name, fail, run_main
from awq.options import take_value
from awq.spool import Spool, SpoolError, default_workdir

USAGE = """Usage: condor_submit [options] [submit-file]

Queue the jobs a submit description describes. With no file (or "-") the
description is read from standard input.

Options:
  -terse              print only the job ids: C.0 - C.N
  -verbose            print the ClassAd of each job
  -batch-name NAME    set the jobs' batch name
  -append LINE        add a submit command before the queue statement (repeatable)
  -queue ARGS         queue with ARGS instead of the file's queue statement
  -maxjobs N          refuse the submission if it would queue more than N jobs
  -dry-run FILE       check the description and write the job ads to FILE ("-": standard
                      output); queue nothing
  -name NAME, -remote NAME   the schedd to submit to (only the local one is known)
  -pool HOST          accepted for compatibility
  -disable, -spool, -unused  accepted and ignored (input files are read from where they are)
  -interactive        refused: this schedd has no interactive jobs
  -help               print this text
  NAME=VALUE          like -append NAME=VALUE

The spool is $AWQ_WORKDIR (default /tmp/awq).
"""
MAX_INPUT = 64 * 1024 * 1024


@dataclasses.dataclass
class Options:
    terse: bool = False
    verbose: bool = False
    append: List[str] = dataclasses.field(default_factory=list)
    queue: Optional[str] = None
    name: Optional[str] = None
    file: Optional[str] = None
    maxjobs: Optional[int] = None
    dry_run: Optional[str] = None


def parse_args(argv: List[str]) -> Optional[Options]:
    opts = Options()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith("-") and arg != "-":
            flag = arg.lstrip("-").lower()
            if flag in ("h", "help"):
                return None
            if flag == "terse":
                opts.terse = True
            elif flag in ("verbose", "v"):
                opts.verbose = True
            elif flag in ("append", "a"):
                opts.append.append(take_value(args, arg))
            elif flag == "batch-name":
                opts.append.append("batch_name = " + take_value(args, arg))
            elif flag == "queue":
                opts.queue = take_value(args, arg)
            elif flag in ("name", "remote"):
                opts.name = take_value(args, arg)
            elif flag == "pool":
                take_value(args, arg)
            elif flag == "maxjobs":
                opts.maxjobs = query.parse_count(take_value(args, arg), arg)
            elif flag == "dry-run":
                opts.dry_run = take_value(args, arg)
            elif flag == "interactive":
                fail("-interactive is not supported: this schedd runs no interactive jobs")
            elif flag in ("disable", "spool", "unused"):
                continue
            else:
                fail("unknown option %s (see condor_submit -help)" % arg)
        elif "=" in arg and opts.file is None and not os.path.exists(arg):
            opts.append.append(arg)
        elif opts.file is None:
            opts.file = arg
        else:
            fail("only one submit file may be given (%s and %s)" % (opts.file, arg))
    return opts


def read_description(path: Optional[str]) -> str:
    try:
        if path is None or path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
            where = "standard input"
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_INPUT + 1)
            where = path
    except IsADirectoryError:
        fail("Submit file %s is a directory" % path)
    except OSError as err:
        fail("Can't open submit file %s: %s" % (path, err.strerror))
    if len(data) > MAX_INPUT:
        fail("the submit description on %s is larger than %d bytes" % (where, MAX_INPUT))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        fail("the submit description on %s is not UTF-8 text (byte %d)" % (where, err.start))
    raise AssertionError  # unreachable


def check_files(job: dict) -> None:
    """What HTCondor's condor_submit checks before it queues anything."""
    for kind, path in submit.files_to_check(job):
        if kind == "initialdir":
            if not os.path.isdir(path):
                fail("Initialdir %s does not exist or is not a directory" % path)
        elif kind in ("output", "error", "log"):
            directory = os.path.dirname(path) or "/"
            if not os.path.isdir(directory):
                fail("the directory of %s file %s does not exist" % (kind, path))
            if os.path.isdir(path):
                fail("%s file %s is a directory" % (kind, path))
            if not os.access(directory, os.W_OK | os.X_OK):
                fail("cannot write %s file %s: its directory is not writable" % (kind, path))
        elif kind == "transfer_input":
            if not os.access(path, os.R_OK):
                fail("transfer_input_files: %s does not exist or is not readable" % path)
        else:
            _check_readable_file(kind, path)


def _check_readable_file(kind: str, path: str) -> None:
    label = {"executable": "Executable", "input": "Input", "proxy": "X509 proxy"}[kind]
    try:
        st = os.stat(path)
    except OSError:
        fail("%s file %s does not exist" % (label, path))
    if not stat.S_ISREG(st.st_mode):
        fail("%s file %s is not a regular file" % (label, path))
    if not os.access(path, os.R_OK):
        fail("%s file %s is not readable" % (label, path))


def print_result(opts: Options, cluster: int, job_list: List[dict]) -> None:
    count = len(job_list)
    if opts.terse:
        sys.stdout.write("%d.0 - %d.%d\n" % (cluster, cluster, count - 1))
        return
    sys.stdout.write("Submitting job(s)%s\n" % ("." * count))
    if opts.verbose:
        for job in job_list:
            sys.stdout.write("** Proc %d.%d:\n" % (cluster, job["ProcId"]))
            for name in sorted(job, key=str.lower):
                sys.stdout.write("%s = %s\n" % (name, classad.unparse(job[name])))
            sys.stdout.write("\n")
    sys.stdout.write("%d job(s) submitted to cluster %d.\n" % (count, cluster))


def starting_environment(block_path: str = "/proc/self/environ") -> Dict[str, str]:
    """The environment this process was started with, exactly as the user's shell passed it.

    os.environ is not quite that: with a C or POSIX locale the interpreter adds LC_CTYPE
    to it at start (PEP 538's locale coercion), which a job with `getenv` would then get.
    The kernel keeps the block given to exec unchanged; without it, os.environ.
    """
    try:
        with open(block_path, "rb") as handle:
            block = handle.read()
    except OSError:
        return dict(os.environ)
    env: Dict[str, str] = {}
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name:   # a name given twice: the first, as getenv() and os.environ take
            env.setdefault(os.fsdecode(name), os.fsdecode(value))
    return env


def main(argv: List[str]) -> int:
    opts = parse_args(argv)
    if opts is None:
        sys.stdout.write(USAGE)
        return 0
    check_schedd_name(opts.name)
    text = read_description(opts.file)
    context = dict(cwd=os.getcwd(), environ=starting_environment(), owner=jobs.current_owner(),
                   uid=os.getuid(), now=int(time.time()))
    try:
        desc = submit.parse_description(text, append=opts.append, queue_override=opts.queue,
                                        cwd=context["cwd"], environ=context["environ"])
        if opts.maxjobs is not None and desc.job_count() > opts.maxjobs:
            fail("the description queues %d jobs, more than -maxjobs %d: nothing submitted"
                 % (desc.job_count(), opts.maxjobs))
        # Built once before any id is taken: a bad description changes nothing.
        trial = submit.build_jobs(desc, cluster_id=1, **context)
        spool_dir = os.path.abspath(default_workdir())
        for job in trial:
            # What the master checks: accepted means queued.
            jobs.validate_job(job, 1, spool_dir=spool_dir)
            check_files(job)
        if opts.dry_run is not None:
            return write_dry_run(opts.dry_run, trial)
        built: List[dict] = []

        def build(cluster_id: int) -> List[dict]:
            built.extend(submit.build_jobs(desc, cluster_id=cluster_id, **context))
            for job in built:
                # $(Cluster) may lengthen a value past a limit the trial stayed under.
                jobs.validate_job(job, cluster_id, spool_dir=spool_dir)
            return built
        cluster = Spool(default_workdir(), create=True).records.submit(build)
    except (submit.SubmitError, jobs.InvalidJob, SpoolError) as err:
        fail(str(err))
    except OSError as err:
        fail("cannot queue the jobs: %s" % err)
    print_result(opts, cluster, built)
    return 0


def write_dry_run(path: str, job_list: List[dict]) -> int:
    """-dry-run: the ads HTCondor would queue (cluster id 1 stands for the real one)."""
    text = "".join("".join("%s = %s\n" % (name, classad.unparse(job[name]))
                           for name in sorted(job, key=str.lower)) + "\n" for job in job_list)
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w") as handle:
            handle.write(text)
    return 0


def cli() -> None:
    """Console-script entry point (pip install)."""
    run_main(main)


if __name__ == "__main__":
    cli()
