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
    }

    private struct Timer {
        var id: Int
        var deadline: Double
        var handler: () -> Void
    }

    private var interests: [Int32: Interest] = [:]
    private var timers: [Timer] = []
    private var nextTimerID = 1
    private var stopped = false

    public init() {}

    /// Calls `handler` whenever `fd` is readable (or at end of file / error); `nil` stops watching.
    public func setReadable(_ fd: Int32, _ handler: (() -> Void)?) {
        interests[fd, default: Interest()].readable = handler
        dropIfEmpty(fd)
    }

    /// Calls `handler` whenever `fd` has room for writing; `nil` stops watching.
    public func setWritable(_ fd: Int32, _ handler: (() -> Void)?) {
        interests[fd, default: Interest()].writable = handler
        dropIfEmpty(fd)
    }

    /// Forgets every handler of `fd` (call before closing it).
    public func remove(_ fd: Int32) {
        interests[fd] = nil
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

    /// Makes ``run()`` return after the current handler.
    public func stop() {
        stopped = true
    }

    /// Runs until ``stop()`` or until there is nothing left to wait for.
    public func run() throws {
        stopped = false
        while !stopped {
            if interests.isEmpty && timers.isEmpty { return }
            var fds = interests.map { fd, interest in
                pollfd(
                    fd: fd,
                    events: Int16((interest.readable != nil ? POLLIN : 0) | (interest.writable != nil ? POLLOUT : 0)),
                    revents: 0)
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
                let events = Int32(entry.revents)
                let failed = events & (POLLERR | POLLHUP | POLLNVAL) != 0
                if events & POLLIN != 0 || (failed && interests[entry.fd]?.readable != nil) {
                    interests[entry.fd]?.readable?()
                }
                if stopped { break }
                if events & POLLOUT != 0 || (failed && interests[entry.fd]?.writable != nil) {
                    interests[entry.fd]?.writable?()
                }
                if events & POLLNVAL != 0 { interests[entry.fd] = nil }
            }
            runDueTimers()
        }
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

    private func dropIfEmpty(_ fd: Int32) {
        if let interest = interests[fd], interest.readable == nil, interest.writable == nil {
            interests[fd] = nil
        }
    }
}
