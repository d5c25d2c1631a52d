import Testing

@testable import QxubSystem

/// A loop on a ``ManualClock``: time moves only when the test moves it, and timers run as it passes them.
@Suite("EventLoop on a manual clock")
struct ManualClockTests {
    @Test("advanceTime runs the timers that fall due, in deadline order, each at its own deadline")
    func ordered() throws {
        let clock = ManualClock(now: 100)
        let loop = EventLoop(clock: clock)
        var seen: [(String, Double)] = []
        loop.schedule(after: 90) { seen.append(("late", loop.now)) }
        loop.schedule(after: 30) { seen.append(("early", loop.now)) }
        loop.schedule(after: 200) { seen.append(("beyond", loop.now)) }
        try loop.advanceTime(by: 90)
        #expect(seen.map(\.0) == ["early", "late"])
        #expect(seen.map(\.1) == [130, 190])
        #expect(loop.now == 190)
        try loop.advanceTime(by: 109.5)
        #expect(seen.count == 2, "a timer ran before its deadline")
        try loop.advanceTime(by: 0.5)
        #expect(seen.map(\.0) == ["early", "late", "beyond"])
    }

    @Test("a timer scheduled by a timer runs in the same advance when it falls due inside it (a heartbeat)")
    func rescheduling() throws {
        let loop = EventLoop(clock: ManualClock(now: 0))
        var beats: [Double] = []
        func beat() {
            loop.schedule(after: 30) {
                beats.append(loop.now)
                beat()
            }
        }
        beat()
        try loop.advanceTime(by: 100)
        #expect(beats == [30, 60, 90])
    }

    @Test("a cancelled timer never runs, and the clock never goes back")
    func cancelled() throws {
        let clock = ManualClock(now: 5)
        let loop = EventLoop(clock: clock)
        var ran = false
        let id = loop.schedule(after: 1) { ran = true }
        loop.cancelTimer(id)
        try loop.advanceTime(by: 2)
        #expect(!ran)
        clock.set(1)
        #expect(loop.now == 7)
    }
}
