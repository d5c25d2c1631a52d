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
    private var childWatcher: ChildWatcher?
    /// A group's teardown under way: its steps (``Teardown``), and the end of the wait now on.
    private struct GroupTeardown {
        var steps: Teardown
        var waitUntil: Double
    }

    /// The teardowns not over yet (the group is still there and has not had SIGKILL), by process group.
    private var groups: [pid_t: GroupTeardown] = [:]
    /// Teardowns not over yet: work in flight.
    package var teardowns: Int { groups.count }

    /// - Parameter grace: seconds between SIGTERM and SIGKILL in ``terminate(group:)``.
    package init(loop: EventLoop, grace: Double, signal: @escaping Signaller = LocalJobs.systemSignal) {
        self.loop = loop
        self.grace = grace
        self.signal = signal
    }

    package static func systemSignal(_ pid: pid_t, _ signal: Int32) -> Int32 {
        kill(pid, signal) == 0 ? 0 : currentErrno()
    }

    /// Starts `bash script` (or `arguments`: an interactive job's keeper) in a new session (its own process
    /// group, which a cancel signals as a whole), with stdout and stderr on `log`; returns its pid.
    func start(script: String, arguments: [String]? = nil, environment: [String], log: Int32) throws -> pid_t {
        let child = try ChildProcess.spawn(
            arguments ?? ["/bin/bash", script],
            environment: environment,
            stdin: .null,
            stdout: .fileDescriptor(log),
            stderr: .fileDescriptor(log),
            newSession: true
        )
        children.insert(child.pid)
        // Reaped on SIGCHLD, whoever follows the job (no polling with waitpid).
        if let watcher = try? ChildWatcher.of(loop) {
            childWatcher = watcher
            watcher.watchExit(child.pid) { [weak self] _ in self?.children.remove(child.pid) }
        }
        return child.pid
    }

    /// Whether the process `pid` (negative: any process of that group) is still there. EPERM is an answer
    /// too: the process exists and may not be signalled by us, so it is alive. A child of this agent that
    /// has exited is reaped first (a zombie would answer as alive).
    package func isAlive(_ pid: pid_t) -> Bool {
        reap(pid < 0 ? -pid : pid)
        let result = signal(pid, 0)
        return result == 0 || result == EPERM
    }

    /// Stops reaping on SIGCHLD (the session is over: the loop must be free to end; the jobs run on).
    func stopWatchingChildren() {
        for pid in children { childWatcher?.cancel(pid) }
        childWatcher = nil
    }

    /// Collects the exit of child `pid` if it has ended (its SIGCHLD may not have been handled yet).
    private func reap(_ pid: pid_t) {
        guard children.contains(pid) else { return }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || (result < 0 && currentErrno() == ECHILD) {
            children.remove(pid)
            childWatcher?.cancel(pid)
        }
    }

    /// Ends a job's process group: SIGTERM now, SIGKILL once ``grace`` has passed on the loop's clock unless
    /// the group is gone by then (``Teardown``: `.signal(SIGTERM)`, `.wait(grace)`, then SIGKILL). Returns
    /// whether SIGTERM reached the group (false: nothing was running, nothing more is done).
    ///
    /// The agent does this itself, on its loop: while a teardown is on, ``teardowns`` counts it as work in
    /// flight; once the session is over, ``detachTeardowns()`` hands it to a process of the agent's own that
    /// stays until it is over (see ``AgentServer``).
    package func terminate(group pid: pid_t) -> Bool {
        terminate(group: pid, steps: [.signal(SIGTERM), .wait(seconds: grace)])
    }

    /// Ends a process group with `steps` (the first a signal; SIGKILL ends them, ``Teardown``), as
    /// ``terminate(group:)`` does with its own: a terminal keeper sends SIGHUP first, as a terminal that
    /// goes away would.
    package func terminate(group pid: pid_t, steps: [TeardownStep]) -> Bool {
        guard pid > 0 else { return false }
        var steps = Teardown(steps)
        guard case .signal(let first)? = steps.next(), signal(-pid, first) == 0 else { return false }
        groups[pid] = GroupTeardown(steps: steps, waitUntil: loop.now)
        advance(pid)
        return true
    }

    /// Takes the group's next step once its wait is over; while it waits, looks every 100 ms whether the
    /// group is gone (then the teardown is over).
    private func advance(_ pid: pid_t) {
        // Handed over (``detachTeardowns()``), or over.
        guard var teardown = groups[pid] else { return }
        let now = loop.now
        if now < teardown.waitUntil {
            guard isAlive(-pid) else {
                groups[pid] = nil
                return
            }
            loop.schedule(after: min(0.1, teardown.waitUntil - now)) { [weak self] in self?.advance(pid) }
            return
        }
        switch teardown.steps.next() {
        case .signal(let number)?:
            _ = signal(-pid, number)
            groups[pid] = teardown
            advance(pid)
        case .wait(let seconds)?:
            teardown.waitUntil = now + seconds
            groups[pid] = teardown
            loop.schedule(after: min(0.1, seconds)) { [weak self] in self?.advance(pid) }
        case nil:
            // SIGKILL was the last step (the script, a child of this agent, is reaped on its SIGCHLD).
            groups[pid] = nil
        }
    }

    /// Hands the teardowns still on to a process of their own and forgets them here: the agent's session is
    /// over and the agent may not outlive it for long (a local qxub kills its agent 2 s after it leaves).
    /// That process is a fork of this agent, in a session of its own, with /dev/null for its standard
    /// descriptors (ssh waits for those to close); it goes on with the same steps on a loop of its own and
    /// exits. Where fork fails, the teardowns stay here.
    package func detachTeardowns() {
        guard !groups.isEmpty else { return }
        let now = loop.now
        let remaining = groups.mapValues { ($0.steps, max(0, $0.waitUntil - now)) }
        let child = fork()
        guard child == 0 else {
            if child > 0 { groups.removeAll() }
            return
        }
        _ = setsid()
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            for fd in Int32(0)...2 { _ = dup2(null, fd) }
        }
        let own = EventLoop()
        let jobs = LocalJobs(loop: own, grace: grace, signal: signal)
        for (group, (steps, wait)) in remaining {
            jobs.groups[group] = GroupTeardown(steps: steps, waitUntil: own.now + wait)
            jobs.advance(group)
        }
        withExtendedLifetime(jobs) { try? own.run() }
        _exit(0)
    }
}
