import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `qxub batch`: many jobs submitted and followed over one agent session, each on its own channel.
///
/// Output lines are tagged with the job's number (`[3] …`) and written whole, so lines of different jobs
/// never mix; at the end a summary goes to stderr. The exit status is the number of jobs that did not
/// succeed (at most 100), 0 when all did. The policy is ``JobSessionStateMachine``'s, as for `qxub exec`.
package final class BatchSession {
    package struct Outcome: Sendable {
        package var jobID: String?
        package var code: Int32?
        package var message: String?
    }

    private let endpoint: AgentEndpoint
    private let connection: AgentConnection
    private let specs: [JobSpec]
    private let terse: Bool
    /// Delays between reconnection attempts (seconds), as for `qxub exec`.
    package var reconnectDelays: [Double] = ReconnectPolicy().delays
    package var onMessage: (String) -> Void = { _ in }
    /// A followed array's counts (``SessionStatus/progress(_:)``); ``onMessage`` when not set.
    package var onProgress: ((String) -> Void)?
    /// Job output is about to be written (a live status line on the terminal makes way for it).
    package var onOutput: () -> Void = {}
    /// The loop the session runs on (for timers of whoever renders the status).
    package var eventLoop: EventLoop { connection.loop }
    /// Where submissions and job ends are recorded (best effort).
    package var history: HistoryStore?
    /// The one spec is an array job with these indices: its subjobs are followed
    /// (``JobSessionStateMachine/Configuration/arrayIndices``).
    package var arrayIndices: [Int]?
    /// Follow without writing the jobs' output.
    package var quiet = false
    private var driver: JobSessionDriver?

    package init(
        endpoint: AgentEndpoint,
        specs: [JobSpec],
        terse: Bool,
        connection: AgentConnection? = nil
    ) throws(ClientError) {
        self.specs = specs
        self.terse = terse
        self.endpoint = endpoint
        if let connection {
            self.connection = connection
        } else {
            self.connection = try endpoint.connect(loop: EventLoop())
        }
    }

    /// The per-job outcomes, in input order (after ``run()``).
    package var results: [Outcome] {
        guard let jobs = driver?.machine.jobs else { return specs.map { _ in Outcome() } }
        return jobs.map { Outcome(jobID: $0.jobID, code: $0.code, message: $0.message) }
    }

    package func run() -> Int32 {
        var configuration = JobSessionStateMachine.Configuration(
            presentation: .batch,
            mode: terse ? .terse : quiet ? .quiet : .follow,
            // One token per job, sent with every attempt of its submission (see `Submit.token`).
            jobs: specs.map { .submit($0, token: Submit.newToken()) },
            peerName: endpoint.peerName,
            remotePlatform: endpoint.platform.remote == nil ? nil : endpoint.platform.name
        )
        configuration.reconnect = ReconnectPolicy(delays: reconnectDelays)
        configuration.arrayIndices = arrayIndices
        let driver = JobSessionDriver(
            machine: JobSessionStateMachine(configuration),
            endpoint: endpoint,
            connection: connection,
            signals: terse ? [] : [SIGINT]
        )
        driver.history = history
        driver.onStatus = { [unowned self] status in
            switch status {
            case .note(let text): onMessage(text)
            case .progress(let text): (onProgress ?? onMessage)(text)
            default: break
            }
        }
        driver.onOutput = { [unowned self] in onOutput() }
        self.driver = driver
        return driver.run()
    }
}
