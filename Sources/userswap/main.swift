import UserSwapCLI
import Glibc

exit(CommandLineTool.main(Array(CommandLine.arguments.dropFirst())))
