#!/bin/bash
# Build and install the upstream C++ alien-workqueue (github.com/dberzano/alien-workqueue)
# against Debian's CCTools, OUTSIDE this repository, for `python -m benchmarks --with-upstream DIR`.
#
#   benchmarks/build_upstream.sh SOURCE_DIR_OR_GIT_URL PREFIX [BUILD_DIR]
#
# SOURCE: a checkout (or a bare git directory, e.g. a mirror) of upstream, or a git URL.
# PREFIX: where to install (bin/alien_work_queue, bin/condor_q, bin/condor_submit, etc/env.sh).
# Needs: apt-get install coop-computing-tools coop-computing-tools-dev cmake g++ git.
# Upstream does not build against CCTools >= 7 as is: WORK_QUEUE_MASTER_MODE_CATALOG was
# renamed, and the static libdttools needs -lz -lm (reference/workqueue-notes.md).
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 SOURCE PREFIX [BUILD_DIR]" >&2; exit 2; }
SOURCE=$1
PREFIX=$(realpath -m "$2")
BUILD=$(realpath -m "${3:-$PREFIX.build}")
HERE=$(cd "$(dirname "$0")/.." && pwd)
case "$PREFIX/" in "$HERE"/*) echo "refusing to install inside the repository ($HERE)" >&2; exit 2;; esac
case "$BUILD/" in "$HERE"/*) echo "refusing to build inside the repository ($HERE)" >&2; exit 2;; esac
[[ -f /usr/include/cctools/work_queue.h ]] || {
  echo "missing /usr/include/cctools/work_queue.h: apt-get install coop-computing-tools-dev" >&2; exit 1; }
rm -rf "$BUILD"
mkdir -p "$BUILD"
if [[ -f "$SOURCE/alien_work_queue.cpp" ]]; then
  cp -a "$SOURCE/." "$BUILD/src"
elif git --git-dir="$SOURCE" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  mkdir -p "$BUILD/src"
  git --git-dir="$SOURCE" archive HEAD | tar -x -C "$BUILD/src"
else
  git clone --depth 1 "$SOURCE" "$BUILD/src"
fi
cmake -S "$BUILD/src" -B "$BUILD/obj" -DCCTOOLS=/usr -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DCMAKE_CXX_FLAGS=-DWORK_QUEUE_MASTER_MODE_CATALOG=WORK_QUEUE_MANAGER_MODE_CATALOG \
  -DCMAKE_CXX_STANDARD_LIBRARIES="-lz -lm"
cmake --build "$BUILD/obj" --target install -- -j"$(nproc)"
echo "upstream installed in $PREFIX (commit: $( (git -C "$BUILD/src" rev-parse HEAD 2>/dev/null \
  || git --git-dir="$SOURCE" rev-parse HEAD 2>/dev/null) || echo unknown))"
