extension QueueSelector {
    /// A limit a request breaks on a queue, and the nearest request the queue takes.
    package struct Violation: Sendable, Hashable {
        /// What breaks the limit, said before the queue: "50 CPUs", "5000 CPUs exceed the limit of 3200".
        package var subject: String
        /// The rest of the sentence, after the queue: " span more than one node" (often empty).
        package var rule: String = ""
        /// The nearest request the queue takes ("48 or 96"), when there is one worth naming.
        package var nearest: String? = nil

        /// "50 CPUs on queue 'normal' span more than one node: ask for 48 or 96".
        package func message(_ label: String) -> String {
            "\(subject) on \(label)\(rule)" + (nearest.map { ": ask for \($0)" } ?? "")
        }
    }

    /// Every limit `request` breaks on `queue`, in the order they are reported. With node sizes
    /// (`cpus_per_node`), a job above one node must take whole nodes, and memory and jobfs are per node.
    static func violations(_ request: Request, _ queue: PlatformDefinition.Queue) -> [Violation] {
        var found: [Violation] = []
        let cpus = request.cpus ?? 1
        let perNode = queue.cpusPerNode
        let nodes = UInt64(queue.nodes(cpus: cpus))
        func fitsMax(_ count: UInt64) -> Bool { queue.maxCPUs.map { count <= UInt64($0) } ?? true }
        // The largest CPU count up to `limit` that a queue with nodes takes: one node's worth or whole nodes.
        func wholeNodes(atMost limit: UInt32) -> UInt32 {
            guard let perNode, limit > perNode else { return limit }
            return limit / perNode * perNode
        }
        if let limit = queue.maxCPUs, cpus > limit {
            found.append(
                Violation(
                    subject: "\(cpus) CPUs exceed the limit of \(limit)",
                    nearest: "at most \(count(wholeNodes(atMost: limit), "CPU"))"
                )
            )
        } else if let perNode, cpus > perNode, cpus % perNode != 0 {
            let below = cpus / perNode * perNode
            let above = UInt64(below) + UInt64(perNode)
            found.append(
                Violation(
                    subject: "\(cpus) CPUs",
                    rule: " span more than one node",
                    nearest: fitsMax(above) ? "\(below) or \(above)" : "\(below)"
                )
            )
        }
        if let memory = request.memory {
            if let nodeMemory = queue.memoryPerNode, memory > nodes * nodeMemory {
                var nearest = "at most \(gigabytes(nodes * nodeMemory))"
                let needed = (memory + nodeMemory - 1) / nodeMemory
                if let perNode, fitsMax(needed * UInt64(perNode)) {
                    nearest += ", or \(needed * UInt64(perNode)) CPUs (\(needed) nodes)"
                }
                found.append(
                    Violation(
                        subject: "\(gigabytes(memory)) of memory",
                        rule: " exceed \(gigabytes(nodeMemory)) per node for \(count(cpus, "CPU")) on "
                            + count(nodes, "node"),
                        nearest: nearest
                    )
                )
            }
            if let limit = queue.maxMemory, memory > limit {
                found.append(
                    Violation(
                        subject: "\(gigabytes(memory)) of memory exceed the limit of \(gigabytes(limit))",
                        nearest: "at most \(gigabytes(limit))"
                    )
                )
            }
            if let limit = queue.minMemory, memory < limit {
                found.append(
                    Violation(
                        subject: "\(gigabytes(memory)) of memory is below the minimum of \(gigabytes(limit))",
                        nearest: "at least \(gigabytes(limit))"
                    )
                )
            }
        }
        if let minimum = queue.minGPUs, minimum > 0, (request.gpus ?? 0) < minimum {
            found.append(Violation(subject: "the queue needs at least \(minimum) GPU(s)"))
        }
        if let gpus = request.gpus, gpus > 0 {
            if queue.gpuType == nil {
                found.append(Violation(subject: "the queue has no GPUs"))
            } else if let type = request.gpuType?.lowercased(), let own = queue.gpuType, own != type {
                found.append(Violation(subject: "the queue's GPUs are \(own), not \(type)"))
            }
            if let limit = queue.maxGPUs, gpus > limit {
                found.append(
                    Violation(subject: "\(gpus) GPUs exceed the limit of \(limit)", nearest: "at most \(limit) GPUs")
                )
            }
        }
        if let limit = queue.maxLocalStorage, let disk = request.localDisk {
            // jobfs is spread over the job's nodes: each has the queue's limit.
            let total = perNode == nil ? limit : limit * nodes
            if disk > total {
                found.append(
                    Violation(
                        subject: "\(gigabytes(disk)) of jobfs exceed the limit of \(gigabytes(total))",
                        nearest: "at most \(gigabytes(total))"
                    )
                )
            }
        }
        if let walltime = request.walltime, let limit = queue.maxWalltime(cores: cpus), walltime > limit {
            var nearest = "at most \(hours(limit))"
            // The most CPUs that may run this long, if fewer CPUs may.
            let fewer = queue.walltimeRules.filter { $0.1 >= walltime && $0.0.lowerBound < cpus }
                .map { wholeNodes(atMost: min($0.0.upperBound, cpus - 1)) }.max()
            if let fewer, fewer > 0 { nearest += ", or \(count(fewer, "CPU"))" }
            found.append(
                Violation(
                    subject: "a walltime of \(hours(walltime)) exceeds the maximum of \(hours(limit)) for \(cpus) CPUs",
                    nearest: nearest
                )
            )
        }
        return found
    }

    /// Bytes as whole GB, as the definitions write them.
    static func gigabytes(_ bytes: UInt64) -> String { "\(bytes >> 30)GB" }

    /// "1 CPU", "96 CPUs".
    static func count<N: BinaryInteger>(_ number: N, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}
