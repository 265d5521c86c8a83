/*
 * test_config.c - the telemetry configuration: when it is on, endpoint URLs and their path
 * rules, the headers variable, resource attributes, protocol, sampler, batching, the remote
 * parent, and warnings for bad values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otel_internal.h"
#include "otlp_check.h"

static int warnings;
static char last_warning[1024];

static void count_warning(void *payload, const char *fmt, ...)
{
	va_list ap;

	(void)payload;
	va_start(ap, fmt);
	vsnprintf(last_warning, sizeof(last_warning), fmt, ap);
	va_end(ap);
	warnings++;
}

static int setup(void **state)
{
	(void)state;
	tu_otel_clear_env();
	warnings = 0;
	last_warning[0] = '\0';
	return 0;
}

static int load(dtn__otel_config *cfg, const dtn_otel_opts *opts)
{
	dtn_error err;

	return dtn__otel_config_load(cfg, opts, count_warning, NULL, &err);
}

static void assert_url(const char *base, const char *own, const char *want)
{
	char *u = dtn__otel_signal_url(base, own, "v1/traces");

	if (!want) {
		assert_null(u);
		return;
	}
	assert_non_null(u);
	assert_string_equal(u, want);
	dtn__free(u);
}

static void test_otel_config__endpoint_paths(void **state)
{
	(void)state;
	assert_url(NULL, NULL, "http://localhost:4318/v1/traces");
	assert_url("http://collector:4318", NULL, "http://collector:4318/v1/traces");
	assert_url("http://collector:4318/", NULL, "http://collector:4318/v1/traces");
	assert_url("http://collector:4318/mycollector/", NULL,
		   "http://collector:4318/mycollector/v1/traces");
	assert_url("https://otlp-gateway-prod-eu-west-0.grafana.net/otlp", NULL,
		   "https://otlp-gateway-prod-eu-west-0.grafana.net/otlp/v1/traces");
	/* a per-signal URL is used as it is; without a path it gets "/" */
	assert_url("http://ignored:1", "http://c:4318", "http://c:4318/");
	assert_url(NULL, "http://c:4318/custom/path", "http://c:4318/custom/path");
	assert_url(NULL, "https://c?x=1", "https://c/?x=1");
	assert_url("ftp://c", NULL, NULL);
	assert_url(NULL, "c:4318", NULL);
	assert_url("http://", NULL, NULL);
}

static void assert_headers(const char *value, const char *const *want, int want_bad)
{
	dtn__strv v = {0};
	int bad = -1;
	size_t n = 0;

	assert_int_equal(dtn__otel_parse_headers(&v, value, &bad), 0);
	for (; want[n]; n++) {
		assert_true(n < v.len);
		assert_string_equal(v.items[n], want[n]);
	}
	assert_int_equal(v.len, n);
	assert_int_equal(bad, want_bad);
	dtn__strv_free(&v);
}

static void test_otel_config__headers(void **state)
{
	(void)state;
	assert_headers("api-key=secret,other=2", DTN_STRV("api-key: secret", "other: 2"), 0);
	/* base64 keeps its '+', '/' and '='; a raw space is legal; %20 decodes; trimmed */
	assert_headers("Authorization=Basic abc+/==", DTN_STRV("Authorization: Basic abc+/=="), 0);
	assert_headers(" Authorization = Basic%20abc%2B ", DTN_STRV("Authorization: Basic abc+"), 0);
	assert_headers("dd-api-key=a=b", DTN_STRV("dd-api-key: a=b"), 0);
	/* bad items are skipped: no '=', an empty key, a key that is no token, a bad escape,
	 * a value with a line break */
	assert_headers("novalue,=x,bad key=1,k=%zz,ok=1,inj=a%0d%0aX: y,",
		       DTN_STRV("ok: 1"), 5);
	/* a NUL would cut the value short, other control characters are no field value; a tab is */
	assert_headers("a=sec%00ret,b=x%1by,c=x\x7fy,d=x%09y", DTN_STRV("d: x\ty"), 3);
	assert_headers("", (const char *const[]){NULL}, 0);
}

static void test_otel_config__resource_attributes(void **state)
{
	dtn__oattr *list = NULL;

	(void)state;
	assert_int_equal(dtn__otel_parse_resource(&list, "a=1, b = two ,c=x%2Cy%3Dz"), 0);
	assert_string_equal(dtn__oattr_find(list, "a")->u.s, "1");
	assert_string_equal(dtn__oattr_find(list, "b")->u.s, "two");
	assert_string_equal(dtn__oattr_find(list, "c")->u.s, "x,y=z");
	dtn__oattr_free_list(list);
	/* any malformed item discards the whole value */
	assert_int_equal(dtn__otel_parse_resource(&list, "a=1,b"), DTN_EINVAL);
	assert_null(list);
	assert_int_equal(dtn__otel_parse_resource(&list, "a=%zz"), DTN_EINVAL);
	assert_int_equal(dtn__otel_parse_resource(&list, "=v"), DTN_EINVAL);
	assert_int_equal(dtn__otel_parse_resource(&list, "a=x%00y"), DTN_EINVAL);
	assert_null(list);
}

static void test_otel_config__off_without_configuration(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.enabled);
	dtn__otel_config_free(&cfg);
	/* Daytona's switch wants the exact lower-case "true", like the SDKs */
	setenv("DAYTONA_OTEL_ENABLED", "TRUE", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.enabled);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__on_by_endpoint_or_switch(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.enabled);
	assert_true(cfg.traces.otlp && cfg.metrics.otlp);
	assert_string_equal(cfg.traces.url, "http://collector:4318/base/v1/traces");
	assert_string_equal(cfg.metrics.url, "http://collector:4318/base/v1/metrics");
	assert_int_equal(cfg.traces.timeout_ms, 10000);
	assert_false(cfg.traces.gzip);
	dtn__otel_config_free(&cfg);

	/* OTEL_SDK_DISABLED wins over the environment, not over an explicit option */
	setenv("OTEL_SDK_DISABLED", "true", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.enabled);
	dtn__otel_config_free(&cfg);
	assert_int_equal(load(&cfg, &(dtn_otel_opts){.version = 1, .enabled = 1}), 0);
	assert_true(cfg.enabled);
	dtn__otel_config_free(&cfg);

	tu_otel_clear_env();
	setenv("DAYTONA_EXPERIMENTAL_OTEL_ENABLED", "true", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.enabled && cfg.traces.otlp);
	assert_string_equal(cfg.traces.url, "http://localhost:4318/v1/traces");
	dtn__otel_config_free(&cfg);

	/* --no-otel */
	assert_int_equal(load(&cfg, &(dtn_otel_opts){.version = 1, .enabled = -1}), 0);
	assert_false(cfg.enabled);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__trace_file_alone_writes_no_otlp(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	assert_int_equal(load(&cfg, &(dtn_otel_opts){.version = 1, .trace_file = "t.jsonl"}), 0);
	assert_true(cfg.enabled);
	assert_false(cfg.traces.otlp || cfg.metrics.otlp);
	assert_string_equal(cfg.trace_file, "t.jsonl");
	dtn__otel_config_free(&cfg);
	/* an explicit empty endpoint turns OTLP off even when the environment names one */
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	assert_int_equal(load(&cfg, &(dtn_otel_opts){.version = 1, .enabled = 1, .endpoint = ""}),
			 0);
	assert_true(cfg.enabled);
	assert_false(cfg.traces.otlp);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__per_signal_settings_win(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9999", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "m=3", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_string_equal(cfg.traces.url, "http://t:9999/");
	assert_string_equal(cfg.metrics.url, "http://c:4318/v1/metrics");
	assert_int_equal(cfg.traces.headers.len, 2);
	assert_int_equal(cfg.metrics.headers.len, 1);
	assert_string_equal(cfg.metrics.headers.items[0], "m: 3");
	assert_int_equal(cfg.traces.timeout_ms, 2500);
	assert_int_equal(cfg.metrics.timeout_ms, 700);
	assert_true(cfg.traces.gzip);
	assert_false(cfg.metrics.gzip);
	assert_int_equal(warnings, 0);
	dtn__otel_config_free(&cfg);

	/* OTEL_TRACES_EXPORTER=none keeps the metrics */
	setenv("OTEL_TRACES_EXPORTER", "none", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.traces.otlp);
	assert_true(cfg.metrics.otlp);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__protobuf_is_refused_clearly(void **state)
{
	dtn__otel_config cfg;
	dtn_error err;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", 1);
	assert_int_equal(dtn__otel_config_load(&cfg, NULL, count_warning, NULL, &err),
			 DTN_EUNSUPPORTED);
	assert_non_null(strstr(err.message, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"));
	assert_non_null(strstr(err.message, "http/json"));
	setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", 1);
	assert_int_equal(dtn__otel_config_load(&cfg, NULL, count_warning, NULL, &err),
			 DTN_EUNSUPPORTED);
	assert_non_null(strstr(err.message, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"));
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	dtn__otel_config_free(&cfg);
	/* the protocol does not matter while telemetry is off */
	tu_otel_clear_env();
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__bad_values_warn_and_default(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-5", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", 1);
	setenv("OTEL_SDK_DISABLED", "nope", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "noequals", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.enabled);
	assert_int_equal(cfg.traces.timeout_ms, 10000);
	assert_int_equal(cfg.bsp_queue, 2048);
	assert_false(cfg.traces.gzip);
	assert_int_equal(cfg.traces.headers.len, 0);
	assert_true(warnings >= 5);
	dtn__otel_config_free(&cfg);
}

/* The gRPC port with an HTTP exporter is likely a mistake: said once, the URL left alone. */
static void test_otel_config__grpc_port_warning(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example:4317", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_string_equal(cfg.traces.url, "https://otlp.example:4317/v1/traces");
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "4317"));
	dtn__otel_config_free(&cfg);
}

/* OTEL_PROPAGATORS: tracecontext (the default) reads TRACEPARENT; a list without it does not;
 * propagators dtn does not speak are reported. */
static void test_otel_config__propagators(void **state)
{
	static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	dtn__otel_config cfg;

	(void)state;
	setenv("TRACEPARENT", tp, 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.propagate);
	assert_true(cfg.has_remote);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_PROPAGATORS", " baggage , TraceContext", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.propagate);
	assert_true(cfg.has_remote);
	assert_int_equal(warnings, 0);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_PROPAGATORS", "none", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.propagate);
	assert_false(cfg.has_remote);
	assert_int_equal(warnings, 0);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_PROPAGATORS", "b3", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.propagate);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "\"b3\" is not supported"));
	dtn__otel_config_free(&cfg);
}

/* Metrics are cumulative: asking for delta is answered with a warning, not ignored silently. */
static void test_otel_config__temporality_preference(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "cumulative", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(warnings, 0);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "cumulative"));
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__batching(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("OTEL_BSP_SCHEDULE_DELAY", "250", 1);
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "4000", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
	setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500", 1);
	setenv("OTEL_METRIC_EXPORT_INTERVAL", "1500", 1);
	setenv("DTN_OTEL_FLUSH_TIMEOUT", "750", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(cfg.bsp_delay_ms, 250);
	assert_int_equal(cfg.bsp_export_timeout_ms, 4000);
	assert_int_equal(cfg.bsp_queue, 100);
	assert_int_equal(cfg.bsp_batch, 100); /* at most the queue */
	assert_int_equal(warnings, 1);
	assert_int_equal(cfg.metric_interval_ms, 1500);
	assert_int_equal(cfg.flush_timeout_ms, 750);
	dtn__otel_config_free(&cfg);
	/* the option wins over the variable */
	assert_int_equal(load(&cfg, &(dtn_otel_opts){.version = 1, .flush_timeout_ms = 300}), 0);
	assert_int_equal(cfg.flush_timeout_ms, 300);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__sampler(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(cfg.sampler, DTN__SAMPLER_ON);
	assert_true(cfg.parent_based);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_TRACES_SAMPLER", "TraceIdRatio", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(cfg.sampler, DTN__SAMPLER_RATIO);
	assert_false(cfg.parent_based);
	assert_true(cfg.ratio == 0.25);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_TRACES_SAMPLER", "parentbased_always_off", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(cfg.sampler, DTN__SAMPLER_OFF);
	assert_true(cfg.parent_based);
	dtn__otel_config_free(&cfg);
	setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.ratio == 1.0);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "OTEL_TRACES_SAMPLER_ARG"));
	dtn__otel_config_free(&cfg);
	setenv("OTEL_TRACES_SAMPLER", "jaeger_remote", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_int_equal(cfg.sampler, DTN__SAMPLER_ON);
	assert_int_equal(warnings, 2);
	dtn__otel_config_free(&cfg);
}

static void test_otel_config__ratio_sampler_decides_by_trace_id(void **state)
{
	dtn__otel_config cfg = {.sampler = DTN__SAMPLER_RATIO, .ratio = 0.5};
	uint8_t low[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			   0, 0, 0, 0, 0, 0, 1};
	uint8_t high[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	int kept = 0;

	(void)state;
	/* only the low 56 bits count, against (1 - p) * 2^56 */
	assert_false(dtn__otel_sample_root(&cfg, low));
	assert_true(dtn__otel_sample_root(&cfg, high));
	cfg.ratio = 0.0;
	assert_false(dtn__otel_sample_root(&cfg, high));
	cfg.ratio = 1.0;
	assert_true(dtn__otel_sample_root(&cfg, low));
	cfg.ratio = 0.25;
	for (int i = 0; i < 20000; i++) {
		uint8_t id[16];
		dtn__otel_random(id, 16);
		kept += dtn__otel_sample_root(&cfg, id);
	}
	assert_in_range(kept, 4000, 6000);
	cfg.sampler = DTN__SAMPLER_OFF;
	assert_false(dtn__otel_sample_root(&cfg, high));
}

static void test_otel_config__remote_parent(void **state)
{
	dtn__otel_config cfg;

	(void)state;
	setenv("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1);
	setenv("TRACESTATE", "vendor=abc", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_true(cfg.has_remote);
	assert_int_equal(cfg.remote.span_id[7], 0xb7);
	assert_string_equal(cfg.remote_tracestate, "vendor=abc");
	dtn__otel_config_free(&cfg);
	/* an invalid value is reported and ignored, tracestate with it */
	setenv("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 1);
	assert_int_equal(load(&cfg, NULL), 0);
	assert_false(cfg.has_remote);
	assert_null(cfg.remote_tracestate);
	assert_int_equal(warnings, 1);
	dtn__otel_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_otel_config__endpoint_paths, setup),
		cmocka_unit_test_setup(test_otel_config__headers, setup),
		cmocka_unit_test_setup(test_otel_config__resource_attributes, setup),
		cmocka_unit_test_setup(test_otel_config__off_without_configuration, setup),
		cmocka_unit_test_setup(test_otel_config__on_by_endpoint_or_switch, setup),
		cmocka_unit_test_setup(test_otel_config__trace_file_alone_writes_no_otlp, setup),
		cmocka_unit_test_setup(test_otel_config__per_signal_settings_win, setup),
		cmocka_unit_test_setup(test_otel_config__protobuf_is_refused_clearly, setup),
		cmocka_unit_test_setup(test_otel_config__bad_values_warn_and_default, setup),
		cmocka_unit_test_setup(test_otel_config__grpc_port_warning, setup),
		cmocka_unit_test_setup(test_otel_config__propagators, setup),
		cmocka_unit_test_setup(test_otel_config__temporality_preference, setup),
		cmocka_unit_test_setup(test_otel_config__batching, setup),
		cmocka_unit_test_setup(test_otel_config__sampler, setup),
		cmocka_unit_test_setup(test_otel_config__ratio_sampler_decides_by_trace_id, setup),
		cmocka_unit_test_setup(test_otel_config__remote_parent, setup),
	};

	return cmocka_run_group_tests_name("otel/config", tests, NULL, NULL);
}
