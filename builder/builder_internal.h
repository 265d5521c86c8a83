/*
 * builder_internal.h - the builder handle and the walk shared by identify, archive and explain.
 */
#ifndef DTN_BUILDER_INTERNAL_H
#define DTN_BUILDER_INTERNAL_H

#include "cache.h"
#include "dtn_builder.h"
#include "hash.h"
#include "ignore.h"
#include "internal.h"
#include "pool.h"

/* What each hashing thread owns. */
typedef struct dtn__hasher {
	dtn__sha256 *sha;
	char *buf;
} dtn__hasher;

/* The size of the buffers files are read through. */
#define DTN__READ_BUF (256u * 1024u)

/* A `.dockerignore` already read, by the directory it lives in. */
typedef struct dtn__root_rules {
	char *root;
	dtn__ignore *rules; /* NULL: the root has no .dockerignore */
} dtn__root_rules;

struct dtn_builder {
	dtn_builder_opts opts;
	dtn__cache *cache;
	dtn__pool *pool;
	dtn__hasher *hashers; /* one per pool thread */
	dtn__root_rules *roots;
	size_t nroots;
};

/* The `.dockerignore` rules of `root` (NULL when it has none), read once per builder. */
int dtn__builder_root_rules(dtn_builder *b, const char *root, const dtn__ignore **out,
			    dtn_error *err);

/* Reports a warning through the application's callback. */
void dtn__builder_warn(dtn_builder *b, const char *fmt, ...) DTN__PRINTF(2, 3);

#endif
