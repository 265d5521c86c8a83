/*
 * fuzz_dotenv.c - feeds arbitrary text to the .env reader of the Daytona configuration.
 *
 * The text is handed over in a buffer of exactly its length, so that any read past it is
 * caught, and parsed twice: keeping every key, and keeping the DAYTONA_ ones only, as the
 * client reads .env and .env.local. Every key kept must be a well-formed name, kept once, found
 * again by dtn__dotenv_get; the DAYTONA_ keys of the second parse must be exactly those of the
 * first, with the same values. A warning must name the file and a line that exists.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME ".env.fuzz"

typedef struct warned {
	int lines; /* lines in the text */
	int count;
} warned;

static void on_warn(const char *msg, void *payload)
{
	warned *w = payload;
	char *end;
	long line;

	/* "NAME:LINE: ..." */
	if (strncmp(msg, NAME ":", sizeof(NAME)) != 0)
		__builtin_trap();
	line = strtol(msg + sizeof(NAME), &end, 10);
	if (line < 1 || line > w->lines || *end != ':')
		__builtin_trap();
	w->count++;
}

static void check_keys(const dtn__dotenv *env)
{
	if (env->keys.len != env->values.len)
		__builtin_trap();
	for (size_t i = 0; i < env->keys.len; i++) {
		const char *k = env->keys.items[i];

		if (!k || !env->values.items[i] || !*k || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz_0123456789.-") != strlen(k) ||
		    (*k >= '0' && *k <= '9') || *k == '.' || *k == '-')
			__builtin_trap();
		if (dtn__dotenv_get(env, k) != env->values.items[i])
			__builtin_trap(); /* a key kept twice */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dtn__dotenv all = {{NULL, 0, 0}, {NULL, 0, 0}}, daytona = {{NULL, 0, 0}, {NULL, 0, 0}};
	warned w = {1, 0}, wd = {1, 0};
	char *text = malloc(size ? size : 1);
	size_t kept = 0;

	if (!text)
		abort();
	memcpy(text, data, size);
	for (size_t i = 0; i < size; i++)
		w.lines += text[i] == '\n';
	wd.lines = w.lines;
	if (dtn__dotenv_parse(&all, text, size, NAME, NULL, on_warn, &w) != 0 ||
	    dtn__dotenv_parse(&daytona, text, size, NAME, "DAYTONA_", on_warn, &wd) != 0)
		__builtin_trap();
	check_keys(&all);
	check_keys(&daytona);
	/* with every key kept, a malformed line always warns */
	if (wd.count > w.count)
		__builtin_trap();
	for (size_t i = 0; i < all.keys.len; i++) {
		const char *k = all.keys.items[i], *v;

		if (strncmp(k, "DAYTONA_", 8) != 0)
			continue;
		kept++;
		if (!(v = dtn__dotenv_get(&daytona, k)) || strcmp(v, all.values.items[i]) != 0)
			__builtin_trap();
	}
	if (kept != daytona.keys.len)
		__builtin_trap();
	dtn__dotenv_clear(&all);
	dtn__dotenv_clear(&daytona);
	free(text);
	return 0;
}
