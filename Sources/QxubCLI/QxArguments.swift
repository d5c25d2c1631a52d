/// `qx ARGS` is `qxub exec ARGS`, where the first word that is not one of exec's own options starts the
/// command: `qx --env e python a.py --epochs 3` runs `python a.py --epochs 3` (no `--` needed; the Python
/// qxub's `qx` rejects `--epochs` as an unknown option).
enum QxArguments {
    /// Exec's options that take no value; every other option takes one (`--mem 4GB` or `--mem=4GB`).
    /// (Every `@Flag` of exec's option groups; a test runs `qx` with each flag `qxub exec --help` lists.)
    static let flags: Set<String> = [
        "--dry", "--dry-run", "--terse", "--quiet", "-v", "--verbose", "--create-execdir", "-h", "--help",
        "--default", "--internet", "--notify", "--no-notify", "--version",
    ]

    static func execArguments(_ arguments: [String]) -> [String] {
        var result = ["exec"]
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" { return result + arguments[index...] }
            let isRepeatedShortFlag =
                word.count > 2 && word.hasPrefix("-") && !word.hasPrefix("--")
                && word.dropFirst().allSatisfy { $0 == "v" }
            guard word.hasPrefix("-"), word != "-" else {
                return result + ["--"] + arguments[index...]
            }
            result.append(word)
            if !flags.contains(word) && !isRepeatedShortFlag && !word.contains("="), index + 1 < arguments.count {
                result.append(arguments[index + 1])
                index += 1
            }
            index += 1
        }
        return result
    }
}
