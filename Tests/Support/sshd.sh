#!/usr/bin/env bash
# A real OpenSSH sshd on 127.0.0.1 for qxub's end-to-end tests
# ("qxub runs its agent on the cluster through one ssh pipe").
#
#   Tests/Support/sshd.sh start    # install packages if needed, start, wait until both hosts log in
#   Tests/Support/sshd.sh status   # exit 0 only when sshd runs and `ssh qxub-bash true` works
#   Tests/Support/sshd.sh env      # print export lines for `eval`
#   Tests/Support/sshd.sh stop     # kill sshd and every session it started
#
# Tests then do:
#   eval "$(Tests/Support/sshd.sh env)"
#   ssh -F "$QXUB_TEST_SSH_CONFIG" qxub-bash 'echo $0'    # a bash login
#   ssh -F "$QXUB_TEST_SSH_CONFIG" qxub-tcsh 'echo $0'    # a tcsh login
#
# State lives in ${QXUB_SSHD_DIR:-/tmp/qxub-sshd}:
#   ssh_host_ed25519_key(.pub)  the server's host key (kept across restarts)
#   id_ed25519(.pub)            the client key, no passphrase (kept across restarts)
#   authorized_keys/<user>      AuthorizedKeysFile (%u), each holding the client key
#   known_hosts                 the host key, under HostKeyAlias qxub-test-sshd (port-independent)
#   sshd_config ssh_config      server config; client config for `ssh -F`
#   sshd.log sshd.pid port      -E log, PidFile, the port in use
#   env.sh                      the same export lines `env` prints
#
# As root (CI): two test users are created if missing, each with a home under
# ${QXUB_SSHD_HOMES:-/tmp/qxub-homes} (mode 0755, owned by the user):
#   qxubbash  login shell /bin/bash      -> Host qxub-bash
#   qxubtcsh  login shell tcsh           -> Host qxub-tcsh
#
# Without root: run it the same way as a normal user (the packages must already
# be installed, e.g. by `sudo install/test-deps.sh`). sshd then runs as you on a
# free port and can only log *you* in, so what differs is:
#   - there is one user: both qxub-bash and qxub-tcsh log in as you, into your
#     real $HOME, with your real login shell (so the "tcsh" host is only tcsh if
#     your login shell is tcsh; tests that need a csh-family shell must check
#     QXUB_TEST_SSH_TCSH_SHELL from `env` and skip otherwise);
#   - no users are created and QXUB_SSHD_HOMES is ignored.
#
# More instances (each with its own QXUB_SSHD_DIR) can run side by side. As root, give each its own users
# and homes (QXUB_SSHD_USER_PREFIX, QXUB_SSHD_HOMES): tests wipe the homes of the users they log in as.
#   QXUB_SSHD_USER_PREFIX=P     users Pbash and Ptcsh instead of qxubbash and qxubtcsh
#   QXUB_SSHD_LIMITS=default    leave MaxSessions and MaxStartups at sshd's defaults (10 and 10:30:100), as
#                               on a cluster; the default, `raised`, lets many tests open connections at once
#   QXUB_SSHD_MAX_SESSIONS=N    MaxSessions N (0: sshd refuses every session, while a master still connects)
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SELF")/../.." && pwd)"

DIR="${QXUB_SSHD_DIR:-/tmp/qxub-sshd}"
HOMES="${QXUB_SSHD_HOMES:-/tmp/qxub-homes}"
SSHD_CONFIG="$DIR/sshd_config"
SSH_CONFIG="$DIR/ssh_config"
ENVFILE="$DIR/env.sh"
PIDFILE="$DIR/sshd.pid"
LOGFILE="$DIR/sshd.log"
PORTFILE="$DIR/port"
HOSTKEY="$DIR/ssh_host_ed25519_key"
CLIENTKEY="$DIR/id_ed25519"
KNOWN_HOSTS="$DIR/known_hosts"
HOST_ALIAS=qxub-test-sshd
START_TIMEOUT="${QXUB_SSHD_START_TIMEOUT:-30}"
SSHD_BIN=/usr/sbin/sshd   # sshd re-executes itself, so it must be started by absolute path

USER_PREFIX="${QXUB_SSHD_USER_PREFIX:-qxub}"
[[ "$USER_PREFIX" =~ ^[a-z][a-z0-9]{0,20}$ ]] || { echo "sshd.sh: error: bad QXUB_SSHD_USER_PREFIX" >&2; exit 1; }
BASH_USER="${USER_PREFIX}bash"
TCSH_USER="${USER_PREFIX}tcsh"
LIMITS="${QXUB_SSHD_LIMITS:-raised}"
MAX_SESSIONS="${QXUB_SSHD_MAX_SESSIONS:-}"

log() { printf 'sshd.sh: %s\n' "$*" >&2; }
die() { printf 'sshd.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

tcsh_path() {
  local p
  for p in /usr/bin/tcsh /bin/tcsh; do [ -x "$p" ] && { echo "$p"; return 0; }; done
  command -v tcsh 2>/dev/null || return 1
}

# Fill BASH_USER/TCSH_USER, their homes and shells for the current mode.
resolve_users() {
  if is_root; then
    BASH_HOME="$HOMES/$BASH_USER"; BASH_SHELL=/bin/bash
    TCSH_HOME="$HOMES/$TCSH_USER"; TCSH_SHELL="$(tcsh_path || echo /usr/bin/tcsh)"
  else
    local me shell home
    me="$(id -un)"
    home="$(getent passwd "$me" | cut -d: -f6)"; home="${home:-$HOME}"
    shell="$(getent passwd "$me" | cut -d: -f7)"; shell="${shell:-/bin/sh}"
    BASH_USER="$me"; BASH_HOME="$home"; BASH_SHELL="$shell"
    TCSH_USER="$me"; TCSH_HOME="$home"; TCSH_SHELL="$shell"
  fi
}

alive() { # pid: exists and is not a zombie
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

sshd_pid() { # prints the listener's pid if it is running
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && echo "$pid"
}

free_port() {
  python3 - "$@" <<'EOF'
import socket, sys
# Prefer the port used last time (stable across restarts) when it is free.
for p in sys.argv[1:]:
    try:
        s = socket.socket(); s.bind(("127.0.0.1", int(p))); s.close(); print(p); sys.exit(0)
    except (OSError, ValueError):
        pass
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

descendants() {
  local -a queue=("$@") out=()
  local p c
  while [ "${#queue[@]}" -gt 0 ]; do
    p="${queue[0]}"; queue=("${queue[@]:1}")
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do out+=("$c"); queue+=("$c"); done
  done
  [ "${#out[@]}" -eq 0 ] || printf '%s\n' "${out[@]}"
}

# Processes of this instance that outlived the listener: per-connection sshd
# processes (they keep the -E log file open) and the users' session processes
# (their SSH_CONNECTION ends in our port).
leftover_pids() {
  local d pid comm fd port
  port="$(cat "$PORTFILE" 2>/dev/null || true)"
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [ "$pid" = "$$" ] && continue
    comm="$(cat "$d/comm" 2>/dev/null || true)"
    if [ "$comm" = sshd ]; then
      for fd in "$d"/fd/*; do
        case "$(readlink "$fd" 2>/dev/null || true)" in
          "$DIR"/*) echo "$pid"; break ;;
        esac
      done
    elif [ -n "$port" ]; then
      if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qE "^SSH_CONNECTION=.* 127\.0\.0\.1 ${port}\$"; then
        echo "$pid"
      fi
    fi
  done
}

do_stop() {
  local -a pids=()
  local pid
  pid="$(sshd_pid || true)"
  if [ -n "$pid" ]; then
    mapfile -t pids < <({ echo "$pid"; descendants "$pid"; leftover_pids; } | sort -un)
  else
    mapfile -t pids < <(leftover_pids | sort -un)
  fi
  if [ "${#pids[@]}" -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local any
    for _ in $(seq 1 50); do   # 5 s
      any=0
      for pid in "${pids[@]}"; do alive "$pid" && any=1; done
      [ "$any" -eq 0 ] && break
      sleep 0.1
    done
    for pid in "${pids[@]}"; do
      if alive "$pid"; then
        log "pid $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo '?')) ignored SIGTERM for 5 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  fi
  rm -f "$PIDFILE"
}

ensure_user() { # user home shell
  local user="$1" home="$2" shell="$3"
  if ! getent passwd "$user" >/dev/null; then
    useradd --home-dir "$home" --no-create-home --shell "$shell" --user-group "$user" \
      || die "useradd $user failed"
    log "created user $user (home $home, shell $shell)"
  else
    local cur_home cur_shell
    cur_home="$(getent passwd "$user" | cut -d: -f6)"
    cur_shell="$(getent passwd "$user" | cut -d: -f7)"
    [ "$cur_home" = "$home" ] || usermod --home "$home" "$user"
    [ "$cur_shell" = "$shell" ] || usermod --shell "$shell" "$user"
  fi
  # useradd leaves the password "!" (locked); without PAM, sshd refuses locked
  # accounts even for public keys. "*" = no password, but not locked.
  case "$(getent shadow "$user" | cut -d: -f2)" in
    '!'*) usermod --password '*' "$user" ;;
  esac
  mkdir -p "$home"
  chown "$user:$(id -gn "$user")" "$home"
  chmod 0755 "$home"
}

write_env() {
  printf 'export QXUB_TEST_SSH_CONFIG=%q\n' "$SSH_CONFIG"
  printf 'export QXUB_SSHD_DIR=%q\n' "$DIR"
  printf 'export QXUB_TEST_SSH_PORT=%q\n' "$(cat "$PORTFILE" 2>/dev/null || true)"
  printf 'export QXUB_TEST_SSH_BASH_HOST=qxub-bash\n'
  printf 'export QXUB_TEST_SSH_BASH_USER=%q\n' "$BASH_USER"
  printf 'export QXUB_TEST_SSH_BASH_HOME=%q\n' "$BASH_HOME"
  printf 'export QXUB_TEST_SSH_BASH_SHELL=%q\n' "$BASH_SHELL"
  printf 'export QXUB_TEST_SSH_TCSH_HOST=qxub-tcsh\n'
  printf 'export QXUB_TEST_SSH_TCSH_USER=%q\n' "$TCSH_USER"
  printf 'export QXUB_TEST_SSH_TCSH_HOME=%q\n' "$TCSH_HOME"
  printf 'export QXUB_TEST_SSH_TCSH_SHELL=%q\n' "$TCSH_SHELL"
}

ssh_ok() { # host
  if [ "$MAX_SESSIONS" = 0 ]; then
    # No session may run: log in without one (a master, as qxub opens), then close it.
    local probe="$DIR/probe-$$.sock" ok=1
    timeout 15 ssh -F "$SSH_CONFIG" -o ConnectTimeout=5 -o ControlMaster=yes -o ControlPath="$probe" -f -N "$1" \
      </dev/null >/dev/null 2>&1 || ok=0
    ssh -F "$SSH_CONFIG" -o ControlPath="$probe" -O exit "$1" >/dev/null 2>&1 || true
    rm -f "$probe"
    [ "$ok" = 1 ]
    return
  fi
  timeout 15 ssh -F "$SSH_CONFIG" -o ConnectTimeout=5 "$1" true </dev/null >/dev/null 2>&1
}

is_up() {
  [ -n "$(sshd_pid || true)" ] && [ -f "$SSH_CONFIG" ] && ssh_ok qxub-bash
}

limit_lines() { # sshd's MaxSessions and MaxStartups for this instance
  case "$LIMITS" in
    raised) [ -n "$MAX_SESSIONS" ] || echo "MaxSessions 10"; echo "MaxStartups 100:30:200" ;;
    default) echo "# MaxSessions and MaxStartups: sshd's defaults (QXUB_SSHD_LIMITS=default)" ;;
    *) die "QXUB_SSHD_LIMITS must be raised or default, not $LIMITS" ;;
  esac
  if [ -n "$MAX_SESSIONS" ]; then
    [[ "$MAX_SESSIONS" =~ ^[0-9]+$ ]] || die "QXUB_SSHD_MAX_SESSIONS must be a number"
    echo "MaxSessions $MAX_SESSIONS"
  fi
}

write_configs() {
  local port="$1" host_pub client_pub
  host_pub="$(cut -d' ' -f1,2 "$HOSTKEY.pub")"
  client_pub="$(cat "$CLIENTKEY.pub")"

  mkdir -p "$DIR/authorized_keys"
  chmod 0755 "$DIR/authorized_keys"
  rm -f "$DIR/authorized_keys/"*
  local u
  for u in $(printf '%s\n' "$BASH_USER" "$TCSH_USER" | sort -u); do
    printf '%s\n' "$client_pub" >"$DIR/authorized_keys/$u"
    chmod 0644 "$DIR/authorized_keys/$u"   # sshd reads it as the user
  done

  local allow root_login=no
  allow="$(printf '%s\n' "$BASH_USER" "$TCSH_USER" | sort -u | tr '\n' ' ')"
  [ "$BASH_USER" = root ] && root_login=prohibit-password
  cat >"$SSHD_CONFIG" <<EOF
# Generated by $SELF -- rewritten on every start.
ListenAddress 127.0.0.1
Port $port
HostKey $HOSTKEY
PidFile $PIDFILE
AuthorizedKeysFile $DIR/authorized_keys/%u
AllowUsers $allow
PermitRootLogin $root_login
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
StrictModes no
$(limit_lines)
LoginGraceTime 30
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding yes
PermitUserEnvironment no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF

  printf '%s %s\n' "$HOST_ALIAS" "$host_pub" >"$KNOWN_HOSTS"

  {
    printf '# Generated by %s -- rewritten on every start.\n' "$SELF"
    printf '# Use: ssh -F %s qxub-bash|qxub-tcsh CMD\n' "$SSH_CONFIG"
    local h user
    for h in qxub-bash qxub-tcsh; do
      if [ "$h" = qxub-bash ]; then user="$BASH_USER"; else user="$TCSH_USER"; fi
      cat <<EOF
Host $h
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $CLIENTKEY
  IdentitiesOnly yes
  IdentityAgent none
  HostKeyAlias $HOST_ALIAS
  UserKnownHostsFile $KNOWN_HOSTS
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  CheckHostIP no
  UpdateHostKeys no
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR
EOF
    done
  } >"$SSH_CONFIG"
  chmod 0644 "$SSH_CONFIG" "$SSHD_CONFIG" "$KNOWN_HOSTS"
}

do_start() {
  resolve_users
  if is_up; then
    log "already running on port $(cat "$PORTFILE") ($SSH_CONFIG)"
    write_env >"$ENVFILE"
    return 0
  fi

  bash "$REPO_ROOT/install/test-deps.sh"
  for b in "$SSHD_BIN" ssh ssh-keygen python3; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found (install openssh-server openssh-client python3)"
  done
  if is_root; then
    TCSH_SHELL="$(tcsh_path)" || die "tcsh not found after installing packages"
  fi

  do_stop   # a half-started or crashed instance

  local t0=$SECONDS
  mkdir -p "$DIR"
  chmod 0755 "$DIR"   # test users must reach authorized_keys/ through it

  if is_root; then
    mkdir -p "$HOMES"; chmod 0755 "$HOMES"
    ensure_user "$BASH_USER" "$BASH_HOME" "$BASH_SHELL"
    ensure_user "$TCSH_USER" "$TCSH_HOME" "$TCSH_SHELL"
    # sshd's privilege separation directory (normally made by systemd's unit).
    mkdir -p /run/sshd; chmod 0755 /run/sshd
  fi

  if [ ! -s "$HOSTKEY" ] || [ ! -s "$HOSTKEY.pub" ]; then
    rm -f "$HOSTKEY" "$HOSTKEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C qxub-test-sshd-host -f "$HOSTKEY" || die "ssh-keygen (host key) failed"
  fi
  if [ ! -s "$CLIENTKEY" ] || [ ! -s "$CLIENTKEY.pub" ]; then
    rm -f "$CLIENTKEY" "$CLIENTKEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C qxub-test-client -f "$CLIENTKEY" || die "ssh-keygen (client key) failed"
  fi
  chmod 0600 "$HOSTKEY" "$CLIENTKEY"

  local port
  port="$(free_port "$(cat "$PORTFILE" 2>/dev/null || true)")"
  echo "$port" >"$PORTFILE"
  write_configs "$port"
  write_env >"$ENVFILE"

  local err
  if ! err="$("$SSHD_BIN" -t -f "$SSHD_CONFIG" 2>&1)"; then
    die "sshd rejects $SSHD_CONFIG: $err"
  fi

  : >"$LOGFILE"
  if ! timeout 15 "$SSHD_BIN" -f "$SSHD_CONFIG" -E "$LOGFILE"; then
    log "sshd failed to start"; tail -n 40 "$LOGFILE" >&2 || true
    do_stop; exit 1
  fi

  local deadline=$((t0 + START_TIMEOUT)) h
  for h in qxub-bash qxub-tcsh; do
    until ssh_ok "$h"; do
      if [ "$SECONDS" -ge "$deadline" ] || [ -z "$(sshd_pid || true)" ]; then
        log "ssh -F $SSH_CONFIG $h true does not work after $((SECONDS - t0))s; the client says:"
        timeout 15 ssh -F "$SSH_CONFIG" -o ConnectTimeout=5 -o LogLevel=VERBOSE "$h" true </dev/null >&2 || true
        printf '\n===== tail -n 40 %s =====\n' "$LOGFILE" >&2
        tail -n 40 "$LOGFILE" >&2 || true
        do_stop; exit 1
      fi
      sleep 0.2
    done
  done
  log "up in $((SECONDS - t0))s on 127.0.0.1:$port (pid $(sshd_pid)); ssh -F $SSH_CONFIG qxub-bash|qxub-tcsh"
}

case "${1:-}" in
  start)  do_start ;;
  stop)   do_stop; log "stopped" ;;
  status)
    resolve_users
    if is_up; then echo "sshd: up (127.0.0.1:$(cat "$PORTFILE"), $SSH_CONFIG)"; exit 0; fi
    echo "sshd: down"; exit 1 ;;
  env)
    resolve_users
    [ -f "$SSH_CONFIG" ] || die "no $SSH_CONFIG: run '$SELF start' first"
    write_env ;;
  *)
    echo "usage: $0 start|stop|status|env   (state in \$QXUB_SSHD_DIR, default /tmp/qxub-sshd)" >&2
    exit 2 ;;
esac
