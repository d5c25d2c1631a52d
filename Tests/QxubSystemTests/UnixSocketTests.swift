import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Unix sockets at paths in the file system, deep ones included.
@Suite("UnixSocket: listen, connect, accept")
struct UnixSocketTests {
    static func directory(depth: Int) throws -> String {
        var template = Array("/tmp/qxub-socket-tests-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SystemError("mkdtemp", "/tmp")
        }
        let root = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let directory = root + String(repeating: "/" + String(repeating: "d", count: 30), count: depth)
        try FileSystem.createDirectories(directory)
        return directory
    }

    @Test(
        "a socket whose path is longer than sun_path (108 bytes) is bound, connected to and removed like a short one",
        arguments: [0, 4]
    )
    func pathLengths(_ depth: Int) throws {
        let path = try Self.directory(depth: depth) + "/keeper.sock"
        #expect((path.utf8.count > 108) == (depth > 0))
        let listener = try UnixSocket.BoundListener.bind(path)
        #expect(FileSystem.exists(path))
        let client = try UnixSocket.connect(path).get()
        defer { FileDescriptor.close(client) }
        var accepted: Int32?
        for _ in 0..<100 where accepted == nil {
            accepted = UnixSocket.accept(listener.fd)
            if accepted == nil { usleep(10_000) }
        }
        let server = try #require(accepted)
        defer { FileDescriptor.close(server) }
        try FileDescriptor.writeAll(client, "hi")
        var bytes = [UInt8](repeating: 0, count: 2)
        #expect(read(server, &bytes, 2) == 2 && bytes == Array("hi".utf8))
        #expect(PeerCredentials.of(server)?.userID == getuid())
        listener.close()
        #expect(!FileSystem.exists(path))
        #expect(UnixSocket.connect(path) == .failure(.absent))
    }
}
