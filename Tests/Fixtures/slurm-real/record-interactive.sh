#!/usr/bin/env bash
# (Re)records the interactive-* files of Tests/Fixtures/slurm-real: what `srun --pty ... /bin/bash CMD`
# prints on its terminal, and what SIGINT, SIGTERM, SIGHUP, a typed ^C and an scancel from outside do while
# it waits.
#
#   sudo bash Tests/Fixtures/slurm-real/record-interactive.sh [OUTDIR]    # default: this directory
#
# Needs root (it starts the cluster if it is down, and runs srun as the unprivileged `nobody`). Jobs wait
# by a user hold (`srun --hold`, released with `scontrol release`) or a begin time (`--begin=now+3`):
# nothing else on the shared cluster is touched. About 15 s.
#
# Each srun runs on a new pseudo-terminal (Tests/Support/ptyscript.py) through `setpriv` (which execs:
# srun itself leads the terminal's session and gets the signals). NAME.tty is the exact bytes of that
# terminal, NAME.tty.rc srun's exit status, NAME.tty.steps what was done when; NAME.stdout/.stderr/.rc/
# .argv are other commands, as in record.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
SLURM="$REPO/Tests/Support/slurm.sh"
PTY="$REPO/Tests/Support/ptyscript.py"
OUT="${1:-$HERE}"
RUNAS=nobody

die() { printf 'record-interactive.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'record-interactive.sh: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (setpriv; slurm.sh start)"
bash "$SLURM" start
eval "$(bash "$SLURM" env)"
WD="$QXUB_SLURM_DIR/record-interactive"
rm -rf "$WD" && mkdir -p "$WD"
cat >"$WD/exit3.sh" <<'EOF'
echo hello
exit 3
EOF
# "ready" comes from the process that becomes sleep: a ^C after it cannot miss the sleep.
cat >"$WD/ctrlc.sh" <<'EOF'
trap 'echo wrapper saw SIGINT' INT
bash -c 'echo ready; exec sleep 30'
echo "sleep ended with status $?"
EOF
chown -R "$RUNAS" "$WD"
mkdir -p "$OUT"

AS_USER=(setpriv --reuid "$RUNAS" --regid nogroup --clear-groups env -i HOME="$WD" USER="$RUNAS" LOGNAME="$RUNAS"
  SHELL=/bin/bash LANG=C.UTF-8 TERM=xterm PATH=/usr/local/bin:/usr/bin:/bin SLURM_CONF="$SLURM_CONF")
AS_USER_SH="$(printf '%q ' "${AS_USER[@]}")"

tty() {
  local name="$1"
  shift
  (cd "$WD" && python3 "$PTY" "$OUT/$name.tty" "$@") || die "$name: the recording failed (see $OUT/$name.tty.steps)"
  log "$name: srun exited $(cat "$OUT/$name.tty.rc")"
}
# rec NAME ARG...: NAME.stdout / .stderr / .rc / .argv of the command, as $RUNAS.
rec() {
  local name="$1" rc=0
  shift
  printf '%s\n' "$@" >"$OUT/$name.argv"
  (cd "$WD" && "${AS_USER[@]}" "$@") >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || rc=$?
  echo "$rc" >"$OUT/$name.rc"
  log "$name: $* -> rc $rc"
}
id_of() { sed -n 's/^srun: job \([0-9]*\) queued and waiting for resources.*/\1/p' "$OUT/$1.tty" | head -1; }
: >"$OUT/interactive-ids.txt"
ids() { printf '%s=%s\n' "$1" "$(id_of "$1")" >>"$OUT/interactive-ids.txt"; }
# The id is in the "queued" line; a job that starts at once prints no line at all.
QUEUED='expect:srun: job (?P<id>\d+) queued and waiting for resources\r\n'
SRUN=("${AS_USER[@]}" srun --pty --job-name=fx-ix)
squeue_of() { rec "$1" squeue -h -t all -o '%i|%T|%r' -j "$2"; }

# 1. A job that runs at once: no line from srun; srun exits with the command's status.
tty interactive-exit3 'expect:hello\r\n' -- "${SRUN[@]}" /bin/bash "$WD/exit3.sh"

# 2. A job that waits for its begin time: the queued and allocated lines.
tty interactive-begin "$QUEUED" 'expect@30:has been allocated resources\r\n' 'expect:hello\r\n' \
  -- "${SRUN[@]}" --begin=now+3 /bin/bash "$WD/exit3.sh"
ids interactive-begin

# 3. A held job, released.
tty interactive-held "$QUEUED" "run:$AS_USER_SH scontrol release {id}" 'expect:hello\r\n' \
  -- "${SRUN[@]}" --hold /bin/bash "$WD/exit3.sh"
ids interactive-held

# 4-7. Each signal while waiting, and a typed ^C: srun cancels the job itself. Slurm 22.05's srun sometimes
# (here about one time in five) stays blocked in slurm_allocate_resources_blocking after cancelling: a second
# signal 3 s later ends it (the .steps file says whether it was needed).
for how in SIGINT SIGTERM SIGHUP ctrlc; do
  name="interactive-$(echo "$how" | tr 'A-Z' 'a-z')"
  if [ "$how" = ctrlc ]; then step='send:\x03'; else step="signal:$how"; fi
  tty "$name" "$QUEUED" "$step" wait@3 "$step" -- "${SRUN[@]}" --hold /bin/bash "$WD/exit3.sh"
  ids "$name"
  squeue_of "$name-squeue" "$(id_of "$name")"
done

# 8. scancel from outside while srun waits.
tty interactive-scancel-waiting "$QUEUED" "run:$AS_USER_SH scancel {id}" \
  -- "${SRUN[@]}" --hold /bin/bash "$WD/exit3.sh"
ids interactive-scancel-waiting

# 9. A typed ^C while the job's command runs: srun sends it to the job's terminal.
tty interactive-ctrlc-running 'expect:ready\r\n' 'send:\x03' 'expect:sleep ended with status' \
  -- "${SRUN[@]}" /bin/bash "$WD/ctrlc.sh"

cp "$WD/exit3.sh" "$OUT/interactive-exit3.sh.txt"
cp "$WD/ctrlc.sh" "$OUT/interactive-ctrlc.sh.txt"
rm -rf "$WD"
log "done: $OUT/interactive-*"
