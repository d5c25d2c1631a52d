import QxubClient
import QxubProtocol
import Testing

@Suite("What users write for resources")
struct ResourceParserTests {
    static let memoryCases: [(String, UInt64)] = [
        ("4GB", 4 * gib), ("16g", 16 * gib), ("1.5GB", 1536 * mib), ("4GiB", 4 * gib), ("512MB", 512 * mib),
        ("512m", 512 * mib), ("2000", 2000 * mib), ("100kb", 100 * 1024), ("4 gb", 4 * gib), ("1TB", 1024 * gib),
    ]
    static let mib: UInt64 = 1 << 20
    static let gib: UInt64 = 1 << 30

    @Test("memory sizes in binary units, as PBS reads them", arguments: memoryCases)
    func memory(text: String, bytes: UInt64) throws {
        #expect(try ResourceParser.memory(text) == bytes)
    }

    static let walltimeCases: [(String, UInt64)] = [
        ("2h30m", 9000), ("90m", 5400), ("45s", 45), ("1d", 86400), ("1d12h", 129_600), ("100:00:00", 360_000),
        ("1:30:00", 5400), ("2:30", 9000), ("90", 5400), ("1-12:00:00", 129_600), ("3600s", 3600), ("1.5h", 5400),
    ]

    @Test("walltimes", arguments: walltimeCases)
    func walltime(text: String, seconds: UInt64) throws {
        #expect(try ResourceParser.walltime(text) == seconds)
    }

    @Test(
        "nonsense is refused with the whole message and the accepted forms, never a crash",
        arguments: [
            ("", "'' is not a memory size", "'' is not a duration"),
            ("abc", "'abc' is not a memory size", "'abc' is not a duration"),
            ("4XB", "'4XB': unknown memory unit 'xb'", "'4XB' is not a duration"),
            ("-1GB", "'-1GB' is not a memory size", "'-1GB' is not a duration"),
            ("1e400GB", "'1e400GB': unknown memory unit 'e400gb'", "'1e400GB' is not a duration"),
            ("GB", "'GB' is not a memory size", "'GB' is not a duration"),
            ("1:99:00", "'1:99:00': unknown memory unit ':99:00'", "'1:99:00' is not a duration"),
            ("1:2:3:4", "'1:2:3:4': unknown memory unit ':2:3:4'", "'1:2:3:4' is not a duration"),
            ("0", "'0' is not a usable memory size", "'0' is zero: a job needs some time"),
            ("0m", "'0m' is not a usable memory size", "'0m' is zero: a job needs some time"),
            ("h", "'h' is not a memory size", "'h' is not a duration"),
            ("2h30", "'2h30': unknown memory unit 'h30'", "'2h30' is not a duration"),
            (
                "9999999999999999999999", "'9999999999999999999999' is not a usable memory size",
                "'9999999999999999999999' is not a duration"
            ),
            ("1..5h", "'1..5h' is not a memory size", "'1..5h' is not a duration"),
            (
                "999999999999999999", "'999999999999999999' is not a usable memory size",
                "'999999999999999999' is not a duration"
            ),
            (
                "999999999999999999:00", "'999999999999999999:00': unknown memory unit ':00'",
                "'999999999999999999:00' is not a duration"
            ),
            (
                "99999999999999999999d", "'99999999999999999999d': unknown memory unit 'd'",
                "'99999999999999999999d' is not a duration"
            ),
            ("1e300h", "'1e300h': unknown memory unit 'e300h'", "'1e300h' is not a duration"),
        ]
    )
    func refusals(text: String, memory: String, walltime: String) {
        #expect(
            throws: ClientError(memory, hint: "write it like \(ResourceParser.memoryForms)", exitCode: ExitCodes.usage)
        ) {
            try ResourceParser.memory(text)
        }
        #expect(
            throws: ClientError(walltime, hint: "write it like \(ResourceParser.timeForms)", exitCode: ExitCodes.usage)
        ) {
            try ResourceParser.walltime(text)
        }
    }
}

@Suite("Exit statuses for job ends (docs/exit-codes.md)")
struct ExitCodeTests {
    static let cases: [(JobTermination, Int32, Bool)] = [
        (.exited(0), 0, false),
        (.exited(7), 7, false),
        (.exited(300), 44, false),
        (.signaled(9), 137, true),
        // Garbled signal numbers from the wire: no overflow, no exit 0.
        (.signaled(Int32.max), 69, true),
        (.signaled(-128), 69, true),
        (.signaled(0), 69, true),
        (.killedByScheduler(.walltime, detail: "", ranFirst: true), 124, true),
        (.killedByScheduler(.memory, detail: "", ranFirst: true), 137, true),
        (.killedByScheduler(.deleted, detail: "", ranFirst: false), 143, true),
        (.killedByScheduler(.nodeFailure, detail: "", ranFirst: true), 75, true),
        (.cancelled(ranFirst: true), 130, true),
        (.unknown("?"), 69, true),
    ]

    @Test("each kind of end maps to its documented status", arguments: cases)
    func mapping(termination: JobTermination, code: Int32, explained: Bool) {
        let (actual, message) = ExitCodes.exit(for: termination)
        #expect(actual == code)
        #expect((message != nil) == explained)
    }
}
