/*
 * otel.c - the telemetry provider: creation from options and the environment, the process-wide
 * default, flush, shutdown within a time budget, counters and the human summary.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "otel_internal.h"

static _Atomic(dtn_otel *) default_otel;

void dtn__otel_warn(void *otel, const char *fmt, ...)
{
	dtn_otel *o = otel;
	char line[1024];
	va_list ap;

	if (!o || !o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o->log(line, o->log_payload);
}

void dtn__otel_ref(dtn_otel *o)
{
	atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

static void provider_free(dtn_otel *o)
{
	if (o->file)
		fclose(o->file);
	if (o->http)
		dtn__http_free(o->http);
	dtn__free(o->ring);
	dtn__metrics_free(o);
	for (size_t i = 0; i < o->nsummary; i++)
		dtn__free(o->summary[i].name);
	dtn__free(o->summary);
	dtn__oattr_free_list(o->resource);
	dtn__otel_config_free(&o->cfg);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->mlock);
	pthread_cond_destroy(&o->wake);
	pthread_cond_destroy(&o->done);
	dtn__free(o);
}

void dtn__otel_unref(dtn_otel *o)
{
	if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
		provider_free(o);
}

static int sync_init(dtn_otel *o)
{
	pthread_condattr_t ca;
	int rc = 0;

	if (pthread_condattr_init(&ca) != 0)
		return DTN_ENOMEM;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&o->lock, NULL) != 0 || pthread_mutex_init(&o->mlock, NULL) != 0 ||
	    pthread_cond_init(&o->wake, &ca) != 0 || pthread_cond_init(&o->done, &ca) != 0)
		rc = DTN_ENOMEM;
	pthread_condattr_destroy(&ca);
	return rc;
}

int dtn_otel_new(dtn_otel **out, const dtn_otel_opts *opts, dtn_error *err)
{
	dtn_otel *o;
	int rc;

	if (!out)
		return dtn__error_set(err, DTN_EINVAL, "dtn_otel_new: out is NULL");
	*out = NULL;
	if (!(o = dtn__calloc(1, sizeof(*o))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	atomic_init(&o->refs, 1);
	if (opts) {
		o->log = opts->log;
		o->log_payload = opts->log_payload;
	}
	if (sync_init(o) < 0) {
		dtn__free(o);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	if ((rc = dtn__otel_config_load(&o->cfg, opts, dtn__otel_warn, o, err)) < 0)
		goto fail;
	o->start_ns = dtn__otel_now_ns();
	if ((rc = dtn__otel_resource_build(o, opts)) < 0) {
		dtn__error_set(err, rc, "out of memory");
		goto fail;
	}
	if (o->cfg.enabled) {
		dtn__usage_src_init(&o->usage_src);
		if (o->cfg.trace_file && !(o->file = fopen(o->cfg.trace_file, "we"))) {
			rc = dtn__error_set(err, DTN_EIO, "%s: %s", o->cfg.trace_file,
					    strerror(errno));
			dtn__error_at(err, o->cfg.trace_file, 0, 0);
			goto fail;
		}
		if ((rc = dtn__export_start(o, err)) < 0)
			goto fail;
	}
	*out = o;
	return 0;
fail:
	dtn__otel_unref(o);
	return rc;
}

bool dtn_otel_is_enabled(const dtn_otel *otel)
{
	return otel && otel->cfg.enabled;
}

void dtn_otel_set_default(dtn_otel *otel)
{
	atomic_store(&default_otel, otel);
}

dtn_otel *dtn_otel_default(void)
{
	return atomic_load_explicit(&default_otel, memory_order_acquire);
}

dtn_otel *dtn__otel_active(void)
{
	dtn_otel *o = dtn_otel_default();

	return o && o->cfg.enabled ? o : NULL;
}

static int64_t deadline_of(const dtn_otel *o, long timeout_ms)
{
	if (timeout_ms < 0)
		timeout_ms = o->cfg.flush_timeout_ms;
	return dtn__otel_mono_ns() + (int64_t)timeout_ms * 1000000;
}

long dtn_otel_flush_timeout(const dtn_otel *otel)
{
	return otel ? otel->cfg.flush_timeout_ms : 0;
}

int dtn_otel_flush(dtn_otel *otel, long timeout_ms)
{
	if (!otel || !otel->cfg.enabled)
		return 0;
	return dtn__export_flush(otel, deadline_of(otel, timeout_ms));
}

int dtn_otel_shutdown(dtn_otel *otel, long timeout_ms)
{
	dtn_otel *expected = otel;
	uint64_t failed, refused, dropped;
	bool done;
	int rc;

	if (!otel)
		return 0;
	failed = atomic_load(&otel->n_export_failures);
	refused = atomic_load(&otel->n_export_refused);
	dropped = atomic_load(&otel->n_dropped_shutdown);

	atomic_compare_exchange_strong(&default_otel, &expected, NULL);
	done = dtn__export_stop(otel, deadline_of(otel, timeout_ms));
	/* Data given up during the shutdown: the time ran out, or the receiver refused it (the
	 * exporter has said why). */
	refused = atomic_load(&otel->n_export_refused) - refused;
	failed = atomic_load(&otel->n_export_failures) - failed;
	if (!done || otel->abort_io || atomic_load(&otel->n_dropped_shutdown) != dropped ||
	    failed > refused)
		rc = DTN_ETIMEOUT;
	else
		rc = refused ? DTN_EHTTP : 0;
	if (!done) {
		/* The thread is stuck past the deadline; it keeps the provider (leaked by design:
		 * the process is about to end, and freeing would pull memory from under it). */
		dtn__otel_warn(otel, "the exporter did not finish within %ld ms; unsent data is "
			       "lost", timeout_ms < 0 ? otel->cfg.flush_timeout_ms
								     : timeout_ms);
		return rc;
	}
	dtn__otel_unref(otel);
	return rc;
}

void dtn_otel_get_stats(const dtn_otel *otel, dtn_otel_stats *out)
{
	dtn_otel *o = (dtn_otel *)(uintptr_t)otel;

	memset(out, 0, sizeof(*out));
	if (!o)
		return;
	out->spans_started = atomic_load(&o->n_started);
	out->spans_exported = atomic_load(&o->n_exported);
	out->spans_dropped = atomic_load(&o->n_dropped_queue) + atomic_load(&o->n_dropped_export) +
			     atomic_load(&o->n_dropped_shutdown);
	out->metric_exports = atomic_load(&o->n_metric_exports);
	out->export_failures = atomic_load(&o->n_export_failures);
	out->export_retries = atomic_load(&o->n_retries);
}

static void emit(void (*fn)(const char *, void *), void *payload, const char *fmt, ...)
	DTN__PRINTF(3, 4);

static void emit(void (*fn)(const char *, void *), void *payload, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(line, payload);
}

void dtn_otel_summary(dtn_otel *otel, void (*fn)(const char *line, void *payload),
		      void *payload)
{
	dtn_otel_stats st;
	char url[512];

	if (!otel || !fn)
		return;
	if (!otel->cfg.enabled) {
		fn("telemetry: off", payload);
		return;
	}
	dtn_otel_get_stats(otel, &st);
	emit(fn, payload, "telemetry: %llu span%s, %llu exported, %llu dropped; metrics exported "
	     "%llu time%s; %llu export failure%s, %llu retr%s",
	     (unsigned long long)st.spans_started, st.spans_started == 1 ? "" : "s",
	     (unsigned long long)st.spans_exported, (unsigned long long)st.spans_dropped,
	     (unsigned long long)st.metric_exports, st.metric_exports == 1 ? "" : "s",
	     (unsigned long long)st.export_failures, st.export_failures == 1 ? "" : "s",
	     (unsigned long long)st.export_retries, st.export_retries == 1 ? "y" : "ies");
	if (otel->cfg.traces.otlp) {
		dtn__otel_url_plain(url, sizeof(url), false, otel->cfg.traces.url);
		emit(fn, payload, "telemetry: traces to %s%s", url,
		     otel->cfg.traces.gzip ? " (gzip)" : "");
	}
	if (otel->cfg.metrics.otlp) {
		dtn__otel_url_plain(url, sizeof(url), false, otel->cfg.metrics.url);
		emit(fn, payload, "telemetry: metrics to %s%s", url,
		     otel->cfg.metrics.gzip ? " (gzip)" : "");
	}
	if (otel->cfg.trace_file)
		emit(fn, payload, "telemetry: trace file %s", otel->cfg.trace_file);
	pthread_mutex_lock(&otel->mlock);
	for (size_t i = 0; i < otel->nsummary; i++) {
		const dtn__summary_entry *e = &otel->summary[i];
		emit(fn, payload, "  %-40s %5llu x %10.1f ms (max %.1f ms)%s", e->name,
		     (unsigned long long)e->count, (double)e->total_ns / 1e6,
		     (double)e->max_ns / 1e6, e->errors ? "  errors" : "");
	}
	pthread_mutex_unlock(&otel->mlock);
}
