import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where the binaries under test are. The test command (see README) builds the static release agent
/// and points `QXUB_TEST_AGENT` at it; otherwise the products next to this test bundle are used.
enum BuiltProducts {
    static var directory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe =
            count > 0
            ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            : CommandLine.arguments[0]
        // …/debug/qxubPackageTests.xctest → …/debug
        var parts = exe.split(separator: "/", omittingEmptySubsequences: false)
        while let last = parts.last, !last.hasSuffix(".xctest") && parts.count > 1 { parts.removeLast() }
        parts.removeLast()
        return parts.joined(separator: "/")
    }

    static var agent: String {
        if let path = Environment.get("QXUB_TEST_AGENT"), !path.isEmpty { return path }
        return directory + "/qxub-agent"
    }

    static var qxub: String {
        if let path = Environment.get("QXUB_TEST_CLI"), !path.isEmpty { return path }
        return directory + "/qxub"
    }

    /// True in CI: a missing component is then a failure, never a skip.
    static var inCI: Bool { Environment.get("CI") == "true" }
}
