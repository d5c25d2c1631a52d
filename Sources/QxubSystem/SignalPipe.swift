#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns signals into readable bytes (the self-pipe trick), so an ``EventLoop`` handles them like input.
public enum SignalPipe {
    nonisolated(unsafe) private static var writeFD: Int32 = -1
    nonisolated(unsafe) private static var readFD: Int32 = -1

    /// Installs handlers for `signals` and returns the pipe's read end; each byte read is a signal number.
    public static func install(_ signals: [Int32]) throws -> Int32 {
        if readFD < 0 {
            let (read, write) = try FileDescriptor.pipe()
            try FileDescriptor.setNonBlocking(read)
            try FileDescriptor.setNonBlocking(write)
            readFD = read
            writeFD = write
        }
        for signal in signals {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = signalPipeHandler
            #else
            action.__sigaction_u.__sa_handler = signalPipeHandler
            #endif
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            guard sigaction(signal, &action, nil) == 0 else { throw SystemError("sigaction", "signal \(signal)") }
        }
        return readFD
    }

    /// Reads the pending signal numbers.
    public static func drain() -> [Int32] {
        var signals: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let outcome = try? buffer.withUnsafeMutableBytes { raw throws in
                try FileDescriptor.read(readFD, into: raw)
            }
            guard case .bytes(let count) = outcome else { return signals }
            signals.append(contentsOf: buffer[0..<count].map { Int32($0) })
        }
    }

    /// Restores the default disposition of `signals`.
    public static func restoreDefault(_ signals: [Int32]) {
        for sig in signals { signal(sig, SIG_DFL) }
    }

    fileprivate static func notify(_ signal: Int32) {
        var byte = UInt8(truncatingIfNeeded: signal)
        let saved = currentErrno()
        _ = write(writeFD, &byte, 1)
        #if canImport(Glibc)
        errno = saved
        #endif
    }
}

private func signalPipeHandler(_ signal: Int32) {
    SignalPipe.notify(signal)
}

/// Ignores SIGPIPE for the whole process: a closed peer shows up as `EPIPE` on write instead of killing us.
public func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}
