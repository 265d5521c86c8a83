/*
 * observer.c - HTTP CLIENT spans for core/http.h: one span per attempt with the stable HTTP
 * semantic conventions (otel.md §9), the W3C traceparent of that span in the request, and the
 * http.client.request.duration and dtn.http.retries metrics.
 */
#include <stdio.h>
#include <string.h>

#include "otel_http.h"
#include "otel_internal.h"

void dtn__otel_url_plain(char *buf, size_t size, bool redact, const char *url)
{
	const char *p = strstr(url, "://");
	size_t scheme = p ? (size_t)(p + 3 - url) : 0;
	const char *host = url + scheme, *end = host + strcspn(host, "/?#"), *at = NULL;

	for (const char *q = host; q < end; q++)
		if (*q == '@')
			at = q;
	if (at)
		host = at + 1;
	snprintf(buf, size, "%.*s%s%.*s", (int)scheme, url, at && redact ? "REDACTED:REDACTED@" : "",
		 (int)strcspn(host, "?#"), host);
}

static const char *const known_methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
};

static bool known_method(const char *m)
{
	for (size_t i = 0; i < DTN__ARRAY_LEN(known_methods); i++)
		if (strcmp(m, known_methods[i]) == 0)
			return true;
	return false;
}

/* Adds traceparent (and tracestate) for span, or for the process's remote parent. */
static void inject(dtn__strv *headers, const dtn_span *span)
{
	char tp[64], line[96];
	const char *ts = span ? span->tracestate : NULL;
	dtn_otel *o;

	if (!headers || dtn_span_traceparent(span, tp, sizeof(tp)) == 0)
		return;
	snprintf(line, sizeof(line), "traceparent: %s", tp);
	dtn__strv_push(headers, line);
	if (!span && (o = dtn_otel_default()))
		ts = o->cfg.remote_tracestate;
	if (ts && *ts) {
		char *l = dtn__aprintf("tracestate: %s", ts);
		if (l)
			dtn__strv_push_owned(headers, l);
	}
}

static void obs_begin(void **token, const dtn__http_attempt *at, dtn__strv *headers,
		      void *payload)
{
	dtn_otel *o = dtn__otel_active();
	const char *method = at->method ? at->method : "GET";
	bool known = known_method(method);
	char url[2048];
	dtn_span *span;

	(void)payload;
	*token = NULL;
	if (!o) {
		/* Telemetry off: still hand on the trace the process belongs to, if any. */
		inject(headers, NULL);
		return;
	}
	dtn__otel_url_plain(url, sizeof(url), true, at->url ? at->url : "");
	{
		dtn_attr attrs[] = {
			DTN_ATTR_STR("http.request.method", known ? method : "_OTHER"),
			DTN_ATTR_STR("server.address", at->host ? at->host : ""),
			DTN_ATTR_INT("server.port", at->port),
			DTN_ATTR_STR("url.full", url),
			DTN_ATTR_STR("http.request.method_original", method),
		};
		dtn_span_opts opts = {.version = 1, .otel = o, .not_current = true, .attrs = attrs,
				      .nattrs = known ? 4 : 5};
		span = dtn_span_start_ex(known ? method : "HTTP", DTN_SPAN_CLIENT, &opts);
	}
	if (span && at->resend_count > 0)
		dtn_span_set_int(span, "http.request.resend_count", at->resend_count);
	/* The parent of the server's span is this attempt's span (else the enclosing one). */
	inject(headers, span ? span : dtn_span_current());
	*token = span;
}

static void obs_end(void *token, const dtn__http_attempt *at, void *payload)
{
	dtn_span *span = token;
	dtn_otel *o;
	const char *method, *etype = at->error_type;
	char status_text[24];
	int64_t end;
	bool cancelled = etype && strcmp(etype, "cancelled") == 0;
	dtn_attr attrs[5];
	size_t n = 0;

	(void)payload;
	if (!span)
		return;
	o = span->otel;
	if (at->status > 0)
		dtn_span_set_int(span, "http.response.status_code", at->status);
	if (!etype && at->status >= 400) {
		snprintf(status_text, sizeof(status_text), "%ld", at->status);
		etype = status_text;
	}
	/* A request cancelled on purpose is not an error (semantic conventions), but it is
	 * marked cancelled as every span open at Ctrl-C is (otel.md §12.2). */
	if (etype)
		dtn_span_set_str(span, "error.type", etype);
	if (etype && !cancelled)
		dtn_span_set_status(span, DTN_SPAN_ERROR, NULL);
	end = dtn__otel_now_ns();
	method = at->method && known_method(at->method) ? at->method : "_OTHER";
	attrs[n++] = DTN_ATTR_STR("http.request.method", method);
	attrs[n++] = DTN_ATTR_STR("server.address", at->host ? at->host : "");
	attrs[n++] = DTN_ATTR_INT("server.port", at->port);
	if (at->status > 0)
		attrs[n++] = DTN_ATTR_INT("http.response.status_code", at->status);
	if (etype && !cancelled)
		attrs[n++] = DTN_ATTR_STR("error.type", etype);
	{
		dtn_metric_def def = {.name = "http.client.request.duration", .unit = "s",
				      .kind = DTN_METRIC_HISTOGRAM,
				      .description = "Duration of HTTP client requests"};
		dtn__metric_record(o, &def, (double)(end - span->start_ns) / 1e9, attrs, n);
	}
	dtn_span_end_at(span, end);
}

static void obs_retry(const dtn__http_attempt *at, long delay_ms, void *payload)
{
	dtn_otel *o = dtn__otel_active();
	char status_text[24];
	const char *etype = at->error_type;
	dtn_metric_def def = {.name = "dtn.http.retries", .unit = "{retry}",
			      .kind = DTN_METRIC_COUNTER, .integer = true,
			      .description = "HTTP requests retried"};

	(void)delay_ms;
	(void)payload;
	if (!o)
		return;
	if (!etype && at->status > 0) {
		snprintf(status_text, sizeof(status_text), "%ld", at->status);
		etype = status_text;
	}
	dtn__metric_record(o, &def, 1, (dtn_attr[]){
		DTN_ATTR_STR("server.address", at->host ? at->host : ""),
		DTN_ATTR_STR("error.type", etype ? etype : "_OTHER"),
	}, 2);
}

static const dtn__http_observer observer = {obs_begin, obs_end, obs_retry, NULL};

const dtn__http_observer *dtn__otel_http_observer(void)
{
	return &observer;
}
