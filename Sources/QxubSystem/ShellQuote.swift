/// Quotes `value` for POSIX shells (bash, sh): the one function through which every user value enters a
/// job script. Single quotes keep everything literal (`$`, backticks, `\`, newlines, non-ASCII); an
/// embedded single quote becomes `'\''`.
public func shellQuote(_ value: String) -> String {
    if !value.isEmpty && value.utf8.allSatisfy(isPlainShellByte) { return value }
    return "'" + value.replacingAll("'", with: "'\\''") + "'"
}

/// Bytes that are never special to a POSIX shell in an argument position.
private func isPlainShellByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ":"),
        UInt8(ascii: "@"), UInt8(ascii: "%"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "="):
        true
    default:
        false
    }
}

extension String {
    /// Replaces every occurrence of `target` (no Foundation).
    package func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, containsText(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(ofLiteral: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

extension StringProtocol {
    /// The first occurrence of `needle`, found byte by byte.
    ///
    /// The standard library's `firstRange(of:)` and `contains(_: some StringProtocol)` live in
    /// _StringProcessing and link its regex parser: about 1 MB of the static agent for a substring search.
    package func firstRange(ofLiteral needle: String) -> Range<Index>? {
        let haystack = utf8
        let pattern = Array(needle.utf8)
        guard let first = pattern.first else { return startIndex..<startIndex }
        var index = haystack.startIndex
        while index != haystack.endIndex {
            if haystack[index] == first {
                var probe = index
                var matched = 0
                while matched < pattern.count, probe != haystack.endIndex, haystack[probe] == pattern[matched] {
                    matched += 1
                    probe = haystack.index(after: probe)
                }
                if matched == pattern.count { return index..<probe }
            }
            index = haystack.index(after: index)
        }
        return nil
    }

    /// Whether `needle` occurs (see ``firstRange(ofLiteral:)`` for why this is not `contains`).
    package func containsText(_ needle: String) -> Bool {
        firstRange(ofLiteral: needle) != nil
    }
}
