"""Job start latency on an authenticated worker, before and during silent connections.

Issue 21, finding 2: anyone who reaches the master's port could stall it by
connecting and saying nothing. This starts a master (from --product, the
repository by default), one worker with the password and a trivial pilot, and
measures from `condor_submit`'s return to the pilot's output: SAMPLES times
with nobody else connected, then SAMPLES times while SILENT connections are
held open (each reopened when the master closes it). Goal: under 1 s through
them.

    .venv/bin/python -m benchmarks.silent_connections [--product DIR] [--silent 20]

Writes benchmarks/results/silent_connections.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple

from testkit import Processes, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
JOB_WAIT = 120.0           # s: the old master took 12-15 s per job here; far beyond it is broken
MASTER_START_WAIT = 60.0   # s: a master's start, with busy CPUs
CONNECT_TRY = 1.0          # s: the kernel answers a connect on loopback at once unless the
#                            listen backlog is full (then the SYN is dropped and retried)


class SilentCrowd:
    """Holds `count` connections that never send a byte; reopens those the master closes."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.reopened = 0
        self.failed = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        socks: List[socket.socket] = []
        while not self.stop.is_set():
            alive = []
            for sock in socks:
                try:
                    sock.setblocking(False)
                    data = sock.recv(4096)
                    if data == b"":
                        sock.close()  # closed by the master: a new stranger takes its place
                        self.reopened += 1
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    sock.close()
                    continue
                alive.append(sock)
            socks = alive
            for _ in range(self.count - len(socks)):
                try:
                    # A master whose listen backlog is full leaves a connect hanging: try again
                    # on the next round rather than wait for the kernel's SYN retries.
                    socks.append(socket.create_connection(("127.0.0.1", self.port),
                                                          timeout=CONNECT_TRY))
                except OSError:
                    self.failed += 1
                    break
            self.connected.set()
            self.stop.wait(0.05)  # how often a closed stranger is replaced
        for sock in socks:
            sock.close()


def submit_and_time(env: Dict[str, str], scratch: str, index: int) -> float:
    out = os.path.join(scratch, "pilot%d.out" % index)
    description = "executable = %s\noutput = %s\nqueue\n" % (os.path.join(scratch, "pilot.sh"), out)
    subprocess.run([PYTHON, "-m", "awq.cli.condor_submit"], input=description, text=True,
                   env=env, check=True, capture_output=True, timeout=60)
    started = time.monotonic()
    wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 0, JOB_WAIT,
               interval=0.01, what="pilot %d" % index)
    return time.monotonic() - started


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--product", default=REPO, help="the alien-workqueue tree to measure")
    parser.add_argument("--silent", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results",
                                                      "silent_connections.json"))
    options = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="awq-silent-")
    procs = Processes(scratch)
    try:
        spool = os.path.join(scratch, "spool")
        env, master, port = start_master_and_pilot(procs, scratch, options.product)
        workdir = os.path.join(scratch, "worker")
        os.mkdir(workdir)
        procs.start([shutil.which("work_queue_worker") or "work_queue_worker", "--cores", "1",
                     "--workdir", workdir, "--password", os.path.join(spool, "password"),
                     "127.0.0.1", str(port)], "worker")
        submit_and_time(env, scratch, 0)  # warm-up: the worker connects, the pilot is cached
        before = [submit_and_time(env, scratch, i) for i in range(1, options.samples + 1)]
        crowd = SilentCrowd(port, options.silent)
        crowd.thread.start()
        if not crowd.connected.wait(MASTER_START_WAIT):
            raise RuntimeError("the silent connections could not be made")
        during = [submit_and_time(env, scratch, 100 + i) for i in range(options.samples)]
        crowd.stop.set()
        crowd.thread.join()
        result = {
            "product": os.path.abspath(options.product), "silent_connections": options.silent,
            "before_s": before, "during_s": during,
            "before_median_s": statistics.median(before),
            "during_median_s": statistics.median(during),
            "during_max_s": max(during), "reopened_by_the_master": crowd.reopened,
            "connects_that_hung": crowd.failed,
            "goal_during_max_s": 1.0, "goal_met": max(during) < 1.0,
        }
        with open(options.out, "w") as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
            handle.write("\n")
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


def start_master_and_pilot(procs: Processes, scratch: str,
                           product: str) -> Tuple[Dict[str, str], subprocess.Popen, int]:
    """A master of `product` on a free port with its spool in `scratch`, and scratch/pilot.sh
    that echoes one line: the environment the tools need, the master, its port."""
    env = dict(os.environ, AWQ_WORKDIR=os.path.join(scratch, "spool"),
               PYTHONPATH=os.path.abspath(product))
    pilot = os.path.join(scratch, "pilot.sh")
    with open(pilot, "w") as handle:
        handle.write("#!/bin/sh\necho pilot ran\n")
    os.chmod(pilot, 0o755)
    master = procs.start([PYTHON, "-m", "awq.cli.alien_work_queue", "--port", "0"],
                         "master", env=env, cwd=scratch)
    port = int(wait_until(lambda: _logged_port(procs.log_of(master)), MASTER_START_WAIT,
                          what="the master's port"))
    return env, master, port


def _logged_port(text: str):
    import re
    found = re.findall(r"listening for workers on port (\d+)", text)
    return int(found[-1]) if found else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
