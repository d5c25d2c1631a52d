// Small string helpers shared by agent and client, written without Foundation or _StringProcessing.

extension String {
    /// Without leading and trailing white space (no Foundation).
    package func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }

    /// Replaces every occurrence of `target` (no Foundation).
    package func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, containsText(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(ofLiteral: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

extension StringProtocol {
    /// The first occurrence of `needle`, found byte by byte.
    ///
    /// The standard library's `firstRange(of:)` and `contains(_: some StringProtocol)` live in
    /// _StringProcessing and link its regex parser: about 1 MB of the static agent for a substring search.
    package func firstRange(ofLiteral needle: String) -> Range<Index>? {
        let haystack = utf8
        let pattern = Array(needle.utf8)
        guard let first = pattern.first else { return startIndex..<startIndex }
        var index = haystack.startIndex
        while index != haystack.endIndex {
            if haystack[index] == first {
                var probe = index
                var matched = 0
                while matched < pattern.count, probe != haystack.endIndex, haystack[probe] == pattern[matched] {
                    matched += 1
                    probe = haystack.index(after: probe)
                }
                if matched == pattern.count { return index..<probe }
            }
            index = haystack.index(after: index)
        }
        return nil
    }

    /// Whether `needle` occurs (see ``firstRange(ofLiteral:)`` for why this is not `contains`).
    package func containsText(_ needle: String) -> Bool {
        firstRange(ofLiteral: needle) != nil
    }
}
