/*
 * fuzz_ignore.c - feeds arbitrary rules and paths to the .dockerignore matcher.
 *
 * The input up to its first NUL byte is the rule text; the bytes after it, split at further
 * NULs, are up to eight paths. The first byte chooses whether the text is read as a
 * .dockerignore or as a list of extra patterns, one per line. Loading must succeed or say
 * where and why it failed; every answer must name a rule that can give it; matching a path
 * one level at a time from its parents' states must agree with the one-off answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PATHS 8

/* The text's lines as a NULL-terminated list of strings, in memory from malloc. */
static char **split_lines(const char *text, size_t len)
{
	size_t n = 1, k = 0;
	char **v, *copy;

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	v = malloc((n + 1) * sizeof(*v) + len + 1);
	if (!v)
		abort();
	copy = (char *)(v + n + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	v[k++] = copy;
	for (size_t i = 0; i < len; i++) {
		if (copy[i] == '\n') {
			copy[i] = '\0';
			v[k++] = copy + i + 1;
		}
	}
	v[k] = NULL;
	return v;
}

static int load(dtn__ignore *ig, const char *text, size_t len, int as_list, dtn_error *err)
{
	char **lines;
	int rc;

	if (!as_list)
		return dtn__ignore_add_text(ig, text, len, "fuzz", err);
	lines = split_lines(text, len);
	rc = dtn__ignore_add_patterns(ig, (const char *const *)lines, "list", err);
	free(lines);
	return rc;
}

/* An answer must be 0 or 1 from a rule that gives it. */
static void check_answer(const dtn__ignore *ig, int got, int rule)
{
	if (got != 0 && got != 1)
		__builtin_trap();
	if (rule < -1 || rule >= (int)dtn__ignore_count(ig))
		__builtin_trap();
	if (got == 1 && (rule < 0 || dtn__ignore_rule_is_exception(ig, rule)))
		__builtin_trap();
	if (rule >= 0 && (!dtn__ignore_rule_text(ig, rule) || !dtn__ignore_rule_source(ig, rule) ||
			  !dtn__ignore_rule_pattern(ig, rule)))
		__builtin_trap();
}

/* The walk's view, one level at a time, against the one-off answer. */
static void check_path(const dtn__ignore *ig, const char *path, size_t len, uint64_t *st)
{
	int rule, want_rule, got = 0, want = dtn__ignore_match(ig, path, len, false, &want_rule);
	size_t k = 0;

	check_answer(ig, want, want_rule);
	while (len) {
		const char *slash = memchr(path + k, '/', len - k);
		size_t end = slash ? (size_t)(slash - path) : len;

		got = dtn__ignore_match_entry(ig, k ? st : NULL, path, end, st, &rule);
		check_answer(ig, got, rule);
		if (end < len && got == 1 && !dtn__ignore_may_reinclude(ig, path, end))
			break;
		if (end == len)
			break;
		k = end + 1;
	}
	if (len && (got != want || rule != want_rule))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nul = memchr(in, '\0', size);
	size_t tlen = nul ? (size_t)(nul - in) : size, pos = tlen + 1;
	dtn__ignore *ig;
	dtn_error err;
	uint64_t *st;
	int rc;

	if (dtn__ignore_new(&ig) < 0)
		abort();
	dtn_error_clear(&err);
	rc = load(ig, in, tlen, size && (data[0] & 1), &err);
	if (rc < 0 && (err.code != rc || !err.message[0] || !err.file[0]))
		__builtin_trap();
	if (rc < 0 && dtn__ignore_count(ig) != 0)
		__builtin_trap();
	st = calloc(dtn__ignore_state_words(ig), sizeof(*st));
	if (!st)
		abort();
	for (int i = 0; i < MAX_PATHS && pos < size; i++) {
		const char *end = memchr(in + pos, '\0', size - pos);
		size_t plen = end ? (size_t)(end - (in + pos)) : size - pos;
		char *path = malloc(plen ? plen : 1);

		if (!path)
			abort();
		memcpy(path, in + pos, plen);
		check_path(ig, path, plen, st);
		free(path);
		pos += plen + 1;
	}
	free(st);
	dtn__ignore_free(ig);
	return 0;
}
