/*
 * json.c - OTLP/JSON request bodies (ExportTraceServiceRequest, ExportMetricsServiceRequest) by
 * the OTLP rules: lowerCamelCase keys, hex trace and span ids, enums as integers, 64-bit
 * integers as decimal strings, non-finite doubles as strings, unique attribute keys.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "otel_internal.h"

/* A JSON string from text that may not be valid UTF-8 (bad bytes become U+FFFD) and may be cut
 * to `limit` characters (-1: no limit). */
static json_t *jstr_limit(const char *s, long limit)
{
	dtn__buf b = DTN__BUF_INIT;
	size_t n = strlen(s), i = 0;
	long chars = 0;
	json_t *j;

	if ((limit < 0 || (long)n <= limit) && dtn__utf8_valid(s, n))
		return json_string(s);
	while (i < n && (limit < 0 || chars < limit)) {
		unsigned long cp;
		size_t len = dtn__utf8_decode(s + i, n - i, &cp);
		if (len == 0) {
			dtn__buf_puts(&b, "\xef\xbf\xbd");
			len = 1;
		} else {
			dtn__buf_add(&b, s + i, len);
		}
		i += len;
		chars++;
	}
	j = b.failed ? NULL : json_string(dtn__buf_cstr(&b));
	dtn__buf_free(&b);
	return j;
}

static json_t *jstr(const char *s)
{
	return jstr_limit(s, -1);
}

static json_t *jint64(int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_string(buf);
}

static json_t *juint64(uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_string(buf);
}

static json_t *jdouble(double d)
{
	if (isnan(d))
		return json_string("NaN");
	if (isinf(d))
		return json_string(d > 0 ? "Infinity" : "-Infinity");
	return json_real(d);
}

static json_t *jhex(const uint8_t *b, size_t n)
{
	char buf[33];

	dtn__otel_hex(buf, b, n);
	return json_string(buf);
}

/* Sets key to value, taking the value's reference; a NULL value spoils the object. */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value && json_object_set_new(obj, key, value) == 0;
}

static bool push(json_t *arr, json_t *value)
{
	return value && json_array_append_new(arr, value) == 0;
}

/* ---- attributes ---- */

static json_t *any_value(const dtn__oattr *a, long limit)
{
	json_t *v = json_object(), *arr, *values;
	bool ok = v != NULL;

	switch (a->type) {
	case DTN_ATTR_TYPE_STRING:
		ok = ok && put(v, "stringValue", jstr_limit(a->u.s, limit));
		break;
	case DTN_ATTR_TYPE_INT:
		ok = ok && put(v, "intValue", jint64(a->u.i));
		break;
	case DTN_ATTR_TYPE_DOUBLE:
		ok = ok && put(v, "doubleValue", jdouble(a->u.d));
		break;
	case DTN_ATTR_TYPE_BOOL:
		ok = ok && put(v, "boolValue", json_boolean(a->u.b));
		break;
	default:
		values = json_array();
		ok = ok && values;
		for (const char *const *str = a->u.v; ok && *str; str++) {
			json_t *item = json_object();
			ok = put(item, "stringValue", jstr_limit(*str, limit));
			ok = push(values, item) && ok;
		}
		arr = json_object();
		ok = put(arr, "values", values) && ok;
		ok = put(v, "arrayValue", arr) && ok;
	}
	if (!ok) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* The list as KeyValue objects; a key given twice keeps its last value. */
static json_t *attrs_json(const dtn__oattr *list, long limit)
{
	json_t *arr = json_array();

	for (const dtn__oattr *a = list; arr && a; a = a->next) {
		const dtn__oattr *later;
		json_t *kv;

		for (later = a->next; later; later = later->next)
			if (strcmp(later->key, a->key) == 0)
				break;
		if (later)
			continue;
		kv = json_object();
		if (!put(kv, "key", jstr(a->key)) || !put(kv, "value", any_value(a, limit))) {
			json_decref(kv);
			json_decref(arr);
			return NULL;
		}
		if (!push(arr, kv)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *resource_json(const dtn_otel *o)
{
	json_t *r = json_object();

	if (!put(r, "attributes", attrs_json(o->resource, -1))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static json_t *scope_json(void)
{
	return json_pack("{s:s, s:s}", "name", DTN__OTEL_SCOPE, "version", DTN_VERSION);
}

/* {"<outer>":[{"resource":…,"<scopes>":[{"scope":…,"<items>":items}]}]} */
static char *envelope(const dtn_otel *o, const char *outer, const char *scopes,
		      const char *items_key, json_t *items)
{
	json_t *root = json_object(), *rlist = json_array(), *r = json_object(),
	       *slist = json_array(), *s = json_object();
	char *text = NULL, *copy = NULL;
	bool ok;

	/* Each put or push takes its value's reference, even when it fails. */
	ok = put(s, "scope", scope_json());
	ok = put(s, items_key, items) && ok;
	ok = push(slist, s) && ok;
	ok = put(r, "resource", resource_json(o)) && ok;
	ok = put(r, scopes, slist) && ok;
	ok = push(rlist, r) && ok;
	ok = put(root, outer, rlist) && ok;
	if (ok)
		text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	/* jansson allocates with malloc: hand over memory from our own allocator. */
	if (text) {
		copy = dtn__strdup(text);
		free(text);
	}
	return copy;
}

/* ---- spans ---- */

static json_t *event_json(const dtn__oevent *ev, long limit)
{
	json_t *e = json_object();

	if (!put(e, "timeUnixNano", jint64(ev->time_ns)) || !put(e, "name", jstr(ev->name)) ||
	    (ev->attrs && !put(e, "attributes", attrs_json(ev->attrs, limit)))) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static json_t *span_json(const dtn_span *s, long limit)
{
	json_t *j = json_object(), *events, *status;
	bool ok = j != NULL;

	ok = ok && put(j, "traceId", jhex(s->trace_id, 16)) &&
	     put(j, "spanId", jhex(s->span_id, 8));
	if (ok && s->has_parent)
		ok = put(j, "parentSpanId", jhex(s->parent_id, 8));
	if (ok && s->tracestate)
		ok = put(j, "traceState", jstr(s->tracestate));
	/* flags: the W3C flags, plus "is-remote known" (0x100) and "parent is remote" (0x200) */
	ok = ok && put(j, "flags", json_integer(s->trace_flags | 0x100 |
						  (s->parent_remote ? 0x200 : 0)));
	ok = ok && put(j, "name", jstr(s->name)) && put(j, "kind", json_integer(s->kind)) &&
	     put(j, "startTimeUnixNano", jint64(s->start_ns)) &&
	     put(j, "endTimeUnixNano", jint64(s->end_ns));
	if (ok && s->attrs)
		ok = put(j, "attributes", attrs_json(s->attrs, limit));
	if (ok && s->dropped_attrs)
		ok = put(j, "droppedAttributesCount", json_integer(s->dropped_attrs));
	if (ok && s->events) {
		events = json_array();
		for (const dtn__oevent *ev = s->events; ok && ev; ev = ev->next)
			ok = push(events, event_json(ev, limit));
		ok = put(j, "events", events) && ok;
	}
	if (ok && s->dropped_events)
		ok = put(j, "droppedEventsCount", json_integer(s->dropped_events));
	if (ok && s->status) {
		status = json_object();
		ok = put(status, "code", json_integer(s->status)) &&
		     (!s->status_msg || s->status != DTN_SPAN_ERROR ||
		      put(status, "message", jstr(s->status_msg)));
		ok = put(j, "status", status) && ok;
	}
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

char *dtn__otlp_traces_json(dtn_otel *o, dtn_span *const *spans, size_t n)
{
	json_t *items = json_array();
	size_t added = 0;

	if (!items)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		/* A span that cannot be encoded (memory) is left out, not the batch. */
		if (push(items, span_json(spans[i], o->cfg.attr_value_limit)))
			added++;
	}
	if (!added) {
		json_decref(items);
		return NULL;
	}
	return envelope(o, "resourceSpans", "scopeSpans", "spans", items);
}

/* ---- metrics ---- */

static json_t *number_point(const dtn__metric *m, const dtn__mpoint *p, int64_t now)
{
	json_t *j = json_object();
	bool ok = put(j, "attributes", attrs_json(p->attrs, -1));

	if (m->kind == DTN_METRIC_GAUGE) {
		ok = ok && put(j, "timeUnixNano", jint64(p->time_ns));
	} else {
		ok = ok && put(j, "startTimeUnixNano", jint64(p->start_ns)) &&
		     put(j, "timeUnixNano", jint64(now));
	}
	if (m->integer)
		ok = ok && put(j, "asInt", jint64((int64_t)(p->value < 0 ? p->value - 0.5 : p->value + 0.5)));
	else
		ok = ok && put(j, "asDouble", jdouble(p->value));
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *histogram_point(const dtn__metric *m, const dtn__mpoint *p, int64_t now)
{
	json_t *j = json_object(), *buckets = json_array(), *bounds = json_array();
	bool ok = put(j, "attributes", attrs_json(p->attrs, -1)) &&
		  put(j, "startTimeUnixNano", jint64(p->start_ns)) &&
		  put(j, "timeUnixNano", jint64(now)) && put(j, "count", juint64(p->count));

	/* sum only when no value was negative (the OTLP rule for explicit histograms) */
	if (ok && !p->negative)
		ok = put(j, "sum", jdouble(p->sum));
	for (size_t i = 0; ok && i <= m->nbounds; i++)
		ok = push(buckets, juint64(p->buckets[i]));
	for (size_t i = 0; ok && i < m->nbounds; i++)
		ok = push(bounds, jdouble(m->bounds[i]));
	ok = put(j, "bucketCounts", buckets) && ok;
	buckets = NULL;
	ok = put(j, "explicitBounds", bounds) && ok;
	bounds = NULL;
	if (ok && p->count)
		ok = put(j, "min", jdouble(p->min)) && put(j, "max", jdouble(p->max));
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *metric_json(const dtn__metric *m, int64_t now)
{
	json_t *j = json_object(), *data = json_object(), *points = json_array();
	const char *kind = m->kind == DTN_METRIC_GAUGE ? "gauge" :
			   m->kind == DTN_METRIC_HISTOGRAM ? "histogram" : "sum";
	bool ok = put(j, "name", jstr(m->name));

	if (ok && m->unit && *m->unit)
		ok = put(j, "unit", jstr(m->unit));
	if (ok && m->description && *m->description)
		ok = put(j, "description", jstr(m->description));
	for (const dtn__mpoint *p = m->points; ok && p; p = p->next)
		ok = push(points, m->kind == DTN_METRIC_HISTOGRAM ? histogram_point(m, p, now)
								   : number_point(m, p, now));
	ok = put(data, "dataPoints", points) && ok;
	if (ok && m->kind != DTN_METRIC_GAUGE)
		ok = put(data, "aggregationTemporality", json_integer(2)); /* cumulative */
	if (ok && m->kind != DTN_METRIC_GAUGE && m->kind != DTN_METRIC_HISTOGRAM)
		ok = put(data, "isMonotonic", json_boolean(m->kind == DTN_METRIC_COUNTER));
	ok = put(j, kind, data) && ok;
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* dtn.otlp.dropped from the provider's counters: what the telemetry itself lost. */
static json_t *dropped_json(dtn_otel *o, int64_t now)
{
	static const char *const reasons[] = {"queue_full", "export_failed", "shutdown",
					      "cardinality_limit"};
	uint64_t counts[4] = {
		atomic_load(&o->n_dropped_queue), atomic_load(&o->n_dropped_export),
		atomic_load(&o->n_dropped_shutdown), atomic_load(&o->n_dropped_points),
	};
	dtn__metric m = {.name = (char *)"dtn.otlp.dropped", .unit = (char *)"{item}",
			 .kind = DTN_METRIC_COUNTER, .integer = true,
			 .description = (char *)"Telemetry items lost by the exporter"};
	dtn__mpoint pts[4];
	dtn__oattr attrs[4][2];
	json_t *j;
	size_t n = 0;

	for (size_t i = 0; i < 4; i++) {
		if (!counts[i])
			continue;
		attrs[n][0] = (dtn__oattr){&attrs[n][1], "signal", DTN_ATTR_TYPE_STRING,
					   {.s = i == 3 ? "metrics" : "traces"}};
		attrs[n][1] = (dtn__oattr){NULL, "reason", DTN_ATTR_TYPE_STRING, {.s = reasons[i]}};
		pts[n] = (dtn__mpoint){.attrs = &attrs[n][0],
				       .start_ns = o->start_ns, .value = (double)counts[i]};
		if (n)
			pts[n - 1].next = &pts[n];
		n++;
	}
	if (!n)
		return NULL;
	m.points = pts;
	m.npoints = n;
	j = metric_json(&m, now);
	return j;
}

char *dtn__otlp_metrics_json(dtn_otel *o, int64_t now_ns)
{
	json_t *items = json_array(), *dropped;
	size_t added = 0;

	if (!items)
		return NULL;
	pthread_mutex_lock(&o->mlock);
	for (size_t i = 0; i < o->nmetrics; i++) {
		if (!o->metrics[i].npoints)
			continue;
		if (push(items, metric_json(&o->metrics[i], now_ns)))
			added++;
	}
	pthread_mutex_unlock(&o->mlock);
	if ((dropped = dropped_json(o, now_ns)) && push(items, dropped))
		added++;
	if (!added) {
		json_decref(items);
		return NULL;
	}
	return envelope(o, "resourceMetrics", "scopeMetrics", "metrics", items);
}
