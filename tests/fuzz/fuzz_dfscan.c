/*
 * fuzz_dfscan.c - feeds arbitrary Dockerfile text to the COPY/ADD source scanner.
 *
 * The first byte splits the rest of the input: that many bytes (modulo the length) become the
 * prelude, a NUL-terminated string, and the remainder the scanned text, handed over in a buffer
 * of exactly its length so that any read past it is caught. A scan that succeeds must give
 * sources with positions inside the text; one that fails must say why and where.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dfscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_lines(const char *text, size_t len)
{
	int lines = 1;

	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	return lines;
}

static void check_sources(const dtn__df_source *src, size_t n, int lines)
{
	for (size_t i = 0; i < n; i++) {
		if (!src[i].text || src[i].line < 1 || src[i].line > lines || src[i].column < 1)
			__builtin_trap();
		if (i && src[i].line < src[i - 1].line)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dtn__df_source *src = NULL;
	char *prelude, *text;
	size_t split, len, n = 99;
	dtn_error err;
	int rc;

	if (size < 1)
		return 0;
	split = size > 1 ? data[0] % size : 0;
	len = size - 1 - split;
	prelude = malloc(split + 1);
	text = malloc(len ? len : 1);
	if (!prelude || !text)
		abort();
	memcpy(prelude, data + 1, split);
	prelude[split] = '\0';
	memcpy(text, data + 1 + split, len);
	dtn_error_clear(&err);
	rc = dtn__df_scan(&src, &n, split ? prelude : NULL, text, len, &err);
	if (rc == 0) {
		check_sources(src, n, count_lines(text, len));
		dtn__df_sources_free(src, n);
	} else if (src || n || !err.message[0] || err.code != rc || err.line < 1 ||
		   err.line > count_lines(text, len) || err.column < 1) {
		__builtin_trap();
	}
	free(prelude);
	free(text);
	return 0;
}
