"""The README's firewall recipe for the foremen's ports, run for real: another host is
refused, the workers on the foreman's own host still run pilots through it.

Everything happens in two private network namespaces the test makes (each held by a
`sleep` it starts and ends by PID) joined by a veth pair: "A" is the foreman's host, "B"
another host. Their addresses, 10.254.0.1 and 10.254.0.2, exist only inside those
namespaces, so nothing on this machine's own network sees them, and the nft rules go into
A's own ruleset, never the host's. Inside A, every port is free, so the foreman listens on
exactly the port the README's rule names.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import List

import pytest

from conftest import (FOREMAN_HOP_WITHIN, JOB_DONE_WITHIN, LOAD_ALLOWANCE,
                      MASTER_LISTENS_WITHIN, PROGRAM_STARTS_WITHIN, PYTHON, REPO,
                      password_args, product_env, write_script)
from testkit import wait_until

pytestmark = pytest.mark.e2e

SBIN_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
HOST_A, HOST_B = "10.254.0.1", "10.254.0.2"  # private to the test's namespaces (see above)
README_RULES_FILE = "/etc/nftables/awq-foremen.nft"
# The README's rule names the ports of alien_wq_worker.sh's default foremen.
WORKER_SCRIPT = os.path.join(REPO, "bin", "alien_wq_worker.sh")
# A veth pair hands a SYN to the other namespace at once, and the kernel answers it (SYN-ACK,
# or the rule's reset) as it arrives: the bound is only the probe's own scheduling on a
# loaded machine. A rule that dropped instead would make the connect wait for SYN
# retransmissions (1 s, then 3 s) and time out: that is a failure here, not a pass.
CONNECT_ANSWERED_WITHIN = 1.0 * LOAD_ALLOWANCE
# One probe: a Python interpreter started inside B, then the connect above.
PROBE_RUNS_WITHIN = PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE + CONNECT_ANSWERED_WITHIN
# The foreman is a C program binding its port once it has joined the master.
FOREMAN_LISTENS_WITHIN = PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE + FOREMAN_HOP_WITHIN

PROBE = r"""
import socket, sys
sock = socket.socket()
sock.settimeout(float(sys.argv[3]))
try:
    sock.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timed out")
except OSError as error:
    print("failed: %s" % error)
"""


def program(name: str) -> str:
    """A system program the test needs; missing, the test fails (setup-deps installs it)."""
    path = shutil.which(name, path=SBIN_PATH)
    assert path, "%s is not installed: scripts/setup-deps.sh installs it" % name
    return path


def default_foreman_ports() -> range:
    """WQ_MASTER_BASEPORT+1 ... WQ_MASTER_BASEPORT+WQ_NUM_FOREMEN, with the script's defaults."""
    with open(WORKER_SCRIPT) as handle:
        text = handle.read()
    base = int(re.search(r'"\$\{WQ_MASTER_BASEPORT:=(\d+)\}"', text).group(1))
    count = int(re.search(r'"\$\{WQ_NUM_FOREMEN:=(\d+)\}"', text).group(1))
    return range(base + 1, base + count + 1)


def readme_nft_recipe() -> List[str]:
    """The README's rules file, as its heredoc writes it, and the command that loads it."""
    with open(os.path.join(REPO, "README.md")) as handle:
        lines = handle.read().splitlines()
    start = lines.index("    cat > %s <<'EOF'" % README_RULES_FILE)
    end = lines.index("    EOF", start)
    body = [line[4:] for line in lines[start + 1:end]]
    assert lines[end + 1] == "    nft -f %s" % README_RULES_FILE, lines[end + 1]
    return body


def readme_iptables_lines() -> List[List[str]]:
    """The README's iptables and ip6tables commands, for sites without nft."""
    with open(os.path.join(REPO, "README.md")) as handle:
        found = [shlex.split(line) for line in handle.read().splitlines()
                 if re.match(r"    ip6?tables -I INPUT ", line)]
    assert [argv[0] for argv in found] == ["iptables", "ip6tables"], found
    return found


class Namespaces:
    """The network namespaces of the test's holder processes, and ways to run in them."""

    def __init__(self, procs, names: List[str]) -> None:
        self.procs = procs
        self.holders = {}
        unshare, sleep = program("unshare"), program("sleep")
        own = os.readlink("/proc/self/ns/net")
        for name in names:
            holder = procs.start([unshare, "--net", sleep, "infinity"], "netns-" + name)
            self.holders[name] = holder

            def entered(holder=holder):
                if holder.poll() is not None:
                    raise AssertionError("unshare --net failed:\n" + procs.log_of(holder))
                try:
                    return os.readlink("/proc/%d/ns/net" % holder.pid) != own
                except OSError:
                    return False
            wait_until(entered, PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE,
                       what="the holder of namespace %s to enter it" % name)

    def enter(self, name: str) -> List[str]:
        """The prefix that runs a program in the namespace (nsenter execs it: same PID)."""
        return [program("nsenter"), "--net=/proc/%d/ns/net" % self.holders[name].pid]

    def run(self, name: str, *argv: str, stdin: str = "") -> str:
        done = subprocess.run(self.enter(name) + list(argv), input=stdin, capture_output=True,
                              text=True, timeout=PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE)
        assert done.returncode == 0, "%s in %s: %s%s" % (argv, name, done.stdout, done.stderr)
        return done.stdout

    def connect(self, name: str, host: str, port: int) -> str:
        """From the namespace: "connected", "refused", "timed out" or "failed: ..."."""
        return self.run(name, PYTHON, "-c", PROBE, host, str(port),
                        str(CONNECT_ANSWERED_WITHIN)).strip()


@pytest.fixture
def hosts(procs):
    """A (10.254.0.1) and B (10.254.0.2), joined by a veth pair. procs ends the holders by
    PID after everything started inside them (last started, first ended); with its last
    process gone, a namespace and its veth end go with it."""
    net = Namespaces(procs, ["a", "b"])
    ip = program("ip")
    net.run("a", ip, "link", "set", "lo", "up")
    net.run("b", ip, "link", "set", "lo", "up")
    # The veth's names live inside the namespaces: they cannot meet the host's interfaces.
    net.run("a", ip, "link", "add", "awq-a", "type", "veth", "peer", "name", "awq-b",
            "netns", str(net.holders["b"].pid))
    net.run("a", ip, "address", "add", HOST_A + "/30", "dev", "awq-a")
    net.run("b", ip, "address", "add", HOST_B + "/30", "dev", "awq-b")
    net.run("a", ip, "link", "set", "awq-a", "up")
    net.run("b", ip, "link", "set", "awq-b", "up")
    return net


def test_the_readme_rule_refuses_other_hosts_and_the_foreman_still_runs_pilots(
        tmp_path, procs, workdir, hosts):
    ports = default_foreman_ports()
    rules = readme_nft_recipe()
    assert "iifname != \"lo\" tcp dport %d-%d reject with tcp reset" % (ports[0], ports[-1]) \
        in "\n".join(rules)
    foreman_port = ports[0]
    nft = program("nft")

    master = procs.start(hosts.enter("a") + [PYTHON, "-m", "awq.cli.alien_work_queue",
                                             "--work-dir", workdir, "--port", "0"],
                         "master", env=product_env(workdir), cwd=REPO)

    def master_port():
        found = re.findall(r"listening for workers on port (\d+)", procs.log_of(master))
        if not found and master.poll() is not None:
            raise AssertionError("the master exited early:\n" + procs.log_of(master))
        return int(found[-1]) if found else None
    port = wait_until(master_port, MASTER_LISTENS_WITHIN, what="the master's port")
    (tmp_path / "foreman").mkdir()
    # As alien_wq_worker.sh starts foreman 1 (its command_for).
    procs.start(hosts.enter("a") + [
        program("work_queue_worker"), "--foreman", "--foreman-port", str(foreman_port),
        "--workdir", str(tmp_path / "foreman")] + password_args(workdir)
        + ["127.0.0.1", str(port)], "foreman")

    # Without the rule, B reaches the foreman: the test can see the rule's absence.
    wait_until(lambda: hosts.connect("b", HOST_A, foreman_port) == "connected",
               FOREMAN_LISTENS_WITHIN + PROBE_RUNS_WITHIN, interval=0.2,
               what="B to reach the foreman's port before the rule")

    # A site rule accepting the port elsewhere must not open it: every base chain on the
    # input hook sees the packet, and the README's reject is final.
    hosts.run("a", nft, "-f", "-", stdin="table inet site {\n chain input {\n"
              "  type filter hook input priority filter - 10; policy accept;\n"
              "  tcp dport %d accept\n }\n}\n" % foreman_port)
    rules_file = tmp_path / "awq-foremen.nft"
    rules_file.write_text("\n".join(rules) + "\n")
    # Loaded twice, as a reload at boot after a manual load would: one rule, not two.
    hosts.run("a", nft, "-f", str(rules_file))
    hosts.run("a", nft, "-f", str(rules_file))
    listed = hosts.run("a", nft, "list", "table", "inet", "awq_foremen")
    assert listed.count("reject with tcp reset") == 1, listed

    assert hosts.connect("b", HOST_A, foreman_port) == "refused"
    assert hosts.connect("b", HOST_A, ports[-1]) == "refused"  # the range's other end
    # Only the foremen's ports: B still reaches the master's.
    assert hosts.connect("b", HOST_A, port) == "connected"
    # From A itself, to its non-loopback address too: it comes in on lo.
    assert hosts.connect("a", HOST_A, foreman_port) == "connected"

    # A worker beside the foreman, on loopback as the README says, runs a pilot through it.
    (tmp_path / "worker").mkdir()
    procs.start(hosts.enter("a") + [
        program("work_queue_worker"), "--cores", "1", "--workdir", str(tmp_path / "worker"),
        "--timeout", "120"] + password_args(workdir) + ["127.0.0.1", str(foreman_port)],
        "worker")
    pilot = write_script(tmp_path / "pilot.sh", "echo pilot ran behind the firewall\n")
    out = tmp_path / "pilot.out"
    submitted = subprocess.run(
        hosts.enter("a") + [PYTHON, "-m", "awq.cli.condor_submit"],
        input="executable = %s\noutput = %s\nqueue\n" % (pilot, out), capture_output=True,
        text=True, cwd=REPO, env=product_env(workdir),
        timeout=PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE)
    assert submitted.returncode == 0, submitted.stderr
    wait_until(lambda: out.exists() and "pilot ran" in out.read_text(),
               JOB_DONE_WITHIN + FOREMAN_HOP_WITHIN,
               what="the pilot to run through the firewalled foreman")


def test_the_readme_iptables_lines_refuse_other_hosts_and_not_this_one(procs, hosts):
    ports = default_foreman_ports()
    lines = readme_iptables_lines()
    for argv in lines:
        assert argv[argv.index("--dport") + 1] == "%d:%d" % (ports[0], ports[-1]), argv
    # Any listener on every address stands for the foreman here: the rule is about the port
    # (the nft test above runs a real foreman and its pilot).
    listener = procs.start(hosts.enter("a") + [PYTHON, "-m", "http.server", "--bind",
                                               "0.0.0.0", str(ports[0])], "listener")
    wait_until(lambda: hosts.connect("b", HOST_A, ports[0]) == "connected"
               or listener.poll() is not None,
               PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE + PROBE_RUNS_WITHIN, interval=0.2,
               what="B to reach the listener before the rules")
    assert listener.poll() is None, procs.log_of(listener)
    for argv in lines:
        hosts.run("a", program(argv[0]), *argv[1:])
    assert hosts.connect("b", HOST_A, ports[0]) == "refused"
    assert hosts.connect("a", HOST_A, ports[0]) == "connected"
    assert hosts.connect("a", "127.0.0.1", ports[0]) == "connected"
