import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tells the code on one ``EventLoop`` when its child processes exit, woken by SIGCHLD (no polling).
///
/// One watcher serves a loop (``of(_:)``); it reaps only the pids it was given, so children that other code
/// waits for are left alone. The loop watches the SIGCHLD pipe only while some child is watched, so a loop
/// with nothing else to do still ends.
package final class ChildWatcher {
    private weak var loop: EventLoop?
    private let slot: Int
    private let wakeEnd: Int32
    private var handlers: [pid_t: (ProcessExit) -> Void] = [:]

    /// The watchers of live loops, by loop.
    private static let registry = Mutex<[ObjectIdentifier: WeakWatcher]>([:])
    private struct WeakWatcher: @unchecked Sendable {
        weak var watcher: ChildWatcher?
    }

    /// The watcher of `loop`, made on first use (it lives while children are watched or someone keeps it).
    package static func of(_ loop: EventLoop) throws -> ChildWatcher {
        let key = ObjectIdentifier(loop)
        if let existing = registry.withLock({ $0[key]?.watcher }), existing.loop === loop { return existing }
        let watcher = try ChildWatcher(loop: loop)
        registry.withLock { registry in
            // A dead loop's identifier may be reused: drop entries whose watcher is gone.
            registry = registry.filter { $0.value.watcher != nil }
            registry[key] = WeakWatcher(watcher: watcher)
        }
        return watcher
    }

    private init(loop: EventLoop) throws {
        self.loop = loop
        (slot, wakeEnd) = try SignalDelivery.acquireSlot()
    }

    deinit {
        loop?.remove(wakeEnd)
        SignalDelivery.releaseSlot(slot)
    }

    /// Calls `handler` on the loop once child `pid` has exited, and reaps it.
    package func watchExit(_ pid: pid_t, _ handler: @escaping (ProcessExit) -> Void) {
        if handlers.isEmpty {
            loop?.setReadable(wakeEnd) { [self] in reapWatched() }
        }
        handlers[pid] = handler
        // The child may have exited before it was watched: look at once, on the loop's next turn.
        SignalDelivery.wake(slot)
    }

    /// Stops watching `pid` (it is left unreaped; its handler is never called).
    package func cancel(_ pid: pid_t) {
        handlers[pid] = nil
        if handlers.isEmpty { loop?.setReadable(wakeEnd, nil) }
    }

    /// Waits, blocking, at most `timeout` seconds for child `pid` to exit, and reaps it; `nil` when it still
    /// runs. For code that must know before it returns (a session's close); a handler of `pid` is not called.
    package func waitForExit(_ pid: pid_t, timeout: Double) -> ProcessExit? {
        let deadline = MonotonicClock.now() + timeout
        defer {
            // The wake-ups read here may have been meant for other watched children: look again on the loop.
            if !handlers.isEmpty { SignalDelivery.wake(slot) }
        }
        while true {
            if let exit = Self.reap(pid) {
                cancel(pid)
                return exit
            }
            let remaining = deadline - MonotonicClock.now()
            guard remaining > 0 else { return nil }
            var poller = pollfd(fd: wakeEnd, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, Int32(min((remaining * 1000).rounded(.up), 60_000)))
            SignalDelivery.drain(wakeEnd)
        }
    }

    /// Reaps the watched children that exited and calls their handlers.
    private func reapWatched() {
        SignalDelivery.drain(wakeEnd)
        for pid in Array(handlers.keys) {
            // A handler called earlier in this pass may have cancelled a later pid.
            guard let handler = handlers[pid], let exit = Self.reap(pid) else { continue }
            handlers[pid] = nil
            if handlers.isEmpty { loop?.setReadable(wakeEnd, nil) }
            handler(exit)
        }
    }

    /// The exit of `pid` if it has exited (and reaps it), `nil` while it runs.
    private static func reap(_ pid: pid_t) -> ProcessExit? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return ProcessExit(waitStatus: status) }
            if result == 0 { return nil }
            if currentErrno() == EINTR { continue }
            // Not our child any more (someone else reaped it): as ChildProcess.wait() says, status unknown.
            return .exited(255)
        }
    }
}
