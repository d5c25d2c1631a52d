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

    /// The queue the rules choose: the first whose rule holds and that can run the request.
    package static func select(
        _ request: Request,
        in definition: PlatformDefinition,
        cpusExplicit: Bool = false
    ) throws(ClientError) -> String {
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
        // The queues the rules name for this request, in the rules' order; the first that can run it is taken.
        var named: [String] = []
        for rule in definition.rules where candidates.contains(rule.queue) && !rule.isDefault {
            if evaluate(rule.condition, request) { named.append(rule.queue) }
        }
        named += definition.rules.filter { $0.isDefault && candidates.contains($0.queue) }.map(\.queue)
        if named.isEmpty, let first = definition.queues.first(where: { candidates.contains($0.name) }) {
            named = [first.name]
        }
        guard let first = named.first else {
            throw ClientError(
                "\(definition.name) defines no queues",
                hint: "check \(definition.source)",
                exitCode: ExitCodes.usage
            )
        }
        func fits(_ name: String) -> Bool {
            review(request, queue: name, in: definition, auto: true, cpusExplicit: cpusExplicit).violations.isEmpty
        }
        // A rule's queue that cannot run the request (50 CPUs on 48-CPU nodes) gives way to the next rule's, then
        // to any queue the rules name that can; when none can, the first named one refuses it with its reason.
        if let fitting = named.first(where: fits) { return fitting }
        let others = definition.rules.map(\.queue).filter { candidates.contains($0) && !named.contains($0) }
        return others.first(where: fits) ?? first
    }

    /// What `queue`'s rules make of a request: the adjusted values and every limit they break.
    package struct Review: Sendable, Hashable {
        package var decision: Decision
        /// The request with the adjusted values, as the limits read it.
        package var checked: Request
        package var violations: [Violation]
        /// "queue 'normal'" or "auto-selected queue 'normal'".
        package var label: String
    }

    /// Applies `queue`'s rules to the request: CPUs for GPUs, minimums, then its limits (all of them, in order).
    /// An unknown queue passes untouched.
    package static func review(
        _ request: Request,
        queue name: String,
        in definition: PlatformDefinition,
        auto: Bool,
        cpusExplicit: Bool
    ) -> Review {
        var decision = Decision(queue: name, cpus: request.cpus, localDisk: request.localDisk, warnings: [])
        let label = auto ? "auto-selected queue '\(name)'" : "queue '\(name)'"
        guard let queue = definition.queue(name) else {
            return Review(decision: decision, checked: request, violations: [], label: label)
        }
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
        return Review(decision: decision, checked: checked, violations: violations(checked, queue), label: label)
    }

    /// The queues of `definition` that can run `review`'s request as it is (GPU queues only for a job with GPUs).
    package static func queuesThatFit(
        _ review: Review,
        _ request: Request,
        in definition: PlatformDefinition
    )
        -> [String]
    {
        definition.queues.filter {
            violations(review.checked, $0).isEmpty && (request.gpus ?? 0 == 0 || $0.gpuType != nil)
        }.map(\.name)
    }

    /// Applies `queue`'s rules to the request: CPUs for GPUs, minimums, then limits (an error names the first
    /// limit broken, the nearest request the queue takes, and the queues that fit). Unknown queues pass untouched.
    package static func adjust(
        _ request: Request,
        queue name: String,
        in definition: PlatformDefinition,
        auto: Bool,
        cpusExplicit: Bool
    ) throws(ClientError) -> Decision {
        let review = review(request, queue: name, in: definition, auto: auto, cpusExplicit: cpusExplicit)
        if let problem = review.violations.first {
            let fits = queuesThatFit(review, request, in: definition)
            throw ClientError(
                problem.message(review.label),
                hint: fits.isEmpty
                    ? "no queue of \(definition.name) fits this request: ask for less"
                    : "queues that fit: \(fits.joined(separator: ", ")) (or --queue auto)",
                exitCode: ExitCodes.usage
            )
        }
        return review.decision
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
