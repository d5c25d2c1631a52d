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
public final class EventLoop {
    private struct Interest {
        var readable: (() -> Void)?
        var writable: (() -> Void)?
        /// Changes whenever a handler is set, so the loop can tell whether a handler that heard of a hang-up
        /// did anything about its descriptor (a reconnect may register a new pipe under the same number).
        var serial = 0
    }

    private struct Timer {
        var id: Int
        var deadline: Double
        var handler: () -> Void
    }

    private var interests: [Int32: Interest] = [:]
    private var timers: [Timer] = []
    private var nextTimerID = 1
    private var nextSerial = 1
    /// A stop that was asked for and has not ended a run yet.
    private var stopped = false

    public init() {}

    /// Calls `handler` whenever `fd` is readable (or at end of file / error); `nil` stops watching.
    public func setReadable(_ fd: Int32, _ handler: (() -> Void)?) {
        interests[fd, default: Interest()].readable = handler
        touch(fd)
    }

    /// Calls `handler` whenever `fd` has room for writing; `nil` stops watching.
    public func setWritable(_ fd: Int32, _ handler: (() -> Void)?) {
        interests[fd, default: Interest()].writable = handler
        touch(fd)
    }

    /// Forgets every handler of `fd` (call before closing it).
    public func remove(_ fd: Int32) {
        interests[fd] = nil
    }

    /// Whether a handler watches `fd`.
    package func isWatching(_ fd: Int32) -> Bool {
        interests[fd] != nil
    }

    /// Runs `handler` once after `seconds`; returns an id for ``cancelTimer(_:)``.
    @discardableResult
    public func schedule(after seconds: Double, _ handler: @escaping () -> Void) -> Int {
        let id = nextTimerID
        nextTimerID += 1
        timers.append(Timer(id: id, deadline: MonotonicClock.now() + seconds, handler: handler))
        return id
    }

    public func cancelTimer(_ id: Int) {
        timers.removeAll { $0.id == id }
    }

    /// Makes ``run()`` return after the current handler. A stop asked for while no run is going on (by code
    /// that ran before it, such as a session that ended while it started) ends the next run at once: a stop
    /// is never lost, and it ends exactly one run.
    public func stop() {
        stopped = true
    }

    /// Runs until ``stop()`` or until there is nothing left to wait for.
    public func run() throws {
        defer { stopped = false }
        while !stopped {
            if interests.isEmpty && timers.isEmpty { return }
            var fds = interests.map { fd, interest in
                pollfd(
                    fd: fd,
                    events: Int16((interest.readable != nil ? POLLIN : 0) | (interest.writable != nil ? POLLOUT : 0)),
                    revents: 0
                )
            }
            var timeout: Int32 = -1
            if let soonest = timers.min(by: { $0.deadline < $1.deadline }) {
                let milliseconds = (soonest.deadline - MonotonicClock.now()) * 1000
                timeout = Int32(max(0, min(milliseconds.rounded(.up), 60_000)))
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if currentErrno() == EINTR { continue }
                throw SystemError("poll")
            }
            for entry in fds where entry.revents != 0 && !stopped {
                dispatch(fd: entry.fd, events: Int32(entry.revents))
            }
            runDueTimers()
        }
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
        let now = MonotonicClock.now()
        let due = timers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
        guard !due.isEmpty else { return }
        let dueIDs = Set(due.map(\.id))
        timers.removeAll { dueIDs.contains($0.id) }
        for timer in due where !stopped {
            timer.handler()
        }
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
