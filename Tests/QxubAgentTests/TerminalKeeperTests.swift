import QxubAgent
import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The terminal keeper in this process on a manual clock: its grace time, a connection that cancels it,
/// input and window sizes through ``KeeperConnection``, output appended and announced, bad frames.
extension InProcessAgentTests {
    @Suite("TerminalKeeper in process, on a manual clock")
    struct TerminalKeeperTests {
        let loop = EventLoop(clock: ManualClock())
        let directory: String
        let paths: JobPaths

        init() throws {
            ignoreBrokenPipes()  // a peer that is gone must fail the test, not kill the runner
            directory = try temporaryDirectory()
            paths = JobPaths(stateDirectory: directory)
        }

        func keeper(_ command: [String], grace: Double = 5) throws -> TerminalKeeper {
            let options = KeeperOptions(
                directory: directory,
                windowSize: WindowSize(rows: 24, columns: 80),
                grace: grace,
                command: command
            )
            let keeper = TerminalKeeper(
                options: options,
                loop: loop,
                log: AgentLog(path: paths.keeperLog),
                environment: Environment.all()
            )
            try keeper.start()
            return keeper
        }

        /// Turns the loop (real time for I/O, the manual clock stands still) until `condition` holds, at most
        /// `bound` seconds; returns whether it holds.
        func turn(bound: Double = 20, until condition: () -> Bool) throws -> Bool {
            let deadline = MonotonicClock.now() + bound
            while !condition() && MonotonicClock.now() < deadline { try loop.runOnce(waitingUpTo: 0.05) }
            return condition()
        }

        func connect() throws -> KeeperConnection {
            try KeeperConnection.connect(to: paths.keeperSocket, on: loop).get()
        }

        @Test("without an agent, the grace time ends the command: SIGHUP, keeper-ended, exit record, no socket")
        func graceExpires() throws {
            let keeper = try keeper(["sleep", "1000"], grace: 5)
            try loop.advanceTime(by: 4.9)
            #expect(!FileSystem.exists(paths.keeperEndedRecord))
            #expect(kill(keeper.commandPID, 0) == 0)
            try loop.advanceTime(by: 0.2)
            #expect(
                FileSystem.readText(paths.keeperEndedRecord)
                    == "no qxub was attached for 5 s; the interactive session was ended\n"
            )
            #expect(try turn { keeper.finished != nil })
            #expect(keeper.finished == .signaled(SIGHUP))
            let record = try #require(FileSystem.readText(paths.exitRecord))
            #expect(record.hasPrefix("129 ") && record.hasSuffix(" keeper\n"))
            #expect(!FileSystem.exists(paths.keeperSocket))
        }

        @Test("a connected agent holds the session past the grace time; once it leaves, the grace time runs again")
        func connectionCancelsGrace() throws {
            let keeper = try keeper(["sleep", "1000"], grace: 5)
            let connection = try connect()
            #expect(try turn { keeper.connectedAgents == 1 })
            try loop.advanceTime(by: 60)
            #expect(!FileSystem.exists(paths.keeperEndedRecord))
            #expect(kill(keeper.commandPID, 0) == 0)
            connection.close()
            #expect(try turn { keeper.connectedAgents == 0 })
            try loop.advanceTime(by: 4.9)
            #expect(!FileSystem.exists(paths.keeperEndedRecord))
            try loop.advanceTime(by: 0.2)
            #expect(FileSystem.exists(paths.keeperEndedRecord))
            #expect(try turn { keeper.finished != nil })
        }

        @Test("input reaches the command, its output is appended to out and announced, a resize is its size")
        func inputOutputResize() throws {
            let keeper = try keeper(["/bin/sh", "-c", "read line; stty size; echo \"got $line\"; read line; stty size"])
            let connection = try connect()
            var announced = 0
            connection.onOutput = { announced += 1 }
            var closed = false
            connection.onClose = { closed = true }
            connection.sendInput(Array("first\r".utf8))
            #expect(try turn { (FileSystem.readText(paths.stdout) ?? "").contains("got first") })
            #expect(try turn { announced > 0 })
            connection.resize(rows: 30, cols: 100)
            connection.sendInput(Array("second\r".utf8))
            #expect(try turn { keeper.finished != nil })
            #expect(keeper.finished == .exited(0))
            let output = try #require(FileSystem.readText(paths.stdout))
            #expect(output == "first\r\n24 80\r\ngot first\r\nsecond\r\n30 100\r\n")
            #expect(try turn { closed })
            #expect(FileSystem.readText(paths.exitRecord)?.hasPrefix("0 ") == true)
        }

        @Test("input for a command that reads none stays bounded in the keeper, which goes on serving")
        func inputIsBounded() throws {
            let keeper = try keeper(["sleep", "1000"])
            defer { kill(keeper.commandPID, SIGKILL) }
            let flood = try connect()
            let input = [UInt8](repeating: 0x61, count: 4 << 20)
            flood.sendInput(input)
            #expect(try turn { keeper.queuedInput > TerminalKeeper.inputHighWater })
            // The keeper stopped reading: the rest waits in the agent's queue and the socket.
            for _ in 0..<20 { try loop.runOnce(waitingUpTo: 0.01) }
            #expect(keeper.queuedInput <= TerminalKeeper.inputHighWater + KeeperFrame.maxPayload)
            #expect(flood.pendingBytes > 0)
            // Still serving: another agent is accepted.
            let other = try connect()
            #expect(try turn { keeper.connectedAgents == 2 })
            other.close()
        }

        @Test("a command that cannot be started: exit record 127, no socket left, the reason in keeper.log")
        func commandCannotStart() throws {
            #expect(throws: SystemError("spawn", "/nonexistent/shell", errno: ENOENT)) {
                try keeper(["/nonexistent/shell"])
            }
            let record = try #require(FileSystem.readText(paths.exitRecord))
            #expect(record.hasPrefix("127 ") && record.hasSuffix(" keeper\n"))
            #expect(!FileSystem.exists(paths.keeperSocket))
            #expect(FileSystem.readText(paths.keeperLog)?.contains("cannot start /nonexistent/shell") == true)
        }

        @Test(
            "the keeper's exit record ('STATUS EPOCH keeper') is the job's end for the agent",
            arguments: [("3 1700000005 keeper\n", JobTermination.exited(3)), ("129 1700000005 keeper\n", .signaled(1))]
        )
        func keeperExitRecordIsRead(_ record: String, _ termination: JobTermination) throws {
            try recordJob(
                root: directory,
                jobID: "local-keeper",
                backend: "local",
                records: ["started": "1700000000 node\n", "exit": record]
            )
            let agent = try InProcessAgent(stateRoot: directory)
            try agent.sayHello()
            try agent.send(.statusQuery(StatusQuery(requestID: 9, jobIDs: ["local-keeper"])))
            #expect(try agent.run { !$0.replies(to: 9).isEmpty })
            let report = try #require(
                agent.replies(to: 9).first.flatMap { if case .statusReport(let r) = $0 { r } else { nil } }
            )
            #expect(report.jobs.map(\.termination) == [termination])
        }

        /// A cancelled interactive job's terminal command (`srun --pty`, `qsub -I`) ends with a status of its own
        /// (srun: 1) and the wrapper, which never ran or was cut off, writes nothing: the keeper's record of that
        /// status is not the job's end, the cancel is.
        @Test(
            "a cancelled interactive job whose end the keeper recorded is cancelled, whatever the command's status",
            arguments: [
                (["exit": "1 1700000005 keeper\n"], JobTermination.cancelled(ranFirst: false)),
                (["exit": "0 1700000005 keeper\n"], .cancelled(ranFirst: false)),
                (["started": "1700000000 node\n", "exit": "1 1700000005 keeper\n"], .cancelled(ranFirst: true)),
                (["started": "1700000000 node\n", "exit": "129 1700000005 keeper\n"], .cancelled(ranFirst: true)),
                // The wrapper's own record stays the job's end: the command ended before the cancel reached it.
                (["started": "1700000000 node\n", "exit": "3 1700000005\n"], .exited(3)),
            ]
        )
        func cancelledKeeperRecord(_ records: [String: String], _ termination: JobTermination) throws {
            try recordJob(
                root: directory,
                jobID: "local-cancelled",
                backend: "local",
                records: records.merging(["cancelled": "1700000004\n"]) { $1 }
            )
            let agent = try InProcessAgent(stateRoot: directory)
            try agent.sayHello()
            try agent.send(.statusQuery(StatusQuery(requestID: 9, jobIDs: ["local-cancelled"])))
            #expect(try agent.run { !$0.replies(to: 9).isEmpty })
            let report = try #require(
                agent.replies(to: 9).first.flatMap { if case .statusReport(let r) = $0 { r } else { nil } }
            )
            #expect(report.jobs.map(\.termination) == [termination])
        }

        @Test(
            "a connection that sends a bad frame is closed; the others stay",
            arguments: [
                // An agent never sends N: only the keeper does.
                KeeperFrame.output.encoded,
                [0x58, 0, 0, 0, 0],
                [0x57, 0, 0, 0, 3, 0, 24, 0],
            ]
        )
        func badFrameClosesOneConnection(_ frame: [UInt8]) throws {
            let keeper = try keeper(["sleep", "1000"])
            defer { kill(keeper.commandPID, SIGKILL) }
            let agents = [try connect(), try connect()]
            var closed = 0
            for agent in agents { agent.onClose = { closed += 1 } }
            let raw = try UnixSocket.connect(paths.keeperSocket).get()
            defer { FileDescriptor.close(raw) }
            #expect(try turn { keeper.connectedAgents == 3 })
            try FileDescriptor.writeAll(raw, frame)
            #expect(try turn { keeper.connectedAgents == 2 })
            var byte: UInt8 = 0
            #expect(read(raw, &byte, 1) == 0, "the keeper closed the bad connection")
            try loop.runOnce(waitingUpTo: 0.1)
            #expect(closed == 0)
        }
    }
}
