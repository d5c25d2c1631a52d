import QxubClient
import QxubSystem
import Testing

/// A followed array on a terminal of the test's own: its counts are one live line (spinner, colour) that
/// makes way for the subjobs' output, through the built binary as a user meets it.
@Suite("A followed array on a terminal: one live status line, output never garbled")
struct ArrayTerminalTests {
    static let script =
        "i=$PBS_ARRAY_INDEX; sleep 0.$((i * 3)); echo line $i; sleep 1; exit $(( i == 2 ? 5 : 0 ))"

    /// Runs `qxub exec --backend local --array 1-3 -- SCRIPT` on a terminal; returns its exit and the screen.
    func onTerminal(noColor: String?) throws -> (ProcessExit?, String) {
        let sandbox = try Sandbox("array-tty")
        // The runner's own NO_COLOR must not decide the test.
        sandbox.environment["NO_COLOR"] = noColor
        let session = try TerminalHarness(
            [BuiltProducts.qxub, "exec", "--backend", "local", "--array", "1-3", "--", Self.script],
            environment: sandbox.environmentList
        )
        let exit = session.waitForExit(timeout: 60)
        return (exit, session.text)
    }

    /// The text just before each occurrence of `needle` in `text` (up to `width` characters).
    func before(_ needle: String, in text: String, width: Int = 8) -> [String] {
        var found: [String] = []
        var rest = text[...]
        while let range = rest.firstRange(of: needle) {
            found.append(String(text[..<range.lowerBound].suffix(width)))
            rest = rest[range.upperBound...]
        }
        return found
    }

    @Test("the counts are one line rewritten in place with a spinner and colour; output lines start clean")
    func liveLine() throws {
        let (exit, screen) = try onTerminal(noColor: nil)
        #expect(exit == .exited(5), "\(screen.debugDescription)")
        let clear = "\r\u{1B}[K"
        for index in 1...3 {
            let preceding = before("[\(index)] line \(index)\r\n", in: screen)
            #expect(preceding.count == 1, "\(screen.debugDescription)")
            // The live line was cleared before the output (or the output starts a fresh line: "\r\n" is one
            // Character in Swift).
            #expect(
                preceding.allSatisfy { $0.hasSuffix(clear) || $0.hasSuffix("\r\n") || $0.hasSuffix("\n") },
                "output written over the status line: \(preceding) in \(screen.debugDescription)"
            )
        }
        let counts = before("qxub: array ", in: screen, width: 2)
        #expect(counts.count > 2, "\(screen.debugDescription)")
        // Every count line but the last (the one that stays) is the live one: a spinner frame before it.
        #expect(
            counts.dropLast().allSatisfy { StatusLine.spinnerFrames.contains(String($0.suffix(2).prefix(1))) },
            "\(counts) in \(screen.debugDescription)"
        )
        #expect(
            screen.contains(
                clear + "qxub: array local-"
            ) && screen.hasSuffix(": \u{1B}[32m2 done\u{1B}[0m, \u{1B}[31m1 failed\u{1B}[0m\r\n"),
            "the last counts stay, coloured, on a line of their own: \(screen.debugDescription)"
        )
        #expect(screen.contains("\u{1B}[33m3 queued\u{1B}[0m") || screen.contains(" 3 running"))
    }

    @Test("NO_COLOR set on a terminal: plain count lines, one per change, no escapes")
    func noColor() throws {
        let (exit, screen) = try onTerminal(noColor: "1")
        #expect(exit == .exited(5), "\(screen.debugDescription)")
        #expect(!screen.contains("\u{1B}"), "\(screen.debugDescription)")
        #expect(screen.contains(": 2 done, 1 failed\r\n"), "\(screen.debugDescription)")
        #expect(
            screen.split(separator: "\r\n").filter { $0.hasPrefix("[") }.sorted() == [
                "[1] line 1", "[2] line 2", "[3] line 3",
            ]
        )
    }
}
