import QxubSystem
import Yams

/// A cluster's queues, limits and queue-selection rules, in the Python qxub's platform schema.
package struct PlatformDefinition: Sendable, Hashable {
    package struct Queue: Sendable, Hashable {
        package var name: String
        package var billingRate: Double
        package var gpuType: String?
        package var cpusPerGPU: UInt32?
        package var internet: Bool
        package var maxCPUs, minCPUs, maxGPUs, minGPUs: UInt32?
        package var maxMemory, minMemory, maxLocalStorage, minLocalStorage: UInt64?
        /// (first core, last core, max walltime seconds)
        package var walltimeRules: [(ClosedRange<UInt32>, UInt64)]
        /// The size of one node (`limits.cpus_per_node`, `limits.memory_per_node`): with them, memory and jobfs
        /// are checked per node, a job above one node takes whole nodes, and memory is charged as Gadi does.
        /// Absent (the Python qxub's files): every limit is per job.
        package var cpusPerNode: UInt32? = nil
        package var memoryPerNode: UInt64? = nil

        package static func == (lhs: Queue, rhs: Queue) -> Bool { lhs.name == rhs.name }
        package func hash(into hasher: inout Hasher) { hasher.combine(name) }

        /// The longest walltime for this many cores, if the queue says.
        package func maxWalltime(cores: UInt32) -> UInt64? {
            walltimeRules.first { $0.0.contains(cores) }?.1
        }
    }

    package struct Rule: Sendable, Hashable {
        package var condition: String
        package var queue: String
        package var isDefault: Bool
    }

    package var name: String
    package var queues: [Queue]
    package var rules: [Rule]
    package var source: String
    /// `state_root:` where the agent keeps job state and output on this cluster (see ``Platform/stateRoot``).
    package var stateRoot: String? = nil

    package func queue(_ name: String) -> Queue? { queues.first { $0.name == name } }
}

extension PlatformDefinition {
    /// Reads `platform:`, `platforms: [...]` or a bare mapping from a YAML file.
    package static func load(_ path: String) throws(ClientError) -> [PlatformDefinition] {
        guard let text = FileSystem.readText(path) else {
            throw ClientError("cannot read the platform definition \(path)", exitCode: ExitCodes.usage)
        }
        let node: Node?
        // The basic resolver: ConfigValue reads scalars as text itself, and the default one compiles a
        // dozen regular expressions (ICU) on every start.
        do { node = try Yams.compose(yaml: text, .basic) } catch {
            throw ClientError("\(path) is not valid YAML: \(error)", exitCode: ExitCodes.usage)
        }
        guard let node else { return [] }
        let root = ConfigValue(node)
        var entries: [[String: ConfigValue]] = []
        if let single = root.map?["platform"]?.map {
            entries = [single]
        } else if let many = root.map?["platforms"]?.list {
            entries = many.compactMap(\.map)
        } else if let bare = root.map, bare["queues"] != nil {
            entries = [bare]
        }
        return try entries.map { entry throws(ClientError) in try parse(entry, source: path) }
    }

    static func parse(_ entry: [String: ConfigValue], source: String) throws(ClientError) -> PlatformDefinition {
        func bytes(_ value: ConfigValue?) throws(ClientError) -> UInt64? {
            guard let text = value?.string else { return nil }
            return try ResourceParser.memory(text)
        }
        func count(_ value: ConfigValue?) -> UInt32? { value?.string.flatMap { UInt32($0) } }
        // A node size divides: 0 or text would make every multi-node rule meaningless.
        func positive(_ value: ConfigValue?, _ key: String, queue: String) throws(ClientError) -> UInt32? {
            guard let text = value?.string else { return nil }
            guard let number = UInt32(text), number > 0 else {
                throw ClientError(
                    "\(source): queue \(queue): \(key) is '\(text)', not a positive whole number",
                    exitCode: ExitCodes.usage
                )
            }
            return number
        }
        var queues: [Queue] = []
        for item in entry["queues"]?.list ?? [] {
            guard let queue = item.map, let name = queue["name"]?.string else { continue }
            let limits = queue["limits"]?.map ?? [:]
            var rules: [(ClosedRange<UInt32>, UInt64)] = []
            for rule in queue["walltime_rules"]?.list ?? [] {
                guard let map = rule.map, let cores = map["cores"]?.string, let limit = map["max_walltime"]?.string
                else { continue }
                let seconds = try ResourceParser.walltime(limit)
                for part in cores.split(separator: ",") {
                    let bounds = part.split(separator: "-").compactMap { UInt32(String($0).trimmingWhitespace()) }
                    if bounds.count == 1 { rules.append((bounds[0]...bounds[0], seconds)) }
                    if bounds.count == 2, bounds[0] <= bounds[1] { rules.append((bounds[0]...bounds[1], seconds)) }
                }
            }
            queues.append(
                Queue(
                    name: name,
                    billingRate: queue["su_billing_rate"]?.string.flatMap(Double.init) ?? 1,
                    gpuType: queue["gpu_type"]?.string?.lowercased(),
                    cpusPerGPU: count(queue["cpus_per_gpu"]),
                    internet: queue["internet_connectivity"]?.bool ?? false,
                    maxCPUs: count(limits["max_cpus"]),
                    minCPUs: count(limits["min_cpus"]),
                    maxGPUs: count(limits["max_gpus"]),
                    minGPUs: count(limits["min_gpus"]),
                    maxMemory: try bytes(limits["max_memory"]),
                    minMemory: try bytes(limits["min_memory"]),
                    maxLocalStorage: try bytes(limits["max_local_storage"]),
                    minLocalStorage: try bytes(limits["min_local_storage"]),
                    walltimeRules: rules,
                    cpusPerNode: try positive(limits["cpus_per_node"], "limits.cpus_per_node", queue: name),
                    memoryPerNode: try bytes(limits["memory_per_node"])
                )
            )
        }
        let rules = (entry["auto_selection_rules"]?.list ?? []).compactMap { item -> Rule? in
            guard let map = item.map, let queue = map["queue"]?.string else { return nil }
            return Rule(
                condition: map["condition"]?.string ?? "",
                queue: queue,
                isDefault: map["is_default"]?.bool ?? false
            )
        }
        var definition = PlatformDefinition(
            name: entry["name"]?.string ?? "unnamed",
            queues: queues,
            rules: rules,
            source: source
        )
        definition.stateRoot = entry["state_root"]?.string
        return definition
    }

    /// Definitions from `QXUB_PLATFORM_FILE`, else every `*.yaml` in `QXUB_PLATFORM_PATHS` (colon-separated),
    /// `platform_search_paths`, or `/etc/qxub/platforms`, `~/.config/qxub/platforms`, `~/.qxub/platforms`;
    /// plus the `definition:` file of each configured platform.
    /// `warn` says that a cached copy stands in for a URL that could not be fetched: on stderr, except where
    /// a definition is read only for a side value (the state root) and the queue choice reads it again.
    package static func all(
        configuration: Configuration,
        warn: Bool = true
    ) throws(ClientError) -> [PlatformDefinition] {
        var files: [String] = []
        let home = Environment.get("HOME") ?? ""
        if let file = Environment.get("QXUB_PLATFORM_FILE"), !file.isEmpty {
            files = [file]
        } else {
            var directories = (Environment.get("QXUB_PLATFORM_PATHS") ?? "").split(separator: ":").map(String.init)
            if directories.isEmpty {
                directories = configuration.value("platform_search_paths")?.list?.compactMap(\.string) ?? []
            }
            if directories.isEmpty {
                directories = ["/etc/qxub/platforms", home + "/.config/qxub/platforms", home + "/.qxub/platforms"]
            }
            for directory in directories where FileSystem.isDirectory(directory) {
                files += FileSystem.listDirectory(directory).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                    .map { directory + "/" + $0 }
            }
            // Each URL once, however many platforms name it (one fetch, one warning).
            var fetched: Set<String> = []
            for (_, entry) in configuration.value("platforms")?.map ?? [:] {
                guard let definition = entry.map?["definition"]?.string else { continue }
                if definition.hasPrefix("http://") || definition.hasPrefix("https://") {
                    guard fetched.insert(definition).inserted else { continue }
                    files.append(
                        try DefinitionCache.file(for: definition) {
                            ClientLog.write($0)
                            if warn { try? FileDescriptor.writeAll(2, "qxub: warning: " + $0 + "\n") }
                        }
                    )
                } else {
                    files.append(localPath(definition))
                }
            }
        }
        var definitions: [PlatformDefinition] = []
        for file in files { definitions += try load(file) }
        return definitions
    }

    /// The definition for `platform` (else for `defaults.platform`), or the only one loaded; nil when
    /// several are loaded and none is named.
    package static func chosen(
        from definitions: [PlatformDefinition],
        platform: String?,
        configuration: Configuration
    ) -> PlatformDefinition? {
        let named = platform.flatMap { $0 == Platform.local.name ? nil : $0 }
        guard let name = named ?? configuration.string("defaults.platform") else {
            return definitions.count == 1 ? definitions.first : nil
        }
        // The platform's own `definition:` file, else the definition of its name.
        if let value = configuration.string("platforms.\(name).definition") {
            let path =
                value.hasPrefix("http://") || value.hasPrefix("https://")
                ? DefinitionCache.cachePath(for: value) : localPath(value)
            if let match = definitions.first(where: { $0.source == path }) { return match }
        }
        if let match = definitions.first(where: { $0.name == name }) { return match }
        // A platform named on the command line that has no definition gets no queue rules (never another
        // platform's); without a name, the only definition loaded is the one meant.
        return named == nil && definitions.count == 1 ? definitions.first : nil
    }

    /// A `definition:` value that is not a URL, as a path (`file://` and `~/` resolved).
    static func localPath(_ value: String) -> String {
        let path = value.hasPrefix("file://") ? String(value.dropFirst(7)) : value
        return path == "~" || path.hasPrefix("~/") ? (Environment.get("HOME") ?? "") + path.dropFirst() : path
    }
}
