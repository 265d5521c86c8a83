/*
 * builder.c - the builder handle: options, the digest cache, the hashing threads, the
 * `.dockerignore` files read so far, and explaining the ignore rules' decisions.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "builder_internal.h"

/* No more hashing threads than this, whatever the machine. */
#define MAX_THREADS 16

/* `.dockerignore` files larger than this are refused. */
#define DOCKERIGNORE_MAX (1u << 20)

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

int dtn_builder_new(dtn_builder **out, const dtn_builder_opts *opts, dtn_error *err)
{
	dtn_builder *b = dtn__calloc(1, sizeof(*b));
	unsigned threads;
	int rc;

	*out = NULL;
	dtn_error_clear(err);
	if (!b)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if (opts)
		b->opts = *opts;
	threads = b->opts.threads ? b->opts.threads : default_threads();
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if ((rc = dtn__cache_open(&b->cache, b->opts.cache_dir, err)) < 0)
		goto fail;
	if ((rc = dtn__pool_new(&b->pool, threads)) < 0) {
		dtn__error_set(err, rc, "cannot start the hashing threads");
		goto fail;
	}
	if (!(b->hashers = dtn__calloc(threads, sizeof(*b->hashers)))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < threads; i++) {
		b->hashers[i].sha = dtn__sha256_new();
		b->hashers[i].buf = dtn__malloc(DTN__READ_BUF);
		if (!b->hashers[i].sha || !b->hashers[i].buf) {
			rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
			goto fail;
		}
	}
	*out = b;
	return 0;
fail:
	dtn_builder_free(b);
	return rc;
}

int dtn_builder_save_cache(dtn_builder *b, dtn_error *err)
{
	dtn_error_clear(err);
	return dtn__cache_save(b->cache, err);
}

void dtn_builder_free(dtn_builder *b)
{
	if (!b)
		return;
	if (b->hashers && b->pool)
		for (unsigned i = 0; i < dtn__pool_threads(b->pool); i++) {
			dtn__sha256_free(b->hashers[i].sha);
			dtn__free(b->hashers[i].buf);
		}
	dtn__free(b->hashers);
	dtn__pool_free(b->pool);
	dtn__cache_free(b->cache);
	for (size_t i = 0; i < b->nroots; i++) {
		dtn__free(b->roots[i].root);
		dtn__ignore_free(b->roots[i].rules);
	}
	dtn__free(b->roots);
	dtn__free(b);
}

void dtn__builder_warn(dtn_builder *b, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!b->opts.warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->opts.warn(msg, b->opts.payload);
}

/* Reads root/.dockerignore into *rules (NULL when there is none). */
static int read_rules(const char *root, dtn__ignore **rules, dtn_error *err)
{
	char *path = dtn__aprintf("%s/.dockerignore", root), *text = NULL;
	size_t len;
	int rc;

	*rules = NULL;
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	rc = dtn__read_file(&text, &len, path, path, DOCKERIGNORE_MAX, err);
	if (rc == DTN_ENOTFOUND) {
		dtn_error_clear(err);
		rc = 0;
	} else if (rc == 0) {
		if ((rc = dtn__ignore_new(rules)) < 0)
			dtn__error_set(err, rc, "out of memory");
		else if ((rc = dtn__ignore_add_text(*rules, text, len, path, err)) < 0) {
			dtn__ignore_free(*rules);
			*rules = NULL;
		}
	}
	dtn__free(text);
	dtn__free(path);
	return rc;
}

int dtn__builder_root_rules(dtn_builder *b, const char *root, const dtn__ignore **out,
			    dtn_error *err)
{
	dtn__root_rules *roots;
	dtn__ignore *rules;
	char *copy;
	int rc;

	for (size_t i = 0; i < b->nroots; i++)
		if (!strcmp(b->roots[i].root, root)) {
			*out = b->roots[i].rules;
			return 0;
		}
	if ((rc = read_rules(root, &rules, err)) < 0)
		return rc;
	roots = dtn__realloc(b->roots, (b->nroots + 1) * sizeof(*roots));
	copy = dtn__strdup(root);
	if (roots)
		b->roots = roots;
	if (!roots || !copy) {
		dtn__free(copy);
		dtn__ignore_free(rules);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	b->roots[b->nroots++] = (dtn__root_rules){copy, rules};
	*out = rules;
	return 0;
}
