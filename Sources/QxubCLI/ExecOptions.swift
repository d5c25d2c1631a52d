import ArgumentParser
import QxubClient
import QxubProtocol

/// Where the command runs: conda, modules, a container.
struct ContextOptions: ParsableArguments {
    @Option(name: .customLong("env"), help: "Activate this conda environment.")
    var condaEnvironment: String?

    @Option(
        name: [.customLong("mod"), .customLong("module")],
        help: "Load this environment module (repeatable; loaded before --env)."
    )
    var modules: [String] = []

    @Option(
        name: [.customLong("mods"), .customLong("modules")],
        help: "Modules to load, separated by commas or spaces."
    )
    var moduleList: String?

    @Flag(name: .customLong("default"), help: "Plain context: no conda, modules or container, and no shortcut.")
    var plain = false

    @Option(name: [.customLong("sif"), .customLong("container")], help: "Run inside this Singularity/Apptainer image.")
    var container: String?

    @Option(name: .customLong("bind"), help: "Bind path for the container (repeatable; as singularity --bind).")
    var binds: [String] = []

    var allModules: [String] {
        modules + (moduleList ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
    }

    func validate() throws {
        if plain && (container != nil || condaEnvironment != nil || !allModules.isEmpty) {
            throw ValidationError(
                "--default means no conda, modules or container: it cannot be combined with --env, --mod or --sif"
            )
        }
        if container != nil && (condaEnvironment != nil || !allModules.isEmpty) {
            throw ValidationError("--sif runs the command in a container: it cannot be combined with --env or --mod")
        }
        if !binds.isEmpty && container == nil {
            throw ValidationError("--bind needs --sif")
        }
    }
}

/// What the job asks the scheduler for.
struct ResourceOptions: ParsableArguments {
    // `.unconditional`: `--time -5` takes `-5` as the value (to be refused as negative), not as an option.
    @Option(
        name: [.customLong("mem"), .customLong("memory")],
        parsing: .unconditional,
        help: "Memory: \(ResourceParser.memoryForms)."
    )
    var memory: String?

    @Option(
        name: [.customLong("cpus"), .customLong("threads")],
        parsing: .unconditional,
        help: "CPU cores.",
        transform: ResourceOptions.count("--cpus")
    )
    var cpus: UInt32?

    @Option(
        name: [.customLong("time"), .customLong("runtime")],
        parsing: .unconditional,
        help: "Walltime: \(ResourceParser.timeForms)."
    )
    var walltime: String?

    @Option(
        name: [.customLong("disk"), .customLong("jobfs")],
        parsing: .unconditional,
        help: "Node-local disk (PBS jobfs, Slurm --tmp)."
    )
    var disk: String?

    @Option(
        name: .customLong("gpus"),
        parsing: .unconditional,
        help: "GPUs (without -q this selects a GPU queue and sets CPUs per GPU).",
        transform: ResourceOptions.count("--gpus")
    )
    var gpus: UInt32?

    @Option(name: .customLong("gpu-type"), help: "GPU model for queue selection (e.g. v100, a100).")
    var gpuType: String?

    @Flag(name: .customLong("internet"), help: "Needs internet access: selects a queue that has it (e.g. copyq).")
    var internet = false

    @Option(
        name: [.customLong("storage"), .customLong("volumes")],
        help: "PBS storage request (e.g. gdata/a56+scratch/a56)."
    )
    var storage: String?

    @Option(name: [.customShort("l"), .customLong("resources")], help: "A raw PBS -l resource request (repeatable).")
    var raw: [String] = []

    func validate() throws {
        if cpus == 0 { throw ValidationError("--cpus 0: a job needs at least one CPU") }
        for (option, value) in [("--mem", memory), ("--time", walltime), ("--disk", disk)] {
            if let value, value.hasPrefix("-") {
                throw ValidationError(
                    "\(option) \(value): the value must be positive, as in \(option) \(Self.examples[option]!)"
                )
            }
        }
    }

    private static let examples = ["--mem": "8GB", "--time": "2h", "--disk": "100GB", "--cpus": "4", "--gpus": "1"]

    /// A count option's value: a negative or non-numeric one says what is expected (ArgumentParser's own
    /// message for `--cpus -1` was "Missing value").
    static func count(_ option: String) -> @Sendable (String) throws -> UInt32 {
        { text in
            guard let number = UInt32(text) else {
                throw ValidationError(
                    "\(option) \(text): the value must be a positive whole number, as in \(option) \(examples[option]!)"
                )
            }
            return number
        }
    }

    /// The command line's resources: a named option wins over the same resource in `-l`.
    var model: ResourceModel {
        var model = ResourceModel()
        model.fill(.mem, memory, origin: .option)
        model.fill(.walltime, walltime, origin: .option)
        model.fill(.ncpus, cpus.map(String.init), origin: .option)
        model.fill(.ngpus, gpus.map(String.init), origin: .option)
        model.fill(.jobfs, disk, origin: .option)
        model.fill(.storage, storage, origin: .option)
        model.fill(raw: raw, origin: .commandLineRaw, pass: true)
        return model
    }
}

/// Scheduler placement and identity.
struct JobOptions: ParsableArguments {
    @Option(
        name: [.customShort("N"), .customLong("name")],
        help: "Job name (default: the command's name and the time)."
    )
    var name: String?

    @Option(
        name: [.customShort("q"), .customLong("queue")],
        help: "Queue (PBS) or partition (Slurm).",
        completion: .custom(CompletionValues.queues)
    )
    var queue: String?

    @Option(name: [.customShort("P"), .customLong("project")], help: "Project (PBS -P) or account (Slurm).")
    var project: String?

    @Option(name: .customLong("array"), help: "Array job range (PBS -J, Slurm --array), e.g. 1-10.")
    var array: String?

    @Option(name: .customLong("email"), help: "Email address for job notifications.")
    var email: String?

    @Option(name: .customLong("email-opts"), help: "When to email, as PBS -m letters (a: abort, b: begin, e: end).")
    var emailEvents: String?

    @Option(name: .customLong("pre"), help: "Shell command to run before the command (its failure stops the job).")
    var pre: String?

    @Option(name: .customLong("post"), help: "Shell command to run after the command, only if it succeeded.")
    var post: String?

    @Option(name: .customLong("var"), help: "KEY=VALUE exported in the job, value taken literally (repeatable).")
    var variables: [String] = []

    @Option(name: .customLong("vars"), help: "Several KEY=VALUE, separated by commas.")
    var variableList: String?

    @Option(
        name: .customLong("execdir"),
        help: "Working directory of the job (default: the current directory).",
        completion: .directory
    )
    var workingDirectory: String?

    @Flag(name: .customLong("create-execdir"), help: "Create the working directory if it does not exist.")
    var createWorkingDirectory = false

    @Option(
        name: .customLong("backend"),
        help: "Force the backend: local, slurm or pbspro (default: detected).",
        completion: .list(CompletionValues.backends)
    )
    var backend: String?

    @Option(
        name: .customLong("shortcut"),
        help: "Apply this shortcut (default: the one whose key starts the command, when no --env/--mod/--sif is given)."
    )
    var shortcut: String?

    @Option(name: .customLong("alias"), help: "Apply this alias from the configuration's aliases: section.")
    var alias: String?

    @Option(name: .customLong("tag"), help: "KEY=VALUE kept with the job in its records and the history (repeatable).")
    var tags: [String] = []

    @Option(name: .customLong("tags"), help: "Several KEY=VALUE, separated by commas.")
    var tagList: String?

    @Option(
        name: .customLong("log-dir"),
        help: "The value of {log_dir} in templated names and paths.",
        completion: .directory
    )
    var logDirectory: String?

    @Flag(
        name: .customLong("notify"),
        help: "Send a Slack/Discord message when the job ends (webhooks under notifications: in the configuration)."
    )
    var notify = false

    @Flag(name: .customLong("no-notify"), help: "No email, even if one is configured.")
    var noNotify = false

    @Option(
        name: .customLong("template"),
        help: "A custom job script (not supported: qxub generates the script; use --pre/--post)."
    )
    var template: String?

    /// Rules of the Python qxub's options that this qxub takes but does not carry out (exec and batch).
    func validate() throws {
        if template != nil {
            throw ValidationError(
                "--template is not supported: qxub generates the job script itself (see `qxub help exec`); put set-up in --pre, or in a wrapper script you run"
            )
        }
        if notify && noNotify {
            throw ValidationError("--notify and --no-notify exclude each other")
        }
        if shortcut != nil && alias != nil {
            throw ValidationError("--shortcut and --alias exclude each other")
        }
    }

    /// `--tag` and `--tags` as pairs.
    func parsedTags() throws(ClientError) -> [KeyValue] {
        try (tags + (tagList.map { $0.split(separator: ",").map(String.init) } ?? [])).map {
            entry throws(ClientError) in
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ClientError(
                    "--tag \(entry): expected KEY=VALUE",
                    hint: "for example --tag rule=align",
                    exitCode: ExitCodes.usage
                )
            }
            return KeyValue(String(entry[..<equals]), String(entry[entry.index(after: equals)...]))
        }
    }

    /// The preset for a command: --alias, --shortcut, or the shortcut the command's first words match.
    func preset(
        for words: [String],
        context: ContextOptions,
        configuration: Configuration
    ) throws(ClientError) -> JobPreset? {
        if let alias {
            guard let preset = configuration.alias(alias) else {
                let known = configuration.aliasNames
                throw ClientError(
                    "no alias '\(alias)'",
                    hint: known.isEmpty
                        ? "define it under aliases: in your configuration"
                        : "aliases: " + known.joined(separator: ", "),
                    exitCode: ExitCodes.usage
                )
            }
            return preset
        }
        let store = try ShortcutStore.load()
        if let shortcut {
            guard let preset = store.shortcuts[shortcut] else {
                let known = store.shortcuts.keys.sorted()
                throw ClientError(
                    "no shortcut '\(shortcut)'",
                    hint: known.isEmpty
                        ? "create one with `qxub config shortcut set`" : "shortcuts: " + known.joined(separator: ", "),
                    exitCode: ExitCodes.usage
                )
            }
            return preset
        }
        let contextGiven =
            context.plain || context.condaEnvironment != nil || !context.allModules.isEmpty || context.container != nil
        return contextGiven ? nil : store.match(words)
    }
}

/// Where output goes and how qxub behaves.
struct OutputOptions: ParsableArguments {
    @Option(
        name: .customLong("out"),
        help: "File for the job's stdout (default: in the job's state directory).",
        completion: .file()
    )
    var stdout: String?

    @Option(name: .customLong("err"), help: "File for the job's stderr.", completion: .file())
    var stderr: String?

    @Option(name: .customLong("joblog"), help: "File for the scheduler's job log.", completion: .file())
    var joblog: String?

    @Flag(
        name: [.customLong("dry"), .customLong("dry-run")],
        help: "Print the submission command and job script; submit nothing."
    )
    var dry = false

    /// The paths (and whether to check them) for ``JobSpecBuilder``.
    var request: JobSpecBuilder.OutputRequest {
        .init(stdout: stdout, stderr: stderr, joblog: joblog, checkWritable: !dry)
    }

    @Flag(name: .customLong("terse"), help: "Print only the job id and return at once.")
    var terse = false

    @Flag(name: .customLong("quiet"), help: "Print nothing; exit with the job's exit status.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "More messages (repeatable).")
    var verbose: Int

    func validate() throws {
        if [dry, terse, quiet].filter({ $0 }).count > 1 {
            throw ValidationError("--dry, --terse and --quiet exclude each other")
        }
    }
}
