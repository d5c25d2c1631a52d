/// When a session that ssh could not open is tried again. sshd refuses sessions past its `MaxSessions`
/// (per connection) and drops connections past `MaxStartups` (being opened at once); both pass within
/// moments, so a few more tries with growing pauses succeed. The pauses are jittered so that many qxub
/// refused together do not come back together.
///
/// A value with an injected random source: the pauses can be checked without sleeping.
package struct SessionRetryPolicy: Sendable {
    /// Tries in all, the first included.
    package var maxTries: Int
    /// Seconds after the first try within which every later try starts.
    package var budget: Double
    /// The pause after the first failed try is between half of this and this; it doubles per try.
    package var firstPause: Double
    /// No pause is longer than this.
    package var maxPause: Double
    /// A number in 0..<1.
    package var random: @Sendable () -> Double

    package init(
        maxTries: Int = 5,
        budget: Double = 10,
        firstPause: Double = 0.5,
        maxPause: Double = 4,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.maxTries = maxTries
        self.budget = budget
        self.firstPause = firstPause
        self.maxPause = maxPause
        self.random = random
    }

    /// The pause before the next try, or nil when none is left.
    /// - Parameters:
    ///   - failedTries: tries made so far, all failed (1 after the first).
    ///   - elapsed: seconds since the first try started.
    package func pause(afterFailedTries failedTries: Int, elapsed: Double) -> Double? {
        guard failedTries >= 1, failedTries < maxTries, elapsed < budget else { return nil }
        var window = firstPause
        for _ in 1..<failedTries { window = min(maxPause, window * 2) }
        window = min(maxPause, window)
        // "Equal jitter": never less than half the window, so a retry storm thins out at every step.
        let fraction = min(max(random(), 0), 1)
        return min(window / 2 + window / 2 * fraction, budget - elapsed)
    }
}
