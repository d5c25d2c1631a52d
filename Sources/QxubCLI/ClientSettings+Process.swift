import QxubClient
import QxubSystem

extension ClientSettings {
    /// The settings of this process's environment: the one place the client's `QXUB_*` settings are read;
    /// everything below takes the value.
    static func fromProcess() -> ClientSettings {
        ClientSettings(environment: Environment.get)
    }
}
