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
} panel_args;

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
    __mmask16 mlo = n_valid >= 16 ? 0xFFFF : (__mmask16)((1u << n_valid) - 1);
    __mmask16 mhi = n_valid >= 32 ? 0xFFFF : n_valid <= 16 ? 0 : (__mmask16)((1u << (n_valid - 16)) - 1);
    __m512 blo = bias ? _mm512_maskz_loadu_ps(mlo, bias) : _mm512_setzero_ps();
    __m512 bhi = bias ? _mm512_maskz_loadu_ps(mhi, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++) {
        if (split) { lo[r] = _mm512_add_ps(lo[r], lo2[r]); hi[r] = _mm512_add_ps(hi[r], hi2[r]); }
        _mm512_mask_storeu_ps(y + (size_t)r * out, mlo, _mm512_add_ps(lo[r], blo));
        _mm512_mask_storeu_ps(y + (size_t)r * out + 16, mhi, _mm512_add_ps(hi[r], bhi));
    }
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
    int block = ROW_BLOCK_BYTES / (a->in * (int)sizeof(float)) / MR * MR;
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
                panel_block_any(mr, a->x + (size_t)r * a->in, a->in, panel, r == r0 ? next : panel, n_valid, bias,
                                a->y + (size_t)r * a->out + n0, a->out);
            }
        }
    }
}

void pds_linear_panels(pds_pool *pool, const float *x, int rows, int in,
                       const uint16_t *panels, int out, const float *bias, float *y) {
    if (rows <= 0 || out <= 0) return;
    panel_args a = { x, rows, in, out, panels, bias, y };
    int npanels = (out + PANEL - 1) / PANEL, ntasks = pds_pool_size(pool) * TASKS_PER_THREAD;
    pds_pool_run(pool, panel_task, &a, ntasks < npanels ? ntasks : npanels);
}
