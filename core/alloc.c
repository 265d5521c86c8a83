/*
 * alloc.c - the allocation seam. Every allocation libdtn makes goes through here, so a test can
 * install an allocator that fails on the Nth call and check that nothing leaks or crashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static dtn_allocator allocator = {malloc, realloc, free};

void dtn_set_allocator(const dtn_allocator *a)
{
	allocator.malloc = a && a->malloc ? a->malloc : malloc;
	allocator.realloc = a && a->realloc ? a->realloc : realloc;
	allocator.free = a && a->free ? a->free : free;
}

void *dtn__malloc(size_t size)
{
	return allocator.malloc(size ? size : 1);
}

void *dtn__calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = dtn__malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *dtn__realloc(void *ptr, size_t size)
{
	return allocator.realloc(ptr, size ? size : 1);
}

void dtn__free(void *ptr)
{
	if (ptr)
		allocator.free(ptr);
}

void dtn_free(void *ptr)
{
	dtn__free(ptr);
}

char *dtn__strndup(const char *s, size_t n)
{
	char *p = dtn__malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *dtn__strdup(const char *s)
{
	return s ? dtn__strndup(s, strlen(s)) : NULL;
}

char *dtn__aprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(p = dtn__malloc((size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

size_t dtn_strv_len(const char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

void dtn__free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		dtn__free(s);
	}
}
