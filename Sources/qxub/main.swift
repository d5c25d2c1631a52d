// qxub: thin executable; everything lives in QxubCLI.
import QxubCLI

Entry.main(Array(CommandLine.arguments.dropFirst()))
