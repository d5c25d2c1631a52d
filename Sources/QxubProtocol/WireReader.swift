/// Reads the tagged fields written by ``WireWriter``; unknown fields are skipped by the caller's `default:`.
package struct WireReader {
    /// One field as read from the wire.
    package struct Field {
        package let number: Int
        fileprivate let value: Value
        fileprivate let type: FrameType

        fileprivate enum Value {
            case varint(UInt64)
            case bytes(ArraySlice<UInt8>)
        }

        package func uint64() throws(ProtocolError) -> UInt64 {
            guard case .varint(let value) = value else { throw mismatch("a number") }
            return value
        }

        package func uint32() throws(ProtocolError) -> UInt32 {
            let value = try uint64()
            guard value <= UInt64(UInt32.max) else { throw malformed("field \(number) is out of range") }
            return UInt32(value)
        }

        package func int() throws(ProtocolError) -> Int {
            let value = try uint64()
            guard value <= UInt64(Int.max) else { throw malformed("field \(number) is out of range") }
            return Int(value)
        }

        /// A `uint64` that must fit an `Int64` (`off_t`, `time_t`): file offsets and times. Anything above
        /// 2⁶³−1 is malformed here, at the boundary, so no code behind it can trap converting it.
        package func int63() throws(ProtocolError) -> UInt64 {
            let value = try uint64()
            guard value <= UInt64(Int64.max) else { throw malformed("field \(number) is out of range") }
            return value
        }

        package func bool() throws(ProtocolError) -> Bool { try uint64() != 0 }

        package func int64() throws(ProtocolError) -> Int64 {
            let raw = try uint64()
            return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
        }

        package func int32() throws(ProtocolError) -> Int32 {
            let value = try int64()
            guard let narrow = Int32(exactly: value) else { throw malformed("field \(number) is out of range") }
            return narrow
        }

        package func bytes() throws(ProtocolError) -> [UInt8] {
            guard case .bytes(let value) = value else { throw mismatch("bytes") }
            return Array(value)
        }

        package func string() throws(ProtocolError) -> String {
            guard case .bytes(let value) = value else { throw mismatch("a string") }
            return String(decoding: value, as: UTF8.self)
        }

        package func message<Message: WireCodable>(_: Message.Type = Message.self) throws(ProtocolError) -> Message {
            guard case .bytes(let value) = value else { throw mismatch("a nested message") }
            var nested = WireReader(value, type: type)
            return try Message(from: &nested)
        }

        private func mismatch(_ expected: String) -> ProtocolError {
            malformed("field \(number) should be \(expected)")
        }

        private func malformed(_ reason: String) -> ProtocolError {
            .malformedPayload(type: type, reason: reason)
        }
    }

    private let bytes: ArraySlice<UInt8>
    private var index: Int
    private let type: FrameType

    package init(_ bytes: ArraySlice<UInt8>, type: FrameType) {
        self.bytes = bytes
        self.index = bytes.startIndex
        self.type = type
    }

    /// The next field, or `nil` at the end of the payload.
    package mutating func next() throws(ProtocolError) -> Field? {
        guard index < bytes.endIndex else { return nil }
        let key = try readVarint()
        let number = key >> 3
        guard number > 0, number <= 1 << 28 else { throw malformed("bad field number \(number)") }
        switch key & 7 {
        case UInt64(WireKind.varint.rawValue):
            return Field(number: Int(number), value: .varint(try readVarint()), type: type)
        case UInt64(WireKind.lengthDelimited.rawValue):
            let length = try readVarint()
            guard length <= UInt64(bytes.endIndex - index) else {
                throw malformed("field \(number) claims \(length) bytes but only \(bytes.endIndex - index) remain")
            }
            let value = bytes[index..<(index + Int(length))]
            index += Int(length)
            return Field(number: Int(number), value: .bytes(value), type: type)
        default:
            throw malformed("field \(number) has unknown wire kind \(key & 7)")
        }
    }

    private mutating func readVarint() throws(ProtocolError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < bytes.endIndex else { throw malformed("payload ends inside a number") }
            let byte = bytes[index]
            index += 1
            guard shift < 64 else { throw malformed("number longer than 64 bits") }
            if shift == 63 && byte > 1 { throw malformed("number longer than 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private func malformed(_ reason: String) -> ProtocolError {
        .malformedPayload(type: type, reason: reason)
    }
}
