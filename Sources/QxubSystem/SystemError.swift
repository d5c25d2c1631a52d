#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: what we tried, on what, and the `errno` text.
package struct SystemError: Error, Hashable, Sendable, CustomStringConvertible {
    package var operation: String
    package var subject: String
    package var errno: Int32

    package init(_ operation: String, _ subject: String = "", errno: Int32 = currentErrno()) {
        self.operation = operation
        self.subject = subject
        self.errno = errno
    }

    package var description: String {
        let reason = String(cString: strerror(errno))
        return subject.isEmpty ? "\(operation): \(reason)" : "\(operation) \(subject): \(reason)"
    }
}

/// `errno` of the calling thread.
@inline(__always)
package func currentErrno() -> Int32 {
    #if canImport(Glibc)
    return Glibc.errno
    #else
    return Darwin.errno
    #endif
}
