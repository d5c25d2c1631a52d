import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

extension QxubCommand {
    /// `qxub batch FILE|-`: one job per line, all over one session.
    package struct Batch: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "batch",
            abstract: "Run many commands as jobs over one session: one shell command line per input line.",
            discussion: """
                Blank lines and lines starting with # are skipped. Options apply to every job.
                Output lines are tagged [N] with the job's line number among the commands; a summary goes
                to stderr. Exit status: the number of jobs that failed (at most 100), 0 when all succeeded.
                """
        )

        @Argument(help: "A file with one command per line, or - for standard input.")
        var file: String

        @OptionGroup(title: "Execution context") var context: ContextOptions
        @OptionGroup(title: "Resources") var resources: ResourceOptions
        @OptionGroup(title: "Job") var job: JobOptions
        @OptionGroup(title: "Output") var output: OutputOptions
        @OptionGroup(title: "Where") var place: PlatformOptions

        package init() {}

        package mutating func validate() throws {
            try context.validate()
            try job.validate()
            if output.stdout != nil || output.stderr != nil || output.joblog != nil {
                throw ValidationError(
                    "--out, --err and --joblog would be shared by every job: leave them out in batch mode"
                )
            }
        }

        package func run() throws {
            let bytes = file == "-" ? (try? FileDescriptor.readAll(0)) : FileSystem.read(file)
            guard let bytes else {
                throw CLIFailure(
                    ClientError(
                        "cannot read \(file)",
                        hint: "give a file with one command per line, or - for stdin",
                        exitCode: ExitCodes.usage
                    )
                )
            }
            let commands = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
                .map { String($0).trimmingWhitespace() }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard !commands.isEmpty else {
                throw CLIFailure(
                    ClientError(
                        "\(file) has no commands",
                        hint: "one shell command line per line",
                        exitCode: ExitCodes.usage
                    )
                )
            }
            let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                let configuration = try place.configuration()
                let platform = try Platform.resolve(place.platformName, configuration: configuration)
                var specs: [JobSpec] = []
                for (index, command) in commands.enumerated() {
                    var builder = JobSpecBuilder(
                        command: .shell(command),
                        context: context,
                        resources: resources,
                        job: job,
                        output: output.request,
                        remote: platform.remote,
                        configuration: configuration,
                        sharedByManyJobs: true,
                        platformName: platform.name
                    )
                    var spec = try builder.build()
                    if index == 0 {
                        let notifyWarnings =
                            job.notify
                            ? NotificationSettings(configuration: configuration).warningsForNotify(
                                followed: !output.terse
                            ) : []
                        for warning in builder.warnings + notifyWarnings {
                            try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n")
                        }
                    }
                    if job.name == nil { spec.name = spec.name + "-\(index + 1)" }
                    specs.append(spec)
                }
                let session = try BatchSession(
                    endpoint: AgentEndpoint(platform: platform, settings: .fromProcess()),
                    specs: specs,
                    terse: output.terse
                )
                session.onMessage = { try? FileDescriptor.writeAll(2, "qxub: " + $0 + "\n") }
                session.history = try? HistoryStore()
                let code = session.run()
                // One message per job that was seen to end, sent together once the batch is over (a post made
                // while the batch runs would hold up the session's loop).
                var notifier = JobNotifier(settings: NotificationSettings(configuration: configuration))
                if job.notify, !output.terse, !notifier.settings.webhooks.isEmpty {
                    let notices = zip(specs, session.results).compactMap { spec, outcome -> JobEndNotice? in
                        guard let jobID = outcome.jobID, let code = outcome.code else { return nil }
                        return JobEndNotice(
                            jobID: jobID,
                            name: spec.name,
                            platform: platform.name,
                            exitCode: code,
                            elapsedSeconds: nil
                        )
                    }
                    for warning in notifier.send(notices) where !output.quiet {
                        try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n")
                    }
                }
                if !output.terse && !output.quiet {
                    let results = session.results
                    let failed = results.enumerated().filter { ($0.element.code ?? 1) != 0 }
                    var summary =
                        "qxub batch: \(results.count) jobs, \(results.count - failed.count) succeeded, \(failed.count) failed"
                    for (index, outcome) in failed.prefix(20) {
                        summary +=
                            "\n  [\(index + 1)] \(outcome.jobID ?? "not submitted"): exit \(outcome.code.map(String.init) ?? "?")"
                            + (outcome.message.map { " (\($0))" } ?? "")
                    }
                    try? FileDescriptor.writeAll(2, summary + "\n")
                }
                return code
            }
            if code != 0 { throw ExitCode(code) }
        }
    }
}
