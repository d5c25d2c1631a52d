import ArgumentParser
import QxubClient
import QxubSystem

extension QxubCommand.Config {
    /// `qxub config shortcut set|list|show|delete|rename` (the Python qxub's shortcuts.json format).
    package struct Shortcut: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "shortcut",
            abstract: "Settings applied to commands that start with given words (~/.config/qxub/shortcuts.json).",
            subcommands: [Set.self, List.self, Show.self, Delete.self, Rename.self]
        )
        package init() {}

        package struct Set: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Create or replace a shortcut: `qxub config shortcut set python --env pytorch --mem 16GB`."
            )
            @Argument(help: "The command words it applies to (quote several: \"dvc push\").") var prefix: String
            @Option(name: .customLong("env")) var environment: String?
            @Option(name: [.customLong("mod")]) var modules: [String] = []
            @Option(name: .customLong("mods")) var moduleList: String?
            @Option(name: .customLong("sif")) var container: String?
            @Option(name: .customLong("bind")) var bind: String?
            @Option(name: [.customShort("l"), .customLong("resources")]) var raw: [String] = []
            @Option(name: .customLong("mem")) var memory: String?
            @Option(name: [.customLong("runtime"), .customLong("time")]) var walltime: String?
            @Option(name: .customLong("cpus")) var cpus: UInt32?
            @Option(name: .customLong("disk")) var disk: String?
            @Option(name: .customLong("volumes")) var volumes: String?
            @Option(name: .customLong("gpus")) var gpus: UInt32?
            @Option(name: .customLong("gpu-type")) var gpuType: String?
            @Flag(name: .customLong("internet")) var internet = false
            @Option(name: [.customShort("q"), .customLong("queue")]) var queue: String?
            @Option(name: [.customShort("N"), .customLong("name")]) var name: String?
            @Option(name: [.customShort("P"), .customLong("project")]) var project: String?
            @Option(name: .customLong("pre")) var pre: String?
            @Option(name: .customLong("post")) var post: String?
            @Option(name: .customLong("var")) var variables: [String] = []
            @Option(name: .customLong("execdir")) var execdir: String?
            @Option(name: .customLong("email")) var email: String?
            @Option(name: .customLong("email-opts")) var emailOptions: String?
            package init() {}

            package func run() throws {
                // Checked here, so a bad value never reaches the file.
                try CLIFailure.catching { () throws(ClientError) -> Void in
                    if let memory { _ = try ResourceParser.memory(memory) }
                    if let walltime { _ = try ResourceParser.walltime(walltime) }
                    if let disk { _ = try ResourceParser.memory(disk) }
                }
                var settings: [String: ConfigValue] = [:]
                func put(_ key: String, _ value: String?) { if let value { settings[key] = .string(value) } }
                put("env", environment)
                if !modules.isEmpty { settings["mod"] = .list(modules.map(ConfigValue.string)) }
                put("mods", moduleList)
                put("sif", container)
                put("bind", bind)
                // Resources are stored as PBS strings, as the Python qxub stores them.
                var resources = raw
                if let memory { resources.append("mem=" + memory) }
                if let walltime { resources.append("walltime=" + walltime) }
                if let cpus { resources.append("ncpus=\(cpus)") }
                if let disk { resources.append("jobfs=" + disk) }
                if let volumes { resources.append("storage=" + volumes) }
                if let gpus { resources.append("ngpus=\(gpus)") }
                if !resources.isEmpty { settings["resources"] = .list(resources.map(ConfigValue.string)) }
                put("gpu_type", gpuType)
                if internet { settings["internet"] = .string("true") }
                put("queue", queue)
                put("name", name)
                put("project", project)
                put("pre", pre)
                put("post", post)
                if !variables.isEmpty { settings["vars"] = .list(variables.map(ConfigValue.string)) }
                put("execdir", execdir)
                put("email", email)
                put("email_opts", emailOptions)
                guard !settings.isEmpty else {
                    throw ValidationError("a shortcut needs at least one setting (--env, --mem, -q, ...)")
                }
                try CLIFailure.catching { () throws(ClientError) -> Void in
                    var entries = try ShortcutStore.userEntries()
                    entries[prefix] = settings
                    try ShortcutStore.writeUser(entries)
                }
                print("shortcut '\(prefix)' saved in \(ShortcutStore.userFile)")
            }
        }

        package struct List: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "List the shortcuts."
            )
            @Flag(name: .customLong("show-origin")) var showOrigin = false
            package init() {}
            package func run() throws {
                let store = try CLIFailure.catching { () throws(ClientError) -> ShortcutStore in
                    try ShortcutStore.load()
                }
                if store.shortcuts.isEmpty { print("no shortcuts") }
                for key in store.shortcuts.keys.sorted() {
                    let preset = store.shortcuts[key]!
                    let summary = preset.settings.keys.sorted().map { "\($0)=\(preset.settings[$0]!)" }.joined(
                        separator: " "
                    )
                    print("\(key): \(summary)" + (showOrigin ? "  (\(store.origins[key] ?? "?"))" : ""))
                }
            }
        }

        package struct Show: ParsableCommand {
            package static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one shortcut.")
            @Argument var prefix: String
            package init() {}
            package func run() throws {
                let store = try CLIFailure.catching { () throws(ClientError) -> ShortcutStore in
                    try ShortcutStore.load()
                }
                guard let preset = store.shortcuts[prefix] else {
                    throw CLIFailure(
                        ClientError(
                            "no shortcut '\(prefix)'",
                            hint: "`qxub config shortcut list` shows them",
                            exitCode: 1
                        )
                    )
                }
                for key in preset.settings.keys.sorted() { print("\(key): \(preset.settings[key]!)") }
            }
        }

        package struct Delete: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "delete",
                abstract: "Delete a shortcut from the user file."
            )
            @Argument var prefix: String
            package init() {}
            package func run() throws {
                try CLIFailure.catching { () throws(ClientError) -> Void in
                    var entries = try ShortcutStore.userEntries()
                    guard entries.removeValue(forKey: prefix) != nil else {
                        throw ClientError("no shortcut '\(prefix)' in \(ShortcutStore.userFile)", exitCode: 1)
                    }
                    try ShortcutStore.writeUser(entries)
                }
                print("deleted shortcut '\(prefix)'")
            }
        }

        package struct Rename: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "rename",
                abstract: "Rename a shortcut in the user file."
            )
            @Argument var old: String
            @Argument var new: String
            package init() {}
            package func run() throws {
                try CLIFailure.catching { () throws(ClientError) -> Void in
                    var entries = try ShortcutStore.userEntries()
                    guard let settings = entries.removeValue(forKey: old) else {
                        throw ClientError("no shortcut '\(old)' in \(ShortcutStore.userFile)", exitCode: 1)
                    }
                    guard entries[new] == nil else {
                        throw ClientError("a shortcut '\(new)' exists already", hint: "delete it first", exitCode: 1)
                    }
                    entries[new] = settings
                    try ShortcutStore.writeUser(entries)
                }
                print("renamed shortcut '\(old)' to '\(new)'")
            }
        }
    }
}
