import QxubProtocol
import Testing

private func text(_ string: String) -> String { hex(Array(string.utf8)) }

private func payload(_ message: Message) -> String { hex(message.frame().payload) }

@Suite("Message payloads")
struct WireFormatTests {
    // Golden bytes, written from the field tables in docs/protocol.md: key = field << 3 | kind.
    @Test("ping: field 1 varint nonce")
    func pingGolden() {
        #expect(payload(.ping(Ping(nonce: 300))) == "08" + "ac02")
        var encoder = FrameEncoder()
        #expect(
            hex(try! encoder.encode(Message.ping(Ping(nonce: 300)).frame())) == "00000003" + "03" + "00" + "00000000"
                + "08ac02"
        )
    }

    @Test("pong echoes the nonce under its own type")
    func pongGolden() {
        let frame = Message.pong(Pong(nonce: 1)).frame()
        #expect(frame.type == .pong)
        #expect(hex(frame.payload) == "0801")
    }

    @Test("hello")
    func helloGolden() {
        let hello = Hello(
            versions: 1...2,
            software: "qxub 0.1.0",
            capabilities: ["deflate"],
            maxPayload: 1 << 20,
            platform: "linux-x86_64",
            hostname: "h",
            scheduler: ""
        )
        let expected =
            "0801" + "1002" + "1a0a" + text("qxub 0.1.0") + "2207" + text("deflate") + "28808040"
            + "320c" + text("linux-x86_64") + "3a01" + text("h")
        #expect(payload(.hello(hello)) == expected)
    }

    @Test("goodbye")
    func goodbyeGolden() {
        #expect(payload(.goodbye(Goodbye(reason: "bye"))) == "0a03" + text("bye"))
    }

    @Test("error: request id, code, message, hint")
    func errorGolden() {
        let error = ErrorMessage(requestID: 7, code: .unknownJob, message: "no job 42", hint: "try qxub history")
        #expect(
            payload(.error(error)) == "0807" + "1003" + "1a09" + text("no job 42") + "2210" + text("try qxub history")
        )
    }

    @Test("output: stream, offset, bytes; zero fields are omitted")
    func outputGolden() {
        #expect(
            payload(.output(Output(stream: .stderr, offset: 5, data: Array("hi\n".utf8)))) == "0801" + "1005" + "1a03"
                + "68690a"
        )
        #expect(payload(.output(Output(stream: .stdout, offset: 0, data: [0x78]))) == "1a0178")
    }

    @Test("job end: kind, zigzag code, reason, detail, ran-first")
    func jobEndGolden() {
        #expect(payload(.jobEnd(.exited(0))) == "0801" + "1000")
        #expect(payload(.jobEnd(.exited(7))) == "0801" + "100e")
        #expect(payload(.jobEnd(.exited(-29))) == "0801" + "1039")
        #expect(payload(.jobEnd(.signaled(9))) == "0802" + "1012")
        #expect(
            payload(.jobEnd(.killedByScheduler(.walltime, detail: "limit 3", ranFirst: true))) == "0803" + "1801"
                + "2207" + text("limit 3") + "2801"
        )
        #expect(payload(.jobEnd(.cancelled(ranFirst: false))) == "0804")
        #expect(payload(.jobEnd(.unknown("lost"))) == "0805" + "2204" + text("lost"))
        // An exit whose record could not be written is kind 5 with the status: an older peer reads "unknown".
        #expect(payload(.jobEnd(.exitUnrecorded(1, detail: "full"))) == "0805" + "1002" + "2204" + text("full"))
    }

    @Test("an unknown end with a status decodes as an exit whose record could not be written")
    func exitUnrecordedRoundTrip() throws {
        let end = Message.jobEnd(.exitUnrecorded(0, detail: "full"))
        #expect(try Message(frame: end.frame(channel: 3)) == end)
        #expect(JobTermination.exitUnrecorded(257, detail: "full").exitStatus == 1)
    }

    @Test("job state: phase, host, detail")
    func jobStateGolden() {
        #expect(
            payload(.jobState(JobState(phase: .running, host: "gadi-cpu-1", detail: "R"))) == "0803" + "120a"
                + text("gadi-cpu-1") + "1a01" + text("R")
        )
        // Field 5, the reason a queued job waits: written only when the scheduler gives one.
        #expect(
            payload(.jobState(JobState(phase: .queued, detail: "Q", reason: "Priority"))) == "0801" + "1a01" + text("Q")
                + "2a08" + text("Priority")
        )
    }

    @Test("an interactive job: the job spec's terminal, a watch's tail, a job state's flag, keys and sizes")
    func interactiveGoldens() {
        var spec = JobSpec(name: "", command: .shell(""), workingDirectory: "")
        spec.terminal = JobSpec.Terminal(rows: 24, columns: 80, type: "xterm", graceSeconds: 600)
        // Field 24 (key 24 << 3 | 2 = 0xc2 0x01), 14 bytes: rows, columns, TERM, grace.
        #expect(hex(spec.wireBytes()).hasSuffix("c2010e" + "0818" + "1050" + "1a05" + text("xterm") + "20d804"))
        var watch = Watch(requestID: 1, jobID: "j")
        watch.stdoutTail = 65536
        #expect(payload(.watch(watch)) == "0801" + "1201" + text("j") + "30808004")
        #expect(payload(.jobState(JobState(phase: .running, terminal: true))) == "0803" + "2001")
        #expect(payload(.jobState(JobState(phase: .running))) == "0803", "a batch job's state is as before")
        #expect(payload(.terminalInput(TerminalInput(data: Array("ls\r".utf8)))) == "1203" + "6c730d")
        #expect(payload(.terminalResize(TerminalResize(rows: 30, columns: 100))) == "101e" + "1864")
        #expect(Message.terminalInput(TerminalInput(data: [])).frame().type.rawValue == 0x30)
        #expect(Message.terminalResize(TerminalResize(rows: 1, columns: 1)).frame().type.rawValue == 0x31)
        #expect(!Message.isRequest(.terminalInput) && !Message.isRequest(.terminalResize), "never answered")
    }

    @Test("a terminal size of zero rows or columns is malformed")
    func zeroTerminalSize() {
        let frame = Frame(type: .terminalResize, channel: 1, payload: [0x10, 0x00, 0x18, 0x50])
        #expect(
            throws: ProtocolError.malformedPayload(
                type: .terminalResize,
                reason: "a terminal needs at least one row and column"
            )
        ) {
            try Message(frame: frame)
        }
    }

    @Test("submit, submitted, watch, cancel, cancel result, status query and report")
    func requestGoldens() {
        let spec = JobSpec(name: "t", command: .argv(["echo", "a b"]), workingDirectory: "/w")
        let specBytes =
            "0a01" + text("t") + "1801" + "2204" + text("echo") + "2203" + text("a b") + "2a02" + text("/w") + "3a00"
            + "5a00"
        #expect(
            payload(.submit(Submit(requestID: 2, spec: spec))) == "0802" + "12" + String(format2(specBytes.count / 2))
                + specBytes
        )
        let token = "0123456789abcdef0123456789abcdef"
        #expect(
            payload(.submit(Submit(requestID: 2, spec: spec, token: token))) == "0802" + "12"
                + String(format2(specBytes.count / 2)) + specBytes + "2220" + text(token)
        )
        #expect(
            payload(.submitted(Submitted(requestID: 2, jobID: "128.vm", backend: "pbspro"))) == "0802" + "1206"
                + text("128.vm") + "1a06" + text("pbspro")
        )
        #expect(
            payload(.watch(Watch(requestID: 3, jobID: "5", stdoutOffset: 10, stderrOffset: 0))) == "0803" + "1201"
                + text("5") + "180a"
        )
        #expect(payload(.cancel(JobRequest(requestID: 4, jobID: "5"))) == "0804" + "1201" + text("5"))
        #expect(
            payload(.cancelResult(CancelResult(requestID: 4, jobID: "5", wasActive: true))) == "0804" + "1201"
                + text("5") + "1801"
        )
        #expect(
            payload(.statusQuery(StatusQuery(requestID: 5, jobIDs: ["1", "2"]))) == "0805" + "1201" + text("1") + "1201"
                + text("2")
        )
        let report = StatusReport(
            requestID: 5,
            jobs: [JobStatus(jobID: "1", state: JobState(phase: .finished), termination: .exited(3))]
        )
        let entry = "0a01" + text("1") + "12020804" + "1a04" + "08011006"
        #expect(payload(.statusReport(report)) == "0805" + "12" + format2(entry.count / 2) + entry)
    }

    @Test("a status query that asks for usage, and a job's scheduler usage: present fields only, a note alone")
    func usageGoldens() {
        #expect(
            payload(.statusQuery(StatusQuery(requestID: 5, jobIDs: ["1"], usage: true))) == "0805" + "1201" + text("1")
                + "1801"
        )
        // walltime 62.5 s, cpu 1 s, 1 MiB, 2 cpus.
        let used = SchedulerUsage(walltimeMillis: 62_500, cpuMillis: 1000, memoryPeakBytes: 1 << 20, cpus: 2)
        #expect(hex(used.wireBytes()) == "08a4e803" + "10e807" + "18808040" + "2002")
        // A zero is a value, written explicitly: 0 s of cpu, not "unknown".
        #expect(hex(SchedulerUsage(cpuMillis: 0).wireBytes()) == "1000")
        let gone = SchedulerUsage(note: "gone")
        #expect(hex(gone.wireBytes()) == "2a04" + text("gone"))
        let status = JobStatus(jobID: "1", state: JobState(phase: .finished), schedulerUsage: SchedulerUsage(cpus: 2))
        #expect(hex(status.wireBytes()) == "0a01" + text("1") + "12020804" + "32022002")
        let decoded = try? JobStatus(wireBytes: status.wireBytes()[...], type: .statusReport)
        #expect(decoded == status)
    }

    @Test("history query and report")
    func historyGoldens() {
        #expect(payload(.historyQuery(HistoryQuery(requestID: 3, limit: 50))) == "0803" + "1032")
        let entry =
            "0a01" + text("1") + "1201" + text("n") + "1a05" + text("local") + "2007" + "2a01" + text("/") + "3201"
            + text("h") + "380e"
        #expect(
            payload(
                .historyReport(
                    HistoryReport(
                        requestID: 3,
                        entries: [
                            HistoryEntry(
                                jobID: "1",
                                name: "n",
                                backend: "local",
                                submittedAt: 7,
                                stateDirectory: "/",
                                submitHost: "h",
                                exitStatus: 7
                            )
                        ]
                    )
                )
            ) == "0803" + "12" + format2(entry.count / 2) + entry
        )
    }

    @Test("every message round-trips", arguments: sampleMessages())
    func roundTrip(message: Message) throws {
        #expect(try Message(frame: message.frame(channel: 9)) == message)
    }

    @Test("fields a newer peer adds are skipped")
    func unknownFieldsAreSkipped() throws {
        let error = ErrorMessage(requestID: 7, code: .submitFailed, message: "qsub said no", hint: "check -q")
        var extended = error.wireBytes()
        extended += bytes(hex: "f806 2a")  // field 127, varint 42
        extended += bytes(hex: "fa06 03 010203")  // field 127, three bytes
        let decoded = try Message(frame: Frame(type: .error, payload: extended))
        #expect(decoded == .error(error))
    }

    @Test("an unknown error code decodes to .unknown, never a crash")
    func unknownErrorCode() throws {
        let decoded = try Message(frame: Frame(type: .error, payload: bytes(hex: "0801 10e707")))
        #expect(decoded == .error(ErrorMessage(requestID: 1, code: .unknown(999), message: "")))
    }

    @Test("an unknown frame type keeps its request id so it can be answered")
    func unknownFrameType() throws {
        let decoded = try Message(frame: Frame(type: FrameType(rawValue: 0x7E), payload: bytes(hex: "082a 1203616263")))
        #expect(decoded == .unknown(FrameType(rawValue: 0x7E), requestID: 42))
    }

    @Test("an unknown job end kind decodes to .unknown")
    func unknownTermination() throws {
        let decoded = try Message(frame: Frame(type: .jobEnd, payload: bytes(hex: "0863")))
        #expect(decoded == .jobEnd(.unknown("unrecognised job end (kind 99)")))
    }

    @Test(
        "malformed payloads are typed errors",
        arguments: [
            ("0880", "ends inside a number"),
            ("0a05616263", "claims 5 bytes"),
            ("09", "unknown wire kind 1"),
            ("0a03616263", "should be a number"),
            ("08ffffffffffffffffff02", "longer than 64 bits"),
            ("08ffffffffffffffffffff01", "longer than 64 bits"),
            ("00", "bad field number 0"),
        ]
    )
    func malformedPayloads(payloadHex: String, reason: String) throws {
        #expect {
            try Message(frame: Frame(type: .ping, payload: bytes(hex: payloadHex)))
        } throws: { error in
            guard case ProtocolError.malformedPayload(.ping, let message) = error else { return false }
            return message.contains(reason)
        }
    }

    @Test("a hello whose lowest version is above its highest is malformed")
    func helloBadRange() {
        #expect(throws: ProtocolError.malformedPayload(type: .hello, reason: "lowest version 5 is above highest 2")) {
            try Message(frame: Frame(type: .hello, payload: bytes(hex: "0805 1002")))
        }
    }

    @Test("a resource field of zero is malformed, not an underflow")
    func zeroResourceField() {
        // submit { 1: 1, 2: spec { 11: resources { 1: 0 } } }
        #expect(throws: ProtocolError.malformedPayload(type: .submit, reason: "resource field 1 is zero")) {
            try Message(frame: Frame(type: .submit, payload: bytes(hex: "0801 1204 5a020800")))
        }
    }

    @Test(
        "a submission token that could name a path (../, upper case, too short) is malformed",
        arguments: ["../../etc/passwd0000", "0123456789ABCDEF", "0123", "0123456789abcdef/x"]
    )
    func badTokens(token: String) {
        // submit { 1: 1, 2: spec {}, 4: token }
        let tokenHex = String(format2(token.utf8.count)) + token.utf8.map { format2(Int($0)) }.joined()
        #expect(
            throws: ProtocolError.malformedPayload(
                type: .submit,
                reason: "the submission token is not 16-64 lowercase hex digits"
            )
        ) {
            try Message(frame: Frame(type: .submit, payload: bytes(hex: "0801 1200 22" + tokenHex)))
        }
    }

    @Test("an exit code out of 32-bit range is malformed")
    func exitCodeRange() {
        #expect(throws: ProtocolError.malformedPayload(type: .jobEnd, reason: "field 2 is out of range")) {
            try Message(frame: Frame(type: .jobEnd, payload: bytes(hex: "0801 1080808080808001")))
        }
    }
}

private func format2(_ value: Int) -> String {
    let text = String(value, radix: 16)
    return text.count == 1 ? "0" + text : text
}

func sampleMessages() -> [Message] {
    let spec = JobSpec(
        name: "train \"x\" $(rm -rf) `id`",
        command: .shell("echo $PBS_JOBID; hostname"),
        workingDirectory: "/scratch/a b",
        createWorkingDirectory: true,
        context: .init(
            condaEnvironment: "pytorch",
            modules: ["cuda/12", "gcc"],
            container: "/img.sif",
            binds: ["/g:/g"]
        ),
        pre: "",
        post: "echo done",
        variables: [KeyValue("A", "1,2;3"), KeyValue("Ü", "\n")],
        resources: .init(
            memoryBytes: 0,
            cpus: 4,
            walltimeSeconds: 7200,
            localDiskBytes: 1 << 30,
            gpus: 0,
            storage: "gdata/a56",
            raw: ["place=scatter"]
        ),
        queue: "normal",
        project: "a56",
        array: "1-3",
        email: "me@x",
        emailEvents: "ae",
        stdoutPath: "/o",
        stderrPath: "/e",
        joblogPath: "/l",
        backend: "pbspro",
        submitHost: "laptop",
        clientVersion: "0.1.0"
    )
    return [
        .hello(Hello(software: "qxub 0.1.0", platform: "linux-x86_64", hostname: "gadi-login-01", scheduler: "pbspro")),
        .goodbye(Goodbye(reason: "done")),
        .ping(Ping(nonce: .max)),
        .pong(Pong(nonce: 0)),
        .error(ErrorMessage(requestID: 1, code: .cancelFailed, message: "m", hint: "h")),
        .submit(Submit(requestID: 1, spec: spec)),
        .submit(Submit(requestID: 2, spec: JobSpec(name: "", command: .argv([]), workingDirectory: ""))),
        .submit(
            Submit(
                requestID: 3,
                spec: {
                    var spec = JobSpec(name: "i", command: .argv([]), workingDirectory: "")
                    spec.terminal = JobSpec.Terminal(rows: 1, columns: 65535, type: "", graceSeconds: 0)
                    return spec
                }()
            )
        ),
        .submit(Submit(requestID: 3, spec: spec, token: "00112233445566778899aabbccddeeff")),
        .submitted(
            Submitted(requestID: 1, jobID: "136[].vm", backend: "pbspro", stateDirectory: "/home/u/.qxub/jobs/136")
        ),
        .watch(Watch(requestID: 1, jobID: "5", stdoutOffset: UInt64(Int64.max), stderrOffset: 1)),
        .unwatch(JobRequest(requestID: 1, jobID: "5")),
        .cancel(JobRequest(requestID: 1, jobID: "5")),
        .cancelResult(CancelResult(requestID: 1, jobID: "5", wasActive: false)),
        .statusQuery(StatusQuery(requestID: 1, jobIDs: ["1", "2", "3"])),
        .statusQuery(StatusQuery(requestID: 2, jobIDs: ["4.vm"], usage: true)),
        .statusReport(
            StatusReport(
                requestID: 1,
                jobs: [
                    JobStatus(jobID: "1", state: JobState(phase: .queued, detail: "PENDING")),
                    JobStatus(jobID: "2", state: JobState(phase: .finished), termination: .signaled(9)),
                    JobStatus(
                        jobID: "3",
                        state: JobState(phase: .finished),
                        termination: .exited(0),
                        schedulerUsage: SchedulerUsage(walltimeMillis: 1, cpuMillis: 0, memoryPeakBytes: 3, cpus: 4)
                    ),
                    JobStatus(
                        jobID: "4",
                        state: JobState(phase: .finished),
                        schedulerUsage: SchedulerUsage(note: "the scheduler no longer has job 4")
                    ),
                ]
            )
        ),
        .historyQuery(HistoryQuery(requestID: 3, limit: 50)),
        .historyReport(
            HistoryReport(
                requestID: 3,
                entries: [
                    HistoryEntry(
                        jobID: "128.vm",
                        name: "train",
                        backend: "pbspro",
                        submittedAt: 1_795_000_000,
                        stateDirectory: "/h/.qxub/jobs/x",
                        submitHost: "laptop",
                        exitStatus: 0
                    ),
                    HistoryEntry(
                        jobID: "129.vm",
                        name: "eval",
                        backend: "pbspro",
                        submittedAt: 1_795_000_100,
                        stateDirectory: "/h/.qxub/jobs/y",
                        submitHost: "login1"
                    ),
                ]
            )
        ),
        .output(Output(stream: .stderr, offset: 1 << 40, data: Array(0...255))),
        .jobState(JobState(phase: .held, detail: "H")),
        .jobEnd(.killedByScheduler(.memory, detail: "OUT_OF_MEMORY", ranFirst: true)),
        .jobEnd(.exited(Int32.min)),
        .jobEnd(.cancelled(ranFirst: true)),
        .jobState(JobState(phase: .running, host: "n", terminal: true)),
        .terminalInput(TerminalInput(data: Array(0...255))),
        .terminalResize(TerminalResize(rows: 65535, columns: 1)),
    ]
}

extension Message: CustomTestStringConvertible {
    package var testDescription: String { frameType.description }
}
