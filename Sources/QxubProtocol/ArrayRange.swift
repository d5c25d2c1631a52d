/// A job array's index range (`--array`) and the ids of its subjobs: what the agent runs locally and what
/// the client follows.
///
/// Accepted: PBS's `1-10` and `1-10:2`, and Slurm's lists `1,3,5-7`, steps `0-15:4` and a throttle `%4`
/// (which only Slurm applies; it does not change the indices).
package struct ArrayRange: Sendable, Equatable {
    /// The indices, ascending, each once.
    package let indices: [Int]

    /// More subjobs than this are refused (a typo such as `1-100000` would start that many processes locally).
    package static let limit = 10_000

    /// Parses `text`; nil when it is not a range of non-negative indices or names more than ``limit``.
    package init?(_ text: String) {
        var body = Substring(text)
        if let percent = body.firstIndex(of: "%") {
            guard let throttle = Int(body[body.index(after: percent)...]), throttle > 0 else { return nil }
            body = body[..<percent]
        }
        var seen = Set<Int>()
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            var range = part
            var step = 1
            if let colon = range.firstIndex(of: ":") {
                guard let parsed = Int(range[range.index(after: colon)...]), parsed > 0 else { return nil }
                step = parsed
                range = range[..<colon]
            }
            let bounds = range.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                let low = Int(bounds[0]), low >= 0,
                let high = bounds.count == 2 ? Int(bounds[1]) : low, high >= low
            else { return nil }
            guard (high - low) / step < Self.limit else { return nil }
            for index in stride(from: low, through: high, by: step) { seen.insert(index) }
            guard seen.count <= Self.limit else { return nil }
        }
        guard !seen.isEmpty else { return nil }
        indices = seen.sorted()
    }

    /// The id of subjob `index` of the array job `arrayID`: PBS `1234[].srv` → `1234[3].srv` (the local
    /// backend names its arrays the same way), Slurm `1234` → `1234_3`.
    package static func subjobID(of arrayID: String, index: Int) -> String {
        if let open = arrayID.firstIndex(of: "["), arrayID[arrayID.index(after: open)...].first == "]" {
            return String(arrayID[...open]) + "\(index)" + String(arrayID[arrayID.index(after: open)...])
        }
        return arrayID + "_\(index)"
    }

    /// The array job and index a subjob id names (`1234[3].srv` → (`1234[].srv`, 3), `1234_3` → (`1234`, 3)),
    /// or nil for an id that names no subjob.
    package static func split(subjobID: String) -> (arrayID: String, index: Int)? {
        if let close = subjobID.firstIndex(of: "]"), let open = subjobID[..<close].lastIndex(of: "["),
            let index = Int(subjobID[subjobID.index(after: open)..<close]), index >= 0
        {
            return (String(subjobID[...open]) + String(subjobID[close...]), index)
        }
        if let underscore = subjobID.lastIndex(of: "_"), subjobID.first?.isNumber == true,
            let index = Int(subjobID[subjobID.index(after: underscore)...]), index >= 0,
            subjobID[..<underscore].allSatisfy(\.isNumber)
        {
            return (String(subjobID[..<underscore]), index)
        }
        return nil
    }
}
