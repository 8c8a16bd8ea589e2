#ifndef PDSERVE_KERNELSC_H
#define PDSERVE_KERNELSC_H
// CPU compute kernels for PDServe. Plain C with AVX2/FMA intrinsics so the hot
// loops compile to predictable code; Swift wraps them behind safe types.
#include <stdint.h>
#include <stddef.h>

// MARK: dtype conversion

/// Widens `count` bfloat16 values (raw bits) to float32.
void pds_bf16_to_f32(const uint16_t *src, float *dst, size_t count);
/// Narrows `count` float32 values to bfloat16 with round-to-nearest-even.
void pds_f32_to_bf16(const float *src, uint16_t *dst, size_t count);
/// Widens `count` IEEE half values (raw bits) to float32.
void pds_f16_to_f32(const uint16_t *src, float *dst, size_t count);

// MARK: worker pool

/// A fixed set of worker threads that run one parallel loop at a time.
/// The calling thread takes part, so a pool of size 1 runs everything inline.
typedef struct pds_pool pds_pool;
typedef void (*pds_task_fn)(void *ctx, int task, int ntasks);

pds_pool *pds_pool_create(int nthreads);
void pds_pool_destroy(pds_pool *pool);
int pds_pool_size(const pds_pool *pool);
/// Runs fn(ctx, i, ntasks) for every i in [0, ntasks) across the pool and returns when all are done.
void pds_pool_run(pds_pool *pool, pds_task_fn fn, void *ctx, int ntasks);

/// Reads `count` floats across the pool (a STREAM-style read-bandwidth
/// probe) and returns their sum so the reads cannot be optimised away.
double pds_stream_read(pds_pool *pool, const float *buf, size_t count);

/// Sets OpenBLAS's thread count (used by the large-batch linear path).
void pds_blas_set_threads(int nthreads);

// MARK: linear layers  y[t, o] = sum_k x[t, k] * W[o, k] (+ bias[o])

/// Weight element types.
enum { PDS_F32 = 0, PDS_BF16 = 1 };

/// x: [rows, in] (row stride `in`); W: [out, in] row-major of dtype `wtype`;
/// y: [rows, out]. Small `rows` stream W once with SIMD dot products; large
/// `rows` use OpenBLAS sgemm (bf16 weights widened block by block).
void pds_linear(pds_pool *pool, const float *x, int rows, int in,
                const void *w, int wtype, int out, const float *bias, float *y);

/// Whether the AVX-512 kernels run: the CPU has AVX-512 F/BW and the
/// portable path was not forced.
int pds_avx512_enabled(void);
/// Forces the portable (AVX2) kernels even on an AVX-512 CPU (tests, comparisons).
void pds_force_portable_kernels(int on);
/// Elements (uint16) of the panel layout of a [rows, cols] bf16 matrix.
size_t pds_panel_elements(int rows, int cols);
/// Repacks a row-major [rows, cols] bf16 matrix into 32-row column panels
/// (see linear_panels.c); panels holds pds_panel_elements(rows, cols) values.
void pds_pack_bf16_panels(const uint16_t *w, int rows, int cols, uint16_t *panels);
/// y = x · Wᵀ (+ bias) with W in panel layout; AVX-512 only (check
/// pds_avx512_enabled() before packing). Any number of rows.
void pds_linear_panels(pds_pool *pool, const float *x, int rows, int in,
                       const uint16_t *panels, int out, const float *bias, float *y);
/// Whether pds_linear_panels_bf16 runs here: the AVX-512 kernels run and
/// the CPU has AVX512_BF16.
int pds_bf16_matmul_enabled(void);
/// As pds_linear_panels, but x is rounded to bf16 (nearest even) and the
/// products are summed by vdpbf16ps in fp32: twice the multiply-adds per
/// instruction, results no longer fp32-exact. Check pds_bf16_matmul_enabled().
void pds_linear_panels_bf16(pds_pool *pool, const float *x, int rows, int in,
                            const uint16_t *panels, int out, const float *bias, float *y);

// MARK: element-wise

/// out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * weight, for rows of `dim` floats.
void pds_rmsnorm(const float *x, const float *weight, float eps, int rows, int dim, float *out);
/// In place: x[i] = silu(gate[i]) * x[i] over `count` values.
void pds_silu_mul(const float *gate, float *x, size_t count);
/// In place: x[i] += y[i].
void pds_add(float *x, const float *y, size_t count);
/// Rotary embedding (rotate-half convention) in place on x: [tokens, heads, head_dim].
/// Angle for token t, pair i: positions[t] * inv_freq[i].
void pds_rope(float *x, int tokens, int heads, int head_dim, const int32_t *positions, const float *inv_freq);

// MARK: paged KV cache and attention

/// Copies per-token K or V rows ([tokens, width] floats) into cache slots.
/// cache is [num_slots, width] of dtype kv_type.
void pds_kv_store(const float *src, int tokens, int width, const int32_t *slots, void *cache, int kv_type);

/// One sequence's query span inside a batch.
typedef struct {
    int32_t token_offset;   // first row of this sequence in q/out
    int32_t token_count;    // query tokens of this sequence
    int32_t start_position; // absolute position of its first query token
    const int32_t *page_table;
} pds_attn_seq;

/// One cache tensor as attention reads it: element (slot, kv head h, d) is
/// base[slot * stride + h * head_dim + d], of `type` (PDS_F32 or PDS_BF16).
typedef struct {
    const void *base;
    int stride;
    int head_dim;
    int type;
} pds_kv_operand;

/// Causal GQA attention over a paged cache, keys and values described apart:
/// their head dims, row strides and dtypes may differ (MLA reads K as a
/// latent row plus a rotary part and V as the latent alone).
/// q: [tokens, heads*k.head_dim]; out: [tokens, heads*v.head_dim].
/// Query token at position p attends cached positions [max(0, p-window+1), p]
/// (window <= 0 means unlimited). Slots are page_table[pos / page_size] * page_size + pos % page_size.
void pds_attention_kv(pds_pool *pool, const pds_attn_seq *seqs, int nseqs, int total_tokens,
                      const float *q, int heads, int kv_heads, pds_kv_operand k, pds_kv_operand v,
                      int page_size, int window, float scale, float *out);

#endif
