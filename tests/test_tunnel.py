"""The README's stunnel recipe, run for real: a worker reaches the master only through TLS.

The master listens on loopback only (--interface 127.0.0.1) and the tunnel's TLS end on
another address of this host, 127.0.0.2, standing for the public one: nothing but the
tunnel answers there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from conftest import (FOREMAN_HOP_WITHIN, JOB_DONE_WITHIN, LOAD_ALLOWANCE,
                      PROGRAM_STARTS_WITHIN, write_script)
from testkit import free_port, wait_until

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4"


PUBLIC = "127.0.0.2"  # all of 127/8 is this host: the address other hosts would use


def make_certificate(tmp_path):
    """As the README makes them: the master's PEM (key and self-signed certificate), 0600,
    and the certificate alone for the workers' side."""
    pem, crt = tmp_path / "awq.pem", tmp_path / "awq.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=awq-master", "-keyout", str(pem), "-out", str(pem)],
                   check=True, capture_output=True, timeout=120)
    pem.chmod(0o600)
    subprocess.run(["openssl", "x509", "-in", str(pem), "-out", str(crt)],
                   check=True, capture_output=True, timeout=120)
    return str(pem), str(crt)


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=10).close()
        return True
    except OSError:
        return False


def stunnel(procs, tmp_path, name: str, options: str):
    conf = tmp_path / (name + ".conf")
    # foreground + no pid file: the test owns the process and ends it by PID.
    conf.write_text("foreground = yes\npid =\n" + options)
    return procs.start([STUNNEL, str(conf)], name)


def test_a_worker_behind_the_readme_tunnel_runs_a_pilot_with_its_proxy(
        tmp_path, procs, start_master, start_worker, tool):
    pem, crt = make_certificate(tmp_path)
    master = start_master("--interface", "127.0.0.1")
    assert not reachable(PUBLIC, master.port)  # the plain port is closed to other hosts
    tls_port, plain_port = free_port(), free_port()
    server = stunnel(procs, tmp_path, "tunnel-master",
            "[awq]\naccept = %s:%d\nconnect = 127.0.0.1:%d\ncert = %s\n"
            % (PUBLIC, tls_port, master.port, pem))
    client = stunnel(procs, tmp_path, "tunnel-worker",
                     "client = yes\n[awq]\naccept = 127.0.0.1:%d\nconnect = %s:%d\n"
                     "verifyPeer = yes\nCAfile = %s\n" % (plain_port, PUBLIC, tls_port, crt))
    wait_until(lambda: "Configuration successful" in procs.log_of(client),
               PROGRAM_STARTS_WITHIN * LOAD_ALLOWANCE,
               what="the worker-side tunnel to start")
    pilot = write_script(tmp_path / "pilot.sh", 'echo "proxy: $(cat "$X509_USER_PROXY")"\n')
    proxy = tmp_path / "proxy"
    proxy.write_text("secret-proxy-bytes\n")
    proxy.chmod(0o600)
    out = tmp_path / "pilot.out"
    assert tool("condor_submit", stdin="executable = %s\noutput = %s\nx509userproxy = %s\nqueue\n"
                % (pilot, out, proxy)).returncode == 0
    # As the recipe has it: a foreman on the worker host knows only its end of the tunnel,
    # and its worker beside it connects to the foreman on loopback. (The foreman's port is
    # closed to other hosts by the recipe's firewall rule: test_firewall.py applies it in
    # private network namespaces.)
    foreman_port = free_port()
    start_worker(plain_port, extra=["--foreman", "--foreman-port", str(foreman_port)])
    start_worker(foreman_port)
    # The tunnel relays bytes as they come: it adds no timer to a job's way through.
    wait_until(lambda: out.exists() and "secret-proxy-bytes" in out.read_text(),
               JOB_DONE_WITHIN + FOREMAN_HOP_WITHIN,
               what="the pilot to run through the tunnel and the foreman")
    # The master's side of the tunnel carried the worker's connection.
    assert "accepted connection from 127.0.0.1" in procs.log_of(server)
