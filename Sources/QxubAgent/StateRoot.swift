import QxubProtocol
import QxubSystem

/// Where the agent keeps job state and output (``JobStore/root``), and whether there is room there.
///
/// A platform's `state_root` (say `/scratch/{project}/{user}/.qxub`) comes in the client's hello; the agent
/// expands it, because the login user and `$PROJECT` are the cluster's, not the client's.
package enum StateRoot {
    /// The least free space a submission needs: the job's script and records, and room for its output to
    /// start. Below it, a job would be submitted and then lost (output and exit record unwritable).
    package static let minimumFreeBytes: UInt64 = 64 << 20

    /// `template` with `{user}`, `{project}` and a leading `~/` (or `~`) expanded.
    /// - Throws: an ``AgentError`` naming the placeholder that has no value (an unknown one, or `{project}`
    ///   where neither the client nor `$PROJECT` gives a project), so no literal `{project}` directory appears.
    package static func expand(
        _ template: String,
        user: String,
        project: String,
        home: String?
    ) throws(AgentError) -> String {
        var path = template
        if path == "~" || path.hasPrefix("~/"), let home, !home.isEmpty { path = home + path.dropFirst() }
        for (name, value) in [("user", user), ("project", project)] where path.containsText("{\(name)}") {
            guard !value.isEmpty else {
                throw AgentError(
                    .submitFailed,
                    "the state root \(template) uses {\(name)}, which has no value on \(Environment.hostname())",
                    hint: name == "project"
                        ? "set defaults.project in qxub's config, or PROJECT in your login environment on the cluster"
                        : "USER is not set in the login environment on the cluster"
                )
            }
            path = path.replacingAll("{\(name)}", with: value)
        }
        if let open = path.firstIndex(of: "{"), let close = path[open...].firstIndex(of: "}") {
            throw AgentError(
                .submitFailed,
                "the state root \(template) uses \(path[open...close]), which qxub does not know",
                hint: "a state root may use {user} and {project}"
            )
        }
        guard path.hasPrefix("/") else {
            throw AgentError(
                .submitFailed,
                "the state root \(template) is not an absolute path",
                hint: "write it as /scratch/{project}/{user}/.qxub, or start it with ~/"
            )
        }
        return path
    }

    /// The name of user `uid` in `/etc/passwd` text, for `{user}` where neither `USER` nor `LOGNAME` is set (a
    /// local agent started without a login); the static agent cannot ask NSS.
    package static func userName(uid: UInt32, passwd: String) -> String? {
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 2, UInt32(fields[2]) == uid, !fields[0].isEmpty { return String(fields[0]) }
        }
        return nil
    }

    /// The refusal for a submission into `root` with `free` bytes left there (nil: room enough, or unknown).
    package static func refusal(root: String, free: UInt64?) -> AgentError? {
        guard let free, free < minimumFreeBytes else { return nil }
        return AgentError(
            .submitFailed,
            "the job's output directory \(root) has \(FreeSpace.describe(free)) free (under the "
                + "\(FreeSpace.describe(minimumFreeBytes)) qxub needs): the job was not submitted",
            hint: "free space there, or set the platform's state_root (platforms.NAME.state_root in qxub's config) "
                + "to a filesystem with room, such as /scratch/{project}/{user}/.qxub"
        )
    }

    /// A dry run's line on the room at `root` (for `qxub doctor`).
    package static func room(root: String, free: UInt64?) -> String {
        guard let free else { return "free space unknown at \(root)" }
        return "\(FreeSpace.describe(free)) free at \(root)"
    }
}
