import Testing
@testable import Kernels

@Test func placeholderKernels() { #expect(true) }
