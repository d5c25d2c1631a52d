import QxubClient
import Testing

@Suite("Retrying a session that sshd refused (MaxSessions, MaxStartups)")
struct SessionRetryPolicyTests {
    /// Plays the tries on a clock of its own: each try takes `tryLength` seconds and fails.
    /// Returns when each try started.
    static func tryStarts(_ policy: SessionRetryPolicy, tryLength: Double) -> [Double] {
        var now = 0.0
        var starts: [Double] = []
        while true {
            starts.append(now)
            now += tryLength
            guard let pause = policy.pause(afterFailedTries: starts.count, elapsed: now) else { return starts }
            #expect(pause >= 0)
            now += pause
        }
    }

    @Test("at most 5 tries, every one starting within 10 s of the first", arguments: [0.0, 0.05, 0.5, 1, 3, 9.9, 12])
    func bounds(tryLength: Double) {
        for random in [0.0, 0.5, 0.999_999] {
            let starts = Self.tryStarts(SessionRetryPolicy(random: { random }), tryLength: tryLength)
            #expect(starts.count <= 5, "\(starts)")
            #expect(starts.last! <= 10, "\(starts)")
        }
    }

    @Test("refused at once, all 5 tries are made, with pauses growing from 0.5 s to at most 4 s")
    func quickRefusals() {
        let shortest = Self.tryStarts(SessionRetryPolicy(random: { 0 }), tryLength: 0)
        #expect(shortest == [0, 0.25, 0.75, 1.75, 3.75])
        let longest = Self.tryStarts(SessionRetryPolicy(random: { 1 }), tryLength: 0)
        #expect(longest == [0, 0.5, 1.5, 3.5, 7.5])
    }

    @Test("the pause is jittered within [window/2, window]")
    func jitter() {
        for (failed, window) in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)] {
            let pauses = [0.0, 0.25, 0.5, 0.75, 0.99].map { random in
                SessionRetryPolicy(random: { random }).pause(afterFailedTries: failed, elapsed: 0)!
            }
            #expect(Set(pauses).count == pauses.count, "different random numbers, different pauses: \(pauses)")
            #expect(pauses.allSatisfy { $0 >= window / 2 && $0 <= window }, "\(failed): \(pauses)")
        }
    }

    @Test("no try after the fifth, none once 10 s are spent, and the last pause ends within the budget")
    func limits() {
        let policy = SessionRetryPolicy(random: { 0.9 })
        #expect(policy.pause(afterFailedTries: 5, elapsed: 1) == nil)
        #expect(policy.pause(afterFailedTries: 0, elapsed: 0) == nil)
        #expect(policy.pause(afterFailedTries: 2, elapsed: 10) == nil)
        #expect(policy.pause(afterFailedTries: 4, elapsed: 9.5) == 0.5)
    }

    @Test("a random source out of range is clamped")
    func hostileRandom() {
        #expect(SessionRetryPolicy(random: { -3 }).pause(afterFailedTries: 1, elapsed: 0) == 0.25)
        #expect(SessionRetryPolicy(random: { 7 }).pause(afterFailedTries: 1, elapsed: 0) == 0.5)
    }
}
