#!/usr/bin/env bash
# Fuzzes with libFuzzer for a bounded time, split between two targets:
#   frame-decoder-fuzz   the preamble scanner, frame decoder and message decoding (QxubProtocol)
#   agent-request-fuzz   the agent's request handling in process (AgentSession + JobService), past decoding
#   Tests/Fuzz/run.sh [SECONDS]    (default 60 in total; the test command runs it for 30)
# Builds our modules with `swiftc -sanitize=fuzzer,address`. A crash leaves its input in fuzz-out/ and
# makes this script fail; replay it with fuzz-out/<target> fuzz-out/crash-<hash>
set -euo pipefail
seconds=${1:-60}
half=$(( (seconds + 1) / 2 ))
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/fuzz-out"
mkdir -p "$out/corpus" "$out/agent-corpus" "$out/modules"
cd "$root"
flags=(-sanitize=fuzzer,address -parse-as-library -O -g -package-name qxub -I Sources/CZlib -I "$out/modules")
# Never fuzz a binary left by an earlier build of other code.
rm -f "$out/frame-decoder-fuzz" "$out/agent-request-fuzz"
build() {  # build NAME ARGS...: compile, showing only errors on failure
  if ! swiftc "${flags[@]}" "${@:2}" > "$out/build-$1.log" 2>&1; then
    grep -v 'warning:' "$out/build-$1.log" >&2 || true
    echo "fuzz: build of $1 failed" >&2
    exit 1
  fi
}
build frame-decoder -module-name QxubProtocol -emit-executable -lz \
  Sources/QxubProtocol/*.swift Tests/Fuzz/FrameDecoderFuzz.swift -o "$out/frame-decoder-fuzz"
# The agent's modules as objects (one module each, as SwiftPM builds them), then the target over them.
modules=(QxubProtocol QxubSystem QxubScheduler QxubAgent)
objects=()
for module in "${modules[@]}"; do
  objects+=("$out/modules/$module.o")
  build "$module" -module-name "$module" -wmo -emit-module -emit-module-path "$out/modules/$module.swiftmodule" \
    -emit-object -o "$out/modules/$module.o" Sources/"$module"/*.swift
done
build agent-request -module-name AgentRequestFuzz -emit-executable -lz Tests/Fuzz/AgentRequestFuzz.swift \
  "${objects[@]}" -o "$out/agent-request-fuzz"
# Seed the corpora: a real opening (magic + hello + ping) so the decoder fuzzer starts past the magic; a
# watch of the job on record, a status query and a history query for the agent fuzzer (type, channel,
# length, payload each).
printf '\x00\x89QXUB\r\n\x1a\x00\x00\x00\x08\x01\x00\x00\x00\x00\x00\x08\x01\x10\x01\x28\x80\x80\x40\x00\x00\x00\x02\x03\x00\x00\x00\x00\x00\x08\x05' > "$out/corpus/seed-opening"
printf '\x12\x01\x10\x08\x07\x12\x0alocal-fuzz\x18\x00\x16\x00\x0e\x08\x01\x12\x0alocal-fuzz\x18\x00\x04\x08\x01\x10\x05\x02\x00\x02\x08\x05' > "$out/agent-corpus/seed-requests"
# The agent's sessions and event loops live as long as the process in the real agent: cycles among them
# are not leaks worth reporting here.
export ASAN_OPTIONS=detect_leaks=0
export QXUB_FUZZ_STATE_DIR="$out/agent-state"
rm -rf "$QXUB_FUZZ_STATE_DIR"
echo "fuzz: frame decoder for ${half}s"
"$out/frame-decoder-fuzz" "$out/corpus" -max_total_time="$half" -max_len=4096 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" -print_final_stats=1 2>&1 | tail -n 12
echo "fuzz: agent request handling for ${half}s"
"$out/agent-request-fuzz" "$out/agent-corpus" -max_total_time="$half" -max_len=4096 -rss_limit_mb=2048 \
  -detect_leaks=0 -artifact_prefix="$out/" -print_final_stats=1 2>&1 | tail -n 12
