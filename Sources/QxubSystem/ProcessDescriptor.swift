#if canImport(Glibc)
import Glibc

/// A descriptor that becomes readable when a process ends (a pidfd, Linux 5.3+): the loop learns of the end
/// of any process, a child of this one or not, without polling it.
package enum ProcessDescriptor {
    /// A pidfd for `pid`, or nil: no such process, or a kernel without pidfds.
    package static func open(_ pid: pid_t) -> Int32? {
        guard pid > 0 else { return nil }
        // Glibc has no wrapper before 2.36 and Swift cannot call the variadic syscall(2): this declares its
        // two-argument form. 434 is pidfd_open on every Linux architecture (the unified syscall table).
        let fd = rawSyscall(434, Int(pid), 0)
        // A pidfd is close-on-exec from the start.
        return fd >= 0 ? Int32(fd) : nil
    }
}

@_silgen_name("syscall")
private func rawSyscall(_ number: Int, _ first: Int, _ second: Int) -> Int
#endif
