// swift-tools-version:6.0
// qxub: run commands as batch jobs on HPC clusters and watch them as if they ran in your terminal.
//
// The layout is the architecture (arrows point one way):
//
//   qxub (exe) -> QxubCLI -> QxubClient -> QxubProtocol -> CZlib
//                                    \---> QxubSystem
//   qxub-agent (exe) -> QxubAgent -> QxubScheduler -> QxubProtocol
//                                \--> QxubSystem
//
// The static agent links only the Swift runtime, Glibc, zlib and our own Foundation-free modules.
import PackageDescription

let package = Package(
    name: "qxub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "qxub", targets: ["qxub"]),
        .executable(name: "qxub-agent", targets: ["qxub-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev).
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        // Frames, codec, compression, messages, version negotiation. No I/O, no Foundation.
        .target(name: "QxubProtocol", dependencies: ["CZlib"]),
        // Thin POSIX layer (file descriptors, poll loop, processes, clocks) shared by agent and client. No Foundation.
        .target(name: "QxubSystem"),
        // Job spec -> scheduler submission, status parsing, exit semantics. No Foundation.
        .target(name: "QxubScheduler", dependencies: ["QxubProtocol", "QxubSystem"]),
        // The agent's logic as a library: session, job supervision, output tailing.
        .target(name: "QxubAgent", dependencies: ["QxubProtocol", "QxubScheduler", "QxubSystem"]),
        .executableTarget(
            name: "qxub-agent",
            dependencies: ["QxubAgent"],
            // Swift 5 mode only for this one file of top-level code: see the comment in main.swift.
            swiftSettings: [.swiftLanguageMode(.v5)],
            // Static in every build, not only install/build-agent.sh's: a login node may have an older glibc
            // than this machine, and `swift build -c release` must not leave a dynamic agent to be copied there.
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(platforms: [.linux]))]
        ),
        // Client side: agent launcher (local child or ssh), agent client, configuration.
        .target(
            name: "QxubClient",
            dependencies: [
                "QxubProtocol", "QxubSystem",
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "QxubCLI",
            dependencies: [
                "QxubClient",
                "QxubScheduler",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(name: "qxub", dependencies: ["QxubCLI"]),
        // Benchmarks print figures against a floor measured in the same run; never part of the tests.
        .executableTarget(name: "qxub-bench", dependencies: ["QxubProtocol", "QxubClient", "QxubSystem"]),

        // What several test targets share (a seeded generator); linked into no product.
        .target(name: "QxubTestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "QxubProtocolTests", dependencies: ["QxubProtocol", "QxubTestSupport"]),
        .testTarget(name: "QxubSystemTests", dependencies: ["QxubSystem", "QxubTestSupport"]),
        .testTarget(
            name: "QxubSchedulerTests",
            dependencies: ["QxubScheduler", "QxubProtocol", "QxubSystem"],
            exclude: ["Golden"]
        ),
        .testTarget(
            name: "QxubAgentTests",
            dependencies: ["QxubAgent", "QxubProtocol", "QxubSystem", "QxubTestSupport"]
        ),
        .testTarget(name: "QxubClientTests", dependencies: ["QxubClient", "QxubProtocol"]),
        .testTarget(
            name: "IntegrationTests",
            // QxubAgent for the terminal keeper's wire (KeeperConnection) against the built agent.
            dependencies: ["QxubAgent", "QxubClient", "QxubProtocol", "QxubSystem", "QxubTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
