import Testing

@testable import QxubClient

#if canImport(Glibc)
import Glibc
#endif

@Suite("Where the ssh control directory is, and ending a discarded master")
struct ControlDirectoryLocationTests {
    static func choose(
        _ variables: [String: String],
        host: String = "gadi-login-03.gadi.nci.org.au",
        ownRuntime: Bool = true
    ) -> ControlDirectory.Location {
        ControlDirectory.choose(environment: { variables[$0] }, hostName: host, userID: 1000) { _ in ownRuntime }
    }

    @Test("the first of QXUB_CONTROL_DIR, an own XDG_RUNTIME_DIR, the state directory per host, a short /tmp one")
    func locations() {
        let home = ["HOME": "/home/abc123"]
        #expect(
            Self.choose(home.merging(["QXUB_CONTROL_DIR": "/x/cm", "XDG_RUNTIME_DIR": "/run/user/1000"]) { $1 })
                == .explicit("/x/cm")
        )
        #expect(
            Self.choose(home.merging(["XDG_RUNTIME_DIR": "/run/user/1000"]) { $1 }) == .runtime("/run/user/1000/qxub")
        )
        #expect(
            Self.choose(home.merging(["XDG_RUNTIME_DIR": "/tmp", "QXUB_CONTROL_DIR": ""]) { $1 }, ownRuntime: false)
                == .state("/home/abc123/.local/state/qxub/gadi-login-03"),
            "someone else's runtime directory, empty variable"
        )
        #expect(
            Self.choose(home.merging(["XDG_STATE_HOME": "/s"]) { $1 }, host: "my mac.local") == .state("/s/qxub/my_mac")
        )
        let long = "/home/" + String(repeating: "a", count: 40)
        #expect(
            Self.choose(["HOME": long])
                == .shortTemporary(pointer: long + "/.local/state/qxub/gadi-login-03/control-dir", userID: 1000)
        )
    }

    @Test("socket names: short ones kept, long ones cut with a hash that keeps them apart")
    func socketNames() {
        #expect(ControlDirectory.socketName(platform: "gadi") == "gadi")
        #expect(ControlDirectory.socketName(platform: "a b/c") == "a_b_c")
        let one = ControlDirectory.socketName(platform: String(repeating: "p", count: 40) + "1")
        let two = ControlDirectory.socketName(platform: String(repeating: "p", count: 40) + "2")
        #expect(
            one.count == ControlDirectory.socketNameLimit && two.count == ControlDirectory.socketNameLimit && one != two
        )
        #expect(
            ControlDirectory.directoryLimit + 1 + ControlDirectory.socketNameLimit + ControlDirectory.sshBindSuffix
                == 103
        )
    }

    @Test(
        "teardown: SIGTERM ends a running master; a stopped one gets SIGKILL after 1 s",
        arguments: [
            (diesOn: SIGTERM, expected: [SIGTERM], said: "ended by signal 15"),
            (diesOn: SIGKILL, expected: [SIGTERM, SIGKILL], said: "ended by signal 9"),
            (diesOn: 0, expected: [SIGTERM, SIGKILL], said: "still there after signal 9"),
        ]
    )
    func teardown(diesOn: Int32, expected: [Int32], said: String) {
        var now = 0.0
        var sent: [Int32] = []
        let result = MasterTeardown(pid: 4242).run(
            clock: { now },
            pause: { now += 0.1 },
            signal: { _, number in sent.append(number) },
            isGone: { _ in sent.last == diesOn }
        )
        #expect(sent == expected)
        #expect(result == "pid 4242 " + said)
        #expect(now < 3.2, "within the grace periods (1 s + 2 s) and one pause")
    }
}
