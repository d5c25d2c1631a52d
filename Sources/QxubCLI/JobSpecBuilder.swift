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
        var parsed = JobSpec.Resources(cpus: resources.cpus, gpus: resources.gpus, storage: resources.storage, raw: resources.raw)
        if let memory = resources.memory { parsed.memoryBytes = try ResourceParser.memory(memory) }
        if let walltime = resources.walltime { parsed.walltimeSeconds = try ResourceParser.walltime(walltime) }
        if let disk = resources.disk { parsed.localDiskBytes = try ResourceParser.memory(disk) }
        return JobSpec(
            name: JobName.sanitize(job.name ?? JobName.defaultName(for: command)),
            command: command,
            workingDirectory: absolute(job.workingDirectory) ?? (remote == nil ? cwd : remote?.workingDirectory ?? ""),
            createWorkingDirectory: job.createWorkingDirectory,
            context: .init(condaEnvironment: context.condaEnvironment, modules: context.allModules, container: absolute(context.container), binds: context.binds),
            pre: job.pre, post: job.post, variables: variables, resources: parsed,
            queue: job.queue, project: job.project, array: job.array, email: job.email, emailEvents: job.emailEvents,
            stdoutPath: absolute(output.stdout), stderrPath: absolute(output.stderr), joblogPath: absolute(output.joblog),
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
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(base)-\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))-\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))"
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
