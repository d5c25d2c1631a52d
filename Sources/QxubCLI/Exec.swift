import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub exec [options] -- COMMAND...`
    package struct Exec: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "exec",
            abstract: "Submit a command as a batch job and follow it until it ends.",
            discussion: """
                One argument after -- is a shell command line run by bash (pipes, $VARS and ; work):
                  qxub exec -- 'echo $QXUB_JOB_ID; hostname'
                Two or more arguments are an argv, passed exactly (no word splitting, globbing or expansion):
                  qxub exec -- python3 -c "print('hi there')"
                The job's stdout and stderr arrive on yours; qxub exits with the job's exit status.
                With --array 1-10, every subjob is followed: its lines tagged [index], the counts per state
                on stderr (one live line on a terminal), and the exit status of the lowest-numbered subjob
                that failed; Ctrl-C cancels the whole array.
                Ctrl-C cancels the job; a second Ctrl-C leaves it running.
                """
        )

        @OptionGroup(title: "Execution context") var context: ContextOptions
        @OptionGroup(title: "Resources") var resources: ResourceOptions
        @OptionGroup(title: "Job") var job: JobOptions
        @OptionGroup(title: "Output") var output: OutputOptions
        @OptionGroup(title: "Where") var place: PlatformOptions

        @Option(name: .customLong("cmd"), help: "The command as one string (instead of after --).")
        var commandString: String?

        @Argument(parsing: .postTerminator, help: "The command, after --.")
        var command: [String] = []

        package init() {}

        package mutating func validate() throws {
            if commandString != nil && !command.isEmpty {
                throw ValidationError("give the command either after -- or with --cmd, not both")
            }
            if commandString == nil && command.isEmpty && job.alias == nil {
                throw ValidationError("no command: put it after --, as in `qxub exec -- python train.py`")
            }
            if let commandString, commandString.trimmingCharacters(in: " \t\n").isEmpty {
                throw ValidationError("--cmd is empty")
            }
            // `qxub exec -- ''` would submit a job that runs nothing and succeeds.
            if let first = command.first, first.trimmingCharacters(in: " \t\n").isEmpty {
                throw ValidationError(
                    "the command after -- is empty: give the command to run, as in `qxub exec -- python train.py`"
                )
            }
            if let array = job.array, ArrayRange(array) == nil, !output.terse, !output.dry {
                throw ValidationError(
                    "--array \(array): not an index range qxub can follow (such as 1-10, 1-10:2 or 1,3,5; at most \(ArrayRange.limit) indices); --terse submits it as it is"
                )
            }
            try context.validate()
            try job.validate()
            try output.validate()
            try resources.validate()
        }

        package func run() throws {
            let mode: ExecSession.Mode = output.dry ? .dry : output.terse ? .terse : output.quiet ? .quiet : .follow
            ClientLog.level = output.verbose
            let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                let configuration = try place.configuration()
                let platform = try Platform.resolve(place.platformName, configuration: configuration)
                let words =
                    commandString.map { $0.split(separator: " ").map(String.init) }
                    ?? (command.count == 1 ? command[0].split(separator: " ").map(String.init) : command)
                let preset = try job.preset(for: words, context: context, configuration: configuration)
                let commandLine: JobSpec.Command
                if let commandString {
                    commandLine = .shell(commandString)
                } else if command.count == 1 {
                    commandLine = .shell(command[0])
                } else if command.isEmpty {
                    guard let stored = preset?.string("cmd") else {
                        throw ClientError(
                            "alias '\(job.alias ?? "")' has no cmd and no command was given",
                            hint: "put the command after --",
                            exitCode: ExitCodes.usage
                        )
                    }
                    commandLine = .shell(stored)
                } else {
                    commandLine = .argv(command)
                }
                // The session starts first: ssh, the login shell and the agent come up while the job is prepared.
                let endpoint = AgentEndpoint(platform: platform, settings: place.settings())
                let connection = try endpoint.connect(loop: EventLoop())
                // After the connect: a warm fork that hands the command back has printed nothing.
                if let preset, !output.quiet && !output.terse {
                    try? FileDescriptor.writeAll(2, "qxub: using \(preset.kind.rawValue) '\(preset.name)'\n")
                }
                var builder = JobSpecBuilder(
                    command: commandLine,
                    context: context,
                    resources: resources,
                    job: job,
                    output: output.request,
                    remote: platform.remote,
                    configuration: configuration,
                    preset: preset,
                    platformName: platform.name
                )
                let spec: JobSpec
                do throws(ClientError) {
                    spec = try builder.build()
                } catch {
                    // A usage error: end the session at once rather than wait for it to come up and leave.
                    connection.abandon()
                    throw error
                }
                let notifier =
                    job.notify ? JobNotifier(settings: NotificationSettings(configuration: configuration)) : nil
                if !output.quiet {
                    let notifyWarnings = notifier.map { $0.settings.warningsForNotify(followed: mode != .terse) } ?? []
                    for warning in builder.warnings + notifyWarnings {
                        try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n")
                    }
                }
                if let array = spec.array, mode == .follow || mode == .quiet {
                    return try Self.followArray(
                        spec,
                        range: array,
                        endpoint: endpoint,
                        connection: connection,
                        quiet: mode == .quiet,
                        notifier: notifier
                    )
                }
                return try Self.runSession(
                    endpoint: endpoint,
                    start: .submit(spec),
                    mode: mode,
                    connection: connection,
                    warmConnection: place.warmStartConnection,
                    notifier: notifier,
                    jobName: spec.name
                )
            }
            if code != 0 { throw ExitCode(code) }
        }

        /// An array job followed: its subjobs' output tagged `[index]`, a line of counts per state on stderr,
        /// the exit status of the first subjob that failed (in index order).
        static func followArray(
            _ spec: JobSpec,
            range: String,
            endpoint: AgentEndpoint,
            connection: AgentConnection,
            quiet: Bool,
            notifier: JobNotifier? = nil
        ) throws(ClientError) -> Int32 {
            guard let indices = ArrayRange(range)?.indices else {
                connection.abandon()
                throw ClientError(
                    "--array \(range): not an index range qxub can follow",
                    hint: "give a range such as 1-10, 1-10:2 or 1,3,5, or submit it with --terse",
                    exitCode: ExitCodes.usage
                )
            }
            let session = try BatchSession(endpoint: endpoint, specs: [spec], terse: false, connection: connection)
            session.arrayIndices = indices
            session.quiet = quiet
            let status = quiet ? nil : ArrayStatus(loop: session.eventLoop)
            if let status {
                session.onMessage = { status.message($0) }
                session.onProgress = { status.progress($0) }
                session.onOutput = { status.makeWayForOutput() }
            }
            session.history = try? HistoryStore()
            let code = session.run()
            status?.finish()
            // The array, once seen to end, as one message with the status qxub exits with (the lowest-numbered
            // failed subjob's).
            if var notifier, !notifier.settings.webhooks.isEmpty, let array = session.results.first,
                let arrayID = array.jobID, array.code != nil
            {
                let notice = JobEndNotice(
                    jobID: arrayID,
                    name: spec.name,
                    platform: endpoint.platform.name,
                    exitCode: code,
                    elapsedSeconds: nil
                )
                for warning in notifier.send([notice]) where !quiet {
                    try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n")
                }
            }
            return code
        }

        static func runSession(
            endpoint: AgentEndpoint,
            start: ExecSession.Start,
            mode: ExecSession.Mode,
            onlyStream: Output.Stream? = nil,
            joblog: Bool = false,
            connection: AgentConnection? = nil,
            warmConnection: Int32? = nil,
            terminal: JobTerminal? = nil,
            notifier: JobNotifier? = nil,
            jobName: String? = nil
        ) throws(ClientError) -> Int32 {
            let session = try ExecSession(endpoint: endpoint, start: start, mode: mode, connection: connection)
            session.onlyStream = onlyStream
            session.joblog = joblog
            session.terminal = terminal
            // Opened at the first record, which comes after the job id is out (with --terse) and while ssh
            // winds down: GRDB's set-up and the schema check are off the path to the id.
            // A warm fork of `--terse` tells the qxub that waits its status before the record is written.
            let holdsRecords = mode == .terse && warmConnection != nil
            let history =
                mode == .dry ? nil : HistoryStore(deferredPath: HistoryStore.defaultPath, holdingRecords: holdsRecords)
            session.history = history
            let status = TerminalStatus(
                quiet: mode == .quiet || mode == .terse || mode == .dry || onlyStream != nil,
                loop: session.eventLoop,
                showWarnings: mode != .quiet
            )
            var ending = JobEnding()
            session.onStatus = {
                ending.observe($0)
                status.show($0)
            }
            session.onTerminal = { status.terminalTaken = $0 == .take }
            session.onOutput = { status.makeWayForOutput() }
            let code = session.run()
            // Only a job seen to end is told about (not one left running by Ctrl-C or a lost connection).
            if var notifier, !notifier.settings.webhooks.isEmpty,
                let notice = ending.notice(name: jobName, platform: endpoint.platform.name)
            {
                for warning in notifier.send(notice) { status.show(.warning(warning)) }
            }
            if session.failure?.agentMissing == true, let remote = endpoint.platform.remote,
                offerInstall(platform: endpoint.platform.name)
            {
                let installer = AgentInstaller(
                    platform: endpoint.platform.name,
                    remote: remote,
                    settings: endpoint.settings
                )
                let installed = try installer.install(directory: nil)
                try? FileDescriptor.writeAll(2, installed.remoteStderrReport + "qxub: " + installed.line + "\n")
                return try runSession(
                    endpoint: endpoint,
                    start: start,
                    mode: mode,
                    onlyStream: onlyStream,
                    joblog: joblog,
                    terminal: terminal
                )
            }
            if Environment.get("QXUB_STATS") == "1" {
                try? FileDescriptor.writeAll(
                    2,
                    "qxub: stats: \(session.outputBytes) bytes of job output arrived in \(session.wireBytesReceived) bytes on the wire\n"
                )
            }
            if holdsRecords, let warmConnection, let history {
                WarmStartFork.report(.exited(code), on: warmConnection)
                do { try history.writeHeld() } catch {
                    ClientLog.write("history: cannot record the submission: \(error)")
                }
            }
            return code
        }
    }

    /// On a terminal, asks whether to install the agent now (the session never reached the scheduler).
    static func offerInstall(platform: String) -> Bool {
        guard isatty(0) == 1, isatty(2) == 1 else { return false }
        try? FileDescriptor.writeAll(2, "qxub: install qxub-agent on \(platform) now? [Y/n] ")
        var byte: UInt8 = 0
        var answer: [UInt8] = []
        while read(0, &byte, 1) == 1 && byte != 0x0A { answer.append(byte) }
        let text = String(decoding: answer, as: UTF8.self).trimmingWhitespace().lowercased()
        return text.isEmpty || text == "y" || text == "yes"
    }
}

extension QxubCommand {
    /// `qxub attach JOB`: follow a job submitted earlier, from any login node of the cluster.
    package struct Attach: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "attach",
            abstract: "Follow a job submitted earlier: its output from the start, then live, and its exit status.",
            discussion: "Ctrl-C stops following; the job keeps running."
        )

        @Argument(help: "The job id (as `qxub exec --terse` printed it).")
        var jobID: String

        @Flag(name: .customLong("quiet"), help: "Print nothing; exit with the job's exit status.")
        var quiet = false

        @OptionGroup(title: "Where") var place: PlatformOptions

        package init() {}

        package func run() throws {
            let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                try Exec.runSession(
                    endpoint: AgentEndpoint(platform: try place.platform(of: jobID), settings: place.settings()),
                    start: .attach(jobID: jobID),
                    mode: quiet ? .quiet : .follow,
                    // An interactive job's terminal becomes ours again (a batch job's output is only followed).
                    terminal: quiet ? nil : JobTerminal(input: 0, output: 1)
                )
            }
            if code != 0 { throw ExitCode(code) }
        }
    }
}

/// `--platform NAME` / `--profile NAME` and `--config FILE`.
struct PlatformOptions: ParsableArguments {
    @Option(
        name: [.customLong("platform"), .customLong("profile")],
        help: "Where to run: a platform from the configuration (default: defaults.platform, else this machine).",
        completion: .custom(CompletionValues.platforms)
    )
    var platformName: String?

    @Option(
        name: .customLong("config"),
        help: "An extra configuration file, above all others.",
        completion: .file(extensions: ["yaml", "yml"])
    )
    var configFile: String?

    /// Set by qxub itself in a warm fork of a session holder (``WarmStart``): the descriptor of the connection
    /// to the qxub that asked. Such a fork has no terminal to prompt on.
    @Option(name: .customLong("warm-start-fork"), help: .private)
    var warmStartConnection: Int32?

    /// The settings of this process's environment, and whether it may prompt.
    func settings() -> ClientSettings {
        var settings = ClientSettings.fromProcess()
        settings.mayPrompt = warmStartConnection == nil
        return settings
    }

    func configuration() throws(ClientError) -> Configuration {
        if let configFile, !FileSystem.exists(configFile) {
            throw ClientError(
                "--config \(configFile): no such file",
                hint: "give the path of a YAML configuration file",
                exitCode: ExitCodes.usage
            )
        }
        return try Configuration.load(explicit: configFile)
    }

    func platform() throws(ClientError) -> Platform {
        try Platform.resolve(platformName, configuration: try configuration())
    }
}

/// A client error on its way out: printed with its hint, exits with its status.
struct CLIFailure: Error {
    let error: ClientError
    init(_ error: ClientError) { self.error = error }

    /// Runs `body`, turning a ``ClientError`` into a failure the entry point prints.
    static func catching<T>(_ body: () throws(ClientError) -> T) throws(CLIFailure) -> T {
        do {
            return try body()
        } catch {
            throw CLIFailure(error)
        }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, set.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}
