// A STREAM-style read probe: how fast this machine streams memory into
// registers. Decode GEMV is bounded by exactly this, so the benchmark
// reports the GEMV's GB/s as a fraction of it.
#include "KernelsC.h"
#include <immintrin.h>

typedef struct {
    const float *buf;
    size_t count, per_task;
    double *partial;
} read_args;

static void read_task(void *vargs, int task, int ntasks) {
    (void)ntasks;
    const read_args *a = vargs;
    size_t begin = (size_t)task * a->per_task;
    size_t end = begin + a->per_task < a->count ? begin + a->per_task : a->count;
    // Four independent accumulators keep enough loads in flight to saturate
    // the memory system rather than the add latency chain.
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = begin;
    for (; i + 32 <= end; i += 32) {
        // Software prefetch 2 KB ahead (the GEMV prefetches too) adds a few
        // percent over the hardware prefetcher, keeping the probe the higher bound.
        _mm_prefetch((const char *)(a->buf + i + 512), _MM_HINT_T0);
        _mm_prefetch((const char *)(a->buf + i + 528), _MM_HINT_T0);
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a->buf + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a->buf + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a->buf + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a->buf + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    double s = 0;
    for (int k = 0; k < 8; k++) s += lanes[k];
    for (; i < end; i++) s += a->buf[i];
    a->partial[task] = s;
}

double pds_stream_read(pds_pool *pool, const float *buf, size_t count) {
    // Whole 64-byte lines per task, a few tasks per thread for balance.
    enum { TASKS = 64 };
    double partial[TASKS] = {0};
    size_t per_task = ((count + TASKS - 1) / TASKS + 15) & ~(size_t)15;
    int ntasks = (int)((count + per_task - 1) / per_task);
    read_args a = { buf, count, per_task, partial };
    pds_pool_run(pool, read_task, &a, ntasks);
    double s = 0;
    for (int t = 0; t < ntasks; t++) s += partial[t];
    return s;
}
