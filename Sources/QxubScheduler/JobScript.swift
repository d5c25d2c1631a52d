import QxubProtocol
import QxubSystem

/// A job script and the command that submits it.
package struct RenderedSubmission: Hashable, Sendable {
    /// The whole script, directives first.
    package var script: String
    /// The submission argv; the script path is the last argument (empty for the local backend).
    package var command: [String]
    /// Options this scheduler cannot honour, said to the user rather than dropped in silence.
    package var warnings: [String] = []

    package init(script: String, command: [String], warnings: [String] = []) {
        self.script = script
        self.command = command
        self.warnings = warnings
    }
}

/// Renders the bash job script for one scheduler.
///
/// Every user value goes through ``shellQuote(_:)``. Directive values must be plain (letters, digits and
/// `_.,:=+/@%-`); anything else (a path with a space, say) is passed on the submission command line as its
/// own argv element instead, where no parser can misread it.
package struct JobScript {
    package var spec: JobSpec
    package var paths: JobPaths
    package var kind: SchedulerKind

    package init(spec: JobSpec, paths: JobPaths, kind: SchedulerKind) {
        self.spec = spec
        self.paths = paths
        self.kind = kind
    }

    /// Checks what the script cannot carry safely; throws with a message that says what to change.
    ///
    /// An interactive job may have no command (the user's shell then runs) and cannot be an array.
    package func validate(interactive: Bool = false) throws(SchedulerError) {
        func reject(_ what: String, _ value: String) throws(SchedulerError) {
            if value.utf8.contains(0) || value.utf8.contains(0x0A) || value.utf8.contains(0x0D) {
                throw SchedulerError(
                    .malformedRequest,
                    "\(what) contains a line break or NUL byte: \(EscapedBytes(Array(value.utf8)))",
                    hint: "remove it"
                )
            }
        }
        try reject("the job name", spec.name)
        for (what, value) in [
            ("the queue", spec.queue), ("the project", spec.project), ("the array range", spec.array),
            ("the email address", spec.email), ("the email events", spec.emailEvents),
            ("the storage request", spec.resources.storage), ("the working directory", spec.workingDirectory),
            ("the stdout path", paths.stdout), ("the stderr path", paths.stderr), ("the job log path", paths.joblog),
        ] {
            if let value { try reject(what, value) }
        }
        for raw in spec.resources.raw { try reject("the resource request", raw) }
        for variable in spec.variables where !isShellIdentifier(variable.key) {
            throw SchedulerError(
                .malformedRequest,
                "--var \(variable.key)=…: \(EscapedBytes(Array(variable.key.utf8))) is not a valid variable name",
                hint: "use letters, digits and _, not starting with a digit"
            )
        }
        for variable in spec.variables where variable.key.hasPrefix("qxub_") || variable.key.hasPrefix("QXUB_") {
            // The job script's own variables (where its records go, the job's id) must not be overridden.
            throw SchedulerError(
                .malformedRequest,
                "--var \(variable.key)=…: names starting with qxub_ or QXUB_ belong to qxub's job script",
                hint: "choose another name"
            )
        }
        if kind == .pbspro, paths.joblog.contains(":") {
            // qsub -o reads HOST:PATH: a colon would send the job log to another host's path.
            throw SchedulerError(
                .malformedRequest,
                "the job log path \(paths.joblog) contains ':', which PBS reads as HOST:PATH",
                hint: "choose a --joblog path without ':'"
            )
        }
        if kind == .slurm, let raw = spec.resources.raw.first {
            throw SchedulerError(
                .malformedRequest,
                "-l \(raw): raw -l resources are PBS Pro syntax and this cluster runs Slurm",
                hint: "use --mem, --cpus, --time, --gpus or --disk"
            )
        }
        if kind == .local, let array = spec.array, ArrayRange(array) == nil {
            throw SchedulerError(
                .malformedRequest,
                "--array \(array): not an index range (at most \(ArrayRange.limit) indices)",
                hint: "give a range such as 1-10, 1-10:2 or 1,3,5"
            )
        }
        if interactive, spec.array != nil {
            throw SchedulerError(
                .malformedRequest,
                "an interactive job cannot be a job array",
                hint: "drop the array range, or use qxub batch"
            )
        }
        if !interactive, case .argv(let arguments) = spec.command, arguments.isEmpty {
            throw SchedulerError(.malformedRequest, "no command to run", hint: "put the command after --")
        }
    }

    package func render() throws(SchedulerError) -> RenderedSubmission {
        try validate()
        var directives: [String] = []
        var commandLine: [String] = []
        let prefix: String
        switch kind {
        case .pbspro: prefix = "#PBS"
        case .slurm: prefix = "#SBATCH"
        case .local: prefix = ""
        }
        // A directive when the value is plain, else the same option on the command line.
        for option in schedulerOptions(interactive: false) {
            if !option.value.isEmpty && option.value.utf8.allSatisfy(isDirectiveByte) {
                directives.append(
                    option.joined
                        ? "\(prefix) \(option.flag)=\(option.value)" : "\(prefix) \(option.flag) \(option.value)"
                )
            } else {
                commandLine += option.arguments
            }
        }
        var lines: [String] = ["#!/bin/bash"]
        lines += directives
        lines.append(
            "# Generated by qxub \(spec.clientVersion.isEmpty ? QxubVersion.current : spec.clientVersion) for the \(kind) backend. To rerun, run qxub again."
        )
        if !commandLine.isEmpty {
            lines.append(
                "# Also on the submission command line (values a directive cannot carry): \(commandLine.map(shellQuote).joined(separator: " "))"
            )
        }
        lines.append(contentsOf: body(.batch))
        let submission: [String]
        switch kind {
        case .pbspro: submission = ["qsub"] + commandLine + [paths.script]
        case .slurm: submission = ["sbatch", "--parsable"] + commandLine + [paths.script]
        case .local: submission = []
        }
        return RenderedSubmission(
            script: lines.joined(separator: "\n") + "\n",
            command: submission,
            warnings: ignoredOptions()
        )
    }

    /// One scheduler option: `-N name` (PBS) or `--job-name=name` (Slurm, `joined`).
    struct SchedulerOption {
        var flag: String
        var value: String
        var joined = false

        /// The option as argv elements of a command line.
        var arguments: [String] { joined ? ["\(flag)=\(value)"] : [flag, value] }
    }

    /// The job's requests as scheduler options, in one order for batch directives and interactive command lines.
    ///
    /// Batch-only options are left out of an interactive job: its output is the terminal, so no output path or
    /// join (PBS `-o`/`-j`, Slurm `--output`, which would take the terminal from `srun --pty`), no `-S` (the
    /// wrapper is named with its interpreter), and no array (``validate(interactive:)`` refuses one).
    func schedulerOptions(interactive: Bool) -> [SchedulerOption] {
        var options: [SchedulerOption] = []
        func option(_ flag: String, _ value: String, joined: Bool = false) {
            options.append(SchedulerOption(flag: flag, value: value, joined: joined))
        }
        let resources = spec.resources
        switch kind {
        case .pbspro:
            option("-N", spec.name)
            if let queue = spec.queue { option("-q", queue) }
            if let project = spec.project { option("-P", project) }
            if let walltime = resources.walltimeSeconds { option("-l", "walltime=" + clockTime(walltime)) }
            if let memory = resources.memoryBytes { option("-l", "mem=" + pbsSize(memory)) }
            if let cpus = resources.cpus { option("-l", "ncpus=\(cpus)") }
            if let gpus = resources.gpus { option("-l", "ngpus=\(gpus)") }
            if let disk = resources.localDiskBytes { option("-l", "jobfs=" + pbsSize(disk)) }
            if let storage = resources.storage { option("-l", "storage=" + storage) }
            for raw in resources.raw { option("-l", raw) }
            if !interactive, let array = spec.array { option("-J", array) }
            if let email = spec.email {
                option("-M", email)
                option("-m", spec.emailEvents ?? "ae")
            }
            if !interactive {
                option("-S", "/bin/bash")
                option("-j", "oe")
                option("-o", paths.joblog)
            }
        case .slurm:
            option("--job-name", spec.name, joined: true)
            if let queue = spec.queue { option("--partition", queue, joined: true) }
            if let project = spec.project { option("--account", project, joined: true) }
            if let walltime = resources.walltimeSeconds { option("--time", slurmTime(walltime), joined: true) }
            if let memory = resources.memoryBytes {
                option("--mem", "\(memory >> 20 + (memory & 0xFFFFF == 0 ? 0 : 1))M", joined: true)
            }
            if let cpus = resources.cpus { option("--cpus-per-task", "\(cpus)", joined: true) }
            if let gpus = resources.gpus { option("--gpus", "\(gpus)", joined: true) }
            if let disk = resources.localDiskBytes { option("--tmp", "\((disk + (1 << 20) - 1) >> 20)M", joined: true) }
            if !interactive, let array = spec.array { option("--array", array, joined: true) }
            if let email = spec.email {
                option("--mail-user", email, joined: true)
                option("--mail-type", slurmMailTypes(spec.emailEvents ?? "ae"), joined: true)
            }
            // sbatch expands %j, %x, %u... in --output; a literal % is written %%.
            if !interactive { option("--output", paths.joblog.replacingAll("%", with: "%%"), joined: true) }
        case .local:
            break
        }
        return options
    }

    func ignoredOptions() -> [String] {
        var ignored: [String] = []
        switch kind {
        case .slurm:
            if spec.resources.storage != nil {
                ignored.append("--storage is a PBS Pro (NCI) request; Slurm has no equivalent, so it was left out")
            }
        case .local:
            if spec.resources != JobSpec.Resources() {
                ignored.append("the local backend does not enforce resources (--mem, --cpus, --time, ...)")
            }
            if spec.queue != nil || spec.project != nil {
                ignored.append("the local backend has no queues or projects: -q/-P were ignored")
            }
            if spec.email != nil { ignored.append("the local backend sends no email: --email was ignored") }
        case .pbspro:
            break
        }
        return ignored
    }

    /// How the script runs: as a batch job (output in files) or on the terminal of an interactive job.
    enum Mode {
        case batch
        case interactive
    }

    /// The part after the directives: records, audit block, context, the command.
    ///
    /// Batch and interactive scripts share everything but where output goes. A batch script's own stdout is
    /// the job log (fd 3 keeps it) and the user's stdout and stderr go to their files. An interactive script's
    /// stdout and stderr are the terminal and stay so; it opens the job log as fd 3 itself for the audit block,
    /// and fd 4 keeps the terminal for the command's stderr while the script's own notices go to the job log.
    func body(_ mode: Mode) -> [String] {
        let state = shellQuote(paths.stateDirectory)
        var lines: [String] = []
        let idSource: String
        switch kind {
        case .pbspro: idSource = "${PBS_JOBID:-}"
        case .slurm: idSource = "${SLURM_JOB_ID:-}"
        case .local: idSource = "${QXUB_JOB_ID:-}"
        }
        lines += [
            "",
            "qxub_umask=$(umask)",
            "umask 077",
            "qxub_state=\(state)",
            "QXUB_JOB_ID=\(idSource)",
            "QXUB_JOB_DIR=$qxub_state",
            // Each subjob of an array keeps its own records and output files: <name>.<index>.
            spec.array == nil ? "qxub_suffix=" : "qxub_suffix=.${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}",
            "export QXUB_JOB_ID QXUB_JOB_DIR",
            "# Status records are written atomically (temporary file, then rename) for the agent to read.",
            // A record that cannot be written (a full disk, a quota) leaves an empty file named after it and its
            // first word (`exit.unwritable.1`): an empty file needs no data blocks, so the agent can still tell
            // "the job exited 1 but could not say so" from "killed from outside qxub".
            "qxub_record() { { (umask 077; printf '%s\\n' \"$2\" >\"$qxub_state/.$1$qxub_suffix.$$\") && mv -f \"$qxub_state/.$1$qxub_suffix.$$\" \"$qxub_state/$1$qxub_suffix\"; } || { rm -f \"$qxub_state/.$1$qxub_suffix.$$\"; (umask 077; : >\"$qxub_state/$1$qxub_suffix.unwritable.${2%% *}\"); }; }",
            "qxub_fail() {",
            "  qxub_code=$1; shift",
            "  printf 'qxub: %s\\n' \"$*\" >&2",
            "  printf 'qxub: %s\\n' \"$*\" >&3",
            "  qxub_record exit \"$qxub_code $(date +%s) setup\"",
            "  exit \"$qxub_code\"",
            "}",
            "qxub_host=$(hostname 2>/dev/null || uname -n)",
            // A scheduler ends a job with SIGTERM first (walltime, qdel, scancel). The script outlives it long
            // enough to record that it was sent TERM: such a job never records success, and the agent asks the
            // scheduler (or the job log) for its verdict. The command itself keeps the default TERM action.
            "qxub_term=",
            "trap 'qxub_term=1' TERM",
        ]
        if mode == .interactive {
            // The script shares the terminal's foreground process group with the command: a Ctrl-C reaches both.
            // Caught (not ignored: an ignored signal stays ignored across exec), it leaves the command with the
            // default action and lets this script live to record the command's status (130).
            lines += ["qxub_int=", "trap 'qxub_int=1' INT"]
        }
        lines.append("")
        let stdout = shellQuote(paths.stdout) + (spec.array == nil ? "" : "\"$qxub_suffix\"")
        let stderr = shellQuote(paths.stderr) + (spec.array == nil ? "" : "\"$qxub_suffix\"")
        switch mode {
        case .batch:
            lines.append("# The job log (this script's own output) gets an audit block.")
            lines += audit(mode)
            // The user's stdout and stderr go to their own files from here on; fd 3 stays the job log.
            // The files are emptied before the started record appears, so a follower never streams old content.
            // Note `output`: the agent says which files could not be written (the message here only reaches
            // the job log, as the job's stderr is the file that failed).
            let directories = Set([parent(paths.stdout), parent(paths.stderr)].compactMap { $0 })
            lines.append("mkdir -p -- \(directories.sorted().map(shellQuote).joined(separator: " ")) 2>/dev/null")
            lines.append("exec 3>&1 4>&2")
            lines.append(
                "{ : >\(stdout) && : >\(stderr) && exec 1>>\(stdout) 2>>\(stderr); } || { echo \"qxub: cannot write the job's output files on $qxub_host\" >&4; qxub_record exit \"78 $(date +%s) output\"; exit 78; }"
            )
        case .interactive:
            lines.append(
                "# The job log gets an audit block (fd 3); stdout and stderr stay the terminal (fd 4 keeps it)."
            )
            if let directory = parent(paths.joblog) {
                lines.append("mkdir -p -- \(shellQuote(directory)) 2>/dev/null")
            }
            lines.append(
                "exec 4>&2 3>>\(shellQuote(paths.joblog)) || { printf 'qxub: cannot write the job log %s on %s\\n' \(shellQuote(paths.joblog)) \"$qxub_host\" >&2; qxub_record exit \"78 $(date +%s) setup\"; exit 78; }"
            )
            lines.append("{")
            lines += audit(mode).map { "  " + $0 }
            lines.append("} >&3")
        }
        lines.append("qxub_record started \"$(date +%s) $qxub_host\"")
        // Records and output files are private; what the command creates follows the user's own umask.
        lines.append("umask \"$qxub_umask\"")

        for variable in spec.variables {
            lines.append("export \(variable.key)=\(shellQuote(variable.value))")
        }
        let directory = spec.workingDirectory.isEmpty ? "\"$HOME\"" : shellQuote(spec.workingDirectory)
        if spec.createWorkingDirectory {
            lines.append(
                "mkdir -p -- \(directory) || qxub_fail 78 \(shellQuote("cannot create the working directory \(spec.workingDirectory)"))"
            )
        }
        lines.append(
            "cd -- \(directory) || qxub_fail 78 \(shellQuote("cannot enter the working directory \(spec.workingDirectory) on")) \"$qxub_host\" \(shellQuote("(use --create-execdir to create it)"))"
        )

        lines += activation()

        // While a command runs, this shell's own stderr is the job log: its notices about the command's end
        // ("job.sh: line 40: 4360 Killed …", naming the scheduler's spool path) are for the job log, not for
        // the user's stderr (a file, or the terminal), which the command writes through its own redirection.
        let ownStderr = mode == .batch ? "exec 2>&4" : "exec 2>&3"
        let userStderr = mode == .batch ? "2>>" + stderr : "2>&4"
        func run(_ command: String, indent: String = "") -> [String] {
            [ownStderr, command + " " + userStderr, "qxub_status=$?", "exec " + userStderr].map { indent + $0 }
        }
        if let pre = spec.pre, !pre.isEmpty {
            lines += run("bash -c \(shellQuote(pre))")
            lines += [
                "if [ \"$qxub_status\" -ne 0 ]; then",
                "  echo \"qxub: --pre failed with exit status $qxub_status; the command was not run\" >&2",
                "  qxub_record exit \"$qxub_status $(date +%s) pre\"",
                "  exit \"$qxub_status\"",
                "fi",
            ]
        }
        lines += [
            "if [ -n \"$qxub_term\" ]; then",
            "  echo \"qxub: the job was sent SIGTERM before the command started; the command was not run\" >&2",
            "  qxub_record exit \"143 $(date +%s) term\"",
            "  exit 143",
            "fi",
        ]
        if mode == .interactive {
            lines += [
                "if [ -n \"$qxub_int\" ]; then",
                "  echo \"qxub: interrupted before the command started; the command was not run\" >&2",
                "  qxub_record exit \"130 $(date +%s) setup\"",
                "  exit 130",
                "fi",
            ]
        }
        lines += run(mainCommand())
        if let post = spec.post, !post.isEmpty {
            lines.append("if [ \"$qxub_status\" -eq 0 ] && [ -z \"$qxub_term\" ]; then")
            lines += run("bash -c \(shellQuote(post))", indent: "  ")
            lines += [
                "  [ \"$qxub_status\" -eq 0 ] || echo \"qxub: --post failed with exit status $qxub_status\" >&2",
                "fi",
            ]
        }
        lines += usageRecord()
        lines += [
            "if [ -n \"$qxub_term\" ] && [ \"$qxub_status\" -eq 0 ]; then qxub_status=143; fi",
            "qxub_record exit \"$qxub_status $(date +%s)${qxub_term:+ term}\"",
            "echo \"finished:       $(date), exit status $qxub_status\" >&3",
            "exit \"$qxub_status\"",
        ]
        return lines
    }

    /// The audit block's lines (they write to stdout: the caller sends them to the job log).
    /// What the command used, in the job log before the exit record (read by `qxub resources`, see
    /// ``JobUsage``): the cpus the scheduler gave, the memory high-water of the job's own cgroup (only a cgroup
    /// that names the job: the local backend's is the whole login session's, which says nothing about the job),
    /// and bash's `times`: this script's user and system time, then its children's (the command, --pre,
    /// --post). No fork: `times` in a subshell would report the subshell's children, none.
    private func usageRecord() -> [String] {
        [
            "qxub_peak=-",
            "while IFS=: read -r _ qxub_ctl qxub_cg; do case \"$qxub_ctl:$qxub_cg\" in :*job*) qxub_f=/sys/fs/cgroup$qxub_cg/memory.peak ;; memory:*job*) qxub_f=/sys/fs/cgroup/memory$qxub_cg/memory.max_usage_in_bytes ;; *) continue ;; esac; [ -r \"$qxub_f\" ] && read -r qxub_peak <\"$qxub_f\"; done 2>/dev/null </proc/self/cgroup",
            "{ echo \"usage:          cpus=${NCPUS:-${SLURM_CPUS_ON_NODE:--}} memory_peak=${qxub_peak:--}\"; printf 'cpu times:      '; times; } >&3",
        ]
    }

    private func audit(_ mode: Mode) -> [String] {
        var lines = [
            "echo \"qxub \(QxubVersion.current): job $QXUB_JOB_ID (\(kind)\(mode == .interactive ? ", interactive" : "")) on $qxub_host, started $(date)\"",
            "echo " + shellQuote("submitted from: " + spec.submitHost),
            "echo " + shellQuote("context:        " + contextDescription),
            "echo " + shellQuote("command:        " + flat(commandDescription)),
        ]
        switch mode {
        case .batch:
            lines += [
                "echo " + shellQuote("stdout:         " + paths.stdout),
                "echo " + shellQuote("stderr:         " + paths.stderr),
            ]
        case .interactive:
            lines.append("echo " + shellQuote("terminal:       recorded in " + paths.stdout))
        }
        if kind == .local && (spec.resources != JobSpec.Resources() || spec.queue != nil) {
            lines.append("echo 'note: the local backend does not enforce resources or queues'")
        }
        return lines
    }

    func activation() -> [String] {
        var lines: [String] = []
        let context = spec.context
        if !context.modules.isEmpty {
            lines += [
                "if ! type module >/dev/null 2>&1; then",
                "  for qxub_init in /etc/profile.d/modules.sh /usr/share/Modules/init/bash /etc/profile.d/lmod.sh /usr/share/lmod/lmod/init/bash; do",
                "    [ -f \"$qxub_init\" ] && . \"$qxub_init\" && break",
                "  done",
                "fi",
                "type module >/dev/null 2>&1 || qxub_fail 78 \"environment modules are not available on $qxub_host (no 'module' command): drop --mod, or load them in your command\"",
            ]
            for module in context.modules {
                lines.append(
                    "module load \(shellQuote(module)) || qxub_fail 78 \(shellQuote("module load \(module) failed (see the message above): check the name with 'module avail \(module)'"))"
                )
            }
        }
        if let environment = context.condaEnvironment {
            lines += [
                "if ! type conda >/dev/null 2>&1; then",
                "  for qxub_init in \"$HOME\"/miniforge3 \"$HOME\"/miniconda3 \"$HOME\"/mambaforge \"$HOME\"/anaconda3; do",
                "    [ -f \"$qxub_init/etc/profile.d/conda.sh\" ] && . \"$qxub_init/etc/profile.d/conda.sh\" && break",
                "  done",
                "fi",
                "type conda >/dev/null 2>&1 || qxub_fail 78 \"conda is not available on $qxub_host: load it first (for example --mod miniconda3) or install it in your home\"",
                "qxub_hook=$(conda shell.bash hook 2>/dev/null) && eval \"$qxub_hook\"",
                "conda activate \(shellQuote(environment)) || qxub_fail 78 \(shellQuote("conda activate \(environment) failed: is it listed by 'conda env list'?"))",
            ]
        }
        if let image = context.container {
            lines += [
                "qxub_runtime=$(command -v apptainer || command -v singularity)",
                "if [ -z \"$qxub_runtime\" ] && type module >/dev/null 2>&1; then module load singularity >/dev/null 2>&1; qxub_runtime=$(command -v apptainer || command -v singularity); fi",
                "[ -n \"$qxub_runtime\" ] || qxub_fail 78 \"neither apptainer nor singularity is available on $qxub_host (not on PATH, and no singularity module): ask your site how to get one, or drop --sif\"",
                "[ -r \(shellQuote(image)) ] || qxub_fail 78 \(shellQuote("the container image \(image) does not exist or is not readable on")) \"$qxub_host\"",
            ]
        }
        return lines
    }

    private func mainCommand() -> String {
        var prefix = ""
        if let image = spec.context.container {
            prefix = "\"$qxub_runtime\" exec "
            for bind in spec.context.binds { prefix += "--bind \(shellQuote(bind)) " }
            prefix += shellQuote(image) + " "
        }
        switch spec.command {
        case .shell(let line):
            return prefix + "bash -c \(shellQuote(line))"
        case .argv(let arguments) where arguments.isEmpty:
            // No command (an interactive job only: validate() refuses it for batch): the user's own shell,
            // interactive, which puts itself in the terminal's foreground. In a container the host's $SHELL
            // may not exist: bash is there in any image a user can work in.
            return prefix + (prefix.isEmpty ? "\"${SHELL:-/bin/bash}\" -i" : "/bin/bash -i")
        case .argv(let arguments):
            // Argv-exact, and run as a program (as execvp would): in a subshell with `exec`, so a word
            // such as `exit` or `cd` is never a builtin of this script.
            if !prefix.isEmpty { return prefix + arguments.map(shellQuote).joined(separator: " ") }
            return "( exec -- " + arguments.map(shellQuote).joined(separator: " ") + " )"
        }
    }

    private var contextDescription: String {
        let context = spec.context
        var parts: [String] = []
        if !context.modules.isEmpty { parts.append("modules " + context.modules.joined(separator: " ")) }
        if let environment = context.condaEnvironment { parts.append("conda environment " + environment) }
        if let image = context.container {
            parts.append(
                "container " + image
                    + (context.binds.isEmpty ? "" : " (bind " + context.binds.joined(separator: ", ") + ")")
            )
        }
        return parts.isEmpty ? "plain" : parts.joined(separator: ", then ")
    }

    private var commandDescription: String {
        switch spec.command {
        case .shell(let line): line
        case .argv(let arguments) where arguments.isEmpty: "(an interactive shell)"
        case .argv(let arguments): arguments.map(shellQuote).joined(separator: " ")
        }
    }

    /// One line for the audit block.
    private func flat(_ value: String) -> String {
        value.replacingAll("\n", with: "\\n").replacingAll("\r", with: "\\r")
    }

    private func parent(_ path: String) -> String? {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return nil }
        return String(path[..<slash])
    }
}

/// Seconds as `H:MM:SS` (hours may exceed 24, as PBS accepts).
package func clockTime(_ seconds: UInt64) -> String {
    let hours = seconds / 3600
    let minutes = (seconds % 3600) / 60
    let secs = seconds % 60
    return "\(hours):\(minutes < 10 ? "0" : "")\(minutes):\(secs < 10 ? "0" : "")\(secs)"
}

/// Slurm's `D-HH:MM:SS`, or `H:MM:SS` under a day.
func slurmTime(_ seconds: UInt64) -> String {
    guard seconds >= 86400 else { return clockTime(seconds) }
    let days = seconds / 86400
    return "\(days)-" + clockTime(seconds % 86400)
}

/// Bytes in PBS units (kb = 1024 bytes): the largest unit that divides exactly.
package func pbsSize(_ bytes: UInt64) -> String {
    if bytes > 0 && bytes % (1 << 30) == 0 { return "\(bytes >> 30)GB" }
    if bytes > 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)MB" }
    if bytes > 0 && bytes % (1 << 10) == 0 { return "\(bytes >> 10)KB" }
    return "\(bytes)b"
}

/// PBS `-m` letters (a: abort, b: begin, e: end, n: none) as Slurm `--mail-type` names.
func slurmMailTypes(_ events: String) -> String {
    var types: [String] = []
    if events.contains("b" as Character) { types.append("BEGIN") }
    if events.contains("e" as Character) { types.append("END") }
    if events.contains("a" as Character) { types.append("FAIL") }
    return types.isEmpty ? "NONE" : types.joined(separator: ",")
}

private func isDirectiveByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "="),
        UInt8(ascii: "+"),
        UInt8(ascii: "/"), UInt8(ascii: "@"), UInt8(ascii: "%"), UInt8(ascii: "-"):
        true
    default:
        false
    }
}

func isShellIdentifier(_ name: String) -> Bool {
    guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
    return name.utf8.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
    }
}

extension JobSpec.Resources {
    /// The walltime asked for, by `--time` or by a raw `-l walltime=[[H:]M:]S` (nil when neither says).
    package var requestedWalltimeSeconds: UInt64? {
        if let walltimeSeconds { return walltimeSeconds }
        for entry in raw {
            for part in entry.split(separator: ",") where part.hasPrefix("walltime=") {
                var seconds: UInt64 = 0
                for field in part.dropFirst("walltime=".count).split(separator: ":", omittingEmptySubsequences: false) {
                    guard let value = UInt64(field), seconds <= (UInt64.max - value) / 60 else { return nil }
                    seconds = seconds * 60 + value
                }
                return seconds
            }
        }
        return nil
    }
}
