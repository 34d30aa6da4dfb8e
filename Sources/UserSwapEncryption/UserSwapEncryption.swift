// The encryption tier lives in the engine (`UserSwap`: `EncryptedTier`, `SwapSpace.Encryption`),
// because every space seals its devices by default and the engine's default cannot name a type
// of a module above it. This module stays so that `import UserSwapEncryption` keeps working.
@_exported import UserSwap
