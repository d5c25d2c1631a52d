/// Where one job's files live. The state directory sits under the user's home (a shared filesystem on
/// clusters), so any login node can follow the job: `~/.qxub/jobs/<stamp>-<random>/`.
package struct JobPaths: Hashable, Sendable {
    package var stateDirectory: String
    package var stdout: String
    package var stderr: String
    package var joblog: String
    /// What the records of this job end with: "" for a job, `.3` for subjob 3 of an array (the job script
    /// appends its index to each record and output file, see ``subjob(_:ownJobLog:)``).
    package var recordSuffix = ""

    package init(stateDirectory: String, stdout: String? = nil, stderr: String? = nil, joblog: String? = nil) {
        self.stateDirectory = stateDirectory
        self.stdout = stdout ?? stateDirectory + "/out"
        self.stderr = stderr ?? stateDirectory + "/err"
        self.joblog = joblog ?? stateDirectory + "/joblog"
    }

    /// The paths of subjob `index` of the array job whose paths these are: its output files and records are
    /// the array's with `.<index>` appended; `ownJobLog`: its job log too (the local backend's).
    package func subjob(_ index: Int, ownJobLog: Bool) -> JobPaths {
        var paths = self
        paths.recordSuffix = ".\(index)"
        paths.stdout += paths.recordSuffix
        paths.stderr += paths.recordSuffix
        if ownJobLog { paths.joblog += paths.recordSuffix }
        return paths
    }

    package var script: String { stateDirectory + "/job.sh" }
    /// "<epoch> <host>", written when the job starts.
    package var startedRecord: String { stateDirectory + "/started" + recordSuffix }
    /// "<status> <epoch>", written when the command (and --post) ended.
    package var exitRecord: String { stateDirectory + "/exit" + recordSuffix }
    /// "<qxub's exit status> <epoch> <word>", written by the agent when it has decided how the job ended
    /// (the job's own record, the scheduler's verdict, or a cancel): what `history --remote` shows.
    package var endRecord: String { stateDirectory + "/end" + recordSuffix }
    /// Written by the agent when someone asked qxub to cancel the job.
    package var cancelRecord: String { stateDirectory + "/cancelled" + recordSuffix }
    /// `key=value` lines describing the submission (for attach and history).
    package var metaRecord: String { stateDirectory + "/meta" }
    /// The process group of a local-backend job.
    package var pidRecord: String { stateDirectory + "/pid" + recordSuffix }
    /// An interactive job's terminal keeper: the unix socket agents reach it through, its log, and why it
    /// ended the session when it did so itself (no qxub attached within the grace time).
    package var keeperSocket: String { stateDirectory + "/keeper.sock" }
    package var keeperLog: String { stateDirectory + "/keeper.log" }
    package var keeperEndedRecord: String { stateDirectory + "/keeper-ended" }
}
