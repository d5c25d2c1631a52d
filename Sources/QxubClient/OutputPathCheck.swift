import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Whether the job can write its output files here, checked before submission on this machine: the job
/// script would otherwise end with 78 and its reason would go to the very file it could not write.
package enum OutputPathCheck {
    /// Why `path` cannot be written (nil when it can, as far as this machine can tell).
    package static func problem(_ path: String) -> String? {
        if FileSystem.isDirectory(path) { return "it is a directory" }
        if FileSystem.exists(path) {
            return access(path, W_OK) == 0 ? nil : "it is not writable (\(String(cString: strerror(errno))))"
        }
        // The job creates the missing directories: the nearest one that exists must let it.
        var ancestor = FileSystem.directoryName(path)
        while !FileSystem.exists(ancestor) && ancestor != "/" && !ancestor.isEmpty {
            ancestor = FileSystem.directoryName(ancestor)
        }
        if !FileSystem.isDirectory(ancestor) { return "\(ancestor) is not a directory" }
        if access(ancestor, W_OK | X_OK) != 0 {
            return "the directory \(ancestor) is not writable (\(String(cString: strerror(errno))))"
        }
        return nil
    }

    /// The first of the paths that cannot be written, as an error that says which and why (exit 78).
    package static func check(_ paths: [(option: String, path: String?)]) throws(ClientError) {
        for (option, path) in paths {
            guard let path, let problem = problem(path) else { continue }
            throw ClientError(
                "cannot write \(option) \(path): \(problem)",
                hint: "choose a path you can write, or create its directory first",
                exitCode: ExitCodes.setupFailed
            )
        }
    }
}
