import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `{user}`, `{project}`, `{name}`, `{queue}`, `{timestamp}`, `{date}`, `{time}` and the `templates:`
/// section, resolved in names and paths (as the Python qxub does, nested up to 10 times).
package struct TemplateVariables: Sendable {
    package var values: [String: String]

    /// The local user's name: `$USER`, else `$LOGNAME`, else the password database (the client is a
    /// dynamic executable, so NSS works here; the static agent never asks it).
    package static var localUser: String {
        if let user = Environment.get("USER"), !user.isEmpty { return user }
        if let user = Environment.get("LOGNAME"), !user.isEmpty { return user }
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "" }
        return String(cString: name)
    }

    package init(
        user: String,
        project: String?,
        name: String?,
        queue: String?,
        templates: [String: String],
        now: time_t = time(nil)
    ) {
        let local = LocalTime(now)
        let date = local.compactDate
        let clock = local.compactTime
        var values = templates
        values["user"] = user
        values["date"] = date
        values["time"] = clock
        values["timestamp"] = date + "_" + clock
        if let project { values["project"] = project }
        if let name { values["name"] = name }
        if let queue { values["queue"] = queue }
        self.values = values
    }

    /// `text` with every `{variable}` replaced; an unknown one is refused (it would otherwise become a literal
    /// `{log_dir}` directory), with the names that are known.
    package func resolveKnown(_ text: String) throws(ClientError) -> String {
        var missing: String?
        let resolved = resolve(text) { name in if missing == nil { missing = name } }
        guard let missing else { return resolved }
        let hint =
            switch missing {
            case "log_dir": "give --log-dir DIR, or set templates.log_dir in your configuration"
            case "project": "give -P PROJECT, or set defaults.project (or $PROJECT)"
            case "queue": "give -q QUEUE, or set defaults.queue"
            default: "define it under templates: in your configuration, or write {{\(missing)}} to keep it as it is"
            }
        throw ClientError(
            "unknown template variable {\(missing)} in '\(text)'; known: "
                + values.keys.sorted().map { "{\($0)}" }.joined(separator: ", "),
            hint: hint,
            exitCode: ExitCodes.usage
        )
    }

    /// `text` with every known `{variable}` replaced; `{{...}}` is left alone (it belongs to the cluster
    /// side); unknown names are reported through `unknown` and left as they are.
    package func resolve(_ text: String, unknown: (String) -> Void = { _ in }) -> String {
        var current = text
        for _ in 0..<10 {
            var output = ""
            var changed = false
            var rest = Substring(current)
            while let open = rest.firstIndex(of: "{") {
                output += rest[..<open]
                let afterOpen = rest.index(after: open)
                if afterOpen < rest.endIndex, rest[afterOpen] == "{" {
                    // `{{name}}`: kept verbatim for the remote side.
                    if let close = rest[afterOpen...].firstRange(ofLiteral: "}}") {
                        output += rest[open..<close.upperBound]
                        rest = rest[close.upperBound...]
                        continue
                    }
                }
                guard let close = rest[afterOpen...].firstIndex(of: "}") else {
                    output += rest[open...]
                    rest = rest[rest.endIndex...]
                    break
                }
                let name = String(rest[afterOpen..<close])
                if let value = values[name] {
                    output += value
                    changed = true
                } else {
                    unknown(name)
                    output += rest[open...close]
                }
                rest = rest[rest.index(after: close)...]
            }
            output += rest
            current = output
            if !changed { break }
        }
        return current
    }
}
