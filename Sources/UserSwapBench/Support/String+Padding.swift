extension String {
    /// The string with spaces after it up to `width` characters, for columns in help and reports.
    package func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
