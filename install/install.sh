#!/usr/bin/env bash
# Builds and installs qxub and the static qxub-agent.
#
#   bash install/install.sh [--prefix DIR]      (default: ~/.local)
#
# Installs:
#   DIR/bin/qxub                           the command-line tool
#   DIR/bin/qx                             a link: `qx ARGS` is `qxub exec ARGS`
#   DIR/libexec/qxub/qxub-agent            the static agent, run as a local child on this machine and
#                                          sent to clusters by `qxub agent install`
#   DIR/libexec/qxub/qxub-shim             the remote bootstrap sent with it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="${HOME}/.local"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install: unknown option $1 (try --prefix DIR)" >&2; exit 64 ;;
  esac
done
cd "$root"
if ! dpkg-query -W -f='${Status}' zlib1g-dev 2>/dev/null | grep -q 'install ok installed'; then
  if command -v dpkg-query >/dev/null 2>&1; then
    echo "install: zlib1g-dev is missing; installing it" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq zlib1g-dev
  fi
fi
bash install/build-agent.sh
echo "install: swift build -c release --product qxub"
swift build -c release --product qxub
[ -x .build/release/qxub ] || { echo "install: the build produced no .build/release/qxub" >&2; exit 1; }
install -d "$prefix/bin" "$prefix/libexec/qxub"
install -m 0755 .build/release/qxub "$prefix/bin/qxub"
ln -sf qxub "$prefix/bin/qx"   # `qx ARGS` = `qxub exec ARGS`
install -m 0755 .build-static/qxub-agent "$prefix/libexec/qxub/qxub-agent"
install -m 0644 shim/qxub-shim "$prefix/libexec/qxub/qxub-shim"
echo "install: installed $prefix/bin/qxub and $prefix/libexec/qxub/qxub-agent"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: add $prefix/bin to your PATH: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
