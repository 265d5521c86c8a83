/*
 * otlp_check.c - an OTLP/JSON checker for the tests (see otlp_check.h). It knows the fields of
 * the trace and metric messages of opentelemetry-proto and the OTLP/JSON deviations from the
 * proto3 mapping; anything else in a body is reported.
 */
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_check.h"

typedef struct ck {
	char path[512];
	char *why;
	size_t size;
	bool failed;
} ck;

static bool fail(ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(ck *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (c->failed)
		return false;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->why, c->size, "%s: %s", c->path[0] ? c->path : "$", msg);
	c->failed = true;
	return false;
}

/* Pushes ".key" or "[i]" on the path; returns the old length to pop back to. */
static size_t enter(ck *c, const char *key, long index)
{
	size_t old = strlen(c->path);

	if (key)
		snprintf(c->path + old, sizeof(c->path) - old, ".%s", key);
	else
		snprintf(c->path + old, sizeof(c->path) - old, "[%ld]", index);
	return old;
}

static void leave(ck *c, size_t old)
{
	c->path[old] = '\0';
}

/* Every key of obj is one of the NULL-terminated names. */
static bool only_keys(ck *c, json_t *obj, const char *const *names)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(c, "not an object");
	json_object_foreach(obj, key, v) {
		bool known = false;
		for (const char *const *n = names; *n; n++)
			if (strcmp(*n, key) == 0)
				known = true;
		if (!known)
			return fail(c, "unknown field \"%s\" (fields are lowerCamelCase proto names)",
				    key);
		if (json_is_null(v))
			return fail(c, "field \"%s\" is null", key);
	}
	return true;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static bool is_decimal(const char *s, bool is_signed)
{
	if (is_signed && *s == '-')
		s++;
	return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 20;
}

/* A 64-bit integer: a decimal string (the canonical OTLP/JSON form). */
static bool int64_field(ck *c, json_t *obj, const char *key, bool required, bool is_signed,
			unsigned long long *out)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	if (!v)
		return required ? fail(c, "missing %s", key) : true;
	if (!json_is_string(v))
		return fail(c, "%s must be a decimal string (64-bit integer), not a JSON %s", key,
			    json_is_integer(v) ? "number" : "value of another type");
	s = json_string_value(v);
	if (!is_decimal(s, is_signed))
		return fail(c, "%s: \"%s\" is not a decimal integer", key, s);
	if (out)
		*out = strtoull(s, NULL, 10);
	return true;
}

static bool uint32_field(ck *c, json_t *obj, const char *key, long long max)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return true;
	if (!json_is_integer(v))
		return fail(c, "%s must be a JSON number (32-bit integer)", key);
	if (json_integer_value(v) < 0 || json_integer_value(v) > max)
		return fail(c, "%s: %lld is out of range", key, (long long)json_integer_value(v));
	return true;
}

static bool string_field(ck *c, json_t *obj, const char *key, bool required)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? fail(c, "missing %s", key) : true;
	if (!json_is_string(v))
		return fail(c, "%s must be a string", key);
	if (required && !json_string_length(v))
		return fail(c, "%s is empty", key);
	return true;
}

static bool number_ok(json_t *v)
{
	const char *s = json_string_value(v);

	if (json_is_number(v))
		return true;
	return s && (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity"));
}

static bool hex_id(ck *c, json_t *obj, const char *key, size_t len, bool required)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	bool zero = true;

	if (!v)
		return required ? fail(c, "missing %s", key) : true;
	if (!(s = json_string_value(v)))
		return fail(c, "%s must be a hex string", key);
	if (!required && !*s)
		return true;
	if (strlen(s) != len || strspn(s, "0123456789abcdefABCDEF") != len)
		return fail(c, "%s: \"%s\" is not %zu hex digits (ids are hex in OTLP/JSON, not "
			    "base64)", key, s, len);
	for (const char *p = s; *p; p++)
		if (*p != '0')
			zero = false;
	return zero ? fail(c, "%s is all zeroes", key) : true;
}

static bool enum_field(ck *c, json_t *obj, const char *key, long lo, long hi, bool required)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? fail(c, "missing %s", key) : true;
	if (!json_is_integer(v))
		return fail(c, "%s must be an integer (enums are numbers in OTLP/JSON)", key);
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fail(c, "%s: %lld is not a valid value", key, (long long)json_integer_value(v));
	return true;
}

/* ---- common ---- */

static bool key_values(ck *c, json_t *arr, const char *name);

static bool any_value(ck *c, json_t *v)
{
	static const char *const members[] = {"stringValue", "boolValue", "intValue", "doubleValue",
					      "arrayValue", "kvlistValue", "bytesValue", NULL};
	json_t *m;
	size_t n = 0, old, i;
	json_t *item;

	if (!only_keys(c, v, members))
		return false;
	for (const char *const *k = members; *k; k++)
		n += json_object_get(v, *k) != NULL;
	if (n > 1)
		return fail(c, "more than one member of the AnyValue oneof");
	if ((m = json_object_get(v, "stringValue")) && !json_is_string(m))
		return fail(c, "stringValue must be a string");
	if ((m = json_object_get(v, "boolValue")) && !json_is_boolean(m))
		return fail(c, "boolValue must be true or false");
	if (!int64_field(c, v, "intValue", false, true, NULL))
		return false;
	if ((m = json_object_get(v, "doubleValue")) && !number_ok(m))
		return fail(c, "doubleValue must be a number");
	if ((m = json_object_get(v, "arrayValue"))) {
		old = enter(c, "arrayValue", 0);
		if (!only_keys(c, m, KEYS("values")))
			return false;
		json_array_foreach(json_object_get(m, "values"), i, item) {
			size_t o2 = enter(c, NULL, (long)i);
			if (!any_value(c, item))
				return false;
			leave(c, o2);
		}
		leave(c, old);
	}
	if ((m = json_object_get(v, "kvlistValue"))) {
		old = enter(c, "kvlistValue", 0);
		if (!only_keys(c, m, KEYS("values")) ||
		    !key_values(c, json_object_get(m, "values"), "values"))
			return false;
		leave(c, old);
	}
	return true;
}

static bool key_values(ck *c, json_t *arr, const char *name)
{
	size_t i, j, old;
	json_t *kv, *other;

	if (!arr)
		return true;
	old = enter(c, name, 0);
	if (!json_is_array(arr))
		return fail(c, "not an array");
	json_array_foreach(arr, i, kv) {
		size_t o2 = enter(c, NULL, (long)i);
		const char *key;
		if (!only_keys(c, kv, KEYS("key", "value")) || !string_field(c, kv, "key", true))
			return false;
		key = json_string_value(json_object_get(kv, "key"));
		json_array_foreach(arr, j, other)
			if (j < i && !strcmp(key, json_string_value(json_object_get(other, "key"))))
				return fail(c, "attribute key \"%s\" appears twice", key);
		if (json_object_get(kv, "value")) {
			size_t o3 = enter(c, "value", 0);
			if (!any_value(c, json_object_get(kv, "value")))
				return false;
			leave(c, o3);
		}
		leave(c, o2);
	}
	leave(c, old);
	return true;
}

static bool resource(ck *c, json_t *r)
{
	size_t old = enter(c, "resource", 0);

	if (!only_keys(c, r, KEYS("attributes", "droppedAttributesCount", "entityRefs")) ||
	    !key_values(c, json_object_get(r, "attributes"), "attributes") ||
	    !uint32_field(c, r, "droppedAttributesCount", 0xffffffffLL))
		return false;
	leave(c, old);
	return true;
}

static bool scope(ck *c, json_t *s)
{
	size_t old;

	if (!s)
		return true;
	old = enter(c, "scope", 0);
	if (!only_keys(c, s, KEYS("name", "version", "attributes", "droppedAttributesCount")) ||
	    !string_field(c, s, "name", false) || !string_field(c, s, "version", false) ||
	    !key_values(c, json_object_get(s, "attributes"), "attributes"))
		return false;
	leave(c, old);
	return true;
}

/* Calls fn for each element of obj[key] (an array, maybe absent). */
static bool each(ck *c, json_t *obj, const char *key, bool (*fn)(ck *, json_t *))
{
	json_t *arr = json_object_get(obj, key), *item;
	size_t i, old;

	if (!arr)
		return true;
	old = enter(c, key, 0);
	if (!json_is_array(arr))
		return fail(c, "not an array");
	json_array_foreach(arr, i, item) {
		size_t o2 = enter(c, NULL, (long)i);
		if (!fn(c, item))
			return false;
		leave(c, o2);
	}
	leave(c, old);
	return true;
}

/* ---- traces ---- */

static bool event(ck *c, json_t *e)
{
	return only_keys(c, e, KEYS("timeUnixNano", "name", "attributes",
				    "droppedAttributesCount")) &&
	       int64_field(c, e, "timeUnixNano", true, false, NULL) &&
	       string_field(c, e, "name", true) &&
	       key_values(c, json_object_get(e, "attributes"), "attributes") &&
	       uint32_field(c, e, "droppedAttributesCount", 0xffffffffLL);
}

static bool link_(ck *c, json_t *l)
{
	return only_keys(c, l, KEYS("traceId", "spanId", "traceState", "attributes",
				    "droppedAttributesCount", "flags")) &&
	       hex_id(c, l, "traceId", 32, true) && hex_id(c, l, "spanId", 16, true) &&
	       key_values(c, json_object_get(l, "attributes"), "attributes");
}

static bool span(ck *c, json_t *s)
{
	unsigned long long start = 0, end = 0;
	json_t *st = json_object_get(s, "status");
	const char *parent = json_string_value(json_object_get(s, "parentSpanId"));

	if (!only_keys(c, s, KEYS("traceId", "spanId", "traceState", "parentSpanId", "flags",
				  "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
				  "attributes", "droppedAttributesCount", "events",
				  "droppedEventsCount", "links", "droppedLinksCount", "status")) ||
	    !hex_id(c, s, "traceId", 32, true) || !hex_id(c, s, "spanId", 16, true) ||
	    !hex_id(c, s, "parentSpanId", 16, false) || !string_field(c, s, "name", true) ||
	    !enum_field(c, s, "kind", 1, 5, true) ||
	    !int64_field(c, s, "startTimeUnixNano", true, false, &start) ||
	    !int64_field(c, s, "endTimeUnixNano", true, false, &end) ||
	    !uint32_field(c, s, "flags", 0x3ff) ||
	    !uint32_field(c, s, "droppedAttributesCount", 0xffffffffLL) ||
	    !uint32_field(c, s, "droppedEventsCount", 0xffffffffLL) ||
	    !string_field(c, s, "traceState", false) ||
	    !key_values(c, json_object_get(s, "attributes"), "attributes") ||
	    !each(c, s, "events", event) || !each(c, s, "links", link_))
		return false;
	if (end < start)
		return fail(c, "ends before it starts");
	if (start < 1000000000000000000ULL)
		return fail(c, "startTimeUnixNano does not look like nanoseconds since 1970");
	if (parent && !strcmp(parent, json_string_value(json_object_get(s, "spanId"))))
		return fail(c, "is its own parent");
	if (st) {
		size_t old = enter(c, "status", 0);
		if (!only_keys(c, st, KEYS("code", "message")) ||
		    !enum_field(c, st, "code", 0, 2, false) || !string_field(c, st, "message", false))
			return false;
		if (json_object_get(st, "message") &&
		    json_integer_value(json_object_get(st, "code")) != 2)
			return fail(c, "a status message without code ERROR (2)");
		leave(c, old);
	}
	return true;
}

static bool scope_spans(ck *c, json_t *ss)
{
	return only_keys(c, ss, KEYS("scope", "spans", "schemaUrl")) &&
	       scope(c, json_object_get(ss, "scope")) && each(c, ss, "spans", span);
}

static bool resource_spans(ck *c, json_t *rs)
{
	return only_keys(c, rs, KEYS("resource", "scopeSpans", "schemaUrl")) &&
	       (!json_object_get(rs, "resource") || resource(c, json_object_get(rs, "resource"))) &&
	       each(c, rs, "scopeSpans", scope_spans);
}

/* ---- metrics ---- */

static bool number_point(ck *c, json_t *p)
{
	int n = (json_object_get(p, "asInt") != NULL) + (json_object_get(p, "asDouble") != NULL);

	if (!only_keys(c, p, KEYS("attributes", "startTimeUnixNano", "timeUnixNano", "asDouble",
				  "asInt", "exemplars", "flags")) ||
	    !key_values(c, json_object_get(p, "attributes"), "attributes") ||
	    !int64_field(c, p, "startTimeUnixNano", false, false, NULL) ||
	    !int64_field(c, p, "timeUnixNano", true, false, NULL) ||
	    !int64_field(c, p, "asInt", false, true, NULL))
		return false;
	if (n != 1)
		return fail(c, "a data point needs exactly one of asInt and asDouble");
	if (json_object_get(p, "asDouble") && !number_ok(json_object_get(p, "asDouble")))
		return fail(c, "asDouble must be a number");
	return true;
}

static bool histogram_point(ck *c, json_t *p)
{
	json_t *buckets = json_object_get(p, "bucketCounts"), *bounds, *b;
	unsigned long long count = 0, total = 0;
	size_t i;

	if (!only_keys(c, p, KEYS("attributes", "startTimeUnixNano", "timeUnixNano", "count",
				  "sum", "bucketCounts", "explicitBounds", "exemplars", "flags",
				  "min", "max")) ||
	    !key_values(c, json_object_get(p, "attributes"), "attributes") ||
	    !int64_field(c, p, "startTimeUnixNano", false, false, NULL) ||
	    !int64_field(c, p, "timeUnixNano", true, false, NULL) ||
	    !int64_field(c, p, "count", false, false, &count))
		return false;
	bounds = json_object_get(p, "explicitBounds");
	if (!json_is_array(buckets) || !json_is_array(bounds))
		return fail(c, "bucketCounts and explicitBounds must be arrays");
	if (json_array_size(buckets) != json_array_size(bounds) + 1)
		return fail(c, "%zu bucketCounts for %zu explicitBounds", json_array_size(buckets),
			    json_array_size(bounds));
	json_array_foreach(buckets, i, b) {
		const char *s = json_string_value(b);
		if (!s || !is_decimal(s, false))
			return fail(c, "bucketCounts[%zu] must be a decimal string", i);
		total += strtoull(s, NULL, 10);
	}
	if (total != count)
		return fail(c, "the buckets hold %llu values, count says %llu", total, count);
	json_array_foreach(bounds, i, b) {
		if (!json_is_number(b))
			return fail(c, "explicitBounds[%zu] must be a number", i);
		if (i && json_number_value(b) <= json_number_value(json_array_get(bounds, i - 1)))
			return fail(c, "explicitBounds do not strictly increase at %zu", i);
	}
	for (const char *const *k = KEYS("sum", "min", "max"); *k; k++)
		if (json_object_get(p, *k) && !number_ok(json_object_get(p, *k)))
			return fail(c, "%s must be a number", *k);
	if (json_object_get(p, "min") && json_object_get(p, "max") &&
	    json_number_value(json_object_get(p, "min")) >
		    json_number_value(json_object_get(p, "max")))
		return fail(c, "min > max");
	return true;
}

static bool metric(ck *c, json_t *m)
{
	static const char *const kinds[] = {"gauge", "sum", "histogram", "exponentialHistogram",
					    "summary", NULL};
	json_t *data = NULL;
	const char *kind = NULL;
	int n = 0;
	size_t old;

	if (!only_keys(c, m, KEYS("name", "description", "unit", "gauge", "sum", "histogram",
				  "exponentialHistogram", "summary", "metadata")) ||
	    !string_field(c, m, "name", true) || !string_field(c, m, "unit", false) ||
	    !string_field(c, m, "description", false))
		return false;
	for (const char *const *k = kinds; *k; k++)
		if (json_object_get(m, *k)) {
			n++;
			kind = *k;
			data = json_object_get(m, *k);
		}
	if (n != 1)
		return fail(c, "a metric needs exactly one data kind");
	old = enter(c, kind, 0);
	if (!strcmp(kind, "gauge")) {
		if (!only_keys(c, data, KEYS("dataPoints")) ||
		    !each(c, data, "dataPoints", number_point))
			return false;
	} else if (!strcmp(kind, "sum")) {
		json_t *mono = json_object_get(data, "isMonotonic");
		if (!only_keys(c, data, KEYS("dataPoints", "aggregationTemporality", "isMonotonic")) ||
		    !enum_field(c, data, "aggregationTemporality", 1, 2, true) ||
		    !each(c, data, "dataPoints", number_point))
			return false;
		if (mono && !json_is_boolean(mono))
			return fail(c, "isMonotonic must be true or false");
	} else if (!strcmp(kind, "histogram")) {
		if (!only_keys(c, data, KEYS("dataPoints", "aggregationTemporality")) ||
		    !enum_field(c, data, "aggregationTemporality", 1, 2, true) ||
		    !each(c, data, "dataPoints", histogram_point))
			return false;
	} else {
		return fail(c, "unexpected kind %s", kind);
	}
	if (!json_array_size(json_object_get(data, "dataPoints")))
		return fail(c, "no data points");
	leave(c, old);
	return true;
}

static bool scope_metrics(ck *c, json_t *sm)
{
	return only_keys(c, sm, KEYS("scope", "metrics", "schemaUrl")) &&
	       scope(c, json_object_get(sm, "scope")) && each(c, sm, "metrics", metric);
}

static bool resource_metrics(ck *c, json_t *rm)
{
	return only_keys(c, rm, KEYS("resource", "scopeMetrics", "schemaUrl")) &&
	       (!json_object_get(rm, "resource") || resource(c, json_object_get(rm, "resource"))) &&
	       each(c, rm, "scopeMetrics", scope_metrics);
}

int tu_otlp_check(const char *body, const char *signal, char *why, size_t size)
{
	ck c = {.why = why, .size = size};
	json_error_t jerr;
	json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	bool ok;

	if (!root) {
		snprintf(why, size, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
			 jerr.column);
		return -1;
	}
	if (json_object_get(root, "resourceSpans") && (!signal || !strcmp(signal, "traces")))
		ok = only_keys(&c, root, KEYS("resourceSpans")) &&
		     each(&c, root, "resourceSpans", resource_spans);
	else if (json_object_get(root, "resourceMetrics") &&
		 (!signal || !strcmp(signal, "metrics")))
		ok = only_keys(&c, root, KEYS("resourceMetrics")) &&
		     each(&c, root, "resourceMetrics", resource_metrics);
	else
		ok = fail(&c, "not an Export%sServiceRequest",
			  signal && !strcmp(signal, "metrics") ? "Metrics" : "Trace");
	json_decref(root);
	return ok ? 0 : -1;
}

int tu_otlp_check_lines(const char *text, char *why, size_t size)
{
	int n = 0, no = 0;

	while (text && *text) {
		size_t len = strcspn(text, "\n");
		char *line = strndup(text, len), msg[600];

		no++;
		if (len) {
			if (tu_otlp_check(line, NULL, msg, sizeof(msg)) < 0) {
				snprintf(why, size, "line %d: %s", no, msg);
				free(line);
				return -1;
			}
			n++;
		}
		free(line);
		text += len + (text[len] == '\n');
	}
	return n;
}

static void collect_body(json_t *out, json_t *root, const char *what)
{
	bool spans = !strcmp(what, "spans");
	json_t *rs = json_object_get(root, spans ? "resourceSpans" : "resourceMetrics"), *r, *ss, *it;
	size_t i, j, k;

	json_array_foreach(rs, i, r) {
		json_t *rattrs = json_object_get(json_object_get(r, "resource"), "attributes");
		const char *service = tu_otlp_attr_str(json_object_get(r, "resource"), "service.name");
		json_array_foreach(json_object_get(r, spans ? "scopeSpans" : "scopeMetrics"), j, ss) {
			json_array_foreach(json_object_get(ss, what), k, it) {
				json_t *copy = json_deep_copy(it);
				if (spans)
					json_object_set_new(copy, "_service",
							    json_string(service ? service : ""));
				else
					json_object_set(copy, "_resource", rattrs ? rattrs : json_null());
				json_array_append_new(out, copy);
			}
		}
	}
}

json_t *tu_otlp_collect(const char *text, const char *what)
{
	json_t *out = json_array();

	while (text && *text) {
		size_t len = strcspn(text, "\n");
		json_t *root = len ? json_loadb(text, len, 0, NULL) : NULL;

		if (root)
			collect_body(out, root, what);
		json_decref(root);
		text += len + (text[len] == '\n');
	}
	return out;
}

json_t *tu_otlp_find(json_t *items, const char *name)
{
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		const char *n = json_string_value(json_object_get(it, "name"));
		if (n && !strcmp(n, name))
			return it;
	}
	return NULL;
}

size_t tu_otlp_count_named(json_t *items, const char *name)
{
	size_t i, n = 0;
	json_t *it;

	json_array_foreach(items, i, it) {
		const char *s = json_string_value(json_object_get(it, "name"));
		n += s && !strcmp(s, name);
	}
	return n;
}

json_t *tu_otlp_attr(json_t *item, const char *key)
{
	json_t *attrs = json_is_array(item) ? item : json_object_get(item, "attributes"), *kv;
	size_t i;

	json_array_foreach(attrs, i, kv) {
		const char *k = json_string_value(json_object_get(kv, "key"));
		if (k && !strcmp(k, key))
			return json_object_get(kv, "value");
	}
	return NULL;
}

const char *tu_otlp_attr_str(json_t *item, const char *key)
{
	return json_string_value(json_object_get(tu_otlp_attr(item, key), "stringValue"));
}

long long tu_otlp_attr_int(json_t *item, const char *key)
{
	const char *s = json_string_value(json_object_get(tu_otlp_attr(item, key), "intValue"));

	return s ? strtoll(s, NULL, 10) : LLONG_MIN;
}

extern char **environ;

void tu_otel_clear_env(void)
{
	static const char *const names[] = {"DAYTONA_OTEL_ENABLED",
					    "DAYTONA_EXPERIMENTAL_OTEL_ENABLED", "TRACEPARENT",
					    "TRACESTATE", "DTN_OTEL_FLUSH_TIMEOUT",
					    "DAYTONA_SANDBOX_ID", NULL};
	bool again = true;

	for (const char *const *n = names; *n; n++)
		unsetenv(*n);
	/* unsetenv changes environ: start over after each removal */
	while (again) {
		again = false;
		for (char **e = environ; e && *e; e++) {
			if (!strncmp(*e, "OTEL_", 5)) {
				char name[256];
				snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
				unsetenv(name);
				again = true;
				break;
			}
		}
	}
}
