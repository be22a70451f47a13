"""Accepted means queued: whatever condor_submit accepts, the master takes and can run.

condor_submit's checks are submit.parse_description + build_jobs +
jobs.validate_job (and files on disk, which this leaves aside); the master's are
spool decoding + jobs.validate_job + tasks.task_spec. Hypothesis writes the
descriptions from the pieces real clients use, with random values in them.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from awq import classad, jobs, spool, submit, tasks

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n\r"),
               max_size=40)
WORD = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-./:"),
               min_size=1, max_size=20)
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)


def quoted_new_syntax(words):
    return '"%s"' % " ".join("'%s'" % w.replace("'", "''").replace('"', '""') for w in words)


LINES = st.one_of(
    st.builds(lambda v: "arguments = %s" % v, TEXT),
    st.builds(lambda ws: "arguments = %s" % quoted_new_syntax(ws), st.lists(TEXT, max_size=4)),
    st.builds(lambda n, v: "environment = %s=%s" % (n, v.replace(";", "")), NAME, WORD),
    st.builds(lambda n, v: 'environment = "%s=\'%s\'"' % (n, v.replace("'", "''").replace('"', '""')),
              NAME, TEXT),
    st.builds(lambda n, v: "+%s = %s" % (n, v), NAME, st.one_of(
        st.integers(-10**6, 10**6).map(str), WORD.map(lambda w: '"%s"' % w),
        st.sampled_from(["true", "JobStatus == 1", "CurrentTime - QDate > 60", "undefined",
                         "floor(2.5)", "strcmp(Owner, \"x\")", ""]))),
    st.builds(lambda v: "request_cpus = %d" % v, st.integers(1, 64)),
    st.builds(lambda v: "request_memory = %s" % v, st.sampled_from(["100", "2 GB", "512M", ""])),
    st.sampled_from(["periodic_remove = CurrentTime - QDate > 259200", "universe = vanilla",
                     "universe = grid", "+WantJobRouter = True", "job_lease_duration = 7200",
                     "ShouldTransferFiles = YES", "requirements =", "+projectname =",
                     "leave_in_queue = TRUE", "batch_name = dask-worker", "priority = 5",
                     "getenv = false", "hold = false", "transfer_executable = true"]),
    st.builds(lambda n, v: "%s = %s" % (n, v), NAME.filter(lambda n: n.lower() not in (
        "executable", "cmd", "universe", "queue", "hold", "getenv", "environment", "env",
        "arguments", "args", "initialdir", "initial_dir", "iwd", "use_x509userproxy",
        "transfer_executable", "output", "error", "log", "input", "transfer_input_files",
        "request_cpus", "request_memory", "request_disk", "requestcpus", "requestmemory",
        "requestdisk", "priority", "max_retries", "job_lease_duration", "x509userproxy",
        "leave_in_queue", "periodic_hold", "periodic_remove", "periodic_release",
        "on_exit_remove", "on_exit_hold", "requirements", "rank", "stream_output",
        "stream_error")), TEXT),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, max_size=8), count=st.integers(1, 3),
       executable=st.sampled_from(["/bin/true", "cmd = /opt/agent.startup.1",
                                   "/bin/sh", "relative/agent.sh"]))
def test_what_condor_submit_accepts_the_master_accepts_and_can_run(lines, count, executable):
    first = executable if executable.startswith("cmd") else "executable = %s" % executable
    text = "\n".join([first] + lines + ["queue %d" % count]) + "\n"
    try:
        desc = submit.parse_description(text)
        built = submit.build_jobs(desc, cluster_id=7, cwd="/home/vobox", environ={"HOME": "/h"},
                                  owner="vobox", uid=1000, now=1700000000)
        for job in built:
            jobs.validate_job(job, 7)
    except (submit.SubmitError, jobs.InvalidJob):
        event("refused at submit")
        return  # refused at submit, with a message: nothing to check
    event("accepted")
    # The master's side: the record as the spool stores and reads it.
    taken = spool.decode_jobs(spool.encode_jobs(built))
    for job in taken:
        jobs.validate_job(job, 7)
        spec = tasks.task_spec(job)
        assert spec.command and spec.cores >= 1
        for name, value in job.items():
            if isinstance(value, classad.Expr):
                classad.evaluate(value, job)  # never raises
