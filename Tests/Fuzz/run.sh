#!/usr/bin/env bash
# Fuzzes the protocol decoders with libFuzzer for a bounded time.
#   Tests/Fuzz/run.sh [SECONDS]    (default 60; the test command runs it for 30)
# Builds QxubProtocol's sources together with the target using `swiftc -sanitize=fuzzer,address`.
# A crash leaves its input in fuzz-out/ and makes this script fail; replay it with
#   fuzz-out/frame-decoder-fuzz fuzz-out/crash-<hash>
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/fuzz-out"
mkdir -p "$out/corpus"
cd "$root"
# Never fuzz a binary left by an earlier build of other code.
rm -f "$out/frame-decoder-fuzz"
if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
  -module-name QxubProtocol -emit-executable \
  -I Sources/CZlib -lz \
  Sources/QxubProtocol/*.swift Tests/Fuzz/FrameDecoderFuzz.swift \
  -o "$out/frame-decoder-fuzz" > "$out/build.log" 2>&1; then
  grep -v 'warning:' "$out/build.log" >&2 || true
  echo "fuzz: build failed" >&2
  exit 1
fi
# Seed the corpus with a real opening (magic + hello + ping) so the fuzzer starts past the magic.
printf '\x00\x89QXUB\r\n\x1a\x00\x00\x00\x08\x01\x00\x00\x00\x00\x00\x08\x01\x10\x01\x28\x80\x80\x40\x00\x00\x00\x02\x03\x00\x00\x00\x00\x00\x08\x05' > "$out/corpus/seed-opening"
echo "fuzz: running for ${seconds}s"
"$out/frame-decoder-fuzz" "$out/corpus" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" -print_final_stats=1 2>&1 | tail -n 12
