#!/usr/bin/env bash
# A real single-node Slurm (Debian 12's slurm-wlm 22.05) for qxub's integration
# tests, private to a state directory and run as root.
#
#   Tests/Support/slurm.sh start    # install packages if needed, start, wait until a job runs
#   Tests/Support/slurm.sh status   # exit 0 only when controller + node are up and idle/mixed/alloc
#   Tests/Support/slurm.sh env      # print `export SLURM_CONF=...` for `eval`
#   Tests/Support/slurm.sh stop     # cancel jobs, kill what start started, wipe job state
#
# State lives in ${QXUB_SLURM_DIR:-/tmp/qxub-slurm}:
#   slurm.conf            the cluster's config (every Slurm command honours SLURM_CONF)
#   env.sh                the same `export` lines `env` prints
#   munge/                a private munged (own key and socket, AuthInfo=socket=...):
#                         nothing is shared with or required from a system munged
#   state/ spool/         StateSaveLocation / SlurmdSpoolDir (wiped by stop: job ids restart at 1)
#   log/                  slurmctld.log slurmd.log munged.log
#   run/                  pid files
#
# Nothing is exported globally and /etc/slurm is not touched: use
#   eval "$(Tests/Support/slurm.sh env)"; sbatch --wrap 'echo hi'
#
# Needs root (slurmd must be root to run jobs; jobs are submitted by root).
# Facts that shaped the config:
#   - SchedulerParameters=batch_sched_delay=0, else each batch job starts ~3 s late
#   - NodeName=localhost is not the host name, so slurmd is started with -N localhost
#   - CPUs=8 (more than the machine has) + SlurmdParameters=config_overrides so that
#     several 1-CPU jobs run side by side and the node is not drained for lying
#   - MinJobAge=300: finished jobs stay visible to `scontrol show job` for 5 minutes
#   - no cgroups in the VM/container: proctrack/linuxproc, task/none, jobacct_gather/none
#   - slurmctld schedules batch jobs from a loop that ticks once a second, so a job
#     starts 0-1 s after sbatch (measured: ~0.1-1.0 s); the very first scheduling pass
#     comes ~3 s after slurmctld starts, which `start` absorbs with its probe job
#   - any local user can submit too (e.g. qxubbash through Tests/Support/sshd.sh, with
#     SLURM_CONF set): slurm.conf and the munge socket are reachable by all
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SELF")/../.." && pwd)"

DIR="${QXUB_SLURM_DIR:-/tmp/qxub-slurm}"
CONF="$DIR/slurm.conf"
ENVFILE="$DIR/env.sh"
MUNGE_DIR="$DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket.2"
STATE="$DIR/state"
SPOOL="$DIR/spool"
LOGDIR="$DIR/log"
RUNDIR="$DIR/run"
NODE=localhost
PARTITION=debug

START_TIMEOUT="${QXUB_SLURM_START_TIMEOUT:-60}"   # seconds for start to reach "a job completed"

log() { printf 'slurm.sh: %s\n' "$*" >&2; }
die() { printf 'slurm.sh: error: %s\n' "$*" >&2; exit 1; }

# Slurm client commands, always against our config, never hanging for long.
sl() { SLURM_CONF="$CONF" timeout 15 "$@"; }

# A pid that exists and is not a zombie (a daemonized process that died is
# re-parented to pid 1, which may take a while to reap it).
alive() { # pid
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pid_alive() { # pidfile
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid"
}

# Stop the processes named by pid files: SIGTERM all at once, wait (bounded),
# then SIGKILL whatever is left. Missing or stale pid files are fine.
kill_pidfiles() { # pidfile...
  local pf pid any
  local -a pids=()
  for pf in "$@"; do
    pid="$(cat "$pf" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for _ in $(seq 1 100); do   # 10 s
    any=0
    for pid in "${pids[@]}"; do alive "$pid" && any=1; done
    [ "$any" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then
      log "pid $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo '?')) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pf in "$@"; do rm -f "$pf"; done
}

# All descendants of the given pids (children first is not needed: we SIGKILL).
descendants() {
  local -a queue=("$@") out=()
  local p c
  while [ "${#queue[@]}" -gt 0 ]; do
    p="${queue[0]}"; queue=("${queue[@]:1}")
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
      out+=("$c"); queue+=("$c")
    done
  done
  [ "${#out[@]}" -eq 0 ] || printf '%s\n' "${out[@]}"
}

# Slurm processes of this instance that outlived slurmd/slurmctld (slurmstepd
# clears its environment, so it is recognised by its working directory, which
# slurmd sets to our log dir, or by an open file under the state dir), plus
# job scripts running from our spool dir.
leftover_pids() {
  local d pid comm cwd fd
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [ "$pid" = "$$" ] && continue
    comm="$(cat "$d/comm" 2>/dev/null || true)"
    case "$comm" in
      slurmstepd|slurmd|slurmctld|slurmscriptd)
        cwd="$(readlink "$d/cwd" 2>/dev/null || true)"
        if [ "$cwd" = "$LOGDIR" ] || [ "${cwd#"$DIR"/}" != "$cwd" ]; then echo "$pid"; continue; fi
        for fd in "$d"/fd/*; do
          case "$(readlink "$fd" 2>/dev/null || true)" in
            "$DIR"/*) echo "$pid"; break ;;
          esac
        done
        ;;
      *)
        if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF "$SPOOL/"; then echo "$pid"; fi
        ;;
    esac
  done
}

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

tail_logs() {
  local f
  for f in "$LOGDIR/munged.log" "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" "$LOGDIR/slurmctld.out" "$LOGDIR/slurmd.out"; do
    if [ -s "$f" ]; then
      printf '\n===== tail -n 40 %s =====\n' "$f" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

write_env() {
  printf 'export SLURM_CONF=%q\nexport QXUB_SLURM_DIR=%q\n' "$CONF" "$DIR"
}

node_state() { sl sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n 1; }

is_up() {
  pid_alive "$RUNDIR/munged.pid" && pid_alive "$RUNDIR/slurmctld.pid" && pid_alive "$RUNDIR/slurmd.pid" || return 1
  [ -S "$MUNGE_SOCKET" ] || return 1
  case "$(node_state)" in
    idle|mix|alloc|comp) return 0 ;;   # usable (trailing * or ~ means not responding)
    *) return 1 ;;
  esac
}

do_stop() {
  # 1. Cancel every job while the controller still answers, and give them a moment.
  if [ -f "$CONF" ] && pid_alive "$RUNDIR/slurmctld.pid"; then
    local ids
    ids="$(sl squeue -h -o '%i' 2>/dev/null || true)"
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      sl scancel $ids 2>/dev/null || true
      for _ in $(seq 1 50); do
        [ -z "$(sl squeue -h -o '%i' 2>/dev/null || true)" ] && break
        sleep 0.2
      done
    fi
  fi
  # 2. The daemons we started.
  kill_pidfiles "$RUNDIR/slurmd.pid" "$RUNDIR/slurmctld.pid"
  # 3. Leftover step daemons and their job processes (after a crash or kill -9).
  local -a stray=()
  mapfile -t stray < <(leftover_pids)
  if [ "${#stray[@]}" -gt 0 ]; then
    local -a all=()
    mapfile -t all < <({ descendants "${stray[@]}"; printf "%s\n" "${stray[@]}"; } | sort -un)
    log "killing ${#all[@]} leftover slurm process(es): ${all[*]}"
    kill -KILL "${all[@]}" 2>/dev/null || true
  fi
  # 4. Our munged.
  kill_pidfiles "$RUNDIR/munged.pid"
  # 5. Job state, so the next start begins again at job id 1.
  rm -rf "$STATE" "$SPOOL" "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
}

start_munge() {
  mkdir -p "$MUNGE_DIR"
  # munged insists: socket dir executable by all, key/log private.
  chmod 0755 "$DIR" "$MUNGE_DIR"
  if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile="$MUNGE_DIR/munge.key" >/dev/null 2>&1 \
        || dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    else
      dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
  fi
  chmod 0600 "$MUNGE_DIR/munge.key"
  if pid_alive "$RUNDIR/munged.pid" && [ -S "$MUNGE_SOCKET" ]; then return 0; fi
  kill_pidfiles "$RUNDIR/munged.pid"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  if ! timeout 15 munged \
        --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
        --log-file="$LOGDIR/munged.log" --pid-file="$RUNDIR/munged.pid" \
        --seed-file="$MUNGE_DIR/munged.seed"; then
    tail_logs
    die "munged failed to start (socket $MUNGE_SOCKET; munged wants every directory above it executable by all, so keep QXUB_SLURM_DIR under e.g. /tmp)"
  fi
  for _ in $(seq 1 50); do
    if timeout 5 munge -S "$MUNGE_SOCKET" -n 2>/dev/null | timeout 5 unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  tail_logs
  die "munged started but munge/unmunge through $MUNGE_SOCKET does not work"
}

write_conf() {
  local ctld_port slurmd_port host
  ctld_port="$(free_port)"
  slurmd_port="$(free_port)"
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(free_port)"; done
  host="$(hostname -s 2>/dev/null || hostname)"
  # slurmctld only runs where SlurmctldHost names this machine's host name;
  # the address in parentheses makes it reachable without DNS.
  cat >"$CONF.tmp" <<EOF
# Generated by $SELF -- do not edit; rewritten on every start.
ClusterName=qxubtest
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${MUNGE_SOCKET}
StateSaveLocation=${STATE}
SlurmdSpoolDir=${SPOOL}/%n
SlurmctldPidFile=${RUNDIR}/slurmctld.pid
SlurmdPidFile=${RUNDIR}/slurmd.pid
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
PlugStackConfig=${DIR}/plugstack.conf
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
SlurmdParameters=config_overrides
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 State=UNKNOWN
PartitionName=${PARTITION} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  mv "$CONF.tmp" "$CONF"
  : >"$DIR/plugstack.conf"   # keep Debian's /etc/slurm/plugstack.conf out of it
  write_env >"$ENVFILE"
}

wait_for() { # seconds description command...
  local secs="$1" what="$2"; shift 2
  local deadline=$((SECONDS + secs))
  while ! "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

node_idle() { [ "$(node_state)" = idle ]; }

probe_job_done() {
  local st
  st="$(sl scontrol show job "$PROBE_ID" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 || true)"
  case "$st" in
    JobState=COMPLETED) return 0 ;;
    JobState=FAILED|JobState=CANCELLED|JobState=NODE_FAIL|JobState=TIMEOUT|JobState=BOOT_FAIL|JobState=OUT_OF_MEMORY)
      log "probe job $PROBE_ID ended in $st"
      sl scontrol show job "$PROBE_ID" >&2 || true
      PROBE_FAILED=1; return 0 ;;
  esac
  return 1
}

fail_start() {
  log "$*"
  tail_logs
  do_stop
  exit 1
}

do_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd runs jobs as their submitter and must be root)"
  if [ -f "$CONF" ] && is_up; then
    log "already running ($CONF)"
    return 0
  fi
  bash "$REPO_ROOT/install/test-deps.sh"
  for b in slurmctld slurmd munged munge sbatch sinfo scontrol squeue scancel python3; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found after installing packages"
  done

  # A half-started instance: clear it out first.
  do_stop

  local t0=$SECONDS
  mkdir -p "$DIR" "$STATE" "$SPOOL/$NODE" "$LOGDIR" "$RUNDIR"
  chmod 0755 "$DIR" "$STATE" "$SPOOL" "$SPOOL/$NODE" "$LOGDIR" "$RUNDIR"
  : >"$LOGDIR/slurmctld.log"; : >"$LOGDIR/slurmd.log"; : >"$LOGDIR/munged.log"
  write_conf
  start_munge

  # -i: ignore any saved state. Both daemonize and write their pid files.
  if ! timeout 20 env SLURM_CONF="$CONF" slurmctld -i -f "$CONF" >"$LOGDIR/slurmctld.out" 2>&1; then
    fail_start "slurmctld failed to start"
  fi
  wait_for 15 "slurmctld pid file" pid_alive "$RUNDIR/slurmctld.pid" || fail_start "slurmctld did not stay up"
  wait_for 15 "slurmctld to answer" bash -c "SLURM_CONF='$CONF' timeout 5 scontrol ping 2>/dev/null | grep -q UP" \
    || fail_start "slurmctld does not answer scontrol ping"

  if ! timeout 20 env SLURM_CONF="$CONF" slurmd -N "$NODE" -f "$CONF" >"$LOGDIR/slurmd.out" 2>&1; then
    fail_start "slurmd failed to start"
  fi
  wait_for 15 "slurmd pid file" pid_alive "$RUNDIR/slurmd.pid" || fail_start "slurmd did not stay up"

  local left=$((START_TIMEOUT - (SECONDS - t0))); [ "$left" -gt 5 ] || left=5
  wait_for "$left" "node $NODE to be idle" node_idle \
    || fail_start "node $NODE never became idle: $(sl sinfo -N 2>&1 || true)"

  PROBE_ID="$(sl sbatch --parsable -J qxub-probe -o /dev/null -e /dev/null --wrap true 2>"$LOGDIR/probe.err")" \
    || fail_start "sbatch of the probe job failed: $(cat "$LOGDIR/probe.err")"
  PROBE_ID="${PROBE_ID%%;*}"
  [[ "$PROBE_ID" =~ ^[0-9]+$ ]] || fail_start "sbatch printed no job id: '$PROBE_ID' $(cat "$LOGDIR/probe.err")"
  PROBE_FAILED=0
  left=$((START_TIMEOUT - (SECONDS - t0))); [ "$left" -gt 5 ] || left=5
  wait_for "$left" "probe job $PROBE_ID to complete" probe_job_done \
    || fail_start "probe job $PROBE_ID did not complete: $(sl scontrol show job "$PROBE_ID" 2>&1 || true)"
  [ "$PROBE_FAILED" -eq 0 ] || fail_start "probe job $PROBE_ID failed"
  # Let the node drop back to idle so tests start from a quiet cluster.
  wait_for 10 "node $NODE idle after probe" node_idle || true

  log "up in $((SECONDS - t0))s: $CONF (slurmctld pid $(cat "$RUNDIR/slurmctld.pid"), slurmd pid $(cat "$RUNDIR/slurmd.pid"))"
}

case "${1:-}" in
  start)  do_start ;;
  stop)   do_stop; log "stopped" ;;
  status)
    if [ -f "$CONF" ] && is_up; then echo "slurm: up ($CONF, node $NODE $(node_state))"; exit 0; fi
    echo "slurm: down"; exit 1 ;;
  env)
    [ -f "$CONF" ] || die "no $CONF: run '$SELF start' first"
    write_env ;;
  *)
    echo "usage: $0 start|stop|status|env   (state in \$QXUB_SLURM_DIR, default /tmp/qxub-slurm)" >&2
    exit 2 ;;
esac
