/// Text from outside (a swap header's label, a path) made safe to print on a terminal: control
/// characters and other non-printables become visible escapes, so that bytes someone else wrote
/// into a file cannot move the cursor, retitle the window or rewrite what was printed before.
package enum PrintableText {
    /// `text` with every scalar a terminal would act on or hide shown as an escape: `\n`, `\r`,
    /// `\t`, `\\`, and `\u{XX}` for the other C0 and C1 controls, DEL, format characters (the
    /// bidirectional overrides among them), line and paragraph separators, private-use, surrogate
    /// and unassigned code points. Everything else, accented and non-Latin letters included,
    /// passes unchanged.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isPrintable(scalar) {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                }
            }
        }
        return out
    }

    /// Whether `scalar` shows as itself: not a control, format, separator (other than the
    /// space), private-use, surrogate or unassigned code point.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
            false
        case .spaceSeparator:
            scalar == " "
        default:
            true
        }
    }
}
