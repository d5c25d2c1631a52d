import QxubSystem

/// Runs a scheduler command (qsub, qstat, qdel, scontrol) without blocking the loop and hands its collected
/// run to a completion on the loop. The agent uses ``onLoop(_:)``; tests answer in the scheduler's place.
package struct CommandRunner {
    package let run:
        (_ arguments: [String], _ timeout: Double, _ completion: @escaping (CollectedRun) -> Void) throws -> Void

    package init(
        run:
            @escaping (_ arguments: [String], _ timeout: Double, _ completion: @escaping (CollectedRun) -> Void) throws
            -> Void
    ) {
        self.run = run
    }

    /// Real commands, as ``AsyncCommand`` runs them on `loop`.
    package static func onLoop(_ loop: EventLoop) -> CommandRunner {
        CommandRunner { arguments, timeout, completion in
            try AsyncCommand.run(arguments, on: loop, timeout: timeout, completion: completion)
        }
    }
}
