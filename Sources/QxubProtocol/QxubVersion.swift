/// The software version shared by `qxub` and `qxub-agent` (they are released together).
package enum QxubVersion {
    package static let current = "0.1.0"
}
