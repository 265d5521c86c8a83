/*
 * pool.c - threads that share the iterations of a loop. The caller hands out a batch and works
 * on it too; iterations are claimed one at a time from a shared counter, so a few large files
 * and many small ones balance by themselves.
 */
#include <pthread.h>
#include <stdbool.h>

#include "internal.h"
#include "pool.h"

struct dtn__pool {
	pthread_mutex_t lock;
	pthread_cond_t work;   /* a batch is there, or the pool is stopping */
	pthread_cond_t done;   /* a thread finished its part of the batch */
	pthread_t *threads;
	unsigned nthreads;     /* started threads (the caller not counted) */
	unsigned busy;         /* threads still in the current batch */
	unsigned long batch;   /* counts batches, so a thread joins each one once */
	bool stopping;
	dtn__pool_fn fn;
	void *arg;
	size_t n, next;
};

/* Claims and runs iterations until none are left. */
static void drain(dtn__pool *p, unsigned worker)
{
	for (;;) {
		size_t i;

		pthread_mutex_lock(&p->lock);
		i = p->next < p->n ? p->next++ : p->n;
		pthread_mutex_unlock(&p->lock);
		if (i >= p->n)
			return;
		p->fn(i, worker, p->arg);
	}
}

struct start {
	dtn__pool *pool;
	unsigned worker;
};

static void *thread_main(void *arg)
{
	dtn__pool *p = ((struct start *)arg)->pool;
	unsigned worker = ((struct start *)arg)->worker;
	unsigned long seen = 0;

	dtn__free(arg);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stopping && p->batch == seen)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stopping)
			break;
		seen = p->batch;
		pthread_mutex_unlock(&p->lock);
		drain(p, worker);
		pthread_mutex_lock(&p->lock);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int dtn__pool_new(dtn__pool **out, unsigned threads)
{
	dtn__pool *p = dtn__calloc(1, sizeof(*p));
	int rc = 0;

	*out = NULL;
	if (!p)
		return DTN_ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	if (threads > 1 && !(p->threads = dtn__calloc(threads - 1, sizeof(*p->threads)))) {
		dtn__pool_free(p);
		return DTN_ENOMEM;
	}
	for (unsigned i = 1; i < threads && rc == 0; i++) {
		struct start *s = dtn__malloc(sizeof(*s));

		if (!s) {
			rc = DTN_ENOMEM;
		} else {
			*s = (struct start){p, i};
			if (pthread_create(&p->threads[p->nthreads], NULL, thread_main, s) != 0) {
				dtn__free(s);
				rc = DTN_ERROR;
			} else {
				p->nthreads++;
			}
		}
	}
	if (rc < 0) {
		dtn__pool_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

unsigned dtn__pool_threads(const dtn__pool *p)
{
	return p->nthreads + 1;
}

void dtn__pool_run(dtn__pool *p, size_t n, dtn__pool_fn fn, void *arg)
{
	/* a batch of one needs no other thread */
	if (p->nthreads == 0 || n < 2) {
		for (size_t i = 0; i < n; i++)
			fn(i, 0, arg);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->next = 0;
	p->busy = p->nthreads;
	p->batch++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	drain(p, 0);
	pthread_mutex_lock(&p->lock);
	while (p->busy)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void dtn__pool_free(dtn__pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	dtn__free(p->threads);
	dtn__free(p);
}
