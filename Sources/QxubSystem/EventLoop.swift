#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A single-threaded `poll(2)` loop: file-descriptor readiness and timers.
///
/// Both the agent and the client run their session on one of these. Nothing blocks inside a handler,
/// so a reader never waits behind a writer: each side reads whenever bytes arrive and writes whenever the
/// pipe has room.
package final class EventLoop {
    private struct Interest {
        var readable: (() -> Void)?
        var writable: (() -> Void)?
        /// Changes whenever a handler is set, so the loop can tell whether a handler that heard of a hang-up
        /// did anything about its descriptor (a reconnect may register a new pipe under the same number).
        var serial = 0
        /// Set once when the descriptor is registered (it had no handler): readiness that `poll` reported for
        /// an earlier registration under the same number (closed and reused by a handler of the same poll)
        /// never reaches this one.
        var generation = 0
    }

    private struct Timer {
        var id: Int
        var deadline: Double
        var handler: () -> Void
    }

    private var interests: [Int32: Interest] = [:]
    private var timers: [Timer] = []
    /// Timers taken out as due and not run yet: a timer cancelled by an earlier one of the same batch is
    /// removed from here and does not run.
    private var dueBatch: Set<Int> = []
    private var nextTimerID = 1
    private var nextSerial = 1
    /// A stop that was asked for and has not ended a run yet.
    private var stopped = false
    private let clock: LoopClock

    /// - Parameter clock: where timers read the time; tests pass a ``ManualClock`` and drive it with
    ///   ``advanceTime(by:)``.
    package init(clock: LoopClock = SystemLoopClock()) {
        self.clock = clock
    }

    /// The loop's time, in seconds (monotonic): what timers are measured against. Code on the loop reads
    /// elapsed times here, so a test clock moves them too.
    package var now: Double { clock.now }

    /// Calls `handler` whenever `fd` is readable (or at end of file / error); `nil` stops watching.
    package func setReadable(_ fd: Int32, _ handler: (() -> Void)?) {
        register(fd)
        interests[fd]?.readable = handler
        touch(fd)
    }

    /// Calls `handler` whenever `fd` has room for writing; `nil` stops watching.
    package func setWritable(_ fd: Int32, _ handler: (() -> Void)?) {
        register(fd)
        interests[fd]?.writable = handler
        touch(fd)
    }

    /// Forgets every handler of `fd` (call before closing it).
    package func remove(_ fd: Int32) {
        interests[fd] = nil
    }

    /// Whether a handler watches `fd`.
    package func isWatching(_ fd: Int32) -> Bool {
        interests[fd] != nil
    }

    /// Runs `handler` once after `seconds` of the loop's clock; returns an id for ``cancelTimer(_:)``.
    @discardableResult
    package func schedule(after seconds: Double, _ handler: @escaping () -> Void) -> Int {
        let id = nextTimerID
        nextTimerID += 1
        timers.append(Timer(id: id, deadline: clock.now + seconds, handler: handler))
        return id
    }

    /// Cancels a timer; one that has not run yet never runs, even when it was due in the batch now running.
    package func cancelTimer(_ id: Int) {
        timers.removeAll { $0.id == id }
        dueBatch.remove(id)
    }

    /// Makes ``run()`` return after the current handler. A stop asked for while no run is going on (by code
    /// that ran before it, such as a session that ended while it started) ends the next run at once: a stop
    /// is never lost, and it ends exactly one run.
    package func stop() {
        stopped = true
    }

    /// Runs until ``stop()`` or until there is nothing left to wait for.
    package func run() throws {
        defer { stopped = false }
        while !stopped {
            if interests.isEmpty && timers.isEmpty { return }
            var timeout: Int32 = -1
            if let soonest = timers.min(by: { $0.deadline < $1.deadline }) {
                let milliseconds = (soonest.deadline - clock.now) * 1000
                timeout = Int32(max(0, min(milliseconds.rounded(.up), 60_000)))
            }
            try turn(timeoutMilliseconds: timeout)
        }
    }

    /// Moves a ``ManualClock`` forward by `seconds`: handles the I/O that is ready (without waiting), then
    /// runs every timer that falls due on the way in deadline order, each with the clock at its deadline,
    /// timers scheduled by those timers included. For tests: a 90 s silence takes milliseconds.
    package func advanceTime(by seconds: Double) throws {
        guard let manual = clock as? ManualClock else {
            preconditionFailure("advanceTime(by:) needs an EventLoop made with a ManualClock")
        }
        let target = manual.now + seconds
        try turn(timeoutMilliseconds: 0)
        while let next = timers.min(by: { $0.deadline < $1.deadline }), next.deadline <= target {
            manual.set(next.deadline)
            runDueTimers()
            try turn(timeoutMilliseconds: 0)
        }
        manual.set(target)
        try turn(timeoutMilliseconds: 0)
    }

    /// One pass for tests: waits up to `seconds` (real time) for I/O, handles it and the timers due now.
    package func runOnce(waitingUpTo seconds: Double = 0) throws {
        try turn(timeoutMilliseconds: Int32(max(0, min(seconds * 1000, 60_000)).rounded(.up)))
    }

    /// One `poll` and the handlers of what it reported, then the timers that are due.
    private func turn(timeoutMilliseconds: Int32) throws {
        var registered: [(fd: Int32, generation: Int)] = []
        registered.reserveCapacity(interests.count)
        var fds = interests.map { fd, interest in
            registered.append((fd, interest.generation))
            return pollfd(
                fd: fd,
                events: Int16((interest.readable != nil ? POLLIN : 0) | (interest.writable != nil ? POLLOUT : 0)),
                revents: 0
            )
        }
        let ready = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
        if ready < 0 {
            if currentErrno() == EINTR { return }
            throw SystemError("poll")
        }
        if ready > 0 {
            for (index, entry) in fds.enumerated() where entry.revents != 0 && !stopped {
                // Only the registration that was polled hears of it.
                guard interests[entry.fd]?.generation == registered[index].generation else { continue }
                dispatch(fd: entry.fd, events: Int32(entry.revents))
            }
        }
        runDueTimers()
    }

    /// Calls the handlers of a descriptor that `poll` reported.
    ///
    /// A hang-up or error (`POLLHUP`, `POLLERR`, `POLLNVAL`) is reported to the reader, else the writer. Without
    /// data to read or room to write it never clears: once its handlers have heard of it, a descriptor they
    /// left as it was is dropped, since polling it again would return at once, forever (a busy loop).
    private func dispatch(fd: Int32, events: Int32) {
        guard let serial = interests[fd]?.serial else { return }
        let failed = events & (POLLERR | POLLHUP | POLLNVAL) != 0
        if events & POLLIN != 0 || (failed && interests[fd]?.readable != nil) {
            interests[fd]?.readable?()
        }
        if !stopped && (events & POLLOUT != 0 || (failed && interests[fd]?.writable != nil)) {
            interests[fd]?.writable?()
        }
        let lasting = events & POLLNVAL != 0 || (failed && events & (POLLIN | POLLOUT) == 0)
        if lasting && interests[fd]?.serial == serial { interests[fd] = nil }
    }

    private func runDueTimers() {
        let now = clock.now
        let due = timers.filter { $0.deadline <= now }.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }
        guard !due.isEmpty else { return }
        dueBatch = Set(due.map(\.id))
        timers.removeAll { dueBatch.contains($0.id) }
        for timer in due where !stopped {
            guard dueBatch.remove(timer.id) != nil else { continue }
            timer.handler()
        }
        // A stop leaves the rest of the batch for the next run.
        for timer in due where dueBatch.contains(timer.id) { timers.append(timer) }
        dueBatch = []
    }

    /// A new registration for a descriptor nobody watches.
    private func register(_ fd: Int32) {
        guard interests[fd] == nil else { return }
        interests[fd] = Interest(generation: nextSerial)
        nextSerial += 1
    }

    /// Marks `fd`'s interest as changed; forgets it once no handler is left.
    private func touch(_ fd: Int32) {
        guard let interest = interests[fd] else { return }
        if interest.readable == nil && interest.writable == nil {
            interests[fd] = nil
        } else {
            interests[fd]?.serial = nextSerial
            nextSerial += 1
        }
    }
}
