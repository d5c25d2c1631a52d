import CZlib

/// One deflate stream for one direction of a session.
///
/// Every call to ``compress(_:)`` ends with `Z_SYNC_FLUSH`, so the receiver can inflate each frame as
/// soon as it arrives, while later frames still profit from the history of earlier ones (a shared stream
/// brings log lines to about a quarter of their size; compressing each frame alone makes them larger).
package final class Deflater {
    private var stream = z_stream()

    package init(level: Int32 = 6) throws(ProtocolError) {
        let status = qxub_deflateInit(&stream, level)
        guard status == Z_OK else { throw .deflateFailed("deflateInit returned \(status)") }
    }

    deinit { deflateEnd(&stream) }

    /// Compresses `input` and flushes, returning bytes the peer's ``Inflater`` turns back into `input`.
    package func compress(_ input: [UInt8]) throws(ProtocolError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 2 + 64)
        var chunk = [UInt8](repeating: 0, count: max(1024, input.count / 2 + 64))
        var input = input
        let inputCount = input.count
        let status: Int32 = input.withUnsafeMutableBufferPointer { inputBuffer in
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
                    let status = deflate(&stream, Z_SYNC_FLUSH)
                    let produced = out.count - Int(stream.avail_out)
                    stream.next_out = nil
                    stream.avail_out = 0
                    return (status, produced)
                }
                output.append(contentsOf: chunk[0..<produced])
                // Done when the flush fitted: input consumed and space left over.
                if status == Z_OK, stream.avail_in == 0, produced < chunk.count { return Z_OK }
                if status != Z_OK && status != Z_BUF_ERROR { return status }
            }
        }
        guard status == Z_OK else { throw .deflateFailed("deflate returned \(status)") }
        return output
    }
}
