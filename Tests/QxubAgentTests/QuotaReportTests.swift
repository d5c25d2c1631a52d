import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Reading `lquota` and `quota -w -p` (Tests/Fixtures/quota) and the refusal of a submission at a full quota.
@Suite("quota: the state root's disk quota")
struct QuotaReportTests {
    static func fixture(_ name: String) throws -> String {
        var root = #filePath
        for _ in 0..<3 { root = FileSystem.directoryName(root) }
        return try #require(FileSystem.readText(root + "/Tests/Fixtures/quota/" + name), "missing fixture \(name)")
    }

    @Test(
        "lquota: the line of the filesystem holding the state root, its usage and limits",
        arguments: [
            ("/home/123/ab1234/.qxub", "/home", 9_792_525_434 as UInt64, 10 << 30 as UInt64, 10 << 30 as UInt64),
            ("/scratch/a00/ab1234/.qxub", "/scratch/a00", 1_924_145_348_608, 2 << 40, 4 << 40),
            ("/g/data/a00/ab1234/.qxub", "/g/data/a00", 10 << 40, 10 << 40, 11 << 40),
        ]
    )
    func lquota(root: String, filesystem: String, used: UInt64, soft: UInt64, hard: UInt64) throws {
        let report = try #require(QuotaReport.parseLquota(try Self.fixture("lquota-gadi.txt"), root: root))
        #expect(
            report
                == QuotaReport(
                    filesystem: filesystem,
                    usedBytes: used,
                    softBytes: soft,
                    hardBytes: hard,
                    source: "lquota"
                )
        )
    }

    @Test("lquota: a state root on a filesystem it does not list, or on another project, has no quota")
    func lquotaOther() throws {
        let text = try Self.fixture("lquota-gadi.txt")
        #expect(QuotaReport.parseLquota(text, root: "/scratch/b11/ab1234/.qxub") == nil)
        #expect(QuotaReport.parseLquota(text, root: "/tmp/.qxub") == nil)
        #expect(QuotaReport.parseLquota("lquota: cannot reach the quota server\n", root: "/home/ab1234") == nil)
    }

    struct QuotaCase: Sendable, CustomTestStringConvertible {
        var device: String
        var now: Int
        var used: UInt64
        var soft: UInt64
        var hard: UInt64
        var graceExpired: Bool
        var refused: Bool
        var testDescription: String { "\(device) at \(now)" }
    }

    /// Before and after the grace end 1733356800 of the fixture; /dev/sdb1 is at its hard limit either way.
    static let quotaCases: [QuotaCase] = [
        QuotaCase(
            device: "/dev/sdb1",
            now: 1_700_000_000,
            used: 10 << 30,
            soft: 9 << 30,
            hard: 10 << 30,
            graceExpired: false,
            refused: true
        ),
        QuotaCase(
            device: "/dev/sdc1",
            now: 1_700_000_000,
            used: 9_728_000_000,
            soft: 9 << 30,
            hard: 10 << 30,
            graceExpired: false,
            refused: false
        ),
        QuotaCase(
            device: "/dev/sdc1",
            now: 1_800_000_000,
            used: 9_728_000_000,
            soft: 9 << 30,
            hard: 10 << 30,
            graceExpired: true,
            refused: true
        ),
        QuotaCase(
            device: "nfs01:/export/home",
            now: 1_800_000_000,
            used: 4 << 30,
            soft: 9 << 30,
            hard: 10 << 30,
            graceExpired: false,
            refused: false
        ),
    ]

    @Test("quota -w -p: the device's line; over the soft limit refuses once its grace has ended", arguments: quotaCases)
    func quota(_ c: QuotaCase) throws {
        let text = try Self.fixture("quota-w-p.txt")
        let report = try #require(QuotaReport.parseQuota(text, device: c.device, now: c.now))
        #expect(
            report
                == QuotaReport(
                    filesystem: c.device,
                    usedBytes: c.used,
                    softBytes: c.soft,
                    hardBytes: c.hard,
                    graceExpired: c.graceExpired,
                    source: "quota"
                )
        )
        #expect((report.refusal(root: "/r") != nil) == c.refused)
        #expect(QuotaReport.parseQuota(text, device: "/dev/sdz9", now: c.now) == nil)
    }

    @Test("the mount holding a path: the longest mount point it is under, and that mount's source")
    func mountSource() {
        let mountinfo = """
            22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
            30 22 8:17 / /home rw,relatime shared:2 - ext4 /dev/sdb1 rw
            31 30 0:40 / /home/lab rw,relatime shared:3 - nfs nfs01:/export/home rw
            """
        #expect(QuotaReport.mountSource(of: "/home/ab1234/.qxub", mountinfo: mountinfo)?.source == "/dev/sdb1")
        #expect(QuotaReport.mountSource(of: "/home/lab/x", mountinfo: mountinfo)?.source == "nfs01:/export/home")
        #expect(QuotaReport.mountSource(of: "/homework/x", mountinfo: mountinfo)?.source == "overlay")
    }

    @Test("a quota used up refuses with the state root, usage, limit and what to do; doctor's summary line")
    func refusalAndSummary() throws {
        let full = QuotaReport(
            filesystem: "/home",
            usedBytes: 10 << 30,
            softBytes: 10 << 30,
            hardBytes: 10 << 30,
            source: "lquota"
        )
        let error = try #require(full.refusal(root: "/home/ab1234/.qxub"))
        #expect(error.code == .submitFailed)
        #expect(
            error.message
                == "the job's output directory /home/ab1234/.qxub is on /home, at its quota (10 GB used of 10 GB, "
                + "says lquota): the job was not submitted"
        )
        #expect(
            error.hint
                == "clean up there, or set the platform's state_root (platforms.NAME.state_root in qxub's config) "
                + "to a filesystem with room, such as /scratch/{project}/{user}/.qxub"
        )
        let room = QuotaReport(
            filesystem: "/home",
            usedBytes: 9_792_525_434,
            softBytes: 10 << 30,
            hardBytes: 10 << 30,
            source: "lquota"
        )
        #expect(room.refusal(root: "/home/ab1234/.qxub") == nil)
        #expect(room.summary == "9.1 GB of 10 GB used on /home (lquota)")
        let expired = QuotaReport(
            filesystem: "/dev/sdc1",
            usedBytes: 9_728_000_000,
            softBytes: 9 << 30,
            hardBytes: 10 << 30,
            graceExpired: true,
            source: "quota"
        )
        #expect(
            expired.refusal(root: "/data/.qxub")?.message
                == "the job's output directory /data/.qxub is on /dev/sdc1, over its 9.0 GB quota past the grace "
                + "period (9.1 GB used, says quota): the job was not submitted"
        )
    }

    @Test("the quota is read once per session, and again after a refusal (the user may have cleaned up)")
    func readAgainAfterForget() throws {
        var runs = 0
        let commands = CommandRunner { arguments, _, completion in
            runs += 1
            completion(CollectedRun(exit: .exited(0), stdout: Array("no quota here\n".utf8), stderr: []))
        }
        let bin = "/tmp/qxub-quota-forget-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        defer { _ = try? runCollectingOutput(["rm", "-rf", bin]) }
        try FileSystem.createDirectories(bin, mode: 0o755)
        try FileSystem.writeAtomically(bin + "/lquota", "#!/bin/sh\n", mode: 0o755)
        let check = QuotaCheck(commands: commands, log: AgentLog(path: nil), path: bin)
        var answers = 0
        check.whenKnown(root: "/home/u/.qxub") { _ in answers += 1 }
        check.whenKnown(root: "/home/u/.qxub") { _ in answers += 1 }
        #expect(runs == 1 && answers == 2)
        check.forget()
        check.whenKnown(root: "/home/u/.qxub") { _ in answers += 1 }
        #expect(runs == 2 && answers == 3)
    }
}
