// Paged causal GQA attention, tiled flash-style.
//
// Why tiles: the first cut took one (token, head) at a time, so every score
// was a short dot product ending in a horizontal sum, and each K/V row was
// re-read for every head of its group. Here one unit of work is a block of
// query tokens of one sequence times all heads sharing one KV head; keys go
// by in tiles of 8, transposed once into [dim][8] so each query row gets 8
// scores from plain 8-wide FMAs, and an online softmax (running max and sum)
// folds each tile into the output without storing a row of scores.
#include "KernelsC.h"
#include "simd.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void pds_kv_store(const float *src, int tokens, int width, const int32_t *slots, void *cache, int kv_type) {
    for (int t = 0; t < tokens; t++) {
        const float *row = src + (size_t)t * width;
        size_t base = (size_t)slots[t] * width;
        if (kv_type == PDS_BF16) pds_f32_to_bf16(row, (uint16_t *)cache + base, (size_t)width);
        else memcpy((float *)cache + base, row, sizeof(float) * (size_t)width);
    }
}

/// Keys per tile: one AVX2 vector of scores.
#define KT 8
/// Query tokens per unit of work; with 4 heads per KV head that is 32 query rows.
#define QB 8

typedef struct {
    const pds_attn_seq *seqs;
    const int32_t *unit_seq;    // sequence of each unit
    const int32_t *unit_block;  // query block within that sequence
    const float *q;
    float *out;
    pds_kv_operand k, v;
    int heads, kv_heads, page_size, window;
    float scale;
} attn_args;

/// Per-thread scratch: transposed K tile, V tile, and per-row output/max/sum.
typedef struct {
    float *kt, *v, *acc, *row_max, *row_sum;
    int kdim, vdim, rows;  // what it was sized for
} attn_scratch;

static _Thread_local attn_scratch scratch;

static int max_int(int a, int b) { return a > b ? a : b; }

static void ensure_scratch(int kdim, int vdim, int rows) {
    if (scratch.kt && kdim <= scratch.kdim && vdim <= scratch.vdim && rows <= scratch.rows) return;
    kdim = max_int(kdim, scratch.kdim);
    vdim = max_int(vdim, scratch.vdim);
    rows = max_int(rows, scratch.rows);
    free(scratch.kt); free(scratch.v); free(scratch.acc); free(scratch.row_max); free(scratch.row_sum);
    scratch.kt = malloc(sizeof(float) * (size_t)kdim * KT);
    scratch.v = malloc(sizeof(float) * (size_t)vdim * KT);
    scratch.acc = malloc(sizeof(float) * (size_t)vdim * (size_t)rows);
    scratch.row_max = malloc(sizeof(float) * (size_t)rows);
    scratch.row_sum = malloc(sizeof(float) * (size_t)rows);
    scratch.kdim = kdim;
    scratch.vdim = vdim;
    scratch.rows = rows;
}

/// Head `kvh`'s part of the row of position `pos` in one cache tensor.
static inline const void *kv_row(const attn_args *a, const pds_kv_operand *op, const pds_attn_seq *s, int pos, int kvh) {
    size_t slot = (size_t)s->page_table[pos / a->page_size] * a->page_size + pos % a->page_size;
    size_t off = slot * (size_t)op->stride + (size_t)kvh * op->head_dim;
    return op->type == PDS_BF16 ? (const void *)((const uint16_t *)op->base + off) : (const void *)((const float *)op->base + off);
}

static inline void load_row(const pds_kv_operand *op, const void *src, float *dst) {
    if (op->type == PDS_BF16) pds_bf16_to_f32(src, dst, (size_t)op->head_dim);
    else memcpy(dst, src, sizeof(float) * (size_t)op->head_dim);
}

/// Loads keys [k0, k0+n) into kt[d*KT + j] (transposed) and values into v[j*vdim + d]; missing keys are zero.
static void load_tile(const attn_args *a, const pds_attn_seq *s, int kvh, int k0, int n, float *kt, float *v) {
    int kdim = a->k.head_dim, vdim = a->v.head_dim;
    float row[kdim];
    for (int j = 0; j < KT; j++) {
        if (j < n) {
            load_row(&a->k, kv_row(a, &a->k, s, k0 + j, kvh), row);
            load_row(&a->v, kv_row(a, &a->v, s, k0 + j, kvh), v + (size_t)j * vdim);
        } else {
            memset(row, 0, sizeof(float) * (size_t)kdim);
            memset(v + (size_t)j * vdim, 0, sizeof(float) * (size_t)vdim);
        }
        for (int d = 0; d < kdim; d++) kt[d * KT + j] = row[d];
    }
}

/// scores[0..8) = q · K-tile, four accumulators to hide FMA latency.
static inline __m256 tile_scores(const float *q, const float *kt, int dim) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int d = 0;
    for (; d + 4 <= dim; d += 4) {
        s0 = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(kt + d * KT), s0);
        s1 = _mm256_fmadd_ps(_mm256_set1_ps(q[d + 1]), _mm256_loadu_ps(kt + (d + 1) * KT), s1);
        s2 = _mm256_fmadd_ps(_mm256_set1_ps(q[d + 2]), _mm256_loadu_ps(kt + (d + 2) * KT), s2);
        s3 = _mm256_fmadd_ps(_mm256_set1_ps(q[d + 3]), _mm256_loadu_ps(kt + (d + 3) * KT), s3);
    }
    for (; d < dim; d++) s0 = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(kt + d * KT), s0);
    return _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
}

/// Folds one key tile into one query row's running softmax and output.
static void fold_tile(const attn_args *a, const float *q, int k0, int first, int last,
                      const float *kt, const float *v, float *acc, float *row_max, float *row_sum) {
    int dim = a->v.head_dim;
    float s[KT];
    _mm256_storeu_ps(s, _mm256_mul_ps(tile_scores(q, kt, a->k.head_dim), _mm256_set1_ps(a->scale)));
    float m = *row_max;
    for (int j = 0; j < KT; j++) {
        int p = k0 + j;
        if (p < first || p > last) s[j] = -INFINITY;
        else if (s[j] > m) m = s[j];
    }
    // m is finite: the caller only folds tiles holding at least one visible key.
    float rescale = expf(*row_max - m);
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s), _mm256_set1_ps(m)));
    _mm256_storeu_ps(s, e);
    float sum = *row_sum * rescale + hsum256(e);
    *row_max = m;
    *row_sum = sum;
    int d = 0;
    __m256 r = _mm256_set1_ps(rescale);
    for (; d + 8 <= dim; d += 8) {
        __m256 o = _mm256_mul_ps(_mm256_loadu_ps(acc + d), r);
        for (int j = 0; j < KT; j++) o = _mm256_fmadd_ps(_mm256_set1_ps(s[j]), _mm256_loadu_ps(v + (size_t)j * dim + d), o);
        _mm256_storeu_ps(acc + d, o);
    }
    for (; d < dim; d++) {
        float o = acc[d] * rescale;
        for (int j = 0; j < KT; j++) o += s[j] * v[(size_t)j * dim + d];
        acc[d] = o;
    }
}

static void attention_unit(void *vargs, int unit, int nunits) {
    (void)nunits;
    const attn_args *a = vargs;
    int group = a->heads / a->kv_heads, kdim = a->k.head_dim, dim = a->v.head_dim;
    int seq_unit = unit / a->kv_heads, kvh = unit % a->kv_heads;
    const pds_attn_seq *s = &a->seqs[a->unit_seq[seq_unit]];
    int t0 = a->unit_block[seq_unit] * QB;
    int nt = s->token_count - t0 < QB ? s->token_count - t0 : QB;
    int rows = nt * group;
    ensure_scratch(kdim, dim, QB * group);
    for (int r = 0; r < rows; r++) scratch.row_max[r] = -INFINITY, scratch.row_sum[r] = 0;
    memset(scratch.acc, 0, sizeof(float) * (size_t)rows * dim);

    // Visible keys of query token t: [first(t), pos(t)]; the block needs the union.
    int pos0 = s->start_position + t0, pos_last = pos0 + nt - 1;
    int lo = a->window > 0 && pos0 - a->window + 1 > 0 ? pos0 - a->window + 1 : 0;
    for (int k0 = lo - lo % KT; k0 <= pos_last; k0 += KT) {
        int n = pos_last + 1 - k0 < KT ? pos_last + 1 - k0 : KT;
        load_tile(a, s, kvh, k0, n, scratch.kt, scratch.v);
        for (int t = 0; t < nt; t++) {
            int pos = pos0 + t;
            int first = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
            if (k0 > pos || k0 + KT <= first) continue;  // no visible key in this tile
            for (int g = 0; g < group; g++) {
                int head = kvh * group + g, r = t * group + g;
                const float *q = a->q + ((size_t)(s->token_offset + t0 + t) * a->heads + head) * kdim;
                fold_tile(a, q, k0, first, pos, scratch.kt, scratch.v, scratch.acc + (size_t)r * dim,
                          &scratch.row_max[r], &scratch.row_sum[r]);
            }
        }
    }
    for (int t = 0; t < nt; t++)
        for (int g = 0; g < group; g++) {
            int head = kvh * group + g, r = t * group + g;
            float *out = a->out + ((size_t)(s->token_offset + t0 + t) * a->heads + head) * dim;
            float inv = 1.0f / scratch.row_sum[r];
            for (int d = 0; d < dim; d++) out[d] = scratch.acc[(size_t)r * dim + d] * inv;
        }
}

void pds_attention_kv(pds_pool *pool, const pds_attn_seq *seqs, int nseqs, int total_tokens,
                      const float *q, int heads, int kv_heads, pds_kv_operand k, pds_kv_operand v,
                      int page_size, int window, float scale, float *out) {
    if (total_tokens <= 0) return;
    int blocks = 0;
    for (int s = 0; s < nseqs; s++) blocks += (seqs[s].token_count + QB - 1) / QB;
    int32_t *unit_seq = malloc(sizeof(int32_t) * (size_t)blocks), *unit_block = malloc(sizeof(int32_t) * (size_t)blocks);
    // Latest query blocks first: they see the most keys, so the long units start early and the pool stays balanced.
    int u = 0;
    for (int s = 0; s < nseqs; s++)
        for (int b = (seqs[s].token_count + QB - 1) / QB - 1; b >= 0; b--) { unit_seq[u] = s; unit_block[u] = b; u++; }
    attn_args a = { seqs, unit_seq, unit_block, q, out, k, v, heads, kv_heads, page_size, window, scale };
    pds_pool_run(pool, attention_unit, &a, blocks * kv_heads);
    free(unit_seq);
    free(unit_block);
}
