import Foundation
import QxubSystem

/// Stored settings applied to a job: a shortcut (JSON, matched on the command's first words) or an
/// alias (YAML under `aliases:`), in the Python qxub's formats, so existing files load as they are.
///
/// Their values sit between the command line and the configuration's `defaults:`: the command line
/// beats a shortcut, which beats the config, and each resource gets one value.
package struct JobPreset: Sendable, Hashable {
    package enum Kind: String, Sendable { case shortcut, alias }
    package var kind: Kind
    package var name: String
    /// Keys as the Python qxub stores them: env, mod, mods, sif, bind, resources, queue, name, project,
    /// pre, post, vars, execdir, email, email_opts, array, cmd.
    package var settings: [String: ConfigValue]

    package func string(_ key: String) -> String? { settings[key]?.string }

    package func list(_ key: String) -> [String] {
        if let list = settings[key]?.list { return list.compactMap(\.string) }
        if let text = settings[key]?.string { return [text] }
        return []
    }

    /// Modules from `mod` (one or a list) and `mods` ("a,b c").
    package var modules: [String] {
        list("mod") + (string("mods") ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
    }

    /// `resources` entries (PBS strings such as "mem=8GB") by resource name, and the rest as raw requests.
    package var resourceEntries: (named: [String: String], raw: [String]) {
        var named: [String: String] = [:]
        var raw: [String] = []
        for entry in list("resources").flatMap({ $0.split(separator: ",").map(String.init) }) {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2, ["mem", "walltime", "ncpus", "jobfs", "ngpus", "storage"].contains(parts[0]) {
                named[parts[0]] = parts[1]
            } else {
                raw.append(entry)
            }
        }
        return (named, raw)
    }
}

/// The shortcut files: `<first $XDG_CONFIG_DIRS>/qxub/shortcuts.json` (system) and
/// `~/.config/qxub/shortcuts.json` (user); user entries replace system ones with the same key.
package struct ShortcutStore: Sendable {
    package var shortcuts: [String: JobPreset] = [:]
    package var origins: [String: String] = [:]

    package static var userFile: String {
        let home = Environment.get("HOME") ?? ""
        return (Environment.get("XDG_CONFIG_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config")
            + "/qxub/shortcuts.json"
    }

    package static var systemFile: String {
        let first =
            (Environment.get("XDG_CONFIG_DIRS").flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/xdg").split(separator: ":")
            .first.map(String.init) ?? "/etc/xdg"
        return first + "/qxub/shortcuts.json"
    }

    package init() {}

    package static func load() throws(ClientError) -> ShortcutStore {
        var store = ShortcutStore()
        for path in [systemFile, userFile] where FileSystem.exists(path) {
            for (key, settings) in try readFile(path) {
                store.shortcuts[key] = JobPreset(kind: .shortcut, name: key, settings: settings)
                store.origins[key] = path
            }
        }
        return store
    }

    static func readFile(_ path: String) throws(ClientError) -> [String: [String: ConfigValue]] {
        guard let bytes = FileSystem.read(path) else { return [:] }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw ClientError(
                "\(path) is not valid JSON: \(error.localizedDescription)",
                hint: "fix it, or remove the broken shortcut",
                exitCode: ExitCodes.usage
            )
        }
        guard let top = object as? [String: Any] else {
            throw ClientError("\(path) must hold an object of shortcuts", exitCode: ExitCodes.usage)
        }
        var result: [String: [String: ConfigValue]] = [:]
        for (key, value) in top {
            guard let settings = value as? [String: Any] else { continue }
            result[key] = settings.mapValues(configValue)
        }
        return result
    }

    static func configValue(_ any: Any) -> ConfigValue {
        switch any {
        case let text as String: return .string(text)
        case let number as NSNumber: return .string(number.stringValue)  // true/false read as 1/0
        case let list as [Any]: return .list(list.map(configValue))
        case let map as [String: Any]: return .map(map.mapValues(configValue))
        default: return .null
        }
    }

    /// The shortcut whose key is the longest prefix (in whole words) of the command.
    package func match(_ words: [String]) -> JobPreset? {
        guard !words.isEmpty else { return nil }
        for count in stride(from: words.count, through: 1, by: -1) {
            if let preset = shortcuts[words[0..<count].joined(separator: " ")] { return preset }
        }
        return nil
    }

    /// Writes the user file with `shortcuts` (key → settings), keys sorted, pretty-printed.
    package static func writeUser(_ entries: [String: [String: ConfigValue]]) throws(ClientError) {
        func plain(_ value: ConfigValue) -> Any {
            switch value {
            case .string(let text): return text
            case .list(let values): return values.map(plain)
            case .map(let map): return map.mapValues(plain)
            case .null: return NSNull()
            }
        }
        let path = userFile
        do {
            let data = try JSONSerialization.data(
                withJSONObject: entries.mapValues { $0.mapValues(plain) },
                options: [.prettyPrinted, .sortedKeys]
            )
            try FileSystem.createDirectories(FileSystem.directoryName(path))
            try FileSystem.writeAtomically(path, Array(data) + [0x0A], mode: 0o644)
        } catch {
            throw ClientError("cannot write \(path): \(error)", exitCode: 1)
        }
    }

    /// The user file's entries alone (what `set`, `delete` and `rename` change).
    package static func userEntries() throws(ClientError) -> [String: [String: ConfigValue]] {
        FileSystem.exists(userFile) ? try readFile(userFile) : [:]
    }
}

extension Configuration {
    /// `aliases.<name>` as a preset: flat, or hierarchical (`main`, `subcommand` with `type`, `target.cmd`).
    package func alias(_ name: String) -> JobPreset? {
        guard let entry = value("aliases.\(name)")?.map else { return nil }
        var settings: [String: ConfigValue] = [:]
        let hierarchical = entry["main"] != nil || entry["subcommand"] != nil || entry["target"] != nil
        if hierarchical {
            for (key, value) in entry["main"]?.map ?? [:] { settings[key] = value }
            for (key, value) in entry["subcommand"]?.map ?? [:] where key != "type" { settings[key] = value }
            if let command = entry["target"]?.map?["cmd"] { settings["cmd"] = command }
        } else {
            settings = entry
        }
        return JobPreset(kind: .alias, name: name, settings: settings)
    }

    package var aliasNames: [String] { value("aliases")?.map?.keys.sorted() ?? [] }
}
