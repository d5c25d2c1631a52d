import QxubProtocol
import QxubTestSupport

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let text = String(byte, radix: 16)
        return text.count == 1 ? "0" + text : text
    }.joined()
}

func bytes(hex: String) -> [UInt8] {
    let clean = hex.filter { !$0.isWhitespace }
    var result: [UInt8] = []
    var index = clean.startIndex
    while index < clean.endIndex {
        let next = clean.index(index, offsetBy: 2)
        result.append(UInt8(clean[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// Splits `data` into chunks by `strategy`.
enum Chunking: String, CaseIterable, CustomStringConvertible {
    case whole, byteAtATime, random
    var description: String { rawValue }

    func split(_ data: [UInt8], seed: UInt64 = 42) -> [[UInt8]] {
        switch self {
        case .whole:
            return [data]
        case .byteAtATime:
            return data.map { [$0] }
        case .random:
            var generator = SeededGenerator(seed: seed)
            var chunks: [[UInt8]] = []
            var index = 0
            while index < data.count {
                let size = Int.random(in: 1...97, using: &generator)
                let end = min(data.count, index + size)
                chunks.append(Array(data[index..<end]))
                index = end
            }
            return chunks
        }
    }
}

/// Realistic job output: a training log with progress numbers, timestamps and a few warnings.
func syntheticJobLog(lines: Int, seed: UInt64 = 7) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var text = ""
    for line in 0..<lines {
        let epoch = line / 100
        let step = line % 100
        let loss = Double(Int.random(in: 1000...99999, using: &generator)) / 10000
        let accuracy = Double(Int.random(in: 5000...9999, using: &generator)) / 100
        let second = 10 + line / 7
        if line % 37 == 0 {
            text +=
                "2026-11-25 10:\(second % 60 < 10 ? "0" : "")\(second % 60):00 WARNING dataloader worker \(line % 8) is slow (\(Int.random(in: 100...999, using: &generator)) ms)\n"
        } else {
            text +=
                "2026-11-25 10:\(second % 60 < 10 ? "0" : "")\(second % 60):00 INFO epoch \(epoch) step \(step)/100 loss=\(loss) acc=\(accuracy)% lr=0.0003 gpu_mem=14.2GiB\n"
        }
    }
    return Array(text.utf8)
}

extension ProtocolEndpoint.Event {
    /// The negotiation of a `.ready` event (nil for every other event).
    var negotiation: Negotiation? {
        if case .ready(let negotiation) = self { negotiation } else { nil }
    }
}
