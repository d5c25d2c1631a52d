// qxub: thin executable; everything lives in QxubCLI. Installed also as `qx` (= `qxub exec`).
import QxubCLI

Entry.main(CommandLine.arguments)
