#!/usr/bin/env bash
# (Re)records Tests/Fixtures/pbs-real from the real OpenPBS that Tests/Support/openpbs.sh runs.
#
#   sudo bash Tests/Support/pbs-emulator/record.sh [OUTDIR]    # default Tests/Fixtures/pbs-real
#
# Needs root (the PBS commands run in the server's network namespace as its unprivileged user) and a
# running server (`Tests/Support/openpbs.sh start`; this script never starts or stops it). The server
# may be shared: everything runs under `flock /tmp/qxub-openpbs.lock`, and job_history_enable is set
# back to True before the lock is released, whatever happens.
#
# Every file is the exact bytes one command printed (nothing is normalised): NAME.stdout, NAME.stderr,
# NAME.rc (decimal exit status + newline) for commands, NAME.txt for a copy of a file. ids.txt maps the
# scenario names to the job ids of this recording. Tests/Fixtures/pbs-real/README.md lists them all.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
OPENPBS="$REPO/Tests/Support/openpbs.sh"
OUT="${1:-$REPO/Tests/Fixtures/pbs-real}"
LOCK=/tmp/qxub-openpbs.lock

die() { printf 'record.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'record.sh: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (ip netns exec, runuser)"
eval "$(bash "$OPENPBS" env)"
bash "$OPENPBS" status || die "the OpenPBS server is not up (Tests/Support/openpbs.sh start)"
mkdir -p "$OUT"

exec 9>>"$LOCK"
log "waiting for $LOCK"
flock -w 900 9 || die "timed out waiting for $LOCK"
WD_NAME=fx-real
WD="$QXUB_PBS_HOME/$WD_NAME"
restore() {
  # Release whatever is still blocked on a FIFO, history back on (others rely on it), then the lock.
  for f in "$WD"/fifo*; do [ -p "$f" ] && timeout 2 cat "$f" >/dev/null 2>&1 || true; done
  bash "$OPENPBS" history on >/dev/null 2>&1 || log "could not set job_history_enable back to True"
}
trap restore EXIT

# A command as the test user, clean environment, in ~/fx-real (like the original recording's
# `env -i ... bash -c "cd /scratch/a1 && CMD"`). EXTRA_PATH prepends to PATH (the submitter's PATH).
u() {
  ip netns exec "$QXUB_PBS_NETNS" runuser -u "$QXUB_PBS_USER" -- env -i HOME="$QXUB_PBS_HOME" \
    USER="$QXUB_PBS_USER" LOGNAME="$QXUB_PBS_USER" SHELL=/bin/bash LANG=C.UTF-8 \
    PATH="${EXTRA_PATH:+$EXTRA_PATH:}$QXUB_PBS_PATH:/usr/local/bin:/usr/bin:/bin" \
    bash -c "cd ~/$WD_NAME && $1"
}
# rec NAME CMD: NAME.stdout / .stderr / .rc of CMD as the test user.
rec() {
  local rc=0
  u "$2" >"$OUT/$1.stdout" 2>"$OUT/$1.stderr" || rc=$?
  echo "$rc" >"$OUT/$1.rc"
  log "$1: $2 -> rc $rc"
}
state() { # ID: "job_state substate" from qstat -f (works for queued/running/exiting jobs in both modes)
  u "qstat -f '$1' 2>/dev/null" | awk '/^    job_state = /{s=$3} /^    substate = /{ss=$3} END{print s" "ss}'
}
wait_state() { # ID "STATE SUBSTATE" (a prefix, e.g. "R 42" or "E")
  local i
  for i in $(seq 1 240); do
    case "$(state "$1")" in "$2"*) return 0 ;; esac
    sleep 0.25
  done
  die "$1 never reached state $2 (last: $(state "$1"))"
}
wait_gone() { # ID: until qstat (no -x) no longer knows it
  local i
  for i in $(seq 1 240); do
    u "qstat '$1'" >/dev/null 2>&1 || return 0
    sleep 0.25
  done
  die "$1 did not finish"
}
wait_file() { # PATH (in the test user's home)
  local i
  for i in $(seq 1 240); do
    [ -f "$1" ] && return 0
    sleep 0.25
  done
  die "$1 never appeared"
}
ids() { printf '%s=%s\n' "$1" "$2" >>"$OUT/ids.txt"; log "$1 = $2"; }

log "recording into $OUT (server $QXUB_PBS_SERVER, user $QXUB_PBS_USER, work dir $WD)"
rm -rf "$WD"
ip netns exec "$QXUB_PBS_NETNS" runuser -u "$QXUB_PBS_USER" -- mkdir -p "$WD"
rm -f "$OUT"/*.stdout "$OUT"/*.stderr "$OUT"/*.rc "$OUT"/*.txt
: >"$OUT/ids.txt"

# Job scripts, as in the first recording (Tests/Fixtures/pbs/README.md).
u "printf '%s\n' '#PBS -N fx-running' '#PBS -l walltime=00:05:00' '#PBS -j oe' 'sleep 60' >running.pbs"
u "printf '%s\n' '#PBS -N fx-ok' '#PBS -l walltime=00:05:00' '#PBS -j oe' '#PBS -o fx-ok.log' 'echo hello' 'exit 0' >ok.pbs"
u "printf '%s\n' '#PBS -N fx-walltime' '#PBS -l walltime=00:00:03' '#PBS -j oe' 'echo sleeping past the limit' 'sleep 30' >walltime.pbs"
u "printf '%s\n' '#PBS -N fx-env' '#PBS -l walltime=00:05:00' 'env | sort' >env.pbs"

# ---------------------------------------------------------------------------------------------------
# (a) job_history_enable = False
bash "$OPENPBS" history off
rec hoff-qstat-Bf "qstat -Bf"
running=$(u "qsub running.pbs"); ids hoff_running "$running"
walltime=$(u "qsub walltime.pbs"); ids hoff_walltime "$walltime"
ok=$(u "qsub ok.pbs"); ids hoff_ok "$ok"
wait_state "$running" "R 42"
sleep 2   # a resources_used sample, like the first recording's running job
rec hoff-qstat-f-running "qstat -f $running"
rec hoff-qstat-f-json-running "qstat -f -F json $running"
rec hoff-qstat-xf-running "qstat -xf $running"
rec hoff-qstat-xf-json-running "qstat -xf -F json $running"
rec hoff-qstat-x-running "qstat -x $running"
rec hoff-qstat-x-noargs "qstat -x"
wait_gone "$ok"
wait_file "$WD/fx-ok.log"
rec hoff-qstat-finished "qstat $ok"
rec hoff-qstat-f-finished "qstat -f $ok"
rec hoff-qstat-xf-finished "qstat -xf $ok"
rec hoff-qstat-xf-json-finished "qstat -xf -F json $ok"
rec hoff-qstat-f-running-finished "qstat -f $running $ok"
rec hoff-qstat-f-json-finished-running "qstat -f -F json $ok $running"
rec hoff-qdel-finished "qdel $ok"
cp "$WD/fx-ok.log" "$OUT/hoff-joboutput-ok.log.txt"
rec hoff-qdel-running "qdel $running"
wait_gone "$running"
rec hoff-qstat-f-qdeled "qstat -f $running"
wait_gone "$walltime"
seq_w=${walltime%%.*}
wait_file "$WD/fx-walltime.o$seq_w"
cp "$WD/fx-walltime.o$seq_w" "$OUT/hoff-joboutput-walltime.txt"
rec hoff-qstat-f-walltime-gone "qstat -f $walltime"
rec hoff-qstat-Bf-end "qstat -Bf"
bash "$OPENPBS" history on

# ---------------------------------------------------------------------------------------------------
# (b) a job in state E: its output is delivered (mom: cp, `$usecp`) to a FIFO, so the delivery blocks
# until we read the FIFO, and the server shows E (substate 51, stageout) as long as we like.
u "mkfifo fifo-exiting fifo-array"
exiting=$(u "qsub -N fx-exiting -j oe -o $WD/fifo-exiting -l walltime=00:05:00 -- /bin/sh -c 'echo exiting job output'")
ids exiting "$exiting"
wait_state "$exiting" "E"
sleep 1
rec qstat-f-exiting "qstat -f $exiting"
rec qdel-exiting "qdel $exiting"
rec qstat-f-exiting-after-qdel "qstat -f $exiting"
rec qdel-force-exiting "qdel -W force $exiting"
rec qstat-xf-exiting-after-force "qstat -xf $exiting"
timeout 20 cat "$WD/fifo-exiting" >"$OUT/joboutput-exiting-fifo.txt" || log "nothing read from fifo-exiting"
sleep 3
rec qstat-xf-exiting-end "qstat -xf $exiting"

# An array whose subjobs both deliver to one FIFO: subjob 1 blocks in E; qdel of the subjob and of the
# parent while it does.
array=$(u "qsub -N fx-arrexit -J 1-2 -j oe -o $WD/fifo-array -l walltime=00:05:00 -- /bin/sh -c 'echo subjob \$PBS_ARRAY_INDEX'")
ids array_exiting "$array"
sub1=${array/\[\]/[1]}
wait_state "$sub1" "E"
sleep 1
rec qstat-t-array-exiting "qstat -t '$array'"
rec qstat-f-array-subjob-exiting "qstat -f '$sub1'"
rec qdel-array-subjob-exiting "qdel '$sub1'"
rec qdel-array-parent-exiting "qdel '$array'"
rec qstat-xt-array-after-qdel "qstat -xt '$array'"
for _ in 1 2 3 4; do
  timeout 10 cat "$WD/fifo-array" >>"$OUT/joboutput-array-fifo.txt" || break
  sleep 1
  u "qstat '$array'" >/dev/null 2>&1 || break
done
sleep 3
rec qstat-xft-array-end "qstat -xf -t '$array'"

# ---------------------------------------------------------------------------------------------------
# (c) the job's environment when the submitter's PATH differs from the login files' PATH
cp "$QXUB_PBS_HOME/.qxub-pbs-env" "$OUT/login-qxub-pbs-env.txt"
cp "$QXUB_PBS_HOME/.bash_profile" "$OUT/login-bash_profile.txt"
env_id=$(EXTRA_PATH=/opt/submitter/bin u "qsub env.pbs"); ids env "$env_id"
seq_e=${env_id%%.*}
wait_gone "$env_id"
wait_file "$WD/fx-env.e$seq_e"
wait_file "$WD/fx-env.o$seq_e"
cp "$WD/fx-env.o$seq_e" "$OUT/job-env-login-path.txt"
cp "$WD/fx-env.e$seq_e" "$OUT/job-env-login-path.e.txt"
rec qstat-xf-env "qstat -xf $env_id"

log "done; job_history_enable is set back to True on exit"
