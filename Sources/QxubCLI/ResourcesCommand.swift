import ArgumentParser
import QxubClient
import QxubProtocol
import QxubScheduler
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub resources JOB...`
    package struct Resources: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "resources",
            abstract: "What finished jobs used: walltime, cpu time, memory high-water, cpu efficiency.",
            discussion: """
                From the scheduler's records where it still has them (`qstat -xf` resources_used.* on PBS Pro, \
                which with job history off keeps nothing of a finished job; `sacct` on Slurm, which needs its \
                accounting storage) and the job's own record, which fills what the scheduler does not say: the \
                scheduler's walltime, cpu time, memory and cpus win where it has them (but a zero, a sample \
                taken too soon, over a value of the job's own). A line on stderr per job \
                says where its values came from, or why the scheduler had none. The job's own record: the job \
                script writes, before its exit record, the cpus the \
                scheduler gave (NCPUS, SLURM_CPUS_ON_NODE), the memory high-water of the job's cgroup \
                (memory.peak, or memory.max_usage_in_bytes) and bash's `times` for the command; the walltime \
                is from its started and exit records. cpu efficiency = cpu time / (walltime × cpus). A value \
                the job could not record is shown as "-" (the local backend has no cpus and no cgroup of its \
                own; a job killed from outside records nothing). Ids as for `qxub status`: the history gives \
                each id's platform. Exit status 1 when a job is unknown, 69 when an agent cannot be reached.
                """
        )
        @Argument(help: "Job ids (read from stdin when none are given).") var jobIDs: [String] = []
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        package func run() throws {
            if let message = PythonSpellings.message(command: "resources", arguments: jobIDs) {
                try? FileDescriptor.writeAll(2, message)
                throw ExitCode(ExitCodes.usage)
            }
            let ids = jobIDs.isEmpty ? readIDsFromStdin() : jobIDs
            guard !ids.isEmpty else { throw ValidationError("no job ids: give them as arguments or on stdin") }
            var rows = [Self.header]
            var notes = ""
            var anyUnknown = false
            try CLIFailure.catching { () throws(ClientError) in
                let routed = try place.route(ids)
                for (platform, group) in routed.groups {
                    let endpoint = AgentEndpoint(platform: platform, settings: place.settings())
                    let requests = try AgentRequests(endpoint: endpoint)
                    let asksScheduler = try requests.agentReportsUsage()
                    let statuses = try requests.status(group, usage: asksScheduler)
                    requests.close()
                    if !asksScheduler {
                        notes +=
                            "qxub: \(platform.name): this agent does not report the scheduler's records: "
                            + "qxub agent install --platform \(platform.name)\n"
                    }
                    recordEnds(statuses, platform: platform.name)
                    for status in statuses {
                        if status.isUnknownJob {
                            anyUnknown = true
                            notes += routed.unknownLine(status.jobID, platform: platform.name)
                            continue
                        }
                        guard status.state.phase == .finished else {
                            notes +=
                                "qxub: \(status.jobID): \(status.state.phase); what it used is known once it ends\n"
                            continue
                        }
                        // A job log that cannot be read leaves the job's own values unknown; the other jobs'
                        // rows are still printed.
                        var own = JobUsage()
                        do throws(ClientError) {
                            own = JobUsage.fromJobLog(try Self.jobLog(status.jobID, endpoint: endpoint))
                        } catch {
                            notes += "qxub: \(status.jobID): cannot read its job log: \(error.message)\n"
                        }
                        if status.startedAt > 0, status.endedAt >= status.startedAt {
                            own.walltimeSeconds = Double(status.endedAt - status.startedAt)
                        }
                        let merged = UsageSources(own: own, scheduler: status.schedulerUsage)
                        rows.append(Self.row(status.jobID, merged.usage))
                        if asksScheduler { notes += "qxub: \(status.jobID): \(merged.origin)\n" }
                    }
                }
            }
            if rows.count > 1 { for row in rows { print(row) } }
            if !notes.isEmpty {
                fflush(nil)
                try? FileDescriptor.writeAll(2, notes)
            }
            if anyUnknown { throw ExitCode(1) }
        }

        static let header =
            "JOB".padding(to: 22) + "WALLTIME".padding(to: 11) + "CPU TIME".padding(to: 11) + "MEM PEAK".padding(to: 10)
            + "CPUS".padding(to: 6) + "CPU EFFICIENCY"

        /// One job's line; "-" for what is not known.
        static func row(_ jobID: String, _ usage: JobUsage) -> String {
            var line = jobID.padding(to: 22)
            line += (usage.walltimeSeconds.map(duration) ?? "-").padding(to: 11)
            line += (usage.cpuSeconds.map(duration) ?? "-").padding(to: 11)
            line += (usage.memoryPeakBytes.map(size) ?? "-").padding(to: 10)
            line += (usage.cpus.map(String.init) ?? "-").padding(to: 6)
            line += usage.cpuEfficiency.map { "\(Int(($0 * 100).rounded()))%" } ?? "-"
            return line
        }

        /// H:MM:SS (whole seconds, rounded).
        static func duration(_ seconds: Double) -> String {
            let total = Int(seconds.rounded())
            let minutes = total / 60 % 60
            let secs = total % 60
            return "\(total / 3600):\(minutes < 10 ? "0" : "")\(minutes):\(secs < 10 ? "0" : "")\(secs)"
        }

        /// Bytes in the largest unit that keeps a number of at least 1 (one decimal): 1.5GB, 300MB.
        static func size(_ bytes: UInt64) -> String {
            let units = ["B", "KB", "MB", "GB", "TB"]
            var value = Double(bytes)
            var unit = 0
            while value >= 1024, unit < units.count - 1 {
                value /= 1024
                unit += 1
            }
            let tenths = Int((value * 10).rounded())
            return (tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)") + units[unit]
        }

        /// The job's log, fetched as `qxub history log` does (through the agent, so remote jobs work too),
        /// into an unlinked temporary file that stands in for stdout meanwhile.
        static func jobLog(_ jobID: String, endpoint: AgentEndpoint) throws(ClientError) -> String {
            var template = Array("/tmp/qxub-joblog-XXXXXX".utf8CString)
            let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard file >= 0 else { throw ClientError("cannot create a temporary file in /tmp", exitCode: 73) }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            defer { close(file) }
            fflush(nil)
            let saved = dup(1)
            dup2(file, 1)
            let code: Int32
            do {
                code = try Exec.runSession(
                    endpoint: endpoint,
                    start: .attach(jobID: jobID),
                    mode: .follow,
                    onlyStream: .stdout,
                    joblog: true
                )
            } catch {
                fflush(nil)
                dup2(saved, 1)
                close(saved)
                throw error
            }
            fflush(nil)
            dup2(saved, 1)
            close(saved)
            if code == ExitCodes.unavailable || code == ExitCodes.connectionLost {
                throw ClientError("cannot read the job log of \(jobID)", exitCode: code)
            }
            lseek(file, 0, SEEK_SET)
            let bytes = (try? FileDescriptor.readAll(file, limit: 64 << 20)) ?? []
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
