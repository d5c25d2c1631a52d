import QxubClient
import QxubSystem
import Testing

@Suite("Queue selection and queue rules (the shipped NCI Gadi definition)")
struct QueueSelectorTests {
    static let gadi: PlatformDefinition = {
        var path = #filePath
        for _ in 0..<3 { path = FileSystem.directoryName(path) }
        return try! PlatformDefinition.load(path + "/docs/platforms/nci_gadi.yaml")[0]
    }()

    static let gib: UInt64 = 1 << 30

    // The Python qxub's observed table (inventory 6.3), except the small-job case, decided on purpose:
    // a small job goes to `normal` (the default rule), not `normalsl` (which Python reached by skipping it).
    static let cases: [(String, QueueSelector.Request, String)] = [
        ("small job", .init(), "normal"),
        ("4 cpus", .init(cpus: 4), "normal"),
        ("1200GB", .init(memory: 1200 * gib), "hugemem"),
        ("1500GB", .init(memory: 1500 * gib), "megamem"),
        ("600GB", .init(memory: 600 * gib), "hugemem"),
        ("200GB", .init(memory: 200 * gib), "normalsr"),
        ("1 GPU", .init(gpus: 1), "gpuvolta"),
        ("4 A100", .init(gpus: 4, gpuType: "a100"), "dgxa100"),
        ("internet", .init(internet: true), "copyq"),
        // A rule's queue that cannot run the request gives way: 208 CPUs are more than hugemem's 192.
        ("208 cpus 1000GB", .init(cpus: 208, memory: 1000 * gib), "normalsr"),
        ("96 cpus 380GB", .init(cpus: 96, memory: 380 * gib), "normalsr"),
        // 50 CPUs span two of normal's 48-CPU nodes unevenly; one of normalsr's 104-CPU nodes holds them.
        ("50 cpus", .init(cpus: 50), "normalsr"),
        ("96 cpus", .init(cpus: 96), "normal"),
    ]

    @Test(
        "a job's queue rules: its platform's own definition file, else the definition of its name; never another platform's"
    )
    func chosenDefinition() throws {
        let file = "/tmp/qxub-chosen-\(Int.random(in: 0..<1_000_000)).yaml"
        defer { _ = try? runCollectingOutput(["rm", "-f", file]) }
        try FileSystem.writeAtomically(
            file,
            """
            defaults:
              platform: gadi
            platforms:
              mygadi:
                definition: \(Self.gadi.source)
            """
        )
        let configuration = try Configuration.load(explicit: file)
        let definitions = [Self.gadi]
        #expect(
            PlatformDefinition.chosen(from: definitions, platform: "mygadi", configuration: configuration)?.name
                == "gadi",
            "by its definition: file"
        )
        #expect(
            PlatformDefinition.chosen(from: definitions, platform: "gadi", configuration: configuration)?.name
                == "gadi",
            "by name"
        )
        #expect(
            PlatformDefinition.chosen(from: definitions, platform: "setonix", configuration: configuration) == nil,
            "no other platform's rules"
        )
        #expect(
            PlatformDefinition.chosen(from: definitions, platform: nil, configuration: configuration)?.name == "gadi",
            "defaults.platform"
        )
        #expect(
            PlatformDefinition.chosen(from: definitions, platform: "local", configuration: configuration)?.name
                == "gadi",
            "this machine: defaults.platform"
        )
    }

    @Test("--queue auto", arguments: cases)
    func auto(label: String, request: QueueSelector.Request, queue: String) throws {
        #expect(try QueueSelector.select(request, in: Self.gadi) == queue, "\(label)")
    }

    @Test("GPUs set CPUs from cpus_per_gpu; an explicit odd count is rounded up with a warning")
    func gpus() throws {
        let one = try QueueSelector.adjust(
            .init(gpus: 1),
            queue: "gpuvolta",
            in: Self.gadi,
            auto: true,
            cpusExplicit: false
        )
        #expect(one.cpus == 12 && one.warnings.isEmpty)
        let a100 = try QueueSelector.adjust(
            .init(gpus: 4, gpuType: "a100"),
            queue: "dgxa100",
            in: Self.gadi,
            auto: true,
            cpusExplicit: false
        )
        #expect(a100.cpus == 64)
        let odd = try QueueSelector.adjust(
            .init(cpus: 13, gpus: 1),
            queue: "gpuvolta",
            in: Self.gadi,
            auto: false,
            cpusExplicit: true
        )
        #expect(odd.cpus == 24)
        #expect(
            odd.warnings == [
                "ncpus=13 overridden to ncpus=24 for queue 'gpuvolta' (must be a multiple of 12 (cpus_per_gpu))"
            ]
        )
        let autoOdd = try QueueSelector.adjust(
            .init(cpus: 1, gpus: 1),
            queue: "gpuvolta",
            in: Self.gadi,
            auto: true,
            cpusExplicit: true
        )
        #expect(autoOdd.warnings.first?.contains("auto-selected") == true)
        let exact = try QueueSelector.adjust(
            .init(cpus: 36, gpus: 3),
            queue: "gpuvolta",
            in: Self.gadi,
            auto: false,
            cpusExplicit: true
        )
        #expect(exact.cpus == 36 && exact.warnings.isEmpty)
        let plain = try QueueSelector.adjust(
            .init(cpus: 3),
            queue: "normal",
            in: Self.gadi,
            auto: false,
            cpusExplicit: true
        )
        #expect(plain.cpus == 3 && plain.warnings.isEmpty)
        let unknown = try QueueSelector.adjust(
            .init(cpus: 3),
            queue: "nosuch",
            in: Self.gadi,
            auto: false,
            cpusExplicit: true
        )
        #expect(unknown.cpus == 3)
    }

    @Test("jobfs minimums: raised with a warning, injected silently when absent")
    func jobfsMinimum() throws {
        var definition = Self.gadi
        definition.queues[0].minLocalStorage = 100 * Self.gib
        let low = try QueueSelector.adjust(
            .init(localDisk: 50 * Self.gib),
            queue: "normal",
            in: definition,
            auto: false,
            cpusExplicit: false
        )
        #expect(low.localDisk == 100 * Self.gib && low.warnings.count == 1)
        let high = try QueueSelector.adjust(
            .init(localDisk: 200 * Self.gib),
            queue: "normal",
            in: definition,
            auto: false,
            cpusExplicit: false
        )
        #expect(high.localDisk == 200 * Self.gib && high.warnings.isEmpty)
        let none = try QueueSelector.adjust(.init(), queue: "normal", in: definition, auto: false, cpusExplicit: false)
        #expect(none.localDisk == 100 * Self.gib && none.warnings.isEmpty)
    }

    @Test(
        "limits are checked before submission, naming the limit and queues that fit",
        arguments: [
            (
                "normal", QueueSelector.Request(cpus: 96, walltime: 60 * 3600),
                "a walltime of 60:00:00 exceeds the maximum of 48:00:00 for 96 CPUs on queue 'normal': ask for at most 48:00:00",
                "no queue of gadi fits this request: ask for less"
            ),
            (
                "normal", QueueSelector.Request(cpus: 960, walltime: 30 * 3600),
                "a walltime of 30:00:00 exceeds the maximum of 24:00:00 for 960 CPUs on queue 'normal': ask for at most 24:00:00, or 672 CPUs",
                "no queue of gadi fits this request: ask for less"
            ),
            (
                "express", QueueSelector.Request(cpus: 96, walltime: 30 * 3600),
                "a walltime of 30:00:00 exceeds the maximum of 24:00:00 for 96 CPUs on queue 'express': ask for at most 24:00:00",
                "queues that fit: normal, normalsr, megamem (or --queue auto)"
            ),
            (
                "express", QueueSelector.Request(cpus: 4800),
                "4800 CPUs exceed the limit of 3200 on queue 'express': ask for at most 3168 CPUs",
                "queues that fit: normal (or --queue auto)"
            ),
            (
                "normal", QueueSelector.Request(memory: 300 << 30),
                "300GB of memory on queue 'normal' exceed 190GB per node for 1 CPU on 1 node: ask for at most 190GB, or 96 CPUs (2 nodes)",
                "queues that fit: normalsr, expresssr, hugemem, hugemembw, megamembw (or --queue auto)"
            ),
            (
                "copyq", QueueSelector.Request(cpus: 4),
                "4 CPUs exceed the limit of 1 on queue 'copyq': ask for at most 1 CPU",
                "queues that fit: normal, express, normalbw, expressbw, normalsr, expresssr, hugemem, hugemembw, megamem, megamembw (or --queue auto)"
            ),
        ]
    )
    func limits(queue: String, request: QueueSelector.Request, message: String, hint: String) {
        #expect(throws: ClientError(message, hint: hint, exitCode: ExitCodes.usage)) {
            try QueueSelector.adjust(
                request,
                queue: queue,
                in: Self.gadi,
                auto: false,
                cpusExplicit: request.cpus != nil
            )
        }
    }

    @Test("a GPU queue refuses a job without GPUs")
    func gpuQueueNeedsGPUs() {
        let expected = ClientError(
            "the queue needs at least 1 GPU(s) on queue 'gpuvolta'",
            hint: "queues that fit: normal, express, normalsr, expresssr, hugemem, megamem (or --queue auto)",
            exitCode: ExitCodes.usage
        )
        #expect(throws: expected) {
            try QueueSelector.adjust(.init(cpus: 48), queue: "gpuvolta", in: Self.gadi, auto: false, cpusExplicit: true)
        }
    }

    @Test("an unknown GPU type names the available ones")
    func unknownGPU() {
        let expected = ClientError(
            "unknown GPU type 'h100' on gadi",
            hint: "available types: a100, v100",
            exitCode: ExitCodes.usage
        )
        #expect(throws: expected) {
            try QueueSelector.select(.init(gpus: 1, gpuType: "h100"), in: Self.gadi)
        }
    }
}
