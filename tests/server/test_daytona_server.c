/*
 * test_daytona_server.c - the Daytona test server itself: auth, validation, states, log streams,
 * S3 signatures and fault injection, driven over HTTP with libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "testutil.h"

static tu_server srv;

typedef struct resp {
	long status;
	char *body;
	size_t len;
	struct curl_slist *headers;
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *payload)
{
	resp *r = payload;
	char *b = realloc(r->body, r->len + size * n + 1);

	assert_non_null(b);
	memcpy(b + r->len, p, size * n);
	r->body = b;
	r->len += size * n;
	b[r->len] = '\0';
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *payload)
{
	resp *r = payload;
	char line[512];
	size_t len = size * n < sizeof(line) - 1 ? size * n : sizeof(line) - 1;

	memcpy(line, p, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (*line)
		r->headers = curl_slist_append(r->headers, line);
	return size * n;
}

static void resp_free(resp *r)
{
	free(r->body);
	curl_slist_free_all(r->headers);
	memset(r, 0, sizeof(*r));
}

/* One request; auth is "key", "jwt", "jwt-noorg" or NULL. Returns the curl code. */
static CURLcode http(resp *r, const char *method, const char *url, const char *auth,
	const char *json)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char line[256];
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (auth) {
		const char *tok = strcmp(auth, "key") == 0 ? srv.api_key : srv.jwt;

		snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
		h = curl_slist_append(h, line);
		if (strcmp(auth, "jwt") == 0) {
			snprintf(line, sizeof(line), "X-Daytona-Organization-ID: %s", srv.org_id);
			h = curl_slist_append(h, line);
		}
	}
	if (json) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

static json_t *api(long want, const char *method, const char *path, const char *json)
{
	char url[512];
	resp r;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", srv.api_url, path);
	assert_int_equal(http(&r, method, url, "key", json), CURLE_OK);
	if (r.status != want)
		fprintf(stderr, "%s %s -> %ld %s\n", method, path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, want);
	j = r.body && *r.body ? json_loads(r.body, 0, NULL) : json_null();
	resp_free(&r);
	assert_non_null(j);
	return j;
}

static const char *str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static const char *header(const resp *r, const char *name)
{
	size_t n = strlen(name);

	for (struct curl_slist *h = r->headers; h; h = h->next)
		if (strncasecmp(h->data, name, n) == 0 && h->data[n] == ':')
			return h->data + n + 2;
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	tu_server_reset(&srv);
	tu_server_scenario(&srv, "{\"pending_ms\":100,\"log_interval_ms\":20,"
				  "\"stream_tail_ms\":100,\"pull_ms\":100,\"volume_pending_ms\":50,"
				  "\"volume_creating_ms\":50,\"sandbox_start_ms\":50}");
	return 0;
}

/* Waits (bounded) for a snapshot to reach a state; returns its final DTO. */
static json_t *wait_state(const char *path, const char *want)
{
	for (int i = 0; i < 500; i++) {
		json_t *j = api(200, "GET", path, NULL);

		if (strcmp(str(j, "state"), want) == 0)
			return j;
		json_decref(j);
		usleep(10000);
	}
	fail_msg("%s never reached %s", path, want);
	return NULL;
}

static void test_server_daytona__auth(void **state)
{
	char url[256];
	resp r;
	json_t *j;

	(void)state;
	snprintf(url, sizeof(url), "%s/snapshots", srv.api_url);
	assert_int_equal(http(&r, "GET", url, NULL, NULL), CURLE_OK);
	assert_int_equal(r.status, 401);
	j = json_loads(r.body, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "statusCode")), 401);
	assert_string_equal(str(j, "error"), "Unauthorized");
	assert_string_equal(str(j, "path"), "/api/snapshots");
	assert_non_null(str(j, "timestamp"));
	json_decref(j);
	resp_free(&r);

	assert_int_equal(http(&r, "GET", url, "jwt-noorg", NULL), CURLE_OK);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	assert_int_equal(http(&r, "GET", url, "jwt", NULL), CURLE_OK);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* Outside /api: the dashboard's HTML, not JSON. */
	snprintf(url, sizeof(url), "%s/snapshots", srv.base_url);
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(header(&r, "Content-Type"), "text/html"));
	resp_free(&r);
}

static void test_server_daytona__validation(void **state)
{
	json_t *j;

	(void)state;
	j = api(400, "POST", "/snapshots", "{\"name\":\"v\",\"imageName\":\"a:1\",\"bogus\":1}");
	assert_string_equal(str(j, "message"), "property bogus should not exist");
	json_decref(j);
	j = api(400, "POST", "/snapshots", "{\"name\":\"v\",\"imageName\":\"a:1\",\"cpu\":\"2\"}");
	assert_string_equal(str(j, "message"), "cpu must be an integer number");
	json_decref(j);
	j = api(400, "POST", "/snapshots",
		"{\"name\":\"v\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:1\\n\"},"
		"\"entrypoint\":[\"sleep\"]}");
	assert_string_equal(str(j, "message"),
		"Cannot specify an entrypoint when using a build info entry");
	json_decref(j);
	j = api(400, "POST", "/snapshots", "{\"name\":\"v\",\"imageName\":\"python:latest\"}");
	assert_string_equal(str(j, "message"), "Images with tag \":latest\" are not allowed");
	json_decref(j);
	j = api(400, "POST", "/snapshots", "{\"name\":\"bad name\",\"imageName\":\"a:1\"}");
	assert_non_null(strstr(str(j, "message"), "Invalid snapshot name"));
	json_decref(j);
	j = api(400, "DELETE", "/snapshots/not-a-uuid", NULL);
	json_decref(j);
	j = api(404, "GET", "/snapshots/missing%3Asnap", NULL);
	assert_string_equal(str(j, "message"), "Snapshot missing:snap not found");
	assert_string_equal(str(j, "path"), "/api/snapshots/missing%3Asnap");
	json_decref(j);
}

static void test_server_daytona__snapshot_states_and_logs(void **state)
{
	json_t *j, *u;
	char path[256], url[512], id[64];
	resp r;

	(void)state;
	j = api(200, "POST", "/snapshots",
		"{\"name\":\"s1\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:1\\n\","
		"\"contextHashes\":[\"bb\",\"aa\"]},\"memory\":4,\"regionId\":\"us\"}");
	assert_string_equal(str(j, "state"), "pending");
	assert_int_equal(json_integer_value(json_object_get(j, "mem")), 4);
	assert_null(json_object_get(j, "memory"));
	/* sha256("FROM a:1\n" "aa" "bb") */
	assert_string_equal(str(json_object_get(j, "buildInfo"), "snapshotRef"),
		"daytona-714590b7b9a0ab74f00618b90237b27613cad19f6d1dbca8a4de9620d56d4dd5:daytona");
	snprintf(id, sizeof(id), "%s", str(j, "id"));
	json_decref(j);

	j = api(409, "POST", "/snapshots",
		"{\"name\":\"s1\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:1\\n\"}}");
	assert_string_equal(str(j, "message"),
		"Snapshot with name \"s1\" already exists for this organization");
	json_decref(j);

	snprintf(path, sizeof(path), "/snapshots/%s/build-logs-url", id);
	u = api(200, "GET", path, NULL);
	snprintf(url, sizeof(url), "%s?follow=true", str(u, "url"));
	assert_non_null(strstr(url, srv.proxy_url));
	json_decref(u);
	/* Follows until the end, which only comes after success. */
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "#10 exporting to image\n"));
	resp_free(&r);
	j = api(200, "GET", "/snapshots/s1", NULL);
	assert_string_equal(str(j, "state"), "active");
	json_decref(j);

	/* The same build again: active at once. */
	j = api(200, "POST", "/snapshots",
		"{\"name\":\"s2\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:1\\n\","
		"\"contextHashes\":[\"aa\",\"bb\"]}}");
	assert_string_equal(str(j, "state"), "active");
	json_decref(j);

	j = api(200, "GET", "/snapshots?page=1&limit=1&name=S", NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "totalPages")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);

	snprintf(path, sizeof(path), "/snapshots/%s", id);
	j = api(200, "DELETE", path, NULL);
	json_decref(j);
}

static void test_server_daytona__failed_build_stream_stays_open(void **state)
{
	json_t *j, *u;
	char path[256], url[512];
	resp r;
	CURL *c;

	(void)state;
	tu_server_scenario(&srv, "{\"outcome\":\"build_failed\"}");
	j = api(200, "POST", "/snapshots",
		"{\"name\":\"f1\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:2\\n\"}}");
	snprintf(path, sizeof(path), "/snapshots/%s/build-logs-url", str(j, "id"));
	json_decref(j);
	u = api(200, "GET", path, NULL);
	snprintf(url, sizeof(url), "%s?follow=true", str(u, "url"));
	json_decref(u);
	j = wait_state("/snapshots/f1", "build_failed");
	assert_string_equal(str(j, "errorReason"), "Failed to build snapshot: exit code 1");
	json_decref(j);

	/* The stream has all lines but never ends: the client's timeout cuts it. */
	memset(&r, 0, sizeof(r));
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 700L);
	{
		struct curl_slist *h = NULL;
		char line[128];

		snprintf(line, sizeof(line), "Authorization: Bearer %s", srv.api_key);
		h = curl_slist_append(h, line);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		assert_int_equal(curl_easy_perform(c), CURLE_OPERATION_TIMEDOUT);
		curl_slist_free_all(h);
	}
	curl_easy_cleanup(c);
	assert_non_null(strstr(r.body, "ERROR: No matching distribution"));
	resp_free(&r);
}

static void test_server_daytona__faults(void **state)
{
	char url[256];
	resp r;

	(void)state;
	tu_server_fault(&srv, "{\"server\":\"api\",\"method\":\"GET\",\"path\":\"^/api/volumes$\","
			      "\"status\":429,\"retry_after\":37,\"times\":1}");
	tu_server_fault(&srv, "{\"path\":\"^/api/volumes$\",\"action\":\"reset\"}");
	snprintf(url, sizeof(url), "%s/volumes", srv.api_url);
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_int_equal(r.status, 429);
	assert_string_equal(header(&r, "Retry-After-authenticated"), "37");
	assert_non_null(strstr(r.body, "ThrottlerException: Too Many Requests"));
	resp_free(&r);
	assert_int_not_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	resp_free(&r);
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "[]");
	assert_string_equal(header(&r, "X-RateLimit-Limit-authenticated"), "10000");
	resp_free(&r);
	assert_int_equal(tu_server_count(&srv, "api", "GET", "/api/volumes"), 3);
}

static void test_server_daytona__volumes_and_sandbox(void **state)
{
	json_t *j, *v;
	char body[512], vid[64];

	(void)state;
	j = api(200, "POST", "/snapshots", "{\"name\":\"img\",\"imageName\":\"python:3.12-slim\"}");
	json_decref(j);
	json_decref(wait_state("/snapshots/img", "active"));
	tu_server_scenario(&srv, "{\"volume_pending_ms\":300,\"volume_creating_ms\":300}");
	v = api(200, "POST", "/volumes", "{\"name\":\"v1\"}");
	assert_string_equal(str(v, "state"), "pending_create");
	snprintf(vid, sizeof(vid), "%s", str(v, "id"));
	json_decref(v);
	j = api(400, "POST", "/volumes", "{\"name\":\"v1\"}");
	assert_string_equal(str(j, "message"), "Volume with name v1 already exists");
	json_decref(j);
	j = api(404, "GET", "/volumes/by-name/nope", NULL);
	assert_string_equal(str(j, "message"), "Volume with name nope not found");
	json_decref(j);

	/* Not ready yet: the reference's 400. */
	snprintf(body, sizeof(body), "{\"snapshot\":\"img\",\"volumes\":[{\"volumeId\":\"v1\","
				      "\"mountPath\":\"/data\"}]}");
	j = api(400, "POST", "/sandbox", body);
	assert_non_null(strstr(str(j, "message"), "Volume 'v1' is not in a ready state"));
	json_decref(j);
	json_decref(wait_state("/volumes/by-name/v1", "ready"));

	j = api(400, "POST", "/sandbox", "{\"snapshot\":\"img\",\"volumes\":[{\"volumeId\":\"v1\","
					 "\"mountPath\":\"/etc/x\"}]}");
	json_decref(j);
	j = api(400, "POST", "/sandbox", "{\"snapshot\":\"img\",\"cpu\":2}");
	assert_string_equal(str(j, "message"),
		"Cannot specify Sandbox resources when using a snapshot");
	json_decref(j);

	j = api(200, "POST", "/sandbox", body);
	assert_string_equal(str(j, "state"), "started");
	assert_string_equal(str(json_array_get(json_object_get(j, "volumes"), 0), "volumeId"), vid);
	json_decref(j);
	snprintf(body, sizeof(body), "/volumes/%s", vid);
	j = api(409, "DELETE", body, NULL);
	json_decref(j);
}

/* Creates a snapshot built from `dockerfile` and returns its log URL (?follow=true). */
static void start_build(const char *name, const char *dockerfile, char *url, size_t len)
{
	char body[512], path[256];
	json_t *j, *u;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"buildInfo\":{\"dockerfileContent\":\"%s\"}}",
		name, dockerfile);
	j = api(200, "POST", "/snapshots", body);
	snprintf(path, sizeof(path), "/snapshots/%s/build-logs-url", str(j, "id"));
	json_decref(j);
	u = api(200, "GET", path, NULL);
	snprintf(url, len, "%s?follow=true", str(u, "url"));
	json_decref(u);
}

static void test_server_daytona__log_faults(void **state)
{
	char url[512];
	resp r;
	json_t *j, *log;

	(void)state;
	tu_server_scenario(&srv, "{\"names\":{\"d1\":{\"log_mode\":\"drop\","
				  "\"log_fault_after_lines\":2,\"log_fault_times\":1},"
				  "\"n1\":{\"log_mode\":\"404\"},"
				  "\"c1\":{\"log_chunk_bytes\":7,\"log_lines\":[\"h\\u00e9llo w\\u00f6rld\\n\","
				  "5,\"second line\\n\"]}}}");

	/* Dropped after two lines; the next open replays everything and ends. */
	start_build("d1", "FROM a:3\\n", url, sizeof(url));
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_PARTIAL_FILE);
	assert_string_equal(r.body, "#1 [internal] load build definition from Dockerfile\n"
				    "#1 transferring dockerfile: 372B done\n");
	resp_free(&r);
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_non_null(strstr(r.body, "#1 [internal]"));
	assert_non_null(strstr(r.body, "#10 exporting to image\n"));
	resp_free(&r);

	/* The log endpoint answers 404 JSON. */
	start_build("n1", "FROM a:4\\n", url, sizeof(url));
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_int_equal(r.status, 404);
	j = json_loads(r.body, 0, NULL);
	assert_non_null(strstr(str(j, "message"), "build logs not found for ref: daytona-"));
	json_decref(j);
	resp_free(&r);

	/* Without credentials. */
	assert_int_equal(http(&r, "GET", url, NULL, NULL), CURLE_OK);
	assert_int_equal(r.status, 401);
	resp_free(&r);

	/* Chunks that cut lines and characters. */
	start_build("c1", "FROM a:5\\n", url, sizeof(url));
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_string_equal(r.body, "h\xc3\xa9llo w\xc3\xb6rld\nsecond line\n");
	resp_free(&r);
	log = tu_server_requests(&srv, "proxy");
	j = json_array_get(log, json_array_size(log) - 1);
	assert_string_equal(str(j, "stream_end"), "eof");
	assert_int_equal(json_array_size(json_object_get(j, "stream")), 2);
	json_decref(log);
}

static void test_server_daytona__push_access_and_runner_wait(void **state)
{
	json_t *j;
	char path[256];

	(void)state;
	tu_server_scenario(&srv, "{\"push_access_region\":false,\"pending_ms\":-1,"
				  "\"logs_url_wait_ms\":100}");
	j = api(200, "GET", "/object-storage/push-access", NULL);
	assert_null(json_object_get(j, "region"));
	assert_string_equal(str(j, "organizationId"), srv.org_id);
	json_decref(j);

	j = api(200, "POST", "/snapshots",
		"{\"name\":\"p1\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:6\\n\"}}");
	snprintf(path, sizeof(path), "/snapshots/%s/build-logs-url", str(j, "id"));
	json_decref(j);
	json_decref(api(404, "GET", path, NULL));
	j = api(200, "GET", "/snapshots/p1", NULL);
	assert_string_equal(str(j, "state"), "pending");
	json_decref(j);
}

static void test_server_daytona__activate_and_seed(void **state)
{
	char *text = NULL, path[256];
	json_t *j;

	(void)state;
	assert_int_equal(tu_server_control(&srv, "POST", "/_control/snapshots",
				 "{\"name\":\"old\",\"state\":\"inactive\"}", &text), 200);
	j = json_loads(text, 0, NULL);
	free(text);
	snprintf(path, sizeof(path), "/snapshots/%s/activate", str(j, "id"));
	json_decref(j);
	j = api(200, "POST", path, NULL);
	assert_string_equal(str(j, "state"), "pending");
	json_decref(j);
	json_decref(wait_state("/snapshots/old", "active"));
	j = api(400, "POST", path, NULL);
	assert_non_null(strstr(str(j, "message"), "is already active"));
	json_decref(j);
	json_decref(api(400, "POST", "/snapshots/old/activate", NULL));
}

static void test_server_daytona__sandbox_build(void **state)
{
	json_t *j, *u;
	char path[256], url[512], id[64];
	resp r;

	(void)state;
	j = api(200, "POST", "/sandbox",
		"{\"name\":\"sb\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:7\\n\","
		"\"contextHashes\":[\"e3\"]},\"cpu\":1,\"memory\":2,\"disk\":4,\"target\":\"us\","
		"\"env\":{},\"labels\":{\"code-toolbox-language\":\"python\"}}");
	assert_string_equal(str(j, "state"), "pending_build");
	assert_int_equal(json_integer_value(json_object_get(j, "memory")), 2);
	snprintf(id, sizeof(id), "%s", str(j, "id"));
	json_decref(j);
	snprintf(path, sizeof(path), "/sandbox/%s/build-logs-url", id);
	u = api(200, "GET", path, NULL);
	snprintf(url, sizeof(url), "%s?follow=true", str(u, "url"));
	assert_non_null(strstr(url, "/sandboxes/"));
	json_decref(u);
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_non_null(strstr(r.body, "#10 exporting to image\n"));
	resp_free(&r);
	snprintf(path, sizeof(path), "/sandbox/%s", id);
	json_decref(wait_state(path, "started"));
	/* TS-npm-only fields are unknown to the server. */
	j = api(400, "POST", "/sandbox", "{\"snapshot\":\"x\",\"spot\":true}");
	assert_string_equal(str(j, "message"), "property spot should not exist");
	json_decref(j);
}

static void test_server_daytona__transcript_preset(void **state)
{
	char url[256];
	resp r;
	json_t *j;

	(void)state;
	tu_server_control(&srv, "POST", "/_control/preset/transcript", "{\"time_scale\":0.1}", NULL);
	snprintf(url, sizeof(url), "%s/snapshots/flaky-snap", srv.api_url);
	assert_int_not_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	resp_free(&r);
	json_decref(wait_state("/snapshots/flaky-snap", "active"));
	snprintf(url, sizeof(url), "%s/snapshots/rate-limited", srv.api_url);
	assert_int_equal(http(&r, "GET", url, "key", NULL), CURLE_OK);
	assert_int_equal(r.status, 429);
	resp_free(&r);

	/* pending -> active without building */
	j = api(200, "POST", "/snapshots",
		"{\"name\":\"wire-snap-res\",\"buildInfo\":{\"dockerfileContent\":\"FROM a:8\\n\"}}");
	assert_string_equal(str(j, "state"), "pending");
	json_decref(j);
	for (int i = 0; i < 500; i++) {
		j = api(200, "GET", "/snapshots/wire-snap-res", NULL);
		assert_string_not_equal(str(j, "state"), "building");
		if (strcmp(str(j, "state"), "active") == 0) {
			json_decref(j);
			break;
		}
		json_decref(j);
		usleep(5000);
	}
	json_decref(wait_state("/snapshots/wire-snap-res", "active"));
}

/* Push-access credentials for the S3 tests. */
typedef struct creds {
	char akid[64], secret[128], token[256];
} creds;

static creds push_access(void)
{
	json_t *pa = api(200, "GET", "/object-storage/push-access", NULL);
	creds c;

	assert_string_equal(str(pa, "region"), srv.region);
	assert_string_equal(str(pa, "bucket"), srv.bucket);
	assert_string_equal(str(pa, "storageUrl"), srv.s3_url);
	snprintf(c.akid, sizeof(c.akid), "%s", str(pa, "accessKey"));
	snprintf(c.secret, sizeof(c.secret), "%s", str(pa, "secret"));
	snprintf(c.token, sizeof(c.token), "%s", str(pa, "sessionToken"));
	json_decref(pa);
	return c;
}

/* Runs the request set up on e, collecting into r; frees e and the header list. */
static long perform(CURL *e, struct curl_slist *headers, resp *r)
{
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	r->status = -1;
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(e);
	return r->status;
}

/*
 * An S3 request signed by libcurl (CURLOPT_AWS_SIGV4) with the given credentials. path_query is
 * "<key>[?query]" below the bucket, the query already in canonical order.
 */
static long s3(resp *r, const creds *c, const char *method, const char *path_query,
	const void *data, size_t len)
{
	char url[1024], userpwd[256], h1[320], h2[128], hex[65];
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct curl_slist *h = NULL;
	CURL *e = curl_easy_init();

	memset(r, 0, sizeof(*r));
	SHA256(data ? data : (const void *)"", len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(url, sizeof(url), "%s/%s/%s", srv.s3_url, srv.bucket, path_query);
	snprintf(userpwd, sizeof(userpwd), "%s:%s", c->akid, c->secret);
	snprintf(h1, sizeof(h1), "x-amz-security-token: %s", c->token);
	snprintf(h2, sizeof(h2), "x-amz-content-sha256: %s", hex);
	h = curl_slist_append(h, h1);
	h = curl_slist_append(h, h2);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, data ? data : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(e, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
	return perform(e, h, r);
}

static int has_code(const resp *r, const char *code)
{
	char want[128];

	snprintf(want, sizeof(want), "<Code>%s</Code>", code);
	return r->body && strstr(r->body, want) != NULL;
}

/*
 * Sends a logged S3 request again with its signed headers (Host, Authorization, Content-Type,
 * x-amz-*) as they were, plus `extra` (may be NULL), and `body`.
 */
static long resend(resp *r, const json_t *logged, const char *extra, const char *body)
{
	const json_t *headers = json_object_get(logged, "headers"), *h;
	struct curl_slist *list = NULL;
	char url[1024], line[2048];
	CURL *e = curl_easy_init();
	size_t i;

	memset(r, 0, sizeof(*r));
	json_array_foreach(headers, i, h)
	{
		const char *name = json_string_value(json_array_get(h, 0));

		if (strcasecmp(name, "host") && strcasecmp(name, "authorization") &&
		    strcasecmp(name, "content-type") && strncasecmp(name, "x-amz-", 6))
			continue;
		snprintf(line, sizeof(line), "%s: %s", name,
			 json_string_value(json_array_get(h, 1)));
		list = curl_slist_append(list, line);
	}
	if (extra)
		list = curl_slist_append(list, extra);
	snprintf(url, sizeof(url), "%s%s", srv.s3_url,
		 json_string_value(json_object_get(logged, "path")));
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, json_string_value(json_object_get(logged,
										       "method")));
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
	return perform(e, list, r);
}

static void test_server_daytona__s3_signatures(void **state)
{
	creds c = push_access(), bad;
	json_t *log;
	char key[256], list[512];
	unsigned char *obj;
	size_t len = 0;
	int verified = 0, rejected = 0;
	resp r;

	(void)state;
	snprintf(key, sizeof(key), "%s/abc/context.tar", srv.org_id);
	assert_int_equal(s3(&r, &c, "PUT", key, "tar bytes", 9), 200);
	resp_free(&r);

	bad = c;
	snprintf(bad.secret, sizeof(bad.secret), "not-the-secret");
	assert_int_equal(s3(&r, &bad, "PUT", key, "other bytes", 11), 403);
	assert_true(has_code(&r, "SignatureDoesNotMatch"));
	resp_free(&r);
	bad = c;
	snprintf(bad.token, sizeof(bad.token), "another-token");
	assert_int_equal(s3(&r, &bad, "PUT", key, "other bytes", 11), 403);
	assert_true(has_code(&r, "InvalidToken"));
	resp_free(&r);

	/* Outside the organization's prefix. */
	assert_int_equal(s3(&r, &c, "PUT", "someone-else/x", "x", 1), 403);
	assert_true(has_code(&r, "AccessDenied"));
	resp_free(&r);

	snprintf(list, sizeof(list), "?list-type=2&max-keys=1&prefix=%s%%2Fabc%%2F", srv.org_id);
	assert_int_equal(s3(&r, &c, "GET", list, NULL, 0), 200);
	assert_non_null(strstr(r.body, "<KeyCount>1</KeyCount>"));
	assert_non_null(strstr(r.body, "/abc/context.tar</Key>"));
	resp_free(&r);
	/* Not in canonical order: libcurl signs it as written, S3 sorts it. */
	snprintf(list, sizeof(list), "?prefix=%s%%2Fabc%%2F&list-type=2", srv.org_id);
	assert_int_equal(s3(&r, &c, "GET", list, NULL, 0), 403);
	resp_free(&r);

	obj = tu_server_object(&srv, key, &len);
	assert_non_null(obj);
	assert_int_equal(len, 9);
	assert_memory_equal(obj, "tar bytes", 9);
	free(obj);

	log = tu_server_requests(&srv, "s3");
	for (size_t i = 0; i < json_array_size(log); i++) {
		json_t *e = json_array_get(log, i);

		if (json_is_true(json_object_get(e, "signature_verified")))
			verified++;
		else
			rejected++;
	}
	assert_int_equal(verified, 3);
	assert_int_equal(rejected, 3);

	/* The signed PUT sent again as it was: accepted; with an x-amz-* header that is not
	 * signed: refused, as S3 refuses it. */
	assert_int_equal(resend(&r, json_array_get(log, 0), NULL, "tar bytes"), 200);
	resp_free(&r);
	assert_int_equal(resend(&r, json_array_get(log, 0), "x-amz-meta-note: unsigned", "tar bytes"),
			 403);
	assert_true(has_code(&r, "AccessDenied"));
	assert_non_null(strstr(r.body, "<HeadersNotSigned>x-amz-meta-note</HeadersNotSigned>"));
	resp_free(&r);
	json_decref(log);

	/* The server's region is not the one the client signs for. */
	tu_server_scenario(&srv, "{\"s3_region\":\"eu-central-1\"}");
	assert_int_equal(s3(&r, &c, "PUT", key, "tar bytes", 9), 400);
	assert_true(has_code(&r, "AuthorizationHeaderMalformed"));
	assert_non_null(strstr(r.body, "expecting 'eu-central-1'"));
	resp_free(&r);
	tu_server_scenario(&srv, "{\"s3_region\":null}");

	/* Expired credentials. */
	tu_server_control(&srv, "POST", "/_control/credentials/expire", "{}", NULL);
	assert_int_equal(s3(&r, &c, "PUT", key, "tar bytes", 9), 400);
	assert_true(has_code(&r, "ExpiredToken"));
	resp_free(&r);
}

/* Starts a multipart upload; returns its id in a static buffer. */
static const char *mpu_start(const creds *c, const char *key)
{
	static char id[128];
	char pq[512];
	const char *p, *q;
	resp r;

	snprintf(pq, sizeof(pq), "%s?uploads=", key);
	assert_int_equal(s3(&r, c, "POST", pq, NULL, 0), 200);
	assert_non_null(p = strstr(r.body, "<UploadId>"));
	p += strlen("<UploadId>");
	assert_non_null(q = strstr(p, "</UploadId>"));
	snprintf(id, sizeof(id), "%.*s", (int)(q - p), p);
	resp_free(&r);
	return id;
}

static void mpu_part(const creds *c, const char *key, const char *id, int n, const void *data,
	size_t len, char *etag, size_t etag_len)
{
	char pq[512];
	resp r;

	snprintf(pq, sizeof(pq), "%s?partNumber=%d&uploadId=%s", key, n, id);
	assert_int_equal(s3(&r, c, "PUT", pq, data, len), 200);
	snprintf(etag, etag_len, "%s", header(&r, "ETag"));
	resp_free(&r);
}

static long mpu_complete(resp *r, const creds *c, const char *key, const char *id,
	const char *e1, const char *e2)
{
	char pq[512], xml[1024];

	snprintf(pq, sizeof(pq), "%s?uploadId=%s", key, id);
	snprintf(xml, sizeof(xml),
		"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Part><ETag>%s</ETag><PartNumber>1</PartNumber></Part>"
		"<Part><ETag>%s</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>",
		e1, e2);
	return s3(r, c, "POST", pq, xml, strlen(xml));
}

static void test_server_daytona__s3_multipart(void **state)
{
	creds c = push_access();
	size_t big = 5 * 1024 * 1024, len = 0;
	unsigned char *data = malloc(big + 100), *obj;
	char key[256], e1[64], e2[64], pq[512];
	const char *id;
	json_t *ups;
	char *text = NULL;
	resp r;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < big + 100; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 13));
	snprintf(key, sizeof(key), "%s/big/context.tar", srv.org_id);

	/* Parts in any order; the object is their concatenation. */
	id = mpu_start(&c, key);
	mpu_part(&c, key, id, 2, data + big, 100, e2, sizeof(e2));
	mpu_part(&c, key, id, 1, data, big, e1, sizeof(e1));
	assert_int_equal(mpu_complete(&r, &c, key, id, e1, e2), 200);
	assert_non_null(strstr(r.body, "-2&quot;</ETag>"));
	resp_free(&r);
	obj = tu_server_object(&srv, key, &len);
	assert_int_equal(len, big + 100);
	assert_memory_equal(obj, data, big + 100);
	free(obj);

	/* A first part under 5 MiB. */
	id = mpu_start(&c, key);
	mpu_part(&c, key, id, 1, data, 100, e1, sizeof(e1));
	mpu_part(&c, key, id, 2, data, 100, e2, sizeof(e2));
	assert_int_equal(mpu_complete(&r, &c, key, id, e1, e2), 400);
	assert_true(has_code(&r, "EntityTooSmall"));
	resp_free(&r);
	assert_int_equal(mpu_complete(&r, &c, key, id, e1, "\"0000\""), 400);
	assert_true(has_code(&r, "InvalidPart"));
	resp_free(&r);

	/* Aborted: gone, and recorded. */
	snprintf(pq, sizeof(pq), "%s?uploadId=%s", key, id);
	assert_int_equal(s3(&r, &c, "DELETE", pq, NULL, 0), 204);
	resp_free(&r);
	assert_int_equal(mpu_complete(&r, &c, key, id, e1, e2), 404);
	assert_true(has_code(&r, "NoSuchUpload"));
	resp_free(&r);
	assert_int_equal(tu_server_control(&srv, "GET", "/_control/uploads", NULL, &text), 200);
	ups = json_loads(text, 0, NULL);
	free(text);
	assert_int_equal(json_array_size(json_object_get(ups, "open")), 0);
	assert_int_equal(json_array_size(json_object_get(ups, "aborted")), 1);
	json_decref(ups);
	free(data);
}

static int group_setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tu_server_start(&srv);
}

static int group_teardown(void **state)
{
	(void)state;
	tu_server_stop(&srv);
	curl_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_server_daytona__auth, setup),
		cmocka_unit_test_setup(test_server_daytona__validation, setup),
		cmocka_unit_test_setup(test_server_daytona__snapshot_states_and_logs, setup),
		cmocka_unit_test_setup(test_server_daytona__failed_build_stream_stays_open, setup),
		cmocka_unit_test_setup(test_server_daytona__faults, setup),
		cmocka_unit_test_setup(test_server_daytona__volumes_and_sandbox, setup),
		cmocka_unit_test_setup(test_server_daytona__log_faults, setup),
		cmocka_unit_test_setup(test_server_daytona__push_access_and_runner_wait, setup),
		cmocka_unit_test_setup(test_server_daytona__activate_and_seed, setup),
		cmocka_unit_test_setup(test_server_daytona__sandbox_build, setup),
		cmocka_unit_test_setup(test_server_daytona__transcript_preset, setup),
		cmocka_unit_test_setup(test_server_daytona__s3_signatures, setup),
		cmocka_unit_test_setup(test_server_daytona__s3_multipart, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
