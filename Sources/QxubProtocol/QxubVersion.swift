/// The software version shared by `qxub` and `qxub-agent` (they are released together).
public enum QxubVersion {
    public static let current = "0.1.0"
}
