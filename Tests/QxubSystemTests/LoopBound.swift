import QxubSystem

/// Runs `loop` until one of its handlers stops it, or `seconds` pass: tests wait for events with a bound,
/// never for a fixed time. Returns whether the bound was reached (the event never came).
func runLoop(_ loop: EventLoop, bound seconds: Double = 20) throws -> Bool {
    var boundReached = false
    let bound = loop.schedule(after: seconds) {
        boundReached = true
        loop.stop()
    }
    try loop.run()
    loop.cancelTimer(bound)
    return boundReached
}
