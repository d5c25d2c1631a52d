import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The local backend's processes: the job scripts this agent started (its children, reaped here), whether a
/// job's processes are still there, and a cancel's teardown of a job's process group (TERM, wait, KILL).
package final class LocalJobs {
    /// Sends `signal` to `pid` (a negative pid: the process group) and returns 0 or the errno, as `kill(2)`.
    /// Tests stand in for processes they cannot make (another user's, which answer EPERM).
    package typealias Signaller = (_ pid: pid_t, _ signal: Int32) -> Int32

    private let loop: EventLoop
    private let grace: Double
    private let signal: Signaller
    private var children: Set<pid_t> = []
    /// Process groups sent SIGTERM whose teardown is not over (gone, or sent SIGKILL), with the loop time
    /// at which each gets SIGKILL.
    private var killTimes: [pid_t: Double] = [:]
    /// Teardowns not over yet: work in flight.
    package var teardowns: Int { killTimes.count }

    /// - Parameter grace: seconds between SIGTERM and SIGKILL in ``terminate(group:)``.
    package init(loop: EventLoop, grace: Double, signal: @escaping Signaller = LocalJobs.systemSignal) {
        self.loop = loop
        self.grace = grace
        self.signal = signal
    }

    package static func systemSignal(_ pid: pid_t, _ signal: Int32) -> Int32 {
        kill(pid, signal) == 0 ? 0 : currentErrno()
    }

    /// Starts `bash script` in a new session (its own process group, which a cancel signals as a whole), with
    /// stdout and stderr on `log`; returns its pid.
    func start(script: String, environment: [String], log: Int32) throws -> pid_t {
        let child = try ChildProcess.spawn(
            ["/bin/bash", script],
            environment: environment,
            stdin: .null,
            stdout: .fileDescriptor(log),
            stderr: .fileDescriptor(log),
            newSession: true
        )
        children.insert(child.pid)
        return child.pid
    }

    /// Whether children of this agent are still to be reaped.
    var hasChildren: Bool { !children.isEmpty }

    /// Whether the process `pid` (negative: any process of that group) is still there. EPERM is an answer
    /// too: the process exists and may not be signalled by us, so it is alive. A child of this agent that
    /// has exited is reaped first (a zombie would answer as alive).
    package func isAlive(_ pid: pid_t) -> Bool {
        reap()
        let result = signal(pid, 0)
        return result == 0 || result == EPERM
    }

    /// Collects the exit of children that have ended.
    func reap() {
        for pid in children {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && currentErrno() == ECHILD) { children.remove(pid) }
        }
    }

    /// Ends a job's process group: SIGTERM now, SIGKILL once ``grace`` has passed on the loop's clock unless
    /// the group is gone by then. Returns whether SIGTERM reached the group (false: nothing was running).
    ///
    /// The agent does this itself, on its loop: while a teardown is on, ``teardowns`` counts it as work in
    /// flight; once the session is over, ``detachTeardowns()`` hands it to a process of the agent's own that
    /// stays until it is over (see ``AgentServer``).
    package func terminate(group pid: pid_t) -> Bool {
        guard pid > 0, signal(-pid, SIGTERM) == 0 else { return false }
        escalate(group: pid, killAt: loop.now + grace)
        return true
    }

    /// Watches a group sent SIGTERM until it is gone, or sends it SIGKILL at `killAt`.
    private func escalate(group pid: pid_t, killAt: Double) {
        killTimes[pid] = killAt
        func check() {
            // Handed over (``detachTeardowns()``), or over.
            guard let killAt = killTimes[pid] else { return }
            guard isAlive(-pid) else {
                killTimes[pid] = nil
                return
            }
            guard loop.now < killAt else {
                _ = signal(-pid, SIGKILL)
                reap()
                killTimes[pid] = nil
                return
            }
            loop.schedule(after: min(0.1, killAt - loop.now)) { check() }
        }
        loop.schedule(after: max(0, min(0.1, killAt - loop.now))) { check() }
    }

    /// Hands the teardowns still on to a process of their own and forgets them here: the agent's session is
    /// over and the agent may not outlive it for long (a local qxub kills its agent 2 s after it leaves).
    /// That process is a fork of this agent, in a session of its own, with /dev/null for its standard
    /// descriptors (ssh waits for those to close); it runs the same escalation on a loop of its own and
    /// exits. Where fork fails, the teardowns stay here.
    package func detachTeardowns() {
        guard !killTimes.isEmpty else { return }
        let now = loop.now
        let remaining = killTimes.map { (group: $0.key, after: max(0, $0.value - now)) }
        let child = fork()
        guard child == 0 else {
            if child > 0 { killTimes.removeAll() }
            return
        }
        _ = setsid()
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            for fd in Int32(0)...2 { _ = dup2(null, fd) }
        }
        let own = EventLoop()
        let jobs = LocalJobs(loop: own, grace: 0, signal: signal)
        for teardown in remaining { jobs.escalate(group: teardown.group, killAt: own.now + teardown.after) }
        try? own.run()
        _exit(0)
    }
}
