import Foundation
import QxubClient
import QxubProtocol
import QxubSystem
import Testing

@Suite("Job-end notices: payloads, settings, what a session saw")
struct NotificationPayloadTests {
    let failed = JobEndNotice(jobID: "123.gadi-pbs", name: "train", platform: "gadi", exitCode: 1, elapsedSeconds: 3725)

    func object(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("Slack: a text line and the Python qxub's header and fields (job id, exit code), plus platform and elapsed")
    func slack() throws {
        let body = try object(failed.slackPayload)
        #expect(
            body["text"] as? String == "\u{274C} Job FAILED: train (123.gadi-pbs) on gadi, exit code 1, elapsed 1h02m"
        )
        let blocks = try #require(body["blocks"] as? [[String: Any]])
        #expect(blocks.count == 2)
        let header = try #require(blocks[0]["text"] as? [String: Any])
        #expect(blocks[0]["type"] as? String == "header" && header["text"] as? String == "\u{274C} Job FAILED: train")
        let fields = try #require(blocks[1]["fields"] as? [[String: Any]]).compactMap { $0["text"] as? String }
        #expect(
            fields == [
                "*Job ID:*\n`123.gadi-pbs`", "*Exit Code:*\n`1`", "*Platform:*\n`gadi`", "*Elapsed:*\n`1h02m`",
            ]
        )
    }

    @Test("Discord: content and the Python qxub's embed (title, green or red, inline fields)")
    func discord() throws {
        let ok = JobEndNotice(jobID: "local-ab", name: nil, platform: "local", exitCode: 0, elapsedSeconds: 65)
        let body = try object(ok.discordPayload)
        #expect(
            body["content"] as? String
                == "\u{2705} Job SUCCESS: local-ab (local-ab) on local, exit code 0, elapsed 1m05s"
        )
        let embed = try #require((body["embeds"] as? [[String: Any]])?.first)
        #expect(embed["title"] as? String == "\u{2705} Job SUCCESS: local-ab")
        #expect(embed["color"] as? Int == 0x00FF00)
        let fields = try #require(embed["fields"] as? [[String: Any]])
        #expect(fields.compactMap { $0["name"] as? String } == ["Job ID", "Exit Code", "Platform", "Elapsed"])
        #expect(fields.compactMap { $0["value"] as? String } == ["`local-ab`", "`0`", "`local`", "`1m05s`"])
        #expect(
            try object(failed.discordPayload)["embeds"].flatMap { ($0 as? [[String: Any]])?.first?["color"] as? Int }
                == 0xFF0000
        )
    }

    @Test(
        "names fall back to the id's first part, and elapsed reads as the monitor's",
        arguments: [
            (nil, 5, "123", "5s"), ("", 59, "123", "59s"), ("x", 60, "x", "1m00s"), ("x", 7200, "x", "2h00m"),
            ("x", nil, "x", "-"),
        ] as [(String?, Int?, String, String)]
    )
    func nameAndElapsed(name: String?, seconds: Int?, shownName: String, elapsed: String) {
        let notice = JobEndNotice(
            jobID: "123.gadi-pbs",
            name: name,
            platform: "p",
            exitCode: 0,
            elapsedSeconds: seconds
        )
        #expect(notice.name == shownName)
        #expect(notice.elapsedText == elapsed)
    }

    @Test("quotes, backslashes and newlines in a name stay valid JSON")
    func escaping() throws {
        let notice = JobEndNotice(jobID: "1", name: "a\"b\\c\nd", platform: "p", exitCode: 0, elapsedSeconds: 1)
        let body = try object(notice.slackPayload)
        #expect((body["text"] as? String)?.contains("a\"b\\c\nd") == true)
    }

    /// `notifications:` with `channels` (name → key → value).
    static func configuration(_ channels: [String: [String: String]]) -> Configuration {
        var configuration = Configuration()
        configuration.add(
            .map(["notifications": .map(channels.mapValues { .map($0.mapValues { .string($0) }) })]),
            from: .init(name: "user", path: "/u/config.yaml")
        )
        return configuration
    }

    @Test("settings: the Python qxub's keys, ${NAME} from the environment, and what cannot be used said once")
    func settings() throws {
        let configuration = Self.configuration([
            "slack": ["webhook_url": "https://hooks.slack.com/services/T/B/x"],
            "discord": ["webhook_url": "${HOOK}"],
        ])
        let set = NotificationSettings(configuration: configuration) {
            $0 == "HOOK" ? "https://discord.com/api/webhooks/1/t" : nil
        }
        #expect(
            set.webhooks == [
                .init(channel: .slack, url: "https://hooks.slack.com/services/T/B/x"),
                .init(channel: .discord, url: "https://discord.com/api/webhooks/1/t"),
            ]
        )
        #expect(set.problems.isEmpty && set.warningsForNotify(followed: true).isEmpty)
        let unset = NotificationSettings(configuration: configuration) { _ in nil }
        #expect(unset.webhooks.map(\.channel) == [.slack])
        #expect(
            unset.problems == [
                "notifications.discord.webhook_url is ${HOOK}, and that variable is not set: nothing is sent to discord"
            ]
        )
        let bot = NotificationSettings(
            configuration: Self.configuration(["slack": ["bot_token": "x", "user_id": "U1"]])
        )
        #expect(bot.webhooks.isEmpty)
        #expect(
            bot.problems == [
                "notifications.slack.bot_token (direct messages) is not supported: use notifications.slack.webhook_url"
            ]
        )
        #expect(
            NotificationSettings().warningsForNotify(followed: true) == [
                "--notify: no webhook is configured (notifications.slack.webhook_url or notifications.discord.webhook_url): nothing will be sent"
            ]
        )
        #expect(set.warningsForNotify(followed: false).count == 1)
    }

    @Test(
        "what a session saw: a notice only for a job seen to end, elapsed from its start (else its submission)",
        arguments: [
            ([], nil),
            (["submitted@10", "running@12", "finished 3@42"], 30),
            (["submitted@10", "finished 0@15"], 5),
            (["submitted@10", "running@12"], nil),
        ] as [([String], Int?)]
    )
    func ending(events: [String], elapsed: Int?) throws {
        var ending = JobEnding()
        var code: Int32?
        for event in events {
            let parts = event.split(separator: "@")
            let at = Double(parts[1])!
            switch parts[0] {
            case "submitted": ending.observe(.submitted(jobID: "j1", backend: "local"), now: at)
            case "running": ending.observe(.state(JobState(phase: .running)), now: at)
            default:
                code = Int32(parts[0].split(separator: " ")[1])!
                ending.observe(.finished(code: code!, message: nil), now: at)
            }
        }
        let notice = ending.notice(name: "n", platform: "p")
        if let elapsed {
            #expect(
                notice == JobEndNotice(jobID: "j1", name: "n", platform: "p", exitCode: code!, elapsedSeconds: elapsed)
            )
        } else {
            #expect(notice == nil)
        }
    }

    @Test("curl gets the URL and the body on stdin, quoted as its config syntax wants, with the time limit")
    func curlConfig() {
        let webhook = NotificationSettings.Webhook(channel: .slack, url: "https://h/x?a=\"b\"")
        let config = JobNotifier.curlConfig(webhook, body: #"{"text":"a\nb"}"#, timeout: 5)
        let lines = config.split(separator: "\n").map(String.init)
        #expect(lines.first == #"url = "https://h/x?a=\"b\"""#)
        #expect(lines.contains(#"data-binary = "{\"text\":\"a\\nb\"}""#))
        #expect(lines.contains(#"header = "Content-Type: application/json""#))
        #expect(lines.contains("max-time = 5") && lines.contains("connect-timeout = 5"))
    }

    @Test(
        "what a curl run means: 2xx is sent, anything else is one line that names the channel",
        arguments: [
            (ProcessExit.exited(0), "204", false, nil),
            (.exited(0), "200", false, nil),
            (.exited(0), "500", false, "cannot notify discord: the webhook answered HTTP 500"),
            (.exited(0), "302", false, "cannot notify discord: the webhook answered HTTP 302"),
            (.exited(28), "000", false, "cannot notify discord: no answer within 5 s"),
            (.signaled(9), "", true, "cannot notify discord: no answer within 5 s"),
            (.exited(7), "000", false, "cannot notify discord: curl: (7) Failed to connect"),
        ] as [(ProcessExit, String, Bool, String?)]
    )
    func curlOutcome(exit: ProcessExit, stdout: String, timedOut: Bool, problem: String?) {
        let run = CollectedRun(
            exit: exit,
            stdout: Array(stdout.utf8),
            stderr: Array("curl: (7) Failed to connect\n".utf8),
            timedOut: timedOut
        )
        #expect(JobNotifier.problem(run, channel: .discord, timeout: 5) == problem)
    }
}
