import Foundation
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--notify`: Slack and Discord webhooks told of a job's end, through the built `qxub` and a loopback server.
@Suite("Slack and Discord notifications through the built qxub", .serialized)
struct NotificationTests {
    /// A sandbox whose configuration sends to `slack` and `discord` (URLs; nil: not configured).
    func sandbox(slack: String?, discord: String?, environment: [String: String] = [:]) throws -> Sandbox {
        let sandbox = try Sandbox("notify")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        for (key, value) in environment { sandbox.environment[key] = value }
        var yaml = "notifications:\n"
        if let slack { yaml += "  slack:\n    webhook_url: \"\(slack)\"\n" }
        if let discord { yaml += "  discord:\n    webhook_url: \"\(discord)\"\n" }
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub", mode: 0o755)
        try FileSystem.writeAtomically(sandbox.directory + "/config/qxub/config.yaml", yaml)
        return sandbox
    }

    func json(_ body: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    @Test("exec --notify posts the job's end to Slack ({text, blocks}) and Discord ({content, embeds}) as JSON")
    func execPostsBoth() throws {
        let server = try LoopbackWebhook()
        // Discord's URL comes from the environment, written ${NAME} as in the Python qxub.
        let sandbox = try sandbox(
            slack: server.url("/services/T0/B0/secret"),
            discord: "${QXUB_TEST_DISCORD}",
            environment: ["QXUB_TEST_DISCORD": server.url("/api/webhooks/1/tok")]
        )
        let child = try sandbox.start([
            "exec", "--notify", "--backend", "local", "-N", "nightly", "--", "echo $QXUB_JOB_ID; exit 3",
        ])
        let requests = server.serve(count: 2, status: 204, timeout: 60)
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(3), "the job's exit status is qxub's: \(run.stderrText)")
        let jobID = run.stdoutText.trimmingWhitespaceForTests()
        #expect(jobID.hasPrefix("local-"), "\(run.stdoutText)")
        #expect(!run.stderrText.contains("warning"), "\(run.stderrText)")
        try #require(requests.count == 2, "\(run.stderrText)")
        let slack = try #require(requests.first { $0.path == "/services/T0/B0/secret" })
        let discord = try #require(requests.first { $0.path == "/api/webhooks/1/tok" })
        for request in [slack, discord] {
            #expect(request.method == "POST")
            #expect(request.headers["content-type"] == "application/json")
        }
        let slackBody = try json(slack.body)
        let text = try #require(slackBody["text"] as? String)
        #expect(text.contains("nightly") && text.contains("exit code 3") && text.contains("on local"), "\(text)")
        #expect(slack.body.contains(jobID), "\(slack.body)")
        let blocks = try #require(slackBody["blocks"] as? [[String: Any]])
        let header = try #require((blocks.first?["text"] as? [String: Any])?["text"] as? String)
        #expect(header == "\u{274C} Job FAILED: nightly")
        let fields = try #require(blocks.dropFirst().first?["fields"] as? [[String: Any]]).compactMap {
            $0["text"] as? String
        }
        #expect(fields.contains("*Job ID:*\n`\(jobID)`") && fields.contains("*Exit Code:*\n`3`"), "\(fields)")
        let discordBody = try json(discord.body)
        #expect((discordBody["content"] as? String) == text)
        let embed = try #require((discordBody["embeds"] as? [[String: Any]])?.first)
        #expect(embed["title"] as? String == "\u{274C} Job FAILED: nightly")
        let values = try #require(embed["fields"] as? [[String: Any]]).compactMap { field in
            (field["name"] as? String).map { ($0, field["value"] as? String ?? "") }
        }
        #expect(values.contains { $0 == ("Job ID", "`\(jobID)`") } && values.contains { $0 == ("Exit Code", "`3`") })
    }

    @Test("a webhook that answers 500 or is unreachable is one warning line each; the job's exit status stays qxub's")
    func failuresAreWarnings() throws {
        let server = try LoopbackWebhook()
        // A port nobody listens on: bound, read, closed.
        let closedPort = try LoopbackWebhook().port
        let sandbox = try sandbox(slack: server.url("/slack"), discord: "http://127.0.0.1:\(closedPort)/discord")
        let child = try sandbox.start(["exec", "--notify", "--backend", "local", "--", "exit 0"])
        let requests = server.serve(count: 1, status: 500, timeout: 60)
        let run = collect(child, timeout: 60)
        #expect(requests.count == 1)
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let warnings = run.stderrText.split(separator: "\n").filter { $0.hasPrefix("qxub: warning: cannot notify") }
        #expect(warnings.count == 2, "one line per webhook: \(run.stderrText)")
        #expect(warnings.contains("qxub: warning: cannot notify slack: the webhook answered HTTP 500"))
        #expect(
            warnings.contains { $0.hasPrefix("qxub: warning: cannot notify discord: curl: (7) Failed to connect") },
            "\(run.stderrText)"
        )
        #expect(!run.stderrText.contains("/discord"), "the URL (a secret) is never printed: \(run.stderrText)")
    }

    @Test("a webhook that never answers costs qxub a few seconds, then a warning; the job's status stays qxub's")
    func hungWebhookIsBounded() throws {
        let server = try LoopbackWebhook()
        let sandbox = try sandbox(slack: server.url("/slack"), discord: nil)
        let started = MonotonicClock.now()
        let child = try sandbox.start(["exec", "--notify", "--backend", "local", "--", "exit 4"])
        let requests = server.serve(count: 1, status: nil, timeout: 60)
        let run = collect(child, timeout: 60)
        server.close()
        #expect(requests.count == 1)
        #expect(run.exit == .exited(4), "\(run.stderrText)")
        #expect(
            run.stderrText.contains("qxub: warning: cannot notify slack: no answer within 5 s\n"),
            "\(run.stderrText)"
        )
        #expect(MonotonicClock.now() - started < 20, "bounded: curl's 5 s limit, not the server's silence")
    }

    @Test("monitor --notify tells of each job it sees end; --notify without a webhook says nothing will be sent")
    func monitorNotifies() throws {
        let server = try LoopbackWebhook()
        let sandbox = try sandbox(slack: nil, discord: server.url("/hook"))
        let go = sandbox.directory + "/go"
        let submitted = try sandbox.qxub([
            "exec", "--terse", "--backend", "local", "-N", "waiter", "--",
            "while [ ! -e \(go) ]; do sleep 0.05; done; exit 2",
        ])
        let jobID = submitted.stdoutText.trimmingWhitespaceForTests()
        #expect(submitted.exit == .exited(0) && !jobID.isEmpty, "\(submitted.stderrText)")
        let child = try sandbox.start(["monitor", "--notify", "-i", "0.5", jobID])
        try FileSystem.writeAtomically(go, "")
        let requests = server.serve(count: 1, status: 204, timeout: 60)
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(1), "a failed job: \(run.stdoutText)\(run.stderrText)")
        let request = try #require(requests.first)
        #expect(request.method == "POST" && request.path == "/hook")
        let body = try json(request.body)
        let content = try #require(body["content"] as? String)
        #expect(content.contains("waiter (\(jobID))") && content.contains("exit code 2"), "\(content)")

        let unconfigured = try Sandbox("notify-none")
        unconfigured.environment["XDG_CONFIG_HOME"] = unconfigured.directory + "/config"
        let plain = try unconfigured.qxub(["exec", "--notify", "--backend", "local", "--", "true"])
        #expect(plain.exit == .exited(0))
        #expect(
            plain.stderrText
                == "qxub: warning: --notify: no webhook is configured (notifications.slack.webhook_url or notifications.discord.webhook_url): nothing will be sent\n"
        )
    }

    @Test("batch --notify sends one message per job that ended, with its own exit code")
    func batchNotifies() throws {
        let server = try LoopbackWebhook()
        let sandbox = try sandbox(slack: nil, discord: server.url("/hook"))
        try FileSystem.writeAtomically(sandbox.directory + "/jobs.txt", "exit 0\nexit 5\n")
        let child = try sandbox.start([
            "batch", "--notify", "--backend", "local", "-N", "sweep", sandbox.directory + "/jobs.txt",
        ])
        let requests = server.serve(count: 2, status: 204, timeout: 60)
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(1), "one job failed: \(run.stderrText)")
        let contents = try requests.map { try #require(try json($0.body)["content"] as? String) }
        #expect(contents.count == 2)
        #expect(contents.contains { $0.contains("Job SUCCESS: sweep (") && $0.contains("exit code 0") }, "\(contents)")
        #expect(contents.contains { $0.contains("Job FAILED: sweep (") && $0.contains("exit code 5") }, "\(contents)")
    }

    @Test("exec --array --notify sends one message for the array once it ended, with qxub's exit status")
    func arrayNotifies() throws {
        let server = try LoopbackWebhook()
        let sandbox = try sandbox(slack: nil, discord: server.url("/hook"))
        let child = try sandbox.start([
            "exec", "--notify", "--backend", "local", "-N", "sweep", "--array", "1-3", "--",
            "exit $(( PBS_ARRAY_INDEX == 2 ? 5 : 0 ))",
        ])
        let requests = server.serve(count: 1, status: 204, timeout: 60)
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(5), "subjob 2's status: \(run.stderrText)")
        let content = try #require(try requests.first.map { try json($0.body)["content"] as? String } ?? nil)
        #expect(content.contains("Job FAILED: sweep (") && content.contains("exit code 5"), "\(content)")
        #expect(content.contains("[]"), "the array's id: \(content)")
    }
}
