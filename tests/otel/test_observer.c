/*
 * test_observer.c - CLIENT spans of the HTTP transport: one per attempt with the stable HTTP
 * semantic conventions, the traceparent the server receives, resend counts, error.type,
 * http.client.request.duration and dtn.http.retries, no credentials or query strings in any
 * attribute, and the process's TRACEPARENT handed on while telemetry is off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "otel_http.h"
#include "otlp_check.h"
#include "otlp_receiver.h"
#include "testutil.h"

static char trace_path[PATH_MAX];
static char *dir;

static int setup(void **state)
{
	(void)state;
	tu_otel_clear_env();
	dir = strdup(tu_mkdtemp());
	snprintf(trace_path, sizeof(trace_path), "%s/trace.jsonl", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	return 0;
}

static dtn_otel *start(const char *traceparent, int enabled)
{
	dtn_otel *o;
	dtn_error err;

	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .enabled = enabled,
		.trace_file = enabled > 0 ? trace_path : NULL, .endpoint = "",
		.traceparent = traceparent}, &err), 0);
	dtn_otel_set_default(o);
	return o;
}

static char *finish(dtn_otel *o)
{
	char *text, why[1024];
	size_t len;
	dtn_error err;

	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(dtn__read_file(&text, &len, trace_path, "trace", 64 << 20, &err), 0);
	if (tu_otlp_check_lines(text, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	return text;
}

static int get(const char *url, int attempts, long *status)
{
	dtn__http *http;
	dtn__http_response resp = DTN__HTTP_RESPONSE_INIT;
	dtn_error err;
	int rc;

	assert_int_equal(dtn__http_new(&http, &(dtn__http_opts){.version = 1,
		.max_attempts = attempts, .backoff_ms = 10, .backoff_max_ms = 20,
		.observer = dtn__otel_http_observer()}), 0);
	rc = dtn__http_do(http, &(dtn__http_request){.method = "GET", .url = url}, &resp, &err);
	*status = resp.status;
	dtn__http_response_clear(&resp);
	dtn__http_free(http);
	return rc;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void test_otel_observer__client_span_per_attempt(void **state)
{
	tu_otlp *r = tu_otlp_start("503");
	dtn_otel *o = start(NULL, 1);
	dtn_span *op = dtn_span_start_op("SnapshotService.get", NULL);
	char url[256], tp[64], *text;
	long status;
	json_t *spans, *metrics, *first, *second = NULL, *parent, *m, *p;
	size_t i;

	(void)state;
	snprintf(url, sizeof(url), "%s/api/snapshots/abc?token=secret123", tu_otlp_url(r));
	assert_int_equal(get(url, 2, &status), 0);
	assert_int_equal(status, 200);
	dtn_span_end_op(op, 0, NULL);
	text = finish(o);
	assert_null(strstr(text, "secret123"));
	spans = tu_otlp_collect(text, "spans");
	metrics = tu_otlp_collect(text, "metrics");
	assert_int_equal(tu_otlp_count_named(spans, "GET"), 2);
	parent = tu_otlp_find(spans, "SnapshotService.get");
	first = tu_otlp_find(spans, "GET");
	json_array_foreach(spans, i, second)
		if (second != first && !strcmp(str(second, "name"), "GET"))
			break;
	/* both attempts are CLIENT children of the operation */
	assert_int_equal(json_integer_value(json_object_get(first, "kind")), 3);
	assert_string_equal(str(first, "parentSpanId"), str(parent, "spanId"));
	assert_string_equal(str(second, "parentSpanId"), str(parent, "spanId"));
	assert_string_equal(tu_otlp_attr_str(first, "http.request.method"), "GET");
	assert_string_equal(tu_otlp_attr_str(first, "server.address"), "127.0.0.1");
	assert_true(tu_otlp_attr_int(first, "server.port") > 0);
	snprintf(url, sizeof(url), "%s/api/snapshots/abc", tu_otlp_url(r));
	assert_string_equal(tu_otlp_attr_str(first, "url.full"), url);
	assert_int_equal(tu_otlp_attr_int(first, "http.response.status_code"), 503);
	assert_string_equal(tu_otlp_attr_str(first, "error.type"), "503");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(first, "status"),
							    "code")), 2);
	assert_null(tu_otlp_attr(first, "http.request.resend_count"));
	assert_int_equal(tu_otlp_attr_int(second, "http.request.resend_count"), 1);
	assert_int_equal(tu_otlp_attr_int(second, "http.response.status_code"), 200);
	assert_null(tu_otlp_attr(second, "error.type"));
	assert_null(json_object_get(second, "status"));
	/* the server saw each attempt's own span as its parent */
	for (size_t k = 0; k < 2; k++) {
		json_t *sp = k ? second : first;
		snprintf(tp, sizeof(tp), "00-%s-%s-01", str(sp, "traceId"), str(sp, "spanId"));
		assert_string_equal(tu_otlp_header(tu_otlp_get(r, k), "traceparent"), tp);
	}
	/* no deprecated names */
	assert_null(tu_otlp_attr(first, "http.method"));
	assert_null(tu_otlp_attr(first, "http.status_code"));
	m = tu_otlp_find(metrics, "http.client.request.duration");
	assert_non_null(m);
	assert_string_equal(str(m, "unit"), "s");
	assert_int_equal(json_array_size(json_object_get(json_object_get(m, "histogram"),
							 "dataPoints")), 2);
	m = tu_otlp_find(metrics, "dtn.http.retries");
	p = json_array_get(json_object_get(json_object_get(m, "sum"), "dataPoints"), 0);
	assert_string_equal(json_string_value(json_object_get(p, "asInt")), "1");
	assert_string_equal(tu_otlp_attr_str(p, "error.type"), "503");
	json_decref(spans);
	json_decref(metrics);
	dtn__free(text);
	tu_otlp_stop(r);
}

static void test_otel_observer__connection_errors(void **state)
{
	dtn_otel *o = start(NULL, 1);
	char *text;
	long status;
	json_t *spans, *sp;

	(void)state;
	/* port 9 (discard) on loopback: refused */
	assert_int_equal(get("http://127.0.0.1:9/x", 1, &status), DTN_ECONNECT);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	sp = tu_otlp_find(spans, "GET");
	assert_non_null(sp);
	assert_null(tu_otlp_attr(sp, "http.response.status_code"));
	assert_string_equal(tu_otlp_attr_str(sp, "error.type"), "connection_refused");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sp, "status"),
							    "code")), 2);
	json_decref(spans);
	dtn__free(text);
}

/* Credentials and presigned query strings never reach an attribute. */
static void test_otel_observer__redacts_urls(void **state)
{
	const dtn__http_observer *obs = dtn__otel_http_observer();
	dtn_otel *o = start(NULL, 1);
	dtn__http_attempt at = {
		.method = "PUT", .host = "bucket.s3.example", .port = 443,
		.url = "https://AKIDEXAMPLE:wJalrXUtnFEMI@bucket.s3.example/ctx/abc.tar"
		       "?X-Amz-Signature=deadbeef&X-Amz-Credential=AKID",
		.request_bytes = -1, .response_bytes = -1,
	};
	dtn__strv headers = {0};
	void *token = NULL;
	char *text;
	json_t *spans, *sp;

	(void)state;
	obs->begin(&token, &at, &headers, obs->payload);
	assert_non_null(token);
	assert_int_equal(headers.len, 1);
	assert_memory_equal(headers.items[0], "traceparent: 00-", 16);
	at.status = 200;
	obs->end(token, &at, obs->payload);
	dtn__strv_free(&headers);
	/* an unknown method is _OTHER, named HTTP */
	at.method = "PURGE";
	obs->begin(&token, &at, &headers, obs->payload);
	obs->end(token, &at, obs->payload);
	dtn__strv_free(&headers);
	text = finish(o);
	assert_null(strstr(text, "wJalrXUtnFEMI"));
	assert_null(strstr(text, "deadbeef"));
	assert_null(strstr(text, "AKID"));
	spans = tu_otlp_collect(text, "spans");
	sp = tu_otlp_find(spans, "PUT");
	assert_string_equal(tu_otlp_attr_str(sp, "url.full"),
			    "https://REDACTED:REDACTED@bucket.s3.example/ctx/abc.tar");
	assert_int_equal(tu_otlp_attr_int(sp, "server.port"), 443);
	sp = tu_otlp_find(spans, "HTTP");
	assert_string_equal(tu_otlp_attr_str(sp, "http.request.method"), "_OTHER");
	assert_string_equal(tu_otlp_attr_str(sp, "http.request.method_original"), "PURGE");
	json_decref(spans);
	dtn__free(text);
}

/* Telemetry off: no span, but the trace the process belongs to goes on to the server. */
static void test_otel_observer__off_forwards_traceparent(void **state)
{
	static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	tu_otlp *r = tu_otlp_start("");
	dtn_otel *o = start(tp, -1);
	long status;

	(void)state;
	assert_false(dtn_otel_is_enabled(o));
	assert_int_equal(get(tu_otlp_url(r), 1, &status), 0);
	assert_string_equal(tu_otlp_header(tu_otlp_get(r, 0), "traceparent"), tp);
	assert_int_equal(dtn_otel_shutdown(o, 1000), 0);
	/* and nothing at all without a provider */
	assert_int_equal(get(tu_otlp_url(r), 1, &status), 0);
	assert_null(tu_otlp_header(tu_otlp_get(r, 1), "traceparent"));
	tu_otlp_stop(r);
}

/* OTEL_PROPAGATORS=none: spans are made, but no traceparent reaches the server and the
 * process's TRACEPARENT is not continued. */
static void test_otel_observer__propagators_none(void **state)
{
	static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	tu_otlp *r = tu_otlp_start("");
	dtn_otel *o;
	dtn_span *op;
	char buf[64], *text;
	long status;
	json_t *spans, *sp;

	(void)state;
	setenv("OTEL_PROPAGATORS", "none", 1);
	o = start(tp, 1);
	op = dtn_span_start_op("SnapshotService.get", NULL);
	assert_int_equal(get(tu_otlp_url(r), 1, &status), 0);
	assert_null(tu_otlp_header(tu_otlp_get(r, 0), "traceparent"));
	assert_int_equal(dtn_span_traceparent(op, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	dtn_span_end_op(op, 0, NULL);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	sp = tu_otlp_find(spans, "SnapshotService.get");
	assert_null(json_object_get(sp, "parentSpanId"));
	assert_string_not_equal(str(sp, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_non_null(tu_otlp_find(spans, "GET"));
	json_decref(spans);
	dtn__free(text);
	tu_otlp_stop(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_otel_observer__client_span_per_attempt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_observer__connection_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_observer__redacts_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_observer__off_forwards_traceparent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_observer__propagators_none, setup,
						teardown),
	};

	return cmocka_run_group_tests_name("otel/observer", tests, NULL, NULL);
}
