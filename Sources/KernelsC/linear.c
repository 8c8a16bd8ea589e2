// Linear layers. Decode-sized batches are memory-bound: each weight row is
// streamed once and reused for every activation row while it sits in L1.
// Prefill-sized batches are compute-bound and go to OpenBLAS sgemm.
#include "KernelsC.h"
#include "simd.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

// Above this many activation rows sgemm beats streaming GEMV.
#define GEMV_MAX_ROWS 16
// Output rows per pool task for the GEMV path (multiple of 4).
#define GEMV_BLOCK 32
// Output rows widened from bf16 at a time for the sgemm path.
#define WIDEN_BLOCK 128

typedef struct {
    const float *x;
    int rows, in, out, wtype;
    const void *w;
    const float *bias;
    float *y;
} linear_args;

// 4 weight rows x up to 2 activation rows, accumulated in 8 registers.
#define DEFINE_TILE(NAME, WT, LOAD, SCALAR)                                                   \
static void NAME(const float *x0, const float *x1, const WT *w, int in, float out[2][4]) { \
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;                     \
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;                                     \
    const WT *w0 = w, *w1 = w + in, *w2 = w + 2 * (size_t)in, *w3 = w + 3 * (size_t)in;   \
    int k = 0;                                                                            \
    for (; k + 8 <= in; k += 8) {                                                         \
        __m256 v0 = LOAD(w0 + k), v1 = LOAD(w1 + k), v2 = LOAD(w2 + k), v3 = LOAD(w3 + k); \
        __m256 p = _mm256_loadu_ps(x0 + k);                                               \
        a00 = _mm256_fmadd_ps(p, v0, a00); a01 = _mm256_fmadd_ps(p, v1, a01);             \
        a02 = _mm256_fmadd_ps(p, v2, a02); a03 = _mm256_fmadd_ps(p, v3, a03);             \
        if (x1) {                                                                          \
            __m256 q = _mm256_loadu_ps(x1 + k);                                           \
            a10 = _mm256_fmadd_ps(q, v0, a10); a11 = _mm256_fmadd_ps(q, v1, a11);         \
            a12 = _mm256_fmadd_ps(q, v2, a12); a13 = _mm256_fmadd_ps(q, v3, a13);         \
        }                                                                                  \
    }                                                                                     \
    float s[2][4] = {{hsum256(a00), hsum256(a01), hsum256(a02), hsum256(a03)},            \
                     {hsum256(a10), hsum256(a11), hsum256(a12), hsum256(a13)}};           \
    for (; k < in; k++) {                                                                 \
        float p = x0[k], q = x1 ? x1[k] : 0;                                              \
        float v[4] = {SCALAR(w0[k]), SCALAR(w1[k]), SCALAR(w2[k]), SCALAR(w3[k])};        \
        for (int j = 0; j < 4; j++) { s[0][j] += p * v[j]; s[1][j] += q * v[j]; }         \
    }                                                                                     \
    memcpy(out, s, sizeof s);                                                             \
}

#define IDENTITY(v) (v)
DEFINE_TILE(tile_f32, float, _mm256_loadu_ps, IDENTITY)
DEFINE_TILE(tile_bf16, uint16_t, load_bf16x8, bf16_to_f32)

static void gemv_task(void *vargs, int task, int ntasks) {
    (void)ntasks;
    const linear_args *a = vargs;
    int o0 = task * GEMV_BLOCK, o1 = o0 + GEMV_BLOCK < a->out ? o0 + GEMV_BLOCK : a->out;
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
        for (int r = 0; r < a->rows; r += 2) {
            const float *x0 = a->x + (size_t)r * a->in;
            const float *x1 = r + 1 < a->rows ? x0 + a->in : NULL;
            float s[2][4];
            if (a->wtype == PDS_BF16) tile_bf16(x0, x1, (const uint16_t *)a->w + (size_t)o * a->in, a->in, s);
            else tile_f32(x0, x1, (const float *)a->w + (size_t)o * a->in, a->in, s);
            for (int i = 0; i < (x1 ? 2 : 1); i++)
                for (int j = 0; j < 4; j++)
                    a->y[(size_t)(r + i) * a->out + o + j] = s[i][j] + (a->bias ? a->bias[o + j] : 0.0f);
        }
    }
    for (; o < o1; o++) {
        for (int r = 0; r < a->rows; r++) {
            const float *x = a->x + (size_t)r * a->in;
            float s = a->wtype == PDS_BF16 ? dot_f32_bf16(x, (const uint16_t *)a->w + (size_t)o * a->in, a->in)
                                           : dot_f32(x, (const float *)a->w + (size_t)o * a->in, a->in);
            a->y[(size_t)r * a->out + o] = s + (a->bias ? a->bias[o] : 0.0f);
        }
    }
}

static void add_bias(float *y, int rows, int out, const float *bias) {
    if (!bias) return;
    for (int r = 0; r < rows; r++) pds_add(y + (size_t)r * out, bias, (size_t)out);
}

void pds_linear(pds_pool *pool, const float *x, int rows, int in,
                const void *w, int wtype, int out, const float *bias, float *y) {
    if (rows <= 0 || out <= 0) return;
    if (rows <= GEMV_MAX_ROWS) {
        linear_args a = { x, rows, in, out, wtype, w, bias, y };
        pds_pool_run(pool, gemv_task, &a, (out + GEMV_BLOCK - 1) / GEMV_BLOCK);
        return;
    }
    if (wtype == PDS_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in,
                    (const float *)w, in, 0.0f, y, out);
    } else {
        float *block = malloc(sizeof(float) * (size_t)WIDEN_BLOCK * (size_t)in);
        for (int o = 0; o < out; o += WIDEN_BLOCK) {
            int n = out - o < WIDEN_BLOCK ? out - o : WIDEN_BLOCK;
            pds_bf16_to_f32((const uint16_t *)w + (size_t)o * in, block, (size_t)n * in);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, in, 1.0f, x, in,
                        block, in, 0.0f, y + o, out);
        }
        free(block);
    }
    add_bias(y, rows, out, bias);
}

void pds_blas_set_threads(int nthreads) { openblas_set_num_threads(nthreads); }
