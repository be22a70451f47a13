#!/usr/bin/env bash
# Install what alien-workqueue needs on a Debian machine, and the test tools in .venv.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(coop-computing-tools python3-workqueue python3-venv python3-pip cmake make stunnel4 openssl shellcheck gnuplot-nox systemd)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "setup-deps: need root (or sudo) to run: $*" >&2; exit 1
    fi
}

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-deps: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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
