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
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
