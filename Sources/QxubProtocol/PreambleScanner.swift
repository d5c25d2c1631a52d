/// Finds the peer's magic bytes at the start of a stream.
///
/// Login shells on clusters print banners, `module` messages and `echo`s from rc files onto stdout
/// before the agent starts. The client therefore scans up to ``limit`` bytes for the magic and hands
/// back what came before it (to show as a warning). The agent reads from the client, which writes
/// nothing before its magic, so it scans with a limit of zero: anything else is ``ProtocolError/badMagic(received:)``.
package struct PreambleScanner {
    package enum Result: Equatable, Sendable {
        /// Keep feeding bytes.
        case needMore
        /// Found: `stray` came before the magic; `remainder` follows it and belongs to the frame decoder.
        case found(stray: [UInt8], remainder: [UInt8])
    }

    package let limit: Int
    private var seen: [UInt8] = []

    /// - Parameter limit: how many stray bytes may precede the magic.
    package init(limit: Int) {
        self.limit = limit
    }

    package mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws(ProtocolError) -> Result
    where Bytes.Element == UInt8 {
        let searchFrom = max(0, seen.count - (ProtocolConstants.magic.count - 1))
        seen.append(contentsOf: bytes)
        let magic = ProtocolConstants.magic
        if limit == 0 {
            // Strict: every byte so far must agree with the magic.
            let compared = min(seen.count, magic.count)
            guard seen[0..<compared].elementsEqual(magic[0..<compared]) else {
                throw .badMagic(received: Array(seen.prefix(64)))
            }
            guard seen.count >= magic.count else { return .needMore }
            return .found(stray: [], remainder: Array(seen[magic.count...]))
        }
        if let at = firstIndex(of: magic, in: seen, from: searchFrom), at <= limit {
            return .found(stray: Array(seen[0..<at]), remainder: Array(seen[(at + magic.count)...]))
        }
        if seen.count >= limit + magic.count {
            throw .preambleNotFound(firstBytes: Array(seen.prefix(256)), scanned: seen.count)
        }
        return .needMore
    }

    /// What was seen so far, for the error when the stream ends before the magic.
    package var bytesSeen: [UInt8] { seen }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = from
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}
