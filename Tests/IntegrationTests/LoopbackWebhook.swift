import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// A webhook on 127.0.0.1 (a port the kernel chooses) that the test serves on its own thread, request by
/// request, with a bound: no second thread, no fixed sleep.
final class LoopbackWebhook {
    /// One request as it arrived.
    struct Request {
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
    }

    let socket: Int32
    let port: UInt16

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw SystemError("socket", "", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(socket, 16) == 0 else {
            FileDescriptor.close(socket)
            throw SystemError("bind", "127.0.0.1", errno: errno)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        self.socket = socket
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { FileDescriptor.close(socket) }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Accepts and reads `count` requests within `timeout` seconds, answering each with `status` (nil: keeps
    /// the connection open and answers nothing, as a hung server). Returns the requests that arrived.
    func serve(count: Int, status: Int?, timeout: Double) -> [Request] {
        var requests: [Request] = []
        let deadline = MonotonicClock.now() + timeout
        while requests.count < count && MonotonicClock.now() < deadline {
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let connection = accept(socket, nil, nil)
            guard connection >= 0 else { continue }
            guard let request = Self.read(connection, deadline: deadline) else {
                FileDescriptor.close(connection)
                continue
            }
            requests.append(request)
            if let status {
                try? FileDescriptor.writeAll(
                    connection,
                    "HTTP/1.1 \(status) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                FileDescriptor.close(connection)
            } else {
                held.append(connection)
            }
        }
        return requests
    }

    /// Connections of a hung server, closed with it.
    private var held: [Int32] = []

    func close() {
        for connection in held { FileDescriptor.close(connection) }
        held = []
    }

    /// One HTTP/1.1 request with a Content-Length body.
    private static func read(_ connection: Int32, deadline: Double) -> Request? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while MonotonicClock.now() < deadline {
            let separator: [UInt8] = [13, 10, 13, 10]
            if let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) {
                let head = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n").map(String.init)
                let requestLine = head.first?.split(separator: " ").map(String.init) ?? []
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...])
                        .trimmingWhitespaceForTests()
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                let body = bytes[(end + 4)...]
                if body.count >= length, requestLine.count >= 2 {
                    return Request(
                        method: requestLine[0],
                        path: requestLine[1],
                        headers: headers,
                        body: String(decoding: body.prefix(length), as: UTF8.self)
                    )
                }
            }
            var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(connection, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            bytes += buffer[0..<count]
        }
        return nil
    }
}
