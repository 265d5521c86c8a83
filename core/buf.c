/*
 * buf.c - growable text buffers and string lists.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static bool buf_reserve(dtn__buf *b, size_t extra)
{
	size_t want, cap;
	char *p;

	if (b->failed)
		return false;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	want = b->len + extra + 1;
	if (want <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (!(p = dtn__realloc(b->data, cap)))
		goto fail;
	b->data = p;
	b->cap = cap;
	return true;
fail:
	b->failed = true;
	return false;
}

void dtn__buf_add(dtn__buf *b, const char *data, size_t len)
{
	if (!buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void dtn__buf_puts(dtn__buf *b, const char *s)
{
	dtn__buf_add(b, s, strlen(s));
}

void dtn__buf_putc(dtn__buf *b, char c)
{
	dtn__buf_add(b, &c, 1);
}

void dtn__buf_printf(dtn__buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *dtn__buf_cstr(const dtn__buf *b)
{
	return b->data && !b->failed ? b->data : "";
}

char *dtn__buf_detach(dtn__buf *b)
{
	char *p;

	if (b->failed) {
		dtn__buf_free(b);
		return NULL;
	}
	p = b->data ? b->data : dtn__strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void dtn__buf_free(dtn__buf *b)
{
	dtn__free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

int dtn__strv_push_owned(dtn__strv *v, char *s)
{
	char **items;
	size_t cap;

	if (!s)
		return DTN_ENOMEM;
	if (v->len + 2 > v->cap) {
		cap = v->cap ? v->cap * 2 : 8;
		if (!(items = dtn__realloc(v->items, cap * sizeof(*items)))) {
			dtn__free(s);
			return DTN_ENOMEM;
		}
		v->items = items;
		v->cap = cap;
	}
	v->items[v->len++] = s;
	v->items[v->len] = NULL;
	return 0;
}

int dtn__strv_push(dtn__strv *v, const char *s)
{
	return dtn__strv_push_owned(v, dtn__strdup(s));
}

void dtn__strv_free(dtn__strv *v)
{
	for (size_t i = 0; i < v->len; i++)
		dtn__free(v->items[i]);
	dtn__free(v->items);
	v->items = NULL;
	v->len = v->cap = 0;
}

char **dtn__strv_dup(const char *const *v)
{
	size_t n = dtn_strv_len(v);
	char **out = dtn__calloc(n + 1, sizeof(*out));

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(out[i] = dtn__strdup(v[i]))) {
			dtn__strv_free_array(out);
			return NULL;
		}
	}
	return out;
}

void dtn__strv_free_array(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		dtn__free(v[i]);
	dtn__free(v);
}
