// qxub-bench: prints performance figures as ratios against a floor measured in the same run.
// Never part of the tests (timings do not belong in tests). See docs/performance.md.
//
//   swift build -c release && .build/release/qxub-bench protocol|exec [--backend local|slurm|pbspro]
//   .build/release/qxub-bench follow [--jobs 1000] [--backend local|slurm] [--settle S] [--window S] [--rounds N]
import QxubSystem

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first ?? "protocol" {
case "protocol":
    try protocolBenchmark()
case "exec":
    var backends = ["local"]
    if let index = arguments.firstIndex(of: "--backend"), index + 1 < arguments.count {
        backends = arguments[index + 1].split(separator: ",").map(String.init)
    }
    try execBenchmark(backends: backends)
case "follow":
    func number(_ flag: String, _ fallback: Double) -> Double {
        guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return fallback }
        return Double(arguments[index + 1]) ?? fallback
    }
    let backend =
        arguments.firstIndex(of: "--backend").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil } ?? "local"
    try followBenchmark(
        jobs: Int(number("--jobs", 1000)),
        backend: backend,
        settle: number("--settle", 30),
        window: number("--window", 10),
        rounds: Int(number("--rounds", 5))
    )
case "startup":
    try startupBenchmark()
case "remote":
    func value(_ flag: String, _ fallback: String) -> String {
        guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return fallback }
        return arguments[index + 1]
    }
    try remoteBenchmark(
        host: value("--host", "qxub-bash"),
        sshConfig: value("--ssh-config", "/tmp/qxub-sshd/ssh_config"),
        backend: value("--backend", "local")
    )
default:
    print(
        "usage: qxub-bench protocol | startup | follow [--jobs N] [--backend B] | exec [--backend local,slurm,pbspro] | remote [--host H] [--ssh-config F] [--backend B]"
    )
}
