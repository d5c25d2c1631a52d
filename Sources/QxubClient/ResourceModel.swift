import QxubProtocol

/// A job's resources from every source, one value per resource, before anything reads them.
///
/// Sources are laid in from the highest precedence down (``fill(_:_:origin:)``, ``fill(raw:origin:pass:)``): a
/// resource keeps the first value it gets, whatever the spelling (`--mem 8GB` or `-l mem=8GB`). Queue selection,
/// limit checks and estimates read ``resolved()``, so a `-l mem=600GB` counts as `--mem 600GB` does.
package struct ResourceModel: Sendable, Hashable {
    /// The resources with a typed value of their own, by their PBS names.
    package enum Key: String, CaseIterable, Sendable {
        case mem, walltime, ncpus, ngpus, jobfs, storage

        /// The `defaults.<key>` that stands for this resource.
        package var configKey: String {
            switch self {
            case .mem: "mem"
            case .walltime: "runtime"
            case .ncpus: "cpus"
            case .ngpus: "gpus"
            case .jobfs: "disk"
            case .storage: "volumes"
            }
        }

        /// Other spellings of `defaults.<configKey>`: the PBS names and `memory`, as the Python qxub's docs write
        /// them (its code read none of them, so they did nothing there).
        package var configSynonyms: [String] {
            switch self {
            case .mem: ["memory"]
            case .walltime: ["walltime", "time"]
            case .ncpus: ["ncpus"]
            case .ngpus: ["ngpus"]
            case .jobfs: ["jobfs"]
            case .storage: ["storage"]
            }
        }
    }

    /// Where a value came from, for messages and for the rules that depend on it.
    package enum Origin: Sendable, Hashable {
        /// A named option such as `--mem`.
        case option
        /// A `-l` value given on the command line.
        case commandLineRaw
        /// A shortcut's or alias's `resources` entry.
        case preset
        /// `defaults.<key>`.
        case configured(String)
        /// An entry of `defaults.resources`.
        case configuredRaw

        /// Given on the command line, in either spelling.
        package var isCommandLine: Bool { self == .option || self == .commandLineRaw }

        /// A PBS `-l` value: a plain number is bytes (memory) or seconds (walltime), as PBS reads it.
        var isPBS: Bool { self == .commandLineRaw || self == .configuredRaw }
    }

    package struct Value: Sendable, Hashable {
        package var text: String
        package var origin: Origin
    }

    package private(set) var values: [Key: Value] = [:]
    /// `-l` entries for resources without a typed value, sent as they are.
    package private(set) var raw: [String] = []

    package init() {}

    /// `text` for `key`, unless a higher source gave it already.
    package mutating func fill(_ key: Key, _ text: String?, origin: Origin) {
        guard let text, values[key] == nil else { return }
        values[key] = Value(text: text, origin: origin)
    }

    /// `-l` entries (`mem=8GB,place=scatter`): typed resources fill their keys (the last entry for a key wins, as
    /// in PBS); the other parts are kept to be sent as they are when `pass`.
    package mutating func fill(raw entries: [String], origin: Origin, pass: Bool) {
        var found: [Key: String] = [:]
        for entry in entries {
            let kept = entry.split(separator: ",").filter { part in
                let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, let key = Key(rawValue: pair[0]) else { return true }
                found[key] = pair[1]
                return false
            }
            if pass && !kept.isEmpty { raw.append(kept.joined(separator: ",")) }
        }
        for key in Key.allCases { fill(key, found[key], origin: origin) }
    }

    /// The configuration's values for what no higher source gave: of `defaults.<key>` and an entry of
    /// `defaults.resources` (when `listInEffect`), the one from the higher layer; in the same layer, `defaults.<key>`.
    package mutating func fill(configuration: Configuration, listInEffect: Bool) {
        let list = listInEffect ? configuration.value("defaults.resources")?.list?.compactMap(\.string) ?? [] : []
        var fromList = ResourceModel()
        fromList.fill(raw: list, origin: .configuredRaw, pass: true)
        func rank(_ key: String) -> Int {
            configuration.origins[key].flatMap { configuration.layers.firstIndex(of: $0) } ?? -1
        }
        let listRank = rank("defaults.resources")
        for key in Key.allCases {
            // Of the spellings given, the one from the highest layer (in one layer, the main one).
            var spelling = key.configKey
            for synonym in key.configSynonyms
            where configuration.value("defaults.\(synonym)")?.string != nil
                && (configuration.value("defaults.\(spelling)")?.string == nil
                    || rank("defaults.\(synonym)") > rank("defaults.\(spelling)"))
            {
                spelling = synonym
            }
            let named = configuration.value("defaults.\(spelling)")?.string
            if let entry = fromList.values[key], named == nil || listRank > rank("defaults.\(spelling)") {
                fill(key, entry.text, origin: .configuredRaw)
            } else {
                fill(key, named, origin: .configured(spelling))
            }
        }
        raw += fromList.raw
    }

    /// The typed values, parsed, and the raw entries: what the scheduler receives.
    package func resolved() throws(ClientError) -> JobSpec.Resources {
        var resources = JobSpec.Resources(raw: raw)
        resources.cpus = try count(.ncpus)
        resources.gpus = try count(.ngpus)
        resources.storage = values[.storage]?.text
        if let value = values[.mem] { resources.memoryBytes = try size(value, .mem) }
        if let value = values[.jobfs] { resources.localDiskBytes = try size(value, .jobfs) }
        if let value = values[.walltime] {
            resources.walltimeSeconds = try parsed(value, .walltime) { () throws(ClientError) in
                if value.origin.isPBS, let seconds = Self.pbsClock(value.text) { return seconds }
                return try ResourceParser.walltime(value.text)
            }
        }
        return resources
    }

    /// Whether the CPU count was given on the command line (then GPUs do not replace it).
    package var cpusFromCommandLine: Bool { values[.ncpus]?.origin.isCommandLine == true }

    /// Whether the GPU count was given on the command line (then it chooses a GPU queue).
    package var gpusFromCommandLine: Bool { values[.ngpus]?.origin.isCommandLine == true }

    private func size(_ value: Value, _ key: Key) throws(ClientError) -> UInt64 {
        try parsed(value, key) { () throws(ClientError) in
            // PBS reads a size without a unit as bytes.
            if value.origin.isPBS, let bytes = UInt64(value.text), bytes > 0 {
                return (bytes + 1023) / 1024 * 1024
            }
            return try ResourceParser.memory(value.text)
        }
    }

    private func count(_ key: Key) throws(ClientError) -> UInt32? {
        guard let value = values[key] else { return nil }
        if let number = UInt32(value.text), number > 0 { return number }
        if case .configured(let name) = value.origin {
            throw ClientError(
                "defaults.\(name) is '\(value.text)', not a positive whole number",
                hint: "fix it with `qxub config set defaults.\(name) 4`",
                exitCode: ExitCodes.usage
            )
        }
        throw ClientError(
            "\(label(value.origin)) \(key.rawValue)=\(value.text): not a positive whole number",
            hint: "for example \(key.rawValue)=4",
            exitCode: ExitCodes.usage
        )
    }

    /// Parses with `parse`; an error about a `-l` value names the entry (the named options' messages stay as they
    /// were).
    private func parsed<T>(
        _ value: Value,
        _ key: Key,
        _ parse: () throws(ClientError) -> T
    ) throws(ClientError) -> T {
        do {
            return try parse()
        } catch {
            guard value.origin.isPBS else { throw error }
            var named = error
            named.message = "\(label(value.origin)) \(key.rawValue)=\(value.text): \(error.message)"
            throw named
        }
    }

    private func label(_ origin: Origin) -> String {
        switch origin {
        case .option, .commandLineRaw: "-l"
        case .preset: "the shortcut's resources"
        case .configured(let name): "defaults.\(name)"
        case .configuredRaw: "defaults.resources"
        }
    }

    /// PBS `[[H:]M:]S` (whole numbers), or nil when `text` is not of that form.
    static func pbsClock(_ text: String) -> UInt64? {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(fields.count) else { return nil }
        var seconds: UInt64 = 0
        for field in fields {
            guard let value = UInt64(field), value < 1 << 40 else { return nil }
            seconds = seconds * 60 + value
        }
        return seconds > 0 ? seconds : nil
    }
}

extension QueueSelector.Request {
    /// The request the queue rules read: the job's resolved resources.
    package init(_ resources: JobSpec.Resources, gpuType: String? = nil, internet: Bool = false) {
        self.init(
            cpus: resources.cpus,
            memory: resources.memoryBytes,
            walltime: resources.walltimeSeconds,
            gpus: resources.gpus,
            gpuType: gpuType,
            internet: internet,
            localDisk: resources.localDiskBytes
        )
    }
}
