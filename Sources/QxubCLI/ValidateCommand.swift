import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

extension QxubCommand {
    /// `qxub validate [exec's options] [-- COMMAND]`: a request against the platform's queues, without submitting.
    package struct Validate: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Check a job's resources against the platform's queues, without submitting anything.",
            discussion: """
                Takes exec's options (-l, --cpus, --mem, --time, --gpus, -q, --platform,
                --shortcut, --alias, ...) and, optionally, the command after -- (it
                chooses a shortcut as exec does). Prints the queue the job would go to
                (without -q, the one --queue auto chooses), its nodes and CPUs, what
                --time would cost, then `ok` (exit 0). A request the queue refuses gets
                each broken limit on stderr with the nearest request the queue takes,
                and exit 64, as exec refuses it:
                  $ qxub validate --cpus 50 -q normal
                  (stderr) 50 CPUs on queue 'normal' span more than one node: ask for 48 or 96
                A -q queue the definition does not list is also exit 64 (exec would
                submit it unchecked and leave it to the scheduler; validate says that
                its limits are unknown and names the definition's queues). Reads the
                configuration and the platform definitions on this machine; contacts
                no cluster.
                """
        )

        @OptionGroup(title: "Execution context") var context: ContextOptions
        @OptionGroup(title: "Resources") var resources: ResourceOptions
        @OptionGroup(title: "Job") var job: JobOptions
        @OptionGroup(title: "Where") var place: PlatformOptions

        @Argument(parsing: .postTerminator, help: "The command, after -- (only to choose a shortcut).")
        var command: [String] = []

        package init() {}

        package mutating func validate() throws {
            try context.validate()
            try job.validate()
            try resources.validate()
        }

        package func run() throws {
            let refusals = try CLIFailure.catching { () throws(ClientError) -> [String] in
                let configuration = try place.configuration()
                let words = command.count == 1 ? command[0].split(separator: " ").map(String.init) : command
                var builder = JobSpecBuilder(
                    command: .argv(command.isEmpty ? ["true"] : command),
                    context: context,
                    resources: resources,
                    job: job,
                    output: .init(checkWritable: false),
                    configuration: configuration,
                    preset: try job.preset(for: words, context: context, configuration: configuration),
                    platformName: place.platformName
                )
                let choice = try builder.queueChoice()
                let definition: PlatformDefinition
                if let chosen = choice.definition {
                    definition = chosen
                } else {
                    // None to use: the error says why (none loaded, or several and none named).
                    definition = try PlatformCommand.definition(
                        try PlatformDefinition.all(configuration: configuration),
                        platform: place.platformName,
                        configuration: configuration
                    )
                }
                return try Self.report(choice, definition: definition)
            }
            if !refusals.isEmpty { throw ExitCode(ExitCodes.usage) }
        }

        /// Prints the review of `choice` on `definition`; returns the refusals (printed on stderr).
        static func report(
            _ choice: JobSpecBuilder.QueueChoice,
            definition: PlatformDefinition
        ) throws(ClientError) -> [String] {
            // Without a queue the job would take the scheduler's default: review the one the rules choose.
            let auto = choice.auto || choice.queue == nil
            let name: String
            if let given = choice.queue {
                name = given
            } else {
                name = try QueueSelector.select(choice.request, in: definition, cpusExplicit: choice.cpusExplicit)
            }
            guard let queue = definition.queue(name) else {
                throw ClientError(
                    "queue '\(name)' is not in the definition \(definition.name), so its limits are unknown",
                    hint: "its queues: \(definition.queues.map(\.name).joined(separator: ", "))",
                    exitCode: ExitCodes.usage
                )
            }
            let review = QueueSelector.review(
                choice.request,
                queue: name,
                in: definition,
                auto: auto,
                cpusExplicit: choice.cpusExplicit
            )
            for warning in review.decision.warnings { try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n") }
            let cpus = review.decision.cpus ?? 1
            let nodes = queue.nodes(cpus: cpus)
            print("queue: \(name)\(auto ? " (auto)" : "")")
            if let perNode = queue.cpusPerNode {
                let memory = queue.memoryPerNode.map { ", \($0 >> 30)GB" } ?? ""
                print("nodes: \(nodes) (of \(perNode) CPUs\(memory) each)")
            } else {
                print("nodes: not known (\(definition.name) gives no node size for \(name))")
            }
            print("cpus: \(cpus)" + (choice.request.memory.map { ", memory: \($0 >> 30)GB" } ?? ""))
            let refusals = review.violations.map { $0.message(review.label) }
            guard refusals.isEmpty else {
                for refusal in refusals { try? FileDescriptor.writeAll(2, "qxub: error: \(refusal)\n") }
                let fits = QueueSelector.queuesThatFit(review, choice.request, in: definition)
                try? FileDescriptor.writeAll(
                    2,
                    "  hint: "
                        + (fits.isEmpty
                            ? "no queue of \(definition.name) fits this request: ask for less"
                            : "queues that fit: \(fits.joined(separator: ", ")) (or --queue auto)") + "\n"
                )
                return refusals
            }
            if let seconds = choice.request.walltime {
                let units = queue.serviceUnits(cpus: cpus, memory: choice.request.memory, seconds: seconds)
                print("charge: \(Int(units.rounded())) SU for \(QueueSelector.hours(seconds))")
            } else {
                print("charge: give --time to estimate it")
            }
            print("ok")
            return []
        }
    }
}
