#!/usr/bin/env bash
# (Re)records the interactive-* files of Tests/Fixtures/pbs-real: what `qsub -I ... -- CMD` prints on its
# terminal, and what SIGINT, SIGTERM, SIGHUP, a typed ^C and a qdel from outside do while it waits.
#
#   sudo bash Tests/Support/pbs-emulator/record-interactive.sh [OUTDIR]    # default Tests/Fixtures/pbs-real
#
# Needs root and a running server (`Tests/Support/openpbs.sh start`), like record.sh, and takes the same
# lock. Jobs are made to wait with a user hold (`qsub -h`, released with `qrls`): nothing else on the
# shared server is touched. About 2.5 minutes: two scenarios wait for qsub's own timers (its 30 s check
# that the job still exists, its 60 s limit for answering its question).
#
# Each qsub runs on a new pseudo-terminal (Tests/Support/ptyscript.py) as the test user, clean
# environment, through `setpriv` (which execs: qsub itself leads the terminal's session and gets the
# signals). NAME.tty is the exact bytes of that terminal, NAME.tty.rc qsub's exit status (128+N for a
# signal), NAME.tty.steps what was done when. NAME.stdout/.stderr/.rc are other commands, as in record.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
OPENPBS="$REPO/Tests/Support/openpbs.sh"
PTY="$REPO/Tests/Support/ptyscript.py"
OUT="${1:-$REPO/Tests/Fixtures/pbs-real}"
LOCK=/tmp/qxub-openpbs.lock

die() { printf 'record-interactive.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'record-interactive.sh: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (ip netns exec, setpriv)"
eval "$(bash "$OPENPBS" env)"
bash "$OPENPBS" status || die "the OpenPBS server is not up (Tests/Support/openpbs.sh start)"
mkdir -p "$OUT"
exec 9>>"$LOCK"
log "waiting for $LOCK"
flock -w 900 9 || die "timed out waiting for $LOCK"

WD="$QXUB_PBS_HOME/fx-interactive"
rm -rf "$WD" && mkdir -p "$WD"
# The jobs' commands (the keeper runs qxub's wrapper the same way: /bin/bash SCRIPT).
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
chown -R "$QXUB_PBS_USER:$QXUB_PBS_USER" "$WD"

# argv prefix: a command as the test user in the server's namespace, clean environment.
AS_USER=(ip netns exec "$QXUB_PBS_NETNS" setpriv --reuid "$QXUB_PBS_USER" --regid "$QXUB_PBS_USER" --init-groups
  env -i HOME="$QXUB_PBS_HOME" USER="$QXUB_PBS_USER" LOGNAME="$QXUB_PBS_USER" SHELL=/bin/bash LANG=C.UTF-8
  TERM=xterm PATH="$QXUB_PBS_PATH:/usr/local/bin:/usr/bin:/bin" PBS_CONF_FILE="$PBS_CONF_FILE")
# The same as one shell string, for ptyscript's run: steps.
AS_USER_SH="$(printf '%q ' "${AS_USER[@]}")"

# tty NAME STEP... -- ARGV: ARGV on a new terminal, in $WD.
tty() {
  local name="$1"
  shift
  (cd "$WD" && python3 "$PTY" "$OUT/$name.tty" "$@") || die "$name: the recording failed (see $OUT/$name.tty.steps)"
  log "$name: qsub exited $(cat "$OUT/$name.tty.rc")"
}
# rec NAME CMD: NAME.stdout / .stderr / .rc of CMD (a shell line) as the test user.
rec() {
  local rc=0
  "${AS_USER[@]}" bash -c "$2" >"$OUT/$1.stdout" 2>"$OUT/$1.stderr" || rc=$?
  echo "$rc" >"$OUT/$1.rc"
  log "$1: $2 -> rc $rc"
}
id_of() { sed -n 's/^qsub: waiting for job \([^ ]*\) to start.*/\1/p' "$OUT/$1.tty" | head -1 | tr -d '\r'; }
: >"$OUT/interactive-ids.txt"
ids() { printf '%s=%s\n' "$1" "$(id_of "$1")" >>"$OUT/interactive-ids.txt"; }
WAITING='expect:qsub: waiting for job (?P<id>\S+) to start\r\n'
# A signal that arrives while qsub is still writing that line makes its handler's printf write the line
# again (stdio is not reentrant; interactive-sigint-reentrant.tty): signals wait until qsub has settled.
SETTLE=wait@1
QSUB=("${AS_USER[@]}" qsub -I -N fx-ix)

# 1. A job that runs at once: its command prints and exits 3; qsub exits 0 all the same.
tty interactive-exit3 "$WAITING" 'expect:completed\r\n' -- "${QSUB[@]}" -- /bin/bash "$WD/exit3.sh"
ids interactive-exit3

# 2. A held job, released: nothing more is printed while it waits.
tty interactive-held "$WAITING" "run:$AS_USER_SH qrls {id}" 'expect:completed\r\n' \
  -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-held

# 3. SIGINT while waiting: qsub asks; y deletes the job and exits 0.
tty interactive-sigint-yes "$WAITING" $SETTLE signal:SIGINT 'expect:\(y\|\[n\]\)\? ' 'send:y\r' \
  -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-sigint-yes
rec interactive-sigint-yes-qstat "qstat -f $(id_of interactive-sigint-yes)"

# 4. SIGTERM while waiting: the same question; n goes on waiting (the job then runs when released).
tty interactive-sigterm-no "$WAITING" $SETTLE signal:SIGTERM 'expect:\(y\|\[n\]\)\? ' 'send:n\r' \
  'expect:\r\n' "run:$AS_USER_SH qrls {id}" 'expect:completed\r\n' \
  -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-sigterm-no

# 5. A typed ^C (the terminal's SIGINT to its foreground group), then end of input (^D): deleted.
tty interactive-ctrlc-eof "$WAITING" $SETTLE 'send:\x03' 'expect:\(y\|\[n\]\)\? ' 'send:\x04' \
  -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-ctrlc-eof
rec interactive-ctrlc-eof-qstat "qstat -f $(id_of interactive-ctrlc-eof)"

# 6. SIGHUP while waiting (the terminal hangs up): qsub dies at once, the job stays queued.
tty interactive-sighup "$WAITING" $SETTLE signal:SIGHUP -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-sighup
rec interactive-sighup-qstat "qstat -f $(id_of interactive-sighup)"
rec interactive-sighup-qdel "qdel $(id_of interactive-sighup)"

# 7. qdel from outside while qsub waits: qsub notices at its next 30 s check.
tty interactive-qdel-waiting "$WAITING" "run:$AS_USER_SH qdel {id}" 'expect@45:apparently deleted' \
  -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-qdel-waiting

# 8. SIGINT and no answer: qsub deletes the job after 60 s.
tty interactive-sigint-timeout "$WAITING" $SETTLE signal:SIGINT 'expect:\(y\|\[n\]\)\? ' 'expect@75:deleting job' \
  -- "${QSUB[@]}" -h -- /bin/bash "$WD/exit3.sh"
ids interactive-sigint-timeout
rec interactive-sigint-timeout-qstat "qstat -f $(id_of interactive-sigint-timeout)"

# 9. A typed ^C while the job's command runs: it reaches the job's terminal, not qsub.
tty interactive-ctrlc-running "$WAITING" 'expect:\nready\r\n' 'send:\x03' 'expect:completed\r\n' \
  -- "${QSUB[@]}" -- /bin/bash "$WD/ctrlc.sh"
ids interactive-ctrlc-running

# 10. No terminal: refused before anything is submitted.
rec interactive-notty "cd ~/fx-interactive && qsub -I -N fx-ix -- /bin/bash $WD/exit3.sh </dev/null"

cp "$WD/exit3.sh" "$OUT/interactive-exit3.sh.txt"
cp "$WD/ctrlc.sh" "$OUT/interactive-ctrlc.sh.txt"
rm -rf "$WD"
log "done: $OUT/interactive-*"
