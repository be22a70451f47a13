"""The README's stunnel recipe, run for real: a worker reaches the master only through TLS."""

from __future__ import annotations

import os
import shutil
import subprocess

from conftest import JOB_DONE_WITHIN, LOAD_ALLOWANCE, PROGRAM_STARTS_WITHIN, write_script
from testkit import free_port, wait_until

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4"


def make_certificate(tmp_path) -> str:
    key, cert = tmp_path / "awq.key", tmp_path / "awq.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=120)
    pem = tmp_path / "awq.pem"
    pem.write_bytes(key.read_bytes() + cert.read_bytes())
    pem.chmod(0o600)
    return str(pem)


def stunnel(procs, tmp_path, name: str, options: str):
    conf = tmp_path / (name + ".conf")
    # foreground + no pid file: the test owns the process and ends it by PID.
    conf.write_text("foreground = yes\npid =\n" + options)
    return procs.start([STUNNEL, str(conf)], name)


def test_a_worker_behind_the_readme_tunnel_runs_a_pilot_with_its_proxy(
        tmp_path, procs, start_master, start_worker, tool):
    pem = make_certificate(tmp_path)
    master = start_master()
    tls_port, plain_port = free_port(), free_port()
    server = stunnel(procs, tmp_path, "tunnel-master",
            "[awq]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s\n"
            % (tls_port, master.port, pem))
    client = stunnel(procs, tmp_path, "tunnel-worker",
                     "client = yes\n[awq]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
                     "verifyPeer = yes\nCAfile = %s\n" % (plain_port, tls_port, pem))
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
    start_worker(plain_port)  # the worker knows only its end of the tunnel
    # The tunnel relays bytes as they come: it adds no timer to a job's way through.
    wait_until(lambda: out.exists() and "secret-proxy-bytes" in out.read_text(), JOB_DONE_WITHIN,
               what="the pilot to run through the tunnel")
    # The master's side of the tunnel carried the worker's connection.
    assert "accepted connection from 127.0.0.1" in procs.log_of(server)
