/*
 * fuzz_answers.c - feeds arbitrary server answers to the Daytona client's parsers: the
 * object-storage push-access JSON (and the S3 client made from it), an error answer mapped to a
 * dtn error (status, headers, body), and a snapshot's description.
 *
 * The first byte picks the parser; the rest is the answer, as exact-length bytes where the
 * parser takes a length. Whatever the answer, a parse either fails with a message or gives
 * what its header promises; messages are one line, and the query of a URL (where signatures
 * and tokens go) never shows in one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the URL of a request may carry that a message must not. */
#define URL_SECRET "sig=URLSECRET"

static bool one_line(const char *msg)
{
	for (const char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void check_error(const dtn_error *err, int rc)
{
	if (rc >= 0 || err->code != rc || !err->message[0] || !one_line(err->message))
		__builtin_trap();
}

static void push_access(const char *json, size_t len)
{
	dtn__push_access pa;
	dtn__s3 *s3 = NULL;
	dtn_error err;
	char region[64];
	int rc;

	dtn_error_clear(&err);
	if ((rc = dtn__push_access_parse(&pa, json, len, &err)) < 0) {
		check_error(&err, rc);
		if (rc != DTN_EPROTOCOL || pa.access_key || pa.secret || pa.region)
			__builtin_trap();
		return;
	}
	if (!pa.access_key[0] || !pa.secret[0] || !pa.session_token[0] || !pa.storage_url[0] ||
	    !pa.organization_id[0] || !pa.bucket[0] || (pa.region && !pa.region[0]))
		__builtin_trap();
	dtn__s3_region(&pa, region, sizeof(region));
	if (!region[0])
		__builtin_trap();
	if ((rc = dtn__s3_new(&s3, NULL, &pa, &err)) == 0) {
		if (!s3 || strcmp(dtn__s3_region_of(s3), region) != 0)
			__builtin_trap();
		dtn__s3_free(s3);
	} else {
		check_error(&err, rc);
		if (s3)
			__builtin_trap();
	}
	dtn__push_access_clear(&pa);
}

/* "STATUS\n" then header lines, an empty line, and the body. */
static void error_answer(const uint8_t *data, size_t size)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	const char *p = (const char *)data, *end = p + size;
	dtn_error err;
	int rc;

	r.status = 300 + (size >= 2 ? (data[0] << 8 | data[1]) % 300 : 0);
	p += size >= 2 ? 2 : size;
	while (p < end && *p != '\n') {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line = dtn__strndup(p, (size_t)((nl ? nl : end) - p));

		if (!line || dtn__strv_push_owned(&r.headers, line) < 0)
			abort();
		p = nl ? nl + 1 : end;
	}
	if (p < end)
		p++;
	dtn__buf_add(&r.body, p, (size_t)(end - p));
	dtn_error_clear(&err);
	rc = dtn__api_error_from_response(&r, "GET", "https://api.example/api/x?" URL_SECRET,
					  (size & 1) ? "snapshot \"x\"" : NULL, &err);
	check_error(&err, rc);
	if (strstr(err.message, URL_SECRET) && !memmem(data, size, URL_SECRET, strlen(URL_SECRET)))
		__builtin_trap();
	dtn__http_response_clear(&r);
}

static void snapshot(const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	dtn_snapshot *s = NULL, *copy;
	dtn_error err;
	int rc;

	if (!j)
		return;
	dtn_error_clear(&err);
	if ((rc = dtn__snapshot_from_json(&s, j, &err)) < 0) {
		check_error(&err, rc);
		if (s)
			__builtin_trap();
	} else {
		if (!s->id || !s->name || !s->state || !s->context_hashes || !s->region_ids ||
		    !s->json)
			__builtin_trap();
		if (!(copy = dtn_snapshot_dup(s)) || strcmp(copy->json, s->json) != 0 ||
		    copy->cpu != s->cpu || copy->memory != s->memory)
			__builtin_trap();
		dtn_snapshot_free(copy);
		dtn_snapshot_free(s);
	}
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *rest;

	if (size < 1)
		return 0;
	if (!(rest = malloc(size - 1 ? size - 1 : 1)))
		abort();
	memcpy(rest, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		push_access(rest, size - 1);
		break;
	case 1:
		error_answer(data + 1, size - 1);
		break;
	default:
		snapshot(rest, size - 1);
		break;
	}
	free(rest);
	return 0;
}
