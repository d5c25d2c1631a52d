import QxubAgent
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The terminal keeper's decisions as data: the grace time runs while no agent is connected, a connection
/// cancels it, its expiry or a termination signal ends the command, the command's exit finishes the keeper.
@Suite("KeeperLifecycle: grace, connections, the end")
struct KeeperLifecycleTests {
    typealias Event = KeeperLifecycle.Event
    typealias Action = KeeperLifecycle.Action

    static let ended = "no qxub was attached for 600 s; the interactive session was ended"

    /// Starts a lifecycle (grace 600 s) and feeds it `events`; returns the actions of each, in order.
    static func run(_ events: [Event]) -> (actions: [[Action]], lifecycle: KeeperLifecycle) {
        var lifecycle = KeeperLifecycle(grace: 600)
        var actions = [lifecycle.start()]
        for event in events { actions.append(lifecycle.handle(event)) }
        return (actions, lifecycle)
    }

    @Test(
        "transitions",
        arguments: [
            // No agent from the start: the grace time runs, and its expiry ends the command and says why.
            ([.graceExpired], [[.startGraceTimer(seconds: 600)], [.recordEnded(ended), .endChild]]),
            // A connection cancels the grace time; a late expiry of the cancelled timer does nothing.
            ([.agentConnected, .graceExpired], [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer], []]),
            // The last agent leaving starts it again; one of two leaving does not.
            (
                [.agentConnected, .agentConnected, .agentDisconnected, .agentDisconnected],
                [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer], [], [], [.startGraceTimer(seconds: 600)]]
            ),
            // A termination signal ends the command without a keeper-ended record.
            ([.terminationSignal], [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer, .endChild]]),
            (
                [.agentConnected, .terminationSignal],
                [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer], [.endChild]]
            ),
            // While the command is being ended, nothing starts the grace time or ends it twice.
            (
                [.terminationSignal, .agentConnected, .agentDisconnected, .graceExpired, .terminationSignal],
                [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer, .endChild], [], [], [], []]
            ),
            // The command's exit finishes the keeper, whatever came before; nothing happens after it.
            (
                [.childExited(.exited(3)), .agentConnected, .agentDisconnected, .terminationSignal],
                [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer, .finish(.exited(3))], [], [], []]
            ),
            (
                [.agentConnected, .childExited(.exited(0))],
                [[.startGraceTimer(seconds: 600)], [.cancelGraceTimer], [.finish(.exited(0))]]
            ),
            (
                [.graceExpired, .childExited(.signaled(SIGHUP))],
                [[.startGraceTimer(seconds: 600)], [.recordEnded(ended), .endChild], [.finish(.signaled(SIGHUP))]]
            ),
        ] as [([Event], [[Action]])]
    )
    func transitions(_ events: [Event], _ expected: [[Action]]) {
        #expect(Self.run(events).actions == expected)
    }

    @Test("the phase follows: serving, ending once the command is being ended, finished once it exited")
    func phases() {
        #expect(Self.run([]).lifecycle.phase == .serving)
        #expect(Self.run([.graceExpired]).lifecycle.phase == .ending)
        #expect(Self.run([.terminationSignal]).lifecycle.phase == .ending)
        #expect(Self.run([.terminationSignal, .childExited(.exited(1))]).lifecycle.phase == .finished)
        #expect(Self.run([.agentConnected, .agentConnected, .agentDisconnected]).lifecycle.connections == 1)
    }

    @Test("the ended record names the grace time as given", arguments: [(600.0, "600"), (1.5, "1.5"), (0, "0")])
    func endedText(_ grace: Double, _ shown: String) {
        #expect(
            KeeperLifecycle.endedText(grace: grace)
                == "no qxub was attached for \(shown) s; the interactive session was ended"
        )
    }
}
