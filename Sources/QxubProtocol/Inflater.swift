import CZlib

/// The receiving end of a peer's ``Deflater``: one inflate stream per direction.
///
/// Inflating is capped: a frame that inflates past the cap is an error, never an out-of-memory.
package final class Inflater {
    private var stream = z_stream()

    package init() throws(ProtocolError) {
        let status = qxub_inflateInit(&stream)
        guard status == Z_OK else { throw .inflateFailed("inflateInit returned \(status)") }
    }

    deinit { inflateEnd(&stream) }

    /// Inflates one frame's payload. Throws ``ProtocolError/inflatedTooLarge(maximum:)`` past `limit`.
    package func decompress(_ input: ArraySlice<UInt8>, limit: Int) throws(ProtocolError) -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(max(4096, input.count * 4), limit + 1))
        var input = Array(input)
        let inputCount = input.count
        let failure: ProtocolError? = input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = UInt32(inputCount)
            defer {
                stream.next_in = nil
                stream.avail_in = 0
            }
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    let status = inflate(&stream, Z_SYNC_FLUSH)
                    let produced = out.count - Int(stream.avail_out)
                    stream.next_out = nil
                    stream.avail_out = 0
                    return (status, produced)
                }
                if output.count + produced > limit { return .inflatedTooLarge(maximum: limit) }
                output.append(contentsOf: chunk[0..<produced])
                switch status {
                case Z_OK:
                    if stream.avail_in == 0 && produced < chunk.count { return nil }
                case Z_BUF_ERROR:
                    // No progress possible: fine once all input is consumed and nothing is pending.
                    if stream.avail_in == 0 { return nil }
                    return .inflateFailed("stuck with \(stream.avail_in) bytes of input left")
                case Z_STREAM_END:
                    return .inflateFailed("the peer ended its compressed stream")
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    return .inflateFailed(message)
                }
            }
        }
        if let failure { throw failure }
        return output
    }
}
