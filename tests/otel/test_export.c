/*
 * test_export.c - OTLP/HTTP export against a loopback receiver: the request (path, headers,
 * gzip, valid bodies), retries of 503 and 429 honouring Retry-After, dropped connections, no
 * retry of other errors, partial success, a receiver that never answers (shutdown keeps its
 * budget), spans dropped when the queue is full, and the batch settings at their edges (no
 * delay, no time limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtn_otel.h"
#include "otlp_check.h"
#include "otlp_receiver.h"

static char logged[8192];

static void log_line(const char *line, void *payload)
{
	(void)payload;
	strncat(logged, line, sizeof(logged) - strlen(logged) - 2);
	strcat(logged, "\n");
}

static int setup(void **state)
{
	(void)state;
	tu_otel_clear_env();
	logged[0] = '\0';
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static dtn_otel *start(tu_otlp *r)
{
	dtn_otel *o;
	dtn_error err;

	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tu_otlp_url(r), 1);
	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .log = log_line}, &err),
			 0);
	assert_true(dtn_otel_is_enabled(o));
	dtn_otel_set_default(o);
	return o;
}

static void one_span(const char *name)
{
	dtn_span *s = dtn_span_start(name, DTN_SPAN_INTERNAL, NULL);

	dtn_span_set_str(s, "component", "Test");
	dtn_span_end(s);
}

static void assert_valid(const tu_otlp_request *q, const char *signal)
{
	char why[1024];

	if (tu_otlp_check(q->body, signal, why, sizeof(why)) < 0)
		fail_msg("%s body: %s", signal, why);
}

/* The traces requests among the received ones. */
static size_t traces(tu_otlp *r, const tu_otlp_request **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < tu_otlp_count(r) && n < max; i++)
		if (!strcmp(tu_otlp_get(r, i)->path, "/v1/traces"))
			out[n++] = tu_otlp_get(r, i);
	return n;
}

static void test_otel_export__request_form(void **state)
{
	tu_otlp *r = tu_otlp_start("");
	const tu_otlp_request *q[4];
	dtn_otel *o;
	json_t *spans;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic abc+/==,x-team=build%20infra", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
	o = start(r);
	one_span("Export.form");
	dtn_counter_add("dtn.builds", "{build}", 1, NULL, 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(traces(r, q, 4), 1);
	assert_string_equal(q[0]->method, "POST");
	assert_true(q[0]->gzip);
	assert_string_equal(tu_otlp_header(q[0], "Content-Type"), "application/json");
	assert_string_equal(tu_otlp_header(q[0], "Authorization"), "Basic abc+/==");
	assert_string_equal(tu_otlp_header(q[0], "x-team"), "build infra");
	assert_non_null(strstr(tu_otlp_header(q[0], "User-Agent"), "OTel-OTLP-Exporter-C/"));
	assert_valid(q[0], "traces");
	spans = tu_otlp_collect(q[0]->body, "spans");
	assert_non_null(tu_otlp_find(spans, "Export.form"));
	json_decref(spans);
	/* and the metrics to /v1/metrics */
	assert_int_equal(tu_otlp_count(r), 2);
	assert_string_equal(tu_otlp_get(r, 1)->path, "/v1/metrics");
	assert_valid(tu_otlp_get(r, 1), "metrics");
	/* header values are never logged */
	assert_null(strstr(logged, "abc+/=="));
	tu_otlp_stop(r);
}

static void test_otel_export__per_signal_url_as_is(void **state)
{
	tu_otlp *r = tu_otlp_start("");
	char url[128];
	dtn_otel *o;

	(void)state;
	snprintf(url, sizeof(url), "%s/custom/traces", tu_otlp_url(r));
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", tu_otlp_url(r), 1);
	o = start(r);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/unused", 1);
	one_span("Export.paths");
	dtn_gauge_set("g", "1", 1, NULL, 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(tu_otlp_count(r), 2);
	assert_string_equal(tu_otlp_get(r, 0)->path, "/custom/traces");
	assert_string_equal(tu_otlp_get(r, 1)->path, "/");
	tu_otlp_stop(r);
}

static void test_otel_export__retries_honour_retry_after(void **state)
{
	tu_otlp *r = tu_otlp_start("503:1,429:1");
	const tu_otlp_request *q[4];
	dtn_otel_stats st;
	dtn_otel *o;

	(void)state;
	o = start(r);
	one_span("Export.retried");
	assert_int_equal(dtn_otel_flush(o, 10000), 0);
	dtn_otel_get_stats(o, &st);
	assert_int_equal(st.export_retries, 2);
	assert_int_equal(st.spans_exported, 1);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(traces(r, q, 4), 3);
	assert_int_equal(q[0]->answered, 503);
	assert_int_equal(q[1]->answered, 429);
	assert_int_equal(q[2]->answered, 200);
	/* Retry-After: 1 was waited for, each time */
	assert_true(q[1]->at_ms - q[0]->at_ms >= 950);
	assert_true(q[2]->at_ms - q[1]->at_ms >= 950);
	assert_string_equal(q[0]->body, q[2]->body);
	tu_otlp_stop(r);
}

static void test_otel_export__dropped_connection_is_retried(void **state)
{
	tu_otlp *r = tu_otlp_start("drop");
	const tu_otlp_request *q[4];
	dtn_otel *o;

	(void)state;
	o = start(r);
	one_span("Export.dropped");
	assert_int_equal(dtn_otel_flush(o, 10000), 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(traces(r, q, 4), 2);
	assert_int_equal(q[1]->answered, 200);
	tu_otlp_stop(r);
}

static void test_otel_export__other_errors_are_not_retried(void **state)
{
	tu_otlp *r = tu_otlp_start("400,500");
	const tu_otlp_request *q[4];
	dtn_otel_stats st;
	dtn_otel *o;

	(void)state;
	o = start(r);
	one_span("Export.rejected");
	assert_int_equal(dtn_otel_flush(o, 5000), 0);
	dtn_otel_get_stats(o, &st);
	/* the spans got 400, the metrics (dtn.otlp.dropped) 500: neither is tried again */
	assert_int_equal(st.export_retries, 0);
	assert_int_equal(st.export_failures, 2);
	assert_int_equal(st.spans_dropped, 1);
	assert_int_equal(tu_otlp_count(r), 2);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(traces(r, q, 4), 1);
	assert_non_null(strstr(logged, "HTTP 400"));
	assert_non_null(strstr(logged, "HTTP 500"));
	tu_otlp_stop(r);
}

static void test_otel_export__partial_success_is_reported_not_retried(void **state)
{
	tu_otlp *r = tu_otlp_start("partial");
	const tu_otlp_request *q[4];
	dtn_otel *o;

	(void)state;
	o = start(r);
	one_span("Export.partial");
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(traces(r, q, 4), 1);
	assert_non_null(strstr(logged, "partial success"));
	assert_non_null(strstr(logged, "one span was rejected"));
	tu_otlp_stop(r);
}

/* Data a receiver refuses during the shutdown is reported as refused, not as time running out. */
static void test_otel_export__refused_at_shutdown(void **state)
{
	tu_otlp *r = tu_otlp_start("404");
	dtn_otel *o;

	(void)state;
	o = start(r);
	one_span("Export.refused");
	assert_int_equal(dtn_otel_shutdown(o, 5000), DTN_EHTTP);
	assert_non_null(strstr(logged, "HTTP 404"));
	tu_otlp_stop(r);
}

/* A receiver that never answers: shutdown gives up within its budget. */
static void test_otel_export__hung_receiver_keeps_the_budget(void **state)
{
	tu_otlp *r = tu_otlp_start("hang,hang,hang,hang");
	dtn_otel *o;
	long long t0, spent;

	(void)state;
	o = start(r);
	one_span("Export.hung");
	assert_int_equal(tu_otlp_wait(r, 0, 0), 0);
	t0 = now_ms();
	assert_int_equal(dtn_otel_shutdown(o, 1000), DTN_ETIMEOUT);
	spent = now_ms() - t0;
	assert_true(tu_otlp_count(r) >= 1);
	/* the budget, plus what scheduling may add on a busy machine */
	if (spent > 1000 + 500)
		fail_msg("shutdown took %lld ms with a 1000 ms budget", spent);
	tu_otlp_stop(r);
}

/* The caller never waits: a full queue drops spans and counts them, and the count is exported
 * as dtn.otlp.dropped. */
static void test_otel_export__full_queue_drops_and_counts(void **state)
{
	tu_otlp *r = tu_otlp_start("hang");
	dtn_otel_stats st;
	dtn_otel *o;
	json_t *metrics, *m, *p;
	const tu_otlp_request *q;

	(void)state;
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4", 1);
	setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500", 1);
	o = start(r);
	one_span("Queue.first");
	/* the exporter is now stuck on the hung request */
	assert_int_equal(tu_otlp_wait(r, 1, 5000), 1);
	for (int i = 0; i < 20; i++)
		one_span("Queue.more");
	dtn_otel_get_stats(o, &st);
	assert_int_equal(st.spans_started, 21);
	assert_int_equal(st.spans_dropped, 16);
	assert_int_equal(dtn_otel_flush(o, 15000), 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	/* the last request carries the metrics */
	q = tu_otlp_get(r, tu_otlp_count(r) - 1);
	assert_string_equal(q->path, "/v1/metrics");
	metrics = tu_otlp_collect(q->body, "metrics");
	m = tu_otlp_find(metrics, "dtn.otlp.dropped");
	assert_non_null(m);
	p = json_array_get(json_object_get(json_object_get(m, "sum"), "dataPoints"), 0);
	assert_string_equal(tu_otlp_attr_str(p, "reason"), "queue_full");
	assert_string_equal(tu_otlp_attr_str(p, "signal"), "traces");
	assert_string_equal(json_string_value(json_object_get(p, "asInt")), "16");
	json_decref(metrics);
	tu_otlp_stop(r);
}

/* Without any flush, spans go out after OTEL_BSP_SCHEDULE_DELAY and metrics every
 * OTEL_METRIC_EXPORT_INTERVAL. */
static void test_otel_export__periodic_export(void **state)
{
	tu_otlp *r = tu_otlp_start("");
	bool spans = false, metrics = false;
	dtn_otel *o;

	(void)state;
	setenv("OTEL_BSP_SCHEDULE_DELAY", "100", 1);
	setenv("OTEL_METRIC_EXPORT_INTERVAL", "100", 1);
	o = start(r);
	one_span("Export.periodic");
	dtn_counter_add("dtn.builds", "{build}", 1, NULL, 0);
	assert_int_equal(tu_otlp_wait(r, 2, 10000), 2);
	for (size_t i = 0; i < 2; i++) {
		spans |= !strcmp(tu_otlp_get(r, i)->path, "/v1/traces");
		metrics |= !strcmp(tu_otlp_get(r, i)->path, "/v1/metrics");
	}
	assert_true(spans && metrics);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	tu_otlp_stop(r);
}

static long long cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* OTEL_BSP_SCHEDULE_DELAY=0: each span goes out as soon as it is queued, and an empty queue
 * leaves the exporter asleep instead of spinning (and starving the threads ending spans). */
static void test_otel_export__zero_schedule_delay_exports_at_once_and_sleeps(void **state)
{
	tu_otlp *r = tu_otlp_start("");
	struct timespec pause = {0, 400 * 1000000L};
	long long cpu;
	dtn_otel *o;

	(void)state;
	setenv("OTEL_BSP_SCHEDULE_DELAY", "0", 1);
	o = start(r);
	one_span("Export.first");
	assert_int_equal(tu_otlp_wait(r, 1, 10000), 1);
	assert_string_equal(tu_otlp_get(r, 0)->path, "/v1/traces");
	/* idle now: the process uses next to no CPU while it waits */
	cpu = cpu_ms();
	nanosleep(&pause, NULL);
	cpu = cpu_ms() - cpu;
	if (cpu > 200)
		fail_msg("the idle exporter used %lld ms of CPU in 400 ms", cpu);
	for (int i = 0; i < 200; i++)
		one_span("Export.more");
	assert_int_equal(dtn_otel_flush(o, 10000), 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_null(strstr(logged, "dropped"));
	tu_otlp_stop(r);
}

/* A timeout of 0 means no limit (OpenTelemetry), not an export given up before it starts. */
static void test_otel_export__zero_export_timeouts_mean_no_limit(void **state)
{
	tu_otlp *r = tu_otlp_start("");
	dtn_otel *o;

	(void)state;
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "0", 1);
	setenv("OTEL_METRIC_EXPORT_TIMEOUT", "0", 1);
	o = start(r);
	one_span("Export.untimed");
	dtn_counter_add("dtn.builds", "{build}", 1, NULL, 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(tu_otlp_count(r), 2);
	assert_string_equal(tu_otlp_get(r, 0)->path, "/v1/traces");
	assert_string_equal(tu_otlp_get(r, 1)->path, "/v1/metrics");
	assert_string_equal(logged, "");
	tu_otlp_stop(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_otel_export__request_form, setup),
		cmocka_unit_test_setup(test_otel_export__per_signal_url_as_is, setup),
		cmocka_unit_test_setup(test_otel_export__retries_honour_retry_after, setup),
		cmocka_unit_test_setup(test_otel_export__dropped_connection_is_retried, setup),
		cmocka_unit_test_setup(test_otel_export__other_errors_are_not_retried, setup),
		cmocka_unit_test_setup(test_otel_export__partial_success_is_reported_not_retried,
				       setup),
		cmocka_unit_test_setup(test_otel_export__refused_at_shutdown, setup),
		cmocka_unit_test_setup(test_otel_export__hung_receiver_keeps_the_budget, setup),
		cmocka_unit_test_setup(test_otel_export__full_queue_drops_and_counts, setup),
		cmocka_unit_test_setup(test_otel_export__periodic_export, setup),
		cmocka_unit_test_setup(test_otel_export__zero_schedule_delay_exports_at_once_and_sleeps,
				       setup),
		cmocka_unit_test_setup(test_otel_export__zero_export_timeouts_mean_no_limit, setup),
	};

	return cmocka_run_group_tests_name("otel/export", tests, NULL, NULL);
}
