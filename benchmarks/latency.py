#!/usr/bin/env python3
"""Submit-to-start and submit-to-output latency through a real master and workers.

Each sample runs condor_submit (a fresh process, as AliEn does) for a job
that stamps the time it starts into a file and prints one line; we record
when the job started and when its output file was complete. Scenarios:
workers attached directly or through a foreman, with the queue idle or with
long jobs outstanding (where Work Queue's wait() blocks whole seconds), and
the early wake-up on and off (AWQ_DISABLE_EARLY_WAKE=1).

    .venv/bin/python benchmarks/latency.py [--samples N] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WQ_WORKER = shutil.which("work_queue_worker") or "work_queue_worker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A master, one foreman and a few workers, all on loopback."""

    def __init__(self, root: str, early_wake: bool, workers: int, foreman: bool):
        self.root = root
        self.spool = os.path.join(root, "spool")
        self.env = dict(os.environ, AWQ_WORKDIR=self.spool,
                        PYTHONPATH=REPO + ":" + os.environ.get("PYTHONPATH", ""))
        if not early_wake:
            self.env["AWQ_DISABLE_EARLY_WAKE"] = "1"
        self.procs = []
        port, foreman_port = free_port(), free_port()
        self._start([sys.executable, "-m", "awq.cli.alien_work_queue", "--work-dir", self.spool,
                     "--port", str(port)], "master")
        self._wait_for_heartbeat()  # the master has made the spool's password by then
        password = ["--password", os.path.join(self.spool, "password")]
        if foreman:
            self._start([WQ_WORKER, "--foreman", "--foreman-port", str(foreman_port), "--timeout",
                         "120", "--workdir", self._dir("foreman")] + password
                        + ["127.0.0.1", str(port)], "foreman")
        manager = foreman_port if foreman else port
        for index in range(workers):
            self._start([WQ_WORKER, "--cores", "1", "--timeout", "120",
                         "--workdir", self._dir("worker%d" % index)] + password
                        + ["127.0.0.1", str(manager)], "worker%d" % index)

    def _dir(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def _start(self, argv, name) -> None:
        log = open(os.path.join(self.root, name + ".log"), "wb")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))

    def _wait_for_heartbeat(self) -> None:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.spool, "stat", "latest")):
            if time.monotonic() > deadline:
                raise SystemExit("the master did not start; see %s/master.log" % self.root)
            time.sleep(0.05)

    def submit(self, description: str) -> None:
        subprocess.run([sys.executable, "-m", "awq.cli.condor_submit"], input=description,
                       text=True, check=True, capture_output=True, env=self.env, cwd=self.root)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def wait_for_line(path: str, line: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                if line in handle.read():
                    return
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit("timed out waiting for %s" % path)


def measure(early_wake: bool, busy: bool, foreman: bool, samples: int) -> tuple:
    root = tempfile.mkdtemp(prefix="awq-bench-")
    cluster = Cluster(root, early_wake, workers=3 if busy else 1, foreman=foreman)
    try:
        job = os.path.join(root, "job.sh")
        with open(job, "w") as handle:
            handle.write("#!/bin/sh\ndate +%s.%N > \"$2\"\necho done $1\n")
        os.chmod(job, 0o755)
        if busy:
            sleeper = os.path.join(root, "sleep.sh")
            with open(sleeper, "w") as handle:
                handle.write("#!/bin/sh\nsleep 300\n")
            os.chmod(sleeper, 0o755)
            cluster.submit("executable = %s\nqueue 2\n" % sleeper)
            time.sleep(3)  # let them start: from now on wait() has tasks out
        starts, outputs = [], []
        for index in range(samples):
            out = os.path.join(root, "out.%d" % index)
            stamp = os.path.join(root, "started.%d" % index)
            submitted = time.time()
            cluster.submit("executable = %s\narguments = %d %s\noutput = %s\nqueue\n"
                           % (job, index, stamp, out))
            wait_for_line(out, "done %d" % index)
            outputs.append(time.time() - submitted)
            with open(stamp) as handle:
                starts.append(float(handle.read()) - submitted)
            time.sleep(0.2)
        return starts, outputs
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def summary(times: list) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return "median %.3f s, p95 %.3f s, max %.3f s (n=%d)" % (
        statistics.median(ordered), p95, ordered[-1], len(ordered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "latency.txt"))
    options = parser.parse_args()
    lines = ["# condor_submit -> job start, and -> job output on disk; master, workers (and a foreman) on loopback",
             "# %s, %s, Python %s, %d CPUs" % (time.strftime("%Y-%m-%d %H:%M"), platform.node(),
                                               platform.python_version(), os.cpu_count() or 0),
             "# includes condor_submit's own start-up (a fresh Python process per submit)"]
    scenarios = [(False, False, True), (False, False, False), (False, True, True),
                 (False, True, False), (True, True, True), (True, True, False)]
    for foreman, busy, early_wake in scenarios:
        label = "%-15s %-26s wake-up %-3s" % ("via a foreman" if foreman else "direct workers",
                                              "2 long jobs outstanding" if busy else "queue idle",
                                              "on" if early_wake else "off")
        starts, outputs = measure(early_wake, busy, foreman, options.samples)
        for what, times in (("job started", starts), ("output on disk", outputs)):
            line = "%s  %-15s %s" % (label, what + ":", summary(times))
            print(line, flush=True)
            lines.append(line)
    with open(options.output, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("written to", options.output)


if __name__ == "__main__":
    main()
