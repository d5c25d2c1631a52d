import Foundation

/// A job's end as qxub tells Slack or Discord about it: the Python qxub's message, plus platform and elapsed.
package struct JobEndNotice: Sendable, Equatable {
    package var jobID: String
    /// The job's name (the Python qxub falls back to the id's first part, as here).
    package var name: String
    package var platform: String
    package var exitCode: Int32
    /// Seconds from the job's start to its end; nil when qxub never saw it start.
    package var elapsedSeconds: Int?

    package init(jobID: String, name: String?, platform: String, exitCode: Int32, elapsedSeconds: Int?) {
        self.jobID = jobID
        let fallback = jobID.split(separator: ".").first.map(String.init) ?? jobID
        self.name = name.flatMap { $0.isEmpty ? nil : $0 } ?? fallback
        self.platform = platform
        self.exitCode = exitCode
        self.elapsedSeconds = elapsedSeconds
    }

    /// `SUCCESS` or `FAILED`, the Python qxub's words.
    package var status: String { exitCode == 0 ? "SUCCESS" : "FAILED" }

    private var emoji: String { exitCode == 0 ? "\u{2705}" : "\u{274C}" }

    /// `45s`, `2m05s`, `1h02m`; `-` when unknown.
    package var elapsedText: String {
        guard let seconds = elapsedSeconds.map({ max(0, $0) }) else { return "-" }
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if seconds >= 3600 { return "\(seconds / 3600)h\(two(seconds / 60 % 60))m" }
        if seconds >= 60 { return "\(seconds / 60)m\(two(seconds % 60))s" }
        return "\(seconds)s"
    }

    /// The one-line summary (Slack's fallback `text`, Discord's `content`).
    package var summary: String {
        "\(emoji) Job \(status): \(name) (\(jobID)) on \(platform), exit code \(exitCode), elapsed \(elapsedText)"
    }

    /// The body of a Slack incoming webhook: `text` plus the Python qxub's Block Kit header and fields.
    package var slackPayload: String {
        json([
            "text": summary,
            "blocks": [
                [
                    "type": "header",
                    "text": ["type": "plain_text", "text": "\(emoji) Job \(status): \(name)", "emoji": true],
                ],
                [
                    "type": "section",
                    "fields": [
                        ["type": "mrkdwn", "text": "*Job ID:*\n`\(jobID)`"],
                        ["type": "mrkdwn", "text": "*Exit Code:*\n`\(exitCode)`"],
                        ["type": "mrkdwn", "text": "*Platform:*\n`\(platform)`"],
                        ["type": "mrkdwn", "text": "*Elapsed:*\n`\(elapsedText)`"],
                    ],
                ],
            ],
        ])
    }

    /// The body of a Discord webhook: `content` plus the Python qxub's embed (title, colour, fields).
    package var discordPayload: String {
        json([
            "content": summary,
            "embeds": [
                [
                    "title": "\(emoji) Job \(status): \(name)",
                    "color": exitCode == 0 ? 0x00FF00 : 0xFF0000,
                    "fields": [
                        ["name": "Job ID", "value": "`\(jobID)`", "inline": true],
                        ["name": "Exit Code", "value": "`\(exitCode)`", "inline": true],
                        ["name": "Platform", "value": "`\(platform)`", "inline": true],
                        ["name": "Elapsed", "value": "`\(elapsedText)`", "inline": true],
                    ],
                ]
            ],
        ])
    }

    /// Keys sorted, so a payload is the same bytes every time.
    private func json(_ object: [String: Any]) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
