#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One step of ending a process that overran its time or was cancelled: send a signal (to its process group
/// when it leads one), or give it time to exit before the next step.
package enum TeardownStep: Hashable, Sendable {
    case signal(Int32)
    case wait(seconds: Double)

    /// SIGTERM, two seconds to exit, then SIGKILL: a well-behaved child cleans up, a stuck one dies anyway.
    package static let gentle: [TeardownStep] = [.signal(SIGTERM), .wait(seconds: 2)]
}

/// The teardown of one process as data: the steps asked for, always ending in SIGKILL; the runner performs
/// each action and stops asking once the process has exited.
package struct Teardown: Sendable {
    private let steps: [TeardownStep]
    private var position = 0

    package init(_ steps: [TeardownStep]) {
        var steps = steps
        // However the sequence ends, nothing outlives it: the last word is SIGKILL.
        if let last = steps.lastIndex(where: { if case .signal = $0 { true } else { false } }),
            steps[last] == .signal(SIGKILL)
        {
            steps.removeSubrange((last + 1)...)
        } else {
            steps.append(.signal(SIGKILL))
        }
        self.steps = steps
    }

    /// The next step, or `nil` once SIGKILL was sent.
    package mutating func next() -> TeardownStep? {
        guard position < steps.count else { return nil }
        defer { position += 1 }
        return steps[position]
    }
}
