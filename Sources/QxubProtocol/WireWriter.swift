/// Writes a message payload as a sequence of tagged fields.
///
/// Each field is a key (`field number << 3 | wire kind`, as a LEB128 varint) followed by a varint
/// (kind 0) or a varint length and that many bytes (kind 2). A reader skips fields it does not know,
/// which is what lets a newer peer add fields without breaking an older one. Default values (zero,
/// empty) are not written.
package struct WireWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    package mutating func varint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        key(field, .varint)
        appendVarint(value)
    }

    package mutating func varint(_ field: Int, _ value: UInt32) { varint(field, UInt64(value)) }

    package mutating func bool(_ field: Int, _ value: Bool) { varint(field, value ? 1 as UInt64 : 0) }

    /// Signed values are zigzag-encoded so small negative numbers stay short.
    package mutating func signed(_ field: Int, _ value: Int64) {
        varint(field, UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    package mutating func signed(_ field: Int, _ value: Int32) { signed(field, Int64(value)) }

    /// Writes an optional unsigned value; `nil` writes nothing, `0` writes an explicit zero.
    package mutating func optionalVarint(_ field: Int, _ value: UInt64?) {
        guard let value else { return }
        key(field, .varint)
        appendVarint(value)
    }

    /// Writes an optional signed value; `nil` writes nothing, `0` writes an explicit zero.
    package mutating func optionalSigned(_ field: Int, _ value: Int32?) {
        guard let value else { return }
        key(field, .varint)
        let wide = Int64(value)
        appendVarint(UInt64(bitPattern: (wide << 1) ^ (wide >> 63)))
    }

    package mutating func bytes<Bytes: Collection>(_ field: Int, _ value: Bytes) where Bytes.Element == UInt8 {
        guard !value.isEmpty else { return }
        key(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    package mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    package mutating func string(_ field: Int, _ value: String?) {
        guard let value else { return }
        // An optional string that is present is written even when empty.
        key(field, .lengthDelimited)
        appendVarint(UInt64(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }

    package mutating func strings(_ field: Int, _ values: [String]) {
        for value in values {
            key(field, .lengthDelimited)
            appendVarint(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }
    }

    package mutating func message<Message: WireCodable>(_ field: Int, _ value: Message) {
        var nested = WireWriter()
        value.encode(to: &nested)
        key(field, .lengthDelimited)
        appendVarint(UInt64(nested.bytes.count))
        bytes.append(contentsOf: nested.bytes)
    }

    package mutating func message<Message: WireCodable>(_ field: Int, _ value: Message?) {
        if let value { message(field, value) }
    }

    package mutating func messages<Message: WireCodable>(_ field: Int, _ values: [Message]) {
        for value in values { message(field, value) }
    }

    private mutating func key(_ field: Int, _ kind: WireKind) {
        appendVarint(UInt64(field) << 3 | UInt64(kind.rawValue))
    }

    private mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}

/// How a field's value is laid out.
package enum WireKind: UInt8, Sendable {
    case varint = 0
    case lengthDelimited = 2
}

/// A value that is written as a tagged-field payload.
package protocol WireCodable: Sendable {
    func encode(to writer: inout WireWriter)
    init(from reader: inout WireReader) throws(ProtocolError)
}

extension WireCodable {
    /// The payload bytes of this value.
    package func wireBytes() -> [UInt8] {
        var writer = WireWriter()
        encode(to: &writer)
        return writer.bytes
    }

    /// Decodes a value from payload bytes; `type` names the frame in errors.
    package init(wireBytes: ArraySlice<UInt8>, type: FrameType) throws(ProtocolError) {
        var reader = WireReader(wireBytes, type: type)
        try self.init(from: &reader)
    }
}
