import Testing
@testable import Tokenization

@Test func placeholderTokenization() { #expect(true) }
