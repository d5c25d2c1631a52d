// libFuzzer target for the agent's request handling (issue 9, item 4): decoded requests reach the real
// AgentSession and JobService, in this process, with a job on record, so that numbers from the wire meet
// the agent's arithmetic (offsets, pread, limits) and not only the decoder. Built and run by
// Tests/Fuzz/run.sh.
//
// The input is a list of frames, each `type, channel, length (1 byte), payload`: the harness writes the
// frame headers itself, so the fuzzer spends its time on payloads. A `submit` is always made a dry run
// (a fuzzer must not start processes), and a payload that does not decode is sent as it came.
import QxubAgent
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The state root the agent uses: one job on record, finished, with output (made once per process).
private let stateRoot: String = {
    // Tests/Fuzz/run.sh points this into fuzz-out/ (and empties it first).
    let root = Environment.get("QXUB_FUZZ_STATE_DIR") ?? "/tmp/qxub-fuzz-agent-\(getpid())"
    let job = root + "/jobs/20260101-000000-fuzz"
    try! FileSystem.createDirectories(job)
    try! FileSystem.createDirectories(root + "/by-id")
    try! FileSystem.writeAtomically(
        job + "/meta",
        "backend=local\nstdout=\(job)/out\nstderr=\(job)/err\njoblog=\(job)/log\n"
    )
    try! FileSystem.writeAtomically(job + "/out", Array(repeating: UInt8(ascii: "o"), count: 100_000))
    try! FileSystem.writeAtomically(job + "/err", "err\n")
    try! FileSystem.writeAtomically(job + "/started", "1767225600 fuzzhost\n")
    try! FileSystem.writeAtomically(job + "/exit", "0 1767225601\n")
    try! FileSystem.symlink("../jobs/20260101-000000-fuzz", at: root + "/by-id/local-fuzz")
    let line = "1767225600\tlocal-fuzz\tlocal\tfuzz\t\(job)\thost\n"
    try! FileSystem.writeAtomically(root + "/history.tsv", line)
    return root
}()

/// Frames from the fuzzer's bytes; a submit becomes a dry run.
private func frames(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    var index = bytes.startIndex
    while index + 3 <= bytes.endIndex {
        let type = FrameType(rawValue: bytes[index])
        let channel = UInt32(bytes[index + 1] & 3)
        let length = Int(bytes[index + 2])
        index += 3
        var payload = Array(bytes[index..<min(bytes.endIndex, index + length)])
        index = min(bytes.endIndex, index + length)
        if type == .submit {
            if case .submit(var submit)? = try? Message(frame: Frame(type: type, channel: channel, payload: payload)) {
                submit.dryRun = true
                payload = Message.submit(submit).frame(channel: channel).payload
            } else {
                // A submit that does not decode is answered malformed-request; one that might decode
                // differently later must not run: only payloads that fail to decode pass raw.
            }
        }
        FrameHeader(length: UInt32(payload.count), type: type, flags: [], channel: channel).write(into: &out)
        out += payload
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
package func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let toAgent = try? FileDescriptor.pipe() else { return 0 }
    let sink = open("/dev/null", O_WRONLY | O_CLOEXEC)
    defer { FileDescriptor.close(sink) }
    let loop = EventLoop()
    var client = ProtocolEndpoint(hello: Hello(software: "fuzz-client", capabilities: []), preambleLimit: 0)
    let input = client.start() + frames(bytes[...])
    let session = AgentSession(
        loop: loop,
        input: toAgent.read,
        output: sink,
        hello: AgentServer.hello(scheduler: "local")
    )
    let log = AgentLog(path: nil)
    let options = AgentOptions(
        store: JobStore(root: stateRoot),
        defaultKind: .local,
        pollInterval: 60,
        watchFiles: false
    )
    session.register(JobHarness(service: JobService(options: options, loop: loop, log: log), log: log))
    // The pipe holds 64 KiB; the input is smaller (-max_len), so it is written whole before the loop runs.
    try? FileDescriptor.writeAll(toAgent.write, input)
    var writeEnd: Int32? = toAgent.write
    // A few ticks of the job service (watches pump output) before the client goes away.
    _ = loop.schedule(after: 0.02) {
        if let fd = writeEnd { FileDescriptor.close(fd) }
        writeEnd = nil
    }
    _ = loop.schedule(after: 3) { loop.stop() }  // never hang: a session that does not end is a finding too
    do {
        try session.start()
        try loop.run()
    } catch {}
    if let fd = writeEnd { FileDescriptor.close(fd) }
    FileDescriptor.close(toAgent.read)
    return 0
}
