/*
 * metrics.c - the metric store: sums, explicit-bucket histograms and gauges, one data point per
 * attribute set, aggregated cumulatively under the provider's metric lock. Recording is not on
 * anyone's hot path (a few per operation), so a list search under a mutex is enough.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otel_internal.h"

/* Points per metric beyond which new attribute sets are dropped (cardinality guard). */
#define MAX_POINTS 2000

/* OpenTelemetry's default bounds, and the HTTP semantic conventions' bounds for seconds. */
static const double default_bounds[] = {0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500,
					5000, 7500, 10000};
static const double seconds_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
					1, 2.5, 5, 7.5, 10};
/* Builds and remote states take minutes. */
static const double long_seconds_bounds[] = {1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800,
					     3600};
static const double size_bounds[] = {1024, 16384, 65536, 262144, 1048576, 4194304, 16777216,
				     67108864, 268435456, 1073741824, 4294967296.0};

static const struct {
	const char *name;
	const double *bounds;
	size_t n;
} known[] = {
	{"dtn.build.duration", long_seconds_bounds, DTN__ARRAY_LEN(long_seconds_bounds)},
	{"dtn.snapshot.state.duration", long_seconds_bounds, DTN__ARRAY_LEN(long_seconds_bounds)},
	{"dtn.context.upload.size", size_bounds, DTN__ARRAY_LEN(size_bounds)},
	{"http.client.request.duration", seconds_bounds, DTN__ARRAY_LEN(seconds_bounds)},
};

static void pick_bounds(const dtn_metric_def *def, const double **b, size_t *n)
{
	if (def->bounds && def->nbounds) {
		*b = def->bounds;
		*n = def->nbounds;
		return;
	}
	for (size_t i = 0; i < DTN__ARRAY_LEN(known); i++)
		if (strcmp(def->name, known[i].name) == 0) {
			*b = known[i].bounds;
			*n = known[i].n;
			return;
		}
	if (def->unit && strcmp(def->unit, "s") == 0) {
		*b = seconds_bounds;
		*n = DTN__ARRAY_LEN(seconds_bounds);
	} else {
		*b = default_bounds;
		*n = DTN__ARRAY_LEN(default_bounds);
	}
}

static bool bounds_ok(const double *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(b[i]) || (i && b[i] <= b[i - 1]))
			return false;
	return true;
}

/* ---- the attribute set as a canonical key ---- */

static bool usable(const dtn_attr *a)
{
	if (!a->key || !*a->key)
		return false;
	if (a->type == DTN_ATTR_TYPE_STRING)
		return a->value.s != NULL;
	if (a->type == DTN_ATTR_TYPE_STRV)
		return a->value.v != NULL;
	return a->type >= DTN_ATTR_TYPE_INT && a->type <= DTN_ATTR_TYPE_BOOL;
}

/* The usable attributes sorted by key, the last one of a repeated key winning. */
static size_t canonical_order(const dtn_attr *attrs, size_t n, const dtn_attr **out, size_t max)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j;
		if (!usable(&attrs[i]))
			continue;
		for (j = 0; j < m; j++)
			if (strcmp(out[j]->key, attrs[i].key) == 0)
				break;
		if (j < m) {
			out[j] = &attrs[i];
			continue;
		}
		if (m == max)
			break;
		out[m++] = &attrs[i];
	}
	for (size_t i = 1; i < m; i++) {
		const dtn_attr *a = out[i];
		size_t j = i;
		while (j && strcmp(out[j - 1]->key, a->key) > 0) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = a;
	}
	return m;
}

static void key_add(dtn__buf *b, const dtn_attr *a)
{
	dtn__buf_puts(b, a->key);
	dtn__buf_printf(b, "\x1f%d\x1f", (int)a->type);
	switch (a->type) {
	case DTN_ATTR_TYPE_STRING:
		dtn__buf_puts(b, a->value.s);
		break;
	case DTN_ATTR_TYPE_INT:
		dtn__buf_printf(b, "%lld", (long long)a->value.i);
		break;
	case DTN_ATTR_TYPE_DOUBLE:
		dtn__buf_printf(b, "%.17g", a->value.d);
		break;
	case DTN_ATTR_TYPE_BOOL:
		dtn__buf_putc(b, a->value.b ? '1' : '0');
		break;
	default:
		for (const char *const *v = a->value.v; *v; v++) {
			dtn__buf_puts(b, *v);
			dtn__buf_putc(b, '\x1d');
		}
	}
	dtn__buf_putc(b, '\x1e');
}

/* ---- the store ---- */

static dtn__metric *find_metric(dtn_otel *o, const dtn_metric_def *def)
{
	const double *bounds;
	size_t nbounds;
	dtn__metric *m;

	for (size_t i = 0; i < o->nmetrics; i++)
		if (strcmp(o->metrics[i].name, def->name) == 0)
			return o->metrics[i].kind == def->kind ? &o->metrics[i] : NULL;
	if (o->nmetrics == o->cap_metrics) {
		size_t cap = o->cap_metrics ? o->cap_metrics * 2 : 16;
		dtn__metric *p = dtn__realloc(o->metrics, cap * sizeof(*p));
		if (!p)
			return NULL;
		o->metrics = p;
		o->cap_metrics = cap;
	}
	m = &o->metrics[o->nmetrics];
	memset(m, 0, sizeof(*m));
	m->kind = def->kind;
	m->integer = def->integer;
	m->name = dtn__strdup(def->name);
	m->unit = dtn__strdup(def->unit ? def->unit : "");
	m->description = def->description ? dtn__strdup(def->description) : NULL;
	if (def->kind == DTN_METRIC_HISTOGRAM) {
		pick_bounds(def, &bounds, &nbounds);
		if (!bounds_ok(bounds, nbounds)) {
			bounds = default_bounds;
			nbounds = DTN__ARRAY_LEN(default_bounds);
		}
		if ((m->bounds = dtn__malloc(nbounds * sizeof(double)))) {
			memcpy(m->bounds, bounds, nbounds * sizeof(double));
			m->nbounds = nbounds;
		}
	}
	if (!m->name || !m->unit || (def->description && !m->description) ||
	    (def->kind == DTN_METRIC_HISTOGRAM && !m->bounds)) {
		dtn__free(m->name);
		dtn__free(m->unit);
		dtn__free(m->description);
		dtn__free(m->bounds);
		return NULL;
	}
	o->nmetrics++;
	return m;
}

static dtn__mpoint *find_point(dtn_otel *o, dtn__metric *m, const char *key,
			       const dtn_attr *const *sorted, size_t n)
{
	dtn__mpoint *p, **tail = &m->points;

	for (p = m->points; p; p = p->next) {
		if (strcmp(p->key, key) == 0)
			return p;
		tail = &p->next;
	}
	if (m->npoints >= MAX_POINTS) {
		atomic_fetch_add(&o->n_dropped_points, 1);
		return NULL;
	}
	if (!(p = dtn__calloc(1, sizeof(*p))))
		return NULL;
	p->key = dtn__strdup(key);
	for (size_t i = 0; i < n && p->key; i++)
		if (dtn__oattr_append(&p->attrs, sorted[i], 1) < 0)
			goto fail;
	if (!p->key)
		goto fail;
	if (m->kind == DTN_METRIC_HISTOGRAM &&
	    !(p->buckets = dtn__calloc(m->nbounds + 1, sizeof(uint64_t))))
		goto fail;
	p->start_ns = o->start_ns;
	*tail = p;
	m->npoints++;
	return p;
fail:
	dtn__oattr_free_list(p->attrs);
	dtn__free(p->key);
	dtn__free(p);
	return NULL;
}

static void update(dtn__metric *m, dtn__mpoint *p, double value)
{
	size_t i;

	switch (m->kind) {
	case DTN_METRIC_COUNTER:
	case DTN_METRIC_UPDOWN:
		p->value += value;
		break;
	case DTN_METRIC_GAUGE:
		p->value = value;
		break;
	case DTN_METRIC_HISTOGRAM:
		if (p->count == 0 || value < p->min)
			p->min = value;
		if (p->count == 0 || value > p->max)
			p->max = value;
		p->count++;
		p->sum += value;
		if (value < 0)
			p->negative = true;
		for (i = 0; i < m->nbounds && value > m->bounds[i]; i++)
			;
		p->buckets[i]++;
		break;
	}
}

void dtn__metric_record(dtn_otel *o, const dtn_metric_def *def, double value,
			const dtn_attr *attrs, size_t nattrs)
{
	const dtn_attr *sorted[64];
	dtn__buf key = DTN__BUF_INIT;
	dtn__metric *m;
	dtn__mpoint *p;
	size_t n;

	if (!o || !o->cfg.enabled || !def || !def->name || !*def->name || !isfinite(value))
		return;
	if (def->kind < DTN_METRIC_COUNTER || def->kind > DTN_METRIC_GAUGE)
		return;
	if (def->kind == DTN_METRIC_COUNTER && value < 0)
		return;
	n = canonical_order(attrs ? attrs : NULL, attrs ? nattrs : 0, sorted,
			    DTN__ARRAY_LEN(sorted));
	for (size_t i = 0; i < n; i++)
		key_add(&key, sorted[i]);
	if (key.failed)
		return;
	pthread_mutex_lock(&o->mlock);
	if ((m = find_metric(o, def)) && (p = find_point(o, m, dtn__buf_cstr(&key), sorted, n))) {
		update(m, p, value);
		p->time_ns = dtn__otel_now_ns();
		o->mgen++;
	}
	pthread_mutex_unlock(&o->mlock);
	dtn__buf_free(&key);
}

void dtn__metrics_free(dtn_otel *o)
{
	for (size_t i = 0; i < o->nmetrics; i++) {
		dtn__metric *m = &o->metrics[i];
		dtn__mpoint *p = m->points;

		while (p) {
			dtn__mpoint *next = p->next;
			dtn__oattr_free_list(p->attrs);
			dtn__free(p->key);
			dtn__free(p->buckets);
			dtn__free(p);
			p = next;
		}
		dtn__free(m->name);
		dtn__free(m->unit);
		dtn__free(m->description);
		dtn__free(m->bounds);
	}
	dtn__free(o->metrics);
	o->metrics = NULL;
	o->nmetrics = o->cap_metrics = 0;
}

/* ---- the public entry points, on the default provider ---- */

void dtn_metric_record(const dtn_metric_def *def, double value, const dtn_attr *attrs,
		       size_t nattrs)
{
	dtn__metric_record(dtn__otel_active(), def, value, attrs, nattrs);
}

void dtn_counter_add(const char *name, const char *unit, int64_t value, const dtn_attr *attrs,
		     size_t nattrs)
{
	dtn_metric_def def = {.name = name, .unit = unit, .kind = DTN_METRIC_COUNTER,
			      .integer = true};

	dtn__metric_record(dtn__otel_active(), &def, (double)value, attrs, nattrs);
}

void dtn_histogram_record(const char *name, const char *unit, double value,
			  const dtn_attr *attrs, size_t nattrs)
{
	dtn_metric_def def = {.name = name, .unit = unit, .kind = DTN_METRIC_HISTOGRAM};

	dtn__metric_record(dtn__otel_active(), &def, value, attrs, nattrs);
}

void dtn_gauge_set(const char *name, const char *unit, double value, const dtn_attr *attrs,
		   size_t nattrs)
{
	dtn_metric_def def = {.name = name, .unit = unit, .kind = DTN_METRIC_GAUGE};

	dtn__metric_record(dtn__otel_active(), &def, value, attrs, nattrs);
}
