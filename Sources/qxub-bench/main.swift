// qxub-bench: prints performance figures as ratios against a floor measured in the same run.
// Never part of the tests (timings do not belong in tests). See docs/performance.md.
//
//   swift build -c release && .build/release/qxub-bench protocol|startup|exec|remote (any other word prints the usage)
//   .build/release/qxub-bench follow [--jobs 1000] [--backend local|slurm] [--settle S] [--window S] [--rounds N]
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

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
    func value(_ flag: String) -> String? {
        guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }
    var options = RemoteOptions()
    options.host = value("--host") ?? options.host
    options.sshConfig = value("--ssh-config") ?? options.sshConfig
    options.backend = value("--backend") ?? options.backend
    options.rounds = value("--rounds").flatMap { Int($0) } ?? options.rounds
    options.batchRounds = value("--batch-rounds").flatMap { Int($0) } ?? options.batchRounds
    options.partition = value("--partition")
    options.remoteSettings = arguments.indices.filter {
        arguments[$0] == "--remote-setting" && $0 + 1 < arguments.count
    }
    .map { arguments[$0 + 1] }
    do {
        try remoteBenchmark(options)
    } catch {
        // A set-up that does not do what it claims ends the run with its reason, not a crash report.
        try? FileDescriptor.writeAll(2, "qxub-bench remote: error: \(error)\n")
        exit(1)
    }
default:
    print(
        "usage: qxub-bench protocol | startup | follow [--jobs N] [--backend B] | exec [--backend local,slurm,pbspro] | remote [--host H] [--ssh-config F] "
            + "[--backend B] [--rounds N] [--batch-rounds N] [--partition P] [--remote-setting 'key: value']..."
    )
}
