#!/usr/bin/env bash
# Builds and installs qxub and the static qxub-agent.
#
#   bash install/install.sh [--prefix DIR]      (default: ~/.local)
#
# Installs:
#   DIR/bin/qxub                           the command-line tool
#   DIR/bin/qx                             a link: `qx ARGS` is `qxub exec ARGS`
#   DIR/bin/qxi, qxet, qxtat               links: `qxub interactive`, `qxub exec`, `qxub status`
#   DIR/libexec/qxub/qxub-agent            the static agent, run as a local child on this machine and
#                                          sent to clusters by `qxub agent install`
#   DIR/libexec/qxub/qxub-shim             the remote bootstrap sent with it
#   DIR/share/{bash-completion,zsh,fish}/  shell completions (qxub and qx)
#   DIR/share/man/man1/qxub.1              the manual page: `man qxub`
#   DIR/share/qxub/platforms/              the shipped platform definitions (nci_gadi.yaml), to copy
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="${HOME}/.local"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install: unknown option $1 (try --prefix DIR)" >&2; exit 64 ;;
  esac
done
cd "$root"
missing=()
for package in zlib1g-dev libsqlite3-dev; do
  command -v dpkg-query >/dev/null 2>&1 || break
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: installing the build's system libraries: ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}"
fi
bash install/build-agent.sh
# The Swift runtime and Foundation linked in: qxub starts in half the time (no dynamic loading of
# Foundation and ICU) and keeps working if the Swift toolchain moves or goes (docs/performance.md).
# A position-dependent executable: the 96 MB qxub has about 88,000 relative relocations, which a PIE applies at
# every start (1.6 ms and 240 page faults of a 4.7 ms `qxub --version`; docs/performance.md). The shared
# libraries, stack and heap keep their address randomisation. QXUB_PIE=1 builds a PIE.
link=(-Xlinker -no-pie)
[ "${QXUB_PIE:-0}" = 1 ] && link=()
echo "install: swift build -c release --static-swift-stdlib ${link[*]} --product qxub"
swift build -c release --static-swift-stdlib "${link[@]}" --product qxub
[ -x .build/release/qxub ] || { echo "install: the build produced no .build/release/qxub" >&2; exit 1; }
install -d "$prefix/bin" "$prefix/libexec/qxub"
install -s -m 0755 .build/release/qxub "$prefix/bin/qxub"
ln -sf qxub "$prefix/bin/qx"   # `qx ARGS` = `qxub exec ARGS`
ln -sf qxub "$prefix/bin/qxi"  # `qxi ARGS` = `qxub interactive ARGS`
ln -sf qxub "$prefix/bin/qxet"   # `qxet ARGS` = `qxub exec ARGS` (the Python qxub's name)
ln -sf qxub "$prefix/bin/qxtat"  # `qxtat ARGS` = `qxub status ARGS` (the Python qxub's name)
install -m 0755 .build-static/qxub-agent "$prefix/libexec/qxub/qxub-agent"
install -m 0644 shim/qxub-shim "$prefix/libexec/qxub/qxub-shim"
# The manual page and shell completions, generated from qxub's own command definitions.
echo "install: swift build -c release --product generate-manual"
swift build -c release --product generate-manual
bash install/install-docs.sh "$prefix" "$prefix/bin/qxub" .build/release/generate-manual
echo "install: installed $prefix/bin/qxub (and qx, qxi, qxet, qxtat), $prefix/libexec/qxub/qxub-agent, shell completions, man qxub"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: add $prefix/bin to your PATH: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
