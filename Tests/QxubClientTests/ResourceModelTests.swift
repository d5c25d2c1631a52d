import QxubClient
import QxubProtocol
import Testing

@Suite("One resource model: named options, -l, shortcuts and configuration layers")
struct ResourceModelTests {
    static let gib: UInt64 = 1 << 30

    func commandLine(_ named: [ResourceModel.Key: String] = [:], raw: [String] = []) -> ResourceModel {
        var model = ResourceModel()
        for (key, value) in named { model.fill(key, value, origin: .option) }
        model.fill(raw: raw, origin: .commandLineRaw, pass: true)
        return model
    }

    @Test("a -l resource is the same request as its named option for queue selection and limits")
    func rawChoosesQueue() throws {
        let gadi = QueueSelectorTests.gadi
        let big = try commandLine(raw: ["mem=600GB"]).resolved()
        #expect(big.memoryBytes == 600 * Self.gib && big.raw.isEmpty, "sent once, typed")
        #expect(try QueueSelector.select(.init(big), in: gadi) == "hugemem")
        let gpu = commandLine(raw: ["ngpus=1"])
        #expect(gpu.gpusFromCommandLine && !gpu.cpusFromCommandLine)
        let request = QueueSelector.Request(try gpu.resolved())
        let queue = try QueueSelector.select(request, in: gadi)
        let decision = try QueueSelector.adjust(request, queue: queue, in: gadi, auto: true, cpusExplicit: false)
        #expect(decision.queue == "gpuvolta" && decision.cpus == 12)
        let tooMany = QueueSelector.Request(try commandLine(raw: ["ncpus=5000"]).resolved())
        #expect(throws: ClientError.self) {
            try QueueSelector.adjust(tooMany, queue: "express", in: gadi, auto: false, cpusExplicit: true)
        }
    }

    @Test("a named option wins over the same -l key; other -l parts pass through raw, in their order")
    func namedWinsOverRaw() throws {
        let resources = try commandLine(
            [.mem: "8GB", .walltime: "3h"],
            raw: ["mem=2GB,place=scatter", "walltime=1:00:00", "ncpus=4", "other=x"]
        ).resolved()
        #expect(resources.memoryBytes == 8 * Self.gib)
        #expect(resources.walltimeSeconds == 3 * 3600)
        #expect(resources.cpus == 4)
        #expect(resources.raw == ["place=scatter", "other=x"])
    }

    @Test(
        "-l values read as PBS reads them: a plain number is seconds or bytes, [[H:]M:]S is a clock",
        arguments: [
            ("walltime=3600", ResourceModel.Key.walltime, UInt64(3600)),
            ("walltime=1:30", .walltime, 90),
            ("walltime=2:00:00", .walltime, 7200),
            ("walltime=2h", .walltime, 7200),
            ("mem=1073741824", .mem, 1 << 30),
            ("mem=4gb", .mem, 4 << 30),
            ("jobfs=100GB", .jobfs, 100 << 30),
        ]
    )
    func pbsForms(entry: String, key: ResourceModel.Key, expected: UInt64) throws {
        let resources = try commandLine(raw: [entry]).resolved()
        let value =
            key == .walltime
            ? resources.walltimeSeconds : key == .mem ? resources.memoryBytes : resources.localDiskBytes
        #expect(value == expected)
    }

    @Test("a -l value that does not parse names its entry")
    func badRawValue() {
        #expect(
            throws: ClientError("-l ncpus=many: not a positive whole number", hint: "for example ncpus=4", exitCode: 64)
        ) {
            try commandLine(raw: ["ncpus=many"]).resolved()
        }
        #expect(throws: ClientError.self) { try commandLine(raw: ["mem=lots"]).resolved() }
    }

    /// A configuration of two layers, user then project.
    func layered(user: [String: ConfigValue], project: [String: ConfigValue]) -> Configuration {
        var configuration = Configuration()
        configuration.add(.map(["defaults": .map(user)]), from: .init(name: "user", path: "/u/config.yaml"))
        configuration.add(.map(["defaults": .map(project)]), from: .init(name: "project", path: "/p/.qx/project.yaml"))
        return configuration
    }

    static let list: ConfigValue = .list([.string("mem=4GB"), .string("ncpus=1"), .string("place=scatter")])

    @Test("a higher configuration layer wins, whichever spelling each layer uses")
    func layerPrecedence() throws {
        let table: [(String, Configuration, UInt64, UInt32)] = [
            (
                "user list, project keys",
                layered(user: ["resources": Self.list], project: ["mem": .string("16GB"), "cpus": .string("8")]),
                16, 8
            ),
            (
                "user keys, project list",
                layered(user: ["mem": .string("16GB"), "cpus": .string("8")], project: ["resources": Self.list]),
                4, 1
            ),
            (
                "both in one layer: the key",
                layered(user: [:], project: ["resources": Self.list, "mem": .string("16GB")]),
                16, 1
            ),
        ]
        for (name, configuration, memory, cpus) in table {
            var model = ResourceModel()
            model.fill(configuration: configuration, listInEffect: true)
            let resources = try model.resolved()
            #expect(resources.memoryBytes == memory * Self.gib, "\(name)")
            #expect(resources.cpus == cpus, "\(name)")
            #expect(resources.raw == ["place=scatter"], "\(name): the list's other entries still apply")
        }
    }

    @Test("defaults.resources is not read when a higher source has -l entries; the command line beats every layer")
    func listNotInEffect() throws {
        let configuration = layered(user: ["mem": .string("16GB")], project: ["resources": Self.list])
        var model = commandLine(raw: ["walltime=1:00:00"])
        model.fill(configuration: configuration, listInEffect: false)
        let resources = try model.resolved()
        #expect(resources.memoryBytes == 16 * Self.gib && resources.cpus == nil && resources.raw.isEmpty)
        var cli = commandLine(raw: ["mem=2GB"])
        cli.fill(configuration: configuration, listInEffect: true)
        #expect(try cli.resolved().memoryBytes == 2 * Self.gib)
    }

    @Test("a bad defaults.cpus keeps its message")
    func badConfiguredCount() {
        var model = ResourceModel()
        model.fill(configuration: layered(user: [:], project: ["cpus": .string("lots")]), listInEffect: true)
        #expect(
            throws: ClientError(
                "defaults.cpus is 'lots', not a positive whole number",
                hint: "fix it with `qxub config set defaults.cpus 4`",
                exitCode: 64
            )
        ) { try model.resolved() }
    }
}
