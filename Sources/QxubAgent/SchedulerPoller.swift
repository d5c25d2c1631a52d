import QxubScheduler
import QxubSystem

/// Asks the schedulers about jobs: one query (`qstat -xf A B …`, `squeue -j A,B,…`) for many jobs, at most
/// once per poll interval per scheduler, sooner when a job's end is being decided.
///
/// It learns once per agent whether a PBS server keeps job history (`job_history_enable`), from its first
/// answer, and asks the way that works from then on. It keeps each job's last answer for the follow loop.
final class SchedulerPoller {
    /// A job to ask about, and whether its end is being decided (asked about within a second, not the
    /// poll interval).
    struct Question {
        var kind: SchedulerKind
        var jobID: String
        var urgent: Bool
    }

    private let loop: EventLoop
    private let pollInterval: Double
    private let commands: CommandRunner
    private let log: AgentLog
    private var running: Set<SchedulerKind> = []
    private var lastQuery: [SchedulerKind: Double] = [:]
    /// Each job's last answer; absent when the last query that asked did not mention it.
    private(set) var answers: [String: SchedulerJobInfo] = [:]
    /// Whether each scheduler keeps finished jobs, learned from its first answer.
    private var historyEnabled: [SchedulerKind: Bool] = [:]
    /// Called with what each successful query asked, what it answered, and the jobs whose answer changed
    /// (before its completion).
    var onAnswers: ((_ asked: Set<String>, _ answers: [String: SchedulerJobInfo], _ changed: Set<String>) -> Void)?

    init(loop: EventLoop, pollInterval: Double, commands: CommandRunner, log: AgentLog) {
        self.loop = loop
        self.pollInterval = pollInterval
        self.commands = commands
        self.log = log
    }

    /// False once the scheduler said it keeps no job history: a job it forgot has ended.
    func keepsHistory(_ kind: SchedulerKind) -> Bool { historyEnabled[kind] != false }

    /// Queries each scheduler whose interval has passed, about all its questions at once.
    func askIfDue(_ questions: [Question]) {
        var idsByKind: [SchedulerKind: [String]] = [:]
        var urgent: Set<SchedulerKind> = []
        for question in questions where question.kind != .local {
            idsByKind[question.kind, default: []].append(question.jobID)
            if question.urgent { urgent.insert(question.kind) }
        }
        let now = loop.now
        for (kind, ids) in idsByKind where !running.contains(kind) {
            let interval = urgent.contains(kind) ? min(1, pollInterval) : pollInterval
            if let last = lastQuery[kind], now - last < interval { continue }
            query(kind: kind, jobIDs: ids.sorted()) { _ in }
        }
    }

    /// When ``askIfDue(_:)`` would next query for `questions` (nil: no query due; one under way answers first).
    func nextQueryTime(_ questions: [Question]) -> Double? {
        var next: Double?
        for question in questions where question.kind != .local && !running.contains(question.kind) {
            let interval = question.urgent ? min(1, pollInterval) : pollInterval
            let due = (lastQuery[question.kind] ?? loop.now) + interval
            next = min(next ?? due, due)
        }
        return next
    }

    /// The next ``askIfDue(_:)`` asks `kind` whatever its interval (a cancel was sent: learn its end soon).
    func askSoon(_ kind: SchedulerKind) {
        lastQuery[kind] = nil
    }

    /// One query for many jobs; keeps the answers and calls `completion` with them (nil when the query
    /// failed, empty for a backend without a status command).
    func query(
        kind: SchedulerKind,
        jobIDs: [String],
        completion: @escaping ([String: SchedulerJobInfo]?) -> Void
    ) {
        let backend = SchedulerBackend(kind: kind)
        let history = keepsHistory(kind)
        guard let command = backend.statusCommand(jobIDs, history: history) else { return completion([:]) }
        running.insert(kind)
        lastQuery[kind] = loop.now
        do {
            try commands.run(command, 60) { [weak self] run in
                guard let self else { return }
                self.running.remove(kind)
                if history && backend.saysHistoryDisabled(run) {
                    // Learned once per agent: ask again the way that works without history (live jobs only).
                    let again = backend.statusCommand(jobIDs, history: false) ?? []
                    self.log.write(
                        "the \(kind) server keeps no job history: asking with \(again.prefix(2).joined(separator: " "))"
                    )
                    self.historyEnabled[kind] = false
                    return self.query(kind: kind, jobIDs: jobIDs, completion: completion)
                }
                if self.historyEnabled[kind] == nil { self.historyEnabled[kind] = true }
                guard !backend.statusFailed(run) else {
                    self.log.write("scheduler query failed (\(run.exit)): \(run.stderrText)")
                    return completion(nil)
                }
                let answers = backend.parseStatus(run)
                // What the scheduler no longer mentions must not keep its last answer.
                var changed: Set<String> = []
                for id in jobIDs where self.answers[id] != answers[id] {
                    changed.insert(id)
                    self.answers[id] = answers[id]
                }
                self.onAnswers?(Set(jobIDs), answers, changed)
                completion(answers)
            }
        } catch {
            running.remove(kind)
            log.write("cannot run \(command.first ?? ""): \(error)")
            completion(nil)
        }
    }

    /// Asks the job's scheduler the second, per-job question (``SchedulerBackend/detailCommand(_:)``) and
    /// reads the answer as that scheduler's. False when its backend has no such question; `completion` gets
    /// an unknown phase when the answer says nothing of the job or the command cannot run.
    func detail(jobID: String, kind: SchedulerKind, completion: @escaping (SchedulerJobInfo) -> Void) -> Bool {
        let backend = SchedulerBackend(kind: kind)
        guard let command = backend.detailCommand(jobID) else { return false }
        do {
            try commands.run(command, 60) { run in
                completion(backend.parseDetail(run)[jobID] ?? SchedulerJobInfo(jobID: "", phase: .unknown))
            }
        } catch {
            // Without the detail the end is unknown, which is better than waiting for it forever.
            log.write("cannot run \(command.first ?? ""): \(error)")
            completion(SchedulerJobInfo(jobID: "", phase: .unknown))
        }
        return true
    }
}
