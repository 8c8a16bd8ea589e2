import ByteExactJSON
@testable import Grammar
import Testing

/// Whether the automaton of `node` accepts exactly `text` (all of it).
func accepts(_ node: RegexNode, _ text: String) throws -> Bool {
    var dfa = LazyDFA(try ByteNFA(node))
    var state = dfa.start
    for byte in text.utf8 {
        let next = dfa.next(state, byte)
        state = try #require(next)
        if state == LazyDFA.dead { return false }
    }
    return dfa.accepting[Int(state)]
}

func accepts(regex: String, _ text: String) throws -> Bool { try accepts(try RegexParser.parse(regex), text) }

/// The regex syntax clients send, checked as whole-output matches, and the
/// constructs that need more than an automaton refused by name.
struct RegexLanguageTests {
    @Test(arguments: [
        ("abc", "abc", true), ("abc", "abcd", false), ("abc", "ab", false),
        ("a|bc", "bc", true), ("a|bc", "abc", false), ("(ab)+", "ababab", true), ("(ab)+", "", false),
        ("a*", "", true), ("a?b", "b", true), ("a{2,3}", "aa", true), ("a{2,3}", "aaaa", false),
        ("a{2}", "aa", true), ("a{2,}", "aaaaaa", true), ("a{,2}", "", true), ("a{,2}", "aaa", false),
        ("a{x", "a{x", true), ("[a-c]+", "abcabc", true), ("[^a-c]", "d", true), ("[^a-c]", "b", false),
        ("\\d{3}-\\d{4}", "555-1234", true), ("\\d", "x", false), ("\\w+", "snake_case9", true),
        ("\\s", "\t", true), ("\\S", " ", false), (".", "\n", false), (".", "é", true), (".", "🎉", true),
        ("[é-ë]", "ê", true), ("[é-ë]", "e", false), ("[^\"]*", "grüße 🎉", true), ("\\u00e9", "é", true),
        ("\\x41", "A", true), ("\\.", ".", true), ("\\.", "a", false), ("^(yes|no)$", "no", true),
        ("(?:ab|cd)e", "cde", true), ("(?P<name>x)y", "xy", true), ("[\\d.]+", "3.14", true),
        ("[-a]", "-", true), ("[a-]", "-", true), ("a+?", "aaa", true), ("[]a]", "]", true),
    ])
    func matchesWholeOutput(pattern: String, text: String, expected: Bool) throws {
        #expect(try accepts(regex: pattern, text) == expected)
    }

    @Test(arguments: [
        ("(a", "missing ')'"), ("a)", "unbalanced ')'"), ("*a", "nothing to repeat"), ("(a)\\1", "backreferences"),
        ("(?=a)", "lookaround"), ("a\\b", "anchor"), ("a{3,1}", "reversed"), ("[b-a]", "reversed range"),
        ("a++", "possessive"), ("\\p{L}", "Unicode property"), ("a^b", "inside the pattern"), ("a{99999}", "above"),
        ("[abc", "missing ']'"),
    ])
    func refusesWhatNoAutomatonCanSay(pattern: String, message: String) {
        #expect { try RegexParser.parse(pattern) } throws: { ($0 as? GrammarError)?.message.contains(message) == true }
    }

    /// Every scalar's UTF-8 encoding is matched by the class's byte sequences
    /// exactly when the scalar is in the class (sampled across all lengths).
    @Test func classesMatchTheirScalarsAsUTF8() throws {
        let sets = [ScalarSet([0x41...0x5A]), ScalarSet([0x7F...0x800]), ScalarSet([0x20...0x10FFFF]),
                    ScalarSet([0xE9...0xE9, 0x4E00...0x9FFF, 0x1F300...0x1F5FF]), ScalarSet([0x22...0x22]).complement]
        for set in sets {
            let node = RegexNode.scalars(set)
            for value in stride(from: UInt32(0), through: 0x10FFFF, by: 997) where !ScalarSet.surrogates.contains(value) {
                let text = String(Unicode.Scalar(value)!)
                #expect(try accepts(node, text) == set.contains(value), "U+\(String(value, radix: 16))")
            }
            for edge: UInt32 in [0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF] {
                #expect(try accepts(node, String(Unicode.Scalar(edge)!)) == set.contains(edge))
            }
        }
    }

    @Test func integerRangesMatchExactlyTheirMembers() throws {
        let cases: [(Int?, Int?)] = [(0, 9), (5, 123), (-45, 7), (-300, -12), (17, nil), (nil, -3), (nil, 250), (0, 0), (99, 101), (-1, nil)]
        for (lower, upper) in cases {
            let node = IntegerRange.node(lower: lower, upper: upper)
            for n in -400...400 {
                let inside = (lower.map { n >= $0 } ?? true) && (upper.map { n <= $0 } ?? true)
                #expect(try accepts(node, String(n)) == inside, "\(n) in \(String(describing: lower))...\(String(describing: upper))")
            }
            #expect(try !accepts(node, "007"))
            #expect(try !accepts(node, "-0"))
            #expect(try accepts(node, "123456789") == (upper == nil))
        }
    }
}
