import QxubClient
import Testing

@Suite("WarmStart: the request and replies between a qxub and its holder's warm socket")
struct WarmStartTests {
    static let requests: [WarmStart.Request] = [
        WarmStart.Request(
            identity: "2049:1234:96422024:1764864000.5",
            arguments: ["exec", "--platform", "gadi", "--", "python", "train.py", "--lr", "0.1"],
            directory: "/home/users/ab1234/project é",
            environment: ["HOME=/home/users/ab1234", "EMPTY=", "MULTI=a=b=c", "LINES=one\ntwo"],
            umask: 0o077,
            ignoredSignals: [1, 13]
        ),
        WarmStart.Request(
            identity: "1:2:3:4.5",
            arguments: ["status", ""],
            directory: "/",
            environment: [],
            umask: 0,
            ignoredSignals: []
        ),
    ]

    @Test("a request decodes to what was encoded (arguments, directory, environment, umask, ignored signals)")
    func roundTrip() throws {
        for request in Self.requests {
            let bytes = request.encoded()
            #expect(WarmStart.Request.totalSize(prefix: bytes[...].prefix(9)) == bytes.count)
            #expect(WarmStart.Request.decode(bytes[...]) == request)
        }
    }

    @Test("a truncated, lengthened or foreign request is not decoded")
    func malformed() {
        let bytes = Self.requests[0].encoded()
        #expect(WarmStart.Request.decode(bytes.dropLast()) == nil)
        #expect(WarmStart.Request.decode((bytes + [0])[...]) == nil)
        #expect(WarmStart.Request.totalSize(prefix: Array("GET / HTTP/1.1\r\n".utf8)[...]) == nil)
        // A length past the limit is refused before anything is read into memory.
        #expect(WarmStart.Request.totalSize(prefix: (Array("QXWS1".utf8) + [0x7F, 0xFF, 0xFF, 0xFF])[...]) == nil)
    }

    @Test(
        "replies are 5 bytes each way",
        arguments: [
            WarmStart.Reply.started(4_194_303), .exited(0), .exited(130), .signalled(9), .runHere,
        ]
    )
    func replies(reply: WarmStart.Reply) {
        let bytes = reply.encoded
        #expect(bytes.count == WarmStart.Reply.size)
        #expect(WarmStart.Reply(bytes[...]) == reply)
    }

    @Test("only exec, status and cancel are run warm")
    func commands() {
        #expect(["exec", "status", "cancel"].allSatisfy(WarmStart.isWarmCommand))
        #expect(
            !["session", "agent", "doctor", "config", "history", "batch", "--help", ""].contains(
                where: WarmStart.isWarmCommand
            )
        )
    }
}
