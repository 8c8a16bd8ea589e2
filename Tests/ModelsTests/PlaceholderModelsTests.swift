import Testing
@testable import Models

@Test func placeholderModels() { #expect(true) }
