/// Where an ``EventLoop`` reads the time: the monotonic clock in the programs, a ``ManualClock`` in tests.
///
/// Every timeout, heartbeat and backoff of a session is a timer on its loop, measured against the loop's
/// clock (``EventLoop/now``), so a test that drives a manual clock checks a 90 s silence in milliseconds.
package protocol LoopClock: AnyObject {
    /// Seconds on a clock that never jumps backwards.
    var now: Double { get }
}

/// The system's monotonic clock (``MonotonicClock``).
package final class SystemLoopClock: LoopClock {
    package init() {}
    package var now: Double { MonotonicClock.now() }
}

/// A clock that moves only when told: ``EventLoop/advanceTime(by:)`` moves it and runs the timers that fall
/// due on the way (the shape of swift-nio's `EmbeddedEventLoop.advanceTime(by:)`).
package final class ManualClock: LoopClock {
    package private(set) var now: Double

    package init(now: Double = 1_000) {
        self.now = now
    }

    /// Moves the clock to `time`; never backwards.
    package func set(_ time: Double) {
        now = max(now, time)
    }
}
