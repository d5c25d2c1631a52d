import ArgumentParser
import QxubProtocol

/// The root `qxub` command.
package struct QxubCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qxub",
        abstract: "Run commands as HPC batch jobs and watch them as if they ran in your terminal.",
        version: "qxub \(QxubVersion.current)",
        subcommands: [
            Exec.self, Interactive.self, Batch.self, Attach.self, Status.self, Cancel.self, Monitor.self, Doctor.self,
            Resources.self,
            History.self,
            PlatformCommand.self, SelectQueue.self, Estimate.self, Validate.self, Agent.self, Config.self, Session.self,
        ]
    )

    package init() {}
}
