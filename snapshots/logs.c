/*
 * logs.c - build-log streams: bytes split into bounded lines, and a stream read on its own
 * thread beside the state polling, re-opened when it drops while the build goes on.
 *
 * The runner answers `follow=true` with the whole log file so far and then each new line; it
 * ends the answer shortly after a successful build and never after a failed one (wire §6). So
 * a re-opened stream starts over from the beginning, and the lines already delivered are
 * skipped by counting them; and the end of a failed build's stream is decided by the caller
 * from the snapshot's state.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "dtn_otel.h"

#define LINE_MAX_DEFAULT 8192
/* Consecutive attempts that brought no data before the stream is given up. */
#define MAX_FAILURES 5

/* ---- lines ---- */

int dtn__lines_init(dtn__lines *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max ? max : LINE_MAX_DEFAULT;
	if (l->max < 8)
		l->max = 8;
	if (!(l->buf = dtn__malloc(l->max + 1)))
		return DTN_ENOMEM;
	return 0;
}

void dtn__lines_free(dtn__lines *l)
{
	dtn__free(l->buf);
	l->buf = NULL;
}

static int deliver(dtn__lines *l, size_t n, dtn__line_fn fn, void *payload)
{
	char keep = l->buf[n];
	int rc;

	l->buf[n] = '\0';
	l->delivered++;
	rc = fn(l->buf, n, payload);
	l->buf[n] = keep;
	return rc;
}

/* Where to cut a full buffer so that no UTF-8 sequence is split. */
static size_t piece_end(const dtn__lines *l)
{
	const unsigned char *b = (const unsigned char *)l->buf;
	size_t p = l->len, need;

	while (p > 0 && l->len - p < 4 && (b[p - 1] & 0xC0) == 0x80)
		p--;
	if (p == 0 || b[p - 1] < 0xC0)
		return l->len; /* ASCII, or not UTF-8 at all: cut anywhere */
	need = b[p - 1] >= 0xF0 ? 4 : b[p - 1] >= 0xE0 ? 3 : 2;
	return p - 1 + need > l->len ? p - 1 : l->len;
}

static int deliver_piece(dtn__lines *l, dtn__line_fn fn, void *payload)
{
	size_t cut = piece_end(l);
	int rc;

	if (cut == 0)
		cut = l->len;
	/* a final CR may be the first half of a CRLF: it waits for the next byte */
	if (cut == l->len && cut > 1 && l->buf[cut - 1] == '\r')
		cut--;
	rc = deliver(l, cut, fn, payload);
	memmove(l->buf, l->buf + cut, l->len - cut);
	l->len -= cut;
	return rc;
}

static int end_line(dtn__lines *l, dtn__line_fn fn, void *payload)
{
	size_t n = l->len;
	int rc = 0;

	if (n && l->buf[n - 1] == '\r')
		n--;
	/* A line whose bytes all went out in pieces (before a restart or not) is complete: its
	 * newline adds no empty line. An empty line (no bytes at all) is still delivered. */
	if (!(l->off > l->len && n == 0))
		rc = deliver(l, n, fn, payload);
	l->line++;
	l->off = 0;
	l->len = 0;
	return rc;
}

int dtn__lines_feed(dtn__lines *l, const char *data, size_t n, dtn__line_fn fn, void *payload)
{
	size_t i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		char ch;

		if (l->line < l->skip_lines) {
			const char *nl = memchr(data + i, '\n', n - i);

			if (!nl)
				return 0;
			i = (size_t)(nl - data) + 1;
			l->line++;
			l->off = 0;
			continue;
		}
		ch = data[i++];
		if (ch == '\n') {
			rc = end_line(l, fn, payload);
			continue;
		}
		l->off++;
		if (l->line == l->skip_lines && l->off <= l->skip_bytes)
			continue;
		l->buf[l->len++] = ch;
		if (l->len == l->max)
			rc = deliver_piece(l, fn, payload);
	}
	return rc;
}

int dtn__lines_finish(dtn__lines *l, dtn__line_fn fn, void *payload)
{
	if (l->len == 0)
		return 0;
	return end_line(l, fn, payload);
}

void dtn__lines_restart(dtn__lines *l)
{
	uint64_t sent = l->off - l->len; /* bytes of the current line already delivered */

	if (l->line > l->skip_lines || (l->line == l->skip_lines && sent > l->skip_bytes)) {
		l->skip_lines = l->line;
		l->skip_bytes = sent;
	}
	l->line = 0;
	l->off = 0;
	l->len = 0;
}

/* ---- the stream ---- */

struct dtn__logstream {
	dtn_daytona *c;
	dtn__http *http;
	char *base;              /* the URL without its follow parameter */
	char *url;
	dtn_log_fn log;
	void *payload;
	dtn__lines lines;
	pthread_t thread;
	pthread_mutex_t lock;
	volatile int stop;       /* the stream's transfer stops when this is set */
	bool final, done, user_stopped, got_data;
	bool eof;                /* the answer came to its end: the whole log was read */
	bool joined, cut;        /* the thread was waited for; it was stopped before its end */
	int fail_code;           /* why the stream was given up, when it was */
	char fail_msg[sizeof(((dtn_error *)0)->message)];
	int64_t last_data;
	uint64_t bytes;
	dtn_span *span;
};

static int on_line(const char *line, size_t len, void *payload)
{
	dtn__logstream *s = payload;

	if (dtn__api_log(s->c, s->log, s->payload, DTN_LOG_OUTPUT, line, len) != 0) {
		pthread_mutex_lock(&s->lock);
		s->user_stopped = true;
		pthread_mutex_unlock(&s->lock);
		return 1;
	}
	return 0;
}

static int on_data(const char *data, size_t len, void *payload)
{
	dtn__logstream *s = payload;

	pthread_mutex_lock(&s->lock);
	s->last_data = dtn__now_ms();
	s->got_data = true;
	s->bytes += len;
	pthread_mutex_unlock(&s->lock);
	return dtn__lines_feed(&s->lines, data, len, on_line, s);
}

/* A flag of the stream (one of its members), read under its lock. */
static bool flag(dtn__logstream *s, const bool *member)
{
	bool v;

	pthread_mutex_lock(&s->lock);
	v = *member;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static bool is_final(dtn__logstream *s)
{
	return flag(s, &s->final);
}

/* Waits the poll interval before another attempt; false when told to stop meanwhile. */
static bool pause_before_retry(dtn__logstream *s)
{
	int64_t until = dtn__now_ms() + s->c->poll_ms;

	while (!s->stop && !is_final(s) && dtn__now_ms() < until) {
		struct timespec ts = {0, 20 * 1000000L};

		nanosleep(&ts, NULL);
	}
	return !s->stop && !is_final(s);
}

/* One attempt. Returns 1 when the stream is over, 0 to try again. */
static int attempt(dtn__logstream *s, int *failures)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	int rc, over = 0;

	s->got_data = false;
	rc = dtn__http_do(s->http,
			  &(dtn__http_request){.method = "GET",
					       .url = s->url,
					       .headers = (const char *const *)s->c->stream_headers.items,
					       .on_data = on_data,
					       .payload = s,
					       .timeout_ms = -1,
					       .idempotent = -1},
			  &r, &err);
	if (s->stop || s->user_stopped) {
		over = 1;
	} else if (rc == 0 && r.status >= 200 && r.status < 300) {
		/* the end of the answer: the runner finished the log */
		s->fail_code = 0;
		s->eof = true;
		if (dtn__lines_finish(&s->lines, on_line, s) != 0)
			s->user_stopped = true;
		over = 1;
	} else {
		if (rc == 0)
			rc = dtn__api_error_from_response(&r, "GET", s->url, "the build log", &err);
		s->fail_code = rc;
		snprintf(s->fail_msg, sizeof(s->fail_msg), "%s", err.message);
		*failures = s->got_data ? 1 : *failures + 1;
		/* a failed build's log may not exist; a stream is re-opened only while building */
		over = *failures >= MAX_FAILURES || is_final(s) || (rc == 0 && r.status < 500 &&
								    r.status != 404 &&
								    r.status != 429);
	}
	dtn__http_response_clear(&r);
	return over;
}

static void *run(void *arg)
{
	dtn__logstream *s = arg;
	int failures = 0;

	dtn_span_set_current(s->span);
	for (;;) {
		if (attempt(s, &failures))
			break;
		if (!pause_before_retry(s))
			break;
		dtn__lines_restart(&s->lines);
	}
	dtn_span_set_current(NULL);
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void stream_free(dtn__logstream *s)
{
	dtn__http_free(s->http);
	dtn__lines_free(&s->lines);
	dtn__free(s->base);
	dtn__free(s->url);
	pthread_mutex_destroy(&s->lock);
	dtn__free(s);
}

int dtn__logstream_start(dtn__logstream **out, dtn_daytona *c, const char *url, bool follow,
			 dtn_span *parent, dtn_log_fn log, void *payload, dtn_error *err)
{
	dtn__logstream *s;
	dtn__http_opts o = c->http_opts;
	int rc;

	*out = NULL;
	if (!(s = dtn__calloc(1, sizeof(*s))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->c = c;
	s->log = log;
	s->payload = payload;
	s->last_data = dtn__now_ms();
	s->final = !follow;
	o.cancel = &s->stop;
	/* one attempt per opening: a re-opening is decided here, knowing the build's state */
	o.max_attempts = 1;
	if ((rc = dtn__lines_init(&s->lines, 0)) < 0 || !(s->base = dtn__strdup(url)) ||
	    !(s->url = dtn__aprintf("%s%sfollow=%s", url, strchr(url, '?') ? "&" : "?",
				    follow ? "true" : "false"))) {
		stream_free(s);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	if ((rc = dtn__http_new(&s->http, &o)) < 0) {
		stream_free(s);
		return dtn__error_set(err, rc, "cannot set up the HTTP client");
	}
	s->span = dtn_span_start_ex("SnapshotService.streamBuildLogs", DTN_SPAN_INTERNAL,
				    &(dtn_span_opts){.version = 1, .parent = parent,
						     .not_current = true});
	dtn_span_set_str(s->span, "component", "SnapshotService");
	dtn_span_set_str(s->span, "method", "streamBuildLogs");
	if ((rc = pthread_create(&s->thread, NULL, run, s)) != 0) {
		dtn_span_end(s->span);
		stream_free(s);
		return dtn__error_set(err, DTN_ERROR, "cannot start a thread: %s", strerror(rc));
	}
	*out = s;
	return 0;
}

void dtn__logstream_set_final(dtn__logstream *s)
{
	pthread_mutex_lock(&s->lock);
	s->final = true;
	pthread_mutex_unlock(&s->lock);
}

bool dtn__logstream_done(dtn__logstream *s)
{
	return flag(s, &s->done);
}

int64_t dtn__logstream_last_data(dtn__logstream *s)
{
	int64_t t;

	pthread_mutex_lock(&s->lock);
	t = s->last_data;
	pthread_mutex_unlock(&s->lock);
	return t;
}

bool dtn__logstream_stopped(dtn__logstream *s)
{
	return flag(s, &s->user_stopped);
}

/* Stops the transfer if it still runs and waits for the thread (once). */
static void halt(dtn__logstream *s)
{
	if (s->joined)
		return;
	s->cut = !flag(s, &s->done);
	s->stop = 1;
	pthread_join(s->thread, NULL);
	s->joined = true;
}

int dtn__logstream_reread(dtn__logstream *s)
{
	char *url;

	if (!s)
		return 0;
	halt(s);
	/* complete, stopped on purpose, or never opened at all: nothing more to read */
	if (s->eof || s->user_stopped || (s->bytes == 0 && s->fail_code < 0))
		return 0;
	if (!(url = dtn__aprintf("%s%sfollow=false", s->base, strchr(s->base, '?') ? "&" : "?")))
		return 0;
	dtn__free(s->url);
	s->url = url;
	dtn__lines_restart(&s->lines);
	s->stop = 0;
	s->final = true;
	s->done = false;
	s->fail_code = 0;
	s->last_data = dtn__now_ms();
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		s->done = true;
		return 0;
	}
	s->joined = false;
	return 1;
}

int dtn__logstream_finish(dtn__logstream *s, bool strict, dtn_error *err)
{
	bool cut;
	int rc = 0;

	if (!s)
		return 0;
	halt(s);
	cut = s->cut;
	/* a stream that could not be read is reported; one cut on purpose is not */
	if (s->fail_code < 0 && !s->user_stopped && !cut) {
		if (strict)
			rc = dtn__error_set(err, s->fail_code, "%s", s->fail_msg);
		else
			dtn__api_warn(s->c, "build logs: %s", s->fail_msg);
	}
	dtn_span_set_int(s->span, "dtn.log.lines", (int64_t)s->lines.delivered);
	dtn_span_set_int(s->span, "dtn.log.bytes", (int64_t)s->bytes);
	if (s->user_stopped) {
		rc = dtn__error_set(err, DTN_EUSER, "the log callback asked to stop");
		dtn_span_record_error(s->span, rc, NULL, "the log callback asked to stop");
	} else if (s->fail_code < 0 && !cut) {
		dtn_span_record_error(s->span, s->fail_code, NULL, s->fail_msg);
	} else if (cut && s->c->cancel && *s->c->cancel) {
		dtn_span_record_error(s->span, DTN_EINTR, NULL, NULL); /* error.type cancelled */
	} else {
		dtn_span_set_status(s->span, DTN_SPAN_OK, NULL);
	}
	dtn_span_end(s->span);
	stream_free(s);
	return rc;
}
