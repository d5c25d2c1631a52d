import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ends a discarded ssh master, which is not our child (`ssh -f` daemonised it): SIGTERM, and SIGKILL when it
/// is still there after a grace period (a stopped process never acts on SIGTERM). The steps are data, as
/// swift-subprocess's `TeardownStep`; time and the process checks are injected.
package struct MasterTeardown {
    package enum Step: Equatable {
        case signal(Int32, grace: Double)
    }

    package static let steps: [Step] = [.signal(SIGTERM, grace: 1), .signal(SIGKILL, grace: 2)]

    package let pid: pid_t

    package init(pid: pid_t) {
        self.pid = pid
    }

    /// Runs the steps until the process is gone; says what ended it ("ended by signal 15").
    package func run(
        clock: () -> Double = MonotonicClock.now,
        pause: () -> Void = { usleep(20_000) },
        signal: (pid_t, Int32) -> Void = { _ = kill($0, $1) },
        isGone: (pid_t) -> Bool = Self.isGone
    ) -> String {
        for case .signal(let number, let grace) in Self.steps {
            signal(pid, number)
            let deadline = clock() + grace
            while clock() < deadline {
                if isGone(pid) { return "pid \(pid) ended by signal \(number)" }
                pause()
            }
            if isGone(pid) { return "pid \(pid) ended by signal \(number)" }
        }
        return "pid \(pid) still there after signal \(SIGKILL)"
    }

    /// No such process, or only its zombie (it has done its cleanup; whoever adopted it reaps it).
    static func isGone(_ pid: pid_t) -> Bool {
        if kill(pid, 0) != 0 && currentErrno() == ESRCH { return true }
        guard let stat = FileSystem.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            return false
        }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state == "Z" || state == "X"
    }

    /// The master recorded for `controlPath` (``record(controlPath:pid:)``), if that process is still an ssh
    /// master of ours for that path: a pid reused by another process is never signalled.
    static func recordedMaster(controlPath: String) -> pid_t? {
        guard let text = FileSystem.readText(controlPath + ".pid"),
            let pid = pid_t(text.split(separator: "\n").first ?? ""), pid > 0,
            let run = try? runCollectingOutput(["ps", "-o", "uid=,command=", "-p", "\(pid)"], timeout: 5),
            run.exit == .exited(0)
        else { return nil }
        let fields = run.stdoutText.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard fields.count == 2, uid_t(fields[0]) == getuid(), fields[1].hasPrefix("ssh "),
            fields[1].containsText("ControlPath=" + controlPath + " ")
        else { return nil }
        return pid
    }

    /// Remembers the pid of the master just opened for `controlPath`, in the private control directory.
    static func record(controlPath: String, pid: pid_t) {
        try? FileSystem.writeAtomically(controlPath + ".pid", "\(pid)\n")
    }
}
