import QxubAgent
import QxubSystem
import Testing

/// The keeper's wire: `[type][length UInt32 BE][payload]`, read back whole however the bytes are split; a
/// frame that cannot be read is an error.
@Suite("KeeperFrame: the keeper's wire")
struct KeeperFrameTests {
    @Test("bytes on the wire as documented")
    func layout() {
        #expect(KeeperFrame.input([0x68, 0x69]).encoded == [0x49, 0, 0, 0, 2, 0x68, 0x69])
        #expect(
            KeeperFrame.resize(WindowSize(rows: 0x0102, columns: 0x0304)).encoded == [0x57, 0, 0, 0, 4, 1, 2, 3, 4]
        )
        #expect(KeeperFrame.output.encoded == [0x4E, 0, 0, 0, 0])
    }

    @Test("frames come back whole, byte by byte or all at once")
    func roundTrip() throws {
        let frames: [KeeperFrame] = [
            .input(Array("echo hi\r".utf8)), .resize(WindowSize(rows: 30, columns: 100)), .output, .input([]),
            .input([UInt8](repeating: 7, count: KeeperFrame.maxPayload)),
        ]
        let bytes = frames.flatMap(\.encoded)
        for chunk in [1, 3, bytes.count] {
            var decoder = KeeperFrameDecoder()
            var decoded: [KeeperFrame] = []
            var start = 0
            while start < bytes.count {
                decoder.append(bytes[start..<min(start + chunk, bytes.count)])
                start += chunk
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            #expect(decoded == frames, "in chunks of \(chunk)")
            #expect(decoder.pendingBytes == 0)
        }
    }

    @Test("input longer than one frame's payload is split, in order")
    func inputIsSplit() throws {
        let input = (0..<(2 * KeeperFrame.maxPayload + 5)).map { UInt8(truncatingIfNeeded: $0) }
        var decoder = KeeperFrameDecoder()
        decoder.append(KeeperFrame.inputFrames(input))
        var lengths: [Int] = []
        var joined: [UInt8] = []
        while case .input(let bytes)? = try decoder.next() {
            lengths.append(bytes.count)
            joined += bytes
        }
        #expect(lengths == [KeeperFrame.maxPayload, KeeperFrame.maxPayload, 5])
        #expect(joined == input)
    }

    @Test(
        "a frame that cannot be read is an error as soon as its header is in",
        arguments: [
            ([0x58, 0, 0, 0, 0], KeeperFrameDecoder.Failure.unknownType(0x58)),
            ([0x57, 0, 0, 0, 3], .badLength(type: 0x57, length: 3)),
            ([0x4E, 0, 0, 0, 1], .badLength(type: 0x4E, length: 1)),
            ([0x49, 0, 1, 0, 1], .badLength(type: 0x49, length: UInt32(KeeperFrame.maxPayload + 1))),
            ([0x49, 0xFF, 0xFF, 0xFF, 0xFF], .badLength(type: 0x49, length: UInt32.max)),
        ] as [([UInt8], KeeperFrameDecoder.Failure)]
    )
    func badFrames(_ bytes: [UInt8], _ failure: KeeperFrameDecoder.Failure) {
        var decoder = KeeperFrameDecoder()
        decoder.append(bytes)
        #expect(throws: failure) { try decoder.next() }
    }
}
