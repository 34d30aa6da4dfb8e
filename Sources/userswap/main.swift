import Glibc
import UserSwapCLI

exit(CommandLineTool.main(Array(CommandLine.arguments.dropFirst())))
