import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

@Suite("StateRoot: a platform's state root, expanded and checked for room")
struct StateRootTests {
    @Test(
        "placeholders and ~ expand from the agent's user, project and home",
        arguments: [
            ("/scratch/{project}/{user}/.qxub", "/scratch/a00/ab1234/.qxub"),
            ("~/.qxub", "/home/ab1234/.qxub"),
            ("~", "/home/ab1234"),
            ("/g/data/{project}/{user}/{user}", "/g/data/a00/ab1234/ab1234"),
            ("/plain", "/plain"),
        ]
    )
    func expands(template: String, expected: String) throws {
        #expect(try StateRoot.expand(template, user: "ab1234", project: "a00", home: "/home/ab1234") == expected)
    }

    @Test(
        "a placeholder without a value, an unknown one, or a relative path is refused with its reason",
        arguments: [
            ("/scratch/{project}/.qxub", "", "uses {project}, which has no value on "),
            ("/scratch/{group}/.qxub", "a00", "uses {group}, which qxub does not know"),
            ("scratch/.qxub", "a00", "is not an absolute path"),
        ]
    )
    func refuses(template: String, project: String, reason: String) {
        #expect {
            try StateRoot.expand(template, user: "u", project: project, home: "/h")
        } throws: { error in
            guard let error = error as? AgentError else { return false }
            return error.code == .submitFailed && error.message.contains("the state root \(template) \(reason)")
        }
    }

    @Test(
        "a submission is refused below 64 MB free, and allowed at 64 MB or when free space is unknown",
        arguments: [
            (UInt64(1) << 20, true), ((UInt64(64) << 20) - 1, true), (UInt64(64) << 20, false), (nil as UInt64?, false),
        ]
    )
    func refusal(free: UInt64?, refused: Bool) {
        let error = StateRoot.refusal(root: "/r", free: free)
        #expect((error != nil) == refused)
        if refused {
            #expect(error?.message.hasPrefix("the job's output directory /r has ") == true)
        }
    }

    @Test(
        "sizes read as people write them",
        arguments: [
            (UInt64(512) << 10, "512 KB"), (UInt64(63) << 20, "63 MB"), (UInt64(1536) << 20, "1.5 GB"),
            (UInt64(12) << 30, "12 GB"),
        ]
    )
    func sizes(bytes: UInt64, text: String) {
        #expect(FreeSpace.describe(bytes) == text)
    }

    @Test("the user's name from /etc/passwd where USER and LOGNAME are unset")
    func passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n#comment\nab1234:x:1000:1000::/home/ab1234:/bin/sh\n"
        #expect(StateRoot.userName(uid: 1000, passwd: passwd) == "ab1234")
        #expect(StateRoot.userName(uid: 0, passwd: passwd) == "root")
        #expect(StateRoot.userName(uid: 7, passwd: passwd) == nil)
    }

    @Test("free space of a path that does not exist yet is that of its nearest existing ancestor")
    func nearestAncestor() {
        #expect(FreeSpace.availableBytes("/tmp/qxub-no-such-dir/a/b") == FreeSpace.availableBytes("/tmp"))
        #expect(FreeSpace.availableBytes("/tmp") != nil)
    }
}
