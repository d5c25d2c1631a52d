// qxub-bench: prints performance figures as ratios against a floor measured in the same run.
// Never part of the tests (timings do not belong in tests). See docs/performance.md.
//
//   swift run -c release qxub-bench protocol
import QxubProtocol
import QxubSystem

func measure(_ label: String, repeats: Int = 3, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = MonotonicClock.now()
        try body()
        best = min(best, MonotonicClock.now() - start)
    }
    return best
}

func format(_ value: Double, _ digits: Int = 1) -> String {
    guard digits > 0 else { return String(Int(value.rounded())) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    return String((value * scale).rounded() / scale)
}

/// A realistic job log: a training loop's progress lines with timestamps and occasional warnings.
func jobLog(lines: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var text = ""
    for line in 0..<lines {
        let loss = Double(Int.random(in: 1000...99999, using: &generator)) / 10000
        let accuracy = Double(Int.random(in: 5000...9999, using: &generator)) / 100
        let second = line / 7 % 60
        let stamp =
            "2026-11-25 10:\(line / 420 % 60 < 10 ? "0" : "")\(line / 420 % 60):\(second < 10 ? "0" : "")\(second)"
        if line % 37 == 0 {
            text +=
                "\(stamp) WARNING dataloader worker \(line % 8) is slow (\(Int.random(in: 100...999, using: &generator)) ms)\n"
        } else {
            text +=
                "\(stamp) INFO epoch \(line / 100) step \(line % 100)/100 loss=\(loss) acc=\(accuracy)% lr=0.0003 gpu_mem=14.2GiB\n"
        }
    }
    return Array(text.utf8)
}

func connectedPair() throws -> (ProtocolEndpoint, ProtocolEndpoint) {
    var sender = ProtocolEndpoint(hello: Hello(software: "bench-agent"), preambleLimit: 0)
    var receiver = ProtocolEndpoint(hello: Hello(software: "bench-client"), preambleLimit: 1024)
    _ = try sender.receive(receiver.start())
    _ = try receiver.receive(sender.start())
    return (sender, receiver)
}

func plainPair() throws -> (ProtocolEndpoint, ProtocolEndpoint) {
    var sender = ProtocolEndpoint(hello: Hello(software: "bench-agent", capabilities: []), preambleLimit: 0)
    var receiver = ProtocolEndpoint(hello: Hello(software: "bench-client", capabilities: []), preambleLimit: 1024)
    _ = try sender.receive(receiver.start())
    _ = try receiver.receive(sender.start())
    return (sender, receiver)
}

/// Encodes `chunks` as output frames on one endpoint and decodes them on the other; returns wire bytes.
func pump(_ chunks: [[UInt8]], through pair: (ProtocolEndpoint, ProtocolEndpoint)) throws -> Int {
    var (sender, receiver) = pair
    var wire: [UInt8] = []
    var wireBytes = 0
    var offset: UInt64 = 0
    var received = 0
    for chunk in chunks {
        wire.removeAll(keepingCapacity: true)
        try sender.encode(.output(Output(stream: .stdout, offset: offset, data: chunk)), channel: 1, into: &wire)
        offset += UInt64(chunk.count)
        wireBytes += wire.count
        for event in try receiver.receive(wire) {
            if case .message(_, .output(let output)) = event { received += output.data.count }
        }
    }
    precondition(received == Int(offset), "lost bytes")
    return wireBytes
}

func protocolBenchmark() throws {
    let log = jobLog(lines: 200_000)  // about 18 MB
    let lines = log.split(separator: 0x0A).map { Array($0) + [0x0A] }
    let bigChunks = stride(from: 0, to: log.count, by: ProtocolConstants.outputChunkSize).map {
        Array(log[$0..<min(log.count, $0 + ProtocolConstants.outputChunkSize)])
    }
    let megabytes = Double(log.count) / 1e6
    print(
        "qxub-bench protocol: \(lines.count) log lines, \(format(megabytes)) MB (mean line \(log.count / lines.count) B)"
    )
    print("")

    // Floor: copying the same bytes chunk by chunk into a buffer, the least any framing can cost.
    var sink: [UInt8] = []
    let floor = measure("copy") {
        sink.removeAll(keepingCapacity: true)
        for chunk in bigChunks { sink.append(contentsOf: chunk) }
    }
    print("| case | frames | time | MB/s | frames/s | x floor | wire/raw |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        "| floor: memory copy of the same bytes | - | \(format(floor * 1000, 2)) ms | \(format(megabytes / floor, 0)) | - | 1.0 | - |"
    )

    func row(_ label: String, _ chunks: [[UInt8]], _ makePair: () throws -> (ProtocolEndpoint, ProtocolEndpoint)) throws
    {
        var wire = 0
        let raw = chunks.reduce(0) { $0 + $1.count }
        let time = try measure(label) { wire = try pump(chunks, through: try makePair()) }
        print(
            "| \(label) | \(chunks.count) | \(format(time * 1000, 1)) ms | \(format(Double(raw) / 1e6 / time, 0)) | \(format(Double(chunks.count) / time, 0)) | \(format(time / floor, 0)) | \(format(100 * Double(wire) / Double(raw), 1))% |"
        )
    }
    try row("64 KiB output frames, plain", bigChunks, plainPair)
    try row("64 KiB output frames, deflate stream", bigChunks, connectedPair)
    try row("one frame per line, plain", lines, plainPair)
    try row("one frame per line, deflate stream", lines, connectedPair)
    // Incompressible output (compressed files, random data) of the same size: sent stored after one try.
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let random = (0..<log.count).map { _ -> UInt8 in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
    let randomChunks = stride(from: 0, to: random.count, by: ProtocolConstants.outputChunkSize).map {
        Array(random[$0..<min(random.count, $0 + ProtocolConstants.outputChunkSize)])
    }
    try row("64 KiB random frames, plain", randomChunks, plainPair)
    try row("64 KiB random frames, deflate stream", randomChunks, connectedPair)

    // For contrast: compressing each line on its own (what a per-frame compressor does).
    var independent = 0
    for line in lines.prefix(20_000) {
        let deflater = try Deflater()
        independent += try deflater.compress(line).count + ProtocolConstants.headerSize + 6
    }
    let sample = lines.prefix(20_000).reduce(0) { $0 + $1.count }
    print("")
    print(
        "Compression ratio, per-line frames compressed independently (first 20,000 lines): \(format(100 * Double(independent) / Double(sample), 1))% of raw"
    )
}
