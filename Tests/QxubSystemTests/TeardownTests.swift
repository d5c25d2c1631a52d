import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Teardown as data: the steps asked for, then SIGKILL, whatever they were.
@Suite("Teardown: the sequence always ends in SIGKILL")
struct TeardownTests {
    static func steps(_ plan: [TeardownStep]) -> [TeardownStep] {
        var teardown = Teardown(plan)
        var steps: [TeardownStep] = []
        while let step = teardown.next() { steps.append(step) }
        return steps
    }

    @Test(
        "steps performed for each plan",
        arguments: [
            ([], [.signal(SIGKILL)]),
            (TeardownStep.gentle, [.signal(SIGTERM), .wait(seconds: 2), .signal(SIGKILL)]),
            ([.signal(SIGKILL)], [.signal(SIGKILL)]),
            ([.signal(SIGINT), .wait(seconds: 1)], [.signal(SIGINT), .wait(seconds: 1), .signal(SIGKILL)]),
            ([.signal(SIGKILL), .wait(seconds: 5)], [.signal(SIGKILL)]),
            (
                [.signal(SIGKILL), .wait(seconds: 1), .signal(SIGTERM)],
                [.signal(SIGKILL), .wait(seconds: 1), .signal(SIGTERM), .signal(SIGKILL)]
            ),
        ] as [([TeardownStep], [TeardownStep])]
    )
    func sequence(plan: [TeardownStep], expected: [TeardownStep]) {
        #expect(Self.steps(plan) == expected)
    }
}
