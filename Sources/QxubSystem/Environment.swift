#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process environment, without Foundation.
package enum Environment {
    package static func get(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// Every `NAME=value` entry.
    package static func all() -> [String] {
        var entries: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            entries.append(String(cString: entry))
            pointer += 1
        }
        return entries
    }

    /// This machine's host name.
    package static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }

    /// "linux-x86_64", "linux-aarch64", "darwin-arm64": used to refuse an agent of the wrong architecture.
    package static func platform() -> String {
        var info = utsname()
        uname(&info)
        let system = withUnsafeBytes(of: &info.sysname) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return system.lowercased() + "-" + machine
    }

    /// Looks `program` up on `PATH`; the full path of the first executable found.
    package static func which(_ program: String, path: String? = get("PATH")) -> String? {
        if program.contains("/" as Character) { return access(program, X_OK) == 0 ? program : nil }
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = directory + "/" + program
            if access(candidate, X_OK) == 0 { return String(candidate) }
        }
        return nil
    }
}
