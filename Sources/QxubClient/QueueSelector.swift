/// `--queue auto` and the queue rules of a platform definition: pick a queue, set CPUs for GPUs, raise
/// values to a queue's minimums (saying so), and refuse requests over its limits before submission.
package enum QueueSelector {
    package struct Request: Sendable, Hashable {
        package var cpus: UInt32?
        package var memory: UInt64?
        package var walltime: UInt64?
        package var gpus: UInt32?
        package var gpuType: String?
        package var internet: Bool
        package var localDisk: UInt64?

        package init(
            cpus: UInt32? = nil,
            memory: UInt64? = nil,
            walltime: UInt64? = nil,
            gpus: UInt32? = nil,
            gpuType: String? = nil,
            internet: Bool = false,
            localDisk: UInt64? = nil
        ) {
            self.cpus = cpus
            self.memory = memory
            self.walltime = walltime
            self.gpus = gpus
            self.gpuType = gpuType
            self.internet = internet
            self.localDisk = localDisk
        }
    }

    package struct Decision: Sendable, Hashable {
        package var queue: String
        package var cpus: UInt32?
        package var localDisk: UInt64?
        package var warnings: [String]
    }

    /// The queue the rules choose.
    package static func select(_ request: Request, in definition: PlatformDefinition) throws(ClientError) -> String {
        if let type = request.gpuType?.lowercased() {
            let types = Set(definition.queues.compactMap(\.gpuType))
            guard types.contains(type) else {
                throw ClientError(
                    "unknown GPU type '\(type)' on \(definition.name)",
                    hint: "available types: \(types.sorted().joined(separator: ", "))",
                    exitCode: ExitCodes.usage
                )
            }
        }
        var candidates = Set(definition.queues.map(\.name))
        if request.internet {
            let online = definition.queues.filter(\.internet).map(\.name)
            if !online.isEmpty { candidates = Set(online) }
        }
        for rule in definition.rules where candidates.contains(rule.queue) && !rule.isDefault {
            if evaluate(rule.condition, request) { return rule.queue }
        }
        if let fallback = definition.rules.first(where: { $0.isDefault && candidates.contains($0.queue) }) {
            return fallback.queue
        }
        guard let first = definition.queues.first(where: { candidates.contains($0.name) }) else {
            throw ClientError(
                "\(definition.name) defines no queues",
                hint: "check \(definition.source)",
                exitCode: ExitCodes.usage
            )
        }
        return first.name
    }

    /// Applies `queue`'s rules to the request: CPUs for GPUs, minimums, then limits (an error names the
    /// limit and a queue that fits). Unknown queues pass untouched.
    package static func adjust(
        _ request: Request,
        queue name: String,
        in definition: PlatformDefinition,
        auto: Bool,
        cpusExplicit: Bool
    ) throws(ClientError) -> Decision {
        var decision = Decision(queue: name, cpus: request.cpus, localDisk: request.localDisk, warnings: [])
        guard let queue = definition.queue(name) else { return decision }
        let label = auto ? "auto-selected queue '\(name)'" : "queue '\(name)'"
        if let perGPU = queue.cpusPerGPU {
            if let gpus = request.gpus, !cpusExplicit {
                decision.cpus = gpus * perGPU
            } else if let cpus = decision.cpus, cpus % perGPU != 0 {
                let raised = (cpus + perGPU - 1) / perGPU * perGPU
                decision.warnings.append(
                    "ncpus=\(cpus) overridden to ncpus=\(raised) for \(label) (must be a multiple of \(perGPU) (cpus_per_gpu))"
                )
                decision.cpus = raised
            }
        }
        if let minimum = queue.minCPUs, let cpus = decision.cpus, cpus < minimum {
            decision.warnings.append("ncpus=\(cpus) overridden to ncpus=\(minimum) for \(label) (its minimum)")
            decision.cpus = minimum
        }
        if let minimum = queue.minLocalStorage {
            if let disk = decision.localDisk, disk < minimum {
                decision.warnings.append("jobfs raised to \(minimum >> 30)GB for \(label) (its minimum)")
                decision.localDisk = minimum
            } else if decision.localDisk == nil {
                decision.localDisk = minimum
            }
        }
        var checked = request
        checked.cpus = decision.cpus
        checked.localDisk = decision.localDisk
        if let problem = violation(checked, queue) {
            let fits = definition.queues.filter {
                violation(checked, $0) == nil && (request.gpus ?? 0 == 0 || $0.gpuType != nil)
            }.map(\.name)
            throw ClientError(
                "\(problem) on \(label)",
                hint: fits.isEmpty
                    ? "no queue of \(definition.name) fits this request: ask for less"
                    : "queues that fit: \(fits.joined(separator: ", ")) (or --queue auto)",
                exitCode: ExitCodes.usage
            )
        }
        return decision
    }

    /// The first limit `request` breaks on `queue`, as a sentence.
    static func violation(_ request: Request, _ queue: PlatformDefinition.Queue) -> String? {
        let cpus = request.cpus ?? 1
        if let limit = queue.maxCPUs, cpus > limit { return "\(cpus) CPUs exceed the limit of \(limit)" }
        if let limit = queue.maxMemory, let memory = request.memory, memory > limit {
            return "\(memory >> 30)GB of memory exceed the limit of \(limit >> 30)GB"
        }
        if let limit = queue.minMemory, let memory = request.memory, memory < limit {
            return "\(memory >> 30)GB of memory is below the minimum of \(limit >> 30)GB"
        }
        if let minimum = queue.minGPUs, minimum > 0, (request.gpus ?? 0) < minimum {
            return "the queue needs at least \(minimum) GPU(s)"
        }
        if let gpus = request.gpus, gpus > 0 {
            if queue.gpuType == nil { return "the queue has no GPUs" }
            if let type = request.gpuType?.lowercased(), queue.gpuType != type {
                return "the queue's GPUs are \(queue.gpuType!), not \(type)"
            }
            if let limit = queue.maxGPUs, gpus > limit { return "\(gpus) GPUs exceed the limit of \(limit)" }
        }
        if let limit = queue.maxLocalStorage, let disk = request.localDisk, disk > limit {
            return "\(disk >> 30)GB of jobfs exceed the limit of \(limit >> 30)GB"
        }
        if let walltime = request.walltime, let limit = queue.maxWalltime(cores: cpus), walltime > limit {
            return "a walltime of \(hours(walltime)) exceeds the maximum of \(hours(limit)) for \(cpus) CPUs"
        }
        return nil
    }

    /// Seconds as H:MM:SS.
    package static func hours(_ seconds: UInt64) -> String {
        let minutes = seconds / 60 % 60
        return "\(seconds / 3600):\(minutes < 10 ? "0" : "")\(minutes):\(seconds % 60 < 10 ? "0" : "")\(seconds % 60)"
    }

    /// `name op value` with names gpu_requested, gpu_type, cpus, memory, walltime, internet.
    static func evaluate(_ condition: String, _ request: Request) -> Bool {
        let operators = [">=", "<=", "==", "!=", ">", "<", "="]
        for op in operators {
            guard let range = condition.firstRange(ofLiteral: op) else { continue }
            let name = String(condition[..<range.lowerBound]).trimmingWhitespace()
            let text = String(condition[range.upperBound...]).trimmingWhitespace()
            func compare<T: Comparable>(_ left: T, _ right: T) -> Bool {
                switch op {
                case ">=": left >= right
                case "<=": left <= right
                case ">": left > right
                case "<": left < right
                case "!=": left != right
                default: left == right
                }
            }
            switch name {
            case "gpu_requested", "gpus": return UInt64(text).map { compare(UInt64(request.gpus ?? 0), $0) } ?? false
            case "cpus": return UInt64(text).map { compare(UInt64(request.cpus ?? 1), $0) } ?? false
            case "memory":
                guard let memory = request.memory, let value = try? ResourceParser.memory(text) else { return false }
                return compare(memory, value)
            case "walltime":
                guard let walltime = request.walltime, let value = try? ResourceParser.walltime(text) else {
                    return false
                }
                return compare(walltime, value)
            case "gpu_type": return compare(request.gpuType?.lowercased() ?? "", text.lowercased())
            case "internet": return compare(request.internet ? "true" : "false", text.lowercased())
            default: return false
            }
        }
        return false
    }
}
