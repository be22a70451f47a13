#!/usr/bin/env bash
# Install what is needed, then run alien-workqueue on this machine: a master, 2 foremen,
# 2 workers (alien_wq_worker.sh) and a few AliEn- and JAliEn-shaped jobs; print condor_q
# before and after; stop everything this script started. Everything lives in ./_demo.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DEMO=$REPO/_demo

scripts/setup-deps.sh
rm -rf "$DEMO"
mkdir -p "$DEMO"
echo "== installing alien-workqueue into $DEMO/prefix (CMake, as upstream)"
cmake -S "$REPO" -B "$DEMO/build" -DCCTOOLS=/usr -DCMAKE_INSTALL_PREFIX="$DEMO/prefix" >/dev/null
cmake --build "$DEMO/build" --target install >/dev/null

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# shellcheck disable=SC1091
source "$DEMO/prefix/etc/env.sh"
export AWQ_WORKDIR=$DEMO/spool
PORT=$(free_port)
export WQ_MASTER=127.0.0.1:$PORT WQ_NUM_FOREMEN=2 WQ_NUM_WORKERS=2 WQ_RESTART_DELAY=2
export WQ_WORKDIR=$DEMO/wq WQ_DRAIN=$DEMO/wq-drain
export WQ_MASTER_BASEPORT=$(( $(free_port) % 20000 + 30000 ))

master_pid=""
cleanup() {
    alien_wq_worker.sh stop >/dev/null 2>&1 || true
    if [ -n "$master_pid" ]; then
        kill -TERM "$master_pid" 2>/dev/null || true
        wait "$master_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

echo "== starting the master on port $PORT (log: $DEMO/master.log)"
alien_work_queue --port "$PORT" --job-wrapper "$ALIEN_WORKQUEUE/etc/alien_job_wrapper.sh" \
    --log-file "$DEMO/master.log" &
master_pid=$!
for _ in $(seq 100); do [ -e "$AWQ_WORKDIR/stat/latest" ] && break; sleep 0.1; done

echo "== starting 2 foremen and 2 workers"
alien_wq_worker.sh start-foremen
alien_wq_worker.sh start-workers
alien_wq_worker.sh status

mkdir -p "$DEMO/jobs"
cat > "$DEMO/jobs/agent.sh" <<'EOF'
#!/bin/sh
# Run through etc/alien_job_wrapper.sh: only ALIEN_* variables (and a minimal PATH,
# HOME, USER, LANG) reach it, so CONDOR_ID is filtered out on purpose.
echo "pilot ALIEN_JOBAGENT_ID=$ALIEN_JOBAGENT_ID on $(hostname), arguments: $*, CONDOR_ID='${CONDOR_ID:-}'"
sleep 2
EOF
chmod +x "$DEMO/jobs/agent.sh"

echo "== submitting 3 AliEn-shaped jobs (stdin) and 1 JAliEn-shaped job (file, cmd =)"
for n in 1 2 3; do
    condor_submit <<EOF
executable = $DEMO/jobs/agent.sh
arguments = --pilot $n
output = $DEMO/jobs/alien-$n.out
error = $DEMO/jobs/alien-$n.err
log = $DEMO/jobs/alien-$n.log
environment=CONDOR_ID=\$(Cluster).\$(Process);ALIEN_JOBAGENT_ID=100$n.0
queue
EOF
done
cat > "$DEMO/jobs/jalien.jdl" <<EOF
cmd = $DEMO/jobs/agent.sh
arguments = "--jalien 'quoted arg'"
output = $DEMO/jobs/jalien.out
error = $DEMO/jobs/jalien.err
+TransferOutput = ""
universe = vanilla
environment = "ALIEN_JOBAGENT_ID='2001.0' CONDOR_ID='jalien'"
queue 1
EOF
condor_submit "$DEMO/jobs/jalien.jdl"

echo "== condor_q right after submitting"
condor_q
echo "== AliEn's counts: idle+running, idle"
condor_q -constraint "JobStatus==1 || JobStatus==2" | wc -l
condor_q -constraint "JobStatus==1" | wc -l

for _ in $(seq 600); do
    [ "$(condor_q -constraint 'JobStatus==1 || JobStatus==2' | wc -l)" -eq 0 ] && break
    sleep 0.1
done
echo "== condor_q after the jobs ran"
condor_q
echo "== job outputs"
cat "$DEMO"/jobs/*.out
echo "== done; stopping the foremen, workers and master"
