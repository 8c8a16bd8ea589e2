// A small persistent worker pool. Hand-offs happen per layer kernel (many
// per token), so workers spin briefly before sleeping: waking a sleeping
// thread costs tens of microseconds, a spinning one about one.
#include "KernelsC.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <immintrin.h>

#define SPIN_ITERATIONS 20000

struct pds_pool {
    int size;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint_fast64_t generation;
    atomic_int next_task;
    atomic_int finished_workers;
    atomic_int stopping;
    pds_task_fn fn;
    void *ctx;
    int ntasks;
};

static void run_tasks(pds_pool *pool) {
    for (;;) {
        int task = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (task >= pool->ntasks) break;
        pool->fn(pool->ctx, task, pool->ntasks);
    }
}

static void *worker_main(void *arg) {
    pds_pool *pool = arg;
    uint_fast64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen) {
            if (atomic_load_explicit(&pool->stopping, memory_order_relaxed)) return NULL;
            if (++spins < SPIN_ITERATIONS) { _mm_pause(); continue; }
            pthread_mutex_lock(&pool->mutex);
            while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&pool->stopping, memory_order_relaxed))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load_explicit(&pool->stopping, memory_order_relaxed)) return NULL;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        run_tasks(pool);
        atomic_fetch_add_explicit(&pool->finished_workers, 1, memory_order_release);
    }
}

pds_pool *pds_pool_create(int nthreads) {
    if (nthreads < 1) nthreads = 1;
    pds_pool *pool = calloc(1, sizeof(pds_pool));
    pool->size = nthreads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    for (int i = 1; i < nthreads; i++) pthread_create(&pool->threads[i], NULL, worker_main, pool);
    return pool;
}

void pds_pool_destroy(pds_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stopping, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->size; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    free(pool->threads);
    free(pool);
}

int pds_pool_size(const pds_pool *pool) { return pool ? pool->size : 1; }

void pds_pool_run(pds_pool *pool, pds_task_fn fn, void *ctx, int ntasks) {
    if (ntasks <= 0) return;
    if (!pool || pool->size == 1 || ntasks == 1) {
        for (int i = 0; i < ntasks; i++) fn(ctx, i, ntasks);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->ntasks = ntasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->finished_workers, 0, memory_order_relaxed);
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    run_tasks(pool);
    // When the cores are oversubscribed a worker may be descheduled: after a
    // short spin, yield so it can run instead of burning our time slice.
    for (int spins = 0; atomic_load_explicit(&pool->finished_workers, memory_order_acquire) < pool->size - 1; spins++) {
        if (spins < SPIN_ITERATIONS) _mm_pause();
        else sched_yield();
    }
}
