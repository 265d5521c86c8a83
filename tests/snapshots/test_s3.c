/*
 * test_s3.c - push-access parsing, region choice, and S3 requests against the test server's
 * object storage (which checks every SigV4 signature with botocore and stores what it gets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "s3.h"
#include "daytona_fixture.h"
#include "testutil.h"

/* Every error message a test saw, checked at the end for credentials. */
static char seen_errors[64][2048];
static int nseen;

static void remember(const dtn_error *err)
{
	if (nseen < 64)
		snprintf(seen_errors[nseen++], sizeof(seen_errors[0]), "%s", err->message);
}

/* Fetches push-access from the API with the test key. */
static void get_access(dtn__push_access *pa)
{
	dtn__http *h;
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	char url[256], auth[128];
	const char *hdrs[] = {auth, "Accept: application/json", NULL};
	dtn_error err = {0};

	snprintf(url, sizeof(url), "%s/object-storage/push-access", tu_srv.api_url);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tu_srv.api_key);
	assert_int_equal(dtn__http_new(&h, NULL), 0);
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url, .headers = hdrs}, &r,
		&err), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(dtn__push_access_parse(pa, r.body.data, r.body.len, &err), 0);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

typedef struct fixture {
	dtn__push_access pa;
	dtn__http *http;
	dtn__s3 *s3;
	int in_flight, max_in_flight, attempts;
	volatile int cancel;
} fixture;

static void obs_begin(void **token, const dtn__http_attempt *a, dtn__strv *headers, void *payload)
{
	fixture *f = payload;

	(void)token;
	(void)a;
	(void)headers;
	f->attempts++;
	if (++f->in_flight > f->max_in_flight)
		f->max_in_flight = f->in_flight;
}

static void obs_end(void *token, const dtn__http_attempt *a, void *payload)
{
	fixture *f = payload;

	(void)token;
	(void)a;
	f->in_flight--;
}

static fixture *fixture_new(void)
{
	static dtn__http_observer obs;
	fixture *f = calloc(1, sizeof(*f));
	dtn_error err = {0};

	obs = (dtn__http_observer){obs_begin, obs_end, NULL, f};
	get_access(&f->pa);
	assert_int_equal(dtn__http_new(&f->http, &(dtn__http_opts){.version = 1, .backoff_ms = 1,
		.observer = &obs, .cancel = &f->cancel}), 0);
	assert_int_equal(dtn__s3_new(&f->s3, f->http, &f->pa, &err), 0);
	return f;
}

static void fixture_free(fixture *f)
{
	dtn__s3_free(f->s3);
	dtn__http_free(f->http);
	dtn__push_access_clear(&f->pa);
	free(f);
}

static unsigned char *pattern(size_t len)
{
	unsigned char *d = malloc(len);

	for (size_t i = 0; i < len; i++)
		d[i] = (unsigned char)(i * 131 + (i >> 11));
	return d;
}

/* ---- without a server ---- */

static void test_snapshots_s3__push_access_parse(void **state)
{
	dtn__push_access pa;
	dtn_error err = {0};
	const char *full = "{\"accessKey\":\"AK\",\"secret\":\"S3CRET\",\"sessionToken\":\"TOK\","
		"\"storageUrl\":\"http://minio:9000\",\"organizationId\":\"org\",\"bucket\":\"b\","
		"\"region\":\"eu-west-1\"}";
	const char *no_region = "{\"accessKey\":\"AK\",\"secret\":\"S3CRET\",\"sessionToken\":\"TOK\","
		"\"storageUrl\":\"http://minio:9000\",\"organizationId\":\"org\",\"bucket\":\"b\"}";
	const char *text;

	(void)state;
	assert_int_equal(dtn__push_access_parse(&pa, full, strlen(full), &err), 0);
	assert_string_equal(pa.access_key, "AK");
	assert_string_equal(pa.secret, "S3CRET");
	assert_string_equal(pa.session_token, "TOK");
	assert_string_equal(pa.storage_url, "http://minio:9000");
	assert_string_equal(pa.organization_id, "org");
	assert_string_equal(pa.bucket, "b");
	assert_string_equal(pa.region, "eu-west-1");
	dtn__push_access_clear(&pa);
	assert_null(pa.secret);
	assert_int_equal(dtn__push_access_parse(&pa, no_region, strlen(no_region), &err), 0);
	assert_null(pa.region);
	dtn__push_access_clear(&pa);

	/* Missing, mistyped, empty fields and non-JSON: named, values never shown. */
	text = "{\"accessKey\":\"AK\",\"sessionToken\":\"TOK\"}";
	assert_int_equal(dtn__push_access_parse(&pa, text, strlen(text), &err), DTN_EPROTOCOL);
	assert_string_equal(err.message, "the object-storage push-access answer has no \"secret\"");
	assert_null(pa.access_key);
	text = "{\"accessKey\":\"AK\",\"secret\":7}";
	assert_int_equal(dtn__push_access_parse(&pa, text, strlen(text), &err), DTN_EPROTOCOL);
	assert_string_equal(err.message,
		"the object-storage push-access field \"secret\" is not a non-empty string");
	text = "{\"accessKey\":\"\"}";
	assert_int_equal(dtn__push_access_parse(&pa, text, strlen(text), &err), DTN_EPROTOCOL);
	assert_non_null(strstr(err.message, "\"accessKey\" is not a non-empty string"));
	assert_int_equal(dtn__push_access_parse(&pa, "<html>", 6, &err), DTN_EPROTOCOL);
	assert_string_equal(err.message, "the object-storage push-access answer is not a JSON object");
	assert_int_equal(dtn__push_access_parse(&pa, NULL, 0, &err), DTN_EPROTOCOL);
}

static void test_snapshots_s3__region_choice(void **state)
{
	static const struct {
		const char *url, *region;
	} table[] = {
		{"https://s3.eu-west-1.amazonaws.com", "eu-west-1"},
		{"https://s3.us-gov-west-1.amazonaws.com/", "us-gov-west-1"},
		{"https://s3-ap-southeast-2.amazonaws.com", "ap-southeast-2"},
		{"https://S3.EU-CENTRAL-1.AMAZONAWS.COM:443/x", "eu-central-1"},
		{"https://bucket.s3.us-west-2.amazonaws.com", "us-west-2"},
		{"https://s3.dualstack.ap-south-1.amazonaws.com", "ap-south-1"},
		{"https://s3.cn-north-1.amazonaws.com.cn", "cn-north-1"},
		{"https://s3-website-sa-east-1.amazonaws.com", "sa-east-1"},
		{"https://s3-external-1.amazonaws.com", "us-east-1"},
		{"https://s3.amazonaws.com", "us-east-1"},
		{"https://user:pw@s3.eu-north-1.amazonaws.com", "eu-north-1"},
		{"https://s3-accelerate.amazonaws.com", ""},
		{"https://ec2.eu-west-1.amazonaws.com", ""},
		{"https://s3.eu-west-1.example.com", ""},
		{"http://minio:9000", ""},
		{"http://127.0.0.1:9000", ""},
		{"", ""},
	};
	char buf[64];
	dtn__push_access pa = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		dtn__s3_region_from_url(table[i].url, buf, sizeof(buf));
		if (strcmp(buf, table[i].region))
			fail_msg("%s: got \"%s\", want \"%s\"", table[i].url, buf, table[i].region);
	}
	/* push-access region first, then the URL, then us-east-1. */
	pa.storage_url = (char *)"https://s3.eu-west-1.amazonaws.com";
	pa.region = (char *)"ap-northeast-1";
	assert_string_equal(dtn__s3_region(&pa, buf, sizeof(buf)), "ap-northeast-1");
	pa.region = (char *)"";
	assert_string_equal(dtn__s3_region(&pa, buf, sizeof(buf)), "eu-west-1");
	pa.region = NULL;
	assert_string_equal(dtn__s3_region(&pa, buf, sizeof(buf)), "eu-west-1");
	pa.storage_url = (char *)"http://minio.internal:9000";
	assert_string_equal(dtn__s3_region(&pa, buf, sizeof(buf)), "us-east-1");
}

static void test_snapshots_s3__bad_client_input(void **state)
{
	dtn__push_access pa = {(char *)"AK", (char *)"S3CRET", (char *)"TOK",
		(char *)"minio:9000", (char *)"org", (char *)"b", NULL};
	dtn__s3 *s3 = NULL;
	dtn__http *h;
	dtn_error err = {0};
	char *k;

	(void)state;
	assert_int_equal(dtn__http_new(&h, NULL), 0);
	assert_int_equal(dtn__s3_new(&s3, h, &pa, &err), DTN_EINVAL);
	assert_string_equal(err.message, "the object storage URL \"minio:9000\" is not an http(s) URL");
	pa.storage_url = (char *)"http://minio:9000/";
	pa.region = (char *)"us-east-1:evil";
	assert_int_equal(dtn__s3_new(&s3, h, &pa, &err), DTN_EPROTOCOL);
	assert_string_equal(err.message,
		"the object-storage region \"us-east-1:evil\" is not a region name");
	assert_null(s3);
	pa.region = NULL;
	assert_int_equal(dtn__s3_new(&s3, h, &pa, &err), 0);
	assert_string_equal(dtn__s3_region_of(s3), "us-east-1");
	dtn__s3_free(s3);
	k = dtn__s3_context_key(&pa, "28ab1296");
	assert_string_equal(k, "org/28ab1296/context.tar");
	dtn__free(k);
	k = dtn__s3_context_prefix(&pa, "28ab1296");
	assert_string_equal(k, "org/28ab1296/");
	dtn__free(k);
	dtn__http_free(h);
}

/* ---- against the server ---- */

/* A small archive: existence checked, one signed PutObject, then found. */
static void test_snapshots_s3__small_put_and_exists(void **state)
{
	fixture *f = fixture_new();
	dtn__s3_upload *u;
	dtn_error err = {0};
	bool found = true;
	char *key = dtn__s3_context_key(&f->pa, "0123abcd"),
	     *prefix = dtn__s3_context_prefix(&f->pa, "0123abcd");
	const char *text = "a small tar, really";
	unsigned char *obj, digest[DTN__SHA256_LEN];
	char hex[DTN__SHA256_HEX], path[256];
	size_t len;
	json_t *log, *e;

	(void)state;
	assert_int_equal(dtn__s3_exists(f->s3, prefix, &found, &err), 0);
	assert_false(found);
	assert_int_equal(dtn__s3_upload_begin(&u, f->s3, key, NULL, &err), 0);
	assert_int_equal(dtn__s3_upload_write(u, text, 7, &err), 0);
	assert_int_equal(dtn__s3_upload_write(u, text + 7, strlen(text) - 7, &err), 0);
	assert_int_equal(dtn__s3_upload_finish(u, &err), 0);
	assert_int_equal(dtn__s3_upload_parts(u), 0);
	assert_int_equal(dtn__s3_upload_size(u), (int64_t)strlen(text));
	dtn__s3_upload_free(u);
	assert_int_equal(dtn__s3_exists(f->s3, prefix, &found, &err), 0);
	assert_true(found);
	/* A prefix that only starts like it is not a hit. */
	assert_int_equal(dtn__s3_exists(f->s3, "no-such-org/", &found, &err), DTN_EAUTH);
	remember(&err);
	obj = tu_server_object(&tu_srv, key, &len);
	assert_non_null(obj);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(obj, text, len);
	free(obj);

	log = tu_daytona_requests("s3");
	assert_int_equal(json_array_size(log), 4);
	e = json_array_get(log, 0);
	assert_string_equal(json_string_value(json_object_get(e, "method")), "GET");
	assert_true(json_is_true(json_object_get(e, "signature_verified")));
	/* the bucket's path as the SDK lists it, "/<bucket>/" */
	snprintf(path, sizeof(path), "/%s/", f->pa.bucket);
	assert_string_equal(json_string_value(json_object_get(e, "path")), path);
	e = json_array_get(log, 1);
	assert_string_equal(json_string_value(json_object_get(e, "method")), "PUT");
	assert_true(json_is_true(json_object_get(e, "signature_verified")));
	assert_string_equal(tu_daytona_header(e, "Content-Type"), "application/octet-stream");
	assert_string_equal(tu_daytona_header(e, "x-amz-security-token"), f->pa.session_token);
	dtn__sha256_once(digest, text, strlen(text));
	dtn__sha256_hex(hex, digest);
	assert_string_equal(tu_daytona_header(e, "x-amz-content-sha256"), hex);
	assert_non_null(
	    strstr(tu_daytona_header(e, "Authorization"), "/us-east-1/s3/aws4_request"));
	assert_null(tu_daytona_header(e, "Expect"));
	json_decref(log);
	dtn__free(key);
	dtn__free(prefix);
	fixture_free(f);
}

/* dtn__s3_put, and an empty object through the uploader. */
static void test_snapshots_s3__put_and_empty(void **state)
{
	fixture *f = fixture_new();
	dtn__s3_upload *u;
	dtn_error err = {0};
	char key[128];
	size_t len = 1;
	unsigned char *obj;

	(void)state;
	snprintf(key, sizeof(key), "%s/put/context.tar", f->pa.organization_id);
	/* S3's InternalError asks to try again: the PUT is sent again */
	tu_server_fault(&tu_srv, "{\"server\":\"s3\",\"method\":\"PUT\",\"path\":\"/put/\","
				 "\"action\":\"status\",\"status\":500,\"code\":\"InternalError\"}");
	assert_int_equal(dtn__s3_put(f->s3, key, "abc", 3, &err), 0);
	assert_int_equal(tu_daytona_count("s3", "PUT", "/put/"), 2);
	obj = tu_server_object(&tu_srv, key, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(obj, "abc", 3);
	free(obj);
	snprintf(key, sizeof(key), "%s/empty/context.tar", f->pa.organization_id);
	assert_int_equal(dtn__s3_upload_begin(&u, f->s3, key, NULL, &err), 0);
	assert_int_equal(dtn__s3_upload_finish(u, &err), 0);
	dtn__s3_upload_free(u);
	obj = tu_server_object(&tu_srv, key, &len);
	assert_non_null(obj);
	assert_int_equal(len, 0);
	free(obj);
	fixture_free(f);
}

/* More than two parts, in flight together; the stored object is the same bytes. */
static void test_snapshots_s3__multipart_parallel(void **state)
{
	fixture *f = fixture_new();
	dtn__s3_upload *u;
	dtn_error err = {0};
	size_t total = 3 * 5 * 1024 * 1024 + 12345, step = 100003;
	unsigned char *data = pattern(total), digest[DTN__SHA256_LEN];
	char key[128], hex[DTN__SHA256_HEX], *text = NULL;
	json_t *log, *e, *objects;
	size_t i;
	int parts = 0, creates = 0, completes = 0;

	(void)state;
	snprintf(key, sizeof(key), "%s/multi/context.tar", f->pa.organization_id);
	/* The first part is slow, so the next ones are sent while it is in flight. */
	tu_server_fault(&tu_srv, "{\"server\":\"s3\",\"method\":\"PUT\",\"path\":\"partNumber=1&\","
				 "\"action\":\"delay\",\"delay_ms\":400}");
	assert_int_equal(dtn__s3_upload_begin(&u, f->s3, key,
		&(dtn__s3_upload_opts){.version = 1, .part_size = 1024, .parallel = 3}, &err), 0);
	for (size_t off = 0; off < total; off += step)
		assert_int_equal(dtn__s3_upload_write(u, data + off, total - off < step ? total - off
			: step, &err), 0);
	assert_int_equal(dtn__s3_upload_finish(u, &err), 0);
	/* The part size was raised to S3's minimum of 5 MiB. */
	assert_int_equal(dtn__s3_upload_parts(u), 4);
	dtn__s3_upload_free(u);
	assert_true(f->max_in_flight >= 2);
	assert_true(f->max_in_flight <= 3);

	/* Compared by size and SHA-256: fetching 15 MiB back is slow under sanitizers. */
	dtn__sha256_once(digest, data, total);
	dtn__sha256_hex(hex, digest);
	assert_int_equal(tu_server_control(&tu_srv, "GET", "/_control/objects", NULL, &text), 200);
	objects = json_loads(text, 0, NULL);
	free(text);
	assert_int_equal(json_array_size(objects), 1);
	e = json_array_get(objects, 0);
	assert_string_equal(json_string_value(json_object_get(e, "key")), key);
	assert_int_equal(json_integer_value(json_object_get(e, "size")), total);
	assert_int_equal(json_integer_value(json_object_get(e, "parts")), 4);
	assert_string_equal(json_string_value(json_object_get(e, "sha256")), hex);
	json_decref(objects);
	log = tu_daytona_requests("s3");
	json_array_foreach(log, i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *q = json_string_value(json_object_get(e, "query"));
		assert_true(json_is_true(json_object_get(e, "signature_verified")));
		if (!strcmp(m, "PUT") && strstr(q, "partNumber="))
			parts++;
		else if (!strcmp(m, "POST") && !strcmp(q, "uploads="))
			creates++;
		else if (!strcmp(m, "POST") && strstr(q, "uploadId="))
			completes++;
	}
	assert_int_equal(parts, 4);
	assert_int_equal(creates, 1);
	assert_int_equal(completes, 1);
	json_decref(log);
	free(data);
	fixture_free(f);
}

/* How many multipart uploads the server holds open, and how many were aborted. */
static void assert_uploads(size_t open, size_t aborted)
{
	char *text = NULL;
	json_t *ups;

	assert_int_equal(tu_server_control(&tu_srv, "GET", "/_control/uploads", NULL, &text), 200);
	ups = json_loads(text, 0, NULL);
	free(text);
	assert_int_equal(json_array_size(json_object_get(ups, "open")), open);
	assert_int_equal(json_array_size(json_object_get(ups, "aborted")), aborted);
	json_decref(ups);
}

/* A part that fails: the error names it and the key, and the upload is aborted. */
static void test_snapshots_s3__failed_part_aborts(void **state)
{
	fixture *f = fixture_new();
	dtn__s3_upload *u;
	dtn_error err = {0};
	size_t total = 11 * 1024 * 1024;
	unsigned char *data = pattern(total);
	char key[128];
	int rc;

	(void)state;
	snprintf(key, sizeof(key), "%s/fails/context.tar", f->pa.organization_id);
	tu_server_fault(
	    &tu_srv,
	    "{\"server\":\"s3\",\"method\":\"PUT\",\"path\":\"partNumber=2&\","
	    "\"action\":\"status\",\"status\":500,\"code\":\"InternalError\","
	    "\"message\":\"We encountered an internal error. Please try again.\",\"times\":5}");
	assert_int_equal(dtn__s3_upload_begin(&u, f->s3, key, NULL, &err), 0);
	rc = dtn__s3_upload_write(u, data, total, &err);
	if (rc == 0)
		rc = dtn__s3_upload_finish(u, &err);
	assert_int_equal(rc, DTN_EHTTP);
	remember(&err);
	assert_non_null(strstr(err.message, "S3 UploadPart 2 "));
	assert_non_null(strstr(err.message, key));
	assert_non_null(strstr(err.message, ": 500 InternalError: We encountered an internal error."));
	/* The error is latched. */
	assert_int_equal(dtn__s3_upload_write(u, "x", 1, &err), DTN_EHTTP);
	assert_int_equal(dtn__s3_upload_finish(u, &err), DTN_EHTTP);
	assert_int_equal(dtn__s3_upload_error(u)->code, DTN_EHTTP);
	dtn__s3_upload_free(u);
	assert_null(tu_server_object(&tu_srv, key, &(size_t){0}));
	assert_uploads(0, 1);
	free(data);
	fixture_free(f);
}

/* An interrupt stops the parts in flight; the abort still goes out. */
static void test_snapshots_s3__cancel_aborts(void **state)
{
	fixture *f = fixture_new();
	dtn__s3_upload *u;
	dtn_error err = {0};
	size_t total = 9 * 1024 * 1024; /* over one default part of 5 MiB */
	unsigned char *data = pattern(total);
	char key[128];

	(void)state;
	snprintf(key, sizeof(key), "%s/cancel/context.tar", f->pa.organization_id);
	tu_server_fault(&tu_srv, "{\"server\":\"s3\",\"method\":\"PUT\",\"path\":\"partNumber=1&\","
				 "\"action\":\"stall\"}");
	assert_int_equal(dtn__s3_upload_begin(&u, f->s3, key, NULL, &err), 0);
	assert_int_equal(dtn__s3_upload_write(u, data, total, &err), 0);
	f->cancel = 1;
	assert_int_equal(dtn__s3_upload_finish(u, &err), DTN_EINTR);
	remember(&err);
	assert_non_null(strstr(err.message, "S3 UploadPart "));
	assert_non_null(strstr(err.message, ": PUT http://127.0.0.1:"));
	assert_non_null(strstr(err.message, "was interrupted"));
	dtn__s3_upload_free(u);
	assert_uploads(0, 1);
	free(data);
	fixture_free(f);
}

/* A wrong secret is a clear 403 that never shows the secret or the signature. */
static void test_snapshots_s3__bad_secret(void **state)
{
	fixture *f = fixture_new();
	dtn__push_access bad = f->pa;
	dtn__s3 *s3;
	dtn_error err = {0};
	bool found;
	char key[128];

	(void)state;
	bad.secret = (char *)"wrong-secret-0123456789";
	assert_int_equal(dtn__s3_new(&s3, f->http, &bad, &err), 0);
	assert_int_equal(dtn__s3_exists(s3, "x/", &found, &err), DTN_EAUTH);
	remember(&err);
	assert_non_null(strstr(err.message, "S3 ListObjectsV2 "));
	assert_non_null(strstr(err.message, ": 403 SignatureDoesNotMatch: "));
	assert_null(strstr(err.message, "wrong-secret"));
	snprintf(key, sizeof(key), "%s/k/context.tar", f->pa.organization_id);
	assert_int_equal(dtn__s3_put(s3, key, "x", 1, &err), DTN_EAUTH);
	remember(&err);
	assert_non_null(strstr(err.message, key));
	dtn__s3_free(s3);
	/* Expired credentials. */
	tu_server_control(&tu_srv, "POST", "/_control/credentials/expire", "{}", NULL);
	assert_int_equal(dtn__s3_put(f->s3, key, "x", 1, &err), DTN_EAUTH);
	remember(&err);
	assert_non_null(strstr(err.message, "ExpiredToken"));
	fixture_free(f);
}

/* The next listing is refused (403 SignatureDoesNotMatch) with `message`; err gets the error. */
static void listing_refused_with(fixture *f, const char *message, dtn_error *err)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i}", "server", "s3", "method",
			      "GET", "path", "list-type=2", "action", "status", "status", 403,
			      "code", "SignatureDoesNotMatch", "message", message, "times", 1);
	char *rule = json_dumps(j, 0);
	bool found;

	assert_non_null(rule);
	json_decref(j);
	tu_server_fault(&tu_srv, rule);
	free(rule);
	assert_int_equal(dtn__s3_exists(f->s3, "x/", &found, err), DTN_EAUTH);
	remember(err);
}

/*
 * An error answer that echoes the credentials back (as a proxy or a misconfigured store may:
 * the session token, the secret, the signature it computed) has them redacted, and stays one
 * line, whatever control characters it holds.
 */
static void test_snapshots_s3__echoed_credentials_redacted(void **state)
{
	fixture *f = fixture_new();
	const char *sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char *message, head[17];
	dtn_error err = {0};

	(void)state;
	assert_non_null(f->pa.session_token);
	message = dtn__aprintf("token %s secret %s\r\nsignature %s\x1b[2J end", f->pa.session_token,
			       f->pa.secret, sig);
	listing_refused_with(f, message, &err);
	assert_non_null(strstr(err.message, ": 403 SignatureDoesNotMatch: token [redacted] secret "
					    "[redacted]"));
	assert_non_null(strstr(err.message, "signature [redacted]"));
	assert_non_null(strstr(err.message, " end"));
	assert_null(strstr(err.message, f->pa.session_token));
	assert_null(strstr(err.message, f->pa.secret));
	assert_null(strstr(err.message, sig));
	for (const char *c = err.message; *c; c++)
		assert_true((unsigned char)*c >= 0x20);
	dtn__free(message);
	/* a token that only starts before the message is cut short is still recognised whole */
	message = dtn__aprintf("%0480d%s", 0, f->pa.session_token); /* the cut is at 511 */
	listing_refused_with(f, message, &err);
	assert_true(strlen(f->pa.session_token) >= 16);
	snprintf(head, sizeof(head), "%s", f->pa.session_token);
	assert_null(strstr(err.message, head));
	dtn__free(message);
	fixture_free(f);
}

/* A server without region in push-access: us-east-1, which the server signs for. */
static void test_snapshots_s3__push_access_without_region(void **state)
{
	fixture *f;
	dtn_error err = {0};
	char key[128];

	(void)state;
	tu_server_scenario(&tu_srv, "{\"push_access_region\":false}");
	f = fixture_new();
	assert_null(f->pa.region);
	assert_string_equal(dtn__s3_region_of(f->s3), "us-east-1");
	snprintf(key, sizeof(key), "%s/noregion/context.tar", f->pa.organization_id);
	assert_int_equal(dtn__s3_put(f->s3, key, "tar", 3, &err), 0);
	fixture_free(f);
}

/* Allocation failures anywhere in a put and an existence check: an error, never a crash. */
static void test_snapshots_s3__allocation_failures(void **state)
{
	fixture *f = fixture_new();
	bool ok = false;
	long n;

	(void)state;
	for (n = 1; n < 400 && !ok; n++) {
		dtn__s3 *s3 = NULL;
		dtn__s3_upload *u = NULL;
		dtn_error err = {0};
		bool found;
		char key[128];
		int rc;
		snprintf(key, sizeof(key), "%s/alloc/context.tar", f->pa.organization_id);
		tu_fail_alloc_after(n);
		rc = dtn__s3_new(&s3, f->http, &f->pa, &err);
		if (rc == 0)
			rc = dtn__s3_exists(s3, key, &found, &err);
		if (rc == 0)
			rc = dtn__s3_upload_begin(&u, s3, key, NULL, &err);
		if (rc == 0)
			rc = dtn__s3_upload_write(u, "data", 4, &err);
		if (rc == 0)
			rc = dtn__s3_upload_finish(u, &err);
		tu_alloc_reset();
		if (rc == 0)
			ok = true;
		else
			assert_int_equal(rc, DTN_ENOMEM);
		dtn__s3_upload_free(u);
		dtn__s3_free(s3);
	}
	assert_true(ok);
	assert_true(n > 5);
	fixture_free(f);
}

/* Last: no message seen in these tests carries a credential or a signature. */
static void test_snapshots_s3__no_secrets_in_errors(void **state)
{
	fixture *f = fixture_new();
	json_t *log = NULL;

	(void)state;
	assert_true(nseen >= 5);
	for (int i = 0; i < nseen; i++) {
		const char *m = seen_errors[i];
		assert_null(strstr(m, f->pa.secret));
		assert_null(strstr(m, "Signature="));
		assert_null(strstr(m, "x-amz-security-token"));
		assert_null(strstr(m, "Authorization"));
		for (const char *p = m; *p; p++) {
			size_t hex = strspn(p, "0123456789abcdef");
			assert_true(hex < 64);
			p += hex ? hex - 1 : 0;
		}
	}
	json_decref(log);
	fixture_free(f);
}

#define T(name) cmocka_unit_test_setup(name, tu_daytona_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshots_s3__push_access_parse),
		cmocka_unit_test(test_snapshots_s3__region_choice),
		cmocka_unit_test(test_snapshots_s3__bad_client_input),
		T(test_snapshots_s3__small_put_and_exists),
		T(test_snapshots_s3__put_and_empty),
		T(test_snapshots_s3__multipart_parallel),
		T(test_snapshots_s3__failed_part_aborts),
		T(test_snapshots_s3__cancel_aborts),
		T(test_snapshots_s3__bad_secret),
		T(test_snapshots_s3__echoed_credentials_redacted),
		T(test_snapshots_s3__push_access_without_region),
		T(test_snapshots_s3__allocation_failures),
		T(test_snapshots_s3__no_secrets_in_errors),
	};

	return cmocka_run_group_tests(tests, tu_daytona_group_setup, tu_daytona_group_teardown);
}
