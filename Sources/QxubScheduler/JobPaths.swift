/// Where one job's files live. The state directory sits under the user's home (a shared filesystem on
/// clusters), so any login node can follow the job: `~/.qxub/jobs/<stamp>-<random>/`.
package struct JobPaths: Hashable, Sendable {
    package var stateDirectory: String
    package var stdout: String
    package var stderr: String
    package var joblog: String

    package init(stateDirectory: String, stdout: String? = nil, stderr: String? = nil, joblog: String? = nil) {
        self.stateDirectory = stateDirectory
        self.stdout = stdout ?? stateDirectory + "/out"
        self.stderr = stderr ?? stateDirectory + "/err"
        self.joblog = joblog ?? stateDirectory + "/joblog"
    }

    package var script: String { stateDirectory + "/job.sh" }
    /// "<epoch> <host>", written when the job starts.
    package var startedRecord: String { stateDirectory + "/started" }
    /// "<status> <epoch>", written when the command (and --post) ended.
    package var exitRecord: String { stateDirectory + "/exit" }
    /// "<qxub's exit status> <epoch> <word>", written by the agent when it has decided how the job ended
    /// (the job's own record, the scheduler's verdict, or a cancel): what `history --remote` shows.
    package var endRecord: String { stateDirectory + "/end" }
    /// Written by the agent when someone asked qxub to cancel the job.
    package var cancelRecord: String { stateDirectory + "/cancelled" }
    /// `key=value` lines describing the submission (for attach and history).
    package var metaRecord: String { stateDirectory + "/meta" }
    /// The process group of a local-backend job.
    package var pidRecord: String { stateDirectory + "/pid" }
    /// An interactive job's terminal keeper: the unix socket agents reach it through, its log, and why it
    /// ended the session when it did so itself (no qxub attached within the grace time).
    package var keeperSocket: String { stateDirectory + "/keeper.sock" }
    package var keeperLog: String { stateDirectory + "/keeper.log" }
    package var keeperEndedRecord: String { stateDirectory + "/keeper-ended" }
}
