/// What the scheduler recorded about a finished job's use (PBS's `resources_used.*`, Slurm's `sacct`), or
/// why it has no record: one ``JobStatus`` field of a ``StatusQuery`` that asked for usage.
///
/// Each value is absent when the scheduler does not say; `note` says why there is nothing at all.
package struct SchedulerUsage: WireCodable, Hashable {
    /// Milliseconds.
    package var walltimeMillis: UInt64?
    /// User plus system cpu time, milliseconds.
    package var cpuMillis: UInt64?
    package var memoryPeakBytes: UInt64?
    package var cpus: UInt64?
    /// Why the scheduler has no record (history off, accounting disabled, the query failed); empty otherwise.
    package var note: String

    package init(
        walltimeMillis: UInt64? = nil,
        cpuMillis: UInt64? = nil,
        memoryPeakBytes: UInt64? = nil,
        cpus: UInt64? = nil,
        note: String = ""
    ) {
        self.walltimeMillis = walltimeMillis
        self.cpuMillis = cpuMillis
        self.memoryPeakBytes = memoryPeakBytes
        self.cpus = cpus
        self.note = note
    }

    package func encode(to writer: inout WireWriter) {
        // Zero is a value here (a job that used no measurable cpu): written explicitly, absent means unknown.
        writer.optionalVarint(1, walltimeMillis)
        writer.optionalVarint(2, cpuMillis)
        writer.optionalVarint(3, memoryPeakBytes)
        writer.optionalVarint(4, cpus)
        if !note.isEmpty { writer.string(5, note) }
    }

    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: walltimeMillis = try field.int63()
            case 2: cpuMillis = try field.int63()
            case 3: memoryPeakBytes = try field.uint64()
            case 4: cpus = try field.int63()
            case 5: note = try field.string()
            default: break
            }
        }
    }
}
