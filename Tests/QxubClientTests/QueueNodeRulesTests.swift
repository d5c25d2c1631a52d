import QxubClient
import QxubSystem
import Testing

@Suite("Node sizes: whole nodes above one, memory and jobfs per node, memory charged as NCI does")
struct QueueNodeRulesTests {
    static let gadi = QueueSelectorTests.gadi
    static let gib: UInt64 = 1 << 30

    static func adjust(
        _ queue: String,
        _ request: QueueSelector.Request,
        in definition: PlatformDefinition = gadi
    )
        throws(ClientError) -> QueueSelector.Decision
    {
        try QueueSelector.adjust(request, queue: queue, in: definition, auto: false, cpusExplicit: true)
    }

    @Test(
        "requests PBS runs: multi-node jobs of whole nodes, memory within each node",
        arguments: [
            ("normal", QueueSelector.Request(cpus: 96, memory: 380 * gib), UInt32(2)),
            ("normal", QueueSelector.Request(cpus: 48, memory: 190 * gib), 1),
            ("normal", QueueSelector.Request(cpus: 1, memory: 190 * gib), 1),
            ("normal", QueueSelector.Request(cpus: 30), 1),
            ("normalsr", QueueSelector.Request(cpus: 208, memory: 1000 * gib), 2),
            ("normalsr", QueueSelector.Request(cpus: 50), 1),
            ("normalbw", QueueSelector.Request(cpus: 56, memory: 512 * gib), 2),
            ("normal", QueueSelector.Request(cpus: 96, localDisk: 800 * gib), 2),
        ]
    )
    func accepted(queue: String, request: QueueSelector.Request, nodes: UInt32) throws {
        let decision = try Self.adjust(queue, request)
        #expect(decision.cpus == request.cpus && decision.warnings.isEmpty)
        #expect(try #require(Self.gadi.queue(queue)).nodes(cpus: request.cpus ?? 1) == nodes)
    }

    @Test(
        "requests PBS refuses: the reason and the nearest request the queue takes",
        arguments: [
            (
                "normal", QueueSelector.Request(cpus: 50),
                "50 CPUs on queue 'normal' span more than one node: ask for 48 or 96"
            ),
            (
                "normalsr", QueueSelector.Request(cpus: 105),
                "105 CPUs on queue 'normalsr' span more than one node: ask for 104 or 208"
            ),
            (
                "express", QueueSelector.Request(cpus: 3190),
                "3190 CPUs on queue 'express' span more than one node: ask for 3168"
            ),
            (
                "normal", QueueSelector.Request(cpus: 48, memory: 380 * gib),
                "380GB of memory on queue 'normal' exceed 190GB per node for 48 CPUs on 1 node: ask for at most 190GB, or 96 CPUs (2 nodes)"
            ),
            (
                "normal", QueueSelector.Request(cpus: 96, memory: 500 * gib),
                "500GB of memory on queue 'normal' exceed 190GB per node for 96 CPUs on 2 nodes: ask for at most 380GB, or 144 CPUs (3 nodes)"
            ),
            (
                "normalsr", QueueSelector.Request(cpus: 208, memory: 1200 * gib),
                "1200GB of memory on queue 'normalsr' exceed 500GB per node for 208 CPUs on 2 nodes: ask for at most 1000GB, or 312 CPUs (3 nodes)"
            ),
            (
                "hugemem", QueueSelector.Request(cpus: 48, memory: 8000 * gib),
                "8000GB of memory on queue 'hugemem' exceed 1470GB per node for 48 CPUs on 1 node: ask for at most 1470GB"
            ),
            (
                "normal", QueueSelector.Request(cpus: 48, localDisk: 500 * gib),
                "500GB of jobfs exceed the limit of 400GB on queue 'normal': ask for at most 400GB"
            ),
        ]
    )
    func refused(queue: String, request: QueueSelector.Request, message: String) throws {
        let error = try #require(throws: ClientError.self) { try Self.adjust(queue, request) }
        #expect(error.message == message)
        #expect(error.exitCode == ExitCodes.usage)
    }

    @Test("every limit a request breaks is reported, in order, for qxub validate")
    func allViolations() throws {
        let review = QueueSelector.review(
            .init(cpus: 50, memory: 600 * Self.gib, walltime: 60 * 3600),
            queue: "normal",
            in: Self.gadi,
            auto: false,
            cpusExplicit: true
        )
        #expect(
            review.violations.map { $0.message(review.label) } == [
                "50 CPUs on queue 'normal' span more than one node: ask for 48 or 96",
                "600GB of memory on queue 'normal' exceed 190GB per node for 50 CPUs on 2 nodes: ask for at most 380GB, or 192 CPUs (4 nodes)",
                "a walltime of 60:00:00 exceeds the maximum of 48:00:00 for 50 CPUs on queue 'normal': ask for at most 48:00:00",
            ]
        )
    }

    /// (queue, cpus, memory in GB, walltime seconds, service units)
    static let charges: [(String, UInt32, UInt64?, UInt64, Double)] = [
        // NCI's own example (Job Costs): gpuvolta, 12 CPUs, 380GB, 5 h: 12 x max(1, 48/382 x 380/12) x 5 x 3.
        ("gpuvolta", 12, 380, 5 * 3600, 716.23),
        ("gpuvolta", 12, 90, 5 * 3600, 180),
        ("normal", 8, 16, 5 * 3600, 80),
        ("normal", 48, 190, 3600, 96),
        ("normal", 48, nil, 2 * 3600, 192),
        ("normalsr", 1, 300, 1800, 62.4),
        ("hugemem", 28, 250, 48 * 3600, 4032),
        ("express", 8, 16, 5 * 3600, 240),
    ]

    @Test("service units: max(cpus, memory / (memory_per_node / cpus_per_node)) x hours x rate", arguments: charges)
    func charge(queue: String, cpus: UInt32, gigabytes: UInt64?, seconds: UInt64, units: Double) throws {
        let charged = try #require(Self.gadi.queue(queue)).serviceUnits(
            cpus: cpus,
            memory: gigabytes.map { $0 * Self.gib },
            seconds: seconds
        )
        #expect(abs(charged - units) < 0.01, "\(charged)")
    }

    @Test("a definition without node sizes (the Python qxub's) checks every limit per job, as before")
    func pythonFormat() throws {
        let file = "/tmp/qxub-python-definition-\(Int.random(in: 0..<1_000_000)).yaml"
        defer { _ = try? runCollectingOutput(["rm", "-f", file]) }
        try FileSystem.writeAtomically(
            file,
            """
            platform:
              name: old
              queues:
                - name: normal
                  su_billing_rate: 2.0
                  limits: {max_cpus: 20736, max_memory: 190GB}
            """
        )
        let old = try #require(try PlatformDefinition.load(file).first)
        let normal = try #require(old.queue("normal"))
        #expect(normal.cpusPerNode == nil && normal.memoryPerNode == nil && normal.nodes(cpus: 96) == 1)
        #expect(try Self.adjust("normal", .init(cpus: 50), in: old).cpus == 50)
        #expect(normal.serviceUnits(cpus: 1, memory: 190 * Self.gib, seconds: 3600) == 2)
        #expect(
            throws: ClientError(
                "380GB of memory exceed the limit of 190GB on queue 'normal': ask for at most 190GB",
                hint: "no queue of old fits this request: ask for less",
                exitCode: ExitCodes.usage
            )
        ) { try Self.adjust("normal", .init(cpus: 96, memory: 380 * Self.gib), in: old) }
    }

    @Test("a node size that is not a positive whole number is refused when the definition loads")
    func badNodeSize() throws {
        let file = "/tmp/qxub-bad-node-\(Int.random(in: 0..<1_000_000)).yaml"
        defer { _ = try? runCollectingOutput(["rm", "-f", file]) }
        try FileSystem.writeAtomically(
            file,
            "platform:\n  name: bad\n  queues:\n    - name: q\n      limits: {cpus_per_node: 0}\n"
        )
        #expect(
            throws: ClientError(
                "\(file): queue q: limits.cpus_per_node is '0', not a positive whole number",
                exitCode: ExitCodes.usage
            )
        ) { try PlatformDefinition.load(file) }
    }
}
