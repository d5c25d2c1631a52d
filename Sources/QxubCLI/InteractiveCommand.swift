import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub interactive [options] [-- COMMAND...]` (and `qxi`): a terminal on a compute node.
    package struct Interactive: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "interactive",
            abstract: "Start an interactive job: your shell (or COMMAND) on a compute node, on this terminal.",
            discussion: """
                Without a command: your login shell on the compute node, in the execution context (--env, --mod,
                --sif) and the working directory that exec would use. With one: that command, on a terminal:
                  qxub interactive --env pytorch --mem 16GB -- ipython
                While the job waits in the queue, Ctrl-C cancels it. Once it runs, this terminal is the job's:
                Ctrl-C reaches the program there, and qxub exits with the job's exit status.
                A lost connection does not end the job: qxub reconnects, and `qxub attach ID` takes the terminal
                back from anywhere, for --grace (default 10m) after the last qxub left; then the job is ended.
                """
        )

        @OptionGroup(title: "Execution context") var context: ContextOptions
        @OptionGroup(title: "Resources") var resources: ResourceOptions
        @OptionGroup(title: "Job") var job: JobOptions
        @OptionGroup(title: "Where") var place: PlatformOptions

        @Option(
            name: .customLong("grace"),
            help: "How long the job outlives a lost connection before it is ended (e.g. 10m, 1h; default 10m)."
        )
        var grace: String?

        @Flag(name: .customLong("dry"), help: "Print the interactive command and its script; start nothing.")
        var dry = false

        @Flag(name: .shortAndLong, help: "More messages (repeatable).")
        var verbose: Int

        @Argument(parsing: .postTerminator, help: "The command, after -- (default: your shell).")
        var command: [String] = []

        package init() {}

        /// The name of an interactive job unless -N gives one (the Python qxub's).
        static let defaultName = "qxub-interactive"
        static let defaultGrace: UInt32 = 600

        package mutating func validate() throws {
            if job.array != nil {
                throw ValidationError("an interactive job cannot be an array: drop --array")
            }
            if let grace {
                do throws(ClientError) {
                    _ = try ResourceParser.walltime(grace)
                } catch {
                    throw ValidationError("--grace: \(error.message) (\(error.hint))")
                }
            }
            try context.validate()
            try job.validate()
            try resources.validate()
        }

        package func run() throws {
            ClientLog.level = verbose
            let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                let terminal = JobTerminal(input: 0, output: 1)
                if terminal == nil && !dry {
                    throw ClientError(
                        "qxub interactive needs a terminal: its standard input is not one",
                        hint: "run it from a terminal; for a job without one use `qxub exec -- COMMAND`",
                        exitCode: ExitCodes.usage
                    )
                }
                let configuration = try place.configuration()
                let platform = try Platform.resolve(place.platformName, configuration: configuration)
                let endpoint = AgentEndpoint(platform: platform, settings: place.settings())
                let connection = try endpoint.connect(loop: EventLoop())
                var options = job
                if options.name == nil { options.name = Self.defaultName }
                let commandLine: JobSpec.Command = command.count == 1 ? .shell(command[0]) : .argv(command)
                var builder = JobSpecBuilder(
                    command: commandLine,
                    context: context,
                    resources: resources,
                    job: options,
                    output: .init(),
                    remote: platform.remote,
                    configuration: configuration,
                    platformName: platform.name
                )
                var spec: JobSpec
                do throws(ClientError) {
                    spec = try builder.build()
                } catch {
                    connection.abandon()
                    throw error
                }
                // The terminal's transcript is the job's stdout, in its state directory (a configured out/err path
                // is for batch jobs).
                spec.stdoutPath = nil
                spec.stderrPath = nil
                let size = terminal?.size() ?? (rows: 24, columns: 80)
                var graceSeconds = Self.defaultGrace
                if let grace { graceSeconds = UInt32(clamping: try ResourceParser.walltime(grace)) }
                spec.terminal = JobSpec.Terminal(
                    rows: size.rows,
                    columns: size.columns,
                    type: Environment.get("TERM") ?? "xterm",
                    graceSeconds: graceSeconds
                )
                for warning in builder.warnings { try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n") }
                return try Exec.runSession(
                    endpoint: endpoint,
                    start: .submit(spec),
                    mode: dry ? .dry : .follow,
                    connection: connection,
                    terminal: terminal
                )
            }
            if code != 0 { throw ExitCode(code) }
        }
    }
}
