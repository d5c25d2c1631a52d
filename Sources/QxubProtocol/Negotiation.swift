/// What two hellos agree on.
package struct Negotiation: Hashable, Sendable {
    /// The highest protocol version both sides speak.
    package var version: UInt32
    /// Both sides compress with one deflate stream per direction.
    package var compression: Bool
    /// The largest payload the peer accepts.
    package var peerMaxPayload: Int
    /// The peer's hello, for display (software, platform, scheduler).
    package var peer: Hello

    /// Agrees on the highest common version, or throws ``ProtocolError/versionMismatch(local:remote:remoteSoftware:)``.
    package init(local: Hello, remote: Hello) throws(ProtocolError) {
        let low = max(local.versions.lowerBound, remote.versions.lowerBound)
        let high = min(local.versions.upperBound, remote.versions.upperBound)
        guard low <= high else {
            throw .versionMismatch(local: local.versions, remote: remote.versions, remoteSoftware: remote.software)
        }
        guard Int(remote.maxPayload) >= ProtocolConstants.minimumMaxPayload else {
            throw .malformedPayload(
                type: .hello,
                reason:
                    "the peer accepts only \(remote.maxPayload)-byte frames; at least \(ProtocolConstants.minimumMaxPayload) are needed"
            )
        }
        version = high
        let deflate = ProtocolConstants.capabilityDeflate
        compression = local.capabilities.contains(deflate) && remote.capabilities.contains(deflate)
        peerMaxPayload = Int(remote.maxPayload)
        peer = remote
    }
}
