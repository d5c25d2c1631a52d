import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A qxub command run by a fork of a warm session holder instead of a new process that starts cold.
///
/// A new qxub spends most of its own time before it does anything: the loader, and swift-argument-parser
/// building its definitions by reflection. A holder has done all of that once. So a qxub that finds a
/// holder's warm socket (`warm-p1-1-NAME` in the private control directory) sends it its arguments, working
/// directory, environment, umask and ignored signals, with its standard input, output and error as
/// descriptors (`SCM_RIGHTS`), before it parses anything; the holder forks, and the fork runs the command as
/// that qxub would have, on those descriptors. The qxub that asked forwards its signals (Ctrl-C) to the fork
/// and exits with the fork's status. Whenever anything does not fit (another build of qxub, a command that
/// would have to ask for a password, no holder), the qxub runs the command itself, as before.
///
/// Nothing runs twice: the fork says ``Reply/started(_:)`` and waits for the asking qxub's ``goAhead``
/// before it does anything. A qxub that waited too long for that (a stopped holder) closes the connection
/// instead and runs the command itself; the fork then reads the end of the stream and exits.
package enum WarmStart {
    /// The warm socket of a platform's holder. Like the holder's own socket, its name carries the protocol
    /// versions; the request carries the executable's identity, and a holder of another build declines.
    package static func socketName(platform: String) -> String {
        socketPrefix + ControlDirectory.socketName(platform: platform)
    }

    package static var socketPrefix: String {
        "warm-p\(ProtocolConstants.versions.lowerBound)-\(ProtocolConstants.versions.upperBound)-"
    }

    /// The commands a warm fork runs: those that reach a platform and are run often (a workflow's status
    /// polls, repeated submissions), and never prompt once a master is up.
    package static func isWarmCommand(_ name: String) -> Bool {
        switch name {
        case "exec", "status", "cancel": true
        default: false
        }
    }

    /// The running executable, as device, inode, size and modification time: two processes with the same
    /// identity run the same code.
    package static func executableIdentity() -> String? {
        var info = stat()
        guard stat("/proc/self/exe", &info) == 0 else { return nil }
        return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// The byte a qxub sends its fork once it has committed to it.
    package static let goAhead = UInt8(ascii: "G")

    /// How long a qxub waits for its fork to say it started before it runs the command itself (seconds).
    package static let startDeadline = 0.5

    /// What a qxub asks a holder to run.
    package struct Request: Equatable, Sendable {
        package var identity: String
        package var arguments: [String]
        package var directory: String
        package var environment: [String]
        package var umask: UInt32
        /// Signals the asking qxub ignores (`nohup`, a shell's background job): the fork ignores them too.
        package var ignoredSignals: [Int32]

        package init(
            identity: String,
            arguments: [String],
            directory: String,
            environment: [String],
            umask: UInt32,
            ignoredSignals: [Int32]
        ) {
            self.identity = identity
            self.arguments = arguments
            self.directory = directory
            self.environment = environment
            self.umask = umask
            self.ignoredSignals = ignoredSignals
        }

        static let magic = Array("QXWS1".utf8)
        /// A request larger than this is refused (ARG_MAX on Linux is 2 MiB for arguments and environment).
        package static let maximumSize = 4 << 20
        static let headerSize = magic.count + 4

        /// The request as bytes: magic, a 4-byte big-endian length of the rest, then the fields in the
        /// protocol's tagged encoding (``WireWriter``). The environment and the directory go as raw bytes.
        ///
        /// Written here with concrete types only: the asking qxub encodes before anything else has run, and each
        /// generic type it instantiates costs a scan of the binary's conformance records (``WireWriter``'s
        /// generic methods are not specialised across modules); ``decode(_:)`` reads it with ``WireReader``.
        package func encoded() -> [UInt8] {
            var body: [UInt8] = []
            body.reserveCapacity(4096)
            func varint(_ value: UInt64) {
                var value = value
                while value >= 0x80 {
                    body.append(UInt8(truncatingIfNeeded: value) | 0x80)
                    value >>= 7
                }
                body.append(UInt8(value))
            }
            func string(_ field: UInt64, _ text: String) {
                varint(field << 3 | 2)
                var text = text
                text.withUTF8 { utf8 in
                    varint(UInt64(utf8.count))
                    body.append(contentsOf: utf8)
                }
            }
            string(1, identity)
            string(2, directory)
            varint(3 << 3)
            varint(UInt64(umask))
            for signal in ignoredSignals {
                varint(4 << 3)
                // Zigzag, as WireWriter.signed.
                varint(UInt64(bitPattern: (Int64(signal) << 1) ^ (Int64(signal) >> 63)))
            }
            for argument in arguments { string(5, argument) }
            for variable in environment { string(6, variable) }
            let count = UInt32(body.count)
            var bytes = Self.magic
            for shift in [24, 16, 8, 0] as [UInt32] { bytes.append(UInt8(truncatingIfNeeded: count >> shift)) }
            bytes.append(contentsOf: body)
            return bytes
        }

        /// How many bytes the whole request has, once its first ``headerSize`` are known (nil: not a request,
        /// or too large).
        package static func totalSize(prefix: ArraySlice<UInt8>) -> Int? {
            guard prefix.count >= headerSize, prefix.prefix(magic.count).elementsEqual(magic) else { return nil }
            let length = prefix.dropFirst(magic.count).prefix(4).reduce(0) { $0 << 8 | Int($1) }
            guard headerSize + length <= maximumSize else { return nil }
            return headerSize + length
        }

        /// Decodes a whole request (nil: malformed).
        package static func decode(_ bytes: ArraySlice<UInt8>) -> Request? {
            guard let total = totalSize(prefix: bytes), total == bytes.count else { return nil }
            var reader = WireReader(bytes.dropFirst(headerSize), type: .hello)
            var request = Request(
                identity: "",
                arguments: [],
                directory: "",
                environment: [],
                umask: 0o022,
                ignoredSignals: []
            )
            do {
                while let field = try reader.next() {
                    switch field.number {
                    case 1: request.identity = try field.string()
                    case 2: request.directory = try field.string()
                    case 3: request.umask = try field.uint32()
                    case 4: request.ignoredSignals.append(try field.int32())
                    case 5: request.arguments.append(try field.string())
                    case 6: request.environment.append(try field.string())
                    default: break
                    }
                }
            } catch {
                return nil
            }
            return request.identity.isEmpty || request.directory.isEmpty ? nil : request
        }
    }

    /// What the holder (and the fork) answer, 5 bytes each: a kind and a 32-bit value.
    package enum Reply: Equatable, Sendable {
        /// The fork runs, with this pid (signals go to it).
        case started(pid_t)
        /// The command ended with this exit status.
        case exited(Int32)
        /// The fork was killed by this signal.
        case signalled(Int32)
        /// Nothing was done: run the command yourself (another build, a prompt needed, a bad request).
        case runHere

        package static let size = 5

        package var encoded: [UInt8] {
            let (kind, value): (UInt8, Int32) =
                switch self {
                case .started(let pid): (UInt8(ascii: "S"), pid)
                case .exited(let code): (UInt8(ascii: "X"), code)
                case .signalled(let signal): (UInt8(ascii: "K"), signal)
                case .runHere: (UInt8(ascii: "H"), 0)
                }
            let raw = UInt32(bitPattern: value)
            return [kind] + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: raw >> $0) }
        }

        package init?(_ bytes: ArraySlice<UInt8>) {
            guard bytes.count == Self.size else { return nil }
            let value = Int32(bitPattern: bytes.dropFirst().reduce(0 as UInt32) { $0 << 8 | UInt32($1) })
            switch bytes.first {
            case UInt8(ascii: "S"): self = .started(value)
            case UInt8(ascii: "X"): self = .exited(value)
            case UInt8(ascii: "K"): self = .signalled(value)
            case UInt8(ascii: "H"): self = .runHere
            default: return nil
            }
        }
    }
}
