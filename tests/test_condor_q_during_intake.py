"""condor_q counts every accepted job while a real master takes them in (issue 21, item 7).

AliEn and JAliEn count idle jobs with condor_q to decide how many pilots to submit; a
count that drops below what was accepted makes them submit pilots twice.
"""

from __future__ import annotations

import re
import sys
import threading

from conftest import run_tool

# The shape: big records, several waiting at once, make each condor_q read long
# enough that the master's snapshot writes (and record deletions) fall inside it.
CLUSTERS = 10
JOBS_PER_CLUSTER = 10000
# Each condor_submit of a cluster takes well under this even on a loaded machine (it writes
# one record); the submitter gives up after it rather than hang the test.
SUBMIT_TIMEOUT = 60.0
TOTAL = re.compile(r"^Total for all users: (\d+) jobs;", re.M)


def test_condor_q_run_back_to_back_never_counts_fewer_than_the_accepted_jobs(start_master,
                                                                               workdir):
    start_master()  # no worker: every job stays idle, so every accepted job stays counted
    accepted = [0]
    lock = threading.Lock()
    done = threading.Event()
    failures = []

    def submitter():
        try:
            for _ in range(CLUSTERS):
                result = run_tool("condor_submit", [], workdir, timeout=SUBMIT_TIMEOUT,
                                  stdin="executable = /bin/true\nqueue %d\n" % JOBS_PER_CLUSTER)
                if result.returncode != 0:
                    failures.append(result.stderr)
                    return
                with lock:
                    accepted[0] += JOBS_PER_CLUSTER
        finally:
            done.set()

    thread = threading.Thread(target=submitter)
    thread.start()
    samples, short = 0, []
    try:
        # Back to back until the submitter is done, and once more after it.
        while True:
            finished = done.is_set()
            with lock:
                before = accepted[0]
            result = run_tool("condor_q", ["-totals"], workdir)
            assert result.returncode == 0, result.stderr
            counted = int(TOTAL.search(result.stdout).group(1))
            samples += 1
            if counted < before:
                short.append((before, counted))
            if finished:
                break
    finally:
        thread.join(CLUSTERS * SUBMIT_TIMEOUT)
    assert not failures, failures
    sys.stderr.write("condor_q during intake: %d samples, %d short\n" % (samples, len(short)))
    assert short == [], "condor_q counted fewer jobs than accepted (accepted, counted): %s" % short
    assert accepted[0] == CLUSTERS * JOBS_PER_CLUSTER and samples > CLUSTERS
