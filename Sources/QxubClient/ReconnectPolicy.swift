/// When a session that ended while jobs were still wanted is opened again: a pause before each new
/// attempt, and none left when the list runs out (qxub then gives up with ``ExitCodes/connectionLost``).
package struct ReconnectPolicy: Sendable, Equatable {
    /// Seconds before each attempt, in order.
    package var delays: [Double]

    package init(delays: [Double] = [1, 2, 4, 8, 15]) {
        self.delays = delays
    }

    /// The pause before attempt `made + 1`, or nil when every attempt has been made.
    package func delay(afterAttempts made: Int) -> Double? {
        delays.indices.contains(made) ? delays[made] : nil
    }

    /// How many attempts the policy allows.
    package var attempts: Int { delays.count }
}
