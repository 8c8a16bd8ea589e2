@_exported import KernelsC

/// Element-wise kernels on fp32 rows. Shapes are checked here so the C code
/// can trust them.
public enum Kernels {
    /// `out[r] = x[r] / rms(x[r]) * weight` for each row of `weight.count` values.
    public static func rmsNorm(_ x: [Float], weight: [Float], eps: Float, into out: inout [Float]) {
        let dim = weight.count
        precondition(dim > 0 && x.count % dim == 0 && out.count >= x.count, "rmsNorm shape mismatch")
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    pds_rmsnorm(xp.baseAddress!, wp.baseAddress!, eps, Int32(x.count / dim), Int32(dim), op.baseAddress!)
                }
            }
        }
    }

    /// In place RMSNorm of every `weight.count`-wide slice (per-head q/k norm).
    public static func rmsNormInPlace(_ x: inout [Float], weight: [Float], eps: Float) {
        let dim = weight.count
        precondition(dim > 0 && x.count % dim == 0, "rmsNorm shape mismatch")
        weight.withUnsafeBufferPointer { wp in
            x.withUnsafeMutableBufferPointer { xp in
                pds_rmsnorm(xp.baseAddress!, wp.baseAddress!, eps, Int32(xp.count / dim), Int32(dim), xp.baseAddress!)
            }
        }
    }

    /// `x = silu(gate) * x`.
    public static func siluMul(gate: [Float], _ x: inout [Float]) {
        precondition(gate.count == x.count, "siluMul shape mismatch")
        gate.withUnsafeBufferPointer { g in
            x.withUnsafeMutableBufferPointer { pds_silu_mul(g.baseAddress!, $0.baseAddress!, $0.count) }
        }
    }

    /// `x += y`.
    public static func add(_ x: inout [Float], _ y: [Float]) {
        precondition(y.count == x.count, "add shape mismatch")
        y.withUnsafeBufferPointer { yp in
            x.withUnsafeMutableBufferPointer { pds_add($0.baseAddress!, yp.baseAddress!, $0.count) }
        }
    }

    /// Rotary embedding in place on `[tokens, heads, headDim]`.
    public static func rope(_ x: inout [Float], heads: Int, headDim: Int, positions: [Int32], invFreq: [Float]) {
        precondition(x.count == positions.count * heads * headDim && invFreq.count == headDim / 2, "rope shape mismatch")
        positions.withUnsafeBufferPointer { pp in
            invFreq.withUnsafeBufferPointer { fp in
                x.withUnsafeMutableBufferPointer {
                    pds_rope($0.baseAddress!, Int32(positions.count), Int32(heads), Int32(headDim), pp.baseAddress!, fp.baseAddress!)
                }
            }
        }
    }

    /// Row-wise max.
    public static func argmax(_ x: ArraySlice<Float>) -> Int {
        var best = x.startIndex
        for i in x.indices where x[i] > x[best] { best = i }
        return best - x.startIndex
    }
}
