import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Platform definitions named by URL (`platforms.<name>.definition: https://...`): fetched at most once a
/// day into `~/.cache/qxub/platforms/`, and served from there when offline. A failed fetch is recorded beside
/// the cached copy (`….failed`, its time and reason): for ``retryAfter`` no command tries the URL again, so an
/// unreachable server costs one bounded wait (``downloadTimeout``), not one per command.
///
/// The fetch runs the system `curl` (argv, no shell), which honours the user's proxy settings and
/// certificates. Linking an HTTP stack into qxub instead (FoundationNetworking: libcurl and some 25
/// libraries) made every `qxub` command start slower for a download that happens once a day.
package enum DefinitionCache {
    package static let maximumAge: Double = 24 * 3600
    /// How long after a failed fetch the URL is left alone.
    package static let retryAfter: Double = 10 * 60

    package static var directory: String {
        let base =
            Environment.get("XDG_CACHE_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? (Environment.get("HOME") ?? "/tmp")
            + "/.cache"
        return base + "/qxub/platforms"
    }

    static func cachePath(for url: String, in directory: String = directory) -> String {
        directory + "/" + String(url.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }) + ".yaml"
    }

    /// Where the last failed fetch of `url` is recorded (its reason; the time is the file's).
    static func failurePath(for url: String, in directory: String = directory) -> String {
        cachePath(for: url, in: directory) + ".failed"
    }

    /// A local file holding the definition at `url`: the cached copy while fresh, else a new download;
    /// a stale copy when the download fails or failed less than ``retryAfter`` ago (`warn` says so); an error
    /// when there is none. `directory` is the cache's (tests give their own).
    package static func file(
        for url: String,
        directory: String = directory,
        now: Double = MonotonicClock.wallNow(),
        warn: (String) -> Void = { _ in }
    ) throws(ClientError) -> String {
        let path = cachePath(for: url, in: directory)
        let cachedAge = age(path, now: now)
        if let cachedAge, cachedAge < maximumAge { return path }
        let failure = failurePath(for: url, in: directory)
        let reason: String
        if let failedAge = age(failure, now: now), failedAge < retryAfter {
            let last = FileSystem.readText(failure)?.trimmingWhitespace() ?? ""
            reason =
                "the fetch failed \(Int(failedAge / 60)) min ago"
                + (last.isEmpty ? "" : " (\(last))") + "; not retried for \(Int(retryAfter / 60)) min"
        } else {
            do {
                let bytes = try download(url)
                try FileSystem.createDirectories(directory)
                try FileSystem.writeAtomically(path, bytes, mode: 0o644)
                unlink(failure)
                return path
            } catch {
                try? FileSystem.createDirectories(directory)
                try? FileSystem.writeAtomically(failure, "\(error)\n", mode: 0o644)
                reason = "\(error)" + "; not retried for \(Int(retryAfter / 60)) min"
            }
        }
        if let cachedAge {
            warn("cannot fetch \(url) (\(reason)); using the copy cached \(Int(cachedAge / 3600)) h ago")
            return path
        }
        throw ClientError(
            "cannot fetch the platform definition \(url): \(reason)",
            hint: "check the URL and your network, or point definition: at a file (delete \(failure) to retry now)",
            exitCode: ExitCodes.unavailable
        )
    }

    /// Seconds since `path` was written, nil when it does not exist.
    private static func age(_ path: String, now: Double) -> Double? {
        var info = stat()
        return stat(path, &info) == 0 ? now - Double(info.st_mtim.tv_sec) : nil
    }

    /// Seconds a download may take; a definition is a few kilobytes.
    package static let downloadTimeout: Double = 3
    /// Bytes a definition may have; more is not a definition.
    package static let downloadLimit = 4 << 20

    static func download(_ url: String) throws(ClientError) -> [UInt8] {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") || url.hasPrefix("file://") else {
            throw ClientError(
                "'\(url)' is not an http(s) or file URL",
                hint: "write definition: https://… or a path to a file",
                exitCode: ExitCodes.usage
            )
        }
        let run: CollectedRun
        do {
            run = try runCollectingOutput(
                [
                    "curl", "--fail", "--silent", "--show-error", "--location", "--max-time",
                    String(Int(downloadTimeout)), "--", url,
                ],
                timeout: downloadTimeout + 2,
                outputLimit: downloadLimit + 1
            )
        } catch {
            throw ClientError(
                "cannot run curl to fetch \(url): \(error)",
                hint: "install curl, or download the definition and point definition: at the file",
                exitCode: ExitCodes.unavailable
            )
        }
        guard run.exit == .exited(0) else {
            let message = run.stderrText.trimmingWhitespace()
            let reason = message.hasPrefix("curl: ") ? String(message.dropFirst(6)) : message
            throw ClientError(reason.isEmpty ? "curl \(run.exit)" : reason, exitCode: ExitCodes.unavailable)
        }
        guard run.stdout.count <= downloadLimit else {
            throw ClientError(
                "\(url) sent more than \(downloadLimit >> 20) MiB: not a platform definition",
                exitCode: ExitCodes.unavailable
            )
        }
        guard !run.stdout.isEmpty else {
            throw ClientError("\(url) sent an empty definition", exitCode: ExitCodes.unavailable)
        }
        return run.stdout
    }
}
