// bf16 linear layers on AVX-512 over weights repacked into column panels.
//
// Why a second layout: the row-major kernels (linear.c) must reduce each dot
// product horizontally and, above 16 activation rows, widen W into an fp32
// copy for sgemm (and OpenBLAS 0.3.21 picks its AVX2 Haswell kernels on this
// AMD CPU). Here W [N, K] becomes ceil(N/32) panels; panel p holds, for each
// k, the 32 values W[32p + j, k] in 64 contiguous bytes. One broadcast-FMA
// kernel then serves decode and prefill: x[t, k] is broadcast and multiplied
// into 32 widened weights, so weights stream once per block of MR activation
// rows, with no horizontal sums and no widened copy.
//
// Within a k's 64 bytes, 32-bit lane i holds W[32p + i] in its low half and
// W[32p + 16 + i] in its high half, so both halves widen with one shift or
// one AND (bf16 is the top half of an fp32) instead of a cross-lane convert.
//
// Compute is fp32 FMA on exactly widened weights: results equal the
// row-major path up to summation order.
#include "KernelsC.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define PANEL 32
/// Activation rows per register block: 2·MR accumulators + 2 weight vectors + 1 broadcast fit in 32 zmm.
#define MR 12
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

/// -1 until first asked: then PDSERVE_PORTABLE_KERNELS=1 in the environment forces the AVX2 path.
static int force_portable = -1;

int pds_avx512_enabled(void) {
    if (force_portable < 0) {
        const char *env = getenv("PDSERVE_PORTABLE_KERNELS");
        force_portable = env && env[0] == '1';
    }
    return !force_portable && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

void pds_force_portable_kernels(int on) { force_portable = on ? 1 : 0; }

size_t pds_panel_elements(int rows, int cols) { return (size_t)((rows + PANEL - 1) / PANEL) * PANEL * (size_t)cols; }

void pds_pack_bf16_panels(const uint16_t *w, int rows, int cols, uint16_t *panels) {
    enum { KBLOCK = 256 };  // keeps the 64-byte-strided writes of one block in L1
    int npanels = (rows + PANEL - 1) / PANEL;
    for (int p = 0; p < npanels; p++) {
        uint16_t *dst = panels + (size_t)p * PANEL * cols;
        for (int k0 = 0; k0 < cols; k0 += KBLOCK) {
            int k1 = k0 + KBLOCK < cols ? k0 + KBLOCK : cols;
            for (int j = 0; j < PANEL; j++) {
                int row = p * PANEL + j;
                int slot = j < 16 ? 2 * j : 2 * (j - 16) + 1;
                for (int k = k0; k < k1; k++)
                    dst[(size_t)k * PANEL + slot] = row < rows ? w[(size_t)row * cols + k] : 0;
            }
        }
    }
}

typedef struct {
    const float *x;
    int rows, in, out;
    const uint16_t *panels;
    const float *bias;
    float *y;
    /// bf16 mode only: x rounded to bf16, rows of xb_stride (even) values, zero-padded.
    const uint16_t *xb;
    int xb_stride;
} panel_args;

/// Writes `mr` rows of a panel's 32 outputs (lo: the first 16, hi: the rest),
/// adding bias and leaving columns past n_valid untouched.
INLINE AVX512 void store_block(int mr, const __m512 *lo, const __m512 *hi, int n_valid, const float *bias, float *y, int out) {
    __mmask16 mlo = n_valid >= 16 ? 0xFFFF : (__mmask16)((1u << n_valid) - 1);
    __mmask16 mhi = n_valid >= 32 ? 0xFFFF : n_valid <= 16 ? 0 : (__mmask16)((1u << (n_valid - 16)) - 1);
    __m512 blo = bias ? _mm512_maskz_loadu_ps(mlo, bias) : _mm512_setzero_ps();
    __m512 bhi = bias ? _mm512_maskz_loadu_ps(mhi, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(y + (size_t)r * out, mlo, _mm512_add_ps(lo[r], blo));
        _mm512_mask_storeu_ps(y + (size_t)r * out + 16, mhi, _mm512_add_ps(hi[r], bhi));
    }
}

/// y[r, 32p .. 32p+31] for `mr` rows starting at x. Unrolled over k by two
/// with separate accumulators when mr is small, so the FMA latency chain
/// does not cap a memory-bound decode step.
INLINE AVX512 void panel_block(int mr, const float *x, int in, const uint16_t *panel, const uint16_t *prefetch,
                               int n_valid, const float *bias, float *y, int out) {
    __m512 lo[MR], hi[MR], lo2[MR], hi2[MR];
    const int split = mr <= 4;
    for (int r = 0; r < mr; r++) lo[r] = hi[r] = lo2[r] = hi2[r] = _mm512_setzero_ps();
    const __m512i high_half = _mm512_set1_epi32((int)0xFFFF0000u);
    int k = 0;
    if (split) {
        for (; k + 2 <= in; k += 2) {
            _mm_prefetch((const char *)(prefetch + (size_t)k * PANEL), _MM_HINT_T0);
            _mm_prefetch((const char *)(prefetch + (size_t)(k + 1) * PANEL), _MM_HINT_T0);
            __m512i w0 = _mm512_loadu_si512(panel + (size_t)k * PANEL);
            __m512i w1 = _mm512_loadu_si512(panel + (size_t)(k + 1) * PANEL);
            __m512 a0 = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), b0 = _mm512_castsi512_ps(_mm512_and_si512(w0, high_half));
            __m512 a1 = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)), b1 = _mm512_castsi512_ps(_mm512_and_si512(w1, high_half));
            for (int r = 0; r < mr; r++) {
                __m512 x0 = _mm512_set1_ps(x[(size_t)r * in + k]), x1 = _mm512_set1_ps(x[(size_t)r * in + k + 1]);
                lo[r] = _mm512_fmadd_ps(x0, a0, lo[r]);
                hi[r] = _mm512_fmadd_ps(x0, b0, hi[r]);
                lo2[r] = _mm512_fmadd_ps(x1, a1, lo2[r]);
                hi2[r] = _mm512_fmadd_ps(x1, b1, hi2[r]);
            }
        }
    }
    for (; k < in; k++) {
        _mm_prefetch((const char *)(prefetch + (size_t)k * PANEL), _MM_HINT_T0);
        __m512i w = _mm512_loadu_si512(panel + (size_t)k * PANEL);
        __m512 a = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), b = _mm512_castsi512_ps(_mm512_and_si512(w, high_half));
        for (int r = 0; r < mr; r++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)r * in + k]);
            lo[r] = _mm512_fmadd_ps(xv, a, lo[r]);
            hi[r] = _mm512_fmadd_ps(xv, b, hi[r]);
        }
    }
    if (split)
        for (int r = 0; r < mr; r++) { lo[r] = _mm512_add_ps(lo[r], lo2[r]); hi[r] = _mm512_add_ps(hi[r], hi2[r]); }
    store_block(mr, lo, hi, n_valid, bias, y, out);
}

/// One specialisation per block height, so every accumulator lives in a register.
static AVX512 void panel_block_any(int mr, const float *x, int in, const uint16_t *panel, const uint16_t *prefetch,
                                   int n_valid, const float *bias, float *y, int out) {
    switch (mr) {
#define CASE(M) case M: panel_block(M, x, in, panel, prefetch, n_valid, bias, y, out); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
    }
}

// MARK: bf16 activations (opt-in: --matmul-precision bf16)
//
// vdpbf16ps multiplies pairs of bf16 values and adds both products into one
// fp32 lane: 32 multiply-adds per instruction where the fp32 kernel above
// does 16. It needs the activations in bf16 (rounded once per call, below)
// and each 32-bit weight lane to hold two consecutive k of one output row.
// The panels hold rows i and 16+i of one k per lane instead, so each pair of
// k is regrouped in registers (two shifts, two blends per 24 dot products)
// rather than keeping a second copy of the weights in another layout.

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

int pds_bf16_matmul_enabled(void) { return pds_avx512_enabled() && __builtin_cpu_supports("avx512bf16"); }

/// The bf16 pair x[k], x[k+1] in every 32-bit lane.
INLINE AVX512BF16 __m512bh broadcast_pair(const uint16_t *x) {
    uint32_t pair;
    memcpy(&pair, x, sizeof pair);
    return (__m512bh)_mm512_set1_epi32((int)pair);
}

/// As panel_block, with x in bf16 (rows of `stride` values, even, zero-padded past `in`).
INLINE AVX512BF16 void panel_block_bf16(int mr, const uint16_t *x, int stride, int in, const uint16_t *panel,
                                        const uint16_t *prefetch, int n_valid, const float *bias, float *y, int out) {
    __m512 lo[MR], hi[MR];
    for (int r = 0; r < mr; r++) lo[r] = hi[r] = _mm512_setzero_ps();
    const __mmask32 high_halves = 0xAAAAAAAAu;
    int k = 0;
    for (; k + 2 <= in; k += 2) {
        _mm_prefetch((const char *)(prefetch + (size_t)k * PANEL), _MM_HINT_T0);
        _mm_prefetch((const char *)(prefetch + (size_t)(k + 1) * PANEL), _MM_HINT_T0);
        __m512i w0 = _mm512_loadu_si512(panel + (size_t)k * PANEL);
        __m512i w1 = _mm512_loadu_si512(panel + (size_t)(k + 1) * PANEL);
        // Lane i: (W[i, k], W[i, k+1]) for the first 16 rows, (W[16+i, k], W[16+i, k+1]) for the rest.
        __m512bh a = (__m512bh)_mm512_mask_blend_epi16(high_halves, w0, _mm512_slli_epi32(w1, 16));
        __m512bh b = (__m512bh)_mm512_mask_blend_epi16(high_halves, _mm512_srli_epi32(w0, 16), w1);
        for (int r = 0; r < mr; r++) {
            __m512bh xv = broadcast_pair(x + (size_t)r * stride + k);
            lo[r] = _mm512_dpbf16_ps(lo[r], xv, a);
            hi[r] = _mm512_dpbf16_ps(hi[r], xv, b);
        }
    }
    if (k < in) {
        // Odd `in`: the last k pairs with x's zero padding and a zero weight.
        __m512i w0 = _mm512_loadu_si512(panel + (size_t)k * PANEL);
        __m512bh a = (__m512bh)_mm512_and_si512(w0, _mm512_set1_epi32(0xFFFF));
        __m512bh b = (__m512bh)_mm512_srli_epi32(w0, 16);
        for (int r = 0; r < mr; r++) {
            __m512bh xv = broadcast_pair(x + (size_t)r * stride + k);
            lo[r] = _mm512_dpbf16_ps(lo[r], xv, a);
            hi[r] = _mm512_dpbf16_ps(hi[r], xv, b);
        }
    }
    store_block(mr, lo, hi, n_valid, bias, y, out);
}

static AVX512BF16 void panel_block_bf16_any(int mr, const uint16_t *x, int stride, int in, const uint16_t *panel,
                                            const uint16_t *prefetch, int n_valid, const float *bias, float *y, int out) {
    switch (mr) {
#define CASE(M) case M: panel_block_bf16(M, x, stride, in, panel, prefetch, n_valid, bias, y, out); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
    }
}

/// Rounds this task's share of x's rows to bf16 (round to nearest even) into xb.
static AVX512BF16 void round_rows_task(void *vargs, int task, int ntasks) {
    const panel_args *a = vargs;
    int r0 = (int)((long)a->rows * task / ntasks), r1 = (int)((long)a->rows * (task + 1) / ntasks);
    for (int r = r0; r < r1; r++) {
        const float *src = a->x + (size_t)r * a->in;
        uint16_t *dst = (uint16_t *)a->xb + (size_t)r * a->xb_stride;
        for (int k = 0; k < a->xb_stride; k += 32) {
            int n = a->in - k, m = a->xb_stride - k;
            __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
            __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
            __mmask32 mout = m >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << m) - 1);
            __m512bh h = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + k + 16), _mm512_maskz_loadu_ps(m0, src + k));
            _mm512_mask_storeu_epi16(dst + k, mout, (__m512i)h);
        }
    }
}

/// Panels per task: a run of consecutive panels is one sequential stream
/// for the hardware prefetcher, and a few runs per thread still balance load
/// when a core is shared.
#define TASKS_PER_THREAD 4

/// Bytes of activation rows kept hot in L2 while a run of panels goes by.
#define ROW_BLOCK_BYTES (512 * 1024)

static AVX512 void panel_task(void *vargs, int task, int ntasks) {
    const panel_args *a = vargs;
    int npanels = (a->out + PANEL - 1) / PANEL;
    int p0 = (int)((long)npanels * task / ntasks), p1 = (int)((long)npanels * (task + 1) / ntasks);
    // Prefill-sized inputs are taken in blocks of rows small enough to stay in
    // L2 while every panel of the run passes over them; otherwise each panel
    // would re-read all rows from L3.
    int row_bytes = a->xb ? a->xb_stride * (int)sizeof(uint16_t) : a->in * (int)sizeof(float);
    int block = ROW_BLOCK_BYTES / row_bytes / MR * MR;
    if (block < MR) block = MR;
    for (int r0 = 0; r0 < a->rows; r0 += block) {
        int r1 = r0 + block < a->rows ? r0 + block : a->rows;
        for (int p = p0; p < p1; p++) {
            int n0 = p * PANEL, n_valid = a->out - n0 < PANEL ? a->out - n0 : PANEL;
            const uint16_t *panel = a->panels + (size_t)p * PANEL * a->in;
            // While the first row block streams this panel in, pull the next one
            // towards L1 at the same pace: with many rows per block the kernel is
            // compute-bound and the hardware prefetcher alone falls behind DRAM.
            const uint16_t *next = p + 1 < p1 ? panel + (size_t)PANEL * a->in : panel;
            const float *bias = a->bias ? a->bias + n0 : NULL;
            for (int r = r0; r < r1; r += MR) {
                int mr = r1 - r < MR ? r1 - r : MR;
                const uint16_t *prefetch = r == r0 ? next : panel;
                float *y = a->y + (size_t)r * a->out + n0;
                if (a->xb)
                    panel_block_bf16_any(mr, a->xb + (size_t)r * a->xb_stride, a->xb_stride, a->in, panel, prefetch,
                                         n_valid, bias, y, a->out);
                else
                    panel_block_any(mr, a->x + (size_t)r * a->in, a->in, panel, prefetch, n_valid, bias, y, a->out);
            }
        }
    }
}

void pds_linear_panels(pds_pool *pool, const float *x, int rows, int in,
                       const uint16_t *panels, int out, const float *bias, float *y) {
    if (rows <= 0 || out <= 0) return;
    panel_args a = { x, rows, in, out, panels, bias, y, NULL, 0 };
    int npanels = (out + PANEL - 1) / PANEL, ntasks = pds_pool_size(pool) * TASKS_PER_THREAD;
    pds_pool_run(pool, panel_task, &a, ntasks < npanels ? ntasks : npanels);
}

void pds_linear_panels_bf16(pds_pool *pool, const float *x, int rows, int in,
                            const uint16_t *panels, int out, const float *bias, float *y) {
    if (rows <= 0 || out <= 0) return;
    // The rounded activations live in a buffer owned by the calling thread
    // (the engine thread), grown to the largest prefill chunk and kept, so a
    // step allocates nothing; workers only read it during this call.
    static _Thread_local uint16_t *scratch;
    static _Thread_local size_t scratch_bytes;
    int stride = (in + 1) & ~1;
    size_t need = (size_t)rows * stride * sizeof(uint16_t);
    if (need > scratch_bytes) {
        free(scratch);
        scratch_bytes = (need + 4095) & ~(size_t)4095;
        scratch = aligned_alloc(64, scratch_bytes);
        if (!scratch) abort();
    }
    panel_args a = { x, rows, in, out, panels, bias, y, scratch, stride };
    int threads = pds_pool_size(pool);
    pds_pool_run(pool, round_rows_task, &a, threads < rows ? threads : rows);
    int npanels = (out + PANEL - 1) / PANEL, ntasks = threads * TASKS_PER_THREAD;
    pds_pool_run(pool, panel_task, &a, ntasks < npanels ? ntasks : npanels);
}
