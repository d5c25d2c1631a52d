import ArgumentParser
import QxubClient
import QxubSystem
import Yams

extension QxubCommand {
    /// `qxub config get|set|list|files|validate|init|edit`
    package struct Config: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Read and change qxub's configuration (YAML layers; Python qxub files load as they are).",
            subcommands: [
                Get.self, Set.self, List.self, Files.self, Validate.self, Init.self, Edit.self, Shortcut.self,
            ]
        )
        package init() {}

        static func load(_ explicit: String? = nil) throws(CLIFailure) -> Configuration {
            try CLIFailure.catching { () throws(ClientError) -> Configuration in
                try Configuration.load(explicit: explicit)
            }
        }

        static var userFile: String {
            let home = Environment.get("HOME") ?? ""
            let directory = Environment.get("XDG_CONFIG_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
            return directory + "/qxub/config.yaml"
        }

        package struct Get: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "get",
                abstract: "Print the value at a dotted key (the whole merged configuration without one)."
            )
            @Argument var key: String?
            package init() {}
            package func run() throws {
                let configuration = try Config.load()
                guard let key else {
                    for (key, value) in configuration.flattened { print("\(key): \(value)") }
                    return
                }
                guard let value = configuration.value(key) else {
                    throw CLIFailure(
                        ClientError(
                            "configuration key '\(key)' is not set",
                            hint: "`qxub config list` shows what is set",
                            exitCode: 1
                        )
                    )
                }
                if case .map = value {
                    var sub = configuration.flattened.filter { $0.key.hasPrefix(key + ".") }
                    sub.sort { $0.key < $1.key }
                    for (name, leaf) in sub { print("\(name): \(leaf)") }
                } else {
                    print(value)
                }
            }
        }

        package struct Set: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Set a dotted key in one layer (the user file by default); the value is read as YAML."
            )
            @Argument var key: String
            @Argument var value: String
            @Flag(
                name: .customLong("project"),
                help: "Write the project's .qx/project.yaml (the nearest .qx above, else here)."
            ) var project = false
            @Flag(
                name: .customLong("local"),
                help: "Write the project's .qx/local.yaml (the nearest .qx above, else here)."
            ) var local = false
            package init() {}
            package func run() throws {
                // From a subdirectory, the project's own .qx (the one `exec` reads), not a new one that hides it.
                let root = Configuration.projectDirectory() ?? FileSystem.currentDirectory()
                let path = project ? root + "/.qx/project.yaml" : local ? root + "/.qx/local.yaml" : Config.userFile
                let keys = key.split(separator: ".").map(String.init)
                guard !keys.isEmpty, !keys.contains(where: \.isEmpty) else {
                    throw ValidationError("'\(key)' is not a dotted key such as defaults.queue")
                }
                do {
                    var existing = Node.mapping([:])
                    if let text = FileSystem.readText(path) {
                        // A file that does not parse is never replaced: it holds the user's other settings.
                        do {
                            existing = try Yams.compose(yaml: text) ?? Node.mapping([:])
                        } catch {
                            throw CLIFailure(
                                ClientError(
                                    "\(path) is not valid YAML, so qxub leaves it alone: \(error)",
                                    hint: "fix it by hand (`qxub config edit`), then set the key again",
                                    exitCode: 1
                                )
                            )
                        }
                    }
                    guard case .mapping = existing else {
                        throw ValidationError("\(path) does not hold a mapping at its top")
                    }
                    let parsed = (try? Yams.compose(yaml: value)).flatMap { $0 } ?? Node(value)
                    let updated = setting(existing, keys[...], parsed)
                    try FileSystem.createDirectories(FileSystem.directoryName(path))
                    try FileSystem.writeAtomically(path, try Yams.serialize(node: updated), mode: 0o644)
                    print("\(key) = \(value) in \(path)")
                } catch let error as ValidationError {
                    throw error
                } catch let error as CLIFailure {
                    throw error
                } catch {
                    throw CLIFailure(ClientError("cannot write \(path): \(error)", exitCode: 1))
                }
            }

            func setting(_ node: Node, _ keys: ArraySlice<String>, _ value: Node) -> Node {
                guard let first = keys.first else { return value }
                var mapping = node.mapping ?? Node.Mapping([(Node, Node)]())
                let child = mapping[Node(first)] ?? Node.mapping([:])
                mapping[Node(first)] = setting(child, keys.dropFirst(), value)
                return .mapping(mapping)
            }
        }

        package struct List: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "Every setting in effect, optionally with the file it comes from."
            )
            @Flag(name: .customLong("show-origin"), help: "Name the file each value comes from.") var showOrigin = false
            package init() {}
            package func run() throws {
                let configuration = try Config.load()
                for (key, value) in configuration.flattened {
                    let origin =
                        showOrigin ? "  (\(configuration.origins[key].map { "\($0.name): \($0.path)" } ?? "?"))" : ""
                    print("\(key): \(value)\(origin)")
                }
            }
        }

        package struct Files: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "files",
                abstract: "The configuration files, in the order they are merged."
            )
            package init() {}
            package func run() throws {
                let layers = Configuration.layerFiles(explicit: nil)
                if layers.isEmpty { print("no configuration files (the user file would be \(Config.userFile))") }
                for layer in layers { print("\(layer.name): \(layer.path)") }
            }
        }

        package struct Validate: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "validate",
                abstract: "Check that every file parses, and list keys qxub does not know."
            )
            package init() {}
            package func run() throws {
                let configuration = try Config.load()
                for layer in configuration.layers { print("ok: \(layer.name): \(layer.path)") }
                let unknown = configuration.unknownKeys
                for entry in unknown { print("warning: unknown key \(entry.key) in \(entry.layer.path)") }
                do {
                    _ = try Platform.resolve(nil, configuration: configuration)
                } catch {
                    throw CLIFailure(error)
                }
            }
        }

        package struct Init: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "init",
                abstract: "Write a starting user configuration (never overwrites)."
            )
            package init() {}
            package func run() throws {
                let path = Config.userFile
                guard !FileSystem.exists(path) else {
                    throw CLIFailure(
                        ClientError("\(path) already exists", hint: "edit it with `qxub config edit`", exitCode: 1)
                    )
                }
                let template = """
                    # qxub configuration (the Python qxub's keys are read as they are).
                    defaults:
                      # project: a56
                      # queue: normal
                      # mem: 4GB
                      # runtime: 1h
                      # cpus: 1
                      # platform: gadi          # run remotely by default
                    # platforms:
                    #   gadi:
                    #     remote:
                    #       host: gadi.nci.org.au
                    #       working_dir: /scratch/a56/{{user}}

                    """
                do {
                    try FileSystem.createDirectories(FileSystem.directoryName(path))
                    try FileSystem.writeAtomically(path, template, mode: 0o644)
                } catch {
                    throw CLIFailure(ClientError("cannot write \(path): \(error)", exitCode: 1))
                }
                print("wrote \(path)")
            }
        }

        package struct Edit: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "edit",
                abstract: "Open the user configuration in $EDITOR (then check it)."
            )
            package init() {}
            package func run() throws {
                let editor = Environment.get("VISUAL") ?? Environment.get("EDITOR") ?? "vi"
                let child = try ChildProcess.spawn(["/bin/sh", "-c", editor + " \"$0\"", Config.userFile])
                _ = child.wait()
                _ = try Config.load()
            }
        }
    }
}
