#!/usr/bin/env bash
# A real single-node OpenPBS (built from source) for qxub's integration tests, in a private
# network namespace, with an unprivileged test user.
#
#   Tests/Support/openpbs.sh start    # install packages, build once (cached), start, wait until a job runs
#   Tests/Support/openpbs.sh status   # exit 0 only when the server answers and the node is free
#   Tests/Support/openpbs.sh env      # print export lines for `eval`
#   Tests/Support/openpbs.sh history on|off   # qmgr: set server job_history_enable
#   Tests/Support/openpbs.sh stop     # stop the daemons, PostgreSQL and every job
#   Tests/Support/openpbs.sh available  # exit 0 when the source tarball is found (the lane can run)
#
# The source: $OPENPBS_SOURCE (a tarball of the public openpbs/openpbs repository), else the one in
# ../shared/vendor/openpbs beside the repository. The lane is skipped when neither exists.
#
# Build cache, outside the clone (every CI run is a fresh clone):
#   ${QXUB_OPENPBS_CACHE:-/var/cache/qxub-openpbs}/<sha256 of the tarball>/   PBS_EXEC (the installed tree)
# A cold build takes about 9 minutes on 2 CPUs; later starts take seconds.
#
# State, created here from nothing (this machine may hold leftovers of hand runs: they are not used):
#   /var/spool/qxub-openpbs/pbs.conf   PBS_CONF_FILE (also compiled into the binaries)
#   /var/spool/qxub-openpbs/home       PBS_HOME (not under a world-writable directory: the mom refuses that)
#   /var/spool/qxub-openpbs/run        the subreaper's pid file and log
#   netns qxubpbs, lo 10.77.0.1/32     PBS refuses loopback addresses for its server and TPP transport;
#   /etc/netns/qxubpbs/hosts           maps this machine's host name to 10.77.0.1 inside the namespace
#   user qxubpbs (home /var/lib/qxub-openpbs-home/qxubpbs)   root cannot run PBS jobs
#
# Every PBS command and every process that talks to the server runs inside the namespace:
#   eval "$(Tests/Support/openpbs.sh env)"
#   ip netns exec "$QXUB_PBS_NETNS" runuser -u "$QXUB_PBS_USER" -- env PATH="$QXUB_PBS_PATH:$PATH" qstat -B
#
# The daemons run under a child subreaper (Tests/Support/subreaper.py): this machine's PID 1 reaps
# orphans late, and the mom counts a killed job's <defunct> processes as alive (qdel then takes 6-13 s).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SUPPORT="$(dirname "$SELF")"
REPO_ROOT="$(cd "$SUPPORT/../.." && pwd)"

NETNS=qxubpbs
ADDRESS=10.77.0.1
STATE=/var/spool/qxub-openpbs
CONF="$STATE/pbs.conf"
PBS_HOME_DIR="$STATE/home"
RUNDIR="$STATE/run"
TEST_USER=qxubpbs
TEST_HOME_ROOT=/var/lib/qxub-openpbs-home
TEST_HOME="$TEST_HOME_ROOT/$TEST_USER"
CACHE_ROOT="${QXUB_OPENPBS_CACHE:-/var/cache/qxub-openpbs}"
START_TIMEOUT="${QXUB_PBS_START_TIMEOUT:-120}"

BUILD_PACKAGES=(gcc g++ make libtool autoconf automake pkg-config perl swig python3 python3-dev libhwloc-dev
  libx11-dev libxt-dev libxext-dev libxft-dev libedit-dev libical-dev libncurses-dev tcl-dev tk-dev libexpat1-dev
  libssl-dev libcjson-dev zlib1g-dev postgresql postgresql-contrib postgresql-server-dev-all expat libedit2 tcl tk
  libical3 iproute2 util-linux procps)

log() { printf 'openpbs.sh: %s\n' "$*" >&2; }
die() { printf 'openpbs.sh: error: %s\n' "$*" >&2; exit 1; }

source_tarball() {
  if [ -n "${OPENPBS_SOURCE:-}" ]; then
    [ -f "$OPENPBS_SOURCE" ] || die "OPENPBS_SOURCE=$OPENPBS_SOURCE is not a file"
    echo "$OPENPBS_SOURCE"; return 0
  fi
  local t
  for t in "$REPO_ROOT"/../shared/vendor/openpbs/openpbs-*.tar.gz; do
    [ -f "$t" ] && { (cd "$(dirname "$t")" && echo "$(pwd)/$(basename "$t")"); return 0; }
  done
  return 1
}

host_name() { hostname; }

sha_of() { sha256sum "$1" | cut -c1-64; }

exec_dir() { echo "$CACHE_ROOT/$(sha_of "$(source_tarball)")"; }

in_ns() { ip netns exec "$NETNS" env PBS_CONF_FILE="$CONF" "$@"; }

# PBS commands as root inside the namespace, bounded.
pbs_root() { local x; x="$(exec_dir)"; in_ns timeout 30 "$x/bin/$1" "${@:2}"; }

install_packages() {
  bash "$REPO_ROOT/install/test-deps.sh" "${BUILD_PACKAGES[@]}"
}

build() {
  local tarball sha exec_d work
  tarball="$(source_tarball)" || die "no OpenPBS source: set OPENPBS_SOURCE or put the tarball in ../shared/vendor/openpbs"
  sha="$(sha_of "$tarball")"
  exec_d="$CACHE_ROOT/$sha"
  mkdir -p "$CACHE_ROOT"
  if [ -f "$exec_d/.qxub-built" ]; then
    log "cached build: $exec_d"
    return 0
  fi
  # One build at a time; the lock's descriptor is closed when the build ends, so that the daemons started
  # later do not inherit (and hold) it.
  exec 8>>"$CACHE_ROOT/.lock"
  flock -w 3600 8 || die "timed out waiting for another build ($CACHE_ROOT/.lock)"
  if [ -f "$exec_d/.qxub-built" ]; then
    exec 8>&-
    log "cached build (built meanwhile by another run): $exec_d"
    return 0
  fi
  log "building OpenPBS from $tarball (sha256 $sha) into $exec_d: about 9 minutes on 2 CPUs"
  local started=$SECONDS
  work="$CACHE_ROOT/build-$sha"
  rm -rf "$work" "$exec_d"
  mkdir -p "$work"
  tar -xzf "$tarball" -C "$work" --strip-components=1
  (
    cd "$work"
    # A pyenv or conda python first on PATH would be linked in, and the test user cannot read it.
    export PATH=/usr/sbin:/usr/bin:/sbin:/bin
    export CFLAGS="-O1 -w"
    ./autogen.sh >"$work/autogen.log" 2>&1 || { tail -30 "$work/autogen.log" >&2; exit 1; }
    ./configure --prefix="$exec_d" --libexecdir="$exec_d/libexec" --with-pbs-conf-file="$CONF" \
      --with-python=/usr >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log" >&2; exit 1; }
    make -j2 >"$work/make.log" 2>&1 || { tail -60 "$work/make.log" >&2; exit 1; }
    make install >"$work/install.log" 2>&1 || { tail -40 "$work/install.log" >&2; exit 1; }
  ) || die "the OpenPBS build failed (logs in $work)"
  chmod 4755 "$exec_d/sbin/pbs_iff" "$exec_d/sbin/pbs_rcp"
  touch "$exec_d/.qxub-built"
  rm -rf "$work"
  exec 8>&-
  log "built in $((SECONDS - started)) s"
}

make_namespace() {
  if ! ip netns list | grep -qw "^$NETNS"; then
    ip netns add "$NETNS"
  fi
  ip netns exec "$NETNS" ip link set lo up
  ip netns exec "$NETNS" ip addr add "$ADDRESS/32" dev lo 2>/dev/null || true
  mkdir -p "/etc/netns/$NETNS"
  printf '127.0.0.1 localhost\n%s %s\n' "$ADDRESS" "$(host_name)" >"/etc/netns/$NETNS/hosts"
}

make_user() {
  mkdir -p "$TEST_HOME_ROOT"
  chmod 0755 "$TEST_HOME_ROOT"
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd --home-dir "$TEST_HOME" --no-create-home --shell /bin/bash --user-group "$TEST_USER" \
      || die "useradd $TEST_USER failed"
  fi
  mkdir -p "$TEST_HOME"
  chown "$TEST_USER:" "$TEST_HOME"
  chmod 0755 "$TEST_HOME"
  # The login environment of the test user: the PBS commands on PATH (sshd sessions in the namespace
  # and jobs both read it).
  local x; x="$(exec_dir)"
  printf 'export PATH=%s/bin:/usr/local/bin:/usr/bin:/bin\nexport PBS_CONF_FILE=%s\n' "$x" "$CONF" \
    >"$TEST_HOME/.qxub-pbs-env"
  for f in .bashrc .profile .bash_profile; do
    if ! grep -qs 'qxub-pbs-env' "$TEST_HOME/$f"; then
      printf '[ -f ~/.qxub-pbs-env ] && . ~/.qxub-pbs-env\n' >>"$TEST_HOME/$f"
    fi
  done
  chown "$TEST_USER:" "$TEST_HOME"/.qxub-pbs-env "$TEST_HOME"/.bashrc "$TEST_HOME"/.profile "$TEST_HOME"/.bash_profile
}

write_conf() {
  local x; x="$(exec_dir)"
  mkdir -p "$STATE" "$RUNDIR"
  chmod 0755 "$STATE"
  cat >"$CONF" <<EOF
PBS_EXEC=$x
PBS_HOME=$PBS_HOME_DIR
PBS_SERVER=$(host_name)
PBS_START_SERVER=1
PBS_START_SCHED=1
PBS_START_COMM=1
PBS_START_MOM=1
PBS_SCP=/usr/bin/scp
PBS_RSHCOMMAND=/usr/bin/ssh
EOF
}

configure_mom() {
  local cfg="$PBS_HOME_DIR/mom_priv/config"
  [ -f "$cfg" ] || return 0
  if ! grep -q '^\$usecp' "$cfg"; then
    # Deliver job logs with cp, not scp; poll often so walltime is enforced within seconds.
    printf '$clienthost %s\n$usecp *:/ /\n$min_check_poll 1\n$max_check_poll 2\n' "$(host_name)" >>"$cfg"
    return 1   # changed: the mom must be told
  fi
  return 0
}

daemons_up() {
  pbs_root qstat -B >/dev/null 2>&1
}

run_as_user() { # command...
  local x; x="$(exec_dir)"
  in_ns runuser -u "$TEST_USER" -- env -i HOME="$TEST_HOME" USER="$TEST_USER" LOGNAME="$TEST_USER" \
    SHELL=/bin/bash LANG=C.UTF-8 PBS_CONF_FILE="$CONF" PATH="$x/bin:/usr/local/bin:/usr/bin:/bin" \
    bash -c "cd ~ && $*"
}

start_daemons() {
  local x; x="$(exec_dir)"
  local reaper_pid="$RUNDIR/subreaper.pid"
  if [ -s "$reaper_pid" ] && kill -0 "$(cat "$reaper_pid")" 2>/dev/null && daemons_up; then
    log "already running"
    return 0
  fi
  # /usr/bin/python3: the daemons must not inherit a pyenv or conda PATH.
  in_ns env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PBS_CONF_FILE="$CONF" LANG=C.UTF-8 \
    setsid /usr/bin/python3 "$SUPPORT/subreaper.py" "$reaper_pid" -- "$x/libexec/pbs_init.d" start \
    >"$RUNDIR/start.log" 2>&1 </dev/null 8>&- &
  local deadline=$((SECONDS + START_TIMEOUT))
  until daemons_up; do
    [ $SECONDS -lt $deadline ] || { tail -40 "$RUNDIR/start.log" >&2; die "the PBS server did not answer within ${START_TIMEOUT}s"; }
    sleep 0.5
  done
}

first_time_setup() {
  local h; h="$(host_name)"
  local marker="$PBS_HOME_DIR/.qxub-configured"
  if configure_mom; then :; else
    # The mom reads its config at start and on HUP.
    local mompid; mompid="$(cat "$PBS_HOME_DIR/mom_priv/mom.lock" 2>/dev/null || true)"
    [ -n "$mompid" ] && kill -HUP "$mompid" 2>/dev/null || true
  fi
  [ -f "$marker" ] && return 0
  log "configuring the server: node $h (8 cpus), queue normal, resources storage and jobfs"
  pbs_root qmgr -c "create node $h" 2>/dev/null || true
  pbs_root qmgr -c "set node $h resources_available.ncpus=8"
  pbs_root qmgr -c "set server flatuid=True"
  pbs_root qmgr -c "create resource storage type=string,flag=h" 2>/dev/null || true
  pbs_root qmgr -c "create resource jobfs type=size,flag=h" 2>/dev/null || true
  if ! pbs_root qmgr -c "list queue normal" >/dev/null 2>&1; then
    pbs_root qmgr -c "create queue normal queue_type=execution"
  fi
  pbs_root qmgr -c "set queue normal enabled=True"
  pbs_root qmgr -c "set queue normal started=True"
  pbs_root qmgr -c "set server default_queue=normal"
  pbs_root qmgr -c "set server scheduler_iteration=2"
  pbs_root qmgr -c "set server job_history_enable=True"
  touch "$marker"
}

probe_job() {
  local deadline=$((SECONDS + START_TIMEOUT)) id out
  id="$(run_as_user "echo 'echo probe-ok' | qsub -j oe -o ~/probe.out -N probe -l walltime=00:01:00")" \
    || die "qsub of the probe job failed"
  log "probe job $id"
  while :; do
    out="$(cat "$TEST_HOME/probe.out" 2>/dev/null || true)"
    [ "$out" = probe-ok ] && break
    [ $SECONDS -lt $deadline ] || { pbs_root pbsnodes -a >&2 || true; die "the probe job $id did not run within ${START_TIMEOUT}s"; }
    sleep 0.3
  done
  rm -f "$TEST_HOME/probe.out"
}

cmd_start() {
  [ "$(id -u)" -eq 0 ] || die "needs root (namespace, users, setuid PBS programs)"
  source_tarball >/dev/null || die "no OpenPBS source: set OPENPBS_SOURCE or put the tarball in ../shared/vendor/openpbs"
  install_packages
  build
  make_namespace
  write_conf
  make_user
  start_daemons
  first_time_setup
  probe_job
  write_envfile
  log "OpenPBS is up in netns $NETNS (server $(host_name), user $TEST_USER)"
}

write_envfile() {
  cmd_env >"$STATE/env.sh"
}

cmd_env() {
  local x; x="$(exec_dir)"
  printf 'export QXUB_PBS_NETNS=%q\n' "$NETNS"
  printf 'export QXUB_PBS_USER=%q\n' "$TEST_USER"
  printf 'export QXUB_PBS_HOME=%q\n' "$TEST_HOME"
  printf 'export QXUB_PBS_SERVER=%q\n' "$(host_name)"
  printf 'export QXUB_PBS_ADDRESS=%q\n' "$ADDRESS"
  printf 'export QXUB_PBS_PATH=%q\n' "$x/bin"
  printf 'export QXUB_PBS_EXEC=%q\n' "$x"
  printf 'export PBS_CONF_FILE=%q\n' "$CONF"
  # For `eval` in a shell: the PBS commands first on PATH (run them with `ip netns exec`).
  printf 'export PATH=%q:"$PATH"\n' "$x/bin"
}

cmd_status() {
  [ -s "$RUNDIR/subreaper.pid" ] && kill -0 "$(cat "$RUNDIR/subreaper.pid")" 2>/dev/null || return 1
  daemons_up || return 1
  pbs_root pbsnodes "$(host_name)" 2>/dev/null | grep -Eq 'state = (free|job-busy)'
}

cmd_history() { # on|off
  case "${1:-}" in
    on) pbs_root qmgr -c "set server job_history_enable=True" ;;
    off) pbs_root qmgr -c "set server job_history_enable=False" ;;
    *) die "usage: $0 history on|off" ;;
  esac
}

cmd_stop() {
  local x
  x="$(exec_dir 2>/dev/null)" || x=""
  if [ -n "$x" ] && [ -f "$CONF" ] && ip netns list | grep -qw "^$NETNS"; then
    # Jobs first (qdel -W force), then the daemons.
    pbs_root qdel -W force -x $(pbs_root qselect 2>/dev/null) >/dev/null 2>&1 || true
    in_ns timeout 60 "$x/libexec/pbs_init.d" stop >"$RUNDIR/stop.log" 2>&1 || true
  fi
  local lock pid
  for lock in server_priv/server.lock sched_priv/sched.lock server_priv/comm.lock mom_priv/mom.lock; do
    pid="$(cat "$PBS_HOME_DIR/$lock" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null || true
  done
  # PostgreSQL of the data service (its postmaster.pid's first line).
  pid="$(head -n1 "$PBS_HOME_DIR/datastore/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -TERM "$pid" 2>/dev/null || true
  pid="$(cat "$RUNDIR/subreaper.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -TERM "$pid" 2>/dev/null || true
  # Whatever of the test user is still running (jobs, agents).
  pkill -KILL -u "$TEST_USER" 2>/dev/null || true
  rm -f "$RUNDIR/subreaper.pid"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  history) cmd_history "${2:-}" ;;
  available) source_tarball >/dev/null ;;
  build) [ "$(id -u)" -eq 0 ] || die "needs root"; install_packages; build ;;
  *)
    echo "usage: $0 start|stop|status|env|history on|off|available|build" >&2
    exit 2
    ;;
esac
