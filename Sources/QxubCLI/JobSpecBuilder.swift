import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Turns the command line into a ``JobSpec``: parses resources, resolves paths, names the job.
struct JobSpecBuilder {
    /// The job's output files as given (nil: the configured path, else the file in its state directory), and
    /// whether they are checked for writing before submission (not for a dry run).
    struct OutputRequest {
        var stdout: String? = nil
        var stderr: String? = nil
        var joblog: String? = nil
        var checkWritable = true
    }

    let command: JobSpec.Command
    let context: ContextOptions
    let resources: ResourceOptions
    let job: JobOptions
    let output: OutputRequest
    /// Set for a remote platform: paths are the cluster's, resolved there against the working directory.
    var remote: Platform.Remote? = nil
    /// `defaults.*` and `templates:` apply where the command line says nothing.
    var configuration = Configuration()
    /// Batch jobs share options: a configured out/err/joblog path would be shared too, so it is not applied.
    var sharedByManyJobs = false
    /// A shortcut or alias: between the command line and the configuration.
    var preset: JobPreset? = nil
    /// The platform the job goes to (`--platform`), whose definition's queues apply.
    var platformName: String? = nil

    /// The command line's value, else the preset's, else `defaults.<configKey>`.
    private func layered(_ cli: String?, preset key: String, config configKey: String? = nil) -> String? {
        cli ?? preset?.string(key) ?? configKey.flatMap { configured($0) }
    }

    /// `defaults.<key>`, for the settings that are not resources.
    private func configured(_ key: String) -> String? {
        configuration.value("defaults.\(key)")?.string
    }

    /// One value per resource, from the highest source that gives it in either spelling: the command line (a
    /// named option, then `-l`), the shortcut or alias, then the configuration (its higher layer, whether
    /// `defaults.<key>` or `defaults.resources`). Raw entries for other resources come from the first of these
    /// that has any (as the Python qxub: `defaults.resources` only when nothing else asks for resources).
    private var resourceModel: ResourceModel {
        var model = resources.model
        let presetEntries = preset.flatMap { $0.list("resources").isEmpty ? nil : $0.resourceEntries }
        for key in ResourceModel.Key.allCases { model.fill(key, presetEntries?.named[key.rawValue], origin: .preset) }
        if resources.raw.isEmpty, let presetEntries { model.fill(raw: presetEntries.raw, origin: .preset, pass: true) }
        model.fill(configuration: configuration, listInEffect: resources.raw.isEmpty && presetEntries == nil)
        return model
    }

    /// Messages for the user about values changed for a queue.
    var warnings: [String] = []

    /// The definition of the platform's queues: the one named like the platform, the only one loaded, or
    /// none (then `--queue auto` is an error that says how to get one).
    private mutating func definitionForQueues(required: Bool) throws(ClientError) -> PlatformDefinition? {
        let definitions: [PlatformDefinition]
        do {
            definitions = try PlatformDefinition.all(configuration: configuration)
        } catch {
            // Only --queue auto depends on a definition; other jobs go on without the limit checks.
            if required { throw error }
            warnings.append("queue limits not checked: \(error.message)")
            return nil
        }
        if let match = PlatformDefinition.chosen(
            from: definitions,
            platform: platformName,
            configuration: configuration
        ) {
            return match
        }
        guard required else { return nil }
        throw ClientError(
            definitions.isEmpty
                ? "--queue auto needs a platform definition, and none is installed"
                : "several platform definitions are loaded (\(definitions.map(\.name).joined(separator: ", "))) and none is named like the platform; set defaults.platform to choose one",
            hint: InstalledDocs.definitionHint + ", or give -q QUEUE",
            exitCode: ExitCodes.usage
        )
    }

    /// The queue the job asks for and the definition whose rules apply to it, before those rules adjust or
    /// refuse anything (`qxub validate` reviews the same choice without submitting).
    struct QueueChoice {
        /// The job's resources, resolved from every source.
        var resources: JobSpec.Resources
        /// The named queue, or the one `--queue auto` chose; nil: the scheduler's default.
        var queue: String?
        /// The definition in use; nil: no queue rules apply.
        var definition: PlatformDefinition?
        var request: QueueSelector.Request
        /// Chosen by the rules (`auto`, GPUs, internet) rather than named.
        var auto: Bool
        var cpusExplicit: Bool
    }

    mutating func queueChoice() throws(ClientError) -> QueueChoice {
        let model = resourceModel
        let parsed = try model.resolved()
        let queue = layered(job.queue, preset: "queue", config: "queue")
        // Queue rules from the platform definition: --queue auto, GPUs and --internet select a queue; a
        // known queue's minimums raise values (with a warning) and its limits refuse what cannot run.
        // As the Python qxub: --gpus, --gpu-type and --internet imply --queue auto unless -q was given; without
        // a definition they fall back to the configured queue, while an explicit `auto` needs one.
        let explicitAuto = queue == "auto"
        // A shortcut's gpu_type and internet count as if given on the command line.
        let gpuType = resources.gpuType ?? preset?.string("gpu_type")
        let internet = resources.internet || preset?.string("internet").flatMap { ConfigValue.string($0).bool } == true
        let wantsAuto =
            explicitAuto
            || (job.queue == nil && preset?.string("queue") == nil
                && (model.gpusFromCommandLine || internet || gpuType != nil))
        var choice = QueueChoice(
            resources: parsed,
            queue: queue,
            definition: nil,
            request: QueueSelector.Request(parsed, gpuType: gpuType, internet: internet),
            auto: wantsAuto,
            cpusExplicit: model.cpusFromCommandLine
        )
        if let definition = try definitionForQueues(required: explicitAuto) {
            choice.definition = definition
            if wantsAuto {
                choice.queue = try QueueSelector.select(
                    choice.request,
                    in: definition,
                    cpusExplicit: choice.cpusExplicit
                )
            }
        }
        return choice
    }

    mutating func build() throws(ClientError) -> JobSpec {
        let cwd = FileSystem.currentDirectory()
        func absolute(_ path: String?) -> String? {
            guard let path, !path.isEmpty else { return nil }
            if remote != nil { return path }
            if path.hasPrefix("/") { return path }
            if path == "~" || path.hasPrefix("~/") { return (Environment.get("HOME") ?? "") + path.dropFirst() }
            return cwd + "/" + path
        }
        var variables: [KeyValue] = []
        let presetVariables = preset?.list("vars").flatMap { $0.split(separator: ";").map(String.init) } ?? []
        for entry in presetVariables + job.variables
            + (job.variableList.map { $0.split(separator: ",").map(String.init) } ?? [])
        {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ClientError(
                    "--var \(entry): expected KEY=VALUE",
                    hint: "for example --var SEED=42",
                    exitCode: ExitCodes.usage
                )
            }
            variables.append(KeyValue(String(entry[..<equals]), String(entry[entry.index(after: equals)...])))
        }
        let choice = try queueChoice()
        var parsed = choice.resources
        var queue = choice.queue
        if let definition = choice.definition, let chosen = queue {
            let decision = try QueueSelector.adjust(
                choice.request,
                queue: chosen,
                in: definition,
                auto: choice.auto,
                cpusExplicit: choice.cpusExplicit
            )
            queue = decision.queue
            parsed.cpus = decision.cpus
            parsed.localDiskBytes = decision.localDisk
            for warning in decision.warnings { warnings.append(warning) }
        }
        let givenProject = layered(job.project, preset: "project", config: "project")
        let project = givenProject ?? Environment.get("PROJECT")
        var templates: [String: String] = [:]
        for (key, value) in configuration.value("templates")?.map ?? [:] {
            if let text = value.string { templates[key] = text }
        }
        if let logDirectory = job.logDirectory { templates["log_dir"] = logDirectory }
        var templateVariables = TemplateVariables(
            user: TemplateVariables.localUser,
            project: project,
            name: nil,
            queue: queue,
            templates: templates
        )
        func resolve(_ text: String?) throws(ClientError) -> String? {
            guard let text else { return nil }
            return try templateVariables.resolveKnown(text)
        }
        // A remote working directory keeps {user} and {project} for the agent, which fills them in with
        // the cluster's values (the laptop's user name is often not the cluster's).
        func resolveForCluster(_ text: String?) -> String? {
            var cluster = templateVariables
            cluster.values["user"] = nil
            // A project given to qxub (-P, a shortcut, defaults.project) is used as given; only one taken
            // from this machine's $PROJECT is left for the cluster's.
            if givenProject == nil { cluster.values["project"] = nil }
            // `{{user}}` (the Python qxub's spelling for "on the cluster") is `{user}` for the agent.
            return text.map {
                cluster.resolve($0).replacingAll("{{user}}", with: "{user}").replacingAll(
                    "{{project}}",
                    with: "{project}"
                )
            }
        }
        let name = JobName.sanitize(
            try resolve(layered(job.name, preset: "name", config: "name")) ?? JobName.defaultName(for: command)
        )
        // The context comes whole from one place: the command line if it names any, else the preset.
        let cliContext =
            context.plain || context.condaEnvironment != nil || !context.allModules.isEmpty || context.container != nil
        let environment = cliContext ? context.condaEnvironment : preset?.string("env")
        let modules = cliContext ? context.allModules : preset?.modules ?? []
        let container = cliContext ? context.container : preset?.string("sif")
        let binds = cliContext ? context.binds : preset?.list("bind") ?? []
        templateVariables.values["name"] = name
        // Templates apply to storage as to paths (`defaults.volumes: gdata/{project}`).
        parsed.storage = try resolve(parsed.storage)
        let stdoutPath = absolute(try resolve(output.stdout ?? (sharedByManyJobs ? nil : configured("out"))))
        let stderrPath = absolute(try resolve(output.stderr ?? (sharedByManyJobs ? nil : configured("err"))))
        let joblogPath = absolute(try resolve(output.joblog ?? (sharedByManyJobs ? nil : configured("joblog"))))
        // With the agent on this machine the files are ours to check: a job that cannot write them would end
        // with 78 and its reason in the very file it could not write.
        if remote == nil && output.checkWritable {
            try OutputPathCheck.check([("--out", stdoutPath), ("--err", stderrPath), ("--joblog", joblogPath)])
        }
        let workingDirectory =
            remote == nil
            ? try resolve(job.workingDirectory ?? preset?.string("execdir"))
            : resolveForCluster(job.workingDirectory ?? preset?.string("execdir"))
        var spec = JobSpec(
            name: name,
            command: command,
            workingDirectory: absolute(workingDirectory) ?? (remote == nil ? cwd : remote?.workingDirectory ?? ""),
            createWorkingDirectory: job.createWorkingDirectory,
            context: .init(
                condaEnvironment: environment,
                modules: modules,
                container: absolute(container),
                binds: binds
            ),
            pre: job.pre ?? preset?.string("pre"),
            post: job.post ?? preset?.string("post"),
            variables: variables,
            resources: parsed,
            queue: queue,
            project: project,
            array: job.array ?? preset?.string("array"),
            email: job.noNotify ? nil : layered(job.email, preset: "email", config: "email"),
            emailEvents: layered(job.emailEvents, preset: "email_opts", config: "email_opts"),
            stdoutPath: stdoutPath,
            stderrPath: stderrPath,
            joblogPath: joblogPath,
            backend: job.backend ?? "",
            submitHost: Environment.hostname(),
            clientVersion: QxubVersion.current
        )
        spec.tags = try job.parsedTags()
        return spec
    }
}

/// Job names as schedulers accept them.
enum JobName {
    /// `<command>-<YYYYMMDD>-<HHMMSS>`, as the Python qxub names jobs.
    static func defaultName(for command: JobSpec.Command) -> String {
        let first: String
        switch command {
        case .shell(let line):
            first =
                line.split(whereSeparator: { $0 == " " || $0 == ";" || $0 == "\t" || $0 == "\n" }).first.map(
                    String.init
                ) ?? "job"
        case .argv(let arguments): first = arguments.first ?? "job"
        }
        let base = first.split(separator: "/").last.map(String.init) ?? first
        let now = LocalTime()
        return "\(base)-\(now.compactDate)-\(now.compactTime)"
    }

    /// Letters, digits, `_`, `-` and `.` only (others become `_`), starting with a letter, at most 200 bytes.
    static func sanitize(_ name: String) -> String {
        var result = String(
            name.unicodeScalars.map { scalar -> Character in
                let plain =
                    scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(Character(scalar)) || scalar == "_"
                        || scalar == "-" || scalar == ".")
                return plain ? Character(scalar) : "_"
            }
        )
        if let first = result.unicodeScalars.first, !(first.isASCII && first.properties.isAlphabetic) {
            result = "job_" + result
        }
        if result.isEmpty { result = "job" }
        return String(result.prefix(200))
    }
}
