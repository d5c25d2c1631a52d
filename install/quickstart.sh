#!/usr/bin/env bash
# A newcomer's first command: build, install into ~/.local, and run a first job on the built-in local
# backend (no scheduler needed).
#
#   bash install/quickstart.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/install/install.sh" --prefix "${QXUB_PREFIX:-$HOME/.local}"
qxub="${QXUB_PREFIX:-$HOME/.local}/bin/qxub"
echo
echo "quickstart: running a first job on the local backend: $qxub exec --backend local -- 'echo \"hello from \$(hostname)\"; echo to stderr >&2; exit 3'"
set +e
"$qxub" exec --backend local -- 'echo "hello from $(hostname)"; echo to stderr >&2; exit 3'
status=$?
set -e
echo "quickstart: the job's exit code came back as qxub's: $status"
[ "$status" -eq 3 ] || { echo "quickstart: expected 3" >&2; exit 1; }
