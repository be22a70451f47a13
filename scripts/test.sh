#!/usr/bin/env bash
# scripts/test.sh: every test. Installs dependencies first, then checks Python 3.9
# compatibility of the product, then runs the unit and end-to-end tests (real Work Queue
# processes, installs, clients).
# scripts/test.sh --fast: the unit tier only (tests that start no program; tests/conftest.py
# says which are e2e), with the tools scripts/test.sh installed once; under 30 s.
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=""
if [ "${1:-}" = "--fast" ]; then
    fast=1
    shift
fi
if [ -n "$fast" ]; then
    if [ ! -x .venv/bin/python ]; then
        echo "scripts/test.sh --fast: no .venv here; run scripts/test.sh once to install it" >&2
        exit 1
    fi
else
    scripts/setup-deps.sh
fi
.venv/bin/vermin -t=3.9- --no-tips --violations --eval-annotations awq setup.py
if [ -n "$fast" ]; then
    exec .venv/bin/python -m pytest -ra --timeout=60 -m "not e2e" "$@" tests
fi
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
.venv/bin/python -m pytest -ra --timeout=900 "$@" tests
# The chain again with two Work Queue managers behind the front (--managers, awq/shards.py):
# every master these tests start gets --managers 2 (tests/conftest.py).
AWQ_TEST_MANAGERS=2 exec .venv/bin/python -m pytest -ra --timeout=900 "$@" \
    tests/test_e2e.py tests/test_durability.py tests/test_start_journal_e2e.py \
    tests/test_exit_e2e.py tests/test_cancel.py tests/test_fleet_master.py tests/test_hostile.py
