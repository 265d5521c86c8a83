/*
 * transcript.c - the recorded SDK session and the server's log as comparable lines of calls.
 */
#include "transcript.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Appends "METHOD PATH BODY\n" unless it repeats the previous line. */
static void add_call(char **text, size_t *len, const char *method, const char *path,
		     const char *body)
{
	size_t n = strlen(method) + strlen(path) + strlen(body) + 3;
	char *line = malloc(n + 1), *last;

	assert_non_null(line);
	snprintf(line, n + 1, "%s %s %s\n", method, path, body);
	/* the previous line starts after the last-but-one newline */
	last = *len ? *text + *len - 1 : NULL;
	while (last && last > *text && last[-1] != '\n')
		last--;
	if (!last || strcmp(last, line) != 0) {
		*text = realloc(*text, *len + n + 1);
		assert_non_null(*text);
		memcpy(*text + *len, line, n + 1);
		*len += n;
	}
	free(line);
}

static const char *str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

char *tu_transcript_calls(const char *scenario, const char *server)
{
	char path[4096], *text = calloc(1, 1);
	json_error_t jerr;
	json_t *t, *r;
	size_t i, len = 0, n = 0;

	snprintf(path, sizeof(path), "%s/vectors/daytona-sdk-transcript.json", tu_data_dir());
	if (!(t = json_load_file(path, JSON_ALLOW_NUL, &jerr)))
		fail_msg("%s: %s", path, jerr.text);
	json_array_foreach(json_object_get(t, "requests"), i, r) {
		const json_t *body = json_object_get(r, "body");

		if (strcmp(str(r, "scenario"), scenario) != 0 || strcmp(str(r, "server"), server) ||
		    json_is_true(json_object_get(r, "websocket_upgrade")))
			continue;
		add_call(&text, &len, str(r, "method"), str(r, "path"), str(body, "raw"));
		n++;
	}
	json_decref(t);
	if (!n)
		fail_msg("the recording has no %s request in scenario %s", server, scenario);
	return text;
}

char *tu_server_calls(const tu_server *srv, const char *server)
{
	json_t *log = tu_server_requests(srv, server), *r;
	char *text = calloc(1, 1);
	size_t i, len = 0;

	assert_non_null(log);
	json_array_foreach(log, i, r)
		add_call(&text, &len, str(r, "method"), str(r, "path"), str(r, "body"));
	json_decref(log);
	return text;
}

char *tu_replace(const char *text, const char *from, const char *to)
{
	size_t nf = strlen(from), nt = strlen(to), len = 0;
	char *out = malloc(strlen(text) + 1), *p;

	assert_non_null(out);
	assert_true(nf > 0);
	while ((p = strstr(text, from))) {
		out = realloc(out, len + (size_t)(p - text) + nt + strlen(p) + 1);
		assert_non_null(out);
		memcpy(out + len, text, (size_t)(p - text));
		len += (size_t)(p - text);
		memcpy(out + len, to, nt);
		len += nt;
		text = p + nf;
	}
	out = realloc(out, len + strlen(text) + 1);
	assert_non_null(out);
	memcpy(out + len, text, strlen(text) + 1);
	return out;
}
