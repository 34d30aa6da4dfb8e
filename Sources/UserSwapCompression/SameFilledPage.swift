import UserSwap

/// Pages whose 512 words are all equal (zero pages above all): kept as that one word, without
/// compression, as zram does (`zram_same_page_read`/`page_same_filled`) and zswap did until the
/// swap layer learned to skip zero pages itself.
enum SameFilledPage {
    /// The word that fills `page` (4 KiB), or nil if two words differ. Most pages differ within
    /// their first few words, so the check costs little on pages that are not same-filled.
    @inline(__always)
    static func word(of page: UnsafeRawBufferPointer) -> UInt64? {
        assert(page.count == SwapPage.size)
        let base = page.baseAddress!
        let first = base.loadUnaligned(as: UInt64.self)
        // The last word first: a cheap early exit for pages with a header and a tail.
        guard base.loadUnaligned(fromByteOffset: SwapPage.size - 8, as: UInt64.self) == first else { return nil }
        var differences: UInt64 = 0
        // In chunks of 64 bytes with one branch each: the compiler vectorizes the inner loop.
        var offset = 8
        while offset < SwapPage.size {
            let end = min(offset + 64, SwapPage.size)
            var o = offset
            while o < end {
                differences |= base.loadUnaligned(fromByteOffset: o, as: UInt64.self) ^ first
                o += 8
            }
            if differences != 0 { return nil }
            offset = end
        }
        return first
    }

    /// Fills `page` (4 KiB) with `word`.
    @inline(__always)
    static func fill(_ page: UnsafeMutableRawBufferPointer, with word: UInt64) {
        assert(page.count == SwapPage.size)
        page.baseAddress!.initializeMemory(as: UInt64.self, repeating: word, count: SwapPage.size / 8)
    }
}
