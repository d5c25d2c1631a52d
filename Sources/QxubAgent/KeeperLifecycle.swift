import QxubSystem

/// What a terminal keeper does as agents come and go, its grace time runs out, it is told to stop, or its
/// child ends: events in, actions out, no I/O (``TerminalKeeper`` performs the actions on its loop).
///
/// The grace timer runs whenever no agent is connected, from the start until the first one connects too;
/// when it expires the keeper ends the session and says why. The keeper always ends by ``Action/finish(_:)``
/// once its child has exited, however that came about.
package struct KeeperLifecycle: Sendable {
    package enum Event: Hashable, Sendable {
        case agentConnected
        case agentDisconnected
        case graceExpired
        /// SIGTERM or SIGHUP to the keeper (the agent's cancel).
        case terminationSignal
        case childExited(ProcessExit)
    }

    package enum Action: Hashable, Sendable {
        case startGraceTimer(seconds: Double)
        case cancelGraceTimer
        /// Write `DIR/keeper-ended` with this text.
        case recordEnded(String)
        /// End the child's process group: SIGHUP, SIGTERM, then SIGKILL after a short wait.
        case endChild
        /// Read the rest of the master, write the exit record if there is none, remove the socket, exit 0.
        case finish(ProcessExit)
    }

    package enum Phase: Hashable, Sendable {
        /// The child runs; agents may come and go.
        case serving
        /// The child is being ended (grace expired or a termination signal).
        case ending
        /// The child has exited.
        case finished
    }

    package let grace: Double
    package private(set) var phase = Phase.serving
    package private(set) var connections = 0
    package private(set) var graceTimerRunning = false

    package init(grace: Double) {
        self.grace = grace
    }

    /// The keeper has started its child and listens: no agent yet, so the grace time runs.
    package mutating func start() -> [Action] {
        guard phase == .serving, connections == 0, !graceTimerRunning else { return [] }
        graceTimerRunning = true
        return [.startGraceTimer(seconds: grace)]
    }

    package mutating func handle(_ event: Event) -> [Action] {
        switch (event, phase) {
        case (.childExited(let exit), .serving), (.childExited(let exit), .ending):
            phase = .finished
            return stopGraceTimer() + [.finish(exit)]
        case (_, .finished):
            return []
        case (.agentConnected, _):
            connections += 1
            return phase == .serving ? stopGraceTimer() : []
        case (.agentDisconnected, _):
            connections = max(0, connections - 1)
            guard phase == .serving, connections == 0, !graceTimerRunning else { return [] }
            graceTimerRunning = true
            return [.startGraceTimer(seconds: grace)]
        case (.graceExpired, .serving):
            // A timer that fired in the same turn as a connect: the connect wins.
            guard graceTimerRunning, connections == 0 else { return [] }
            graceTimerRunning = false
            phase = .ending
            return [.recordEnded(Self.endedText(grace: grace)), .endChild]
        case (.graceExpired, .ending):
            return []
        case (.terminationSignal, .serving):
            phase = .ending
            return stopGraceTimer() + [.endChild]
        case (.terminationSignal, .ending):
            return []
        }
    }

    /// Why the keeper ended the session, for `DIR/keeper-ended` (and the user, through the agent).
    package static func endedText(grace: Double) -> String {
        let seconds = grace == grace.rounded() && grace < 1e15 ? String(Int64(grace)) : String(grace)
        return "no qxub was attached for \(seconds) s; the interactive session was ended"
    }

    private mutating func stopGraceTimer() -> [Action] {
        guard graceTimerRunning else { return [] }
        graceTimerRunning = false
        return [.cancelGraceTimer]
    }
}
