#!/usr/bin/env bash
# Install the Debian packages qxub's test suite needs (Debian 12 / bookworm).
#
#   bash install/test-deps.sh            # as root, or as a user with passwordless sudo
#   bash install/test-deps.sh PKG...     # the same, plus extra packages (Tests/Support/openpbs.sh's build)
#
# Idempotent: every package is checked with `dpkg -s` first, so on a warm
# machine this does no network access and returns in well under a second.
# Only missing packages are installed (noninteractive, --no-install-recommends).
#
# Packages and why:
#   zlib1g-dev                 the protocol's compression (and the static agent)
#   libsqlite3-dev             the local job history (GRDB)
#   openssh-server/-client     Tests/Support/sshd.sh: real sshd on 127.0.0.1
#   tcsh                       a csh-family login shell for the ssh tests
#   slurmctld slurmd           Tests/Support/slurm.sh: real single-node Slurm
#   slurm-client munge
#   python3 procps             helpers (free-port probe, pgrep/pkill by pid file)
#   curl                       fetching platform definitions named by URL (qxub runs curl)
#
# Daemons are never started by the package install: a policy-rc.d that denies
# service starts is put in place for the duration of the install when the
# machine has none (containers/VMs without an init usually ship one already).
set -euo pipefail

PACKAGES=(
  zlib1g-dev
  libsqlite3-dev
  openssh-server
  openssh-client
  tcsh
  slurmctld
  slurmd
  slurm-client
  munge
  python3
  procps
  curl
)
PACKAGES+=("$@")

log() { printf 'test-deps: %s\n' "$*" >&2; }
die() { printf 'test-deps: error: %s\n' "$*" >&2; exit 1; }

missing=()
for p in "${PACKAGES[@]}"; do
  # "install ok installed" is the only status that means the package is usable.
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo; cannot install: ${missing[*]}"
  sudo -n true 2>/dev/null || die "not root and sudo needs a password; run as root: apt-get install ${missing[*]}"
  SUDO=(sudo -n)
fi

# Two scripts (slurm.sh, sshd.sh) may run this at once on a bare machine:
# serialize installs, then look again at what is still missing.
LOCK=/tmp/qxub-test-deps.lock
exec 9>>"$LOCK"
if command -v flock >/dev/null 2>&1; then
  flock -w 900 9 || die "timed out after 900 s waiting for another test-deps.sh ($LOCK)"
  still=()
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || still+=("$p")
  done
  if [ "${#still[@]}" -eq 0 ]; then
    log "installed meanwhile by another run: ${missing[*]}"
    exit 0
  fi
  missing=("${still[@]}")
fi

log "installing: ${missing[*]}"

# Keep apt from starting daemons (munged, slurmctld, sshd, ...) during install:
# the test scripts start their own private instances.
POLICY=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
  if [ "$added_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 0755 "$POLICY"
  added_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
          -o DPkg::Lock::Timeout=120)

# Refresh the package lists when they are missing or older than a day;
# a first try without refreshing would fail on a bare machine anyway.
lists_fresh=0
if [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  lists_fresh=1
fi
if [ "$lists_fresh" -eq 0 ]; then
  log "apt-get update"
  timeout 300 "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=120 update >&2 || die "apt-get update failed"
fi

if ! timeout 900 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${missing[@]}" >&2; then
  if [ "$lists_fresh" -eq 1 ]; then
    # Lists looked fresh but may point at superseded versions: refresh once and retry.
    log "install failed; refreshing package lists and retrying once"
    timeout 300 "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=120 update >&2 || die "apt-get update failed"
    timeout 900 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${missing[@]}" >&2 \
      || die "apt-get install failed: ${missing[*]}"
  else
    die "apt-get install failed: ${missing[*]}"
  fi
fi

for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' \
    || die "package $p still not installed after apt-get install"
  log "installed $p $(dpkg-query -W -f='${Version}' "$p")"
done
