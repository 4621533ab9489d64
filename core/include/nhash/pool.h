/*
 * nhash worker pool: one set of threads that serves every parallel stage (the pipeline's
 * decode workers, nh_decode_pool). Work comes as jobs of n items; each item is one call
 * fn(ctx, worker, i) on some worker (worker: 0 .. threads-1, so per-worker scratch can be
 * indexed by it). Workers take items from the oldest posted job that has items left, so
 * a job posted while another runs starts as soon as the first runs out of items (the
 * pipeline's two batches overlap this way).
 */
#ifndef NHASH_POOL_H
#define NHASH_POOL_H

#include <stddef.h>

#include "nhash/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nh_pool nh_pool;
typedef void (*nh_pool_fn)(void *ctx, int worker, size_t i);

/* A job. Caller-owned, filled by nh_pool_post; the fields are the pool's while posted. */
typedef struct nh_pool_job {
    nh_pool_fn fn;
    void *ctx;
    size_t n, next, done;
    struct nh_pool_job *later; /* the queue, oldest first */
} nh_pool_job;

/*
 * Start nthreads workers (0 = online CPUs). at_exit (may be NULL) runs on each worker as it
 * ends (libvips' per-thread buffers are dropped that way). *out is returned-owned.
 */
nh_status nh_pool_create(int nthreads, void (*at_exit)(void), nh_pool **out, nh_error *err);
/* Finish nothing more: workers stop after their current item and are joined. NULL is a
 * no-op. Jobs still posted must not be waited on afterwards. */
void nh_pool_destroy(nh_pool *p);
int nh_pool_threads(const nh_pool *p);

/* Queue n items of fn(ctx, worker, i); returns at once. job is borrowed until waited on. */
void nh_pool_post(nh_pool *p, nh_pool_job *job, size_t n, nh_pool_fn fn, void *ctx);
/* Block until every item of a posted job is done, and take it off the queue. */
void nh_pool_wait(nh_pool *p, nh_pool_job *job);
/* Post and wait. */
void nh_pool_run(nh_pool *p, size_t n, nh_pool_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
