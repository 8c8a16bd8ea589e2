import Foundation
import KernelsC

/// Measures how fast the machine streams memory into the cores, the bound
/// on any memory-bound kernel (decode GEMV).
public enum MemoryProbe {
    /// Read bandwidth in GB/s (1e9 bytes/s) over a buffer of `bytes` (far
    /// larger than the caches): the best of `repeats` passes after one
    /// warm-up, as STREAM reports, so fractions of it are conservative.
    public static func readBandwidth(pool: ComputePool, bytes: Int = 512 << 20, repeats: Int = 5) -> Double {
        let count = bytes / 4
        let buffer = OwnedBuffer(byteCount: count * 4)
        let floats = buffer.pointer.assumingMemoryBound(to: Float.self)
        // Touch every page so the passes measure DRAM, not page faults.
        for i in stride(from: 0, to: count, by: 1024) { floats[i] = 1 }
        var rates: [Double] = []
        var sink = 0.0
        for pass in 0...repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            sink += pds_stream_read(pool.pool, floats, count)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if pass > 0 { rates.append(Double(count * 4) / seconds / 1e9) }
        }
        precondition(sink.isFinite, "read probe produced a non-finite sum")
        return rates.max()!
    }
}
