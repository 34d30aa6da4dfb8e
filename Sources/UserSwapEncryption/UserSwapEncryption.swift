/// Encrypted pages at rest: every page sealed with an AEAD from libsodium before it reaches a
/// device or remote store.
public enum UserSwapEncryption {}
