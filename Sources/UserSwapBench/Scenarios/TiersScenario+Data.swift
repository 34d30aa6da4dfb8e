import Foundation
import UserSwap

/// What the pages of `bench tiers` hold: a compressed tier's results depend on nothing else.
///
/// Each kind but `zero` and `pattern` is made of 256 template pages generated once from the
/// seed; page p is template `p × 157 mod 256` with its first 16 bytes replaced by (p, version),
/// so that every page differs, a page read from the wrong slot or an older write shows, and
/// filling or checking a page costs a copy or a compare. A compressor only sees one page at a
/// time, so sharing templates between pages changes no ratio.
enum TierData: String, CaseIterable, Sendable {
    /// English-like prose: 560 common words drawn by Zipf's law (exponent 1.2), capitals,
    /// punctuation, a number now and then, line breaks. Calibrated on real prose cut in 4 KiB
    /// pages (the GPL, this README): LZ4 about 1.4–1.5, Zstandard-1 about 2–2.3.
    case text
    /// Integer arrays: 64-bit random walks (ids, counters, timestamps) — small deltas, so the
    /// high bytes repeat from word to word.
    case numeric
    /// Floating-point arrays: 64-bit doubles with random mantissas (measurements, weights),
    /// which no byte-oriented compressor shrinks much.
    case floats
    /// Random bytes: incompressible, every page a reject.
    case random
    /// All-zero pages: same-filled, kept as one word.
    case zero
    /// The workloads' own pages (`PagePattern`: word i = base + i × G), what `userswap run`
    /// and the workload benchmarks swap: an arithmetic progression of 64-bit words, which
    /// byte-oriented compressors do not shrink.
    case pattern
    /// A quarter each of zero, text, numeric and random pages (by page number).
    case mixed

    static let templateCount = 256

    /// The 256 template pages of `kind`, 1 MiB in all (empty for kinds without templates).
    static func templates(_ kind: TierData, seed: UInt64) -> [UInt8] {
        var random = Xoshiro256StarStar(seed: seed ^ 0x7469_6572_7364_6174)  // "tiersdat"
        var bytes = [UInt8](repeating: 0, count: templateCount * SwapPage.size)
        switch kind {
        case .text:
            for t in 0..<templateCount { writeText(&bytes, from: t * SwapPage.size, random: &random) }
        case .numeric:
            bytes.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: Int64.self)
                for t in 0..<templateCount {
                    // Four walks of 128 words per page, each from its own level and step.
                    for walk in 0..<4 {
                        var value = Int64(random.next(below: 1 << 32))
                        let step = 1 + random.next(below: 200)
                        for i in 0..<128 {
                            value += Int64(random.next(below: 2 * step + 1) - step)
                            words[t * 512 + walk * 128 + i] = value
                        }
                    }
                }
            }
        case .floats:
            bytes.withUnsafeMutableBytes { raw in
                let values = raw.bindMemory(to: Double.self)
                for i in values.indices { values[i] = 1000 * random.nextUnit() }
            }
        case .random:
            bytes.withUnsafeMutableBytes { raw in
                for i in raw.bindMemory(to: UInt64.self).indices { raw.storeBytes(of: random.next(), toByteOffset: i * 8, as: UInt64.self) }
            }
        case .zero, .pattern, .mixed:
            return []
        }
        return bytes
    }

    /// Writes prose into the page at `start`.
    private static func writeText(_ bytes: inout [UInt8], from start: Int, random: inout Xoshiro256StarStar) {
        var i = start
        let end = start + SwapPage.size
        var startOfSentence = true
        func put(_ b: UInt8) {
            if i < end {
                bytes[i] = b
                i += 1
            }
        }
        while i < end {
            var word = Array(vocabulary[wordRank(&random)].utf8)
            if random.next(below: 100) == 0 { word = Array(String(random.next(below: 100_000)).utf8) }
            if startOfSentence, let first = word.first, first >= 0x61, first <= 0x7A { word[0] = first - 0x20 }
            startOfSentence = false
            for b in word { put(b) }
            switch random.next(below: 20) {
            case 0, 1:
                put(0x2E)
                startOfSentence = true  // "."
                if random.next(below: 5) == 0 { put(0x0A) } else { put(0x20) }
            case 2:
                put(0x2C)
                put(0x20)  // ", "
            default: put(0x20)
            }
        }
    }

    /// A vocabulary rank drawn by Zipf's law, P(r) ∝ (r + 1)^-1.2, by binary search in the
    /// cumulative weights.
    private static func wordRank(_ random: inout Xoshiro256StarStar) -> Int {
        let u = random.nextUnit() * cumulativeWeights.last!
        var low = 0, high = cumulativeWeights.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulativeWeights[mid] < u { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private static let cumulativeWeights: [Double] = {
        var total = 0.0
        return vocabulary.indices.map { rank in
            total += pow(Double(rank + 1), -1.2)
            return total
        }
    }()

    static let vocabulary: [String] = """
        the of and to a in is it you that he was for on are with as I his they be at one have this \
        from or had by hot word but what some we can out other were all there when up use your how \
        said an each she which do their time if will way about many then them write would like so \
        these her long make thing see him two has look more day could go come did number sound no \
        most people my over know water than call first who may down side been now find any new \
        work part take get place made live where after back little only round man year came show \
        every good me give our under name very through just form sentence great think say help low \
        line differ turn cause much mean before move right boy old too same tell does set three \
        want air well also play small end put home read hand port large spell add even land here \
        must big high such follow act why ask men change went light kind off need house picture \
        try us again animal point mother world near build self earth father head stand own page \
        should country found answer school grow study still learn plant cover food sun four \
        between state keep eye never last let thought city tree cross farm hard start might story \
        saw far sea draw left late run while press close night real life few north open seem \
        together next white children begin got walk example ease paper group always music those \
        both mark often letter until mile river car feet care second book carry took science eat \
        room friend began idea fish mountain stop once base hear horse cut sure watch color face \
        wood main enough plain girl usual young ready above ever red list though feel talk bird \
        soon body dog family direct pose leave song measure door product black short numeral \
        class wind question happen complete ship area half rock order fire south problem piece \
        told knew pass since top whole king space heard best hour better true during hundred five \
        remember step early hold west ground interest reach fast verb sing listen six table travel \
        less morning ten simple several vowel toward war lay against pattern slow center love \
        person money serve appear road map rain rule govern pull cold notice voice unit power town \
        fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest \
        correct able pound done beauty drive stood contain front teach week final gave green oh \
        quick develop ocean warm free minute strong special mind behind clear tail produce fact
        """.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }

    /// The kind of page `page` holds (only `mixed` varies by page).
    func kind(ofPage page: Int) -> TierData {
        guard self == .mixed else { return self }
        return [TierData.zero, .text, .numeric, .random][page & 3]
    }
}

/// The pages of one run: fills and checks page p, version v (v ≥ 1) of a `TierData` kind.
struct TierPageSource: Sendable {
    let data: TierData
    let seed: UInt64
    /// Templates by kind (for `mixed`, of each kind it mixes).
    private let templates: [TierData: [UInt8]]

    init(_ data: TierData, seed: UInt64) {
        self.data = data
        self.seed = seed
        var templates: [TierData: [UInt8]] = [:]
        for kind in data == .mixed ? [.text, .numeric, .random] : [data] where kind != .zero && kind != .pattern {
            templates[kind] = TierData.templates(kind, seed: seed)
        }
        self.templates = templates
    }

    @inline(__always)
    private func template(_ page: Int) -> Int { (page &* 157) & (TierData.templateCount - 1) }

    func fill(_ bytes: UnsafeMutableRawBufferPointer, page: Int, version: UInt32) {
        switch data.kind(ofPage: page) {
        case .zero:
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
        case .pattern:
            PagePattern.fill(bytes, page: page, version: version, seed: seed)
        case let kind:
            templates[kind]!.withUnsafeBytes { all in
                bytes.copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: all[template(page) * SwapPage.size..<(template(page) + 1) * SwapPage.size]))
            }
            bytes.storeBytes(of: UInt64(page), toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: UInt64(version), toByteOffset: 8, as: UInt64.self)
        }
    }

    func matches(_ bytes: UnsafeRawBufferPointer, page: Int, version: UInt32) -> Bool {
        switch data.kind(ofPage: page) {
        case .zero:
            var bits: UInt64 = 0
            for offset in stride(from: 0, to: bytes.count, by: 8) { bits |= bytes.load(fromByteOffset: offset, as: UInt64.self) }
            return bits == 0
        case .pattern:
            return PagePattern.check(bytes, page: page, version: version, seed: seed)
        case let kind:
            guard bytes.load(fromByteOffset: 0, as: UInt64.self) == UInt64(page),
                bytes.load(fromByteOffset: 8, as: UInt64.self) == UInt64(version)
            else { return false }
            return templates[kind]!.withUnsafeBytes { all in
                let t = UnsafeRawBufferPointer(rebasing: all[template(page) * SwapPage.size + 16..<(template(page) + 1) * SwapPage.size])
                return memcmp(bytes.baseAddress! + 16, t.baseAddress!, t.count) == 0
            }
        }
    }
}
