/*
 * fuzz_otelenv.c - feeds arbitrary values to the telemetry configuration: the OTEL_* variables
 * (headers with percent-decoding, resource attributes, sampler and its argument, endpoints and
 * their path rules, numbers) and the W3C TRACEPARENT / TRACESTATE.
 *
 * The input is "NAME=VALUE" lines; the configuration is read with an environment that holds
 * those of the names of the table below, and nothing else (swapped in as environ: setenv never
 * frees the strings it replaces). The first byte picks how the configuration is loaded (from
 * the environment only, or with options naming the endpoint and traceparent). Each value also
 * goes to the parser that owns it directly, as exact-length bytes where the parser takes a
 * length. A configuration that loads must be usable as it is: URLs that are http(s), header
 * lines a request can carry, a ratio from 0 to 1, a remote context that formats back the same.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "otel_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_METRICS_HEADERS",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_SERVICE_NAME",
	"OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION",
	"OTEL_TRACES_EXPORTER",
	"OTEL_METRICS_EXPORTER",
	"OTEL_SDK_DISABLED",
	"OTEL_BSP_SCHEDULE_DELAY",
	"OTEL_BSP_MAX_QUEUE_SIZE",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
	"OTEL_METRIC_EXPORT_INTERVAL",
	"OTEL_ATTRIBUTE_COUNT_LIMIT",
	"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
	"DAYTONA_OTEL_ENABLED",
	"DTN_OTEL_FLUSH_TIMEOUT",
	"TRACEPARENT",
	"TRACESTATE",
};

#define NNAMES (sizeof(names) / sizeof(names[0]))

static size_t index_of(const char *name)
{
	size_t i = 0;

	while (strcmp(names[i], name) != 0)
		i++;
	return i;
}

static void on_warn(void *payload, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	++*(int *)payload;
}

static bool is_http_url(const char *u)
{
	return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

static void check_signal(const dtn__otel_signal *s)
{
	if (!s->otlp)
		return;
	if (!s->url || !is_http_url(s->url) || s->timeout_ms < 0)
		__builtin_trap();
	for (size_t i = 0; i < s->headers.len; i++) {
		const char *h = s->headers.items[i], *colon = strchr(h, ':');

		if (!colon || colon == h || colon[1] != ' ' || strpbrk(h, "\r\n") ||
		    strcspn(h, " \t") < (size_t)(colon - h))
			__builtin_trap();
	}
}

static void check_context(const dtn_trace_context *ctx)
{
	dtn_trace_context again;
	char text[56];

	if (dtn_trace_context_format(ctx, text, sizeof(text)) != 55 ||
	    dtn_trace_context_parse(&again, text) != 0 || memcmp(&again, ctx, sizeof(again)) != 0)
		__builtin_trap();
}

/* The parsers on their own, with the value as it is. */
static void parse_alone(size_t which, const char *value, size_t len)
{
	char *exact = malloc(len ? len : 1), *decoded;
	dtn__strv headers = {NULL, 0, 0};
	dtn__oattr *attrs = NULL;
	dtn_trace_context ctx;
	int bad = -1;

	if (!exact)
		abort();
	memcpy(exact, value, len);
	if ((decoded = dtn__otel_percent_decode(exact, len)) && strlen(decoded) > len)
		__builtin_trap();
	dtn__free(decoded);
	free(exact);
	if (strstr(names[which], "HEADERS")) {
		if (dtn__otel_parse_headers(&headers, value, &bad) != 0 || bad < 0)
			__builtin_trap();
		/* no header line carries a control character but the tab */
		for (size_t i = 0; i < headers.len; i++)
			for (const char *c = headers.items[i]; *c; c++)
				if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
					__builtin_trap();
		dtn__strv_free(&headers);
	} else if (strcmp(names[which], "OTEL_RESOURCE_ATTRIBUTES") == 0) {
		int rc = dtn__otel_parse_resource(&attrs, value);

		if ((rc != 0 && (rc != DTN_EINVAL || attrs)))
			__builtin_trap();
		for (const dtn__oattr *a = attrs; a; a = a->next)
			if (!*a->key || a->type != DTN_ATTR_TYPE_STRING || !a->u.s)
				__builtin_trap();
		dtn__oattr_free_list(attrs);
	} else if (strcmp(names[which], "TRACEPARENT") == 0) {
		if (dtn_trace_context_parse(&ctx, value) == 0)
			check_context(&ctx);
	} else if (strstr(names[which], "ENDPOINT")) {
		char *a = dtn__otel_signal_url(value, NULL, "v1/traces");
		char *b = dtn__otel_signal_url(NULL, value, "v1/traces");

		if ((a && !is_http_url(a)) || (b && !is_http_url(b)))
			__builtin_trap();
		dtn__free(a);
		dtn__free(b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *values[NNAMES] = {0};
	char *text, *line, *next, *slots[NNAMES] = {0}, *env[NNAMES + 1], **saved;
	dtn__otel_config cfg;
	dtn_otel_opts opts = {.version = 1};
	dtn_error err;
	int warnings = 0, rc;
	size_t nenv = 0;
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	if (!(text = malloc(size)))
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	for (line = text; line; line = next) {
		char *eq;

		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (!(eq = strchr(line, '=')))
			continue;
		for (size_t i = 0; i < NNAMES; i++)
			if (strlen(names[i]) == (size_t)(eq - line) &&
			    strncmp(line, names[i], (size_t)(eq - line)) == 0) {
				slots[i] = line; /* a later line wins, as with setenv */
				values[i] = eq + 1;
				parse_alone(i, eq + 1, strlen(eq + 1));
			}
	}
	for (size_t i = 0; i < NNAMES; i++)
		if (slots[i])
			env[nenv++] = slots[i];
	env[nenv] = NULL;
	/* mode bit 0: options on; then their endpoint and traceparent come from the values */
	if (mode & 1) {
		opts.enabled = (mode & 6) == 2 ? 1 : (mode & 6) == 4 ? -1 : 0;
		if (mode & 8)
			opts.endpoint = values[index_of("OTEL_EXPORTER_OTLP_ENDPOINT")];
		if (mode & 16) {
			opts.traceparent = values[index_of("TRACEPARENT")];
			opts.tracestate = values[index_of("TRACESTATE")];
		}
		opts.trace_file = (mode & 32) ? "trace.jsonl" : NULL;
	}
	dtn_error_clear(&err);
	saved = environ;
	environ = env;
	rc = dtn__otel_config_load(&cfg, (mode & 1) ? &opts : NULL, on_warn, &warnings, &err);
	environ = saved;
	if (rc == 0) {
		check_signal(&cfg.traces);
		check_signal(&cfg.metrics);
		if (!(cfg.ratio >= 0.0 && cfg.ratio <= 1.0) || cfg.bsp_batch < 1 ||
		    cfg.bsp_batch > cfg.bsp_queue || cfg.metric_interval_ms < 1)
			__builtin_trap();
		if (cfg.has_remote)
			check_context(&cfg.remote);
		if (cfg.remote_tracestate && (strlen(cfg.remote_tracestate) > 512 ||
					      !cfg.has_remote))
			__builtin_trap();
		dtn__otel_config_free(&cfg);
	} else if (rc != DTN_EUNSUPPORTED || err.code != rc || !err.message[0]) {
		__builtin_trap();
	}
	free(text);
	return 0;
}
