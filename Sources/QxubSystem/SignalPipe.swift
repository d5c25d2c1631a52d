import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns signals into readable bytes (the self-pipe trick), so an ``EventLoop`` handles them like input.
package enum SignalPipe {
    /// The pipe's read end, -1 before the first ``install(_:)``.
    private static let readEnd = Mutex<Int32>(-1)

    /// Installs handlers for `signals` and returns the pipe's read end; each byte read is a signal number.
    package static func install(_ signals: [Int32]) throws -> Int32 {
        let read = try readEnd.withLock { read throws -> Int32 in
            if read < 0 {
                let ends = try FileDescriptor.pipe()
                try FileDescriptor.setNonBlocking(ends.read)
                try FileDescriptor.setNonBlocking(ends.write)
                SignalDelivery.signalPipeWriteEnd.store(ends.write, ordering: .releasing)
                read = ends.read
            }
            return read
        }
        for signal in signals {
            SignalDelivery.routedToSignalPipe.bitwiseOr(SignalDelivery.bit(signal), ordering: .acquiringAndReleasing)
            try SignalDelivery.install(signal)
        }
        return read
    }

    /// In a child made by `fork` that goes on running Swift code: forgets the parent's signal pipes and
    /// handlers (see ``SignalDelivery/forgetInheritedState()``); the caller closes inherited descriptors.
    package static func forgetInheritedState() {
        readEnd.withLock { $0 = -1 }
        SignalDelivery.forgetInheritedState()
    }

    /// Reads the pending signal numbers.
    package static func drain() -> [Int32] {
        let read = readEnd.withLock { $0 }
        guard read >= 0 else { return [] }
        return SignalDelivery.drain(read).map { Int32($0) }
    }

    /// Restores the default disposition of `signals` (SIGCHLD stays caught while child watchers need it, but
    /// no longer reaches this pipe).
    package static func restoreDefault(_ signals: [Int32]) {
        for signal in signals {
            SignalDelivery.routedToSignalPipe.bitwiseAnd(~SignalDelivery.bit(signal), ordering: .acquiringAndReleasing)
            SignalDelivery.restoreDefault(signal)
        }
    }
}

/// Ignores SIGPIPE for the whole process: a closed peer shows up as `EPIPE` on write instead of killing us.
package func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}
