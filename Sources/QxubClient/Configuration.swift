import QxubSystem
import Yams

/// One value from a YAML configuration file.
package indirect enum ConfigValue: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case list([ConfigValue])
    case map([String: ConfigValue])
    case null

    package var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    package var bool: Bool? {
        guard let text = string?.lowercased() else { return nil }
        switch text {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    package var list: [ConfigValue]? {
        if case .list(let value) = self { return value }
        return nil
    }

    package var map: [String: ConfigValue]? {
        if case .map(let value) = self { return value }
        return nil
    }

    package var description: String {
        switch self {
        case .string(let value): value
        case .list(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .map(let values): "{" + values.keys.sorted().map { "\($0): \(values[$0]!)" }.joined(separator: ", ") + "}"
        case .null: "null"
        }
    }

    init(_ node: Node) {
        switch node {
        case .scalar(let scalar):
            let plainNull = scalar.style == .plain && ["~", "null", "Null", "NULL", ""].contains(scalar.string)
            self = plainNull ? .null : .string(scalar.string)
        case .sequence(let sequence):
            self = .list(sequence.map(ConfigValue.init))
        case .mapping(let mapping):
            var values: [String: ConfigValue] = [:]
            for (key, value) in mapping { values[key.string ?? ""] = ConfigValue(value) }
            self = .map(values)
        case .alias:
            self = .null
        }
    }

    /// `other` laid over `self`: maps merge key by key, anything else is replaced.
    func merged(with other: ConfigValue) -> ConfigValue {
        guard case .map(var base) = self, case .map(let top) = other else { return other }
        for (key, value) in top { base[key] = base[key].map { $0.merged(with: value) } ?? value }
        return .map(base)
    }
}

/// qxub's configuration: YAML layers merged in order, later wins (the Python qxub's files load as they are).
///
/// system (`$XDG_CONFIG_DIRS/qxub/config.yaml`, first found) < user (`$XDG_CONFIG_HOME` or
/// `~/.config/qxub/config.yaml`) < project (`.qx/project.yaml`, then `.qx/local.yaml`, found by walking up
/// from the working directory) < `--config FILE` < the command line.
package struct Configuration: Sendable {
    package struct Layer: Sendable, Hashable {
        package var name: String
        package var path: String

        package init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    package private(set) var root: ConfigValue = .map([:])
    package private(set) var layers: [Layer] = []
    /// For each dotted key with a value: the layer that set it last.
    package private(set) var origins: [String: Layer] = [:]

    /// Top-level keys of the Python qxub's schema (read or not); any other key earns a warning.
    package static let knownTopLevelKeys: Set<String> = [
        "defaults", "templates", "platforms", "platform_search_paths", "shared_db", "monitoring", "monitor",
        "notifications", "queue_preferences", "aliases", "verbosity", "history",
    ]

    /// Keys this qxub does not know, as dotted paths, with their file.
    package var unknownKeys: [(key: String, layer: Layer)] {
        origins.compactMap { key, layer in
            let top = key.split(separator: ".").first.map(String.init) ?? key
            return Self.knownTopLevelKeys.contains(top) ? nil : (key, layer)
        }.sorted { $0.key < $1.key }
    }

    /// Every leaf as `dotted.key` → value, sorted.
    package var flattened: [(key: String, value: ConfigValue)] {
        var result: [(String, ConfigValue)] = []
        func walk(_ value: ConfigValue, _ prefix: String) {
            if case .map(let map) = value, !map.isEmpty {
                for key in map.keys.sorted() { walk(map[key]!, prefix.isEmpty ? key : prefix + "." + key) }
            } else if !prefix.isEmpty {
                result.append((prefix, value))
            }
        }
        walk(root, "")
        return result
    }

    package init() {}

    /// The files that exist, in merge order.
    /// The nearest directory at or above `workingDirectory` that has a `.qx` folder (the project's root).
    package static func projectDirectory(from workingDirectory: String = FileSystem.currentDirectory()) -> String? {
        var directory = workingDirectory
        while true {
            if FileSystem.isDirectory(directory + "/.qx") { return directory }
            if directory == "/" || directory.isEmpty { return nil }
            directory = FileSystem.directoryName(directory)
        }
    }

    package static func layerFiles(
        explicit: String?,
        workingDirectory: String = FileSystem.currentDirectory()
    ) -> [Layer] {
        var layers: [Layer] = []
        let xdgDirs = (Environment.get("XDG_CONFIG_DIRS").flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/xdg").split(
            separator: ":"
        )
        if let system = xdgDirs.map({ String($0) + "/qxub/config.yaml" }).first(where: FileSystem.exists) {
            layers.append(Layer(name: "system", path: system))
        }
        let home = Environment.get("HOME") ?? ""
        let userDirectory = Environment.get("XDG_CONFIG_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
        let user = userDirectory + "/qxub/config.yaml"
        if FileSystem.exists(user) { layers.append(Layer(name: "user", path: user)) }
        if let directory = projectDirectory(from: workingDirectory) {
            for (name, file) in [("project", "project.yaml"), ("local", "local.yaml")]
            where FileSystem.exists(directory + "/.qx/" + file) {
                layers.append(Layer(name: name, path: directory + "/.qx/" + file))
            }
        }
        if let explicit { layers.append(Layer(name: "--config", path: explicit)) }
        return layers
    }

    /// Loads and merges every layer. A file that does not parse is an error that names it.
    package static func load(explicit: String? = nil) throws(ClientError) -> Configuration {
        var configuration = Configuration()
        for layer in layerFiles(explicit: explicit) {
            guard let text = FileSystem.readText(layer.path) else {
                throw ClientError(
                    "cannot read the \(layer.name) configuration \(layer.path)",
                    hint: "check that it exists and is readable",
                    exitCode: ExitCodes.usage
                )
            }
            let node: Node?
            do {
                // The basic resolver: ConfigValue reads scalars as text itself, while the default resolver
                // compiles a dozen regular expressions (ICU) at every start of qxub.
                node = try Yams.compose(yaml: text, .basic)
            } catch {
                throw ClientError(
                    "\(layer.path) is not valid YAML: \(error)",
                    hint: "fix it, or check it with `qxub config validate`",
                    exitCode: ExitCodes.usage
                )
            }
            guard let node else { continue }
            let value = ConfigValue(node)
            guard value.map != nil else {
                throw ClientError(
                    "\(layer.path) must hold a mapping of settings at the top",
                    hint: "for example `defaults:` and `platforms:` sections",
                    exitCode: ExitCodes.usage
                )
            }
            configuration.add(value, from: layer)
        }
        return configuration
    }

    /// Lays `value` (a file's settings) over the layers before it.
    package mutating func add(_ value: ConfigValue, from layer: Layer) {
        root = root.merged(with: value)
        layers.append(layer)
        var single = Configuration()
        single.root = value
        for (key, _) in single.flattened { origins[key] = layer }
    }

    /// The value at a dotted path such as `platforms.gadi.remote.host`.
    package func value(_ path: String) -> ConfigValue? {
        var current = root
        for key in path.split(separator: ".") {
            guard let next = current.map?[String(key)] else { return nil }
            current = next
        }
        return current == .null ? nil : current
    }

    package func string(_ path: String) -> String? { value(path)?.string }
}
