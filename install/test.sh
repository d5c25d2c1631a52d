#!/usr/bin/env bash
# The whole test suite, exactly as README.md gives it and as CI runs it:
#
#   bash install/test.sh
#
# 1. installs the Debian packages the tests need (install/test-deps.sh),
# 2. builds the static agent and checks it (install/build-agent.sh),
# 3. checks the house format (`swift format lint`, .swift-format) and the protocol document's independent
#    encoder (docs/examples/session.py --selftest, then a session and a job against the built static agent),
#    checks the PBS Pro emulator against the recorded OpenPBS output (Tests/Support/pbs-emulator/check.sh),
#    and fuzzes the protocol decoders and the agent's request handling for a bounded time, split between
#    them (Tests/Fuzz/run.sh),
# 4. runs the README's first command (install/quickstart.sh) into a temporary prefix,
# 5. runs `swift test` against the built binaries, the static agent included.
# Integration tests start their real components (sshd, Slurm) through Tests/Support/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash install/test-deps.sh
bash install/build-agent.sh
echo "test: the house format (swift format lint, .swift-format)"
swift format lint --strict -r -p Sources Tests Package.swift
echo "test: docs/examples/session.py, written from docs/protocol.md alone, against golden bytes and the static agent"
python3 docs/examples/session.py --selftest
python3 docs/examples/session.py .build-static/qxub-agent >/dev/null
python3 docs/examples/session.py --job .build-static/qxub-agent >/dev/null
echo "test: the PBS Pro emulator against the recorded OpenPBS output (Tests/Fixtures/pbs, Tests/Fixtures/pbs-real)"
bash Tests/Support/pbs-emulator/check.sh
echo "test: fuzzing the frame decoder and the agent's request handling for ${QXUB_FUZZ_SECONDS:-30}s in all"
bash Tests/Fuzz/run.sh "${QXUB_FUZZ_SECONDS:-30}"
echo "test: the README's first command, into a temporary prefix"
QXUB_PREFIX=$(mktemp -d) bash install/quickstart.sh
echo "test: swift build --build-tests"
swift build --build-tests
# The man page generator (swift-argument-parser's generate-manual), which the install tests run beside the
# built qxub: a product of a dependency, so --build-tests does not build it.
swift build --product generate-manual
export QXUB_TEST_AGENT="$root/.build-static/qxub-agent"
echo "test: swift test (agent under test: $QXUB_TEST_AGENT)"
swift test --skip-build
