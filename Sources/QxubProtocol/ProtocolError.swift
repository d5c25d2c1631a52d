/// Everything that can go wrong while reading or writing the wire protocol.
///
/// Each case says what happened in words a user can act on; ``hint`` says what to do.
package enum ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The first bytes were not the qxub magic (agent side: no tolerance for stray bytes).
    case badMagic(received: [UInt8])
    /// The client read this many bytes without finding the agent's magic.
    case preambleNotFound(firstBytes: [UInt8], scanned: Int)
    /// A header declared a payload larger than the receiver accepts.
    case frameTooLarge(declared: Int, maximum: Int)
    /// A header carried flag bits this build does not know.
    case unknownFlags(UInt8)
    /// The stream ended in the middle of a frame.
    case truncated(missing: Int)
    /// The stream ended before the peer's hello.
    case endedBeforeHello
    /// A compressed frame arrived although compression was not negotiated.
    case unexpectedCompression
    /// zlib rejected a compressed payload.
    case inflateFailed(String)
    /// A compressed payload inflated past the receiver's maximum (a decompression bomb).
    case inflatedTooLarge(maximum: Int)
    /// zlib failed while compressing (should never happen; reported rather than trapped).
    case deflateFailed(String)
    /// A payload did not decode as the message its type promised.
    case malformedPayload(type: FrameType, reason: String)
    /// The first frame was not a hello.
    case expectedHello(got: FrameType)
    /// No protocol version both sides speak.
    case versionMismatch(local: ClosedRange<UInt32>, remote: ClosedRange<UInt32>, remoteSoftware: String)
    /// A frame to send is larger than the peer accepts.
    case outgoingTooLarge(size: Int, maximum: Int)

    package var description: String {
        switch self {
        case .badMagic(let received):
            "the peer did not start with the qxub magic bytes; received \(EscapedBytes(received))"
        case .preambleNotFound(let firstBytes, let scanned):
            "no qxub-agent answered: read \(scanned) bytes without finding the agent's greeting; they began with \(EscapedBytes(firstBytes))"
        case .frameTooLarge(let declared, let maximum):
            "a frame declared \(declared) bytes, more than the \(maximum) this side accepts"
        case .unknownFlags(let flags):
            "a frame carried unknown flag bits 0x\(String(flags, radix: 16))"
        case .truncated(let missing):
            "the connection ended in the middle of a frame (\(missing) bytes missing)"
        case .endedBeforeHello:
            "the connection ended before the peer said hello"
        case .unexpectedCompression:
            "a compressed frame arrived but compression was not agreed"
        case .inflateFailed(let message):
            "a compressed frame could not be inflated: \(message)"
        case .inflatedTooLarge(let maximum):
            "a compressed frame inflated past \(maximum) bytes (decompression bomb?)"
        case .deflateFailed(let message):
            "compressing a frame failed: \(message)"
        case .malformedPayload(let type, let reason):
            "a \(type) frame was malformed: \(reason)"
        case .expectedHello(let got):
            "the peer's first frame was \(got), not hello"
        case .versionMismatch(let local, let remote, let remoteSoftware):
            "protocol versions do not overlap: this side speaks \(local.lowerBound)-\(local.upperBound), the peer (\(remoteSoftware)) speaks \(remote.lowerBound)-\(remote.upperBound)"
        case .outgoingTooLarge(let size, let maximum):
            "a frame of \(size) bytes is larger than the peer's maximum of \(maximum)"
        }
    }
}

/// Bytes shown to a person: printable ASCII as is, everything else escaped (`\n`, `\x1b`).
package struct EscapedBytes: CustomStringConvertible, Sendable {
    package var bytes: [UInt8]
    package var limit: Int
    package init(_ bytes: [UInt8], limit: Int = 200) {
        self.bytes = bytes
        self.limit = limit
    }
    package var description: String {
        var text = "\""
        for byte in bytes.prefix(limit) {
            switch byte {
            case 0x0A: text += "\\n"
            case 0x0D: text += "\\r"
            case 0x09: text += "\\t"
            case 0x22: text += "\\\""
            case 0x5C: text += "\\\\"
            case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        text += "\""
        if bytes.count > limit { text += " (+\(bytes.count - limit) more bytes)" }
        return text
    }
}

extension String {
    /// This text with its control characters written out (`\n`, `\r`, `\t`, `\x1b`, `\u{9b}`), for printing
    /// text that came from the other side (an agent's error, a warning, a host name) on a terminal: escape
    /// sequences in it could set the terminal's title, clear the screen or fake qxub's own lines.
    package var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) }) else {
            return self
        }
        var text = ""
        for scalar in unicodeScalars {
            switch scalar.value {
            case 0x0A: text += "\\n"
            case 0x0D: text += "\\r"
            case 0x09: text += "\\t"
            case 0..<0x20, 0x7F:
                let hex = String(scalar.value, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            case 0x80..<0xA0: text += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text
    }
}
