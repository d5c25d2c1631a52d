// qxub-bench: prints performance figures as ratios against a floor measured in the same run.
// Never part of the tests (timings do not belong in tests). See docs/performance.md.
//
//   swift build -c release && .build/release/qxub-bench protocol|exec [--backend local|slurm|pbspro]
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
        "usage: qxub-bench protocol | startup | exec [--backend local,slurm,pbspro] | remote [--host H] [--ssh-config F] [--backend B]"
    )
}
