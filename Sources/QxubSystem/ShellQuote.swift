/// Quotes `value` for POSIX shells (bash, sh): the one function through which every user value enters a
/// job script. Single quotes keep everything literal (`$`, backticks, `\`, newlines, non-ASCII); an
/// embedded single quote becomes `'\''`.
package func shellQuote(_ value: String) -> String {
    if !value.isEmpty && value.utf8.allSatisfy(isPlainShellByte) { return value }
    return "'" + value.replacingAll("'", with: "'\\''") + "'"
}

/// Bytes that are never special to a POSIX shell in an argument position.
private func isPlainShellByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ":"),
        UInt8(ascii: "@"), UInt8(ascii: "%"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "="):
        true
    default:
        false
    }
}
