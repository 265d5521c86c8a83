/*
 * export.c - the batch processor: a bounded queue of ended spans filled by any thread, and one
 * exporter thread that serialises batches and metrics to OTLP/JSON and sends them to the file
 * and the OTLP/HTTP endpoints.
 *
 * The caller never waits for the exporter: a full queue drops the span and counts it. Sending
 * follows the OTLP rules (otel.md §4): retry 429, 502, 503, 504 and connection failures with
 * exponential backoff and jitter, honouring Retry-After, never past the export's deadline;
 * give up on anything else. Shutdown bounds everything by its deadline and, when the receiver
 * does not answer in time, cancels the request in flight.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "http.h"
#include "otel_internal.h"

#define MAX_ATTEMPTS 5
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000
#define RETRY_AFTER_CAP_MS 60000
/* OTLP: bodies over 64 MiB before compression are not sent. */
#define BODY_MAX (64u << 20)

/* ---- the queue (caller side) ---- */

void dtn__export_enqueue(dtn_otel *o, dtn_span *span)
{
	bool wake = false;

	pthread_mutex_lock(&o->lock);
	if (o->closed || !o->ring) {
		pthread_mutex_unlock(&o->lock);
		atomic_fetch_add_explicit(&o->n_dropped_shutdown, 1, memory_order_relaxed);
		dtn__span_unref(span);
		return;
	}
	if (o->ring_count == o->ring_cap) {
		pthread_mutex_unlock(&o->lock);
		atomic_fetch_add_explicit(&o->n_dropped_queue, 1, memory_order_relaxed);
		dtn__span_unref(span);
		return;
	}
	o->ring[(o->ring_head + o->ring_count) % o->ring_cap] = span;
	o->ring_count++;
	/* Wake the exporter when the queue stops being empty (its delay starts then) and once per
	 * full batch, not per span. */
	wake = o->ring_count == 1 || o->ring_count == o->cfg.bsp_batch;
	pthread_mutex_unlock(&o->lock);
	if (wake)
		pthread_cond_signal(&o->wake);
}

/* ---- time ---- */

static struct timespec mono_ts(int64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};

	return ts;
}

/* Waits on o->wake until deadline (monotonic ns) or a signal; o->lock held. */
static void wait_until(dtn_otel *o, pthread_cond_t *cond, int64_t deadline)
{
	struct timespec ts = mono_ts(deadline);

	pthread_cond_timedwait(cond, &o->lock, &ts);
}

/* ---- helpers of sending ---- */

int dtn__otel_gzip(dtn__buf *out, const void *data, size_t len)
{
	z_stream z;
	unsigned char chunk[16384];
	int zrc;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper, not zlib's */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return DTN_ENOMEM;
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zrc = deflate(&z, Z_FINISH);
		if (zrc == Z_STREAM_ERROR) {
			deflateEnd(&z);
			return DTN_ERROR;
		}
		dtn__buf_add(out, (const char *)chunk, sizeof(chunk) - z.avail_out);
	} while (zrc != Z_STREAM_END);
	deflateEnd(&z);
	return out->failed ? DTN_ENOMEM : 0;
}

long dtn__otel_retry_after_ms(const char *value, int64_t now_unix_s)
{
	struct tm tm;
	char *end;
	long secs;
	const char *rest;

	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		errno = 0;
		secs = strtol(value, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno || *end || secs < 0)
			return -1;
		return secs > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : secs * 1000;
	}
	/* An HTTP-date: "Sun, 06 Nov 1994 08:49:37 GMT" */
	memset(&tm, 0, sizeof(tm));
	rest = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!rest || *rest)
		return -1;
	secs = (long)(timegm(&tm) - (time_t)now_unix_s);
	if (secs < 0)
		return 0;
	return secs > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : secs * 1000;
}

static long backoff_ms(int attempt)
{
	long d = BACKOFF_FIRST_MS;
	uint8_t r[2];
	int jitter;

	for (int i = 1; i < attempt && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	/* uniform ±20 % */
	dtn__otel_random(r, 2);
	jitter = (int)((r[0] << 8 | r[1]) % 401) - 200;
	return d + d * jitter / 1000;
}

/* Logs a rejection counted in a 200 answer's partialSuccess. */
static void partial_success(dtn_otel *o, const char *what, const char *url, const char *body)
{
	const char *p = strstr(body, "\"partialSuccess\"");
	char shown[512];

	if (!p)
		return;
	dtn__otel_url_plain(shown, sizeof(shown), false, url);
	dtn__otel_warn(o, "OTLP export of %s to %s: the receiver reported a partial success: %.300s",
		       what, shown, p);
}

/* ---- one export over HTTP, with retries ---- */

typedef struct sendjob {
	const char *what;         /* "spans", "metrics" */
	const dtn__otel_signal *sig;
	const char *body;
	size_t len;
	int64_t deadline;         /* monotonic ns */
} sendjob;

/* Sleeps until `until`; false when an abort or a shutdown deadline before then cuts it short.
 * o->lock not held. */
static bool pause_until(dtn_otel *o, int64_t until)
{
	bool ok = true;

	pthread_mutex_lock(&o->lock);
	while (dtn__otel_mono_ns() < until) {
		if (o->abort_io || (o->hard_deadline_ns && o->hard_deadline_ns <= until)) {
			ok = false;
			break;
		}
		wait_until(o, &o->wake, until);
	}
	pthread_mutex_unlock(&o->lock);
	return ok;
}

static int64_t effective_deadline(dtn_otel *o, int64_t deadline)
{
	int64_t hard;

	pthread_mutex_lock(&o->lock);
	hard = o->hard_deadline_ns;
	pthread_mutex_unlock(&o->lock);
	return hard && hard < deadline ? hard : deadline;
}

/* One attempt; returns 1 to retry after *delay ms, 0 when done, <0 when failed for good. */
static int attempt(dtn_otel *o, const sendjob *job, const char *const *headers, int n,
		   long *delay)
{
	dtn__http_request req = {0};
	dtn__http_response resp = DTN__HTTP_RESPONSE_INIT;
	dtn_error err;
	int64_t left = effective_deadline(o, job->deadline) - dtn__otel_mono_ns();
	long timeout = job->sig->timeout_ms;
	char shown[512];
	int rc, result;

	dtn_error_clear(&err);
	if (left <= 0)
		return DTN_ETIMEOUT;
	if (timeout <= 0 || timeout > left / 1000000)
		timeout = (long)(left / 1000000) + 1;
	req.method = "POST";
	req.url = job->sig->url;
	req.headers = headers;
	req.body = job->body;
	req.body_len = job->len;
	req.timeout_ms = timeout;
	req.idempotent = -1; /* the retries are ours */
	rc = dtn__http_do(o->http, &req, &resp, &err);
	dtn__otel_url_plain(shown, sizeof(shown), false, job->sig->url);
	if (rc == 0 && resp.status >= 200 && resp.status < 300) {
		partial_success(o, job->what, job->sig->url, dtn__buf_cstr(&resp.body));
		result = 0;
	} else if (rc == 0 && (resp.status == 429 || resp.status == 502 || resp.status == 503 ||
			       resp.status == 504)) {
		long ra = dtn__otel_retry_after_ms(dtn__http_response_header(&resp, "Retry-After"),
						   dtn__otel_now_ns() / 1000000000);
		*delay = ra >= 0 ? ra : backoff_ms(n);
		result = 1;
		if (n >= MAX_ATTEMPTS)
			dtn__otel_warn(o, "OTLP export of %s to %s: HTTP %ld after %d attempts; "
				       "dropped", job->what, shown, resp.status, n);
	} else if (rc == 0) {
		dtn__otel_warn(o, "OTLP export of %s to %s: HTTP %ld: %.200s", job->what, shown,
			       resp.status, dtn__buf_cstr(&resp.body));
		result = DTN_EHTTP;
	} else if (rc == DTN_ECONNECT || rc == DTN_ETIMEOUT) {
		*delay = backoff_ms(n);
		result = 1;
		if (n >= MAX_ATTEMPTS)
			dtn__otel_warn(o, "OTLP export of %s: %s; dropped", job->what, err.message);
	} else {
		if (rc != DTN_EINTR)
			dtn__otel_warn(o, "OTLP export of %s: %s", job->what, err.message);
		result = rc;
	}
	dtn__http_response_clear(&resp);
	return result == 1 && n >= MAX_ATTEMPTS ? DTN_ECONNECT : result;
}

static int send_http(dtn_otel *o, const sendjob *job)
{
	dtn__strv headers = {0};
	int rc = 0;
	long delay = 0;

	if (dtn__strv_push(&headers, "Content-Type: application/json") < 0 ||
	    (job->sig->gzip && dtn__strv_push(&headers, "Content-Encoding: gzip") < 0) ||
	    dtn__strv_push(&headers, "Expect:") < 0)
		rc = DTN_ENOMEM;
	for (size_t i = 0; rc == 0 && i < job->sig->headers.len; i++)
		rc = dtn__strv_push(&headers, job->sig->headers.items[i]);
	for (int n = 1; rc == 0; n++) {
		int64_t now, until, deadline;
		if (o->abort_io) {
			rc = DTN_EINTR;
			break;
		}
		if ((rc = attempt(o, job, (const char *const *)headers.items, n, &delay)) != 1)
			break;
		rc = 0;
		atomic_fetch_add(&o->n_retries, 1);
		now = dtn__otel_mono_ns();
		until = now + (int64_t)delay * 1000000;
		deadline = effective_deadline(o, job->deadline);
		if (until >= deadline || !pause_until(o, until)) {
			char shown[512];
			dtn__otel_url_plain(shown, sizeof(shown), false, job->sig->url);
			dtn__otel_warn(o, "OTLP export of %s to %s: no time left to retry; dropped",
				       job->what, shown);
			rc = DTN_ETIMEOUT;
			break;
		}
	}
	dtn__strv_free(&headers);
	if (rc < 0)
		atomic_fetch_add(&o->n_export_failures, 1);
	if (rc == DTN_EHTTP)
		atomic_fetch_add(&o->n_export_refused, 1);
	return rc;
}

static int send_body(dtn_otel *o, const dtn__otel_signal *sig, const char *what,
		     const char *body, int64_t deadline)
{
	size_t len = strlen(body);
	dtn__buf gz = DTN__BUF_INIT;
	sendjob job = {what, sig, body, len, deadline};
	int rc = 0;

	if (o->file) {
		fputs(body, o->file);
		fputc('\n', o->file);
		if (fflush(o->file) != 0) {
			dtn__otel_warn(o, "%s: %s", o->cfg.trace_file, strerror(errno));
			rc = DTN_EIO;
		}
	}
	if (!sig->otlp || !o->http)
		return rc;
	if (len > BODY_MAX) {
		dtn__otel_warn(o, "OTLP export of %s: the body is over 64 MiB; dropped", what);
		return DTN_EINVAL;
	}
	if (sig->gzip) {
		if (dtn__otel_gzip(&gz, body, len) < 0) {
			dtn__buf_free(&gz);
			return DTN_ENOMEM;
		}
		job.body = gz.data;
		job.len = gz.len;
	}
	rc = send_http(o, &job);
	dtn__buf_free(&gz);
	return rc;
}

/* ---- the exporter thread ---- */

static void summarise(dtn_otel *o, dtn_span *const *spans, size_t n);

/* The deadline of an export that may take timeout_ms; 0 means no limit (the OpenTelemetry rule
 * for timeouts), which leaves the shutdown's deadline as the only one. */
static int64_t export_deadline(long timeout_ms)
{
	return timeout_ms > 0 ? dtn__otel_mono_ns() + (int64_t)timeout_ms * 1000000 : INT64_MAX;
}

static void export_spans(dtn_otel *o, dtn_span **spans, size_t n)
{
	int64_t deadline = export_deadline(o->cfg.bsp_export_timeout_ms);
	char *body = dtn__otlp_traces_json(o, spans, n);
	int rc;

	summarise(o, spans, n);
	if (!body) {
		atomic_fetch_add(&o->n_dropped_export, n);
	} else {
		rc = send_body(o, &o->cfg.traces, "spans", body, deadline);
		if (rc < 0)
			atomic_fetch_add(&o->n_dropped_export, n);
		else
			atomic_fetch_add(&o->n_exported, n);
		dtn__free(body);
	}
	for (size_t i = 0; i < n; i++)
		dtn__span_unref(spans[i]);
}

static void export_metrics(dtn_otel *o)
{
	int64_t deadline = export_deadline(o->cfg.metric_timeout_ms);
	uint64_t gen, drops = atomic_load(&o->n_dropped_queue) + atomic_load(&o->n_dropped_export) +
			      atomic_load(&o->n_dropped_shutdown) + atomic_load(&o->n_dropped_points);
	char *body;

	/* Nothing new since the last export: the cumulative values would only repeat. */
	pthread_mutex_lock(&o->mlock);
	gen = o->mgen;
	pthread_mutex_unlock(&o->mlock);
	if (gen == o->mgen_sent && drops == o->drops_sent)
		return;
	if (!(body = dtn__otlp_metrics_json(o, dtn__otel_now_ns())))
		return;
	if (send_body(o, &o->cfg.metrics, "metrics", body, deadline) == 0) {
		atomic_fetch_add(&o->n_metric_exports, 1);
		o->mgen_sent = gen;
		o->drops_sent = drops;
	}
	dtn__free(body);
}

/* Takes up to one batch from the queue; o->lock held. */
static size_t take_batch(dtn_otel *o, dtn_span **out)
{
	size_t n = o->ring_count < o->cfg.bsp_batch ? o->ring_count : o->cfg.bsp_batch;

	for (size_t i = 0; i < n; i++) {
		out[i] = o->ring[o->ring_head];
		o->ring_head = (o->ring_head + 1) % o->ring_cap;
	}
	o->ring_count -= n;
	return n;
}

/* Drops what is left in the queue (shutdown after an abort); o->lock held. */
static void drop_queue(dtn_otel *o)
{
	while (o->ring_count) {
		dtn_span *s = o->ring[o->ring_head];
		o->ring_head = (o->ring_head + 1) % o->ring_cap;
		o->ring_count--;
		atomic_fetch_add(&o->n_dropped_shutdown, 1);
		dtn__span_unref(s);
	}
}

static void *exporter_main(void *arg)
{
	dtn_otel *o = arg;
	dtn_span **batch = dtn__malloc(o->cfg.bsp_batch * sizeof(*batch));
	int64_t delay = (int64_t)o->cfg.bsp_delay_ms * 1000000;
	int64_t next_spans = dtn__otel_mono_ns() + delay;
	bool idle = true;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		int64_t now = dtn__otel_mono_ns();
		uint64_t flush = o->flush_req;
		bool flushing = flush != o->flush_done || o->stop;
		bool metrics_due = now >= o->next_metrics_ns;
		bool spans_due;

		/* The delay runs from the first span queued after an empty spell, so an empty
		 * queue never makes spans due (a zero delay would otherwise spin). */
		if (!o->ring_count) {
			idle = true;
		} else if (idle) {
			idle = false;
			next_spans = now + delay;
		}
		spans_due = batch && o->ring_count &&
			    (now >= next_spans || o->ring_count >= o->cfg.bsp_batch);
		if (!flushing && !metrics_due && !spans_due) {
			wait_until(o, &o->wake, o->ring_count && next_spans < o->next_metrics_ns
							? next_spans : o->next_metrics_ns);
			continue;
		}
		/* Spans: every full batch, then the rest when the delay is over or on a flush. */
		while (batch && o->ring_count && !o->abort_io &&
		       (flushing || now >= next_spans || o->ring_count >= o->cfg.bsp_batch)) {
			size_t n = take_batch(o, batch);
			pthread_mutex_unlock(&o->lock);
			export_spans(o, batch, n);
			pthread_mutex_lock(&o->lock);
		}
		if (now >= next_spans)
			next_spans = now + delay;
		if ((metrics_due || flushing) && !o->abort_io) {
			pthread_mutex_unlock(&o->lock);
			export_metrics(o);
			pthread_mutex_lock(&o->lock);
			o->next_metrics_ns = dtn__otel_mono_ns() +
					     (int64_t)o->cfg.metric_interval_ms * 1000000;
		}
		if (flushing) {
			o->flush_done = flush;
			pthread_cond_broadcast(&o->done);
		}
		if (o->stop)
			break;
	}
	drop_queue(o);
	/* From now on spans ended elsewhere are dropped at once: nobody would take them. */
	o->closed = true;
	o->thread_done = true;
	pthread_cond_broadcast(&o->done);
	pthread_mutex_unlock(&o->lock);
	dtn__free(batch);
	return NULL;
}

int dtn__export_start(dtn_otel *o, dtn_error *err)
{
	dtn__http_opts hopts = {.version = 1, .max_attempts = 1, .user_agent = DTN__OTEL_USER_AGENT,
				.connect_timeout_ms = 5000, .cancel = &o->abort_io};
	sigset_t all, old;
	dtn__http *http = NULL;
	int rc;

	if (!(o->ring = dtn__calloc(o->cfg.bsp_queue, sizeof(*o->ring))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	o->ring_cap = o->cfg.bsp_queue;
	if (o->cfg.traces.otlp || o->cfg.metrics.otlp) {
		if ((rc = dtn__http_new(&http, &hopts)) < 0)
			return dtn__error_set(err, rc, "cannot start the OTLP exporter's HTTP client");
		o->http = http;
	}
	o->next_metrics_ns = dtn__otel_mono_ns() + (int64_t)o->cfg.metric_interval_ms * 1000000;
	/* The exporter takes no signal: Ctrl-C belongs to the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&o->thread, NULL, exporter_main, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return dtn__error_set(err, DTN_ERROR, "cannot start the telemetry thread: %s",
				      strerror(rc));
	o->thread_started = true;
	return 0;
}

int dtn__export_flush(dtn_otel *o, int64_t deadline)
{
	uint64_t gen;
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	if (!o->thread_started || o->thread_done) {
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	gen = ++o->flush_req;
	pthread_cond_signal(&o->wake);
	while (o->flush_done < gen && !o->thread_done) {
		if (dtn__otel_mono_ns() >= deadline) {
			rc = DTN_ETIMEOUT;
			break;
		}
		wait_until(o, &o->done, deadline);
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

bool dtn__export_stop(dtn_otel *o, int64_t deadline)
{
	/* Keep part of the budget to cancel a request that does not end: a tenth, at least half of
	 * 300 ms (the transport notices a cancel within 100 ms), at most 250 ms. */
	int64_t now = dtn__otel_mono_ns(), left = deadline - now, margin = left / 10, soft;
	bool done;

	if (margin < 150000000)
		margin = left / 2 < 150000000 ? left / 2 : 150000000;
	if (margin > 250000000)
		margin = 250000000;
	soft = deadline - margin;
	pthread_mutex_lock(&o->lock);
	if (!o->thread_started) {
		o->closed = true;
		pthread_mutex_unlock(&o->lock);
		return true;
	}
	o->stop = true;
	o->hard_deadline_ns = soft;
	pthread_cond_signal(&o->wake);
	while (!o->thread_done && dtn__otel_mono_ns() < soft)
		wait_until(o, &o->done, soft);
	if (!o->thread_done) {
		o->abort_io = 1;
		pthread_cond_broadcast(&o->wake);
		while (!o->thread_done && dtn__otel_mono_ns() < deadline)
			wait_until(o, &o->done, deadline);
	}
	done = o->thread_done;
	o->closed = true;
	pthread_mutex_unlock(&o->lock);
	if (done)
		pthread_join(o->thread, NULL);
	else
		pthread_detach(o->thread);
	return done;
}

/* ---- the summary: spans by name ---- */

static void summarise(dtn_otel *o, dtn_span *const *spans, size_t n)
{
	pthread_mutex_lock(&o->mlock);
	for (size_t i = 0; i < n; i++) {
		const dtn_span *s = spans[i];
		int64_t d = s->end_ns - s->start_ns;
		dtn__summary_entry *e = NULL;

		for (size_t j = 0; j < o->nsummary; j++)
			if (strcmp(o->summary[j].name, s->name) == 0) {
				e = &o->summary[j];
				break;
			}
		if (!e) {
			if (o->nsummary == o->cap_summary) {
				size_t cap = o->cap_summary ? o->cap_summary * 2 : 16;
				dtn__summary_entry *p;
				if (cap > 256 ||
				    !(p = dtn__realloc(o->summary, cap * sizeof(*p))))
					continue;
				o->summary = p;
				o->cap_summary = cap;
			}
			e = &o->summary[o->nsummary];
			memset(e, 0, sizeof(*e));
			if (!(e->name = dtn__strdup(s->name)))
				continue;
			o->nsummary++;
		}
		e->count++;
		e->total_ns += d;
		if (d > e->max_ns)
			e->max_ns = d;
		if (s->status == DTN_SPAN_ERROR)
			e->errors++;
	}
	pthread_mutex_unlock(&o->mlock);
}
