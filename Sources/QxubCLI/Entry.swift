import ArgumentParser
import QxubClient
import QxubSystem

/// The `qxub` executable's entry: parse, run, and turn failures into messages and exit statuses.
public enum Entry {
    public static func main(_ arguments: [String]) -> Never {
        do {
            var command = try QxubCommand.parseAsRoot(arguments)
            try command.run()
            QxubCommand.exit()
        } catch let failure as CLIFailure {
            try? FileDescriptor.writeAll(2, "qxub: error: \(failure.error.message)\n" + (failure.error.hint.isEmpty ? "" : "  hint: \(failure.error.hint)\n"))
            QxubCommand.exit(withError: ExitCode(failure.error.exitCode))
        } catch {
            QxubCommand.exit(withError: error)
        }
    }
}
