#!/usr/bin/env bash
# Builds the fully static qxub-agent and checks what a login node needs of it:
#   - `ldd` says "not a dynamic executable" (runs on any glibc, however old),
#   - at most 9 MB stripped (raised from 8 MB for issue 13: arrays and job resource records grow the agent;
#     1 MB more is under a second of `qxub agent install` on a 10 Mbit/s link, once per cluster),
#   - runs with an empty environment (`env -i`).
#
#   bash install/build-agent.sh          # result: .build-static/qxub-agent (stripped)
#
# There is no musl SDK here: `-static-executable` works because the agent imports only Glibc, zlib and
# our own Foundation-free modules (no Foundation, no ArgumentParser, no NSS lookups).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
max_bytes=9000000

# -static-executable comes from Package.swift (the agent is linked statically in every build).
echo "build-agent: swift build -c release --product qxub-agent -Osize"
# The linker warns that libswiftCore could dlopen; the agent never loads anything at run time.
set +o pipefail
swift build -c release --product qxub-agent --scratch-path .build-static -Xswiftc -Osize 2>&1 \
  | grep -v -e "Using 'dlopen' in statically linked" -e '^\['
status=${PIPESTATUS[0]}
set -o pipefail
[ "$status" -eq 0 ] || { echo "build-agent: the build failed (status $status)" >&2; exit 1; }
built=.build-static/release/qxub-agent
[ -x "$built" ] || { echo "build-agent: the build produced no $built" >&2; exit 1; }
strip -o .build-static/qxub-agent "$built"
agent=.build-static/qxub-agent

kind=$(ldd "$agent" 2>&1 || true)
case "$kind" in
  *"not a dynamic executable"*) ;;
  *) echo "build-agent: $agent is not static; ldd says:" >&2; echo "$kind" >&2; exit 1 ;;
esac
size=$(stat -c %s "$agent")
if [ "$size" -gt "$max_bytes" ]; then
  echo "build-agent: $agent is $size bytes stripped, over the $max_bytes limit" >&2
  exit 1
fi
version=$(env -i "$agent" --version) || { echo "build-agent: $agent does not run under env -i" >&2; exit 1; }
# The remote bootstrap travels with the agent (qxub agent install sends both).
cp shim/qxub-shim .build-static/qxub-shim
echo "build-agent: ok: $agent, $size bytes stripped, static, env -i: $version"
