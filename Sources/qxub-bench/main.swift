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
default:
    print("usage: qxub-bench protocol | exec [--backend local,slurm,pbspro]")
}
