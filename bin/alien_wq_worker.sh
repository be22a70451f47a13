#!/bin/bash
# alien_wq_worker.sh: run Work Queue foremen and workers for alien-workqueue.
# Every process is tracked by a PID file under $WQ_WORKDIR/pids; nothing is found by name.
set -u

PROG=alien_wq_worker.sh
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

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
: "${WQ_RESTART_DELAY:=30}"
: "${WQ_WORKER_BIN:=work_queue_worker}"

usage() {
    cat <<EOF
Usage: $PROG COMMAND

Commands:
  start-foremen    start WQ_NUM_FOREMEN foremen connected to WQ_MASTER
  start-workers    start WQ_NUM_WORKERS single-core workers connected to the foremen
  stop-foremen     stop the foremen started from this WQ_WORKDIR
  stop-workers     stop the workers started from this WQ_WORKDIR
  stop             stop both
  count-foremen    print how many foremen are running
  count-workers    print how many workers are running
  status           one line per tracked foreman and worker
  drain            create WQ_DRAIN: loops stop restarting and exit when their process ends
  help             this text
  (foremen I, workers I: the restart loops, run by start-*)

Variables (default):
  WQ_MASTER ($WQ_MASTER)        master host:port the foremen connect to
  WQ_FOREMEN ($WQ_FOREMEN)       host running the foremen, for workers
  WQ_NUM_FOREMEN ($WQ_NUM_FOREMEN)          foremen; foreman I listens on WQ_MASTER_BASEPORT+I
  WQ_NUM_WORKERS (CPUs)        workers, 1 core each, one job each (--single-shot)
  WQ_MASTER_BASEPORT ($WQ_MASTER_BASEPORT)
  WQ_WORKDIR (\$HOME/.alien_wq_tmp) scratch space, logs and PID files
  WQ_DRAIN (\$HOME/.alien_wq_drain)  drain switch; start-* refuses to start while it exists
  WQ_SINGLETASK (0)            1: pass --single-task if this work_queue_worker has it
  WQ_IDLETIMEOUT (100)         seconds a worker waits for work before it exits
  WQ_PASSWORD (none)           password file for --password (the master's --password)
  WQ_RESTART_DELAY (30)        seconds between restarts of a foreman or worker
  WQ_DEBUG (empty)             non-empty: Work Queue debug logs in WQ_WORKDIR/log
Workers get every foreman as a failover list, so a dead foreman strands nobody.
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }

pid_file() { echo "$WQ_WORKDIR/pids/$1-$2.pid"; }      # kind (foreman|worker), index
child_file() { echo "$WQ_WORKDIR/pids/$1-$2.child"; }
loop_name() { [ "$1" = foreman ] && echo foremen || echo workers; }

# True if PID runs a command line containing TEXT (guards against PID reuse).
pid_runs() {
    local pid=$1 text=$2
    [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline " == *"$text"* ]]
}

loop_pid() { cat "$(pid_file "$1" "$2")" 2>/dev/null; }
child_pid() { cat "$(child_file "$1" "$2")" 2>/dev/null; }
loop_alive() { pid_runs "$(loop_pid "$1" "$2")" "$PROG $(loop_name "$1") $2 "; }
child_alive() { pid_runs "$(child_pid "$1" "$2")" "$WQ_WORKER_BIN "; }

indexes() {  # the indexes of kind $1 with a PID file
    local f
    for f in "$WQ_WORKDIR/pids/$1"-*.pid; do
        [ -e "$f" ] || continue
        f=${f##*/$1-}
        echo "${f%.pid}"
    done | sort -n
}

manager_host() { echo "${WQ_MASTER%:*}"; }
manager_port() { echo "${WQ_MASTER##*:}"; }

foreman_port() { echo $((WQ_MASTER_BASEPORT + $1)); }

# Every foreman, starting at worker I's own, so load spreads and failover works.
foremen_list() {
    local i=$1 n=$WQ_NUM_FOREMEN list="" k j
    for ((k = 0; k < n; k++)); do
        j=$(( (i - 1 + k) % n + 1 ))
        list+="${list:+;}$WQ_FOREMEN:$(foreman_port "$j")"
    done
    echo "$list"
}

common_options() {  # kind index
    local opts=()
    [ -n "$WQ_PASSWORD" ] && opts+=(--password "$WQ_PASSWORD")
    [ -n "$WQ_DEBUG" ] && opts+=(-d all -o "$WQ_WORKDIR/log/$1-$2.debug")
    [ ${#opts[@]} -eq 0 ] || printf '%s\n' "${opts[@]}"
}

has_single_task() { "$WQ_WORKER_BIN" --help 2>&1 | grep -q -- --single-task; }

command_for() {  # kind index -> one argument a line
    local kind=$1 i=$2
    local -a cmd
    mapfile -t cmd < <(common_options "$kind" "$i")
    if [ "$kind" = foreman ]; then
        printf '%s\n' "$WQ_WORKER_BIN" --foreman --foreman-port "$(foreman_port "$i")" \
            --workdir "$WQ_WORKDIR/foreman-$i" "${cmd[@]+"${cmd[@]}"}" \
            "$(manager_host)" "$(manager_port)"
    else
        [ "$WQ_SINGLETASK" = 1 ] && has_single_task && cmd+=(--single-task)
        printf '%s\n' "$WQ_WORKER_BIN" --cores 1 --single-shot --idle-timeout "$WQ_IDLETIMEOUT" \
            --workdir "$WQ_WORKDIR/worker-$i" "${cmd[@]+"${cmd[@]}"}" "$(foremen_list "$i")"
    fi
}

# The restart loop of one foreman or worker (run detached by start-*).
run_loop() {
    local kind=$1 i=$2 child="" sleeper="" status
    local -a cmd
    echo $$ > "$(pid_file "$kind" "$i")"   # the only writer of this file
    trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
          if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi
          exit 0' TERM INT
    while [ ! -e "$WQ_DRAIN" ]; do
        mkdir -p "$WQ_WORKDIR/$kind-$i"
        mapfile -t cmd < <(command_for "$kind" "$i")
        echo "$(date '+%F %T') starting: ${cmd[*]}"
        "${cmd[@]}" &
        child=$!
        echo "$child" > "$(child_file "$kind" "$i")"
        wait "$child"
        status=$?
        echo "$(date '+%F %T') $kind $i exited with status $status"
        child=""
        [ -e "$WQ_DRAIN" ] && break
        sleep "$WQ_RESTART_DELAY" &
        sleeper=$!
        wait "$sleeper"
        sleeper=""
    done
    echo "$(date '+%F %T') drain file $WQ_DRAIN present: $kind $i loop exits"
    rm -f "$(pid_file "$kind" "$i")" "$(child_file "$kind" "$i")"
}

start() {  # kind count
    local kind=$1 count=$2 i started=0
    [ -e "$WQ_DRAIN" ] && die "the drain file $WQ_DRAIN exists: remove it to start ${kind}s"
    [[ $count =~ ^[0-9]+$ ]] || die "the number of ${kind}s must be a number, not '$count'"
    if [ "$kind" = foreman ]; then
        [[ $(manager_port) =~ ^[0-9]+$ && "$WQ_MASTER" == *:* ]] ||
            die "WQ_MASTER must be host:port, not '$WQ_MASTER'"
    fi
    if [ "$kind" = worker ] && [ "$WQ_SINGLETASK" = 1 ] && ! has_single_task; then
        echo "$PROG: warning: this work_queue_worker has no --single-task option; WQ_SINGLETASK ignored" >&2
    fi
    command -v "$WQ_WORKER_BIN" >/dev/null || die "$WQ_WORKER_BIN not found: source etc/env.sh first"
    mkdir -p "$WQ_WORKDIR/pids" "$WQ_WORKDIR/log" || die "cannot create $WQ_WORKDIR"
    local -a new=()
    for ((i = 1; i <= count; i++)); do
        if loop_alive "$kind" "$i"; then
            echo "$kind $i already running (PID $(loop_pid "$kind" "$i"))"
            continue
        fi
        rm -f "$(pid_file "$kind" "$i")"   # stale; the loop writes its own
        setsid nohup "$SELF" "$(loop_name "$kind")" "$i" \
            >> "$WQ_WORKDIR/log/$kind-$i.log" 2>&1 < /dev/null &
        new+=("$i")
        started=$((started + 1))
    done
    local deadline=$((SECONDS + 10))   # until every new loop has written its PID file
    for i in "${new[@]+"${new[@]}"}"; do
        while [ ! -s "$(pid_file "$kind" "$i")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    done
    echo "started $started ${kind}(s); logs in $WQ_WORKDIR/log"
}

stop() {  # kind
    local kind=$1 i pid child deadline
    for i in $(indexes "$kind"); do
        pid=$(loop_pid "$kind" "$i")
        child=$(child_pid "$kind" "$i")
        loop_alive "$kind" "$i" && kill -TERM "$pid" 2>/dev/null
        deadline=$((SECONDS + 10))
        while { loop_alive "$kind" "$i" || child_alive "$kind" "$i"; } && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        loop_alive "$kind" "$i" && kill -KILL "$pid" 2>/dev/null
        child_alive "$kind" "$i" && kill -KILL "$child" 2>/dev/null
        rm -f "$(pid_file "$kind" "$i")" "$(child_file "$kind" "$i")"
    done
}

count() {
    local n=0 i
    for i in $(indexes "$1"); do
        loop_alive "$1" "$i" && n=$((n + 1))
    done
    echo "$n"
}

status() {
    local kind i state target
    for kind in foreman worker; do
        for i in $(indexes "$kind"); do
            state=dead
            loop_alive "$kind" "$i" && state=running
            if [ "$kind" = foreman ]; then
                target="listens on $(foreman_port "$i"), manager $WQ_MASTER"
            else
                target="managers $(foremen_list "$i")"
            fi
            printf '%-7s %3s  loop %-7s worker %-7s %-7s %s\n' "$kind" "$i" \
                "$(loop_pid "$kind" "$i")" "$(child_pid "$kind" "$i" || true)" "$state" "$target"
        done
    done
}

case "${1:-}" in
    start-foremen) start foreman "$WQ_NUM_FOREMEN" ;;
    start-workers) start worker "$WQ_NUM_WORKERS" ;;
    stop-foremen) stop foreman ;;
    stop-workers) stop worker ;;
    stop) stop worker; stop foreman ;;
    count-foremen) count foreman ;;
    count-workers) count worker ;;
    status) status ;;
    drain) mkdir -p "$(dirname "$WQ_DRAIN")" && touch "$WQ_DRAIN" &&
           echo "drain file $WQ_DRAIN created: foremen and workers exit after their current run" ;;
    foremen) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $PROG foremen INDEX"; run_loop foreman "$2" ;;
    workers) [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $PROG workers INDEX"; run_loop worker "$2" ;;
    help | -h | --help) usage ;;
    "") usage >&2; exit 1 ;;
    *) echo "$PROG: unknown command '$1'" >&2; usage >&2; exit 1 ;;
esac
