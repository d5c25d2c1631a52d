extension PlatformDefinition.Queue {
    /// The nodes a job of `cpus` CPUs takes: 1 up to a node's CPUs, then one per `cpus_per_node` begun (a queue
    /// without node sizes: 1, every limit being per job).
    package func nodes(cpus: UInt32) -> UInt32 {
        guard let perNode = cpusPerNode, cpus > perNode else { return 1 }
        return (cpus + perNode - 1) / perNode
    }

    /// The CPUs a job is charged for: its own, or, when its memory takes a larger share of a node than its CPUs
    /// do, the CPUs that go with that memory (`memory / (memory_per_node / cpus_per_node)`, as NCI charges).
    package func chargedCPUs(cpus: UInt32, memory: UInt64?) -> Double {
        guard let perNode = cpusPerNode, let nodeMemory = memoryPerNode, let memory else { return Double(cpus) }
        return max(Double(cpus), Double(memory) * Double(perNode) / Double(nodeMemory))
    }

    /// Service units for `seconds` of walltime: charged CPUs × hours × `su_billing_rate`.
    package func serviceUnits(cpus: UInt32, memory: UInt64?, seconds: UInt64) -> Double {
        chargedCPUs(cpus: cpus, memory: memory) * Double(seconds) / 3600 * billingRate
    }
}
