import ArgumentParser
import QxubClient
import QxubSystem

/// The `qxub` executable's entry: parse, run, and turn failures into messages and exit statuses.
package enum Entry {
    /// - Parameter commandLine: argv, the program's name first (`qx` means `qxub exec`).
    package static func main(_ commandLine: [String]) -> Never {
        let name = commandLine.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "qxub"
        let rest = Array(commandLine.dropFirst())
        let arguments = name == "qx" ? QxArguments.execArguments(rest) : rest
        do {
            var command = try QxubCommand.parseAsRoot(arguments)
            try command.run()
            QxubCommand.exit()
        } catch let failure as CLIFailure {
            try? FileDescriptor.writeAll(
                2,
                "qxub: error: \(failure.error.message)\n"
                    + (failure.error.hint.isEmpty ? "" : "  hint: \(failure.error.hint)\n")
            )
            QxubCommand.exit(withError: ExitCode(failure.error.exitCode))
        } catch {
            QxubCommand.exit(withError: error)
        }
    }
}
