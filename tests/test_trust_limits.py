"""Every limit a job's data meets on its way to the pilot is enforced at submit.

Past a limit, condor_submit refuses the job with one line naming it; at the limit, the
job runs through a real master and worker to completion. The limits themselves are
awq.jobs.MAX_* (their comments say where each comes from).
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from awq import jobs, tasks
from conftest import wait_until, write_script

LIMITS = ("environment entry", "environment total", "command line")
# Characters whose cost differs: plain, a quote (shell-quoted as 5 bytes), two UTF-8
# bytes, a space (the word needs quoting).
FILLERS = ("x", "'", "\u00e9", " ")
# What the real limits are (measured with CCTools 8 and Linux): the checked limits must
# stay under them for every job validation accepts.
WORK_QUEUE_ENV_ENTRY_EDGE = 4085     # NAME=value bytes Work Queue's 4096-byte buffer carries
SHELL_COMMAND_EDGE = 131071          # MAX_ARG_STRLEN - 1: sh -c COMMAND
PROGRAM = "probe.sh"
# A finished job's output appears once the worker ran it and the master fetched it:
# Work Queue's own timeouts for a small task on an idle local worker are seconds; this
# bound is what a loaded 2-CPU machine needs for the master and worker to start, too.
JOB_COMPLETION_TIMEOUT = 90


def base_job(**extra: object) -> dict:
    job = {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "QDate": 0,
           "Cmd": "/opt/" + PROGRAM, "Iwd": "/tmp"}
    job.update(extra)
    return job


def entry_bytes(name: str, value: str) -> int:
    return len(name.encode()) + 1 + len(value.encode())


def fill(filler: str, size: int) -> str:
    """A text of exactly size UTF-8 bytes, as much of filler as fits, then 'x'."""
    width = len(filler.encode())
    text = filler * (size // width)
    return text + "x" * (size - len(text.encode()))


def environment_at(limit: str, filler: str, excess: int, prefix: str = "AWQ_V") -> dict:
    """An environment whose measure is the limit plus excess (0: exactly at it)."""
    if limit == "environment entry":
        name = "AWQ_BIG"
        return {name: fill(filler, jobs.MAX_ENVIRONMENT_ENTRY_BYTES + excess - len(name) - 1)}
    remaining = jobs.MAX_ENVIRONMENT_BYTES + excess
    exec_overhead = 1 + 8   # a variable's NUL and pointer, as exec counts them
    env: dict = {}
    while remaining > 0:
        name = "%s%d" % (prefix, len(env))
        smallest = len(name) + 2 + exec_overhead   # the next one: a name one digit longer
        cost = min(jobs.MAX_ENVIRONMENT_ENTRY_BYTES + exec_overhead, remaining)
        if 0 < remaining - cost < smallest:
            cost -= smallest
        env[name] = fill(filler, cost - exec_overhead - len(name) - 1)
        remaining -= cost
    return env


def word_quoted_as(filler: str, size: int) -> str:
    """A word that takes exactly size bytes in the command once quoted (size >= 2)."""
    cost = jobs.quoted_length(filler) - 2
    word = filler * ((size - 2) // cost)
    return word + "x" * (size - jobs.quoted_length(word))


def arguments_at(filler: str, excess: int, program: str = PROGRAM) -> list:
    """Arguments that, with the program, take the command-line limit plus excess bytes."""
    remaining = jobs.MAX_COMMAND_LINE_BYTES + excess - jobs.quoted_length(program)
    words = []
    while remaining > 0:
        size = min(remaining, 30000)   # a word and its space; one exec argument < 128 KiB
        if 0 < remaining - size < 3:
            size -= 3
        words.append(word_quoted_as(filler, size - 1))
        remaining -= size
    return words


def job_at(limit: str, filler: str, excess: int, **attributes: object) -> dict:
    job = base_job(**attributes)
    if limit == "command line":
        program = str(job["Cmd"])
        if job.get("TransferExecutable", True) is not False:
            program = program.rsplit("/", 1)[-1]
        job["Arguments"] = jobs.join_arguments(arguments_at(filler, excess, program))
    else:
        job["Environment"] = jobs.join_environment(environment_at(limit, filler, excess))
    return job


LIMIT_NAMES = {"environment entry": "for one variable",
               "environment total": "for all variables together",
               "command line": "the command line"}


@settings(max_examples=30, deadline=None)
@given(limit=st.sampled_from(LIMITS), filler=st.sampled_from(FILLERS),
       excess=st.integers(min_value=-50, max_value=50))
def test_validation_accepts_up_to_each_limit_and_refuses_past_it(limit, filler, excess):
    job = job_at(limit, filler, excess)
    if excess <= 0:
        jobs.validate_job(job, 1)
        return
    try:
        jobs.validate_job(job, 1)
    except jobs.InvalidJob as err:
        assert LIMIT_NAMES[limit] in str(err) and "limit" in str(err)
        assert "\n" not in str(err)
    else:
        raise AssertionError("%s past its limit by %d was accepted" % (limit, excess))


@settings(max_examples=40, deadline=None)
@given(limit=st.sampled_from(LIMITS), filler=st.sampled_from(FILLERS),
       transfer=st.booleans(), wrapper=st.booleans(), proxy=st.booleans(),
       program=st.text(alphabet="ab'_.-", min_size=1, max_size=255))
def test_an_accepted_job_fits_work_queue_and_the_workers_shell(limit, filler, transfer, wrapper,
                                                              proxy, program):
    """The checked limits stand for the real ones: the task the master makes stays under."""
    if program in (".", ".."):
        return
    job = job_at(limit, filler, 0, Cmd="/opt/" + program, TransferExecutable=transfer)
    if proxy:
        job["X509UserProxy"] = "/tmp/x509up_u1000"
    job["Out"], job["Err"], job["In"] = "/tmp/out", "/tmp/err", "/tmp/in"
    job = jobs.validate_job(job, 1)
    spec = tasks.task_spec(job, wrapper="/opt/" + "w" * 200 if wrapper else None)
    assert len(spec.command.encode()) <= SHELL_COMMAND_EDGE
    for name, value in spec.environment.items():
        assert entry_bytes(name, value) <= WORK_QUEUE_ENV_ENTRY_EDGE


def test_a_path_longer_than_linux_allows_is_refused():
    for path in ("/" + "a" * 256, "/a" * 2048):
        try:
            jobs.validate_job(base_job(Out=path), 1)
        except jobs.InvalidJob as err:
            assert "longer than a path can be" in str(err)
        else:
            raise AssertionError("accepted a path of %d bytes" % len(path))


# ---------------------------------------------------------------- the real chain

PROBE = r"""
printf 'args=%s\n' "$#"
printf 'argbytes=%s\n' "$(printf '%s' "$*" | LC_ALL=C wc -c)"
printf 'big=%s\n' "$(printf '%s' "$AWQ_BIG" | LC_ALL=C wc -c)"
printf 'vars=%s\n' "$(env | grep -c '^AWQ_V')"
echo done
"""


def description(probe: str, out: str, job: dict) -> str:
    text = "executable = %s\noutput = %s\nerror = %s.err\n" % (probe, out, out)
    for key, attribute in (("arguments", "Arguments"), ("environment", "Environment")):
        if attribute in job:
            text += '%s = "%s"\n' % (key, job[attribute])
    return text + "queue\n"


def expected_output(job: dict) -> str:
    argv = jobs.argv_of(job)
    env = jobs.environment_of(job)
    return ("args=%d\nargbytes=%d\nbig=%d\nvars=%d\ndone\n"
            % (len(argv), len(" ".join(argv).encode()), len(env.get("AWQ_BIG", "").encode()),
               sum(1 for name in env if name.startswith("AWQ_V"))))


def test_jobs_at_each_limit_run_and_past_it_are_refused_at_submit(tmp_path, start_master,
                                                                   start_worker, tool):
    master = start_master()
    start_worker(master.port)
    probe = write_script(tmp_path / PROGRAM, PROBE)
    ran = []

    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(limit=st.sampled_from(LIMITS), filler=st.sampled_from(FILLERS),
           past=st.booleans(), excess=st.integers(min_value=1, max_value=5000))
    @example(limit="environment entry", filler="\u00e9", past=False, excess=1)
    @example(limit="environment total", filler="'", past=False, excess=1)
    @example(limit="command line", filler="'", past=False, excess=1)
    @example(limit="command line", filler=" ", past=True, excess=1)
    def check(limit, filler, past, excess):
        job = job_at(limit, filler, excess if past else 0)
        out = str(tmp_path / ("out%d" % len(ran)))
        ran.append(out)
        result = tool("condor_submit", stdin=description(probe, out, job), cwd=str(tmp_path))
        if past:
            assert result.returncode == 1, result.stdout
            assert "Traceback" not in result.stderr
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
            assert LIMIT_NAMES[limit] in lines[0] and "limit" in lines[0], lines[0]
            return
        assert result.returncode == 0, result.stderr
        wait_until(lambda: os.path.exists(out) and open(out, "rb").read().endswith(b"done\n"),
                   JOB_COMPLETION_TIMEOUT, what="the job at the %s limit to finish" % limit)
        assert open(out).read() == expected_output(job)

    check()
    assert master.proc.poll() is None, master.log()
    assert not re.search(r"fatal|OUTPUT_MISS", master.log()), master.log()


def test_the_job_that_stopped_the_master_is_refused_at_submit(tmp_path, tool):
    """A 4 KB environment variable made CCTools abort the master when a worker connected."""
    probe = write_script(tmp_path / PROGRAM, PROBE)
    job = base_job(Environment=jobs.join_environment({"AWQ_BIG": "x" * 4096}))
    result = tool("condor_submit", stdin=description(probe, str(tmp_path / "out"), job))
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: environment variable AWQ_BIG is 4104 bytes"), \
        result.stderr


def test_the_largest_environment_and_command_run_through_the_alien_job_wrapper(tmp_path,
                                                                               start_master,
                                                                               start_worker, tool):
    """The wrapper passes every ALIEN_ variable again as an argument of env -i: the limits
    leave room for that within exec's ARG_MAX."""
    wrapper = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "etc", "alien_job_wrapper.sh")
    master = start_master("--job-wrapper", wrapper)
    start_worker(master.port)
    probe = write_script(tmp_path / PROGRAM, 'printf "vars=%s args=%s\\n" '
                         '"$(env | grep -c \'^ALIEN_V\')" "$#"\n')
    env = environment_at("environment total", "x", 0, prefix="ALIEN_V")
    job = base_job(Environment=jobs.join_environment(env),
                   Arguments=jobs.join_arguments(arguments_at("x", 0)))
    out = tmp_path / "out"
    result = tool("condor_submit", stdin=description(probe, str(out), job), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: out.exists() and out.read_text().endswith("\n"), JOB_COMPLETION_TIMEOUT,
               what="the job at both limits to finish through the wrapper")
    assert out.read_text() == "vars=%d args=%d\n" % (len(env), len(jobs.argv_of(job)))
