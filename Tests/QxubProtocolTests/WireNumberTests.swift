import QxubProtocol
import QxubTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Numbers from the wire meet `off_t`, `time_t` and additions on both sides: the decoders let through
/// only values that every one of those takes without trapping (issue 9, item 4). Properties over random
/// values, with the edges always included.
@Suite("Wire numbers that meet arithmetic")
struct WireNumberTests {
    /// Random 64-bit values biased to the interesting edges (around 2^63 and 2^64).
    static func values(seed: UInt64, count: Int = 2000) -> [UInt64] {
        var generator = SeededGenerator(seed: seed)
        let edges: [UInt64] = [0, 1, UInt64(Int64.max) - 100, UInt64(Int64.max), 1 << 63, UInt64.max - 15, .max]
        return edges
            + (0..<count).map { index in
                let raw = generator.next()
                switch index % 3 {
                case 0: return raw
                case 1: return UInt64(Int64.max) &+ (raw % 512) &- 256
                default: return UInt64.max - raw % 512
                }
            }
    }

    @Test("an output frame decodes only when offset + count fits off_t; then the client's sum cannot overflow")
    func outputOffsets() {
        var generator = SeededGenerator(seed: 11)
        for offset in Self.values(seed: 1) {
            let count = Int(generator.next() % 200)
            let frame = Message.output(Output(stream: .stdout, offset: offset, data: Array(repeating: 7, count: count)))
                .frame(channel: 1)
            let fits = offset <= UInt64(Int64.max) && UInt64(count) <= UInt64(Int64.max) - offset
            do {
                guard case .output(let output) = try Message(frame: frame) else {
                    Issue.record("not an output")
                    continue
                }
                #expect(fits, "offset \(offset) + \(count) decoded")
                // What the client does with it: nothing of this may trap.
                let end = output.offset + UInt64(output.data.count)
                #expect(off_t(exactly: end) != nil)
            } catch {
                #expect(!fits, "offset \(offset) + \(count) was refused: \(error)")
                let expected =
                    offset > UInt64(Int64.max)
                    ? "a output frame was malformed: field 2 is out of range"
                    : "a output frame was malformed: offset \(offset) plus \(count) bytes is past 2^63-1"
                #expect(error.description == expected)
            }
        }
    }

    @Test("watch offsets above 2^63-1 are malformed; the others reach off_t intact")
    func watchOffsets() {
        for value in Self.values(seed: 2) {
            for stdout in [true, false] {
                let watch = Watch(
                    requestID: 4,
                    jobID: "1",
                    stdoutOffset: stdout ? value : 0,
                    stderrOffset: stdout ? 0 : value
                )
                let frame = Message.watch(watch).frame(channel: 1)
                if value <= UInt64(Int64.max) {
                    #expect((try? Message(frame: frame)) == .watch(watch))
                    #expect(off_t(exactly: value) != nil)
                } else {
                    #expect(
                        throws: ProtocolError.malformedPayload(
                            type: .watch,
                            reason: "field \(stdout ? 3 : 4) is out of range"
                        )
                    ) {
                        try Message(frame: frame)
                    }
                    // The agent answers with the request id it finds in the payload.
                    #expect(Message.requestID(inPayload: frame.payload) == 4)
                }
            }
        }
    }

    @Test("times (status started/ended, history submitted) above 2^63-1 are malformed; the others fit time_t")
    func times() {
        for value in Self.values(seed: 3, count: 300) {
            let status = Message.statusReport(
                StatusReport(
                    requestID: 1,
                    jobs: [
                        JobStatus(jobID: "1", state: JobState(phase: .finished), startedAt: value, endedAt: value)
                    ]
                )
            )
            let history = Message.historyReport(
                HistoryReport(
                    requestID: 1,
                    entries: [
                        HistoryEntry(
                            jobID: "1",
                            name: "",
                            backend: "local",
                            submittedAt: value,
                            stateDirectory: "",
                            submitHost: ""
                        )
                    ]
                )
            )
            for message in [status, history] {
                let decoded = try? Message(frame: message.frame())
                #expect((decoded != nil) == (value <= UInt64(Int64.max)), "\(message.frameType) with \(value)")
                if decoded != nil { #expect(time_t(exactly: value) != nil) }
            }
        }
    }
}
