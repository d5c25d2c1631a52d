# bash completion for `qx` (= `qxub exec`): qxub's own completion, with `qx` read as `qxub exec`.
# Installed next to qxub's completion (share/bash-completion/completions/qx), which it loads first.
if ! declare -F _qxub >/dev/null; then
    # shellcheck source=/dev/null
    [ -r "${BASH_SOURCE[0]%/*}/qxub" ] && source "${BASH_SOURCE[0]%/*}/qxub"
fi

_qx() {
    # qxub's completion asks the program in the first word for dynamic values (platforms, queues): the qxub
    # beside this qx (`qx` is a link to it).
    local qxub="${1%qx}qxub"
    local -a COMP_WORDS=("${qxub}" exec "${COMP_WORDS[@]:1}")
    local COMP_CWORD=$((COMP_CWORD + 1))
    local COMP_LINE="${qxub} exec${COMP_LINE#"${1}"}"
    local COMP_POINT=$((COMP_POINT + ${#qxub} + 5 - ${#1}))
    _qxub "${qxub}" "${2}" "${3}"
}
complete -o filenames -F _qx qx
