import QxubProtocol
import Testing

@Suite("Array ranges and subjob ids")
struct ArrayRangeTests {
    @Test(
        "ranges PBS and Slurm accept give their indices; anything else is nil",
        arguments: [
            ("1-3", [1, 2, 3]), ("0-6:3", [0, 3, 6]), ("1,3,5-6", [1, 3, 5, 6]), ("3,1,3", [1, 3]),
            ("1-4%2", [1, 2, 3, 4]), ("7", [7]),
            ("", nil), ("1-", nil), ("3-1", nil), ("-1", nil), ("1-3:0", nil), ("a-b", nil), ("1-3x", nil),
            ("1-3%0", nil), ("0-10000", nil), ("1,,2", nil),
        ] as [(String, [Int]?)]
    )
    func indices(text: String, indices: [Int]?) {
        #expect(ArrayRange(text)?.indices == indices)
    }

    @Test(
        "a subjob's id from its array's, and back",
        arguments: [
            ("1234[].pbs", 3, "1234[3].pbs"), ("1234[]", 10, "1234[10]"), ("local-0a1b[]", 2, "local-0a1b[2]"),
            ("1234", 3, "1234_3"),
        ]
    )
    func subjob(arrayID: String, index: Int, subjobID: String) throws {
        #expect(ArrayRange.subjobID(of: arrayID, index: index) == subjobID)
        let split = try #require(ArrayRange.split(subjobID: subjobID))
        #expect(split.arrayID == arrayID && split.index == index)
    }

    @Test("ids that name no subjob", arguments: ["1234.pbs", "1234[].pbs", "local-0a1b", "a_3", "12_x"])
    func notSubjobs(id: String) {
        #expect(ArrayRange.split(subjobID: id) == nil)
    }
}
