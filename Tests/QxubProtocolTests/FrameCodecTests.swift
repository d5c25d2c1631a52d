import QxubProtocol
import QxubTestSupport
import Testing

@Suite("Frame codec")
struct FrameCodecTests {
    @Test("header layout is length, type, flags, channel, big-endian")
    func headerGoldenBytes() throws {
        var encoder = FrameEncoder()
        let bytes = try encoder.encode(Frame(type: .output, channel: 0x0102_0304, payload: [0xAA, 0xBB, 0xCC]))
        #expect(hex(bytes) == "00000003" + "20" + "00" + "01020304" + "aabbcc")
    }

    @Test("frames round-trip whatever the chunking", arguments: Chunking.allCases, [false, true])
    func roundTrip(chunking: Chunking, compressed: Bool) throws {
        var generator = SeededGenerator(seed: 1)
        let frames = (0..<200).map { index in
            let size =
                index % 10 == 0
                ? Int.random(in: 1000...70000, using: &generator) : Int.random(in: 0...300, using: &generator)
            let payload = (0..<size).map { _ in UInt8.random(in: 0...40, using: &generator) }
            return Frame(type: FrameType(rawValue: UInt8(index % 40)), channel: UInt32(index % 7), payload: payload)
        }
        var encoder = FrameEncoder(peerMaxPayload: ProtocolConstants.defaultMaxPayload)
        var decoder = FrameDecoder(maxPayload: ProtocolConstants.defaultMaxPayload)
        if compressed {
            try encoder.enableCompression()
            try decoder.enableDecompression()
        }
        var stream: [UInt8] = []
        for frame in frames { try encoder.encode(frame, into: &stream) }

        var decoded: [Frame] = []
        for chunk in chunking.split(stream) {
            decoder.append(chunk)
            while let frame = try decoder.decode() { decoded.append(frame) }
        }
        try decoder.finish()
        #expect(decoded == frames)
    }

    @Test("a shared deflate stream shrinks small log frames; the flag is set only when compressed")
    func sharedStreamCompresses() throws {
        let log = syntheticJobLog(lines: 2000)
        let lines = log.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) + [0x0A] }
        var plain = FrameEncoder(peerMaxPayload: ProtocolConstants.defaultMaxPayload)
        var compressing = FrameEncoder(peerMaxPayload: ProtocolConstants.defaultMaxPayload)
        try compressing.enableCompression()
        var plainBytes = 0
        var compressedBytes = 0
        for line in lines {
            let frame = Frame(type: .output, channel: 1, payload: line)
            plainBytes += try plain.encode(frame).count
            compressedBytes += try compressing.encode(frame).count
        }
        #expect(compressedBytes * 2 < plainBytes, "compressed \(compressedBytes) vs plain \(plainBytes)")

        let tiny = try compressing.encode(Frame(type: .ping, payload: [1, 2, 3]))
        #expect(tiny[5] == 0, "frames below the threshold stay uncompressed")
        let big = try compressing.encode(Frame(type: .output, payload: Array(repeating: 65, count: 500)))
        #expect(big[5] == Frame.Flags.compressed.rawValue)
    }

    @Test(
        "after a payload deflate cannot shrink, 1 MiB goes stored (flag clear), then 2, 4, up to 8 MiB while deflate keeps failing; a payload it shrinks starts over"
    )
    func incompressibleGoesStored() throws {
        var generator = SeededGenerator(seed: 11)
        let randomFrame = { (0..<65536).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        let random = (0..<50).map { _ in randomFrame() }
        let log = Array(syntheticJobLog(lines: 600).prefix(65536))
        let frames = (random + [log, log] + (0..<18).map { _ in randomFrame() }).map {
            Frame(type: .output, channel: 1, payload: $0)
        }
        var encoder = FrameEncoder(peerMaxPayload: ProtocolConstants.defaultMaxPayload)
        var decoder = FrameDecoder(maxPayload: ProtocolConstants.defaultMaxPayload)
        try encoder.enableCompression()
        try decoder.enableDecompression()
        var flags: [Bool] = []
        var sizes: [Int] = []
        var decoded: [Frame] = []
        for frame in frames {
            let bytes = try encoder.encode(frame)
            flags.append(bytes[5] == Frame.Flags.compressed.rawValue)
            sizes.append(bytes.count)
            decoder.append(bytes)
            while let frame = try decoder.decode() { decoded.append(frame) }
        }
        #expect(decoded == frames)
        // Frame 0 fails: 16 frames (1 MiB) stored; frame 17 fails: 32 frames (2 MiB) stored; frame 50, the log,
        // shrinks, and so the random frames after the logs start again at 1 MiB (frame 52 tried, 53-68 stored,
        // 69 tried).
        let tried: Set<Int> = [0, 17, 50, 51, 52, 69]
        #expect(flags == frames.indices.map { tried.contains($0) })
        #expect(
            sizes[50...51].allSatisfy { $0 * 4 < 65536 },
            "the log after random bytes is compressed: \(sizes[50...51])"
        )
    }

    @Test("a long incompressible stream tries deflate on 1 frame in 129 once the stored run reaches its cap of 8 MiB")
    func storedRunIsCapped() throws {
        var generator = SeededGenerator(seed: 12)
        var encoder = FrameEncoder(peerMaxPayload: ProtocolConstants.defaultMaxPayload)
        try encoder.enableCompression()
        var tried: [Int] = []
        for index in 0..<400 {
            let payload = (0..<65536).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let bytes = try encoder.encode(Frame(type: .output, channel: 1, payload: payload))
            if bytes[5] == Frame.Flags.compressed.rawValue { tried.append(index) }
        }
        // Runs of 16, 32, 64, 128, then 128 frames (8 MiB) stored after each failed try.
        #expect(tried == [0, 17, 50, 115, 244, 373])
    }

    @Test("a declared length over the maximum is rejected before any payload arrives")
    func oversizeRejectedFromHeaderAlone() throws {
        var decoder = FrameDecoder(maxPayload: 1000)
        decoder.append(bytes(hex: "00000fa1 20 00 00000001"))  // 4001 bytes declared, none sent
        #expect(throws: ProtocolError.frameTooLarge(declared: 4001, maximum: 1000)) { try decoder.decode() }

        var huge = FrameDecoder(maxPayload: ProtocolConstants.defaultMaxPayload)
        huge.append(bytes(hex: "ffffffff 20 00 00000001"))
        #expect(
            throws: ProtocolError.frameTooLarge(declared: Int(UInt32.max), maximum: ProtocolConstants.defaultMaxPayload)
        ) {
            try huge.decode()
        }
    }

    @Test("unknown flag bits are an error")
    func unknownFlags() throws {
        var decoder = FrameDecoder()
        decoder.append(bytes(hex: "00000000 03 80 00000000"))
        #expect(throws: ProtocolError.unknownFlags(0x80)) { try decoder.decode() }
    }

    @Test("a compressed frame without negotiated compression is an error")
    func compressedWithoutNegotiation() throws {
        var decoder = FrameDecoder()
        decoder.append(bytes(hex: "00000002 20 01 00000001 0300"))
        #expect(throws: ProtocolError.unexpectedCompression) { try decoder.decode() }
    }

    @Test("end of input inside a header or a payload is reported as truncation")
    func truncation() throws {
        var encoder = FrameEncoder()
        let frame = try encoder.encode(Frame(type: .output, channel: 1, payload: Array(repeating: 7, count: 100)))
        var partHeader = FrameDecoder()
        partHeader.append(frame.prefix(4))
        #expect(try partHeader.decode() == nil)
        #expect(throws: ProtocolError.truncated(missing: 6)) { try partHeader.finish() }

        var partPayload = FrameDecoder()
        partPayload.append(frame.prefix(60))
        #expect(try partPayload.decode() == nil)
        #expect(throws: ProtocolError.truncated(missing: 50)) { try partPayload.finish() }
    }

    @Test("a decompression bomb is an error, not an out-of-memory")
    func decompressionBomb() throws {
        // 64 MiB of zeros deflate to about 64 KiB; the receiver accepts 1 MiB.
        let deflater = try Deflater()
        let bomb = try deflater.compress(Array(repeating: 0, count: 64 << 20))
        #expect(bomb.count < ProtocolConstants.defaultMaxPayload)
        var stream: [UInt8] = []
        FrameHeader(length: UInt32(bomb.count), type: .output, flags: .compressed, channel: 1).write(into: &stream)
        stream += bomb
        var decoder = FrameDecoder(maxPayload: ProtocolConstants.defaultMaxPayload)
        try decoder.enableDecompression()
        decoder.append(stream)
        #expect(throws: ProtocolError.inflatedTooLarge(maximum: ProtocolConstants.defaultMaxPayload)) {
            try decoder.decode()
        }
    }

    @Test("garbage in a compressed payload is an inflate error")
    func corruptCompressedPayload() throws {
        var decoder = FrameDecoder()
        try decoder.enableDecompression()
        decoder.append(bytes(hex: "00000006 20 01 00000001 ffffffffffff"))
        #expect {
            try decoder.decode()
        } throws: { error in
            guard case ProtocolError.inflateFailed = error else { return false }
            return true
        }
    }

    @Test("the encoder refuses a frame larger than the peer accepts")
    func outgoingTooLarge() throws {
        var encoder = FrameEncoder(peerMaxPayload: 100)
        #expect(throws: ProtocolError.outgoingTooLarge(size: 101, maximum: 100)) {
            try encoder.encode(Frame(type: .output, payload: Array(repeating: 1, count: 101)))
        }
    }

    @Test(
        "random bytes never crash the decoder: each stops at the first bad header, with that header's error",
        arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64]
    )
    func randomBytes(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let garbage = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let expected = GarbageOracle(garbage, maxPayload: 4096).outcome
        var decoder = FrameDecoder(maxPayload: 4096)
        try decoder.enableDecompression()
        decoder.append(garbage)
        var frames = 0
        do throws(ProtocolError) {
            while let frame = try decoder.decode() {
                frames += 1
                _ = try? Message(frame: frame)
            }
            #expect(expected == .needMore(framesFirst: frames))
        } catch .inflateFailed {
            #expect(expected == .inflateFailed(framesFirst: frames))
        } catch {
            #expect(expected == .error(error, framesFirst: frames))
        }
    }
}

/// What a decoder must make of arbitrary bytes, worked out from the header layout alone (length, type,
/// flags, channel; big-endian), not from the decoder.
private struct GarbageOracle {
    enum Outcome: Equatable {
        /// Every complete frame decoded, then the rest is a frame still arriving.
        case needMore(framesFirst: Int)
        /// The first bad header's error.
        case error(ProtocolError, framesFirst: Int)
        /// A compressed frame that is not a deflate stream: zlib's message is its own.
        case inflateFailed(framesFirst: Int)
    }

    let outcome: Outcome

    init(_ bytes: [UInt8], maxPayload: Int) {
        var offset = 0
        var frames = 0
        while bytes.count - offset >= ProtocolConstants.headerSize {
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            let flags = bytes[offset + 5]
            if length > maxPayload {
                outcome = .error(.frameTooLarge(declared: length, maximum: maxPayload), framesFirst: frames)
                return
            }
            if flags & ~0x01 != 0 {
                outcome = .error(.unknownFlags(flags), framesFirst: frames)
                return
            }
            guard bytes.count - offset - ProtocolConstants.headerSize >= length else { break }
            // Random bytes are not a deflate stream that ends well: zlib refuses them, in its own words.
            if flags & 0x01 != 0 {
                outcome = .inflateFailed(framesFirst: frames)
                return
            }
            offset += ProtocolConstants.headerSize + length
            frames += 1
        }
        outcome = .needMore(framesFirst: frames)
    }
}
