# fish completion for `qx` (= `qxub exec`): qxub's own, with `qx` read as `qxub exec`.
complete -c qx -w 'qxub exec'
