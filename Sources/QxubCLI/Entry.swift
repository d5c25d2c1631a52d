import ArgumentParser
import QxubClient
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The `qxub` executable's entry: parse, run, and turn failures into messages and exit statuses.
package enum Entry {
    /// - Parameter commandLine: argv, the program's name first (`qx` means `qxub exec`, `qxi` means
    ///   `qxub interactive`, `qxet` means `qxub exec` and `qxtat` means `qxub status`, the Python qxub's names).
    package static func main(_ commandLine: [String]) -> Never {
        let name = commandLine.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "qxub"
        let rest = Array(commandLine.dropFirst())
        let arguments =
            switch name {
            case "qx": QxArguments.execArguments(rest)
            case "qxi": ["interactive"] + rest
            case "qxet": ["exec"] + rest
            case "qxtat": ["status"] + rest
            default: rest
            }
        // Before any parsing: a warm session holder may run the whole command in a fork that parsed before.
        if let code = WarmStartClient.forward(arguments) { exit(code) }
        run(arguments, warmConnection: nil)
    }

    /// Parses and runs `arguments` (without the program's name).
    /// - Parameter warmConnection: in a warm fork of a session holder (``WarmStartFork``), the connection to
    ///   the qxub that asked: a command that needs a terminal is handed back on it before it does anything.
    static func run(_ arguments: [String], warmConnection: Int32?) -> Never {
        do {
            var command = try QxubCommand.parseAsRoot(arguments)
            try command.run()
            finish(nil, warmConnection: warmConnection)
        } catch let failure as CLIFailure {
            if let warmConnection, failure.error.needsForeground { WarmStartFork.handBack(warmConnection) }
            try? FileDescriptor.writeAll(
                2,
                "qxub: error: \(failure.error.message)\n"
                    + (failure.error.hint.isEmpty ? "" : "  hint: \(failure.error.hint)\n")
            )
            finish(ExitCode(failure.error.exitCode), warmConnection: warmConnection)
        } catch {
            finish(error, warmConnection: warmConnection)
        }
    }

    /// Exits as swift-argument-parser does (its message for `error`, on stdout for help, and its status); a
    /// warm fork first tells the qxub that asked its status, once all its output is written, so that the
    /// status does not depend on the holder living on.
    private static func finish(_ error: Error?, warmConnection: Int32?) -> Never {
        guard let warmConnection else { QxubCommand.exit(withError: error) }
        let code = error.map { QxubCommand.exitCode(for: $0).rawValue } ?? 0
        fflush(nil)  // what print buffered goes out before the status
        if let error {
            let message = QxubCommand.fullMessage(for: error)
            if !message.isEmpty { try? FileDescriptor.writeAll(code == 0 ? 1 : 2, message + "\n") }
        }
        WarmStartFork.report(.exited(code), on: warmConnection)
        exit(code)
    }
}
