/// Everything the agent needs to submit one job. Built by the client from options and configuration.
package struct JobSpec: WireCodable, Hashable {
    /// How the command is run.
    package enum Command: Hashable, Sendable {
        /// One string, run by `bash -c` (pipes, `$VARS` and `;` work as in a terminal).
        case shell(String)
        /// An argv, passed exactly: no word splitting, globbing or expansion.
        case argv([String])
    }

    /// Where the command runs: plain, conda, modules (then conda), or a container.
    package struct Context: WireCodable, Hashable {
        package var condaEnvironment: String?
        package var modules: [String]
        package var container: String?
        package var binds: [String]

        package init(
            condaEnvironment: String? = nil,
            modules: [String] = [],
            container: String? = nil,
            binds: [String] = []
        ) {
            self.condaEnvironment = condaEnvironment
            self.modules = modules
            self.container = container
            self.binds = binds
        }

        package func encode(to writer: inout WireWriter) {
            writer.string(1, condaEnvironment)
            writer.strings(2, modules)
            writer.string(3, container)
            writer.strings(4, binds)
        }

        package init(from reader: inout WireReader) throws(ProtocolError) {
            self.init()
            while let field = try reader.next() {
                switch field.number {
                case 1: condaEnvironment = try field.string()
                case 2: modules.append(try field.string())
                case 3: container = try field.string()
                case 4: binds.append(try field.string())
                default: break
                }
            }
        }
    }

    /// Requested resources, already parsed into units (the client validates what users type).
    package struct Resources: WireCodable, Hashable {
        package var memoryBytes: UInt64?
        package var cpus: UInt32?
        package var walltimeSeconds: UInt64?
        package var localDiskBytes: UInt64?
        package var gpus: UInt32?
        package var storage: String?
        /// Raw scheduler resource requests (PBS `-l` values), passed through unchanged.
        package var raw: [String]

        package init(
            memoryBytes: UInt64? = nil,
            cpus: UInt32? = nil,
            walltimeSeconds: UInt64? = nil,
            localDiskBytes: UInt64? = nil,
            gpus: UInt32? = nil,
            storage: String? = nil,
            raw: [String] = []
        ) {
            self.memoryBytes = memoryBytes
            self.cpus = cpus
            self.walltimeSeconds = walltimeSeconds
            self.localDiskBytes = localDiskBytes
            self.gpus = gpus
            self.storage = storage
            self.raw = raw
        }

        package func encode(to writer: inout WireWriter) {
            // Presence matters (0 is not "unset"), so optional numbers carry a leading 1 bit.
            // UInt64.max cannot carry the +1; it is sent as UInt64.max - 1 (no real request is that large).
            if let memoryBytes { writer.varint(1, min(memoryBytes, .max - 1) + 1) }
            if let cpus { writer.varint(2, UInt64(cpus) + 1) }
            if let walltimeSeconds { writer.varint(3, min(walltimeSeconds, .max - 1) + 1) }
            if let localDiskBytes { writer.varint(4, min(localDiskBytes, .max - 1) + 1) }
            if let gpus { writer.varint(5, UInt64(gpus) + 1) }
            writer.string(6, storage)
            writer.strings(7, raw)
        }

        package init(from reader: inout WireReader) throws(ProtocolError) {
            func present(_ field: WireReader.Field) throws(ProtocolError) -> UInt64 {
                let raw = try field.uint64()
                guard raw > 0 else {
                    throw .malformedPayload(type: .submit, reason: "resource field \(field.number) is zero")
                }
                return raw - 1
            }
            func narrow(_ value: UInt64, _ field: WireReader.Field) throws(ProtocolError) -> UInt32 {
                guard let narrow = UInt32(exactly: value) else {
                    throw .malformedPayload(type: .submit, reason: "resource field \(field.number) is out of range")
                }
                return narrow
            }
            self.init()
            while let field = try reader.next() {
                switch field.number {
                case 1: memoryBytes = try present(field)
                case 2: cpus = try narrow(present(field), field)
                case 3: walltimeSeconds = try present(field)
                case 4: localDiskBytes = try present(field)
                case 5: gpus = try narrow(present(field), field)
                case 6: storage = try field.string()
                case 7: raw.append(try field.string())
                default: break
                }
            }
        }
    }

    package var name: String
    package var command: Command
    package var workingDirectory: String
    package var createWorkingDirectory: Bool
    package var context: Context
    package var pre: String?
    package var post: String?
    /// Exported in the job, values literal (never expanded).
    package var variables: [KeyValue]
    package var resources: Resources
    package var queue: String?
    package var project: String?
    package var array: String?
    package var email: String?
    package var emailEvents: String?
    /// The user's stdout and stderr files, and the job log (scheduler output, audit block).
    package var stdoutPath: String?
    package var stderrPath: String?
    package var joblogPath: String?
    /// "local", "slurm", "pbspro", or empty for "whatever the agent detects".
    package var backend: String
    package var submitHost: String
    package var clientVersion: String
    /// `--tag KEY=VALUE`: kept with the job (meta, history) for the user's own bookkeeping.
    package var tags: [KeyValue] = []
    /// Set for an interactive job (`qxub interactive`): the command runs on a terminal, not as a batch job.
    /// Only sent to an agent that lists ``ProtocolConstants/capabilityInteractive``.
    package var terminal: Terminal?

    /// The terminal of an interactive job, as the client's terminal is when it starts.
    package struct Terminal: WireCodable, Hashable {
        package var rows: UInt16
        package var columns: UInt16
        /// `TERM` for the far side ("xterm-256color").
        package var type: String
        /// Seconds the session outlives a lost connection (its keeper ends it then).
        package var graceSeconds: UInt32

        package init(rows: UInt16, columns: UInt16, type: String, graceSeconds: UInt32) {
            self.rows = rows
            self.columns = columns
            self.type = type
            self.graceSeconds = graceSeconds
        }

        package func encode(to writer: inout WireWriter) {
            writer.varint(1, UInt64(rows))
            writer.varint(2, UInt64(columns))
            writer.string(3, type)
            writer.varint(4, graceSeconds)
        }

        package init(from reader: inout WireReader) throws(ProtocolError) {
            // Absent fields are 0 (a varint 0 is not written): the agent takes 0 rows or columns as 24x80.
            self.init(rows: 0, columns: 0, type: "", graceSeconds: 0)
            while let field = try reader.next() {
                switch field.number {
                case 1: rows = UInt16(clamping: try field.uint64())
                case 2: columns = UInt16(clamping: try field.uint64())
                case 3: type = try field.string()
                case 4: graceSeconds = try field.uint32()
                default: break
                }
            }
        }
    }

    package init(
        name: String,
        command: Command,
        workingDirectory: String,
        createWorkingDirectory: Bool = false,
        context: Context = Context(),
        pre: String? = nil,
        post: String? = nil,
        variables: [KeyValue] = [],
        resources: Resources = Resources(),
        queue: String? = nil,
        project: String? = nil,
        array: String? = nil,
        email: String? = nil,
        emailEvents: String? = nil,
        stdoutPath: String? = nil,
        stderrPath: String? = nil,
        joblogPath: String? = nil,
        backend: String = "",
        submitHost: String = "",
        clientVersion: String = ""
    ) {
        self.name = name
        self.command = command
        self.workingDirectory = workingDirectory
        self.createWorkingDirectory = createWorkingDirectory
        self.context = context
        self.pre = pre
        self.post = post
        self.variables = variables
        self.resources = resources
        self.queue = queue
        self.project = project
        self.array = array
        self.email = email
        self.emailEvents = emailEvents
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.joblogPath = joblogPath
        self.backend = backend
        self.submitHost = submitHost
        self.clientVersion = clientVersion
    }

    package func encode(to writer: inout WireWriter) {
        writer.string(1, name)
        switch command {
        case .shell(let line):
            writer.string(2, line)
        case .argv(let arguments):
            writer.bool(3, true)
            writer.strings(4, arguments)
        }
        writer.string(5, workingDirectory)
        writer.bool(6, createWorkingDirectory)
        writer.message(7, context)
        writer.string(8, pre)
        writer.string(9, post)
        writer.messages(10, variables)
        writer.message(11, resources)
        writer.string(12, queue)
        writer.string(13, project)
        writer.string(14, array)
        writer.string(15, email)
        writer.string(16, emailEvents)
        writer.string(17, stdoutPath)
        writer.string(18, stderrPath)
        writer.string(19, joblogPath)
        writer.string(20, backend)
        writer.string(21, submitHost)
        writer.string(22, clientVersion)
        writer.messages(23, tags)
        writer.message(24, terminal)
    }

    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init(name: "", command: .shell(""), workingDirectory: "")
        var shellLine = ""
        var isArgv = false
        var arguments: [String] = []
        while let field = try reader.next() {
            switch field.number {
            case 1: name = try field.string()
            case 2: shellLine = try field.string()
            case 3: isArgv = try field.bool()
            case 4: arguments.append(try field.string())
            case 5: workingDirectory = try field.string()
            case 6: createWorkingDirectory = try field.bool()
            case 7: context = try field.message()
            case 8: pre = try field.string()
            case 9: post = try field.string()
            case 10: variables.append(try field.message())
            case 11: resources = try field.message()
            case 12: queue = try field.string()
            case 13: project = try field.string()
            case 14: array = try field.string()
            case 15: email = try field.string()
            case 16: emailEvents = try field.string()
            case 17: stdoutPath = try field.string()
            case 18: stderrPath = try field.string()
            case 19: joblogPath = try field.string()
            case 20: backend = try field.string()
            case 21: submitHost = try field.string()
            case 22: clientVersion = try field.string()
            case 23: tags.append(try field.message())
            case 24: terminal = try field.message()
            default: break
            }
        }
        command = isArgv ? .argv(arguments) : .shell(shellLine)
    }
}

/// A name and a value, e.g. one `--var KEY=VALUE`.
package struct KeyValue: WireCodable, Hashable {
    package var key: String
    package var value: String
    package init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
    package func encode(to writer: inout WireWriter) {
        writer.string(1, key)
        writer.string(2, value)
    }
    package init(from reader: inout WireReader) throws(ProtocolError) {
        self.init("", "")
        while let field = try reader.next() {
            switch field.number {
            case 1: key = try field.string()
            case 2: value = try field.string()
            default: break
            }
        }
    }
}
