import QxubSystem

/// Which batch system runs the jobs.
package enum SchedulerKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// No scheduler: the job runs as a detached process group on this machine.
    case local
    case slurm
    case pbspro

    package var description: String { rawValue }

    /// Accepts the names users write ("pbs", "PBS Pro", "slurm", "local").
    package init?(name: String) {
        switch name.lowercased().filter({ $0 != " " && $0 != "-" && $0 != "_" }) {
        case "local", "none": self = .local
        case "slurm": self = .slurm
        case "pbs", "pbspro", "openpbs": self = .pbspro
        default: return nil
        }
    }

    /// `QXUB_SCHEDULER` if set, else `qsub` on PATH → PBS Pro, `sbatch` → Slurm, else local.
    package static func detect(environment: (String) -> String? = Environment.get) -> SchedulerKind {
        if let forced = environment("QXUB_SCHEDULER"), let kind = SchedulerKind(name: forced) { return kind }
        let path = environment("PATH")
        if Environment.which("qsub", path: path) != nil { return .pbspro }
        if Environment.which("sbatch", path: path) != nil { return .slurm }
        return .local
    }
}
