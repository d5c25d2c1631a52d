import QxubScheduler
import QxubSystem

/// The command line of `qxub-agent keeper`: the agent renders it (``arguments``) to start a keeper, the
/// keeper parses it (``init(parsing:)``).
///
///     qxub-agent keeper --dir DIR --rows R --cols C --grace SECONDS [--term TERM] [--scheduler KIND] -- ARGV...
package struct KeeperOptions: Hashable, Sendable {
    /// The job's directory (0700): `out`, `exit`, `keeper.sock`, `keeper.log`, `keeper-ended`.
    package var directory: String
    /// The terminal's size when the command starts.
    package var windowSize: WindowSize
    /// Seconds the keeper keeps the session without an agent.
    package var grace: Double
    /// `TERM` for the command (else the keeper's own environment's).
    package var term: String?
    /// The interactive command (the shell or the scheduler's interactive submission).
    package var command: [String]
    /// Whose interactive command it is: a session ended while the scheduler still holds the job in its queue
    /// is cancelled the way that scheduler needs (``SchedulerBackend/interactiveCancel(jobID:)``).
    package var scheduler: SchedulerKind = .local

    /// The subcommand's name, the first of ``arguments``.
    package static let subcommand = "keeper"

    /// A command line that could not be read: what is wrong, for the keeper's stderr.
    package struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        package var message: String
        package init(_ message: String) { self.message = message }
        package var description: String { "qxub-agent keeper: " + message }
    }

    package init(directory: String, windowSize: WindowSize, grace: Double, term: String? = nil, command: [String]) {
        self.directory = directory
        self.windowSize = windowSize
        self.grace = grace
        self.term = term
        self.command = command
    }

    /// Everything after the agent's path: `keeper`, the options, `--`, the command.
    package var arguments: [String] {
        var arguments = [
            Self.subcommand, "--dir", directory, "--rows", String(windowSize.rows), "--cols",
            String(windowSize.columns), "--grace", Self.render(grace),
        ]
        if let term { arguments += ["--term", term] }
        if scheduler != .local { arguments += ["--scheduler", scheduler.rawValue] }
        return arguments + ["--"] + command
    }

    /// Reads ``arguments`` (starting with `keeper`).
    package init(parsing arguments: [String]) throws(ParseError) {
        var rest = arguments[...]
        guard rest.popFirst() == Self.subcommand else { throw ParseError("expected '\(Self.subcommand)' first") }
        var values: [String: String] = [:]
        while let option = rest.popFirst(), option != "--" {
            guard ["--dir", "--rows", "--cols", "--grace", "--term", "--scheduler"].contains(option) else {
                throw ParseError("unknown option '\(option)'")
            }
            guard let value = rest.popFirst() else { throw ParseError("\(option) needs a value") }
            guard values[option] == nil else { throw ParseError("\(option) given twice") }
            values[option] = value
        }
        guard !rest.isEmpty else { throw ParseError("no command after '--'") }
        func required(_ option: String) throws(ParseError) -> String {
            guard let value = values[option] else { throw ParseError("\(option) is required") }
            return value
        }
        func cells(_ option: String) throws(ParseError) -> UInt16 {
            let value = try required(option)
            guard let number = UInt16(value), number > 0 else {
                throw ParseError("\(option) '\(value)' is not a number of cells from 1 to 65535")
            }
            return number
        }
        let directory = try required("--dir")
        guard directory.hasPrefix("/") else { throw ParseError("--dir '\(directory)' is not an absolute path") }
        let rows = try cells("--rows")
        let columns = try cells("--cols")
        let graceText = try required("--grace")
        guard let grace = Double(graceText), grace.isFinite, grace >= 0 else {
            throw ParseError("--grace '\(graceText)' is not a number of seconds")
        }
        self.init(
            directory: directory,
            windowSize: WindowSize(rows: rows, columns: columns),
            grace: grace,
            term: values["--term"],
            command: Array(rest)
        )
        if let name = values["--scheduler"] {
            guard let kind = SchedulerKind(name: name) else {
                throw ParseError("--scheduler '\(name)' is not local, slurm or pbspro")
            }
            scheduler = kind
        }
    }

    /// Whole seconds without a fraction, so the command line reads as written.
    private static func render(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int64(seconds)) : String(seconds)
    }
}
