import QxubClient

/// What the shell completions offer for options whose values live in the configuration (platforms) and in
/// the platform definitions (queues): read when the user presses TAB, from the words typed so far.
enum CompletionValues {
    static let backends = ["local", "pbspro", "slurm"]
    static let statusFormats = ["human", "json", "snakemake", "exitcode"]

    /// Configured platforms, and `local` (always there).
    @Sendable static func platforms(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        let configuration = try? Configuration.load(explicit: value(of: ["--config"], in: words))
        let names = Set(configuration?.value("platforms")?.map?.keys.map { String($0) } ?? []).union(["local"])
        return names.sorted().filter { $0.hasPrefix(prefix) }
    }

    /// The queues of the definition of the platform typed so far (`--platform`), else of the default one,
    /// and `auto`.
    @Sendable static func queues(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        guard let configuration = try? Configuration.load(explicit: value(of: ["--config"], in: words)),
            let definitions = try? PlatformDefinition.all(configuration: configuration),
            let definition = PlatformDefinition.chosen(
                from: definitions,
                platform: value(of: ["--platform", "--profile"], in: words),
                configuration: configuration
            )
        else { return ["auto"].filter { $0.hasPrefix(prefix) } }
        return (["auto"] + definition.queues.map(\.name)).filter { $0.hasPrefix(prefix) }
    }

    /// The value after the last of `options` among the words (`--platform gadi` or `--platform=gadi`).
    static func value(of options: [String], in words: [String]) -> String? {
        var found: String?
        for (index, word) in words.enumerated() {
            for option in options {
                if word == option, index + 1 < words.count {
                    found = words[index + 1]
                } else if word.hasPrefix(option + "=") {
                    found = String(word.dropFirst(option.count + 1))
                }
            }
        }
        return found
    }
}
