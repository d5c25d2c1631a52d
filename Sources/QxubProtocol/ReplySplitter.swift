/// Cuts the repeated field of a reply (or a query) into runs that each fit one frame.
///
/// A status report for 30,000 jobs, or 10,000 history entries, is larger than the 1 MiB a peer accepts in
/// one frame: the sender sends several messages of the same kind instead, each with `more` but the last.
package enum ReplySplitter {
    /// Room left in each frame for the fields other than the repeated one (request id, `more`).
    package static let headroom = 64

    /// Bytes that one length-delimited field of `length` bytes takes on the wire (key, length, bytes).
    package static func fieldSize(field: Int, length: Int) -> Int {
        varintSize(UInt64(field) << 3 | 2) + varintSize(UInt64(length)) + length
    }

    /// Runs of `values` (encoded as field `field`) whose sum fits `maxPayload` minus the headroom.
    package static func runs<Value: WireCodable>(of values: [Value], field: Int, maxPayload: Int) -> [Range<Int>] {
        runs(sizes: values.map { fieldSize(field: field, length: $0.wireBytes().count) }, maxPayload: maxPayload)
    }

    /// Runs of consecutive items whose sizes sum to at most `maxPayload` minus the headroom; an item larger
    /// than that alone gets a run of its own (its sender fails locally rather than drop it silently).
    /// Always at least one run, empty when there are no items: an empty reply is still a reply.
    package static func runs(sizes: [Int], maxPayload: Int) -> [Range<Int>] {
        let budget = max(1, maxPayload - headroom)
        var runs: [Range<Int>] = []
        var start = 0
        var total = 0
        for (index, size) in sizes.enumerated() {
            if index > start && total + size > budget {
                runs.append(start..<index)
                start = index
                total = 0
            }
            total += size
        }
        runs.append(start..<sizes.count)
        return runs
    }

    static func varintSize(_ value: UInt64) -> Int {
        var value = value
        var count = 1
        while value >= 0x80 {
            value >>= 7
            count += 1
        }
        return count
    }
}
