import QxubSystem
import QxubTestSupport
import Testing

/// `shellQuote` is the one function through which user values enter job scripts: whatever the value, the
/// shell must hand the exact bytes back.
@Suite("shellQuote: hostile strings round-trip through bash, sh and dash")
struct ShellQuoteTests {
    /// Pieces that mean something to a shell, or to an encoding, or to nothing at all.
    static let pieces: [String] = [
        "'", "\"", "\\", "$", "`", "\n", "\r", "\t", " ", "!", "*", "?", "[", "]", "~", "#", ";", "&", "|",
        "(", ")", "{", "}", "<", ">", "=", "%", "^", "-", "--", "-n", "-e", "\\n", "\\0", "%s", "%%",
        "$(id)", "${HOME}", "$HOME", "$'x'", "`id`", "'\\''", "\"$@\"", "a", "Z", "0", "é", "日本",
        "🙂", "\u{200B}", "\u{7F}", "\u{1B}[31m", "ß", "ﬁ",
    ]
    static let shells = ["bash", "sh", "dash"]
    static let seed: UInt64 = 0x5158_5542

    /// Random strings of 0 to 12 pieces.
    static func hostileStrings(count: Int, seed: UInt64) -> [String] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
                .joined()
        }
    }

    /// What `shell -c "printf '%s' QUOTED"` prints.
    static func roundTrip(_ value: String, through shell: String) throws -> [UInt8] {
        let run = try runCollectingOutput([shell, "-c", "printf '%s' " + shellQuote(value)], timeout: 20)
        #expect(run.exit == .exited(0), "\(shell) failed on \(shellQuote(value)): \(run.stderrText)")
        return run.stdout
    }

    @Test("fixed hostile cases", arguments: shells)
    func fixedCases(shell: String) throws {
        for value in ["", "'", "''", "\n", "a b", "$(touch /tmp/qxub-quote-pwned)", "-n", "\\", "é'\"`$\n"] {
            #expect(try Self.roundTrip(value, through: shell) == Array(value.utf8), "value: \(value.debugDescription)")
        }
    }

    @Test("random hostile strings (seeded; the seed and the string are in any failure)", arguments: shells)
    func randomStrings(shell: String) throws {
        for value in Self.hostileStrings(count: 150, seed: Self.seed) {
            #expect(
                try Self.roundTrip(value, through: shell) == Array(value.utf8),
                "seed \(Self.seed), value \(value.debugDescription), quoted \(shellQuote(value).debugDescription)"
            )
        }
    }

    @Test("the generator covers the empty string and every piece")
    func coverage() {
        let values = Self.hostileStrings(count: 150, seed: Self.seed)
        #expect(values.contains(""))
        #expect(Self.pieces.allSatisfy { piece in values.contains { $0.contains(piece) } })
    }
}
