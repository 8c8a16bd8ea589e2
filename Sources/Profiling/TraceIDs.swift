/// Async-track ids for spans that have no PD room: a stable 64-bit hash
/// (FNV-1a) of the request id, so one request keeps one track.
public enum TraceIDs {
    public static func id(of text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
