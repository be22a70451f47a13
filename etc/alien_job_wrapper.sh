#!/bin/bash
# alien_job_wrapper.sh COMMAND [ARGS...]: run a pilot with a minimal, clean environment.
#
# Only PATH=/bin:/usr/bin, HOME, USER, LANG/LC_ALL=C, X509_USER_PROXY and every ALIEN_*
# variable reach the pilot (values kept byte for byte). With ALIEN_USE_PARROT=1 and
# /cvmfs/alice.cern.ch not mounted, the pilot runs under parrot_run, which provides it.
set -u
if [ $# -eq 0 ]; then
    echo "usage: alien_job_wrapper.sh COMMAND [ARGS...]" >&2
    exit 2
fi

keep=(PATH=/bin:/usr/bin "HOME=${HOME:-/}" "USER=${USER:-$(id -un 2>/dev/null)}" LANG=C LC_ALL=C)
if [ -n "${X509_USER_PROXY:-}" ]; then
    keep+=("X509_USER_PROXY=$X509_USER_PROXY")
fi
while IFS= read -r -d '' entry; do
    case $entry in
        ALIEN_*=*) keep+=("$entry") ;;
    esac
done < <(env -0)

if [ "${ALIEN_USE_PARROT:-0}" = 1 ] && [ ! -d /cvmfs/alice.cern.ch ]; then
    parrot=$(command -v parrot_run || true)
    if [ -n "$parrot" ]; then
        exec env -i "${keep[@]}" "$parrot" "$@"
    fi
    echo "alien_job_wrapper.sh: ALIEN_USE_PARROT=1 but parrot_run is not on PATH; running without it" >&2
fi
exec env -i "${keep[@]}" "$@"
