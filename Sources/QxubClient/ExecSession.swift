import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `qxub exec`: submits one job through an agent and follows it to its end as if it ran here.
///
/// Job stdout goes to our stdout and job stderr to our stderr, byte for byte. Ctrl-C cancels the job and
/// waits for the scheduler to confirm; a second Ctrl-C leaves it running. The exit status is the job's.
/// The policy is ``JobSessionStateMachine``'s (a batch of one); ``JobSessionDriver`` runs it.
package final class ExecSession {
    package enum Mode: Sendable {
        /// Follow the job: stream output, exit with its code.
        case follow
        /// Print the job id and return at once.
        case terse
        /// Follow silently: no output at all, exit with the job's code.
        case quiet
        /// Print the submission and the script; submit nothing.
        case dry
    }

    /// What the session does first.
    package enum Start: Sendable {
        case submit(JobSpec)
        /// Follow a job submitted earlier (`qxub attach`).
        case attach(jobID: String)
    }

    /// What the terminal may show (never on stdout).
    package typealias Status = SessionStatus

    package var onStatus: (Status) -> Void = { _ in }
    private let loop: EventLoop
    private let endpoint: AgentEndpoint
    private let connection: AgentConnection
    private let start: Start
    private let mode: Mode
    /// Where submissions and job ends are recorded (best effort: a history failure never fails a job).
    package var history: HistoryStore?
    /// Only this stream is written out (`qxub history out|err`).
    package var onlyStream: Output.Stream?
    /// Follow the job log instead of the job's output (`qxub history log`).
    package var joblog = false
    /// Delays between reconnection attempts (seconds); past the last one qxub gives up with 255.
    package var reconnectDelays: [Double] = ReconnectPolicy().delays
    /// Our terminal: an interactive job's, once it runs (nil: stdin is not a terminal).
    package var terminal: JobTerminal?
    /// Our terminal became the job's, or ours again.
    package var onTerminal: (JobSessionStateMachine.TerminalControl) -> Void = { _ in }
    /// Job output is about to be written.
    package var onOutput: () -> Void = {}
    private var driver: JobSessionDriver?

    /// Opens the first session at once (so connection errors surface before anything else).
    /// - Parameter connection: a session opened earlier on `loop` (so ssh and the login shell start while
    ///   qxub prepares the job); nil opens one now.
    package init(
        endpoint: AgentEndpoint,
        start: Start,
        mode: Mode,
        loop: EventLoop = EventLoop(),
        connection: AgentConnection? = nil
    ) throws(ClientError) {
        self.loop = connection?.loop ?? loop
        self.endpoint = endpoint
        self.start = start
        self.mode = mode
        if let connection {
            self.connection = connection
        } else {
            self.connection = try endpoint.connect(loop: loop)
        }
    }

    /// The loop the session runs on (for timers of whoever renders the status).
    package var eventLoop: EventLoop { loop }

    /// Runs until the job ends (or, for terse and dry runs, until it is submitted); returns the exit status.
    package func run() -> Int32 {
        let job: JobSessionStateMachine.JobStart
        switch start {
        case .submit(let spec): job = .submit(spec, token: Submit.newToken())
        case .attach(let jobID): job = .attach(jobID: jobID)
        }
        let machineMode: JobSessionStateMachine.Mode
        switch mode {
        case .follow: machineMode = .follow
        case .terse: machineMode = .terse
        case .quiet: machineMode = .quiet
        case .dry: machineMode = .dry
        }
        var configuration = JobSessionStateMachine.Configuration(
            presentation: .exec,
            mode: machineMode,
            jobs: [job],
            peerName: endpoint.peerName,
            remotePlatform: endpoint.platform.remote == nil ? nil : endpoint.platform.name
        )
        configuration.reconnect = ReconnectPolicy(delays: reconnectDelays)
        configuration.onlyStream = onlyStream
        configuration.joblog = joblog
        let driver = JobSessionDriver(
            machine: JobSessionStateMachine(configuration),
            endpoint: endpoint,
            connection: connection,
            signals: mode == .dry || mode == .terse
                ? [] : [SIGINT, SIGTERM, SIGHUP] + (terminal == nil ? [] : [SIGWINCH])
        )
        driver.terminal = terminal
        driver.onTerminal = { [unowned self] in onTerminal($0) }
        driver.onOutput = { [unowned self] in onOutput() }
        driver.history = history
        driver.onStatus = { [unowned self] in onStatus($0) }
        self.driver = driver
        return driver.run()
    }

    /// The error that ended the session, if one did.
    package var failure: ClientError? { driver?.failure }

    /// Wire bytes received over all connections of this session, and job output bytes delivered.
    package var wireBytesReceived: Int { driver?.wireBytesReceived ?? 0 }
    package var outputBytes: UInt64 {
        guard let offsets = driver?.machine.jobs.first?.offsets else { return 0 }
        return (offsets[.stdout] ?? 0) + (offsets[.stderr] ?? 0)
    }
}
