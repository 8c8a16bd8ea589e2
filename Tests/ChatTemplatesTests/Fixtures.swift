import Foundation
@testable import ChatTemplates

/// Loads `tests/fixtures/chat_templates` (written by tests/reference/make_chat_template_fixtures.py).
enum Fixtures {
    /// `CHAT_TEMPLATE_FIXTURES` points the suite at another generated set (same layout) when trying
    /// more templates without committing them.
    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["CHAT_TEMPLATE_FIXTURES"] {
            return URL(fileURLWithPath: override)
        }
        return URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tests/fixtures/chat_templates")
    }()

    /// The fixed "now" the generator gave `strftime_now`: 2025-03-14 09:26:53, read as UTC here.
    static let fixedNow = Date(timeIntervalSince1970: 1_741_944_413)

    /// cases.json, parsed with key order preserved (tojson output depends on it).
    static let document: TemplateValue = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("cases.json"))
        return try! TemplateValue(jsonData: data)
    }()

    static func source(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name + ".jinja"), encoding: .utf8)
    }

    static var templateNames: [String] {
        guard case .array(let names)? = document["templates"] else { return [] }
        return names.compactMap(\.stringValue)
    }

    static func cases(named key: String) -> [TemplateValue] {
        guard case .array(let items)? = document[key] else { return [] }
        return items
    }

    static func configured(_ template: ChatTemplate) -> ChatTemplate {
        var t = template
        t.now = { fixedNow }
        t.timeZone = TimeZone(identifier: "UTC")!
        return t
    }

    /// Renders one fixture case and describes a mismatch, or returns nil when it matches jinja2.
    static func check(_ template: ChatTemplate, _ testCase: TemplateValue, label: String) -> String? {
        guard case .object(let context)? = testCase["context"] else { return "\(label): no context" }
        var variables: [String: TemplateValue] = [:]
        for (k, v) in context.pairs { variables[k] = v }
        let outcome = Result { try configured(template).render(context: variables) }
        if let expected = testCase["expected"]?.stringValue {
            switch outcome {
            case .success(let actual):
                if actual == expected { return nil }
                return "\(label): output differs\n" + firstDifference(expected, actual)
            case .failure(let error):
                return "\(label): expected output but got error: \(error)"
            }
        }
        guard let kind = testCase["expected_error"]?["kind"]?.stringValue,
              let message = testCase["expected_error"]?["message"]?.stringValue else { return "\(label): malformed case" }
        switch outcome {
        case .success(let actual):
            return "\(label): jinja2 raised \(kind) '\(message)' but we rendered:\n\(actual.prefix(300))"
        case .failure(let error as ChatTemplateError):
            if kind == "raised" {
                if error.kind != .raised || error.message != message {
                    return "\(label): expected raise_exception('\(message)'), got \(error.kind): \(error)"
                }
            } else if error.kind == .raised {
                return "\(label): expected a \(kind) but the template raised '\(error.message)'"
            }
            return nil
        case .failure(let error):
            return "\(label): unexpected error type \(error)"
        }
    }

    static func firstDifference(_ expected: String, _ actual: String) -> String {
        let e = Array(expected.unicodeScalars), a = Array(actual.unicodeScalars)
        var i = 0
        while i < e.count, i < a.count, e[i] == a[i] { i += 1 }
        func around(_ s: [Unicode.Scalar]) -> String {
            let lo = max(0, i - 60), hi = min(s.count, i + 60)
            return String(String.UnicodeScalarView(s[lo..<hi])).debugDescription
        }
        return "  at scalar \(i) (expected \(e.count), got \(a.count))\n  expected: \(around(e))\n  actual:   \(around(a))"
    }
}
