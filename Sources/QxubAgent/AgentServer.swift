import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs one agent session on standard input and output until the client leaves.
public enum AgentServer {
    /// The hello this agent sends.
    public static func hello(scheduler: String) -> Hello {
        Hello(
            software: "qxub-agent \(QxubVersion.current)",
            capabilities: [ProtocolConstants.capabilityDeflate, ProtocolConstants.capabilitySubmitToken],
            platform: Environment.platform(),
            hostname: Environment.hostname(),
            scheduler: scheduler
        )
    }

    /// Each followed job holds its output files open: lift the soft limit on open files (often 1024 on
    /// login nodes) to the hard one, so a batch of thousands of jobs does not run out.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Serves the protocol on fds 0 and 1; returns the process exit status.
    public static func serve(input: Int32 = 0, output: Int32 = 1, log: (String) -> Void) -> Int32 {
        ignoreBrokenPipes()
        raiseOpenFileLimit()
        let loop = EventLoop()
        let options = JobService.Options.fromEnvironment()
        let session = AgentSession(
            loop: loop,
            input: input,
            output: output,
            hello: hello(scheduler: options.defaultKind.rawValue)
        )
        let service = JobService(options: options)
        session.register(service)
        do {
            try session.start()
            try loop.run()
            // The client left while qsub/sbatch or qdel/scancel ran: stay until the scheduler has answered
            // and the job (or the cancel's outcome) is on record, so a retry finds it (bounded).
            let deadline = MonotonicClock.now() + 130
            while service.workInFlight > 0 && MonotonicClock.now() < deadline {
                loop.schedule(after: 0.05) { loop.stop() }
                try loop.run()
            }
        } catch {
            log("qxub-agent: \(error)")
            return 1
        }
        switch session.ending {
        case .protocolError(let error):
            log("qxub-agent: session ended: \(error)")
        case .systemError(let error):
            log("qxub-agent: session ended: \(error)")
        case .clientClosed, nil:
            break
        }
        return session.ending?.exitStatus ?? 0
    }
}
