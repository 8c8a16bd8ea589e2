// Paged attention. Each (query token, head) pair is one unit of work: scores
// over its visible context, a softmax, then a weighted sum of V rows.
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

typedef struct {
    const pds_attn_seq *seqs;
    const int32_t *token_seq;   // sequence index of each batch token
    const float *q;
    float *out;
    const void *kcache, *vcache;
    int kv_type, heads, kv_heads, head_dim, page_size, window, total_tokens, units_per_task;
    float scale;
} attn_args;

static _Thread_local float *score_buffer;
static _Thread_local size_t score_capacity;

static float *scores_for(size_t n) {
    if (n > score_capacity) {
        free(score_buffer);
        score_capacity = n * 2;
        score_buffer = malloc(sizeof(float) * score_capacity);
    }
    return score_buffer;
}

static void attend_one(const attn_args *a, int token, int head) {
    const pds_attn_seq *s = &a->seqs[a->token_seq[token]];
    int pos = s->start_position + (token - s->token_offset);
    int first = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
    int n = pos - first + 1;
    int dim = a->head_dim, kvh = head / (a->heads / a->kv_heads);
    size_t kv_width = (size_t)a->kv_heads * dim;
    const float *q = a->q + ((size_t)token * a->heads + head) * dim;
    float *out = a->out + ((size_t)token * a->heads + head) * dim;
    float *scores = scores_for((size_t)n);

    float max_score = -INFINITY;
    for (int j = 0; j < n; j++) {
        int p = first + j;
        size_t slot = (size_t)s->page_table[p / a->page_size] * a->page_size + p % a->page_size;
        size_t off = slot * kv_width + (size_t)kvh * dim;
        float d = a->kv_type == PDS_BF16 ? dot_f32_bf16(q, (const uint16_t *)a->kcache + off, dim)
                                         : dot_f32(q, (const float *)a->kcache + off, dim);
        scores[j] = d * a->scale;
        if (scores[j] > max_score) max_score = scores[j];
    }
    float sum = 0;
    for (int j = 0; j < n; j++) { scores[j] = expf(scores[j] - max_score); sum += scores[j]; }
    float inv = 1.0f / sum;
    memset(out, 0, sizeof(float) * (size_t)dim);
    for (int j = 0; j < n; j++) {
        int p = first + j;
        size_t slot = (size_t)s->page_table[p / a->page_size] * a->page_size + p % a->page_size;
        size_t off = slot * kv_width + (size_t)kvh * dim;
        float w = scores[j] * inv;
        if (a->kv_type == PDS_BF16) axpy_bf16(out, w, (const uint16_t *)a->vcache + off, dim);
        else axpy_f32(out, w, (const float *)a->vcache + off, dim);
    }
}

static void attention_task(void *vargs, int task, int ntasks) {
    (void)ntasks;
    const attn_args *a = vargs;
    int units = a->total_tokens * a->heads;
    int begin = task * a->units_per_task;
    int end = begin + a->units_per_task < units ? begin + a->units_per_task : units;
    for (int u = begin; u < end; u++) attend_one(a, u / a->heads, u % a->heads);
}

void pds_attention(pds_pool *pool, const pds_attn_seq *seqs, int nseqs, int total_tokens,
                   const float *q, int heads, int kv_heads, int head_dim,
                   const void *kcache, const void *vcache, int kv_type, int page_size,
                   int window, float scale, float *out) {
    if (total_tokens <= 0) return;
    int32_t *token_seq = malloc(sizeof(int32_t) * (size_t)total_tokens);
    for (int s = 0; s < nseqs; s++)
        for (int t = 0; t < seqs[s].token_count; t++) token_seq[seqs[s].token_offset + t] = s;
    int units = total_tokens * heads;
    int ntasks = pds_pool_size(pool) * 8;
    if (ntasks > units) ntasks = units;
    attn_args a = { seqs, token_seq, q, out, kcache, vcache, kv_type, heads, kv_heads, head_dim,
                    page_size, window, total_tokens, (units + ntasks - 1) / ntasks, scale };
    pds_pool_run(pool, attention_task, &a, (units + a.units_per_task - 1) / a.units_per_task);
    free(token_seq);
}
