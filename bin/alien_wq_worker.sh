#!/bin/bash
# alien_wq_worker.sh: run Work Queue foremen, workers and a factory for alien-workqueue.
# Every process is tracked by a PID file under $WQ_WORKDIR/pids; nothing is found by name,
# and nothing is signalled unless it is ours and runs what this script started.
set -u
umask 077   # WQ_WORKDIR, logs, PID files: for our eyes only

PROG=alien_wq_worker.sh
# The foremen, workers and factory get the environment the caller gave this script, and a
# job sees its worker's: the settings this script exports for itself (to awq.fleet and its
# own loops) would otherwise reach every job. The names the caller exported go down to the
# loops, which un-export every other name before they start their child.
if [ -z "${AWQ_CALLERS_VARIABLES+set}" ]; then
    AWQ_CALLERS_VARIABLES=" $(compgen -e | tr '\n' ' ')"
    export AWQ_CALLERS_VARIABLES
fi
SELF=$(cd "$(dirname "$0")" && pwd)/${0##*/}

# cron and systemd may start us without HOME: bash's ~ then asks the password database.
: "${HOME:=$(cd ~ 2>/dev/null && pwd || echo /)}"
: "${WQ_MASTER:=127.0.0.1:9094}"
: "${WQ_FOREMEN:=127.0.0.1}"
: "${WQ_NUM_FOREMEN:=2}"
: "${WQ_NUM_WORKERS:=$(nproc 2>/dev/null || echo 1)}"
: "${WQ_MASTER_BASEPORT:=9080}"
: "${WQ_WORKDIR:=$HOME/.alien_wq_tmp}"
: "${WQ_DRAIN:=$HOME/.alien_wq_drain}"
: "${WQ_SINGLETASK:=0}"
: "${WQ_IDLETIMEOUT:=100}"
: "${WQ_DEBUG:=}"
: "${WQ_PASSWORD:=}"
: "${WQ_INSECURE:=0}"
: "${WQ_RESTART_DELAY:=30}"
: "${WQ_BACKOFF_RESET:=60}"
: "${WQ_WORKER_BIN:=work_queue_worker}"
: "${WQ_WORKER_CORES:=1}"
: "${WQ_WORKER_MEMORY:=}"
: "${WQ_WORKER_DISK:=}"
: "${WQ_FACTORY_TYPE:=local}"
: "${WQ_FACTORY_MIN:=1}"
: "${WQ_FACTORY_MAX:=$WQ_NUM_WORKERS}"
export WQ_FACTORY_TYPE WQ_FACTORY_MIN WQ_FACTORY_MAX WQ_IDLETIMEOUT WQ_WORKER_CORES \
    WQ_WORKER_MEMORY WQ_WORKER_DISK WQ_MASTER WQ_DEBUG WQ_WORKER_BIN   # read by awq.fleet
FACTORY_BIN=work_queue_factory

absolute() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
WQ_WORKDIR=$(absolute "$WQ_WORKDIR")
WQ_DRAIN=$(absolute "$WQ_DRAIN")
export WQ_WORKDIR WQ_DRAIN

usage() {
    cat <<EOF
Usage: $PROG COMMAND

Commands:
  start-foremen    start WQ_NUM_FOREMEN foremen connected to WQ_MASTER
                   (with WQ_NUM_FOREMEN=0: does nothing and says so)
  start-workers    start WQ_NUM_WORKERS workers connected to the foremen (to WQ_MASTER
                   if WQ_NUM_FOREMEN=0), one task each (--single-shot), then restarted
  start-factory    start work_queue_factory -T WQ_FACTORY_TYPE: it keeps WQ_FACTORY_MIN..
                   WQ_FACTORY_MAX workers following the master's demand, read from the
                   master directly where this factory can (no password), else from the
                   catalog WQ_CATALOG under WQ_PROJECT_NAME; workers connect to the master
  stop-foremen     stop the foremen started from this WQ_WORKDIR
  stop-workers     stop the workers started from this WQ_WORKDIR
  stop-factory     stop the factory and every worker it started (its process group)
  stop             stop workers, foremen and factory: TERM to all, up to 10 s, then KILL
  restart-foremen  stop-foremen, then start-foremen
  restart-workers  stop-workers, then start-workers
  count-foremen    print how many foreman loops are running
  count-workers    print how many worker loops are running
  status           one line per tracked slot: loop, child, uptime, restarts, and what it was
                   started with (managers, port; the factory's target and route, and why)
  drain            create WQ_DRAIN: loops stop restarting and exit when their process ends
  help             this text
  (foremen I, workers I, factory I: the restart loops, run by start-* through spawn-loops)

Each slot is a loop that restarts its process after it ends: 1 s after the first
exit, doubling up to WQ_RESTART_DELAY; a run longer than WQ_BACKOFF_RESET s resets it to 1 s.

Variables (default):
  WQ_MASTER (127.0.0.1:9094)   master host:port the foremen (or workers, factory) connect to
  WQ_FOREMEN (127.0.0.1)       host running the foremen, for workers
  WQ_NUM_FOREMEN (2)           foremen; foreman I listens on WQ_MASTER_BASEPORT+I;
                               0: no foremen, workers connect straight to WQ_MASTER
  WQ_NUM_WORKERS (CPUs)        workers, one task each (--single-shot)
  WQ_MASTER_BASEPORT (9080)
  WQ_WORKER_CORES (1)          --cores of each worker (and factory worker)
  WQ_WORKER_MEMORY (unset)     --memory of each worker, MB (unset: what the machine has)
  WQ_WORKER_DISK (unset)       --disk of each worker, MB (unset: what the disk has)
  WQ_WORKER_BIN (work_queue_worker)  the worker program, also for foremen and factory workers
  WQ_WORKDIR (\$HOME/.alien_wq_tmp) scratch space, logs, PID files; made 0700; refused if not
                               yours or writable by group or others
  WQ_DRAIN (\$HOME/.alien_wq_drain)  drain switch; start-* refuses to start while it exists
  WQ_SINGLETASK (0)            1: pass --single-task if this work_queue_worker has it
  WQ_IDLETIMEOUT (100)         seconds a worker (also a factory's) waits for work before it exits
  WQ_PASSWORD (unset)          password file for --password (the master's --password);
                               must be yours and unreadable by group and others;
                               unset: \${AWQ_WORKDIR:-/tmp/awq}/password, made by the master
  WQ_INSECURE (0)              1: no password (any host reaching the manager gets the tasks)
  WQ_RESTART_DELAY (30)        longest wait, in seconds, before a process is restarted
  WQ_BACKOFF_RESET (60)        a run longer than this many seconds resets the wait to 1 s
  WQ_FACTORY_TYPE (local)      batch system of start-factory (work_queue_factory -T): local,
                               slurm, condor, sge, k8s, ...
  WQ_FACTORY_MIN (1)           fewest workers the factory keeps
  WQ_FACTORY_MAX (WQ_NUM_WORKERS) most workers the factory starts
  WQ_FACTORY_PER_CYCLE (WQ_FACTORY_MAX) most new workers per factory cycle (30 s)
  WQ_FACTORY_BATCH_OPTIONS (empty)  options for every batch job (-B), e.g. Slurm's
                               "--partition=grid --account=alice"
  WQ_FACTORY_OPTIONS (empty)   more work_queue_factory options, as shell words
                               (e.g. "--k8s-image=IMAGE" for -T k8s)
  WQ_FACTORY_SCRATCH (WQ_WORKDIR/factory-1)  the factory's scratch directory: the batch
                               jobs' files (worker binary, password) are staged there, so
                               on a real cluster it must be on storage the batch nodes share
  WQ_CATALOG (unset)           HOST:PORT of the catalog the master reports to (its
                               --catalog-host/--catalog-port); the factory reads the master's
                               demand there when it cannot query it directly (a password on
                               Debian's CCTools 8), and always sends its own status there
                               (unset: to 127.0.0.1:9097, never to CCTools' public catalog)
  WQ_PROJECT_NAME (alien_jobs) the master's --project-name, for the catalog route
  WQ_CONDOR_SUBMIT (unset)     -T condor: the site's HTCondor condor_submit (unset: the first
                               on PATH that is not alien-workqueue's own)
  WQ_DEBUG (empty)             non-empty: Work Queue debug logs in WQ_WORKDIR/log
  AWQ_WORKDIR (/tmp/awq)       the master's spool, where its password file is
Workers get every foreman as a failover list, so a dead foreman strands nobody.
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
warn() { echo "$PROG: warning: $*" >&2; }
log() { printf '%(%F %T)T %s\n' -1 "$*"; }
now() { printf -v NOW '%(%s)T' -1; }   # NOW := seconds since the epoch, without a fork

# Per slot (kind foreman|worker|factory, index I): PIDS/KIND-I.pid (the loop), PIDS/KIND-I.child
# (its current process), STATE/KIND-I ("RESTARTS STARTED_EPOCH" of that process).
# The helpers below run for every slot, so they are builtins only: no forks.
PIDS=$WQ_WORKDIR/pids
STATE=$WQ_WORKDIR/state
declare -A LOOP=([foreman]=foremen [worker]=workers [factory]=factory)

write_file() {  # path text: atomically (temp file + mv)
    local tmp="$WQ_WORKDIR/state/.${1##*/}.$$"
    printf '%s\n' "$2" > "$tmp" && mv -f "$tmp" "$1"
}
read_var() { printf -v "$1" ''; read -r "$1" 2>/dev/null < "$2"; }   # VAR := first line of FILE

# ARGS := the command line of PID, if PID is a live process of ours.
ARGS=()
our_process() {
    local pid=$1
    ARGS=()
    [[ $pid =~ ^[0-9]+$ ]] && [ -O "/proc/$pid" ] || return 1
    mapfile -d '' -t ARGS 2>/dev/null < "/proc/$pid/cmdline" || return 1
    [ ${#ARGS[@]} -gt 0 ]   # a zombie has none
}

# The loop of slot KIND I: ours, "... $SELF foremen I" on its command line, working in WQ_WORKDIR.
is_loop() {  # pid kind index
    our_process "$1" || return 1
    local n=${#ARGS[@]}
    [ "$n" -ge 3 ] && [ "${ARGS[n-3]}" = "$SELF" ] && [ "${ARGS[n-2]}" = "${LOOP[$2]}" ] &&
        [ "${ARGS[n-1]}" = "$3" ] && [ "/proc/$1/cwd" -ef "$WQ_WORKDIR" ]
}

# The child of slot KIND I: ours, running the configured binary (directly or through its
# #! interpreter), with this slot's own directory $WQ_WORKDIR/KIND-I among its arguments.
is_child() {  # pid kind index
    our_process "$1" || return 1
    local bin=$WQ_WORKER_BIN arg dir="$WQ_WORKDIR/$2-$3"
    [ "$2" = factory ] && { bin=$FACTORY_BIN; factory_scratch "$3"; dir=$SCRATCH; }
    bin=${bin##*/}
    [ "${ARGS[0]##*/}" = "$bin" ] || { arg=${ARGS[1]:-}; [ "${arg##*/}" = "$bin" ]; } || return 1
    for arg in "${ARGS[@]}"; do [ "$arg" = "$dir" ] && return 0; done
    return 1
}

# SCRATCH := the scratch directory in factory I's recorded command (WQ_FACTORY_SCRATCH).
factory_scratch() {
    local -a plan
    local k
    SCRATCH=$WQ_WORKDIR/factory-$1
    mapfile -d '' -t plan 2>/dev/null < "$PIDS/factory-$1.argv" || return 0
    for ((k = 0; k + 1 < ${#plan[@]}; k++)); do
        [ "${plan[k]}" = --scratch-dir ] && SCRATCH=${plan[k+1]}
    done
    return 0
}

loop_alive() { local pid; read_var pid "$PIDS/$1-$2.pid"; is_loop "$pid" "$1" "$2"; }
child_alive() { local pid; read_var pid "$PIDS/$1-$2.child"; is_child "$pid" "$1" "$2"; }

indexes() {  # the indexes of kind $1 with a PID file
    local f
    for f in "$PIDS/$1"-*.pid; do
        [ -e "$f" ] || continue
        f=${f##*/"$1"-}
        echo "${f%.pid}"
    done | sort -n
}

# A directory we keep PID files in must be ours and writable by nobody else.
check_dir() {
    local owner mode
    read -r owner mode < <(stat -L -c '%u %a' -- "$1" 2>/dev/null) || die "cannot read $1"
    [ "$owner" = "$EUID" ] || die "$1 is not owned by you (owner uid $owner): refusing it"
    (( 8#$mode & 8#022 )) && die "$1 is writable by group or others (mode $mode): refusing it"
    return 0
}

# True if WQ_WORKDIR has PID files to look at (and both directories pass check_dir).
have_workdir() {
    [ -d "$WQ_WORKDIR/pids" ] || return 1
    check_dir "$WQ_WORKDIR"
    check_dir "$WQ_WORKDIR/pids"
}

make_workdir() {
    [ -d "$WQ_WORKDIR" ] || mkdir -p "$WQ_WORKDIR" || die "cannot create $WQ_WORKDIR"
    check_dir "$WQ_WORKDIR"
    [ -d "$WQ_WORKDIR/pids" ] || mkdir "$WQ_WORKDIR/pids" || die "cannot create $WQ_WORKDIR/pids"
    check_dir "$WQ_WORKDIR/pids"
    mkdir -p "$WQ_WORKDIR/log" "$WQ_WORKDIR/state" || die "cannot create $WQ_WORKDIR/log"
}

# WQ_PASSWORD := the password file foremen and workers present, checked; empty if insecure.
resolve_password() {
    if [ "$WQ_INSECURE" = 1 ]; then
        [ -z "$WQ_PASSWORD" ] || die "WQ_INSECURE=1 and WQ_PASSWORD exclude each other: unset one"
        warn "WQ_INSECURE=1: no password; any host that reaches the manager can attach workers and take its tasks"
        return
    fi
    if [ -z "$WQ_PASSWORD" ]; then
        WQ_PASSWORD=${AWQ_WORKDIR:-/tmp/awq}/password
        [ -e "$WQ_PASSWORD" ] || die "no password file $WQ_PASSWORD: start the master first" \
            "(it makes one), or set WQ_PASSWORD=FILE, or WQ_INSECURE=1 to run without a password"
    fi
    WQ_PASSWORD=$(absolute "$WQ_PASSWORD")
    local owner mode
    read -r owner mode < <(stat -L -c '%u %a' -- "$WQ_PASSWORD" 2>/dev/null) ||
        die "cannot read the password file $WQ_PASSWORD"
    [ "$owner" = "$EUID" ] || die "the password file $WQ_PASSWORD is not owned by you: refusing it"
    (( 8#$mode & 8#077 )) &&
        die "the password file $WQ_PASSWORD can be read by group or others (mode $mode): chmod 600 it"
    export WQ_PASSWORD
}

manager_host() { echo "${WQ_MASTER%:*}"; }
manager_port() { echo "${WQ_MASTER##*:}"; }
check_master() {
    [[ $(manager_port) =~ ^[0-9]+$ && "$WQ_MASTER" == *:* ]] ||
        die "WQ_MASTER must be host:port, not '$WQ_MASTER'"
}
check_number() {  # name value [empty-ok]
    [[ $2 =~ ^[0-9]+$ ]] || { [ -n "${3:-}" ] && [ -z "$2" ]; } || die "$1 must be a number, not '$2'"
}

foreman_port() { echo $((WQ_MASTER_BASEPORT + $1)); }

# Every foreman, starting at worker I's own, so load spreads and failover works.
foremen_list() {  # LIST := the managers of worker I
    local i=$1 n=$WQ_NUM_FOREMEN k j
    LIST=""
    [ "$n" -eq 0 ] && { LIST=$WQ_MASTER; return; }
    for ((k = 0; k < n; k++)); do
        j=$(( (i - 1 + k) % n + 1 ))
        LIST+="${LIST:+;}$WQ_FOREMEN:$((WQ_MASTER_BASEPORT + j))"
    done
}

common_options() {  # kind index
    local opts=()
    [ -n "$WQ_PASSWORD" ] && opts+=(--password "$WQ_PASSWORD")
    [ -n "$WQ_DEBUG" ] && opts+=(-d all -o "$WQ_WORKDIR/log/$1-$2.debug")
    [ ${#opts[@]} -eq 0 ] || printf '%s\n' "${opts[@]}"
}

resource_options() {
    printf '%s\n' --cores "$WQ_WORKER_CORES"
    [ -z "$WQ_WORKER_MEMORY" ] || printf '%s\n' --memory "$WQ_WORKER_MEMORY"
    [ -z "$WQ_WORKER_DISK" ] || printf '%s\n' --disk "$WQ_WORKER_DISK"
}

has_single_task() { "$WQ_WORKER_BIN" --help 2>&1 | grep -q -- --single-task; }

command_for() {  # kind index -> one argument a line
    local kind=$1 i=$2
    local -a cmd res
    mapfile -t cmd < <(common_options "$kind" "$i")
    mapfile -t res < <(resource_options)
    case $kind in
    foreman)
        printf '%s\n' "$WQ_WORKER_BIN" --foreman --foreman-port "$(foreman_port "$i")" \
            --workdir "$WQ_WORKDIR/foreman-$i" "${cmd[@]+"${cmd[@]}"}" \
            "$(manager_host)" "$(manager_port)" ;;
    worker)
        foremen_list "$i"
        [ "$WQ_SINGLETASK" = 1 ] && has_single_task && cmd+=(--single-task)
        printf '%s\n' "$WQ_WORKER_BIN" "${res[@]}" --single-shot --idle-timeout "$WQ_IDLETIMEOUT" \
            --workdir "$WQ_WORKDIR/worker-$i" "${cmd[@]+"${cmd[@]}"}" "$LIST" ;;
    esac
}

# What slot KIND I was started with, for status: recorded once, by its loop, at start.
describe_slot() {  # kind index
    case $1 in
        foreman) echo "listens on $(foreman_port "$2"), manager $WQ_MASTER" ;;
        worker) foremen_list "$2"; echo "managers $LIST" ;;
    esac
}

# The factory's settings, route and command are decided by awq.fleet (unit-tested Python):
# the installed alien_wq_fleet beside this script, or the source tree's package.
fleet() {
    local dir=${SELF%/*}
    if [ -x "$dir/alien_wq_fleet" ]; then
        AWQ_SCRIPT_DIR=$dir "$dir/alien_wq_fleet" "$@"
    elif [ -f "$dir/../awq/fleet.py" ]; then
        # The package's directory goes on sys.path from inside, as in the installed commands:
        # no PYTHONPATH of ours in any environment.
        AWQ_SCRIPT_DIR=$dir python3 -I -c 'import sys; sys.path.insert(0, sys.argv.pop(1))
from awq.fleet import cli
cli()' "$dir/.." "$@"
    else
        die "cannot find alien_wq_fleet beside $SELF: reinstall alien-workqueue"
    fi
}

# Only what the caller exported stays exported: see AWQ_CALLERS_VARIABLES.
keep_only_callers_environment() {
    local name
    for name in $(compgen -e); do
        case $AWQ_CALLERS_VARIABLES in
            *" $name "*) ;;
            *) export -n "${name?}" ;;   # the variable named by $name
        esac
    done
}

# The restart loop of one slot (run detached by start-*). Its child leads its own process
# group, so whatever the child starts (a factory's workers) goes with it.
run_loop() {
    local kind=$1 i=$2 child="" sleeper="" status started restarts=0 delay=1
    local -a cmd
    have_workdir || die "no $PIDS: use start-${LOOP[$kind]}"
    { cd "$WQ_WORKDIR" && mkdir -p state; } || die "cannot enter $WQ_WORKDIR"
    write_file "$PIDS/$kind-$i.pid" $$   # the only writer of this file
    trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
          if [ -n "$child" ]; then
              kill -TERM "$child" 2>/dev/null; kill -TERM -- -"$child" 2>/dev/null
              wait "$child"; kill -KILL -- -"$child" 2>/dev/null
          fi
          exit 0' TERM INT
    [ "$WQ_RESTART_DELAY" -lt 1 ] && delay=$WQ_RESTART_DELAY
    # The factory's .info comes with its plan (start); the others' from the loop's own
    # start-time environment, so status never rebuilds it from the caller's.
    [ "$kind" = factory ] || write_file "$PIDS/$kind-$i.info" "$(describe_slot "$kind" "$i")"
    keep_only_callers_environment
    while [ ! -e "$WQ_DRAIN" ]; do
        mkdir -p "$WQ_WORKDIR/$kind-$i"
        if [ "$kind" = factory ]; then
            mapfile -d '' -t cmd < "$PIDS/factory-$i.argv" || die "no plan for factory $i"
        else
            mapfile -t cmd < <(command_for "$kind" "$i")
        fi
        log "starting: ${cmd[*]}"
        # Its own process group (so its tasks go with it), in the loops' session: see start.
        set -m; "${cmd[@]}" & child=$!; set +m
        now; started=$NOW
        write_file "$PIDS/$kind-$i.child" "$child"
        write_file "$STATE/$kind-$i" "$restarts $started"
        wait "$child"
        status=$?
        kill -KILL -- -"$child" 2>/dev/null   # whatever it left behind in its group
        child=""
        log "$kind $i exited with status $status"
        [ -e "$WQ_DRAIN" ] && break
        now; [ $((NOW - started)) -gt "$WQ_BACKOFF_RESET" ] && delay=1
        [ "$delay" -gt "$WQ_RESTART_DELAY" ] && delay=$WQ_RESTART_DELAY
        log "restarting $kind $i in $delay s"
        sleep "$delay" &
        sleeper=$!
        wait "$sleeper"
        sleeper=""
        delay=$((delay * 2))
        restarts=$((restarts + 1))
    done
    log "drain file $WQ_DRAIN present: $kind $i loop exits"
    rm -f "$PIDS/$kind-$i".{pid,child,info,argv} "$STATE/$kind-$i"
}

start() {  # kind count
    local kind=$1 count=$2 i started=0 bin pid
    local -a new=()
    [ -e "$WQ_DRAIN" ] && die "the drain file $WQ_DRAIN exists: remove it to start ${kind}s"
    check_number "the number of ${kind}s" "$count"
    if [ "$kind" = foreman ] && [ "$count" -eq 0 ]; then
        echo "WQ_NUM_FOREMEN=0: no foremen to start; workers connect straight to $WQ_MASTER"
        return
    fi
    check_number WQ_NUM_FOREMEN "$WQ_NUM_FOREMEN"
    check_number WQ_RESTART_DELAY "$WQ_RESTART_DELAY"
    check_number WQ_BACKOFF_RESET "$WQ_BACKOFF_RESET"
    check_number WQ_WORKER_CORES "$WQ_WORKER_CORES"
    check_number WQ_WORKER_MEMORY "$WQ_WORKER_MEMORY" empty-ok
    check_number WQ_WORKER_DISK "$WQ_WORKER_DISK" empty-ok
    if [ "$kind" != worker ] || [ "$WQ_NUM_FOREMEN" -eq 0 ]; then check_master; fi
    if [ "$kind" = factory ]; then
        check_number WQ_FACTORY_MIN "$WQ_FACTORY_MIN"
        check_number WQ_FACTORY_MAX "$WQ_FACTORY_MAX"
    fi
    if [ "$kind" = worker ] && [ "$WQ_SINGLETASK" = 1 ] && ! has_single_task; then
        warn "this work_queue_worker has no --single-task option; WQ_SINGLETASK ignored"
    fi
    for bin in "$WQ_WORKER_BIN" $([ "$kind" = factory ] && echo "$FACTORY_BIN"); do
        command -v "$bin" >/dev/null || die "$bin not found: source etc/env.sh first"
    done
    resolve_password
    make_workdir
    if [ "$kind" = factory ] && ! loop_alive factory 1; then
        WQ_PASSWORD=$WQ_PASSWORD fleet factory-plan "$PIDS" 1 > /dev/null || exit 1
    fi
    for ((i = 1; i <= count; i++)); do
        if loop_alive "$kind" "$i"; then
            read_var pid "$PIDS/$kind-$i.pid"
            echo "$kind $i already running (PID $pid)"
            continue
        fi
        rm -f "$PIDS/$kind-$i.pid"   # stale; the loop writes its own
        new+=("$i")
        started=$((started + 1))
    done
    # Detached from the terminal, all in ONE new session: Linux's autogroup scheduler
    # shares the CPU between sessions, so a session per loop would outweigh a master on
    # the same box N to 1 (a 5,000-pilot ramp through 20 local workers: 14 s -> 6 s).
    [ ${#new[@]} -eq 0 ] || setsid "$SELF" spawn-loops "$kind" "${new[@]}" < /dev/null
    local deadline=$((SECONDS + 10))   # until every new loop has written its PID file
    for i in "${new[@]+"${new[@]}"}"; do
        while [ ! -s "$PIDS/$kind-$i.pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    done
    echo "started $started ${kind}(s); logs in $WQ_WORKDIR/log"
}

spawn_loops() {  # kind index...: the loops of one start-*, in the caller's (new) session
    local kind=$1 i
    shift
    for i; do
        nohup "$SELF" "${LOOP[$kind]}" "$i" >> "$WQ_WORKDIR/log/$kind-$i.log" 2>&1 < /dev/null &
    done
}

all_gone() {  # seconds "kind index"...: wait until no loop or child of these slots is alive
    local deadline=$((SECONDS + $1)) slot
    shift
    while :; do
        for slot; do
            # shellcheck disable=SC2086
            if loop_alive $slot || child_alive $slot; then break; fi
            slot=""
        done
        [ -z "${slot:-}" ] && return 0
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# TERM every loop of the given kinds at once, wait for all (10 s at most), KILL what is left.
stop() {  # kind...
    local kind i slot pid
    local -a slots=() files=()
    have_workdir || return 0
    for kind; do
        for i in $(indexes "$kind"); do
            slots+=("$kind $i")
            files+=("$PIDS/$kind-$i".{pid,child,info,argv} "$STATE/$kind-$i")
            read_var pid "$PIDS/$kind-$i.pid"
            is_loop "$pid" "$kind" "$i" && kill -TERM "$pid" 2>/dev/null
        done
    done
    if ! all_gone 10 "${slots[@]+"${slots[@]}"}"; then
        for slot in "${slots[@]}"; do
            read -r kind i <<< "$slot"
            read_var pid "$PIDS/$kind-$i.pid"
            is_loop "$pid" "$kind" "$i" && kill -KILL "$pid" 2>/dev/null
            read_var pid "$PIDS/$kind-$i.child"
            is_child "$pid" "$kind" "$i" && kill -KILL -- -"$pid" "$pid" 2>/dev/null
        done
        # SIGKILL lands asynchronously (later on a loaded box): return once it has.
        all_gone 5 "${slots[@]}" || warn "some processes survived SIGKILL (see status)"
    fi
    [ ${#files[@]} -eq 0 ] || rm -f "${files[@]}"
}

count() {
    local n=0 i
    have_workdir || { echo 0; return; }
    for i in $(indexes "$1"); do
        loop_alive "$1" "$i" && n=$((n + 1))
    done
    echo "$n"
}

status() {
    local kind i state target loop child up restarts started
    have_workdir || return 0
    now
    for kind in foreman worker factory; do
        for i in $(indexes "$kind"); do
            state=dead
            loop_alive "$kind" "$i" && state=running
            read_var target "$PIDS/$kind-$i.info"
            read_var loop "$PIDS/$kind-$i.pid"
            read_var child "$PIDS/$kind-$i.child"
            restarts=0 started=""
            read -r restarts started 2>/dev/null < "$STATE/$kind-$i"
            up=-
            if child_alive "$kind" "$i"; then up=$((NOW - ${started:-NOW}))s; else child="${child:+$child(gone)}"; fi
            printf '%-7s %3s  loop %-7s %-7s  child %-13s up %-6s restarts %-3s %s\n' "$kind" "$i" \
                "$loop" "$state" "${child:--}" "$up" "${restarts:-0}" "${target:--}"
        done
    done
}

case "${1:-}" in
    start-foremen) start foreman "$WQ_NUM_FOREMEN" ;;
    start-workers) start worker "$WQ_NUM_WORKERS" ;;
    start-factory) start factory 1 ;;
    stop-foremen) stop foreman ;;
    stop-workers) stop worker ;;
    stop-factory) stop factory ;;
    stop) stop worker foreman factory ;;
    restart-foremen) stop foreman; start foreman "$WQ_NUM_FOREMEN" ;;
    restart-workers) stop worker; start worker "$WQ_NUM_WORKERS" ;;
    count-foremen) count foreman ;;
    count-workers) count worker ;;
    status) status ;;
    drain) mkdir -p "$(dirname "$WQ_DRAIN")" && touch "$WQ_DRAIN" &&
           echo "drain file $WQ_DRAIN created: foremen and workers exit after their current run" ;;
    spawn-loops)
        [[ ${2:-} =~ ^(foreman|worker|factory)$ ]] || die "usage: $PROG spawn-loops KIND INDEX..."
        spawn_loops "${@:2}" ;;
    foremen|workers|factory)
        [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $PROG $1 INDEX"
        case $1 in foremen) run_loop foreman "$2" ;; workers) run_loop worker "$2" ;;
                   factory) run_loop factory "$2" ;; esac ;;
    help | -h | --help) usage ;;
    "") usage >&2; exit 1 ;;
    *) echo "$PROG: unknown command '$1'" >&2; usage >&2; exit 1 ;;
esac
