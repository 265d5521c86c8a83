/*
 * pool.h - a fixed set of threads that run the iterations of a loop in parallel. Internal.
 */
#ifndef DTN_BUILDER_POOL_H
#define DTN_BUILDER_POOL_H

#include <stddef.h>

typedef struct dtn__pool dtn__pool;

/* Work for iteration i, done by thread `worker` (0 is the caller, 1.. the pool's threads). */
typedef void (*dtn__pool_fn)(size_t i, unsigned worker, void *arg);

/* A pool for `threads` threads in all, the caller's included (so threads - 1 are started).
 * Returns 0, DTN_ENOMEM, or DTN_ERROR when a thread cannot be started. */
int dtn__pool_new(dtn__pool **out, unsigned threads);

/* The number of threads, the caller's included. */
unsigned dtn__pool_threads(const dtn__pool *p);

/* Runs fn for every i in [0, n) and returns when all are done. The caller works too. */
void dtn__pool_run(dtn__pool *p, size_t n, dtn__pool_fn fn, void *arg);

/* Stops and joins the threads. Accepts NULL. */
void dtn__pool_free(dtn__pool *p);

#endif
