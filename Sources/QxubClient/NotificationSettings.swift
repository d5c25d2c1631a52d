import QxubSystem

/// Where job ends are sent: the `notifications:` section, with the Python qxub's keys.
///
/// `notifications.slack.webhook_url` and `notifications.discord.webhook_url`; a value written `${NAME}` is
/// read from the environment variable NAME (so a secret stays out of the file), as the Python qxub does.
package struct NotificationSettings: Sendable, Equatable {
    /// One webhook and the payload it takes.
    package enum Channel: String, Sendable, Equatable {
        case slack
        case discord
    }

    package struct Webhook: Sendable, Equatable {
        package var channel: Channel
        package var url: String

        package init(channel: Channel, url: String) {
            self.channel = channel
            self.url = url
        }

        package func payload(_ notice: JobEndNotice) -> String {
            switch channel {
            case .slack: notice.slackPayload
            case .discord: notice.discordPayload
            }
        }
    }

    package var webhooks: [Webhook] = []
    /// Configured values that cannot be used, for the user (one line each).
    package var problems: [String] = []

    package init(webhooks: [Webhook] = [], problems: [String] = []) {
        self.webhooks = webhooks
        self.problems = problems
    }

    /// Reads the section; `environment` resolves `${NAME}` values.
    package init(configuration: Configuration, environment: (String) -> String? = { Environment.get($0) }) {
        for channel in [Channel.slack, .discord] {
            let key = "notifications.\(channel.rawValue).webhook_url"
            if let raw = configuration.string(key), !raw.isEmpty {
                guard let url = Self.resolve(raw, environment: environment), !url.isEmpty else {
                    problems.append("\(key) is \(raw), and that variable is not set: nothing is sent to \(channel)")
                    continue
                }
                guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                    problems.append("\(key) is not an http(s) URL: nothing is sent to \(channel)")
                    continue
                }
                webhooks.append(Webhook(channel: channel, url: url))
            } else if channel == .slack, configuration.string("notifications.slack.bot_token") != nil {
                problems.append(
                    "notifications.slack.bot_token (direct messages) is not supported: use notifications.slack.webhook_url"
                )
            }
        }
    }

    /// What `--notify` cannot do with these settings, said before anything runs; `followed` is false for
    /// `exec --terse`, which does not see the job end.
    package func warningsForNotify(followed: Bool) -> [String] {
        if webhooks.isEmpty && problems.isEmpty {
            return [
                "--notify: no webhook is configured (notifications.slack.webhook_url or notifications.discord.webhook_url): nothing will be sent"
            ]
        }
        if !followed && !webhooks.isEmpty {
            return problems + [
                "--notify with --terse: qxub does not follow the job; `qxub monitor --notify ID` tells of its end"
            ]
        }
        return problems
    }

    /// `${NAME}` → the variable's value (nil when unset); anything else as written.
    static func resolve(_ value: String, environment: (String) -> String?) -> String? {
        guard value.hasPrefix("${"), value.hasSuffix("}"), value.count > 3 else { return value }
        return environment(String(value.dropFirst(2).dropLast()))
    }
}
