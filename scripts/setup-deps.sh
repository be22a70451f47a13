#!/usr/bin/env bash
# Install what alien-workqueue needs on a Debian machine, and the test tools in .venv.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# nftables, iptables and iproute2: tests/test_firewall.py runs the README's firewall recipe
# in private network namespaces (nsenter and unshare come with util-linux).
DEBIAN_PACKAGES=(coop-computing-tools python3-workqueue python3-venv python3-pip cmake make stunnel4 openssl shellcheck gnuplot-nox systemd nftables iptables iproute2)
# The single-node Slurm the tests start themselves (tests/slurm_cluster.py). Without
# recommends: those (slurm-wlm-plugins, hwloc's plugins) bring accounting-database,
# HDF5, IPMI and GPU plugins that a single-node test cluster never loads.
SLURM_PACKAGES=(munge slurmctld slurmd slurm-client)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "setup-deps: need root (or sudo) to run: $*" >&2; exit 1
    fi
}

# Prints the packages among its arguments that dpkg does not have installed.
missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

apt_updated=
# Installs the named packages with apt-get, extra apt-get options first; updates the
# package lists once per run, only when something is to be installed.
apt_install() {
    local options=() pkgs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do options+=("$1"); shift; done
    shift
    pkgs=("$@")
    echo "setup-deps: installing ${pkgs[*]}"
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${options[@]}" "${pkgs[@]}" >/dev/null
}

mapfile -t missing < <(missing_packages "${DEBIAN_PACKAGES[@]}")
if [ ${#missing[@]} -gt 0 ]; then
    apt_install -- "${missing[@]}"
fi
# Their postinst says "policy-rc.d denied execution of start" in containers: harmless,
# the tests start private daemons by hand and never use a system Slurm or munge.
mapfile -t missing < <(missing_packages "${SLURM_PACKAGES[@]}")
if [ ${#missing[@]} -gt 0 ]; then
    apt_install --no-install-recommends -- "${missing[@]}"
fi

# Debian's Work Queue module is built for /usr/bin/python3; the venv sees it
# through --system-site-packages.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import work_queue' 2>/dev/null; then
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.requirements-test.sha1
want=$(sha1sum requirements-test.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
    echo "$want" > "$stamp"
fi
.venv/bin/python -c 'import work_queue, pytest, hypothesis, classad2, parsl, tardis, law, dask_jobqueue' \
    || { echo "setup-deps: the test environment is incomplete" >&2; exit 1; }
