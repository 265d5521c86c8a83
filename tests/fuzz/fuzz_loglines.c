/*
 * fuzz_loglines.c - feeds arbitrary build logs, cut into arbitrary chunks, to the splitter of
 * build-log streams (bounded lines, pieces never cutting a UTF-8 sequence, restarts).
 *
 * The first byte sets the line bound (8 to 39 bytes, so pieces happen often), the next four
 * seed the chunk sizes and the point where the stream drops; the rest is the log. It is split
 * three times: all at once, in chunks, and in chunks with the stream dropped part-way and
 * started over from its beginning. Every line handed out must fit the bound and, when the log
 * is valid UTF-8, be valid UTF-8; chunks must not change what is handed out; and a restart must
 * hand out the rest of the log as the single pass did, without repeating anything.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct lines_seen {
	char **v;
	size_t n, cap;
	size_t max;
	bool utf8;
	size_t at_restart; /* lines handed out before the restart */
} lines_seen;

static int on_line(const char *line, size_t len, void *payload)
{
	lines_seen *s = payload;

	if (len > s->max || line[len] != '\0' || (s->utf8 && !dtn__utf8_valid(line, len)))
		__builtin_trap();
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		if (!(s->v = realloc(s->v, s->cap * sizeof(*s->v))))
			abort();
	}
	/* a line may hold NUL bytes: keep its length in front */
	if (!(s->v[s->n] = malloc(sizeof(size_t) + len)))
		abort();
	memcpy(s->v[s->n], &len, sizeof(size_t));
	memcpy(s->v[s->n] + sizeof(size_t), line, len);
	s->n++;
	return 0;
}

static size_t len_of(const char *item)
{
	size_t len;

	memcpy(&len, item, sizeof(len));
	return len;
}

static bool same(const char *a, const char *b)
{
	return len_of(a) == len_of(b) && memcmp(a, b, sizeof(size_t) + len_of(a)) == 0;
}

/* Whether a[i..i+n) and b[j..j+n) are the same lines. */
static bool same_list(const lines_seen *a, size_t i, const lines_seen *b, size_t j, size_t n)
{
	if (i + n > a->n || j + n > b->n)
		return false;
	for (size_t k = 0; k < n; k++)
		if (!same(a->v[i + k], b->v[j + k]))
			return false;
	return true;
}

static void seen_free(lines_seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static uint32_t next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Feeds log[0..n) in chunks of 1 to 16 bytes, now and then a larger one. */
static void feed_chunks(dtn__lines *l, const char *log, size_t n, uint32_t *rnd, lines_seen *s)
{
	for (size_t i = 0; i < n;) {
		uint32_t r = next(rnd);
		size_t k = (r & 0x70) == 0x70 ? (r >> 8) % 512 + 1 : (r & 15) + 1;

		if (k > n - i)
			k = n - i;
		if (dtn__lines_feed(l, log + i, k, on_line, s) != 0)
			__builtin_trap();
		i += k;
	}
}

static void run(lines_seen *s, const char *log, size_t n, uint32_t rnd, size_t drop_at)
{
	dtn__lines l;

	if (dtn__lines_init(&l, s->max) != 0)
		abort();
	if (!rnd) {
		if (dtn__lines_feed(&l, log, n, on_line, s) != 0)
			__builtin_trap();
	} else {
		if (drop_at <= n) {
			feed_chunks(&l, log, drop_at, &rnd, s);
			dtn__lines_restart(&l);
			s->at_restart = s->n;
		}
		feed_chunks(&l, log, n, &rnd, s);
	}
	if (dtn__lines_finish(&l, on_line, s) != 0 || l.delivered != s->n)
		__builtin_trap();
	dtn__lines_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lines_seen once = {0}, chunked = {0}, restarted = {0};
	uint32_t rnd;
	size_t n, m;
	char *log;

	if (size < 5)
		return 0;
	once.max = chunked.max = restarted.max = 8 + data[0] % 32;
	rnd = ((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 |
	       data[4]) | 1;
	n = size - 5;
	if (!(log = malloc(n ? n : 1)))
		abort();
	memcpy(log, data + 5, n);
	once.utf8 = chunked.utf8 = restarted.utf8 = dtn__utf8_valid(log, n);
	run(&once, log, n, 0, 0);
	run(&chunked, log, n, rnd, SIZE_MAX);
	run(&restarted, log, n, rnd, n ? rnd % (n + 1) : 0);
	if (chunked.n != once.n || !same_list(&once, 0, &chunked, 0, once.n))
		__builtin_trap();
	/* before the drop, what the single pass handed out first; after, the rest of it */
	m = restarted.at_restart;
	if (m > once.n || !same_list(&once, 0, &restarted, 0, m))
		__builtin_trap();
	if (restarted.n != once.n || !same_list(&once, m, &restarted, m, once.n - m))
		__builtin_trap();
	seen_free(&once);
	seen_free(&chunked);
	seen_free(&restarted);
	free(log);
	return 0;
}
