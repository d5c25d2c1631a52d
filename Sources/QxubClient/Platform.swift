import QxubSystem

/// Where jobs run: this machine, or a cluster reached over SSH (a platform with a `remote:` section).
package struct Platform: Sendable, Hashable {
    /// How to reach a cluster. Keys follow the Python qxub's `platforms.<name>.remote`.
    package struct Remote: Sendable, Hashable {
        package var host: String
        package var user: String?
        /// Where jobs start; `{user}` resolves here, `{{user}}` and `{{project}}` on the cluster.
        package var workingDirectory: String?
        package var identity: String?
        /// Forward the ssh agent (for jobs that push to git or DVC remotes).
        package var agentForwarding: Bool
        /// How long an idle master connection stays open (ssh's ControlPersist).
        package var controlPersist: String
        /// Seconds a session holder waits with no client before it exits (`session_persist`, like
        /// `control_persist`: `10m`, `90s`, `1h`, or seconds; default 10 minutes); 0: no holder.
        package var sessionPersist: Double = 600
        /// An ssh_config file to use instead of ~/.ssh/config (`ssh -F`).
        package var sshConfig: String?
        /// Extra `-o Key=Value` options.
        package var sshOptions: [String]
        /// The `--config` file the platform was read with: the session holder started for it reads it too
        /// (nil: the default places only).
        package var configFile: String? = nil
    }

    package var name: String
    package var remote: Remote?
    /// Where the agent keeps job state and output (``Hello/stateRoot``): `platforms.NAME.state_root`, else the
    /// platform definition's `state_root`, with `{project}` replaced by `defaults.project` when that is set;
    /// nil: the agent's default (`~/.qxub`).
    package var stateRoot: String? = nil

    package static let local = Platform(name: "local", remote: nil)

    /// The platform chosen by `--platform` or `defaults.platform`; local when neither names one.
    package static func resolve(_ requested: String?, configuration: Configuration) throws(ClientError) -> Platform {
        var platform = try resolveConnection(requested, configuration: configuration)
        platform.stateRoot = stateRoot(of: platform.name, configuration: configuration)
        return platform
    }

    /// The platform's state root as configured (see ``stateRoot``); the definition is read only when the
    /// configuration does not say and the platform is a named one.
    static func stateRoot(of name: String, configuration: Configuration) -> String? {
        var template = configuration.string("platforms.\(name).state_root")
        if template == nil, name != Platform.local.name,
            // Silent: the queue choice reads the definitions again and says once what it could not fetch.
            let definitions = try? PlatformDefinition.all(configuration: configuration, warn: false)
        {
            template =
                PlatformDefinition.chosen(from: definitions, platform: name, configuration: configuration)?
                .stateRoot
        }
        guard let template, !template.isEmpty else { return nil }
        // The project the platform's jobs are charged to by default; -P of one command does not move the
        // root, so that status, attach and cancel find the job without it. Else the cluster's $PROJECT.
        if let project = configuration.string("defaults.project"), !project.isEmpty {
            return template.replacingAll("{project}", with: project)
        }
        return template
    }

    private static func resolveConnection(
        _ requested: String?,
        configuration: Configuration
    ) throws(ClientError) -> Platform {
        guard let name = requested ?? configuration.string("defaults.platform"), !name.isEmpty else { return .local }
        guard let entry = configuration.value("platforms.\(name)") else {
            if name == "local" { return .local }
            let known = configuration.value("platforms")?.map?.keys.sorted() ?? []
            throw ClientError(
                "platform '\(name)' is not configured",
                hint: known.isEmpty
                    ? "`qxub config set platforms.\(name).remote.host HOST` adds it (`qxub help config`, `man qxub`)"
                    : "configured platforms: \(known.joined(separator: ", "))",
                exitCode: ExitCodes.usage
            )
        }
        if let scalar = entry.map?["remote"]?.string, !scalar.isEmpty {
            // `remote: gadi` would otherwise quietly run the platform's jobs on this machine.
            throw ClientError(
                "platforms.\(name).remote is '\(scalar)', not a section",
                hint: "write it as `remote:` with `host: \(scalar)` indented below it (`qxub help config`)",
                exitCode: ExitCodes.usage
            )
        }
        guard let remote = entry.map?["remote"]?.map, !remote.isEmpty else { return Platform(name: name, remote: nil) }
        guard let host = remote["host"]?.string, !host.isEmpty else {
            throw ClientError(
                "platforms.\(name).remote has no host",
                hint: "set platforms.\(name).remote.host (an ssh host or ~/.ssh/config alias)",
                exitCode: ExitCodes.usage
            )
        }
        let user = TemplateVariables.localUser
        var sessionPersist = 600.0
        if let text = remote["session_persist"]?.string {
            guard let seconds = Self.duration(text) else {
                throw ClientError(
                    "platforms.\(name).remote.session_persist is '\(text)', not a duration",
                    hint: "write seconds or a number with s, m or h (10m, 90s, 1h); 0 turns the session holder off",
                    exitCode: ExitCodes.usage
                )
            }
            sessionPersist = seconds
        }
        return Platform(
            name: name,
            remote: Remote(
                host: host,
                user: remote["user"]?.string,
                workingDirectory: remote["working_dir"]?.string.map { Self.resolveLocalTemplates($0, user: user) },
                identity: remote["identity"]?.string ?? remote["identity_file"]?.string,
                agentForwarding: remote["agent_forwarding"]?.bool ?? remote["forward_agent"]?.bool ?? false,
                controlPersist: remote["control_persist"]?.string ?? "10m",
                sessionPersist: sessionPersist,
                sshConfig: remote["ssh_config"]?.string,
                sshOptions: remote["ssh_options"]?.list?.compactMap(\.string) ?? [],
                configFile: configuration.layers.last { $0.name == "--config" }?.path
            )
        )
    }

    /// Seconds in `text`: a number, or a number followed by `s`, `m` or `h` (as ssh's ControlPersist takes
    /// them); nil for anything else or a negative number.
    package static func duration(_ text: String) -> Double? {
        let trimmed = text.trimmingWhitespace()
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(trimmed)
        var scale = 1.0
        if let last = trimmed.last, let unit = units[last] {
            number = trimmed.dropLast()
            scale = unit
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        return value * scale
    }

    /// `{user}` → the local user; `{{user}}` and `{{project}}` stay for the cluster side as `{user}`/`{project}`.
    static func resolveLocalTemplates(_ text: String, user: String) -> String {
        let marker = "\u{1}"
        return text.replacingAll("{{", with: marker).replacingAll("{user}", with: user)
            .replacingAll(marker + "user}}", with: "{user}").replacingAll(marker + "project}}", with: "{project}")
            .replacingAll(marker, with: "{{")
    }
}
