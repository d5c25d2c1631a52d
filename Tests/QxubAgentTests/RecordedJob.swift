import QxubAgent
import QxubSystem

/// A job put on record by hand (no process, no scheduler): its directory with `meta` naming `backend`, the
/// index link for `jobID`, and the given records (`started`, `exit`, `pid`, …). Returns the directory.
@discardableResult
func recordJob(root: String, jobID: String, backend: String, records: [String: String]) throws -> String {
    let store = JobStore(root: root)
    let directory = try store.createJobDirectory()
    try FileSystem.writeAtomically(directory + "/meta", "backend=\(backend)\n")
    try store.link(jobID: jobID, to: directory)
    for (name, text) in records { try FileSystem.writeAtomically(directory + "/" + name, text) }
    return directory
}
