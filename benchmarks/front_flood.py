"""A new worker joining while one address floods the front with parallel connections.

Issue 21: the front holds at most MAX_PENDING (256) connections proving the password;
past it one goes. A flood of more than that, reopened as fast as the front closes them,
could push a real worker's handshake out (the oldest went first): the worker is refused
and tries again after its backoff. This starts a master (from --product, the repository
by default), floods its port from 127.0.0.2 with --flood silent connections (each
reopened when the front closes it), and starts SAMPLES fresh workers from 127.0.0.1 one
after the other: from each worker's start to its first pilot's output, and how many of
127.0.0.1's connections the front refused meanwhile (its log's count lines).

    .venv/bin/python -m benchmarks.front_flood [--product DIR] [--flood 1000]

Writes benchmarks/results/front_flood.json (or --out).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

from awq.front import raise_open_file_limit
from benchmarks.silent_connections import start_master_and_pilot
from testkit import Processes, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
FLOOD_SOURCE = "127.0.0.2"   # all of 127/8 is this host: an address other than the worker's
WORKER_SOURCE = "127.0.0.1"
# s a worker may take to join and run a pilot: a refused worker retries after 1 s, then
# 2, 4, 8 ... (work_queue_worker's backoff); past a minute it is pushed out for good.
JOIN_WAIT = 60.0


class Flood:
    """Holds `count` connections from FLOOD_SOURCE that never send a byte; each one the
    front closes is reopened at once, so the front always has more than it can hold."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.stop = threading.Event()
        self.opened = 0
        self.closed_by_the_front = 0
        self.selector = selectors.DefaultSelector()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((FLOOD_SOURCE, 0))
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            return
        self.selector.register(sock, selectors.EVENT_READ)
        self.opened += 1

    def run(self) -> None:
        while not self.stop.is_set():
            for _ in range(self.count - len(self.selector.get_map())):
                self._open()
            for key, _ in self.selector.select(0.05):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:  # closed by the front: a new stranger takes its place
                    self.selector.unregister(sock)
                    sock.close()  # type: ignore[union-attr]
                    self.closed_by_the_front += 1
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def refusals_of(log: str, peer: str) -> int:
    """How many of peer's connections the front refused, from its rate-limited lines."""
    first = len(re.findall(r"refused a connection from %s:" % re.escape(peer), log))
    more = sum(int(n) for n in re.findall(r"refused (\d+) more connections from %s "
                                          % re.escape(peer), log))
    return first + more


def join_and_run(procs: Processes, env: Dict[str, str], scratch: str, port: int,
                 index: int) -> float:
    """Start a fresh worker and submit a pilot: seconds until the pilot's output."""
    workdir = os.path.join(scratch, "worker%d" % index)
    os.mkdir(workdir)
    out = os.path.join(scratch, "pilot%d.out" % index)
    started = time.monotonic()
    worker = procs.start([shutil.which("work_queue_worker") or "work_queue_worker",
                          "--cores", "1", "--workdir", workdir,
                          "--password", os.path.join(env["AWQ_WORKDIR"], "password"),
                          WORKER_SOURCE, str(port)], "worker%d" % index)
    description = "executable = %s\noutput = %s\nqueue\n" % (os.path.join(scratch, "pilot.sh"),
                                                             out)
    subprocess.run([PYTHON, "-m", "awq.cli.condor_submit"], input=description, text=True,
                   env=env, check=True, capture_output=True, timeout=60)
    try:
        wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 0, JOIN_WAIT,
                   interval=0.01, what="pilot %d" % index)
        return time.monotonic() - started
    except Exception:
        return float("inf")
    finally:
        procs.stop(worker)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--product", default=REPO, help="the alien-workqueue tree to measure")
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results",
                                                      "front_flood.json"))
    options = parser.parse_args(argv)
    raise_open_file_limit()   # the flood's sockets
    scratch = tempfile.mkdtemp(prefix="awq-flood-")
    procs = Processes(scratch)
    try:
        env, master, port = start_master_and_pilot(procs, scratch, options.product)
        quiet = [join_and_run(procs, env, scratch, port, i) for i in range(options.samples)]
        flood = Flood(port, options.flood)
        flood.thread.start()
        flooded = [join_and_run(procs, env, scratch, port, 100 + i)
                   for i in range(options.samples)]
        flood.stop.set()
        flood.thread.join()
        procs.stop(master)   # its front writes the refusal counts as it ends
        log = procs.log_of(master)
        result = {
            "product": os.path.abspath(options.product), "flood_connections": options.flood,
            "join_and_run_quiet_s": quiet, "join_and_run_flooded_s": flooded,
            "quiet_median_s": statistics.median(quiet),
            "flooded_median_s": statistics.median(flooded), "flooded_max_s": max(flooded),
            "flood_connections_opened": flood.opened,
            "flood_closed_by_the_front": flood.closed_by_the_front,
            "worker_connections_refused": refusals_of(log, WORKER_SOURCE),
            "flood_connections_refused": refusals_of(log, FLOOD_SOURCE),
        }
        with open(options.out, "w") as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
            handle.write("\n")
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
