import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

extension QxubCommand {
    /// `qxub exec [options] -- COMMAND...`
    public struct Exec: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Submit a command as a batch job and follow it until it ends.",
            discussion: """
                One argument after -- is a shell command line run by bash (pipes, $VARS and ; work):
                  qxub exec -- 'echo $QXUB_JOB_ID; hostname'
                Two or more arguments are an argv, passed exactly (no word splitting, globbing or expansion):
                  qxub exec -- python3 -c "print('hi there')"
                The job's stdout and stderr arrive on yours; qxub exits with the job's exit status.
                Ctrl-C cancels the job; a second Ctrl-C leaves it running.
                """)

        @OptionGroup(title: "Execution context") var context: ContextOptions
        @OptionGroup(title: "Resources") var resources: ResourceOptions
        @OptionGroup(title: "Job") var job: JobOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        @Option(name: .customLong("cmd"), help: "The command as one string (instead of after --).")
        var commandString: String?

        @Argument(parsing: .postTerminator, help: "The command, after --.")
        var command: [String] = []

        public init() {}

        public mutating func validate() throws {
            if commandString != nil && !command.isEmpty {
                throw ValidationError("give the command either after -- or with --cmd, not both")
            }
            if commandString == nil && command.isEmpty {
                throw ValidationError("no command: put it after --, as in `qxub exec -- python train.py`")
            }
            if let commandString, commandString.trimmingCharacters(in: " \t\n").isEmpty {
                throw ValidationError("--cmd is empty")
            }
            if job.array != nil && !output.terse && !output.dry {
                throw ValidationError("following an array job's many subjobs is not supported yet: submit it with --terse (each subjob writes out.<index> and err.<index> in the job's state directory)")
            }
            try context.validate()
            try output.validate()
        }

        public func run() throws {
            let commandLine: JobSpec.Command
            if let commandString {
                commandLine = .shell(commandString)
            } else if command.count == 1 {
                commandLine = .shell(command[0])
            } else {
                commandLine = .argv(command)
            }
            let spec: JobSpec
            do {
                spec = try JobSpecBuilder(command: commandLine, context: context, resources: resources, job: job, output: output).build()
            } catch let error as ClientError {
                throw CLIFailure(error)
            }
            let mode: ExecSession.Mode = output.dry ? .dry : output.terse ? .terse : output.quiet ? .quiet : .follow
            let code = try Self.runSession(spec: spec, mode: mode)
            if code != 0 { throw ExitCode(code) }
        }

        static func runSession(spec: JobSpec, mode: ExecSession.Mode) throws -> Int32 {
            let loop = EventLoop()
            let connection: AgentConnection
            do {
                let agent = try AgentLocator.localAgent()
                connection = try AgentConnection(command: [agent, "serve"], peerName: "the local agent", loop: loop)
            } catch let error as ClientError {
                throw CLIFailure(error)
            }
            let session = ExecSession(connection: connection, spec: spec, mode: mode)
            let status = TerminalStatus(quiet: mode == .quiet || mode == .terse || mode == .dry, loop: loop)
            session.onStatus = { status.show($0) }
            return session.run()
        }
    }
}

/// A client error on its way out: printed with its hint, exits with its status.
struct CLIFailure: Error {
    let error: ClientError
    init(_ error: ClientError) { self.error = error }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, set.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}
