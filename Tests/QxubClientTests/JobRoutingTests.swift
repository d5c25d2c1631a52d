import QxubClient
import Testing

@Suite("Which platform to ask about each job id")
struct JobRoutingTests {
    @Test(
        "an explicit --platform wins; else the history's platform; else the default (nil); one group per platform",
        arguments: [
            (
                ["1.gadi", "local-a", "2.gadi", "nosuch"], nil as String?,
                [
                    JobRouting.Group(platform: "gadi", jobIDs: ["1.gadi", "2.gadi"]),
                    JobRouting.Group(platform: "local", jobIDs: ["local-a"]),
                    JobRouting.Group(platform: nil, jobIDs: ["nosuch"]),
                ]
            ),
            (
                ["1.gadi", "local-a", "nosuch"], "setonix",
                [JobRouting.Group(platform: "setonix", jobIDs: ["1.gadi", "local-a", "nosuch"])]
            ),
            ([], nil, []),
        ]
    )
    func groups(ids: [String], explicit: String?, expected: [JobRouting.Group]) {
        let recorded = ["1.gadi": "gadi", "2.gadi": "gadi", "local-a": "local"]
        #expect(JobRouting(ids, explicit: explicit, recorded: recorded).groups == expected)
    }
}
