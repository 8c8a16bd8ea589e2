/// Reading the C shims' answers (NIXLShim, MooncakeShim): each call that
/// can fail takes an error buffer and returns 0 on success.

/// The shim's error text when `call` fails; nil when it succeeded.
func shimFailure(of call: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> String? {
    var error = [CChar](repeating: 0, count: 512)
    let status = error.withUnsafeMutableBufferPointer { call($0.baseAddress!, $0.count) }
    return status == 0 ? nil : text(error)
}

/// The text of a NUL-terminated C buffer.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
