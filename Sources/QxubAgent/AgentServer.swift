import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs one agent session on standard input and output until the client leaves.
package enum AgentServer {
    /// The hello this agent sends.
    package static func hello(scheduler: String) -> Hello {
        Hello(
            software: "qxub-agent \(QxubVersion.current)",
            capabilities: [
                ProtocolConstants.capabilityDeflate, ProtocolConstants.capabilitySubmitToken,
                ProtocolConstants.capabilityInteractive, ProtocolConstants.capabilityUsage,
            ],
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

    /// Seconds an agent whose client has left stays for work in flight: qsub/sbatch time out after 120 s.
    static let workInFlightLimit: Double = 130

    /// The client left while qsub/sbatch or qdel/scancel ran, or while a cancelled local job was being torn
    /// down: runs the loop until that is over, so the job (or the cancel's outcome) is on record and a
    /// retry finds it (bounded by ``workInFlightLimit``).
    package static func finishWorkInFlight(of service: JobService, on loop: EventLoop) throws {
        let deadline = loop.now + workInFlightLimit
        while service.workInFlight > 0 && loop.now < deadline {
            loop.schedule(after: 0.05) { loop.stop() }
            try loop.run()
        }
    }

    /// Serves the protocol on fds 0 and 1 with `options` (read from the environment by the caller); returns
    /// the process exit status.
    package static func serve(
        options: AgentOptions,
        input: Int32 = 0,
        output: Int32 = 1,
        log: (String) -> Void
    ) -> Int32 {
        ignoreBrokenPipes()
        raiseOpenFileLimit()
        let loop = EventLoop()
        let agentLog = AgentLog(path: options.store.root + "/agent.log", mirrorToStderr: options.debug)
        let session = AgentSession(
            loop: loop,
            input: input,
            output: output,
            hello: hello(scheduler: options.defaultKind.rawValue)
        )
        let service = JobService(options: options, loop: loop, log: agentLog)
        session.register(JobHarness(service: service, log: agentLog))
        do {
            try session.start()
            try loop.run()
            service.detachTeardowns()
            try finishWorkInFlight(of: service, on: loop)
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
