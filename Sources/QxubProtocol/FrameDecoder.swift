/// Turns bytes from one direction of a session back into frames.
///
/// Feed it whatever arrives (whole, a byte at a time, in any chunks) with ``append(_:)``, then call
/// ``decode()`` until it returns `nil` ("need more data"). The declared length is checked against
/// ``maxPayload`` before a single payload byte is buffered, and inflating is capped by the same limit.
package struct FrameDecoder {
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var inflater: Inflater?
    /// The largest payload this side accepts: what it announced in its hello.
    package var maxPayload: Int

    package init(maxPayload: Int = ProtocolConstants.preHelloMaxPayload) {
        self.maxPayload = maxPayload
    }

    /// Accepts compressed frames from now on (both hellos carried the deflate capability).
    package mutating func enableDecompression() throws(ProtocolError) {
        if inflater == nil { inflater = try Inflater() }
    }

    /// Bytes received but not yet decoded.
    package var bufferedByteCount: Int { buffer.count - readIndex }

    package mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or `nil` when more bytes are needed.
    package mutating func decode() throws(ProtocolError) -> Frame? {
        guard bufferedByteCount >= ProtocolConstants.headerSize else { return nil }
        let header = FrameHeader(bytes: buffer[readIndex..<(readIndex + ProtocolConstants.headerSize)])
        let length = Int(header.length)
        guard length <= maxPayload else { throw .frameTooLarge(declared: length, maximum: maxPayload) }
        guard header.flags.isSubset(of: .known) else { throw .unknownFlags(header.flags.rawValue) }
        guard bufferedByteCount >= ProtocolConstants.headerSize + length else { return nil }

        let start = readIndex + ProtocolConstants.headerSize
        let wire = buffer[start..<(start + length)]
        let payload: [UInt8]
        if header.flags.contains(.compressed) {
            guard let inflater else { throw .unexpectedCompression }
            payload = try inflater.decompress(wire, limit: maxPayload)
        } else {
            payload = Array(wire)
        }
        readIndex = start + length
        compactIfWorthIt()
        return Frame(type: header.type, channel: header.channel, payload: payload)
    }

    /// Call at end of input: throws if a frame was cut short.
    package func finish() throws(ProtocolError) {
        let left = bufferedByteCount
        guard left > 0 else { return }
        if left < ProtocolConstants.headerSize {
            throw .truncated(missing: ProtocolConstants.headerSize - left)
        }
        let header = FrameHeader(bytes: buffer[readIndex..<(readIndex + ProtocolConstants.headerSize)])
        throw .truncated(missing: ProtocolConstants.headerSize + Int(header.length) - left)
    }

    /// Takes the bytes not yet decoded (used when handing a stream from one decoder to another).
    package mutating func takeRemainingBytes() -> [UInt8] {
        let rest = Array(buffer[readIndex...])
        buffer.removeAll(keepingCapacity: true)
        readIndex = 0
        return rest
    }

    private mutating func compactIfWorthIt() {
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > 64 * 1024 && readIndex * 2 > buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
