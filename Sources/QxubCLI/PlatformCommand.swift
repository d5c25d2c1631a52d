import ArgumentParser
import QxubClient
import QxubSystem

extension QxubCommand {
    /// `qxub platform list|info`
    package struct PlatformCommand: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "platform",
            abstract: "Platforms from the configuration and the platform definitions (queues, limits, rules).",
            discussion: """
                A platform is a place to run jobs: this machine (`local`), or a cluster reached over ssh, configured \
                as platforms.NAME.remote.host (`qxub config set platforms.gadi.remote.host gadi.nci.org.au`).

                A platform definition is a YAML file of a cluster's queues, their limits, walltime rules and \
                charge rates, which `--queue auto`, `select-queue` and `estimate` read. qxub reads every *.yaml in \
                /etc/qxub/platforms, ~/.config/qxub/platforms and ~/.qxub/platforms (or QXUB_PLATFORM_PATHS, or \
                platform_search_paths), QXUB_PLATFORM_FILE alone when set, and a platform's `definition:` (a file \
                or an https URL). install.sh installs the shipped definitions (NCI Gadi's nci_gadi.yaml) in \
                PREFIX/share/qxub/platforms: copy one to ~/.config/qxub/platforms/ and adapt it.
                """,
            subcommands: [List.self, Info.self]
        )
        package init() {}

        /// The definition `select-queue` and `estimate` use, or an error that says how to choose one.
        static func definition(
            _ definitions: [PlatformDefinition],
            platform: String?,
            configuration: Configuration
        ) throws(ClientError) -> PlatformDefinition {
            if let chosen = PlatformDefinition.chosen(
                from: definitions,
                platform: platform,
                configuration: configuration
            ) {
                return chosen
            }
            if definitions.isEmpty {
                throw ClientError(
                    "no platform definition is loaded",
                    hint: InstalledDocs.definitionHint,
                    exitCode: ExitCodes.usage
                )
            }
            throw ClientError(
                "several platform definitions are loaded (\(definitions.map(\.name).joined(separator: ", ")))"
                    + (platform.map { " and none is named \($0)" } ?? ""),
                hint: "give --platform NAME, or set defaults.platform",
                exitCode: ExitCodes.usage
            )
        }

        static func load() throws -> (Configuration, [PlatformDefinition]) {
            try CLIFailure.catching { () throws(ClientError) -> (Configuration, [PlatformDefinition]) in
                let configuration = try Configuration.load()
                return (configuration, try PlatformDefinition.all(configuration: configuration))
            }
        }

        package struct List: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "List configured platforms and loaded definitions."
            )
            package init() {}
            package func run() throws {
                let (configuration, definitions) = try PlatformCommand.load()
                let configured = configuration.value("platforms")?.map ?? [:]
                for name in configured.keys.sorted() {
                    let host = configured[name]?.map?["remote"]?.map?["host"]?.string
                    print("\(name): \(host.map { "remote (ssh \($0))" } ?? "this machine")")
                }
                for definition in definitions {
                    print("\(definition.name): definition \(definition.source), \(definition.queues.count) queues")
                }
                if configured.isEmpty && definitions.isEmpty {
                    print("no platforms: see `qxub help platform` and `man qxub`")
                }
            }
        }

        package struct Info: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "info",
                abstract: "Queues, limits, walltime rules and charge rates of a platform definition."
            )
            @Argument var name: String?
            package init() {}
            package func run() throws {
                let (_, definitions) = try PlatformCommand.load()
                guard
                    let definition = name.flatMap({ wanted in definitions.first { $0.name == wanted } })
                        ?? (name == nil ? definitions.first : nil)
                else {
                    throw CLIFailure(
                        ClientError(
                            "no platform definition \(name ?? "") is loaded",
                            hint: "`qxub platform list` shows what is",
                            exitCode: 1
                        )
                    )
                }
                print("\(definition.name) (\(definition.source))")
                for queue in definition.queues {
                    var facts = ["\(queue.billingRate) SU/core-hour"]
                    if let limit = queue.maxCPUs { facts.append("≤\(limit) cpus") }
                    if let limit = queue.maxMemory { facts.append("≤\(limit >> 30)GB") }
                    if let cpus = queue.cpusPerNode {
                        facts.append(
                            "\(cpus) cpus" + (queue.memoryPerNode.map { "/\($0 >> 30)GB" } ?? "") + " per node"
                        )
                    }
                    if let type = queue.gpuType { facts.append("GPU \(type), \(queue.cpusPerGPU ?? 0) cpus/GPU") }
                    if queue.internet { facts.append("internet") }
                    let walltimes = queue.walltimeRules.map {
                        "\($0.0.lowerBound)-\($0.0.upperBound) cpus: \(QueueSelector.hours($0.1))"
                    }
                    print(
                        "  \(queue.name): " + facts.joined(separator: ", ")
                            + (walltimes.isEmpty ? "" : "; walltime " + walltimes.joined(separator: ", "))
                    )
                }
                for rule in definition.rules {
                    print("  rule: \(rule.condition) → \(rule.queue)\(rule.isDefault ? " (default)" : "")")
                }
            }
        }
    }

    /// `qxub select-queue --cpus N --mem M --time T [--gpus G --gpu-type X --internet]`
    package struct SelectQueue: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "select-queue",
            abstract: "Which queue `--queue auto` would choose, and the values it would send."
        )
        @OptionGroup var resources: ResourceOptions
        @Option(
            name: [.customLong("platform"), .customLong("profile")],
            help: "Whose definition (default: defaults.platform, or the only one loaded)."
        ) var platform: String?
        package init() {}
        package func run() throws {
            let (configuration, definitions) = try PlatformCommand.load()
            let decision = try CLIFailure.catching { () throws(ClientError) -> QueueSelector.Decision in
                let definition = try PlatformCommand.definition(
                    definitions,
                    platform: platform,
                    configuration: configuration
                )
                let model = resources.model
                let request = QueueSelector.Request(
                    try model.resolved(),
                    gpuType: resources.gpuType,
                    internet: resources.internet
                )
                let queue = try QueueSelector.select(request, in: definition, cpusExplicit: model.cpusFromCommandLine)
                return try QueueSelector.adjust(
                    request,
                    queue: queue,
                    in: definition,
                    auto: true,
                    cpusExplicit: model.cpusFromCommandLine
                )
            }
            for warning in decision.warnings { try? FileDescriptor.writeAll(2, "qxub: warning: \(warning)\n") }
            print(decision.queue + (decision.cpus.map { " ncpus=\($0)" } ?? ""))
        }
    }

    /// `qxub estimate --cpus N --time T [--mem M] [-q QUEUE]`: service units per queue.
    package struct Estimate: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "estimate",
            abstract: "Service units a job would cost on each queue that can run it (cpus x hours x charge rate).",
            discussion: """
                A queue with node sizes (cpus_per_node, memory_per_node) charges memory
                as NCI Gadi does:
                  SUs = max(cpus, mem / (memory_per_node / cpus_per_node))
                        x hours x su_billing_rate
                so --cpus 1 --mem 300GB is charged as the CPUs that go with 300GB of a
                node.
                """
        )
        @OptionGroup var resources: ResourceOptions
        @Option(name: [.customShort("q"), .customLong("queue")], help: "Only this queue.") var queue: String?
        @Option(
            name: [.customLong("platform"), .customLong("profile")],
            help: "Whose definition (default: defaults.platform, or the only one loaded)."
        ) var platform: String?
        package init() {}
        package func run() throws {
            let (configuration, definitions) = try PlatformCommand.load()
            let rows = try CLIFailure.catching { () throws(ClientError) -> [(String, Double)] in
                let definition = try PlatformCommand.definition(
                    definitions,
                    platform: platform,
                    configuration: configuration
                )
                let resolved = try resources.model.resolved()
                guard let seconds = resolved.walltimeSeconds else {
                    throw ClientError(
                        "--time is needed to estimate a cost",
                        hint: "for example --time 2h",
                        exitCode: ExitCodes.usage
                    )
                }
                var request = QueueSelector.Request(resolved, gpuType: resources.gpuType)
                request.cpus = resolved.cpus ?? 1
                var rows: [(String, Double)] = []
                for candidate in definition.queues where queue == nil || candidate.name == queue {
                    guard
                        let decision = try? QueueSelector.adjust(
                            request,
                            queue: candidate.name,
                            in: definition,
                            auto: false,
                            cpusExplicit: true
                        )
                    else { continue }
                    rows.append(
                        (
                            candidate.name,
                            candidate.serviceUnits(cpus: decision.cpus ?? 1, memory: request.memory, seconds: seconds)
                        )
                    )
                }
                guard !rows.isEmpty else {
                    throw ClientError(
                        "no queue of \(definition.name) can run this request",
                        hint: "`qxub platform info` shows the limits",
                        exitCode: ExitCodes.usage
                    )
                }
                // Cheapest first; equal charges in the definition's order.
                return rows.enumerated().sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.map(\.element)
            }
            for (name, units) in rows { print("\(name.padding(to: 12))\(String(Int(units.rounded()))) SU") }
            print("cheapest: \(rows[0].0)")
        }
    }
}
