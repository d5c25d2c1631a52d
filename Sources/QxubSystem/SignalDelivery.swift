import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one handler behind every signal qxub catches: it writes the signal's number into the self-pipes that
/// asked for it, so event loops handle signals like input.
///
/// Two kinds of pipe listen. ``SignalPipe``'s single pipe gets the signals a session routes to it (SIGINT,
/// SIGTERM, SIGHUP). SIGCHLD also wakes every ``ChildWatcher`` through a pipe of its own (a *slot*): a
/// signal reaches the process once, while several loops, on several threads, may each wait for children.
/// The handler only loads atomics and calls `write(2)`, both async-signal-safe.
enum SignalDelivery {
    /// How many child watchers (loops that wait for children) can exist at once.
    static let slotCount = 128

    /// Signals routed to ``SignalPipe``, one bit per signal number.
    static let routedToSignalPipe = Atomic<UInt64>(0)
    /// The write end of ``SignalPipe``'s pipe, -1 before it exists.
    static let signalPipeWriteEnd = Atomic<Int32>(-1)
    /// The write end of each slot's pipe, -1 where none was made yet. A slot's pipe, once made, is never
    /// closed (a freed slot keeps it for the next watcher), so the handler never writes to a descriptor
    /// number that was closed and reused for something else.
    nonisolated(unsafe) private static let slotWriteEnds: UnsafeMutablePointer<Atomic<Int32>> = {
        let ends = UnsafeMutablePointer<Atomic<Int32>>.allocate(capacity: slotCount)
        for index in 0..<slotCount { (ends + index).initialize(to: Atomic(-1)) }
        return ends
    }()
    private struct Slots: ~Copyable {
        var pipes: [(read: Int32, write: Int32)?] = Array(repeating: nil, count: slotCount)
        var busy: [Bool] = Array(repeating: false, count: slotCount)
        /// Signals whose handler is installed.
        var installed: UInt64 = 0
        /// A child watcher ever existed: SIGCHLD keeps its handler for good.
        var childSignalNeeded = false
    }
    private static let slots = Mutex(Slots())

    /// Installs the handler for `signal` (once; later calls do nothing).
    static func install(_ signal: Int32) throws {
        // Touch what the handler reads, so no lazy initialisation can run inside it.
        _ = routedToSignalPipe.load(ordering: .relaxed)
        _ = signalPipeWriteEnd.load(ordering: .relaxed)
        _ = slotWriteEnds
        try slots.withLock { slots throws in
            guard slots.installed & bit(signal) == 0 else { return }
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = deliverSignal
            #else
            action.__sigaction_u.__sa_handler = deliverSignal
            #endif
            // SA_NOCLDSTOP: a child that stops or continues has not exited; only exits wake the watchers.
            action.sa_flags = SA_RESTART | (signal == SIGCHLD ? SA_NOCLDSTOP : 0)
            sigemptyset(&action.sa_mask)
            guard sigaction(signal, &action, nil) == 0 else { throw SystemError("sigaction", "signal \(signal)") }
            slots.installed |= bit(signal)
        }
    }

    /// Gives `signal` back its default disposition, unless child watchers still need it (SIGCHLD).
    static func restoreDefault(_ signal: Int32) {
        slots.withLock { slots in
            guard !(signal == SIGCHLD && slots.childSignalNeeded) else { return }
            #if canImport(Glibc)
            _ = Glibc.signal(signal, SIG_DFL)
            #else
            _ = Darwin.signal(signal, SIG_DFL)
            #endif
            slots.installed &= ~bit(signal)
        }
    }

    /// Takes a free slot for a child watcher: its index and the read end that SIGCHLD makes readable.
    static func acquireSlot() throws -> (index: Int, read: Int32) {
        // Needed first, installed second: a SignalPipe.restoreDefault([SIGCHLD]) in between cannot undo it.
        slots.withLock { $0.childSignalNeeded = true }
        try install(SIGCHLD)
        let slot = try slots.withLock { slots throws -> (index: Int, read: Int32) in
            guard let index = slots.busy.firstIndex(of: false) else {
                throw SystemError("watch children", "(\(slotCount) loops already do)", errno: EMFILE)
            }
            if slots.pipes[index] == nil {
                let ends = try FileDescriptor.pipe()
                do {
                    try FileDescriptor.setNonBlocking(ends.read)
                    try FileDescriptor.setNonBlocking(ends.write)
                } catch {
                    FileDescriptor.close(ends.read)
                    FileDescriptor.close(ends.write)
                    throw error
                }
                slots.pipes[index] = ends
                slotWriteEnds[index].store(ends.write, ordering: .releasing)
            }
            slots.busy[index] = true
            return (index, slots.pipes[index]!.read)
        }
        drain(slot.read)  // wake-ups meant for the slot's previous watcher
        return slot
    }

    /// In a child made by `fork` that goes on running Swift code: forgets the parent's pipes and handlers
    /// (their descriptors are the caller's to close; they are shared with the parent, whose signals they
    /// carry), so that this process makes its own when it needs them. The child is single-threaded here.
    static func forgetInheritedState() {
        routedToSignalPipe.store(0, ordering: .relaxed)
        signalPipeWriteEnd.store(-1, ordering: .relaxed)
        for index in 0..<slotCount { slotWriteEnds[index].store(-1, ordering: .relaxed) }
        slots.withLock { slots in
            for signal in 1..<Int32(64) where slots.installed & bit(signal) != 0 {
                #if canImport(Glibc)
                _ = Glibc.signal(signal, SIG_DFL)
                #else
                _ = Darwin.signal(signal, SIG_DFL)
                #endif
            }
            slots = Slots()
        }
    }

    /// Gives a slot back (its pipe stays, for the next watcher).
    static func releaseSlot(_ index: Int) {
        slots.withLock { $0.busy[index] = false }
    }

    /// Makes a slot's read end readable, as a SIGCHLD would.
    static func wake(_ index: Int) {
        writeSignalByte(slotWriteEnds[index].load(ordering: .acquiring), SIGCHLD)
    }

    /// Reads and discards what is pending on a non-blocking pipe; returns the bytes read.
    @discardableResult
    static func drain(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let outcome = try? buffer.withUnsafeMutableBytes { raw throws in try FileDescriptor.read(fd, into: raw) }
            guard case .bytes(let count) = outcome else { return bytes }
            bytes.append(contentsOf: buffer[0..<count])
        }
    }

    static func bit(_ signal: Int32) -> UInt64 {
        signal > 0 && signal < 64 ? 1 << UInt64(signal) : 0
    }

    /// The handler's work: async-signal-safe calls only.
    fileprivate static func deliver(_ signal: Int32) {
        let saved = currentErrno()
        if routedToSignalPipe.load(ordering: .acquiring) & bit(signal) != 0 {
            writeSignalByte(signalPipeWriteEnd.load(ordering: .acquiring), signal)
        }
        if signal == SIGCHLD {
            for index in 0..<slotCount {
                writeSignalByte(slotWriteEnds[index].load(ordering: .acquiring), signal)
            }
        }
        #if canImport(Glibc)
        errno = saved
        #endif
    }

    /// Writes one byte; a full pipe already holds a wake-up, so a failed write loses nothing.
    private static func writeSignalByte(_ fd: Int32, _ signal: Int32) {
        guard fd >= 0 else { return }
        var byte = UInt8(truncatingIfNeeded: signal)
        #if canImport(Glibc)
        _ = Glibc.write(fd, &byte, 1)
        #else
        _ = Darwin.write(fd, &byte, 1)
        #endif
    }
}

private func deliverSignal(_ signal: Int32) {
    SignalDelivery.deliver(signal)
}
