/// The Python qxub's subcommand words that qxub spells otherwise (or does not have): such a word in the place
/// of a job id is answered with the nearest command, never taken for a job named "all" or "id".
enum PythonSpellings {
    /// The message for `command words…` when the first word is a Python spelling, else nil.
    /// - Parameters: command: "cancel", "status" or "resources"; arguments: the positional words given.
    static func message(command: String, arguments: [String]) -> String? {
        guard let word = arguments.first else { return nil }
        let rest = arguments.dropFirst().joined(separator: " ")
        let ids = rest.isEmpty ? "ID..." : rest
        let nearest: String
        switch (command, word) {
        case ("cancel", "all"): nearest = "qxub cancel --all"
        case ("cancel", "id"): nearest = "qxub cancel \(ids)"
        case ("cancel", "name"): nearest = "qxub cancel --name \(rest.isEmpty ? "PATTERN" : rest)"
        case ("cancel", "status"), ("cancel", "filter"):
            nearest = "qxub cancel --name PATTERN, or qxub cancel --all (qxub status list shows the states)"
        case ("status", "show"): nearest = "qxub status \(ids)"
        case ("status", "cleanup"): nearest = "qxub history (qxub keeps no status files to clean)"
        case ("resources", "show"): nearest = "qxub resources \(ids)"
        case ("resources", "list"), ("resources", "stats"), ("resources", "inefficient"), ("resources", "trends"),
            ("resources", "export"):
            nearest = "qxub resources ID... (qxub history lists the ids)"
        default: return nil
        }
        let spelled = ([command, word] + (rest.isEmpty ? [] : [rest])).joined(separator: " ")
        return "qxub: '\(spelled)' is the Python qxub's spelling; use: \(nearest)\n"
    }
}
