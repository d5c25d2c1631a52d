import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Files written whole: a record created only where none is, never replacing one another writer made.
@Suite("FileSystem: records written whole")
struct FileSystemTests {
    static func directory() throws -> String {
        var template = Array("/tmp/qxub-fs-tests-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SystemError("mkdtemp", "/tmp")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    @Test("createAtomically writes a record that is not there, mode 0600, and leaves no temporary file")
    func createsWhenAbsent() throws {
        let directory = try Self.directory()
        #expect(try FileSystem.createAtomically(directory + "/exit", "3 1700000000 keeper\n"))
        #expect(FileSystem.readText(directory + "/exit") == "3 1700000000 keeper\n")
        var info = stat()
        #expect(stat(directory + "/exit", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(FileSystem.listDirectory(directory) == ["exit"])
    }

    @Test("createAtomically leaves a record another writer made and says so")
    func keepsAnExistingRecord() throws {
        let directory = try Self.directory()
        try FileSystem.writeAtomically(directory + "/exit", "0 1700000000\n")
        #expect(try !FileSystem.createAtomically(directory + "/exit", "129 1700000001 keeper\n"))
        #expect(FileSystem.readText(directory + "/exit") == "0 1700000000\n")
        #expect(FileSystem.listDirectory(directory) == ["exit"])
    }
}
