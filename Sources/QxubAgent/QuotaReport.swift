import QxubProtocol
import QxubSystem

/// A disk quota read from the cluster's quota command (`lquota` on Gadi, `quota` elsewhere), for the
/// filesystem that holds the state root: a full or expired quota refuses a submission as a full disk does.
///
/// Formats (samples and their sources in Tests/Fixtures/quota/README.md):
/// - `lquota` (NCI Gadi): one line per filesystem, `OWNER FS  Usage Quota Limit  iUsage iQuota iLimit`, with
///   sizes such as `9.12GiB`; FS `home` is the user's `/home/...`, `scratch` and `gdata` are the project's
///   `/scratch/OWNER` and `/g/data/OWNER`.
/// - `quota -w -p` (Linux quota-tools): `DEVICE blocks[*] quota limit grace files quota limit grace`, blocks in
///   KiB, grace as the epoch second the soft limit's grace ends (0: none). The device is matched to the
///   state root through the mount that holds it (``mountSource(of:mountinfo:)``).
package struct QuotaReport: Hashable, Sendable {
    /// The filesystem as people know it: "/home", "/scratch/a00", or the device `quota` names.
    package var filesystem: String
    package var usedBytes: UInt64
    /// The soft limit (0: none), which may be exceeded until its grace period ends.
    package var softBytes: UInt64
    /// The hard limit (0: none).
    package var hardBytes: UInt64
    /// Over the soft limit and past its grace period: the soft limit is then as hard as the hard one.
    package var graceExpired: Bool
    /// The command that said so: "lquota" or "quota".
    package var source: String

    package init(
        filesystem: String,
        usedBytes: UInt64,
        softBytes: UInt64,
        hardBytes: UInt64,
        graceExpired: Bool = false,
        source: String
    ) {
        self.filesystem = filesystem
        self.usedBytes = usedBytes
        self.softBytes = softBytes
        self.hardBytes = hardBytes
        self.graceExpired = graceExpired
        self.source = source
    }

    /// The quota of the filesystem holding `root` in `lquota`'s output; nil when no line names it.
    package static func parseLquota(_ text: String, root: String) -> QuotaReport? {
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 5 else { continue }
            // NCI documents `OWNER FS`; either order is read, as the owner is never a filesystem name.
            for (owner, fs) in [(words[0], words[1]), (words[1], words[0])] {
                guard let mount = lquotaMount(fs: fs, owner: owner), isUnder(root, mount),
                    let used = bytes(words[2]), let soft = bytes(words[3]), let hard = bytes(words[4])
                else { continue }
                return QuotaReport(
                    filesystem: mount,
                    usedBytes: used,
                    softBytes: soft,
                    hardBytes: hard,
                    source: "lquota"
                )
            }
        }
        return nil
    }

    /// Where `lquota`'s filesystem `fs` of `owner` is mounted; nil for a name qxub does not know.
    static func lquotaMount(fs: Substring, owner: Substring) -> String? {
        if fs == "home" { return "/home" }
        if fs == "scratch" { return "/scratch/" + owner }
        if fs.hasPrefix("gdata") { return "/g/data/" + owner }
        return nil
    }

    /// The quota on `device` in the output of `quota -w -p`, at epoch second `now` (for the grace period).
    package static func parseQuota(_ text: String, device: String, now: Int) -> QuotaReport? {
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 5, words[0] == device else { continue }
            let over = words[1].hasSuffix("*")
            guard let used = bytes(words[1].filter { $0 != "*" }, unit: 1024), let soft = bytes(words[2], unit: 1024),
                let hard = bytes(words[3], unit: 1024)
            else { continue }
            let graceEnd = Int(words[4]) ?? 0
            return QuotaReport(
                filesystem: device,
                usedBytes: used,
                softBytes: soft,
                hardBytes: hard,
                graceExpired: (over || (soft > 0 && used > soft)) && graceEnd > 0 && graceEnd <= now,
                source: "quota"
            )
        }
        return nil
    }

    /// The mount point and source (device) of the mount holding `path`, from `/proc/self/mountinfo` text: the
    /// longest mount point that `path` is under. Paths are taken as written (no symlinks resolved).
    package static func mountSource(of path: String, mountinfo: String) -> (mountPoint: String, source: String)? {
        var best: (mountPoint: String, source: String)?
        for line in mountinfo.split(separator: "\n") {
            let words = line.split(separator: " ")
            // id parent major:minor root MOUNTPOINT options [optional...] - fstype SOURCE superoptions
            guard words.count > 6, let dash = words.firstIndex(of: "-"), dash + 2 < words.count else { continue }
            let mountPoint = String(words[4])
            guard isUnder(path, mountPoint), mountPoint.utf8.count >= (best?.mountPoint.utf8.count ?? 0) else {
                continue
            }
            best = (mountPoint, String(words[dash + 2]))
        }
        return best
    }

    /// `path` is `directory` or inside it (whole path components).
    static func isUnder(_ path: String, _ directory: String) -> Bool {
        if directory == "/" || path == directory { return path.hasPrefix("/") }
        return path.hasPrefix(directory + "/")
    }

    /// A size such as `9.12GiB`, `10G`, `512` (`unit` bytes each when it has no unit); nil when it is not one.
    static func bytes(_ word: some StringProtocol, unit: UInt64 = 1) -> UInt64? {
        let number = word.prefix { ($0 >= "0" && $0 <= "9") || $0 == "." }
        guard !number.isEmpty, let value = Double(String(number)) else { return nil }
        let multipliers: [(String, UInt64)] = [
            ("", unit), ("B", 1), ("K", 1 << 10), ("KB", 1 << 10), ("KIB", 1 << 10), ("M", 1 << 20),
            ("MB", 1 << 20), ("MIB", 1 << 20), ("G", 1 << 30), ("GB", 1 << 30), ("GIB", 1 << 30),
            ("T", 1 << 40), ("TB", 1 << 40), ("TIB", 1 << 40), ("P", 1 << 50), ("PB", 1 << 50), ("PIB", 1 << 50),
        ]
        let suffix = String(word.dropFirst(number.count)).uppercased()
        guard let multiplier = multipliers.first(where: { $0.0 == suffix })?.1 else { return nil }
        return UInt64(value * Double(multiplier))
    }

    /// The limit that stops writes now: the hard one, or the soft one once its grace is over (0: none).
    var effectiveLimit: UInt64 {
        if graceExpired, softBytes > 0 { return hardBytes > 0 ? min(softBytes, hardBytes) : softBytes }
        return hardBytes
    }

    /// The refusal of a submission into `root` on this quota (nil: room left under it).
    package func refusal(root: String) -> AgentError? {
        let limit = effectiveLimit
        guard limit > 0, usedBytes >= limit || graceExpired else { return nil }
        let state =
            graceExpired && usedBytes < hardBytes
            ? "over its \(FreeSpace.describe(softBytes)) quota past the grace period (\(FreeSpace.describe(usedBytes)) used"
            : "at its quota (\(FreeSpace.describe(usedBytes)) used of \(FreeSpace.describe(limit))"
        return AgentError(
            .submitFailed,
            "the job's output directory \(root) is on \(filesystem), \(state), says \(source)): "
                + "the job was not submitted",
            hint: "clean up there, or set the platform's state_root (platforms.NAME.state_root in qxub's config) "
                + "to a filesystem with room, such as /scratch/{project}/{user}/.qxub"
        )
    }

    /// `qxub doctor`'s line: "9.1 GiB of 10 GiB used on /home (lquota)".
    package var summary: String {
        let limit = hardBytes > 0 ? hardBytes : softBytes
        return "\(FreeSpace.describe(usedBytes)) of \(FreeSpace.describe(limit)) used on \(filesystem) (\(source))"
    }
}
