#!/usr/bin/env bash
# Run every test: installs dependencies first, then checks Python 3.9 compatibility
# of the product, then the unit and end-to-end tests with real Work Queue processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
.venv/bin/vermin -t=3.9- --no-tips --violations --eval-annotations awq setup.py
# vermin is the gate for Python 3.9; where a 3.9 interpreter exists, also run the core on it.
py39=""
for candidate in /root/.pyenv/versions/3.9.*/bin/python3.9 /usr/bin/python3.9; do
    [ -x "$candidate" ] && { py39=$candidate; break; }
done
if [ -n "$py39" ]; then
    PYTHONPATH=. "$py39" tests/smoke/py39.py
else
    echo "note: no Python 3.9 interpreter here; compatibility checked by vermin only"
fi
exec .venv/bin/python -m pytest -ra --timeout=900 "$@" tests
