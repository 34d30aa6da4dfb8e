import UserSwap

extension SwapSpace.Encryption {
    /// Every page a space writes to any of its devices is sealed with XChaCha20-Poly1305
    /// (`EncryptedTier`) under one random key made for that space when it is created, held only
    /// in memory (locked, read-only, wiped when the space's last device goes), with a fresh
    /// nonce per write of a slot. A page that fails authentication is a `SwapError(.ioError)`,
    /// never returned. Each device is wrapped as given: for a compressed tier, seal below it by
    /// hand instead (`CompressedTier(lower: EncryptedTier(lower: file))`), as a pool handed
    /// sealed pages compresses nothing.
    public static var randomKey: Self {
        Self(name: "randomKey") { () throws(SwapError) -> SwapSpace.Encryption.Sealer in
            let key = try _PageKey()
            return { (lower: any SwapBackend) throws(SwapError) -> any SwapBackend in
                try EncryptedTier(lower: lower, key: key)
            }
        }
    }
}
