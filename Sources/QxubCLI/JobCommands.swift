import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub cancel JOB...`
    public struct Cancel: ParsableCommand {
        public static let configuration = CommandConfiguration(abstract: "Cancel jobs submitted through qxub.")
        @Argument(help: "Job ids (read from stdin, one per line, when none are given).") var jobIDs: [String] = []
        @OptionGroup(title: "Where") var place: PlatformOptions
        public init() {}

        public func run() throws {
            let ids = jobIDs.isEmpty ? readIDsFromStdin() : jobIDs
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            let outcomes = try CLIFailure.catching { () throws(ClientError) -> [(String, String)] in
                let requests = try AgentRequests(endpoint: AgentEndpoint(platform: try place.platform()))
                defer { requests.close() }
                return try requests.cancel(ids)
            }
            for (id, outcome) in outcomes { print("\(id): \(outcome)") }
            if outcomes.contains(where: { $0.1.hasPrefix("failed") }) { throw ExitCode(1) }
        }
    }

    /// `qxub status JOB... [--format human|json|snakemake|exitcode]`
    public struct Status: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Show where jobs are: queued, running or finished, and how they ended.",
            discussion: "--format snakemake prints success|running|failed (Snakemake's cluster-status contract).")
        @Argument(help: "Job ids (read from stdin when none are given).") var jobIDs: [String] = []
        @Option(help: "human, json, snakemake or exitcode.") var format: String = "human"
        @OptionGroup(title: "Where") var place: PlatformOptions
        public init() {}

        public func validate() throws {
            guard ["human", "json", "snakemake", "exitcode"].contains(format) else {
                throw ValidationError("--format \(format): use human, json, snakemake or exitcode")
            }
        }

        public func run() throws {
            let ids = jobIDs.isEmpty ? readIDsFromStdin() : jobIDs
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            let statuses = try CLIFailure.catching { () throws(ClientError) -> [JobStatus] in
                let requests = try AgentRequests(endpoint: AgentEndpoint(platform: try place.platform()))
                defer { requests.close() }
                return try requests.status(ids)
            }
            var worst: Int32 = 0
            for status in statuses {
                let code = status.termination.map { ExitCodes.exit(for: $0).code }
                switch format {
                case "snakemake":
                    print(status.state.phase != .finished ? "running" : (code == 0 ? "success" : "failed"))
                case "json":
                    let exit = code.map { String($0) } ?? "null"
                    print("{\"job_id\": \"\(jsonEscape(status.jobID))\", \"status\": \"\(status.state.phase)\", \"host\": \"\(jsonEscape(status.state.host))\", \"exit_code\": \(exit)}")
                case "exitcode":
                    // As the Python qxub: 0 running, 2 finished OK, 1 failed.
                    worst = max(worst, status.state.phase != .finished ? 0 : (code == 0 ? 2 : 1))
                default:
                    let end = status.termination.map { termination -> String in
                        let (code, message) = ExitCodes.exit(for: termination)
                        return ", exit status \(code)" + (message.map { " (\($0))" } ?? "")
                    } ?? ""
                    let host = status.state.host.isEmpty ? "" : " on \(status.state.host)"
                    print("\(status.jobID): \(status.state.phase)\(host)\(end)" + (status.state.detail.isEmpty ? "" : " [\(status.state.detail)]"))
                }
            }
            if format == "exitcode" && worst != 0 { throw ExitCode(worst) }
        }
    }

    /// `qxub monitor [JOB...]`: follow many jobs' states over one session until all have ended.
    public struct Monitor: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Wait for jobs to finish, showing their states; exit 0 only when every job succeeded.",
            discussion: "Without ids as arguments they are read from stdin (one per line), so `qxub exec --terse ... | qxub monitor` works.")
        @Argument(help: "Job ids.") var jobIDs: [String] = []
        @Option(name: [.customShort("i"), .customLong("interval")], help: "Seconds between checks.") var interval: Double = 5
        @Flag(name: .customLong("quiet"), help: "Only the final summary.") var quiet = false
        @OptionGroup(title: "Where") var place: PlatformOptions
        public init() {}

        public func run() throws {
            let ids = Array(Set(jobIDs.isEmpty ? readIDsFromStdin() : jobIDs)).sorted()
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            let (succeeded, failed) = try CLIFailure.catching { () throws(ClientError) -> (Int, Int) in
                let requests = try AgentRequests(endpoint: AgentEndpoint(platform: try place.platform()))
                defer { requests.close() }
                var reported: Set<String> = []
                while true {
                    let statuses = try requests.status(ids)
                    for status in statuses where status.state.phase == .finished && !reported.contains(status.jobID) {
                        reported.insert(status.jobID)
                        if !quiet {
                            let code = status.termination.map { ExitCodes.exit(for: $0).code } ?? ExitCodes.unavailable
                            print("\(status.jobID): finished, exit status \(code)")
                        }
                    }
                    let finished = statuses.filter { $0.state.phase == .finished }
                    // Unknown because a scheduler query failed is not an end: ask again next round.
                    let unknown = statuses.filter { $0.state.phase == .unknown && !$0.state.detail.containsText("query failed") }
                    if finished.count + unknown.count == statuses.count {
                        let ok = finished.filter { $0.termination.map { ExitCodes.exit(for: $0).code == 0 } ?? false }.count
                        return (ok, statuses.count - ok)
                    }
                    if !quiet && isatty(2) == 1 {
                        let running = statuses.filter { $0.state.phase == .running }.count
                        try? FileDescriptor.writeAll(2, "\r\u{1B}[K\(finished.count)/\(statuses.count) finished, \(running) running")
                    }
                    usleep(UInt32(max(0.5, interval) * 1_000_000))
                }
            }
            if !quiet && isatty(2) == 1 { try? FileDescriptor.writeAll(2, "\r\u{1B}[K") }
            print("all jobs finished: \(succeeded) succeeded, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }
    }
}

/// Job ids piped in (`qxub exec --terse ... | qxub monitor`).
func readIDsFromStdin() -> [String] {
    guard isatty(0) == 0, CommandLine.arguments.count > 0, let bytes = try? FileDescriptor.readAll(0, limit: 1 << 20) else { return [] }
    return String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init)
}

func jsonEscape(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case _ where scalar.value < 0x20: result += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result
}
