import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Turns the command line into a ``JobSpec``: parses resources, resolves paths, names the job.
struct JobSpecBuilder {
    let command: JobSpec.Command
    let context: ContextOptions
    let resources: ResourceOptions
    let job: JobOptions
    let output: OutputOptions
    /// Set for a remote platform: paths are the cluster's, resolved there against the working directory.
    var remote: Platform.Remote? = nil
    /// `defaults.*` and `templates:` apply where the command line says nothing.
    var configuration = Configuration()
    /// Batch jobs share options: a configured out/err/joblog path would be shared too, so it is not applied.
    var sharedByManyJobs = false

    /// One value per resource: the command line, else `defaults.<key>` (unless a raw `-l` names it).
    private func configured(_ key: String, unlessRaw rawNames: [String] = []) -> String? {
        guard let value = configuration.value("defaults.\(key)") else { return nil }
        let raw = effectiveRaw.flatMap { $0.split(separator: ",") }.map { $0.split(separator: "=").first.map(String.init) ?? "" }
        if rawNames.contains(where: raw.contains) { return nil }
        return value.string
    }

    /// The raw `-l` requests: the command line's, else `defaults.resources` (as the Python qxub: only
    /// when nothing else asks for resources). A key named there is not also taken from `defaults.<key>`.
    private var effectiveRaw: [String] {
        if !resources.raw.isEmpty { return resources.raw }
        return configuration.value("defaults.resources")?.list?.compactMap(\.string) ?? []
    }

    func build() throws(ClientError) -> JobSpec {
        let cwd = FileSystem.currentDirectory()
        func absolute(_ path: String?) -> String? {
            guard let path, !path.isEmpty else { return nil }
            if remote != nil { return path }
            if path.hasPrefix("/") { return path }
            if path == "~" || path.hasPrefix("~/") { return (Environment.get("HOME") ?? "") + path.dropFirst() }
            return cwd + "/" + path
        }
        var variables: [KeyValue] = []
        for entry in job.variables + (job.variableList.map { $0.split(separator: ",").map(String.init) } ?? []) {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ClientError("--var \(entry): expected KEY=VALUE", hint: "for example --var SEED=42", exitCode: ExitCodes.usage)
            }
            variables.append(KeyValue(String(entry[..<equals]), String(entry[entry.index(after: equals)...])))
        }
        func number(_ text: String?, _ key: String) throws(ClientError) -> UInt32? {
            guard let text else { return nil }
            guard let value = UInt32(text), value > 0 else {
                throw ClientError("defaults.\(key) is '\(text)', not a positive whole number", hint: "fix it with `qxub config set defaults.\(key) 4`", exitCode: ExitCodes.usage)
            }
            return value
        }
        let raw = effectiveRaw
        var cpus = resources.cpus
        if cpus == nil { cpus = try number(configured("cpus", unlessRaw: ["ncpus"]), "cpus") }
        var gpus = resources.gpus
        if gpus == nil { gpus = try number(configured("gpus", unlessRaw: ["ngpus"]), "gpus") }
        var parsed = JobSpec.Resources(cpus: cpus, gpus: gpus, storage: resources.storage ?? configured("volumes", unlessRaw: ["storage"]), raw: raw)
        if let memory = resources.memory ?? configured("mem", unlessRaw: ["mem"]) { parsed.memoryBytes = try ResourceParser.memory(memory) }
        if let walltime = resources.walltime ?? configured("runtime", unlessRaw: ["walltime"]) { parsed.walltimeSeconds = try ResourceParser.walltime(walltime) }
        if let disk = resources.disk ?? configured("disk", unlessRaw: ["jobfs"]) { parsed.localDiskBytes = try ResourceParser.memory(disk) }

        let queue = job.queue ?? configured("queue")
        let project = job.project ?? configured("project") ?? Environment.get("PROJECT")
        var templates: [String: String] = [:]
        for (key, value) in configuration.value("templates")?.map ?? [:] { if let text = value.string { templates[key] = text } }
        var templateVariables = TemplateVariables(user: Environment.get("USER") ?? "", project: project, name: nil, queue: queue, templates: templates)
        var warned: Set<String> = []
        func resolve(_ text: String?) -> String? {
            text.map { templateVariables.resolve($0) { name in
                if warned.insert(name).inserted { ClientLog.write("unknown template variable {\(name)} in '\(text!)'") }
            } }
        }
        let name = JobName.sanitize(resolve(job.name ?? configured("name")) ?? JobName.defaultName(for: command))
        templateVariables.values["name"] = name
        return JobSpec(
            name: name,
            command: command,
            workingDirectory: absolute(job.workingDirectory) ?? (remote == nil ? cwd : remote?.workingDirectory ?? ""),
            createWorkingDirectory: job.createWorkingDirectory,
            context: .init(condaEnvironment: context.condaEnvironment, modules: context.allModules, container: absolute(context.container), binds: context.binds),
            pre: job.pre, post: job.post, variables: variables, resources: parsed,
            queue: queue, project: project, array: job.array,
            email: job.email ?? configured("email"), emailEvents: job.emailEvents ?? configured("email_opts"),
            stdoutPath: absolute(resolve(output.stdout ?? (sharedByManyJobs ? nil : configured("out")))),
            stderrPath: absolute(resolve(output.stderr ?? (sharedByManyJobs ? nil : configured("err")))),
            joblogPath: absolute(resolve(output.joblog ?? (sharedByManyJobs ? nil : configured("joblog")))),
            backend: job.backend ?? "", submitHost: Environment.hostname(), clientVersion: QxubVersion.current)
    }
}

/// Job names as schedulers accept them.
enum JobName {
    /// `<command>-<YYYYMMDD>-<HHMMSS>`, as the Python qxub names jobs.
    static func defaultName(for command: JobSpec.Command) -> String {
        let first: String
        switch command {
        case .shell(let line): first = line.split(whereSeparator: { $0 == " " || $0 == ";" || $0 == "\t" || $0 == "\n" }).first.map(String.init) ?? "job"
        case .argv(let arguments): first = arguments.first ?? "job"
        }
        let base = first.split(separator: "/").last.map(String.init) ?? first
        let now = LocalTime()
        return "\(base)-\(now.compactDate)-\(now.compactTime)"
    }

    /// Letters, digits, `_`, `-` and `.` only (others become `_`), starting with a letter, at most 200 bytes.
    static func sanitize(_ name: String) -> String {
        var result = String(name.unicodeScalars.map { scalar -> Character in
            let plain = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(Character(scalar)) || scalar == "_" || scalar == "-" || scalar == ".")
            return plain ? Character(scalar) : "_"
        })
        if let first = result.unicodeScalars.first, !(first.isASCII && first.properties.isAlphabetic) { result = "job_" + result }
        if result.isEmpty { result = "job" }
        return String(result.prefix(200))
    }
}
