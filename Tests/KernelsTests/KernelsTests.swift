import Testing
@testable import Kernels

/// Reproducible pseudo-random values in [-1, 1).
struct Values {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
    }
    mutating func array(_ n: Int) -> [Float] { (0..<n).map { _ in next() } }
}

func bf16Round(_ x: [Float]) -> [Float] {
    var halves = [UInt16](repeating: 0, count: x.count)
    var back = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { src in halves.withUnsafeMutableBufferPointer { pds_f32_to_bf16(src.baseAddress!, $0.baseAddress!, x.count) } }
    halves.withUnsafeBufferPointer { src in back.withUnsafeMutableBufferPointer { pds_bf16_to_f32(src.baseAddress!, $0.baseAddress!, x.count) } }
    return back
}

func bf16Matrix(rows: Int, cols: Int, values: [Float]) -> WeightMatrix {
    let buffer = OwnedBuffer(byteCount: values.count * 2)
    values.withUnsafeBufferPointer { pds_f32_to_bf16($0.baseAddress!, buffer.pointer.assumingMemoryBound(to: UInt16.self), values.count) }
    return WeightMatrix(rows: rows, cols: cols, dtype: .bf16, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
}

/// y = x·Wᵀ + b in double precision.
func referenceLinear(_ x: [Float], rows: Int, _ w: [Float], out: Int, bias: [Float]?) -> [Float] {
    let inDim = x.count / rows
    var y = [Float](repeating: 0, count: rows * out)
    for r in 0..<rows {
        for o in 0..<out {
            var s = 0.0
            for k in 0..<inDim { s += Double(x[r * inDim + k]) * Double(w[o * inDim + k]) }
            y[r * out + o] = Float(s) + (bias?[o] ?? 0)
        }
    }
    return y
}

@Test(arguments: [1, 2, 3, 5, 16, 17, 40], [DType.f32, .bf16])
func linearMatchesReference(rows: Int, dtype: DType) {
    var v = Values(state: UInt64(rows * 31 + dtype.size))
    let inDim = 75, out = 37  // odd sizes exercise every tail path
    let x = v.array(rows * inDim)
    let w = dtype == .bf16 ? bf16Round(v.array(out * inDim)) : v.array(out * inDim)
    let bias = v.array(out)
    let matrix = dtype == .bf16 ? bf16Matrix(rows: out, cols: inDim, values: w) : WeightMatrix(rows: out, cols: inDim, values: w)
    for threads in [1, 2] {
        let pool = ComputePool(threads: threads)
        var y = [Float](repeating: .nan, count: rows * out)
        pool.linear(x, rows: rows, weight: matrix, bias: bias, into: &y)
        let expected = referenceLinear(x, rows: rows, w, out: out, bias: bias)
        let worst = zip(y, expected).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "rows \(rows) \(dtype) threads \(threads): max error \(worst)")
    }
}

/// The AVX-512 panel kernels (bf16 weights repacked at load) against the
/// reference: block heights 1...12 and their remainders, output counts that
/// end a panel below, at and above its 16-lane half, several panels per task
/// (300 outputs), with and without bias.
/// Runs only where the CPU has AVX-512 (elsewhere the packed copy is not made).
@Test(.enabled(if: WeightMatrix.panelKernelsAvailable, "the panel kernels run only on AVX-512 CPUs"),
      arguments: [1, 2, 3, 4, 5, 8, 12, 13, 16, 25, 40], [37, 50, 64, 16, 300])
func panelLinearMatchesReference(rows: Int, out: Int) throws {
    var v = Values(state: UInt64(rows * 131 + out))
    let inDim = 75
    let x = v.array(rows * inDim)
    let w = bf16Round(v.array(out * inDim))
    let packed = bf16Matrix(rows: out, cols: inDim, values: w).packedForLinear()
    #expect(packed.isPanelPacked)
    let expected0 = referenceLinear(x, rows: rows, w, out: out, bias: nil)
    let bias = v.array(out)
    let expected1 = referenceLinear(x, rows: rows, w, out: out, bias: bias)
    for threads in [1, 2] {
        let pool = ComputePool(threads: threads)
        for (b, expected) in [(nil, expected0), (bias, expected1)] as [([Float]?, [Float])] {
            var y = [Float](repeating: .nan, count: rows * out + 7)  // the tail must stay untouched
            pool.linear(x, rows: rows, weight: packed, bias: b, into: &y)
            let worst = zip(y, expected).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-4, "rows \(rows) out \(out) bias \(b != nil) threads \(threads): max error \(worst)")
            #expect(y[(rows * out)...].allSatisfy { $0.isNaN }, "wrote past the output")
        }
    }
}

/// What `--matmul-precision bf16` computes: activations and weights rounded
/// to bf16 (nearest even), products summed in double. Also returns, per
/// output, the sum of |products| and |bias|, the scale of fp32 summation error.
func referenceBF16Linear(_ x: [Float], rows: Int, _ w: [Float], out: Int, bias: [Float]?) -> (y: [Double], magnitude: [Double]) {
    let inDim = x.count / rows
    let xb = bf16Round(x), wb = bf16Round(w)
    var y = [Double](repeating: 0, count: rows * out), magnitude = y
    for r in 0..<rows {
        for o in 0..<out {
            var s = 0.0, m = 0.0
            for k in 0..<inDim {
                let p = Double(xb[r * inDim + k]) * Double(wb[o * inDim + k])
                s += p
                m += abs(p)
            }
            y[r * out + o] = s + Double(bias?[o] ?? 0)
            magnitude[r * out + o] = m + Double(abs(bias?[o] ?? 0))
        }
    }
    return (y, magnitude)
}

/// The AVX512_BF16 kernel (`--matmul-precision bf16`) against the rounded
/// reference, within fp32 summation error (1e-5 of the sum of |terms|;
/// skipping the rounding of x would be off by ~1e-4 of it, truncating instead
/// of rounding by ~1e-3). Row counts at and above the threshold with every
/// block-height remainder, odd and even `in` (the odd one pairs with the
/// zero padding), 1 and 3 inputs, outputs ending inside a 16-lane half and
/// spanning many panels; bf16 weights (packed exactly) and fp32 weights
/// (rounded when packed).
@Test(.enabled(if: MatmulPrecision.bf16Available, "the bf16 kernel needs AVX512_BF16"),
      arguments: [64, 77, 140], [(75, 37), (76, 300), (1, 50), (3, 16)])
func bf16LinearMatchesRoundedReference(rows: Int, shape: (Int, Int)) {
    let (inDim, out) = shape
    var v = Values(state: UInt64(rows * 17 + inDim * 3 + out))
    let x = v.array(rows * inDim)
    let w = v.array(out * inDim)
    let bias = v.array(out)
    let reference = referenceBF16Linear(x, rows: rows, w, out: out, bias: bias)
    let matrices = [bf16Matrix(rows: out, cols: inDim, values: w).packedForLinear(precision: .bf16),
                    WeightMatrix(rows: out, cols: inDim, values: w).packedForLinear(precision: .bf16)]
    for (matrix, threads) in zip(matrices + matrices, [1, 1, 2, 2]) {
        #expect(matrix.isPanelPacked)
        var y = [Float](repeating: .nan, count: rows * out + 5)  // the tail must stay untouched
        ComputePool(threads: threads).linear(x, rows: rows, weight: matrix, bias: bias, precision: .bf16, into: &y)
        let excess = (0..<rows * out).map { abs(Double(y[$0]) - reference.y[$0]) - 1e-5 * reference.magnitude[$0] }.max()!
        #expect(excess <= 0, "rows \(rows) in \(inDim) out \(out) \(matrix.dtype) threads \(threads): off by \(excess) beyond fp32 summation error")
        #expect(y[(rows * out)...].allSatisfy { $0.isNaN }, "wrote past the output")
    }
}

/// Below `bf16MinimumRows` (decode) a bf16 request changes nothing: the
/// result is bit-for-bit the fp32 one, for bf16 and fp32 weights alike.
@Test func bf16PrecisionLeavesSmallBatchesExact() {
    let rows = MatmulPrecision.bf16MinimumRows - 1, inDim = 75, out = 37
    var v = Values(state: 5)
    let x = v.array(rows * inDim), w = v.array(out * inDim)
    for plain in [bf16Matrix(rows: out, cols: inDim, values: bf16Round(w)), WeightMatrix(rows: out, cols: inDim, values: w)] {
        let pool = ComputePool(threads: 2)
        var exact = [Float](repeating: 0, count: rows * out), requested = exact
        pool.linear(x, rows: rows, weight: plain.packedForLinear(), bias: nil, into: &exact)
        pool.linear(x, rows: rows, weight: plain.packedForLinear(precision: .bf16), bias: nil, precision: .bf16, into: &requested)
        #expect(exact == requested, "\(plain.dtype): a \(rows)-row layer must stay fp32-exact")
    }
}

/// Packing leaves fp32 weights alone: they stay zero-copy in the mapping.
@Test func packingSkipsFloat32Weights() {
    let matrix = WeightMatrix(rows: 3, cols: 5, values: [Float](repeating: 1, count: 15))
    #expect(!matrix.packedForLinear().isPanelPacked)
    // Only the bf16 mode packs them (rounded), and only where its kernel runs.
    #expect(matrix.packedForLinear(precision: .bf16).isPanelPacked == MatmulPrecision.bf16Available)
}

@Test func bf16ConversionRoundsToNearestEven() {
    // 1 + 2^-8 lies exactly between two bf16 values: it rounds to the even one (1.0).
    let halfway = Float(bitPattern: 0x3F80_8000)
    let above = Float(bitPattern: 0x3F80_8001)
    #expect(bf16Round([halfway, above, 3.0, -2.5]) == [1.0, Float(bitPattern: 0x3F81_0000), 3.0, -2.5])
}

@Test func rmsNormMatchesDefinition() {
    var v = Values(state: 7)
    let dim = 13
    let x = v.array(3 * dim), w = v.array(dim)
    var out = [Float](repeating: 0, count: x.count)
    Kernels.rmsNorm(x, weight: w, eps: 1e-6, into: &out)
    for r in 0..<3 {
        let row = x[r * dim..<(r + 1) * dim]
        let rms = (row.map { Double($0 * $0) }.reduce(0, +) / Double(dim) + 1e-6).squareRoot()
        for i in 0..<dim {
            #expect(abs(Double(out[r * dim + i]) - Double(w[i]) * Double(row[row.startIndex + i]) / rms) < 1e-5)
        }
    }
}

/// The vectorised exp inside SiLU: close to Foundation's across the range,
/// including saturating inputs, and on the scalar tail (19 values = 2×8 + 3).
@Test func siluMulMatchesDefinition() {
    var v = Values(state: 11)
    let gate = v.array(19).map { $0 * 30 } + [-200, 200, 0, -88, 88]
    let x = v.array(gate.count)
    var out = x
    Kernels.siluMul(gate: gate, &out)
    for i in 0..<gate.count {
        let g = Double(gate[i]), expected = g / (1 + Foundation.exp(-g)) * Double(x[i])
        #expect(abs(Double(out[i]) - expected) <= 1e-6 * max(1, abs(expected)), "silu(\(g)) * \(x[i])")
    }
}

@Test func ropeRotatesHalvesByPositionAngle() {
    let headDim = 6
    var x: [Float] = [1, 2, 3, 4, 5, 6]
    let freqs: [Float] = [1, 0.5, 0.25]
    Kernels.rope(&x, heads: 1, headDim: headDim, positions: [3], invFreq: freqs)
    let original: [Float] = [1, 2, 3, 4, 5, 6]
    for i in 0..<3 {
        let a = 3 * freqs[i]
        #expect(abs(x[i] - (original[i] * cos(a) - original[i + 3] * sin(a))) < 1e-5)
        #expect(abs(x[i + 3] - (original[i + 3] * cos(a) + original[i] * sin(a))) < 1e-5)
    }
}

/// Naive causal attention for one sequence with its K/V held contiguously.
func referenceAttention(q: [Float], k: [Float], v: [Float], tokens: Int, start: Int, heads: Int, kvHeads: Int, dim: Int, window: Int) -> [Float] {
    var out = [Float](repeating: 0, count: q.count)
    let group = heads / kvHeads
    for t in 0..<tokens {
        let pos = start + t
        let first = window > 0 ? max(0, pos - window + 1) : 0
        for h in 0..<heads {
            let kvh = h / group
            var scores: [Double] = []
            for p in first...pos {
                var s = 0.0
                for d in 0..<dim { s += Double(q[(t * heads + h) * dim + d]) * Double(k[(p * kvHeads + kvh) * dim + d]) }
                scores.append(s / Double(dim).squareRoot())
            }
            let m = scores.max()!
            let e = scores.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for d in 0..<dim {
                var acc = 0.0
                for (j, p) in (first...pos).enumerated() { acc += e[j] / z * Double(v[(p * kvHeads + kvh) * dim + d]) }
                out[(t * heads + h) * dim + d] = Float(acc)
            }
        }
    }
    return out
}

import Foundation

/// Small and odd shapes, plus spans longer than one query block (8 tokens)
/// and one key tile (8 keys) that start mid-tile, with and without a window.
@Test(arguments: [(DType.f32, 0, 10, 11, 3), (.bf16, 0, 10, 11, 3), (.f32, 5, 10, 11, 3),
                  (.f32, 0, 64, 45, 21), (.bf16, 0, 17, 45, 45), (.f32, 13, 64, 45, 21), (.f32, 0, 8, 1, 1)])
func pagedAttentionMatchesContiguous(dtype: DType, window: Int, dim: Int, context: Int, newTokens: Int) {
    var v = Values(state: 99)
    let heads = 4, kvHeads = 2, pageSize = 4
    let start = context - newTokens
    var k = v.array(context * kvHeads * dim), vv = v.array(context * kvHeads * dim)
    if dtype == .bf16 { k = bf16Round(k); vv = bf16Round(vv) }
    let q = v.array(newTokens * heads * dim)
    // Scattered, non-consecutive pages prove the page table is honoured.
    let pageCount = (context + pageSize - 1) / pageSize
    let pageTable: [Int32] = (0..<pageCount).map { Int32((($0 * 7) + 3) % (pageCount + 3)) }  // 7 is coprime to every pageCount + 3 used here
    let cache = try! PagedKVStorage(layers: 1, pageCount: pageCount + 3, pageSize: pageSize, width: kvHeads * dim, dtype: dtype)
    let slots = (0..<context).map { pageTable[$0 / pageSize] * Int32(pageSize) + Int32($0 % pageSize) }
    cache.store(layer: 0, keys: k, values: vv, slots: slots)
    for threads in [1, 2] {
        var out = [Float](repeating: .nan, count: q.count)
        ComputePool(threads: threads).attention(
            q: q, spans: [AttentionSpan(tokenOffset: 0, tokenCount: newTokens, startPosition: start, pageTable: pageTable)],
            heads: heads, kvHeads: kvHeads, headDim: dim, cache: cache, layer: 0, window: window,
            scale: 1 / Float(dim).squareRoot(), into: &out)
        let expected = referenceAttention(q: q, k: k, v: vv, tokens: newTokens, start: start, heads: heads, kvHeads: kvHeads, dim: dim, window: window)
        let worst = zip(out, expected).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "\(dtype) window \(window) threads \(threads): max error \(worst)")
    }
}

/// Keys and values of unequal head dims, strides and dtypes: an MLA-like
/// cache (one KV head; K the whole row, V its first `valueDim` elements)
/// and a pool of separate K and V tensors (K fp32 of 12 per head, V bf16 of
/// 8 per head, two KV heads), both against a naive reference.
@Test(arguments: [(1, 20, 16, true), (2, 12, 8, false)])
func attentionReadsKeysAndValuesOfUnequalWidths(kvHeads: Int, keyDim: Int, valueDim: Int, sharedRow: Bool) throws {
    var gen = Values(state: 7)
    let heads = 4, pageSize = 4, context = 19, newTokens = 6, start = context - newTokens
    let pageCount = (context + pageSize - 1) / pageSize
    let pageTable: [Int32] = (0..<pageCount).map { Int32(pageCount - 1 - $0) }
    let slots = (0..<context).map { Int(pageTable[$0 / pageSize]) * pageSize + $0 % pageSize }
    let spec = sharedRow
        ? KVCacheSpec(layers: 1, tensors: [.init(name: "latent", elementsPerToken: kvHeads * keyDim, dtype: .f32)])
        : KVCacheSpec(layers: 1, tensors: [.init(name: "k", elementsPerToken: kvHeads * keyDim, dtype: .f32),
                                           .init(name: "v", elementsPerToken: kvHeads * valueDim, dtype: .bf16)])
    let cache = try PagedKVStorage(spec: spec, pageCount: pageCount, pageSize: pageSize)
    // Contiguous K [pos][kvh][keyDim] and V [pos][kvh][valueDim], written into the pool by slot.
    let k = gen.array(context * kvHeads * keyDim)
    var v = sharedRow ? [] : bf16Round(gen.array(context * kvHeads * valueDim))
    let keyBase = cache.buffer(layer: 0, tensor: 0).assumingMemoryBound(to: Float.self)
    for p in 0..<context {
        for i in 0..<kvHeads * keyDim { keyBase[slots[p] * kvHeads * keyDim + i] = k[p * kvHeads * keyDim + i] }
    }
    if sharedRow {
        // V is the first valueDim elements of each (single-head) K row.
        v = (0..<context).flatMap { p in k[p * keyDim..<p * keyDim + valueDim] }
    } else {
        let valueBase = cache.buffer(layer: 0, tensor: 1).assumingMemoryBound(to: UInt16.self)
        for p in 0..<context {
            v[p * kvHeads * valueDim..<(p + 1) * kvHeads * valueDim].withUnsafeBufferPointer {
                pds_f32_to_bf16($0.baseAddress!, valueBase + slots[p] * kvHeads * valueDim, kvHeads * valueDim)
            }
        }
    }
    let keys = AttentionOperand(base: cache.buffer(layer: 0, tensor: 0), rowStride: kvHeads * keyDim, headDim: keyDim, dtype: .f32)
    let values = sharedRow
        ? AttentionOperand(base: cache.buffer(layer: 0, tensor: 0), rowStride: keyDim, headDim: valueDim, dtype: .f32)
        : AttentionOperand(base: cache.buffer(layer: 0, tensor: 1), rowStride: kvHeads * valueDim, headDim: valueDim, dtype: .bf16)
    let q = gen.array(newTokens * heads * keyDim)
    let scale = 1 / Float(keyDim).squareRoot()
    // Reference: per head, softmax(q·k · scale) over positions 0...pos, times v.
    var expected = [Float](repeating: 0, count: newTokens * heads * valueDim)
    for t in 0..<newTokens {
        let pos = start + t
        for h in 0..<heads {
            let kvh = h / (heads / kvHeads)
            let scores = (0...pos).map { p in
                (0..<keyDim).reduce(0.0) { $0 + Double(q[(t * heads + h) * keyDim + $1]) * Double(k[(p * kvHeads + kvh) * keyDim + $1]) } * Double(scale)
            }
            let m = scores.max()!
            let e = scores.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for d in 0..<valueDim {
                expected[(t * heads + h) * valueDim + d] = Float((0...pos).reduce(0.0) { $0 + e[$1] / z * Double(v[($1 * kvHeads + kvh) * valueDim + d]) })
            }
        }
    }
    for threads in [1, 2] {
        var out = [Float](repeating: .nan, count: expected.count)
        ComputePool(threads: threads).attention(
            q: q, spans: [AttentionSpan(tokenOffset: 0, tokenCount: newTokens, startPosition: start, pageTable: pageTable)],
            heads: heads, kvHeads: kvHeads, keys: keys, values: values, pageSize: pageSize, window: 0, scale: scale, into: &out)
        let worst = zip(out, expected).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "kv heads \(kvHeads), K \(keyDim), V \(valueDim), threads \(threads): max error \(worst)")
    }
}
