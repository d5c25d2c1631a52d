import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a handler sees is what was registered for it: a timer cancelled in time never fires, and readiness
/// of a closed descriptor never reaches a new registration that reused its number.
@Suite("EventLoop: cancelled timers and reused descriptors")
struct EventLoopDispatchTests {
    @Test("a timer cancelled by another timer due in the same batch does not fire")
    func cancelledInSameBatch() throws {
        let loop = EventLoop()
        var fired: [String] = []
        var second = 0
        // Both are due when the loop first looks; whichever runs first cancels the other.
        let first = loop.schedule(after: 0) {
            fired.append("first")
            loop.cancelTimer(second)
        }
        second = loop.schedule(after: 0) {
            fired.append("second")
            loop.cancelTimer(first)
        }
        try loop.run()
        #expect(fired.count == 1, "both timers fired although the first cancelled the second: \(fired)")
    }

    @Test("readiness of a closed descriptor does not reach a new registration under the same number")
    func reusedDescriptorNumber() throws {
        let loop = EventLoop()
        let a = try FileDescriptor.pipe()
        let b = try FileDescriptor.pipe()
        defer {
            for fd in [a.read, a.write, b.read, b.write] { FileDescriptor.close(fd) }
        }
        // Both readable at once: one poll reports both.
        try FileDescriptor.writeAll(a.write, "a")
        try FileDescriptor.writeAll(b.write, "b")
        var calledOnEmptyPipe: [Int32] = []
        var replacements: [Int32] = []
        var handled = 0
        /// The first handler to run closes the other pipe's read end and opens an empty pipe under its number.
        func replace(_ victim: Int32) throws {
            loop.remove(victim)
            let fresh = try FileDescriptor.pipe()
            #expect(dup2(fresh.read, victim) == victim)
            FileDescriptor.close(fresh.read)
            replacements.append(fresh.write)
            loop.setReadable(victim) { calledOnEmptyPipe.append(victim) }
        }
        loop.setReadable(a.read) {
            handled += 1
            if handled == 1 { try? replace(b.read) }
        }
        loop.setReadable(b.read) {
            handled += 1
            if handled == 1 { try? replace(a.read) }
        }
        // Timers run after the poll's readiness is dispatched: this ends the run after that one poll.
        loop.schedule(after: 0) { loop.stop() }
        try loop.run()
        for fd in replacements { FileDescriptor.close(fd) }
        #expect(handled == 1)
        #expect(calledOnEmptyPipe.isEmpty, "the new handler of \(calledOnEmptyPipe) got the old pipe's readiness")
    }
}
