/*
 * test_span.c - spans and metrics through the file exporter: the OTLP/JSON rules, parentage by
 * the current span, explicit parents and remote parents, attribute types and limits, events,
 * status and errors, operations and their metrics, sampling, and NULL-safety when off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtn_otel.h"
#include "internal.h"
#include "otlp_check.h"
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

static dtn_otel *start(const char *traceparent)
{
	dtn_otel *o;
	dtn_error err;

	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .trace_file = trace_path,
							  .traceparent = traceparent},
				      &err), 0);
	assert_true(dtn_otel_is_enabled(o));
	dtn_otel_set_default(o);
	return o;
}

/* Shuts the provider down and returns the file's text, every line checked. */
static char *finish(dtn_otel *o)
{
	char *text, why[1024];
	size_t len;
	dtn_error err;

	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_null(dtn_otel_default());
	assert_int_equal(dtn__read_file(&text, &len, trace_path, "trace", 64 << 20, &err), 0);
	if (tu_otlp_check_lines(text, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	return text;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void test_otel_span__tree_by_current_span(void **state)
{
	dtn_otel *o = start(NULL);
	dtn_span *root, *child, *leaf;
	char *text;
	json_t *spans, *r, *c, *l;

	(void)state;
	root = dtn_span_start("dtn-build build", DTN_SPAN_INTERNAL, NULL);
	assert_ptr_equal(dtn_span_current(), root);
	child = dtn_span_start("SnapshotService.create", DTN_SPAN_INTERNAL, NULL);
	leaf = dtn_span_start("POST", DTN_SPAN_CLIENT, NULL);
	assert_ptr_equal(dtn_span_current(), leaf);
	dtn_span_end(leaf);
	assert_ptr_equal(dtn_span_current(), child);
	dtn_span_end(child);
	assert_ptr_equal(dtn_span_current(), root);
	dtn_span_end(root);
	assert_null(dtn_span_current());
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	assert_int_equal(json_array_size(spans), 3);
	r = tu_otlp_find(spans, "dtn-build build");
	c = tu_otlp_find(spans, "SnapshotService.create");
	l = tu_otlp_find(spans, "POST");
	assert_non_null(r);
	assert_null(json_object_get(r, "parentSpanId"));
	assert_string_equal(str(c, "parentSpanId"), str(r, "spanId"));
	assert_string_equal(str(l, "parentSpanId"), str(c, "spanId"));
	assert_string_equal(str(l, "traceId"), str(r, "traceId"));
	assert_int_equal(json_integer_value(json_object_get(l, "kind")), 3);
	assert_int_equal(json_integer_value(json_object_get(r, "kind")), 1);
	/* flags: sampled, and "parent is local" known */
	assert_int_equal(json_integer_value(json_object_get(r, "flags")), 0x101);
	assert_string_equal(str(r, "_service"), "dtn-build");
	json_decref(spans);
	dtn__free(text);
}

static void test_otel_span__attributes_events_status(void **state)
{
	dtn_otel *o = start(NULL);
	dtn_span *s;
	char *text;
	json_t *spans, *sp, *v, *ev;

	(void)state;
	s = dtn_span_start("Kinds.all", DTN_SPAN_PRODUCER, NULL);
	dtn_span_set_str(s, "s", "text");
	dtn_span_set_int(s, "i", 9007199254740993LL); /* beyond a double's precision */
	dtn_span_set_double(s, "d", 0.5);
	dtn_span_set_bool(s, "b", true);
	dtn_span_set_strv(s, "v", DTN_STRV("x", "y"));
	dtn_span_set_str(s, "s", "last wins");
	dtn_span_set_str(s, "", "empty keys are dropped");
	dtn_span_set_str(s, "null", NULL);
	dtn_span_add_event(s, "daytona.snapshot.state_change", (dtn_attr[]){
		DTN_ATTR_STR("daytona.snapshot.state", "building"),
		DTN_ATTR_STR("daytona.snapshot.previous_state", "pending"),
	}, 2);
	dtn_span_set_status(s, DTN_SPAN_ERROR, "it broke");
	dtn_span_end(s);
	dtn_span_end(s); /* twice: ignored */
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	assert_int_equal(json_array_size(spans), 1);
	sp = tu_otlp_find(spans, "Kinds.all");
	assert_int_equal(json_integer_value(json_object_get(sp, "kind")), 4);
	assert_string_equal(tu_otlp_attr_str(sp, "s"), "last wins");
	assert_string_equal(str(tu_otlp_attr(sp, "i"), "intValue"), "9007199254740993");
	assert_true(json_real_value(json_object_get(tu_otlp_attr(sp, "d"), "doubleValue")) == 0.5);
	assert_true(json_is_true(json_object_get(tu_otlp_attr(sp, "b"), "boolValue")));
	v = json_object_get(json_object_get(tu_otlp_attr(sp, "v"), "arrayValue"), "values");
	assert_int_equal(json_array_size(v), 2);
	assert_string_equal(str(json_array_get(v, 1), "stringValue"), "y");
	assert_null(tu_otlp_attr(sp, "null"));
	assert_int_equal(json_array_size(json_object_get(sp, "attributes")), 5);
	ev = json_array_get(json_object_get(sp, "events"), 0);
	assert_string_equal(str(ev, "name"), "daytona.snapshot.state_change");
	assert_string_equal(tu_otlp_attr_str(ev, "daytona.snapshot.previous_state"), "pending");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sp, "status"), "code")),
			 2);
	assert_string_equal(str(json_object_get(sp, "status"), "message"), "it broke");
	json_decref(spans);
	dtn__free(text);
}

static void test_otel_span__attribute_limit_counts_drops(void **state)
{
	dtn_otel *o;
	dtn_span *s;
	char *text;
	json_t *spans, *sp;

	(void)state;
	setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2", 1);
	o = start(NULL);
	s = dtn_span_start("Limited.span", DTN_SPAN_INTERNAL, NULL);
	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		dtn_span_set_int(s, key, i);
	}
	dtn_span_end(s);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	sp = json_array_get(spans, 0);
	assert_int_equal(json_array_size(json_object_get(sp, "attributes")), 2);
	assert_int_equal(json_integer_value(json_object_get(sp, "droppedAttributesCount")), 3);
	json_decref(spans);
	dtn__free(text);
}

/* A span's parent comes from TRACEPARENT: same trace, the remote span as parent, flags 0x301. */
static void test_otel_span__remote_parent(void **state)
{
	dtn_otel *o = start("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	dtn_span *s = dtn_span_start("dtn-build build", DTN_SPAN_INTERNAL, NULL);
	char tp[64], *text;
	json_t *spans, *sp;

	(void)state;
	assert_int_equal(dtn_span_traceparent(s, tp, sizeof(tp)), 55);
	assert_memory_equal(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
	assert_string_not_equal(tp + 36, "00f067aa0ba902b7-01");
	assert_string_equal(tp + 52, "-01");
	dtn_span_end(s);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	sp = json_array_get(spans, 0);
	assert_string_equal(str(sp, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(str(sp, "parentSpanId"), "00f067aa0ba902b7");
	assert_int_equal(json_integer_value(json_object_get(sp, "flags")), 0x301);
	json_decref(spans);
	dtn__free(text);
}

/* parentbased: a remote parent that was not sampled makes nothing recorded, yet the context
 * goes on with the flag 00. */
static void test_otel_span__unsampled_parent_records_nothing(void **state)
{
	dtn_otel *o = start("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
	dtn_span *s = dtn_span_start("dtn-build build", DTN_SPAN_INTERNAL, NULL);
	dtn_span *c = dtn_span_start("Child.op", DTN_SPAN_INTERNAL, NULL);
	char tp[64], *text;
	json_t *spans;

	(void)state;
	assert_non_null(s);
	assert_false(dtn_span_is_recording(s));
	dtn_span_set_str(s, "ignored", "x");
	dtn_span_traceparent(c, tp, sizeof(tp));
	assert_memory_equal(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
	assert_string_equal(tp + 52, "-00");
	dtn_span_end(c);
	dtn_span_end(s);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	assert_int_equal(json_array_size(spans), 0);
	json_decref(spans);
	dtn__free(text);
}

static void test_otel_span__always_off_sampler(void **state)
{
	dtn_otel *o;
	dtn_span *s, *op;
	char *text;
	json_t *spans, *metrics, *m, *p;

	(void)state;
	setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
	o = start(NULL);
	s = dtn_span_start("dtn-build build", DTN_SPAN_INTERNAL, NULL);
	assert_false(dtn_span_is_recording(s));
	op = dtn_span_start_op("SnapshotService.get", NULL);
	assert_false(dtn_span_is_recording(op));
	dtn_span_end_op(op, DTN_ENOTFOUND, NULL);
	dtn_span_end(s);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	assert_int_equal(json_array_size(spans), 0);
	/* metrics do not depend on trace sampling: the operation is still measured */
	metrics = tu_otlp_collect(text, "metrics");
	m = tu_otlp_find(metrics, "snapshot_service_get_duration");
	assert_non_null(m);
	p = json_array_get(json_object_get(json_object_get(m, "histogram"), "dataPoints"), 0);
	assert_string_equal(tu_otlp_attr_str(p, "component"), "SnapshotService");
	assert_string_equal(tu_otlp_attr_str(p, "method"), "get");
	assert_string_equal(tu_otlp_attr_str(p, "status"), "error");
	assert_non_null(tu_otlp_find(metrics, "daytona.sandbox.memory.usage"));
	json_decref(metrics);
	json_decref(spans);
	dtn__free(text);
}

struct worker {
	dtn_span *parent;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	dtn_span *s;

	/* another thread has no current span: the parent is given */
	assert_null(dtn_span_current());
	s = dtn_span_start("Worker.run", DTN_SPAN_INTERNAL, w->parent);
	dtn_span_set_int(s, "n", 1);
	dtn_span_end(s);
	return NULL;
}

static void test_otel_span__explicit_parent_on_threads(void **state)
{
	dtn_otel *o = start(NULL);
	dtn_span *root = dtn_span_start("Main.run", DTN_SPAN_INTERNAL, NULL);
	struct worker w = {root};
	pthread_t t[4];
	char *text;
	json_t *spans, *r, *sp;
	size_t i;

	(void)state;
	for (int k = 0; k < 4; k++)
		pthread_create(&t[k], NULL, work, &w);
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	dtn_span_end(root);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	r = tu_otlp_find(spans, "Main.run");
	assert_int_equal(tu_otlp_count_named(spans, "Worker.run"), 4);
	json_array_foreach(spans, i, sp)
		if (!strcmp(str(sp, "name"), "Worker.run"))
			assert_string_equal(str(sp, "parentSpanId"), str(r, "spanId"));
	json_decref(spans);
	dtn__free(text);
}

/* Spans that end out of order leave the current span right. */
static void test_otel_span__out_of_order_ends(void **state)
{
	dtn_otel *o = start(NULL);
	dtn_span *a = dtn_span_start("A.a", DTN_SPAN_INTERNAL, NULL);
	dtn_span *b = dtn_span_start("B.b", DTN_SPAN_INTERNAL, NULL);
	dtn_span *c, *prev;
	char *text;

	(void)state;
	dtn_span_end(a);
	assert_ptr_equal(dtn_span_current(), b);
	dtn_span_end(b);
	assert_null(dtn_span_current());
	c = dtn_span_start_ex("C.c", DTN_SPAN_INTERNAL,
			      &(dtn_span_opts){.version = 1, .not_current = true});
	assert_null(dtn_span_current());
	prev = dtn_span_set_current(c);
	assert_null(prev);
	assert_ptr_equal(dtn_span_current(), c);
	dtn_span_set_current(prev);
	dtn_span_end(c);
	text = finish(o);
	dtn__free(text);
}

static void test_otel_span__operation_metrics_and_usage(void **state)
{
	dtn_otel *o = start(NULL);
	dtn_span *ok = dtn_span_start_op("SnapshotService.create", NULL);
	dtn_span *bad;
	dtn_error err;
	char *text;
	json_t *spans, *metrics, *sp, *m, *ev, *points;
	size_t i;
	bool error_point = false;

	(void)state;
	dtn_span_end_op(ok, 0, NULL);
	bad = dtn_span_start_op("SnapshotService.create", NULL);
	dtn_error_clear(&err);
	dtn__error_set(&err, DTN_ETIMEOUT, "the build did not finish in 60 s");
	dtn_span_end_op(bad, DTN_ETIMEOUT, &err);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	metrics = tu_otlp_collect(text, "metrics");
	assert_int_equal(json_array_size(spans), 2);
	sp = json_array_get(spans, 0);
	assert_string_equal(tu_otlp_attr_str(sp, "component"), "SnapshotService");
	assert_string_equal(tu_otlp_attr_str(sp, "method"), "create");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sp, "status"), "code")),
			 1);
	sp = json_array_get(spans, 1);
	assert_string_equal(tu_otlp_attr_str(sp, "error.type"), "timeout");
	assert_string_equal(str(json_object_get(sp, "status"), "message"),
			    "the build did not finish in 60 s");
	ev = json_array_get(json_object_get(sp, "events"), 0);
	assert_string_equal(str(ev, "name"), "exception");
	assert_string_equal(tu_otlp_attr_str(ev, "exception.type"), "DTN_ETIMEOUT");
	/* the SDKs' histogram, one point per status */
	m = tu_otlp_find(metrics, "snapshot_service_create_duration");
	assert_non_null(m);
	assert_string_equal(str(m, "unit"), "ms");
	points = json_object_get(json_object_get(m, "histogram"), "dataPoints");
	assert_int_equal(json_array_size(points), 2);
	json_array_foreach(points, i, sp)
		if (!strcmp(tu_otlp_attr_str(sp, "status"), "error"))
			error_point = true;
	assert_true(error_point);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "histogram"),
							    "aggregationTemporality")), 2);
	/* the environment's usage under Daytona's sandbox names, by operation */
	m = tu_otlp_find(metrics, "daytona.sandbox.memory.usage");
	assert_non_null(m);
	assert_string_equal(str(m, "unit"), "bytes");
	sp = json_array_get(json_object_get(json_object_get(m, "gauge"), "dataPoints"), 0);
	assert_string_equal(tu_otlp_attr_str(sp, "dtn.operation"), "SnapshotService.create");
	assert_non_null(tu_otlp_find(metrics, "daytona.sandbox.cpu.utilization"));
	assert_non_null(tu_otlp_find(metrics, "daytona.sandbox.filesystem.total"));
	assert_non_null(tu_otlp_find(metrics, "daytona.sandbox.memory.limit"));
	json_decref(spans);
	json_decref(metrics);
	dtn__free(text);
}

/* An operation that names its failure itself (error.type set before the end) still gets the
 * exception event and the ERROR status with the message; its error.type is kept. */
static void test_otel_span__operation_error_type_of_its_own(void **state)
{
	dtn_otel *o = start(NULL);
	dtn_span *op = dtn_span_start_op("SnapshotService.wait", NULL);
	dtn_error err;
	char *text;
	json_t *spans, *sp, *events, *ev;

	(void)state;
	dtn_span_set_str(op, "error.type", "daytona.snapshot.build_failed");
	dtn_error_clear(&err);
	dtn__error_set(&err, DTN_EBUILD, "snapshot \"s\" failed to build: exit code 1");
	dtn_span_end_op(op, DTN_EBUILD, &err);
	text = finish(o);
	spans = tu_otlp_collect(text, "spans");
	sp = tu_otlp_find(spans, "SnapshotService.wait");
	assert_non_null(sp);
	assert_string_equal(tu_otlp_attr_str(sp, "error.type"), "daytona.snapshot.build_failed");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sp, "status"), "code")),
			 2);
	assert_string_equal(str(json_object_get(sp, "status"), "message"),
			    "snapshot \"s\" failed to build: exit code 1");
	events = json_object_get(sp, "events");
	assert_int_equal(json_array_size(events), 1);
	ev = json_array_get(events, 0);
	assert_string_equal(str(ev, "name"), "exception");
	assert_string_equal(tu_otlp_attr_str(ev, "exception.type"), "DTN_EBUILD");
	assert_string_equal(tu_otlp_attr_str(ev, "exception.message"),
			    "snapshot \"s\" failed to build: exit code 1");
	json_decref(spans);
	dtn__free(text);
}

static void test_otel_span__metric_kinds(void **state)
{
	dtn_otel *o = start(NULL);
	static const double bounds[] = {1, 10};
	char *text;
	json_t *metrics, *m, *p, *b;

	(void)state;
	dtn_counter_add("dtn.builds", "{build}", 1, (dtn_attr[]){DTN_ATTR_STR("dtn.outcome",
									     "success")}, 1);
	dtn_counter_add("dtn.builds", "{build}", 2, (dtn_attr[]){DTN_ATTR_STR("dtn.outcome",
									     "success")}, 1);
	dtn_counter_add("dtn.builds", "{build}", -5, NULL, 0); /* monotonic: ignored */
	dtn_metric_record(&(dtn_metric_def){.name = "h", .unit = "1",
					    .kind = DTN_METRIC_HISTOGRAM, .bounds = bounds,
					    .nbounds = 2}, 10, NULL, 0);
	dtn_metric_record(&(dtn_metric_def){.name = "h", .kind = DTN_METRIC_HISTOGRAM}, 11, NULL, 0);
	dtn_metric_record(&(dtn_metric_def){.name = "h", .kind = DTN_METRIC_HISTOGRAM}, -1, NULL, 0);
	dtn_gauge_set("g", "percent", 42.5, NULL, 0);
	dtn_gauge_set("g", "percent", 12.5, NULL, 0);
	text = finish(o);
	metrics = tu_otlp_collect(text, "metrics");
	m = tu_otlp_find(metrics, "dtn.builds");
	assert_true(json_is_true(json_object_get(json_object_get(m, "sum"), "isMonotonic")));
	p = json_array_get(json_object_get(json_object_get(m, "sum"), "dataPoints"), 0);
	assert_string_equal(str(p, "asInt"), "3");
	assert_non_null(str(p, "startTimeUnixNano"));
	m = tu_otlp_find(metrics, "h");
	p = json_array_get(json_object_get(json_object_get(m, "histogram"), "dataPoints"), 0);
	assert_string_equal(str(p, "count"), "3");
	b = json_object_get(p, "bucketCounts");
	/* upper bounds are inclusive: 10 falls in (1, 10] */
	assert_string_equal(json_string_value(json_array_get(b, 0)), "1");
	assert_string_equal(json_string_value(json_array_get(b, 1)), "1");
	assert_string_equal(json_string_value(json_array_get(b, 2)), "1");
	assert_null(json_object_get(p, "sum")); /* a negative value was recorded */
	assert_true(json_number_value(json_object_get(p, "min")) == -1);
	m = tu_otlp_find(metrics, "g");
	p = json_array_get(json_object_get(json_object_get(m, "gauge"), "dataPoints"), 0);
	assert_true(json_number_value(json_object_get(p, "asDouble")) == 12.5);
	json_decref(metrics);
	dtn__free(text);
}

/* Off: every call is safe with NULL, nothing is created. */
static void test_otel_span__null_safe_when_off(void **state)
{
	dtn_otel *o;
	dtn_error err;
	dtn_otel_stats st;
	char buf[64];

	(void)state;
	assert_int_equal(dtn_otel_new(&o, NULL, &err), 0);
	assert_false(dtn_otel_is_enabled(o));
	dtn_otel_set_default(o);
	assert_null(dtn_span_start("A.b", DTN_SPAN_INTERNAL, NULL));
	assert_null(dtn_span_start_op("A.b", NULL));
	dtn_span_set_str(NULL, "k", "v");
	dtn_span_set_int(NULL, "k", 1);
	dtn_span_set_double(NULL, "k", 1);
	dtn_span_set_bool(NULL, "k", true);
	dtn_span_set_strv(NULL, "k", DTN_STRV("a"));
	dtn_span_set_attrs(NULL, NULL, 0);
	dtn_span_add_event(NULL, "e", NULL, 0);
	dtn_span_set_status(NULL, DTN_SPAN_ERROR, "x");
	dtn_span_record_error(NULL, DTN_EIO, NULL, "x");
	dtn_span_end_op(NULL, 0, NULL);
	dtn_span_end(NULL);
	assert_false(dtn_span_is_recording(NULL));
	dtn_span_trace_id(NULL, buf);
	assert_string_equal(buf, "");
	dtn_counter_add("c", "1", 1, NULL, 0);
	dtn_histogram_record("h", "s", 1, NULL, 0);
	dtn_gauge_set("g", "1", 1, NULL, 0);
	assert_int_equal(dtn_otel_flush(o, 100), 0);
	dtn_otel_get_stats(o, &st);
	assert_int_equal(st.spans_started, 0);
	assert_int_equal(dtn_otel_shutdown(o, 100), 0);
	assert_int_equal(dtn_otel_shutdown(NULL, 100), 0);
	assert_int_equal(dtn_otel_flush(NULL, 100), 0);
}

static void test_otel_span__bad_trace_file(void **state)
{
	dtn_otel *o;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 1,
		.trace_file = "/nonexistent/dir/t.jsonl"}, &err), DTN_EIO);
	assert_null(o);
	assert_non_null(strstr(err.message, "/nonexistent/dir/t.jsonl"));
	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 2}, &err), DTN_EINVAL);
}

/* Memory running out anywhere loses telemetry, never more: no crash, no leak. */
static void test_otel_span__allocation_failures(void **state)
{
	long n;

	(void)state;
	for (n = 1; n < 400; n++) {
		dtn_otel *o = NULL;
		dtn_error err;
		long calls;

		tu_fail_alloc_after(n);
		if (dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .trace_file = trace_path},
				 &err) == 0) {
			dtn_span *root, *op;
			dtn_otel_set_default(o);
			root = dtn_span_start("Root.run", DTN_SPAN_INTERNAL, NULL);
			dtn_span_set_str(root, "k", "a value long enough to need the arena");
			dtn_span_set_strv(root, "v", DTN_STRV("x", "y", "z"));
			op = dtn_span_start_op("SnapshotService.create", NULL);
			dtn_span_add_event(op, "e", (dtn_attr[]){DTN_ATTR_INT("n", 1)}, 1);
			dtn_span_end_op(op, DTN_EIO, NULL);
			dtn_counter_add("dtn.builds", "{build}", 1,
					(dtn_attr[]){DTN_ATTR_STR("dtn.outcome", "error")}, 1);
			dtn_span_end(root);
			dtn_otel_shutdown(o, 2000);
		} else {
			assert_null(o);
		}
		calls = tu_alloc_calls();
		tu_alloc_reset();
		if (calls < n)
			break; /* a whole run without a failure: every point was covered */
	}
	assert_true(n < 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_otel_span__tree_by_current_span, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__attributes_events_status, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__attribute_limit_counts_drops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__remote_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__unsampled_parent_records_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__always_off_sampler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__explicit_parent_on_threads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__out_of_order_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__operation_metrics_and_usage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__operation_error_type_of_its_own,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__metric_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__null_safe_when_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__bad_trace_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otel_span__allocation_failures, setup, teardown),
	};

	return cmocka_run_group_tests_name("otel/span", tests, NULL, NULL);
}
