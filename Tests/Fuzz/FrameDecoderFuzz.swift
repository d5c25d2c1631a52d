// libFuzzer target for everything that reads untrusted bytes: the preamble scanner, the frame decoder
// (with and without inflating) and message decoding. Built and run by Tests/Fuzz/run.sh.
import QxubProtocol

@_cdecl("LLVMFuzzerTestOneInput")
package func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let rest = bytes.dropFirst()

    // As the agent sees a client: strict magic, then frames.
    var agent = ProtocolEndpoint(hello: Hello(software: "fuzz-agent"), preambleLimit: mode & 1 == 0 ? 0 : 512)
    // Feed in chunks whose size depends on the input, so split points vary.
    let chunk = Int(mode >> 1) + 1
    var index = rest.startIndex
    while index < rest.endIndex {
        let end = min(rest.endIndex, index + chunk)
        guard (try? agent.receive(rest[index..<end])) != nil else { break }
        index = end
    }
    _ = try? agent.finish()

    // A decoder with decompression on, fed the raw input (frames without the handshake).
    var decoder = FrameDecoder(maxPayload: 1 << 16)
    try? decoder.enableDecompression()
    decoder.append(rest)
    while let frame = try? decoder.decode() {
        _ = try? Message(frame: frame)
    }
    return 0
}
