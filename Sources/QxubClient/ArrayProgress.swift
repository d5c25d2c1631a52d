import QxubProtocol

/// The one status line of a followed array job: how many of its subjobs are in each state
/// (`array 1234[]: 3 running, 5 queued, 2 done, 1 failed`).
package struct ArrayProgress: Sendable, Equatable {
    /// Where one subjob is, as the line counts it.
    package enum SubjobState: Sendable, Equatable {
        case waiting(JobState.Phase?)
        case ended(code: Int32)
    }

    package var arrayID: String
    package var subjobs: [SubjobState]

    package init(arrayID: String, subjobs: [SubjobState]) {
        self.arrayID = arrayID
        self.subjobs = subjobs
    }

    /// The line; states with no subjob are left out, the rest in the order a subjob goes through them.
    package var line: String {
        var counts: [String: Int] = [:]
        for subjob in subjobs {
            let word: String
            switch subjob {
            case .waiting(.held?): word = "held"
            // Finished but its end not yet decided (the exit record on its way): still running, as far as it
            // is concerned.
            case .waiting(.running?), .waiting(.finished?): word = "running"
            case .waiting: word = "queued"
            case .ended(let code): word = code == 0 ? "done" : "failed"
            }
            counts[word, default: 0] += 1
        }
        let order = ["queued", "held", "running", "done", "failed"]
        let parts = order.compactMap { word in counts[word].map { "\($0) \(word)" } }
        return "array \(arrayID): " + parts.joined(separator: ", ")
    }
}
