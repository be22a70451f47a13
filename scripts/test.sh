#!/usr/bin/env bash
# Run every test: installs dependencies first, then checks Python 3.9 compatibility
# of the product, then the unit and end-to-end tests with real Work Queue processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
.venv/bin/vermin -t=3.9- --no-tips --violations --eval-annotations awq setup.py
exec .venv/bin/python -m pytest -ra --timeout=900 "$@" tests
