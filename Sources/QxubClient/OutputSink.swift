import QxubProtocol

/// Where a job's output goes, and in what shape: a value the session state machine holds per job.
///
/// `raw` passes bytes through as they come (`qxub exec`: job stdout to ours, job stderr to ours); `tagged`
/// writes whole lines only, each prefixed with the job's number (`qxub batch`), so lines of different jobs
/// never mix; `silent` writes nothing (`--quiet`).
package struct OutputSink: Sendable, Equatable {
    /// One of our two output streams.
    package enum Target: Sendable, Equatable {
        case stdout
        case stderr
    }

    package enum Shape: Sendable, Equatable {
        /// Bytes as they come; with `only`, that job stream alone, written to our stdout.
        case raw(only: Output.Stream?)
        /// Whole lines, each starting with `[N] `.
        case tagged(number: Int)
        case silent
    }

    package let shape: Shape
    /// A tagged sink's partial last line per stream, waiting for its end of line (or the job's end).
    private var partial: [Output.Stream: [UInt8]] = [:]

    package init(_ shape: Shape) {
        self.shape = shape
    }

    /// The writes that show `bytes` of job stream `stream`.
    package mutating func accept(_ bytes: ArraySlice<UInt8>, from stream: Output.Stream) -> [(Target, [UInt8])] {
        switch shape {
        case .silent:
            return []
        case .raw(let only):
            if let only { return only == stream ? [(.stdout, Array(bytes))] : [] }
            return [(Self.target(stream), Array(bytes))]
        case .tagged(let number):
            var buffer = partial[stream] ?? []
            buffer += bytes
            // Whole lines only: a job's partial line waits for its end of line (or the job's end).
            guard let lastNewline = buffer.lastIndex(of: 0x0A) else {
                partial[stream] = buffer
                return []
            }
            let lines = Array(buffer[...lastNewline])
            buffer.removeSubrange(...lastNewline)
            partial[stream] = buffer
            return [(Self.target(stream), Self.tag(lines, number: number))]
        }
    }

    /// The writes that end the job's output: a tagged sink's partial lines, each given its end of line.
    package mutating func finish() -> [(Target, [UInt8])] {
        guard case .tagged(let number) = shape else { return [] }
        var writes: [(Target, [UInt8])] = []
        for stream in [Output.Stream.stdout, .stderr] {
            if let rest = partial[stream], !rest.isEmpty {
                writes.append((Self.target(stream), Self.tag(rest + [0x0A], number: number)))
            }
        }
        partial = [:]
        return writes
    }

    private static func target(_ stream: Output.Stream) -> Target {
        stream == .stdout ? .stdout : .stderr
    }

    private static func tag(_ lines: [UInt8], number: Int) -> [UInt8] {
        let tag = Array("[\(number)] ".utf8)
        var tagged: [UInt8] = []
        tagged.reserveCapacity(lines.count + 16)
        var start = 0
        for (position, byte) in lines.enumerated() where byte == 0x0A {
            tagged += tag
            tagged += lines[start...position]
            start = position + 1
        }
        return tagged
    }
}
