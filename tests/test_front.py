"""The front (awq/front.py): strangers who connect and say nothing cost the master nothing.

Unit tier: the password exchange, the refusal log and the front's loop in this process,
against a stand-in for Work Queue that plays CCTools' exchange. End-to-end: a real master
and real workers while silent connections wait on its port; --interface; what the master
says when its port is busy or its TLS flags cannot work, before it makes a spool.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from awq import front
from conftest import (JOB_DONE_WITHIN, LOAD_ALLOWANCE, MASTER_NOTICES_WITHIN, PYTHON, REPO,
                      MasterHandle, master_on_port, product_env, write_script)
from testkit import free_port, pid_alive, wait_until

PASSWORD = b"the-password\n"   # as CCTools reads a file: the newline is part of it
SILENT_CONNECTIONS = 20        # what issue 21 measured with
# CCTools 8 gives each connection this long to prove the password, inside its own loop: the
# old master spent at least this on the first silent connection before anything else.
WORK_QUEUE_AUTH_TIMEOUT = 5.0
# A job on a connected worker starts once the master notices it; a new worker is taken the
# next time the master calls wait() (at least once a second), then it is sent the job.
JOB_STARTS_WITHIN = MASTER_NOTICES_WITHIN * LOAD_ALLOWANCE
NEW_WORKER_RUNS_A_JOB_WITHIN = 2 * MASTER_NOTICES_WITHIN * LOAD_ALLOWANCE
FRONT_GONE_WITHIN = front.PREVIOUS_FRONT_GONE_WITHIN * LOAD_ALLOWANCE
# A unit-tier exchange over loopback between threads of this process.
LOOPBACK_EXCHANGE_WITHIN = 10.0


# ---------------------------------------------------------------- the exchange, on paper

def run_exchange(server: front.ServerAuth, client: front.ClientAuth):
    """Feed each side the other's lines in CCTools' order; each side's verdict."""
    to_client = [line for line in server.opening().split(b"\n") if line]
    to_server = [line for line in client.opening().split(b"\n") if line]
    verdicts = {"server": None, "client": None}
    while to_client or to_server:
        if to_server:
            reply, verdict = server.feed(to_server.pop(0))
            to_client += [line for line in reply.split(b"\n") if line]
            if verdict is not None:
                verdicts["server"] = verdict
                if verdict:
                    break
        if to_client:
            reply, verdict = client.feed(to_client.pop(0))
            to_server += [line for line in reply.split(b"\n") if line]
            if verdict is not None:
                verdicts["client"] = verdict
                if verdict:
                    break
    return verdicts


def test_the_same_password_passes_the_exchange():
    assert run_exchange(front.ServerAuth(PASSWORD), front.ClientAuth(PASSWORD)) == \
        {"server": "", "client": ""}


def test_another_password_is_refused_by_the_front():
    verdicts = run_exchange(front.ServerAuth(PASSWORD), front.ClientAuth(b"guess\n"))
    assert verdicts["client"] == "Work Queue has another password" or \
        verdicts["server"] == "presented the wrong password"


def test_a_worker_without_a_password_is_refused_at_its_first_line():
    auth = front.ServerAuth(PASSWORD)
    reply, verdict = auth.feed(b"workqueue 8 host linux x86_64 8.0.0")
    assert reply == b"" and "does not use password authentication" in verdict


def test_the_response_is_sha1_of_password_space_key():
    import hashlib
    assert front.response_to(b"pw\n", b"abc") == hashlib.sha1(b"pw\n abc").hexdigest().encode()


# ---------------------------------------------------------------- the refusal log

def test_refusals_are_one_line_per_peer_per_minute_with_a_count():
    now = [1000.0]
    lines = []
    refusals = front.RefusalLog(window=60.0, clock=lambda: now[0], emit=lines.append)
    for _ in range(300):
        refusals.refused("10.0.0.7", "presented the wrong password")
        now[0] += 0.1
    refusals.refused("10.0.0.8", "did not prove the password within 5 s")
    assert len(lines) == 2
    assert "10.0.0.7: presented the wrong password" in lines[0]
    now[0] = 1000.0 + 60.0
    refusals.tick()
    assert len(lines) == 3 and "refused 299 more connections from 10.0.0.7" in lines[2]
    refusals.tick()
    assert len(lines) == 3  # the count was said; a quiet peer adds nothing
    now[0] += 61
    refusals.tick()
    assert refusals.peers == {}  # forgotten: memory stays bounded by the peers of a minute


# ---------------------------------------------------------------- the loop, in this process

class FakeWorkQueue:
    """Plays Work Queue's side: one connection at a time, blocking, as CCTools 8 does."""

    # Whether each connection stays open after its exchange, as a worker's does (the front
    # counts what each manager holds); else it is closed at once.
    holds = False

    def __init__(self, password: bytes, path: str):
        self.password = password
        self.listener = unix_listener(path)
        self.address = path
        self.received = []
        self.held = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.holds:
                self.held.append(conn)
                self.exchange(conn)
            else:
                with conn:
                    self.exchange(conn)

    def exchange(self, conn: socket.socket) -> None:
        conn.settimeout(LOOPBACK_EXCHANGE_WITHIN)
        reader = conn.makefile("rb")
        auth = front.ServerAuth(self.password)
        conn.sendall(auth.opening())
        verdict = None
        while auth.step < front.AUTH_LINES and not verdict:
            reply, verdict = auth.feed(reader.readline().rstrip(b"\n"))
            conn.sendall(reply)
        if verdict == "":
            line = reader.readline()
            self.received.append(line)
            conn.sendall(b"echo " + line)

    def close(self):
        self.listener.close()


def unix_listener(path: str) -> socket.socket:
    """A listening Unix socket at path, as the master makes Work Queue's."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(socket.SOMAXCONN)
    return listener


def prove(sock: socket.socket, password: bytes) -> bytes:
    """A worker's side of the exchange over a blocking socket; what it then gets back."""
    sock.settimeout(LOOPBACK_EXCHANGE_WITHIN)
    reader = sock.makefile("rb")
    auth = front.ClientAuth(password)
    sock.sendall(auth.opening())
    while True:
        reply, verdict = auth.feed(reader.readline().rstrip(b"\n"))
        sock.sendall(reply)
        if verdict is not None and (verdict or auth.step >= 4):
            break
    if verdict:
        return b"refused: " + verdict.encode()
    sock.sendall(b"workqueue hello\n")
    return reader.readline()


@pytest.fixture
def running_front(tmp_path):
    fake = FakeWorkQueue(PASSWORD, str(tmp_path / "wq"))
    public = front.listen("127.0.0.1", 0)
    lines = []
    made = []

    def start(**options):
        gate = front.Front(public, fake.address, PASSWORD,
                           refusals=front.RefusalLog(emit=lines.append), **options)
        made.append(gate)
        thread = threading.Thread(target=gate.serve, daemon=True)
        thread.start()
        return gate, public.getsockname()[1], lines, fake
    yield start
    for gate in made:
        gate.running = False
    fake.close()


def test_a_worker_that_proves_the_password_is_carried_past_silent_connections(running_front):
    # Long enough that only serving the silent ones side by side can let the worker through.
    _, port, _, fake = running_front(handshake_timeout=600.0)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(SILENT_CONNECTIONS)]
    worker = socket.create_connection(("127.0.0.1", port))
    assert prove(worker, PASSWORD) == b"echo workqueue hello\n"
    assert fake.received == [b"workqueue hello\n"]
    for sock in silent + [worker]:
        sock.close()


def test_a_wrong_password_never_reaches_work_queue_and_is_logged_once(running_front):
    _, port, lines, fake = running_front()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port)) as stranger:
            assert prove(stranger, b"guess\n").startswith(b"refused")
    wait_until(lambda: lines, LOOPBACK_EXCHANGE_WITHIN, what="the refusal line")
    assert fake.received == []
    assert len(lines) == 1 and "127.0.0.1: presented the wrong password" in lines[0]


def test_pending_connections_are_bounded_and_the_oldest_goes_first(running_front):
    _, port, lines, _ = running_front(handshake_timeout=600.0, max_pending=3)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]

    def closed_by_the_front(sock: socket.socket) -> bool:
        sock.settimeout(LOOPBACK_EXCHANGE_WITHIN)
        data = b""
        while True:  # the front's opening lines, then its end of the connection
            chunk = sock.recv(4096)
            if not chunk:
                return True
            data += chunk

    assert closed_by_the_front(silent[0]) and closed_by_the_front(silent[1])
    wait_until(lambda: lines, LOOPBACK_EXCHANGE_WITHIN, what="the refusal line")
    assert "127.0.0.1: too many of its connections proving themselves at once" in lines[0]
    worker = socket.create_connection(("127.0.0.1", port))
    assert prove(worker, PASSWORD) == b"echo workqueue hello\n"
    for sock in silent + [worker]:
        sock.close()


def connect_from(source: str, port: int) -> socket.socket:
    """A connection to the front from `source` (all of 127/8 is this host: another peer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def test_a_flood_from_one_address_cannot_push_out_another_peers_worker(running_front):
    """Past max_pending, the address holding the most loses its own connections: a worker
    whose handshake is under way keeps its slot however many a flooder opens."""
    _, port, lines, _ = running_front(handshake_timeout=600.0, max_pending=8)
    worker = connect_from("127.0.0.1", port)      # the oldest pending connection
    flood = [connect_from("127.0.0.2", port) for _ in range(40)]
    # The front took them all in (it closes the flood's oldest as it goes) before the
    # worker goes on with its exchange.
    wait_until(lambda: lines, LOOPBACK_EXCHANGE_WITHIN, what="the refusal line")
    assert len(lines) == 1, lines
    assert "127.0.0.2: too many of its connections proving themselves at once" in lines[0]
    assert prove(worker, PASSWORD) == b"echo workqueue hello\n"
    for sock in flood + [worker]:
        sock.close()


def test_among_many_addresses_the_oldest_goes_first(running_front):
    _, port, _, _ = running_front(handshake_timeout=600.0, max_pending=8)
    # Accepted in the order they connected (the listen backlog is a queue).
    crowd = [connect_from("127.0.0.%d" % (10 + index), port) for index in range(8)]
    newcomer = connect_from("127.0.0.1", port)
    crowd[0].settimeout(LOOPBACK_EXCHANGE_WITHIN)
    while crowd[0].recv(4096):   # the front's opening lines, then its end of the connection
        pass
    assert prove(newcomer, PASSWORD) == b"echo workqueue hello\n"
    for sock in crowd + [newcomer]:
        sock.close()


def test_a_connection_that_proved_the_password_is_never_the_one_pushed_out(running_front):
    _, port, _, fake = running_front(handshake_timeout=600.0, max_pending=2)
    worker = socket.create_connection(("127.0.0.1", port))
    worker.settimeout(LOOPBACK_EXCHANGE_WITHIN)
    reader = worker.makefile("rb")
    auth = front.ClientAuth(PASSWORD)
    worker.sendall(auth.opening())
    for _ in range(3):   # the front's identification, key, and answer to our key
        reply, verdict = auth.feed(reader.readline().rstrip(b"\n"))
        assert not verdict
        if auth.step < 3:
            worker.sendall(reply)   # our answer to its key: the password is proved
    assert reader.readline() == b"ok\n"   # the front checked our answer
    # It waits for our last "ok" while strangers from the same address fill the front.
    strangers = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    worker.sendall(b"ok\nworkqueue hello\n")
    assert reader.readline() == b"echo workqueue hello\n"
    for sock in strangers + [worker]:
        sock.close()


def test_a_silent_connection_is_closed_at_its_deadline(running_front):
    _, port, lines, _ = running_front(handshake_timeout=0.2)
    with socket.create_connection(("127.0.0.1", port)) as silent:
        silent.settimeout(LOOPBACK_EXCHANGE_WITHIN)
        while silent.recv(4096):
            pass
    wait_until(lambda: lines, LOOPBACK_EXCHANGE_WITHIN, what="the refusal line")
    assert "did not prove the password within 0.2 s" in lines[0]


def test_without_a_password_a_connection_is_carried_once_it_speaks(tmp_path):
    """--insecure: the front cannot check a password, but a silent stranger still never
    reaches Work Queue, and one that speaks is relayed both ways."""
    upstream = unix_listener(str(tmp_path / "wq"))
    public = front.listen("127.0.0.1", 0)
    lines = []
    gate = front.Front(public, upstream.getsockname(), None,
                       refusals=front.RefusalLog(emit=lines.append), handshake_timeout=600.0)
    thread = threading.Thread(target=gate.serve, daemon=True)
    thread.start()
    try:
        port = public.getsockname()[1]
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        worker = socket.create_connection(("127.0.0.1", port))
        worker.sendall(b"workqueue hello\n")
        upstream.settimeout(LOOPBACK_EXCHANGE_WITHIN)
        carried, _ = upstream.accept()  # the first connection Work Queue sees is the worker's
        with carried:
            carried.settimeout(LOOPBACK_EXCHANGE_WITHIN)
            assert carried.recv(4096) == b"workqueue hello\n"
            carried.sendall(b"task 1\n")
            worker.settimeout(LOOPBACK_EXCHANGE_WITHIN)
            assert worker.recv(4096) == b"task 1\n"
        for sock in silent + [worker]:
            sock.close()
    finally:
        gate.running = False
        upstream.close()


def test_interface_goes_with_catalog_mode():
    """The front serves catalog mode too: it listens where --interface says."""
    from awq.cli import alien_work_queue
    options = alien_work_queue.parse_args(["--interface", "127.0.0.1", "--catalog-host", "h"])
    assert options.interface == "127.0.0.1" and options.catalog_host == "h"


def test_a_busy_port_names_the_likely_cause():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        with pytest.raises(OSError, match="already in use: another alien_work_queue"):
            front.listen("127.0.0.1", taken.getsockname()[1])


# ---------------------------------------------------------------- a real master

def submit(tool, tmp_path, name: str) -> str:
    out = tmp_path / (name + ".out")
    pilot = write_script(tmp_path / "pilot.sh", "echo pilot ran\n")
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nqueue\n"
                % (pilot, out)).returncode == 0
    return str(out)


def ran(path: str) -> bool:
    return os.path.exists(path) and "pilot ran" in open(path).read()


def test_silent_connections_do_not_delay_jobs_or_new_workers(tmp_path, procs, start_master,
                                                             start_worker, tool):
    master = start_master()
    first_worker = start_worker(master.port)
    first = submit(tool, tmp_path, "before")
    wait_until(lambda: ran(first), 60, what="the first pilot (warm-up)")
    silent = [socket.create_connection(("127.0.0.1", master.port))
              for _ in range(SILENT_CONNECTIONS)]
    try:
        # Before, the master proved passwords itself, one connection at a time: the first
        # silent one alone held it WORK_QUEUE_AUTH_TIMEOUT, longer than this bound.
        assert JOB_STARTS_WITHIN < WORK_QUEUE_AUTH_TIMEOUT
        during = submit(tool, tmp_path, "during")
        wait_until(lambda: ran(during), JOB_STARTS_WITHIN,
                   what="a pilot on the connected worker while strangers wait")
        # A worker that connects now is taken, and given work, as quickly.
        procs.stop(first_worker)
        start_worker(master.port)
        second = submit(tool, tmp_path, "new-worker")
        wait_until(lambda: ran(second), NEW_WORKER_RUNS_A_JOB_WITHIN,
                   what="a pilot on a worker that connected among the strangers")
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.e2e
def test_a_busy_port_is_reported_before_a_spool_or_password_is_made(tmp_path):
    spool = tmp_path / "spool"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        result = subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir",
                                 str(spool), "--port", str(taken.getsockname()[1]),
                                 "--interface", "127.0.0.1"],
                                capture_output=True, text=True, cwd=REPO,
                                env=product_env(str(spool)), timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not spool.exists()


@pytest.mark.e2e
def test_tls_flags_without_tls_are_refused_before_a_spool_is_made(tmp_path):
    spool = tmp_path / "spool"
    key = tmp_path / "key.pem"
    key.write_text("not used\n")
    result = subprocess.run([PYTHON, "-m", "awq.cli.alien_work_queue", "--work-dir", str(spool),
                             "--port", "0", "--ssl-key", str(key), "--ssl-cert", str(key)],
                            capture_output=True, text=True, cwd=REPO,
                            env=product_env(str(spool)), timeout=60)
    assert result.returncode == 1 and "no TLS support" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not spool.exists()


def connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=LOOPBACK_EXCHANGE_WITHIN).close()
        return True
    except OSError:
        return False


def test_interface_listens_on_that_address_only(tmp_path, start_master, start_worker, tool):
    # 127.0.0.2 is this host as well (all of 127/8 is loopback): another address to knock on.
    master = start_master("--interface", "127.0.0.1")
    assert connects("127.0.0.1", master.port)
    assert not connects("127.0.0.2", master.port)
    start_worker(master.port)
    job = submit(tool, tmp_path, "interface")
    wait_until(lambda: ran(job), 60, what="a pilot through --interface")


def test_without_interface_every_address_reaches_the_front(start_master):
    master = start_master()
    assert connects("127.0.0.2", master.port)


def listening_tcp_ports(pids) -> set:
    """The TCP ports the processes pids listen on, from their sockets and /proc/net/tcp*."""
    inodes = set()
    for pid in pids:
        directory = "/proc/%d/fd" % pid
        for name in os.listdir(directory):
            try:
                target = os.readlink(os.path.join(directory, name))
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:   # 0A: TCP_LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_work_queue_is_reached_only_through_the_front(tmp_path, start_master, start_worker,
                                                      tool, workdir):
    """No local user reaches Work Queue: the master and its front listen on no TCP port but
    the public one, and Work Queue's Unix socket is in a directory only we can enter."""
    master = start_master()
    front_pid = _front_pid(master.log())   # logged before the port the master was waited for
    assert listening_tcp_ports([master.proc.pid, front_pid]) == {master.port}
    socket_dir = os.path.join(workdir, "workqueue")
    info = os.stat(socket_dir)
    assert info.st_uid == os.geteuid() and info.st_mode & 0o777 == 0o700
    assert os.listdir(socket_dir) == [str(master.port)]   # the number Work Queue reports
    start_worker(master.port)
    job = submit(tool, tmp_path, "private")
    wait_until(lambda: ran(job), JOB_DONE_WITHIN,
               what="a pilot through the front and the Unix socket")


def test_refusals_reach_the_master_log_once_a_minute(tmp_path, start_master, start_worker):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    master = start_master()
    worker = start_worker(master.port, password=str(wrong))
    wait_until(lambda: "wrong password for manager" in open(worker.log_path).read(), 30,
               what="the worker to say its password was refused")
    # It retries: each try is refused, the log says so once.
    wait_until(lambda: open(worker.log_path).read().count("wrong password for manager") >= 3,
               30, what="the worker to try again")
    assert master.log().count("refused a connection from 127.0.0.1") == 1
    assert "presented the wrong password" in master.log()



def test_the_front_dies_with_a_killed_master_and_the_port_is_free_again(procs, workdir):
    port = free_port()

    def start(round_number: int) -> MasterHandle:
        return master_on_port(procs, workdir, port, round_number)

    master = start(0)
    front_pid = int(wait_until(lambda: _front_pid(master.log()), 30, what="the front's PID"))
    master.proc.send_signal(signal.SIGKILL)  # the master alone, not its process group
    master.proc.wait(30)
    # The kernel ends the front with its parent (PR_SET_PDEATHSIG); only its reaping by init
    # is left, which takes the time a process needs to be scheduled on busy CPUs.
    wait_until(lambda: not pid_alive(front_pid), FRONT_GONE_WITHIN, what="the front to end")
    start(1)  # on the same port: the foremen know only that one


def _front_pid(text: str):
    import re
    found = re.findall(r"the front \(PID (\d+)\)", text)
    return int(found[-1]) if found else None


def test_the_master_stops_when_its_front_is_killed(start_master):
    master = start_master()
    front_pid = int(wait_until(lambda: _front_pid(master.log()), 30, what="the front's PID"))
    os.kill(front_pid, signal.SIGKILL)  # e.g. the OOM killer
    # The master notices at its next turn: wait() returns within a second, or the spool poll.
    master.proc.wait(MASTER_NOTICES_WITHIN * LOAD_ALLOWANCE)
    assert master.proc.returncode == 1
    assert "the front (PID %d) ended" % front_pid in master.log()


def test_catalog_mode_goes_through_the_front_on_the_port_it_advertises(
        tmp_path, procs, start_master, tool, workdir):
    """Workers that find the master by name through the catalog reach the front: the
    catalog lists the front's port, and silent strangers there cost a job nothing."""
    from test_fleet_master import CATALOG_UPDATE_PERIOD, catalog_view, start_catalog
    catalog_port = start_catalog(procs, tmp_path)
    project = "awq_front_%d" % os.getpid()
    master = start_master("--catalog-host", "127.0.0.1", "--catalog-port", str(catalog_port),
                          "--project-name", project, "--interface", "127.0.0.1")
    assert _front_pid(master.log())
    # The master's first wait() reports to the catalog; if that came before the catalog
    # listened, Work Queue's next report follows one update period later.
    entry = wait_until(lambda: catalog_view(catalog_port, project),
                       CATALOG_UPDATE_PERIOD + MASTER_NOTICES_WITHIN * LOAD_ALLOWANCE,
                       interval=0.5, what="the catalog to list the project")
    assert entry["port"] == master.port
    silent = [socket.create_connection(("127.0.0.1", master.port))
              for _ in range(SILENT_CONNECTIONS)]
    try:
        scratch = tmp_path / "by-name"
        scratch.mkdir()
        procs.start([shutil.which("work_queue_worker") or "work_queue_worker", "--cores", "1",
                     "--workdir", str(scratch), "--timeout", "120",
                     "--password", os.path.join(workdir, "password"),
                     "-M", project, "--catalog", "127.0.0.1:%d" % catalog_port], "by-name")
        # Without the front, each silent connection ahead of the worker held Work Queue
        # WORK_QUEUE_AUTH_TIMEOUT in turn: two alone took longer than this bound.
        assert NEW_WORKER_RUNS_A_JOB_WITHIN < 2 * WORK_QUEUE_AUTH_TIMEOUT
        job = submit(tool, tmp_path, "by-name")
        wait_until(lambda: ran(job), NEW_WORKER_RUNS_A_JOB_WITHIN,
                   what="a pilot on a worker that found the master through the catalog")
    finally:
        for sock in silent:
            sock.close()


def _pending_link(peer: str, proven: bool = False):
    """A stand-in for a pending Link: choose_victim reads only its peer and how far it got."""
    from types import SimpleNamespace
    return SimpleNamespace(peer=peer, inner=object() if proven else None, server_auth=None)


def test_choose_victim_takes_the_oldest_of_a_flooding_address_and_spares_workers():
    worker = _pending_link("10.0.0.1", proven=True)
    other = _pending_link("10.0.0.2")
    flood = [_pending_link("10.0.0.9") for _ in range(5)]
    victim, reason = front.choose_victim([worker, other] + flood, max_pending=6)
    assert victim is flood[0] and "its connections" in reason
    victim, _ = front.choose_victim([worker, other, flood[0]], max_pending=64)
    assert victim is other
    victim, _ = front.choose_victim([worker], max_pending=64)
    assert victim is worker


class HoldingFakeWorkQueue(FakeWorkQueue):
    holds = True


def test_several_managers_each_proved_worker_goes_to_the_one_holding_fewest(tmp_path):
    """--managers: each proved worker goes to the manager's socket that holds the fewest
    connections now, and the front rings the master's doorbell after a turn that carried
    bytes (awq/shards.py)."""
    fakes = [HoldingFakeWorkQueue(PASSWORD, str(tmp_path / ("wq.%d" % index)))
             for index in range(2)]
    master_end, front_end = socket.socketpair()
    public = front.listen("127.0.0.1", 0)
    gate = front.Front(public, [fake.address for fake in fakes], PASSWORD,
                       doorbell_fd=front_end.detach())
    thread = threading.Thread(target=gate.serve, daemon=True)
    thread.start()
    try:
        port = public.getsockname()[1]
        workers = []
        for number in range(4):
            workers.append(socket.create_connection(("127.0.0.1", port)))
            assert prove(workers[-1], PASSWORD) == b"echo workqueue hello\n", number
        assert [len(fake.received) for fake in fakes] == [2, 2]
        workers.pop(0).close()   # one of the first manager's goes: the next is its
        wait_until(lambda: gate.handshake._least_held() == 0, LOOPBACK_EXCHANGE_WITHIN,
                   what="the front to see the worker gone")
        workers.append(socket.create_connection(("127.0.0.1", port)))
        assert prove(workers[-1], PASSWORD) == b"echo workqueue hello\n"
        assert [len(fake.received) for fake in fakes] == [3, 2]
        for worker in workers:
            worker.close()
        master_end.settimeout(LOOPBACK_EXCHANGE_WITHIN)
        assert master_end.recv(4096).startswith(b"!")
    finally:
        gate.running = False
        for fake in fakes:
            fake.close()
        master_end.close()
