import QxubAgent
import QxubSystem
import Testing

/// `qxub-agent keeper`'s command line: what the agent renders, the keeper reads back; what it cannot read
/// is named.
@Suite("KeeperOptions: render and parse")
struct KeeperOptionsTests {
    static let full = KeeperOptions(
        directory: "/home/u/.qxub/jobs/20260101-abc",
        windowSize: WindowSize(rows: 24, columns: 80),
        grace: 600,
        term: "xterm-256color",
        command: ["qsub", "-I", "-q", "normal", "--", "/bin/bash", "/home/u/.qxub/jobs/20260101-abc/job.sh"]
    )

    @Test(
        "arguments round trip (TERM or not, fractional grace, a command with its own -- and options)",
        arguments: [
            full,
            KeeperOptions(
                directory: "/d",
                windowSize: WindowSize(rows: 65535, columns: 1),
                grace: 0.5,
                command: ["--dir", "--"]
            ),
        ]
    )
    func roundTrip(_ options: KeeperOptions) throws {
        #expect(try KeeperOptions(parsing: options.arguments) == options)
    }

    @Test("the rendered command line reads as documented")
    func rendered() {
        #expect(
            Self.full.arguments == [
                "keeper", "--dir", "/home/u/.qxub/jobs/20260101-abc", "--rows", "24", "--cols", "80", "--grace", "600",
                "--term", "xterm-256color", "--", "qsub", "-I", "-q", "normal", "--", "/bin/bash",
                "/home/u/.qxub/jobs/20260101-abc/job.sh",
            ]
        )
    }

    @Test(
        "a command line that cannot be read says what is wrong",
        arguments: [
            (["serve"], "expected 'keeper' first"),
            (["keeper", "--rows", "24", "--cols", "80", "--grace", "1", "--", "sh"], "--dir is required"),
            (["keeper", "--dir", "/d", "--cols", "80", "--grace", "1", "--", "sh"], "--rows is required"),
            (["keeper", "--dir", "/d", "--rows", "24", "--cols", "80", "--", "sh"], "--grace is required"),
            (["keeper", "--dir", "/d", "--rows", "24", "--cols", "80", "--grace", "1"], "no command after '--'"),
            (["keeper", "--dir", "/d", "--rows", "24", "--cols", "80", "--grace", "1", "--"], "no command after '--'"),
            (["keeper", "--dir", "/d", "--rows"], "--rows needs a value"),
            (["keeper", "--dir", "/d", "--size", "3", "--", "sh"], "unknown option '--size'"),
            (["keeper", "--dir", "/d", "--dir", "/e", "--", "sh"], "--dir given twice"),
            (
                ["keeper", "--dir", "d", "--rows", "24", "--cols", "80", "--grace", "1", "--", "sh"],
                "--dir 'd' is not an absolute path"
            ),
            (
                ["keeper", "--dir", "/d", "--rows", "0", "--cols", "80", "--grace", "1", "--", "sh"],
                "--rows '0' is not a number of cells from 1 to 65535"
            ),
            (
                ["keeper", "--dir", "/d", "--rows", "24", "--cols", "65536", "--grace", "1", "--", "sh"],
                "--cols '65536' is not a number of cells from 1 to 65535"
            ),
            (
                ["keeper", "--dir", "/d", "--rows", "24", "--cols", "80", "--grace", "-1", "--", "sh"],
                "--grace '-1' is not a number of seconds"
            ),
            (
                ["keeper", "--dir", "/d", "--rows", "24", "--cols", "80", "--grace", "inf", "--", "sh"],
                "--grace 'inf' is not a number of seconds"
            ),
        ]
    )
    func errors(_ arguments: [String], _ message: String) {
        #expect(throws: KeeperOptions.ParseError(message)) { try KeeperOptions(parsing: arguments) }
    }

    @Test("the error names the subcommand")
    func errorText() {
        #expect("\(KeeperOptions.ParseError("--dir is required"))" == "qxub-agent keeper: --dir is required")
    }
}
