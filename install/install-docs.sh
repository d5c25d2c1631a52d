#!/usr/bin/env bash
# Installs qxub's manual page and shell completions under a prefix, generated from the given qxub itself,
# so they match its commands and options (install.sh calls this; the tests call it with the debug build).
#
#   bash install/install-docs.sh PREFIX QXUB GENERATE_MANUAL
#
# Installs:
#   PREFIX/share/man/man1/qxub.1            `man qxub` (man finds it through PREFIX/bin on PATH)
#   PREFIX/share/bash-completion/completions/{qxub,qx}
#   PREFIX/share/zsh/site-functions/{_qxub,_qx}
#   PREFIX/share/fish/vendor_completions.d/{qxub,qx}.fish
#   PREFIX/share/qxub/platforms/*.yaml      the shipped platform definitions (nci_gadi.yaml), to copy
# GENERATE_MANUAL is swift-argument-parser's generate-manual tool (the tool of its generate-manual plugin),
# run directly on the built qxub: the plugin would build every product of the package first.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: install-docs.sh PREFIX QXUB GENERATE_MANUAL" >&2; exit 64; }
prefix=$1 qxub=$2 generate_manual=$3
here=$(cd "$(dirname "$0")" && pwd)
install -d "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
  "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
# A fixed date: the page changes only when the commands do.
"$generate_manual" "$qxub" --date 2026-01-01 --output-directory "$prefix/share/man/man1"
"$qxub" --generate-completion-script bash > "$prefix/share/bash-completion/completions/qxub"
"$qxub" --generate-completion-script zsh > "$prefix/share/zsh/site-functions/_qxub"
"$qxub" --generate-completion-script fish > "$prefix/share/fish/vendor_completions.d/qxub.fish"
# The shipped platform definitions, for users to copy (hints point here).
install -d "$prefix/share/qxub/platforms"
install -m 0644 "$here/../docs/platforms/"*.yaml "$prefix/share/qxub/platforms/"
# `qx` is `qxub exec`: its completions are qxub's, with `qx` read as `qxub exec`.
install -m 0644 "$here/completions/qx.bash" "$prefix/share/bash-completion/completions/qx"
install -m 0644 "$here/completions/_qx" "$prefix/share/zsh/site-functions/_qx"
install -m 0644 "$here/completions/qx.fish" "$prefix/share/fish/vendor_completions.d/qx.fish"
