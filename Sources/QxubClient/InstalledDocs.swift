import QxubSystem

/// What hints point a user of the installed qxub at: files install.sh puts beside the binary, `man qxub` and
/// `--help`, never the repository's docs/ (which an installed qxub does not have).
package enum InstalledDocs {
    /// Where install.sh puts the shipped platform definitions: PREFIX/share/qxub/platforms, PREFIX being the
    /// directory above the one qxub runs from.
    package static var platformsDirectory: String {
        FileSystem.directoryName(FileSystem.directoryName(AgentLocator.executablePath())) + "/share/qxub/platforms"
    }

    /// How to get a platform definition: a copy of a shipped one when they are installed, else written by hand.
    package static var definitionHint: String {
        let shipped = platformsDirectory
        guard FileSystem.exists(shipped + "/nci_gadi.yaml") else {
            return "put a platform definition into ~/.config/qxub/platforms/ (install.sh installs NCI Gadi's "
                + "nci_gadi.yaml in PREFIX/share/qxub/platforms; `qxub help platform`)"
        }
        return "copy \(shipped)/nci_gadi.yaml to ~/.config/qxub/platforms/ and adapt it (`qxub help platform`)"
    }
}
