/*
 * otel.c - the provider and span entry points. This first version records nothing: every span
 * is NULL and every metric call returns at once, so instrumentation can be written against the
 * final API while the exporters are being built.
 */
#include <string.h>

#include "dtn_otel.h"
#include "internal.h"
#include "otel_http.h"

struct dtn_otel {
	int enabled;
	long flush_timeout_ms;
};

int dtn_otel_new(dtn_otel **out, const dtn_otel_opts *opts, dtn_error *err)
{
	dtn_otel *o;

	(void)err;
	*out = NULL;
	if (!(o = dtn__calloc(1, sizeof(*o))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	o->enabled = 0;
	o->flush_timeout_ms = opts && opts->flush_timeout_ms > 0 ? opts->flush_timeout_ms : 2000;
	*out = o;
	return 0;
}

bool dtn_otel_is_enabled(const dtn_otel *otel)
{
	return otel && otel->enabled;
}

static dtn_otel *default_otel;

void dtn_otel_set_default(dtn_otel *otel)
{
	default_otel = otel;
}

dtn_otel *dtn_otel_default(void)
{
	return default_otel;
}

int dtn_otel_flush(dtn_otel *otel, long timeout_ms)
{
	(void)otel;
	(void)timeout_ms;
	return 0;
}

int dtn_otel_shutdown(dtn_otel *otel, long timeout_ms)
{
	(void)timeout_ms;
	if (!otel)
		return 0;
	if (default_otel == otel)
		default_otel = NULL;
	dtn__free(otel);
	return 0;
}

void dtn_otel_get_stats(const dtn_otel *otel, dtn_otel_stats *out)
{
	(void)otel;
	memset(out, 0, sizeof(*out));
}

void dtn_otel_summary(dtn_otel *otel, void (*fn)(const char *line, void *payload),
		      void *payload)
{
	(void)otel;
	(void)fn;
	(void)payload;
}

dtn_span *dtn_span_start(const char *name, dtn_span_kind kind, dtn_span *parent)
{
	(void)name;
	(void)kind;
	(void)parent;
	return NULL;
}

dtn_span *dtn_span_start_ex(const char *name, dtn_span_kind kind, const dtn_span_opts *opts)
{
	(void)name;
	(void)kind;
	(void)opts;
	return NULL;
}

void dtn_span_set_str(dtn_span *span, const char *key, const char *value)
{
	(void)span, (void)key, (void)value;
}

void dtn_span_set_int(dtn_span *span, const char *key, int64_t value)
{
	(void)span, (void)key, (void)value;
}

void dtn_span_set_double(dtn_span *span, const char *key, double value)
{
	(void)span, (void)key, (void)value;
}

void dtn_span_set_bool(dtn_span *span, const char *key, bool value)
{
	(void)span, (void)key, (void)value;
}

void dtn_span_set_strv(dtn_span *span, const char *key, const char *const *values)
{
	(void)span, (void)key, (void)values;
}

void dtn_span_set_attrs(dtn_span *span, const dtn_attr *attrs, size_t nattrs)
{
	(void)span, (void)attrs, (void)nattrs;
}

void dtn_span_add_event(dtn_span *span, const char *name, const dtn_attr *attrs, size_t nattrs)
{
	(void)span, (void)name, (void)attrs, (void)nattrs;
}

void dtn_span_set_status(dtn_span *span, dtn_span_status status, const char *message)
{
	(void)span, (void)status, (void)message;
}

void dtn_span_record_error(dtn_span *span, int code, const char *error_type, const char *message)
{
	(void)span, (void)code, (void)error_type, (void)message;
}

void dtn_span_end(dtn_span *span)
{
	(void)span;
}

void dtn_span_end_at(dtn_span *span, int64_t end_unix_nano)
{
	(void)span, (void)end_unix_nano;
}

dtn_span *dtn_span_current(void)
{
	return NULL;
}

dtn_span *dtn_span_set_current(dtn_span *span)
{
	(void)span;
	return NULL;
}

bool dtn_span_is_recording(const dtn_span *span)
{
	return span != NULL;
}

size_t dtn_span_traceparent(const dtn_span *span, char *buf, size_t size)
{
	(void)span;
	if (buf && size)
		buf[0] = '\0';
	return 0;
}

void dtn_span_trace_id(const dtn_span *span, char buf[33])
{
	(void)span;
	buf[0] = '\0';
}

void dtn_span_span_id(const dtn_span *span, char buf[17])
{
	(void)span;
	buf[0] = '\0';
}

dtn_span *dtn_span_start_op(const char *name, dtn_span *parent)
{
	(void)name, (void)parent;
	return NULL;
}

void dtn_span_end_op(dtn_span *span, int rc, const dtn_error *err)
{
	(void)span, (void)rc, (void)err;
}

void dtn_metric_record(const dtn_metric_def *def, double value, const dtn_attr *attrs,
		       size_t nattrs)
{
	(void)def, (void)value, (void)attrs, (void)nattrs;
}

void dtn_counter_add(const char *name, const char *unit, int64_t value, const dtn_attr *attrs,
		     size_t nattrs)
{
	(void)name, (void)unit, (void)value, (void)attrs, (void)nattrs;
}

void dtn_histogram_record(const char *name, const char *unit, double value,
			  const dtn_attr *attrs, size_t nattrs)
{
	(void)name, (void)unit, (void)value, (void)attrs, (void)nattrs;
}

void dtn_gauge_set(const char *name, const char *unit, double value, const dtn_attr *attrs,
		   size_t nattrs)
{
	(void)name, (void)unit, (void)value, (void)attrs, (void)nattrs;
}

static void obs_begin(void **token, const dtn__http_attempt *attempt, dtn__strv *headers,
		      void *payload)
{
	(void)attempt, (void)headers, (void)payload;
	*token = NULL;
}

static void obs_end(void *token, const dtn__http_attempt *attempt, void *payload)
{
	(void)token, (void)attempt, (void)payload;
}

static void obs_retry(const dtn__http_attempt *attempt, long delay_ms, void *payload)
{
	(void)attempt, (void)delay_ms, (void)payload;
}

static const dtn__http_observer observer = { obs_begin, obs_end, obs_retry, NULL };

const dtn__http_observer *dtn__otel_http_observer(void)
{
	return &observer;
}
