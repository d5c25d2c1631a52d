import QxubSystem

/// Posts job-end notices to the configured webhooks, all at once and bounded in time.
///
/// The POST is made by `curl` (on every Linux and macOS machine) rather than FoundationNetworking: linking
/// that (and libcurl with its TLS stack) costs every qxub command about 7 ms and some 30 libraries at start-up,
/// for a message sent at most once per job. The URL and the body go to curl on stdin (`--config -`), never on
/// its command line, where other users of a login node could read a webhook's secret in `ps`.
/// A failure is a line for the user, never an error: the job's exit status is qxub's whatever happens here.
package struct JobNotifier: Sendable {
    package var settings: NotificationSettings
    /// Seconds for one webhook, connection included; the webhooks are posted in parallel.
    package var timeout: Double = 5
    package var curl = "curl"

    package init(settings: NotificationSettings) {
        self.settings = settings
    }

    /// Webhooks that failed once in this run: skipped from then on, so a dead one costs one wait and one line.
    package private(set) var failed: Set<NotificationSettings.Channel> = []
    /// How many posts run at once (`qxub monitor` may see hundreds of jobs end in one round).
    static let parallelPosts = 8

    /// Sends `notice` to every webhook; returns one warning per webhook that did not take it.
    package mutating func send(_ notice: JobEndNotice) -> [String] { send([notice]) }

    /// Sends each notice to every webhook that has not failed yet; returns one warning per webhook that failed.
    package mutating func send(_ notices: [JobEndNotice]) -> [String] {
        var posts: [(NotificationSettings.Webhook, JobEndNotice)] = []
        for notice in notices {
            for webhook in settings.webhooks where !failed.contains(webhook.channel) { posts.append((webhook, notice)) }
        }
        let loop = EventLoop()
        var warnings: [String] = []
        var next = 0
        var running = 0
        let timeout = timeout
        let curl = curl
        var failedNow = failed
        func startNext() {
            while running < Self.parallelPosts && next < posts.count {
                let (webhook, notice) = posts[next]
                next += 1
                if failedNow.contains(webhook.channel) { continue }
                let config = Self.curlConfig(webhook, body: webhook.payload(notice), timeout: timeout)
                func fail(_ message: String) {
                    if failedNow.insert(webhook.channel).inserted { warnings.append(message) }
                }
                do {
                    try AsyncCommand.run(
                        [curl, "-q", "--silent", "--show-error", "--config", "-"],
                        on: loop,
                        stdinBytes: Array(config.utf8),
                        // curl keeps its own limit; this one is for a curl that does not.
                        timeout: timeout + 1,
                        outputLimit: 64 << 10
                    ) { run in
                        running -= 1
                        if let problem = Self.problem(run, channel: webhook.channel, timeout: timeout) { fail(problem) }
                        startNext()
                    }
                    running += 1
                } catch {
                    fail("cannot notify \(webhook.channel.rawValue): cannot run \(curl): \(error)")
                }
            }
        }
        startNext()
        if running > 0 { try? loop.run() }
        failed = failedNow
        return warnings
    }

    /// curl's options for one POST, in its config file syntax (quoted strings take `\\` and `\"`).
    package static func curlConfig(_ webhook: NotificationSettings.Webhook, body: String, timeout: Double) -> String {
        func quoted(_ text: String) -> String {
            "\"" + text.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
        }
        let seconds = String(Int(timeout.rounded(.up)))
        return [
            "url = \(quoted(webhook.url))",
            "proto = \"=http,https\"",
            "request = \"POST\"",
            "header = \"Content-Type: application/json\"",
            "data-binary = \(quoted(body))",
            "connect-timeout = \(seconds)",
            "max-time = \(seconds)",
            "output = \"/dev/null\"",
            "write-out = \"%{http_code}\"",
        ].joined(separator: "\n") + "\n"
    }

    /// Nil when the webhook answered 2xx; else what went wrong, in one line.
    package static func problem(_ run: CollectedRun, channel: NotificationSettings.Channel, timeout: Double) -> String?
    {
        let name = channel.rawValue
        if run.timedOut { return "cannot notify \(name): no answer within \(Int(timeout)) s" }
        guard run.exit == .exited(0) else {
            if run.exit == .exited(28) { return "cannot notify \(name): no answer within \(Int(timeout)) s" }
            let reason = run.stderrText.split(separator: "\n").last.map(String.init) ?? "curl \(run.exit)"
            return "cannot notify \(name): \(reason.trimmingWhitespace())"
        }
        let status = run.stdoutText.trimmingWhitespace()
        guard status.hasPrefix("2"), status.count == 3 else {
            return "cannot notify \(name): the webhook answered HTTP \(status)"
        }
        return nil
    }
}
