/*
 * test_api.c - one Daytona API call against the test server: the headers sent, error answers
 * mapped to codes with the server's message, retries, an unreachable server, cancellation and
 * the deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "daytona_fixture.h"
#include "testutil.h"

static dtn_daytona *client(void)
{
	return tu_daytona_client((dtn_daytona_opts){0});
}

static const json_t *last_request(json_t *log)
{
	assert_true(json_array_size(log) > 0);
	return json_array_get(log, json_array_size(log) - 1);
}

static void test_snapshots_api__headers_as_the_sdks_send(void **state)
{
	dtn_daytona *c = client();
	json_t *out = NULL, *log, *body = json_pack("{s:s, s:s}", "name", "v-hdr", "x", "y");
	const json_t *req;
	dtn_error err;
	char auth[128];

	(void)state;
	assert_int_equal(dtn__api_request(c, "GET", "/snapshots?page=1&limit=10", NULL, &out, &err),
			 0);
	assert_non_null(json_object_get(out, "items"));
	json_decref(out);
	log = tu_server_requests(&tu_srv, "api");
	req = last_request(log);
	snprintf(auth, sizeof(auth), "Bearer %s", tu_srv.api_key);
	assert_string_equal(tu_daytona_header(req, "Accept"), "application/json");
	assert_string_equal(tu_daytona_header(req, "User-Agent"), "dtn-build/" DTN_VERSION);
	assert_string_equal(tu_daytona_header(req, "Authorization"), auth);
	assert_string_equal(tu_daytona_header(req, "X-Daytona-Source"), "dtn-build");
	assert_string_equal(tu_daytona_header(req, "X-Daytona-SDK-Version"), DTN_VERSION);
	assert_null(tu_daytona_header(req, "X-Daytona-Organization-ID"));
	assert_null(tu_daytona_header(req, "Content-Type"));
	assert_string_equal(json_string_value(json_object_get(req, "query")), "page=1&limit=10");
	assert_non_null(strstr(tu_daytona_header(req, "Accept-Encoding"), "gzip"));
	json_decref(log);

	/* a body brings Content-Type; the server refuses the unknown field as it should */
	json_object_del(body, "x");
	assert_int_equal(dtn__api_request(c, "POST", "/volumes", body, &out, &err), 0);
	json_decref(out);
	json_decref(body);
	log = tu_server_requests(&tu_srv, "api");
	req = last_request(log);
	assert_string_equal(tu_daytona_header(req, "Content-Type"), "application/json");
	assert_string_equal(json_string_value(json_object_get(req, "body")), "{\"name\":\"v-hdr\"}");
	json_decref(log);
	dtn_daytona_free(c);
}

static void test_snapshots_api__jwt_sends_the_organization(void **state)
{
	dtn_daytona *c;
	json_t *log;
	const json_t *req;
	dtn_error err;
	char auth[128];

	(void)state;
	c = tu_daytona_client(
	    (dtn_daytona_opts){.jwt_token = tu_srv.jwt, .organization_id = tu_srv.org_id});
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, NULL, &err), 0);
	log = tu_server_requests(&tu_srv, "api");
	req = last_request(log);
	snprintf(auth, sizeof(auth), "Bearer %s", tu_srv.jwt);
	assert_string_equal(tu_daytona_header(req, "Authorization"), auth);
	assert_string_equal(tu_daytona_header(req, "X-Daytona-Organization-ID"), tu_srv.org_id);
	assert_string_equal(json_string_value(json_object_get(req, "auth")), "jwt");
	json_decref(log);
	dtn_daytona_free(c);

	/* another organization: 403, an authorization error */
	c = tu_daytona_client(
	    (dtn_daytona_opts){.jwt_token = tu_srv.jwt, .organization_id = "other-org"});
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, NULL, &err), DTN_EAUTH);
	assert_non_null(strstr(err.message, "403"));
	dtn_daytona_free(c);
}

static void test_snapshots_api__rejected_key_is_an_auth_error_without_the_key(void **state)
{
	dtn_daytona *c = tu_daytona_client((dtn_daytona_opts){.api_key = "wrong-secret-key-123"});
	dtn_error err;

	(void)state;
	assert_int_equal(dtn__api_request(c, "GET", "/snapshots", NULL, NULL, &err), DTN_EAUTH);
	assert_non_null(strstr(err.message, "401"));
	assert_non_null(strstr(err.message, "DAYTONA_API_KEY"));
	assert_null(strstr(err.message, "wrong-secret-key-123"));
	dtn_daytona_free(c);
}

static void test_snapshots_api__not_found_names_the_object(void **state)
{
	dtn_daytona *c = client();
	char *path = dtn__api_path("/snapshots/%s", "missing:snap");
	json_t *log;
	dtn_error err;

	(void)state;
	assert_string_equal(path, "/snapshots/missing%3Asnap");
	assert_int_equal(dtn__api_call(c, "GET", path, NULL, "snapshot \"missing:snap\"", NULL, &err),
			 DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "snapshot \"missing:snap\" not found"));
	assert_non_null(strstr(err.message, "Snapshot missing:snap not found"));
	log = tu_server_requests(&tu_srv, "api");
	assert_string_equal(json_string_value(json_object_get(last_request(log), "path")),
			    "/api/snapshots/missing%3Asnap");
	json_decref(log);
	dtn__free(path);
	dtn_daytona_free(c);
}

static void test_snapshots_api__status_codes(void **state)
{
	static const struct {
		int status;
		int code;
	} cases[] = {{400, DTN_EINVAL}, {401, DTN_EAUTH}, {403, DTN_EAUTH}, {404, DTN_ENOTFOUND},
		     {409, DTN_EEXISTS}, {422, DTN_EHTTP}, {500, DTN_EHTTP}};
	dtn_daytona *c = client();
	json_t *body = json_pack("{s:s}", "name", "v");
	dtn_error err;
	char fault[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(fault, sizeof(fault),
			 "{\"server\":\"api\",\"method\":\"POST\",\"path\":\"^/api/volumes\","
			 "\"action\":\"status\",\"status\":%d,\"message\":\"told %d\"}",
			 cases[i].status, cases[i].status);
		tu_server_fault(&tu_srv, fault);
		/* a POST is not retried, so one fault is enough for every status */
		assert_int_equal(dtn__api_request(c, "POST", "/volumes", body, NULL, &err),
				 cases[i].code);
		snprintf(fault, sizeof(fault), "told %d", cases[i].status);
		assert_non_null(strstr(err.message, fault));
	}
	json_decref(body);
	dtn_daytona_free(c);
}

static void test_snapshots_api__retries_then_rate_limit(void **state)
{
	dtn_daytona *c = tu_daytona_client((dtn_daytona_opts){.max_attempts = 3});
	json_t *log;
	dtn_error err;

	(void)state;
	/* one 429 and one 503: retried, the third attempt succeeds */
	tu_server_fault(&tu_srv,
			"[{\"server\":\"api\",\"path\":\"^/api/volumes\",\"action\":\"status\","
			"\"status\":429,\"retry_after\":1},"
			"{\"server\":\"api\",\"path\":\"^/api/volumes\",\"action\":\"status\","
			"\"status\":503}]");
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, NULL, &err), 0);
	log = tu_server_requests(&tu_srv, "api");
	assert_int_equal(json_array_size(log), 3);
	json_decref(log);

	/* always 429: reported with the server's message and its Retry-After */
	tu_server_fault(&tu_srv,
			"{\"server\":\"api\",\"path\":\"^/api/snapshots/rate-limited\","
			"\"action\":\"status\",\"status\":429,\"times\":5,\"retry_after\":1,"
			"\"message\":\"ThrottlerException: Too Many Requests\"}");
	assert_int_equal(dtn__api_request(c, "GET", "/snapshots/rate-limited", NULL, NULL, &err),
			 DTN_ERATELIMIT);
	assert_non_null(strstr(err.message, "ThrottlerException: Too Many Requests"));
	assert_non_null(strstr(err.message, "retry after 1 s"));
	dtn_daytona_free(c);
}

static void test_snapshots_api__dropped_connection_retried(void **state)
{
	dtn_daytona *c = client();
	json_t *log;
	dtn_error err;

	(void)state;
	tu_server_fault(&tu_srv,
			"{\"server\":\"api\",\"method\":\"GET\",\"path\":\"^/api/volumes\","
			"\"action\":\"reset\"}");
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, NULL, &err), 0);
	log = tu_server_requests(&tu_srv, "api");
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "status")),
			    "dropped");
	json_decref(log);
	dtn_daytona_free(c);
}

static void test_snapshots_api__server_down_names_the_url(void **state)
{
	dtn_daytona *c = tu_daytona_client(
	    (dtn_daytona_opts){.api_url = "http://127.0.0.1:9/api", .max_attempts = 2});
	dtn_error err;

	(void)state;
	assert_int_equal(dtn__api_request(c, "GET", "/snapshots", NULL, NULL, &err), DTN_ECONNECT);
	assert_non_null(strstr(err.message, "http://127.0.0.1:9/api/snapshots"));
	dtn_daytona_free(c);
}

static void test_snapshots_api__html_answer_hints_at_the_url(void **state)
{
	char url[128];
	dtn_daytona *c;
	dtn_error err;
	json_t *j = NULL;

	(void)state;
	snprintf(url, sizeof(url), "%s", tu_srv.base_url); /* no /api */
	c = tu_daytona_client((dtn_daytona_opts){.api_url = url});
	assert_int_equal(dtn__api_request(c, "GET", "/snapshots", NULL, NULL, &err), DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "HTML"));
	assert_non_null(strstr(err.message, "/api"));
	dtn_daytona_free(c);
	/* a server that answers every path with its web page, 200 included */
	c = tu_daytona_client((dtn_daytona_opts){0});
	tu_server_fault(&tu_srv, "{\"server\":\"api\",\"path\":\"^/api/volumes$\",\"action\":"
				 "\"status\",\"status\":200,\"content_type\":\"text/html\","
				 "\"body\":\"\\n<!DOCTYPE html><html></html>\"}");
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, &j, &err), DTN_EPROTOCOL);
	assert_null(j);
	assert_non_null(strstr(err.message, "/api/volumes: an HTML page, not an API answer"));
	dtn_daytona_free(c);
}

static void test_snapshots_api__cancel_and_deadline(void **state)
{
	volatile int cancel = 1;
	dtn_daytona *c = tu_daytona_client((dtn_daytona_opts){.cancel = &cancel});
	dtn_error err;

	(void)state;
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, NULL, &err), DTN_EINTR);
	assert_int_equal(dtn__api_sleep(c, 10000, &err), DTN_EINTR);
	dtn_daytona_free(c);

	/* a stalled answer ends with the overall deadline */
	c = tu_daytona_client((dtn_daytona_opts){.timeout_ms = 300});
	tu_server_fault(&tu_srv,
			"{\"server\":\"api\",\"path\":\"^/api/volumes\",\"action\":\"stall\","
			"\"times\":9}");
	assert_int_equal(dtn__api_request(c, "GET", "/volumes", NULL, NULL, &err), DTN_ETIMEOUT);
	assert_non_null(strstr(err.message, "time limit"));
	assert_int_equal(dtn__api_sleep(c, 1000, &err), DTN_ETIMEOUT);
	dtn_daytona_set_timeout(c, 0);
	assert_int_equal(dtn__api_sleep(c, 10, &err), 0);
	dtn_daytona_free(c);
}

static void test_snapshots_api__helpers(void **state)
{
	char *p;

	(void)state;
	assert_true(dtn__is_uuid("f63708ba-fd7e-4311-8d86-64b4cc2d59cc"));
	assert_false(dtn__is_uuid("f63708ba-fd7e-4311-8d86-64b4cc2d59c"));
	assert_false(dtn__is_uuid("wire-snap"));
	assert_false(dtn__is_uuid("f63708ba-fd7e-4311-8d86-64b4cc2d59ccx"));
	p = dtn__api_path("/snapshots/%s/x/%s", "a b/c", "d");
	assert_string_equal(p, "/snapshots/a%20b%2Fc/x/d");
	dtn__free(p);
}

#define T(name) cmocka_unit_test_setup(name, tu_daytona_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_snapshots_api__headers_as_the_sdks_send),
		T(test_snapshots_api__jwt_sends_the_organization),
		T(test_snapshots_api__rejected_key_is_an_auth_error_without_the_key),
		T(test_snapshots_api__not_found_names_the_object),
		T(test_snapshots_api__status_codes),
		T(test_snapshots_api__retries_then_rate_limit),
		T(test_snapshots_api__dropped_connection_retried),
		T(test_snapshots_api__server_down_names_the_url),
		T(test_snapshots_api__html_answer_hints_at_the_url),
		T(test_snapshots_api__cancel_and_deadline),
		T(test_snapshots_api__helpers),
	};

	return cmocka_run_group_tests(tests, tu_daytona_group_setup, tu_daytona_group_teardown);
}
