import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import QxubSystem

/// Platform definitions named by URL (`platforms.<name>.definition: https://...`): fetched at most once a
/// day into `~/.cache/qxub/platforms/`, and served from there when offline.
public enum DefinitionCache {
    public static let maximumAge: Double = 24 * 3600

    public static var directory: String {
        let base = Environment.get("XDG_CACHE_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? (Environment.get("HOME") ?? "/tmp") + "/.cache"
        return base + "/qxub/platforms"
    }

    static func cachePath(for url: String) -> String {
        directory + "/" + String(url.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }) + ".yaml"
    }

    /// A local file holding the definition at `url`: the cached copy while fresh, else a new download;
    /// a stale copy when the download fails (`warn` says so); an error when there is neither.
    public static func file(for url: String, warn: (String) -> Void = { _ in }) throws(ClientError) -> String {
        let path = cachePath(for: url)
        var info = stat()
        let cachedAge: Double? = stat(path, &info) == 0 ? MonotonicClock.wallNow() - Double(info.st_mtim.tv_sec) : nil
        if let cachedAge, cachedAge < maximumAge { return path }
        do {
            guard let address = URL(string: url) else { throw ClientError("'\(url)' is not a URL", exitCode: ExitCodes.usage) }
            let data = try Data(contentsOf: address)
            guard !data.isEmpty else { throw ClientError("\(url) sent an empty definition", exitCode: ExitCodes.unavailable) }
            try FileSystem.createDirectories(directory)
            try FileSystem.writeAtomically(path, Array(data), mode: 0o644)
            return path
        } catch {
            if cachedAge != nil {
                warn("cannot fetch \(url) (\(error)); using the copy cached \(Int(cachedAge! / 3600)) h ago")
                return path
            }
            throw ClientError("cannot fetch the platform definition \(url): \(error)", hint: "check the URL and your network, or point definition: at a file", exitCode: ExitCodes.unavailable)
        }
    }
}
