#!/usr/bin/env bash
# (Re)records Tests/Fixtures/slurm-real from the real single-node Slurm that Tests/Support/slurm.sh runs,
# with the exact commands qxub runs: the production `squeue` format is read from the Swift source, so a
# re-recording always matches what the code asks.
#
#   sudo bash Tests/Fixtures/slurm-real/record.sh [OUTDIR]    # default: this directory
#
# Needs root (it starts the cluster if it is down, and runs the commands as the unprivileged `nobody`).
# Uses the instance in ${QXUB_SLURM_DIR:-/tmp/qxub-slurm}; set QXUB_SLURM_DIR to record on a private one
# while tests use the shared one. It fills the node's 8 CPUs for a while, and takes about 90 s (the
# shortest Slurm time limit is one minute, and one job is recorded past it).
#
# Every file is the exact bytes one command printed (nothing is normalised): NAME.stdout, NAME.stderr,
# NAME.rc (decimal exit status + newline); NAME.argv is the command, one argument per line; NAME.txt is a
# copy of a job's output file. ids.txt maps the scenario names to the job ids of this recording.
# README.md next to this script lists them all.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
SLURM="$REPO/Tests/Support/slurm.sh"
OUT="${1:-$HERE}"
RUNAS=nobody

die() { printf 'record.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'record.sh: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (runuser; slurm.sh start)"
FORMAT="$(sed -n 's/.*static let squeueFormat = "\(.*\)"$/\1/p' "$REPO/Sources/QxubScheduler/SlurmStatusParser.swift")"
[ -n "$FORMAT" ] || die "no squeueFormat in Sources/QxubScheduler/SlurmStatusParser.swift"
bash "$SLURM" start
eval "$(bash "$SLURM" env)"
WD="$QXUB_SLURM_DIR/record"
mkdir -p "$OUT"

# A command as $RUNAS with a clean environment, in $WD.
u() {
  runuser -u "$RUNAS" -- env -i HOME="$WD" USER="$RUNAS" LOGNAME="$RUNAS" SHELL=/bin/bash LANG=C.UTF-8 \
    PATH=/usr/local/bin:/usr/bin:/bin SLURM_CONF="$SLURM_CONF" bash -c "cd '$WD' && $1"
}
# rec NAME ARG...: NAME.stdout / .stderr / .rc (and NAME.argv) of the command, run as $RUNAS.
rec() {
  local name="$1" rc=0 quoted
  shift
  printf '%s\n' "$@" >"$OUT/$name.argv"
  quoted="$(printf '%q ' "$@")"
  u "$quoted" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || rc=$?
  echo "$rc" >"$OUT/$name.rc"
  log "$name: $* -> rc $rc"
}
ids() { printf '%s=%s\n' "$1" "$2" >>"$OUT/ids.txt"; log "$1 = $2"; }
submit() { u "sbatch --parsable $1"; }
# ID -> "STATE|REASON" as Slurm sees it now (root asks, so nothing depends on the recording user).
state() { SLURM_CONF="$SLURM_CONF" squeue -h -t all -o '%T|%r' -j "$1" 2>/dev/null || true; }
wait_state() { # ID PATTERN (a shell pattern on STATE|REASON) [SECONDS]
  local deadline=$((SECONDS + ${3:-60}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    # shellcheck disable=SC2254
    case "$(state "$1")" in $2) return 0 ;; esac
    sleep 0.2
  done
  die "job $1 never reached '$2' (last: $(state "$1"))"
}
wait_file() { # PATH TEXT: until the file holds TEXT (Slurm appends its own lines after the job's)
  local deadline=$((SECONDS + 30))
  until grep -qF -- "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "$1 never held '$2'"
    sleep 0.2
  done
}
cleanup() {
  local left
  left="$(SLURM_CONF="$SLURM_CONF" squeue -h -o '%i' -n fx-running,fx-filler,fx-pending,fx-held,fx-root,fx-timeout 2>/dev/null || true)"
  # shellcheck disable=SC2086
  [ -z "$left" ] || SLURM_CONF="$SLURM_CONF" scancel $left 2>/dev/null || true
}
trap cleanup EXIT

log "recording into $OUT (SLURM_CONF $SLURM_CONF, as $RUNAS, in $WD, squeue format '$FORMAT')"
rm -rf "$WD"
mkdir -p "$WD"
chown "$RUNAS" "$WD"
rm -f "$OUT"/*.stdout "$OUT"/*.stderr "$OUT"/*.rc "$OUT"/*.argv "$OUT"/*.txt
: >"$OUT/ids.txt"
SLURM_CONF="$SLURM_CONF" sinfo --version >"$OUT/slurm-version.txt"

# Jobs that end by themselves first (one CPU each), and one past its one-minute limit.
timeout_id=$(submit "-J fx-timeout --time=1 -o fx-timeout-%j.out --wrap 'echo sleeping past the limit; sleep 120'")
ids timeout "$timeout_id"
ok=$(submit "-J fx-ok -o fx-ok-%j.out --wrap 'echo hello; exit 0'"); ids ok "$ok"
exit3=$(submit "-J fx-exit3 -o fx-exit3-%j.out --wrap 'echo about to fail; exit 3'"); ids exit3 "$exit3"
sig9=$(submit "-J fx-sig9 -o fx-sig9-%j.out --wrap 'echo killing myself; kill -9 \$\$'"); ids sig9 "$sig9"
wait_state "$ok" 'COMPLETED|*'
wait_state "$exit3" 'FAILED|*'
wait_state "$sig9" 'FAILED|*'

# Running, then the rest of the node filled, so that the next one waits for resources; one held by its
# user; one of root's, for a cancel that is refused.
running=$(submit "-J fx-running -o fx-running-%j.out --wrap 'echo running; sleep 300'"); ids running "$running"
wait_state "$running" 'RUNNING|*'
filler=$(submit "-J fx-filler -c 6 -o /dev/null --wrap 'sleep 300'"); ids filler "$filler"
wait_state "$filler" 'RUNNING|*'
wait_state "$timeout_id" 'RUNNING|*'
pending=$(submit "-J fx-pending -o /dev/null --wrap 'echo never'"); ids pending "$pending"
held=$(submit "-J fx-held --hold -o /dev/null --wrap 'echo never'"); ids held "$held"
root_job=$(SLURM_CONF="$SLURM_CONF" sbatch --parsable -J fx-root --hold -o /dev/null --wrap 'echo never')
ids root "$root_job"
# Until the scheduler has said why it waits (a fresh job's reason is None for a moment).
wait_state "$pending" 'PENDING|Resources'
wait_state "$held" 'PENDING|JobHeldUser'

# (a) the production status query over every state at once, and with ids Slurm does not know.
rec squeue-active squeue -h -t all -o "$FORMAT" -j "$ok,$exit3,$sig9,$running,$pending,$held,$timeout_id"
rec squeue-with-unknown squeue -h -t all -o "$FORMAT" -j "$running,999999"
rec squeue-unknown-only squeue -h -t all -o "$FORMAT" -j 999999

# (b) scancel as qxub runs it: a running job, a pending one, a finished one, an unknown id, and a job of
# another user.
rec scancel-running scancel "$running"
rec scancel-pending scancel "$pending"
rec scancel-finished scancel "$ok"
rec scancel-unknown scancel 999999
rec scancel-other-user scancel "$root_job"
SLURM_CONF="$SLURM_CONF" scancel "$root_job" "$filler"
wait_state "$running" 'CANCELLED|*'
wait_state "$pending" 'CANCELLED|*'

# (c) the time limit, then everything again once the cancelled and timed-out jobs have ended.
wait_state "$timeout_id" 'TIMEOUT|*' 120
rec squeue-ended squeue -h -t all -o "$FORMAT" -j "$ok,$exit3,$sig9,$running,$pending,$held,$timeout_id"

# (d) the job logs: Slurm's own lines about a time limit and a cancel (qxub reads the former).
wait_file "$WD/fx-timeout-$timeout_id.out" "DUE TO TIME LIMIT"
wait_file "$WD/fx-running-$running.out" "CANCELLED AT"
wait_file "$WD/fx-sig9-$sig9.out" "killing myself"
cp "$WD/fx-timeout-$timeout_id.out" "$OUT/joboutput-timeout.txt"
cp "$WD/fx-running-$running.out" "$OUT/joboutput-cancelled-running.txt"
cp "$WD/fx-sig9-$sig9.out" "$OUT/joboutput-sig9.txt"
SLURM_CONF="$SLURM_CONF" scancel "$held"
log "done"
