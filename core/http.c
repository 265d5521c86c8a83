/*
 * http.c - the HTTP transport over libcurl's multi interface.
 *
 * Every request, from dtn__http_do or from a batch, is a transfer on the client's one multi
 * handle, so finished connections stay in that handle's pool and later requests reuse them. One
 * loop (next()) drives the transfers, sleeps until a retry is due, checks the cancel flag and
 * enforces idle timeouts; it wakes at least every POLL_MS so none of these waits long.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define ERROR_BODY_MAX (64 * 1024)
#define POLL_MS 100
#define RETRY_AFTER_MAX_S (24L * 3600)

enum xfer_state { XFER_WAITING, XFER_RUNNING, XFER_DONE };

/* How one attempt ended. */
enum outcome {
	OUT_RESPONSE,  /* a whole response arrived */
	OUT_CONNECT,   /* no connection could be made: nothing was sent */
	OUT_BROKEN,    /* the connection broke before the response was complete */
	OUT_TIMEOUT,   /* the request's time ran out */
	OUT_IDLE,      /* nothing moved for idle_timeout_ms */
	OUT_CANCELLED,
	OUT_USER,      /* a callback asked to stop */
	OUT_NOMEM,
	OUT_REWIND,    /* the body could not be replayed */
	OUT_OTHER
};

typedef struct xfer {
	struct xfer *next;
	dtn__http *http;
	dtn__http_batch *batch;
	dtn__http_request req;
	dtn__http_response *resp;
	void *tag;
	char *url;               /* without query: for messages and observers */
	char *host;
	enum xfer_state state;
	int attempts;            /* attempts started */
	int64_t due_ms;          /* XFER_WAITING: when the next attempt may start */
	CURL *easy;
	struct curl_slist *slist;
	dtn__strv extra;         /* headers the observer added for this attempt */
	void *token;
	bool begun;              /* observer begin() called, end() not yet */
	dtn__http_attempt rec;
	char status_text[24];
	/* the current attempt */
	int64_t up_bytes;
	int64_t down_bytes;
	curl_off_t seen_dl, seen_ul;
	int64_t activity_ms;
	long status;
	bool read_started;       /* the read callback was called: rewind before replaying */
	bool delivered;          /* on_data got bytes: never replayed */
	bool cancelled, idle, user_stop, nomem;
	bool deadline_capped;    /* the last attempt's limit was the request's deadline */
	/* the result */
	int rc;
	dtn_error err;
	char errbuf[CURL_ERROR_SIZE];
} xfer;

struct dtn__http_batch {
	dtn__http *http;
	size_t count;
};

struct dtn__http {
	long connect_timeout_ms;
	long timeout_ms;
	int max_attempts;
	long backoff_ms;
	long backoff_max_ms;
	long retry_after_max_ms;
	char *user_agent;
	const volatile int *cancel;
	dtn__http_observer observer;
	bool has_observer;
	CURLM *multi;
	CURL **pool;             /* easy handles not in use, kept for reuse */
	size_t pool_len, pool_cap;
	xfer *xfers;             /* every transfer not yet handed back, of every batch */
	uint64_t rng;
};

/* ---- small helpers ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int64_t dtn__http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define now_ms dtn__http_now_ms

/* The attempt's whole-transfer limit: its own timeout, cut to what is left of the deadline. */
static long attempt_timeout(xfer *x)
{
	long t = x->req.timeout_ms ? x->req.timeout_ms : x->http->timeout_ms;
	int64_t left;

	if (x->req.deadline_ms <= 0)
		return t;
	left = x->req.deadline_ms - now_ms();
	if (left < 1)
		left = 1;
	x->deadline_capped = t <= 0 || left < t;
	return x->deadline_capped ? (long)left : t;
}

static uint64_t next_random(dtn__http *http)
{
	/* xorshift64*: only jitter depends on it. */
	http->rng ^= http->rng >> 12;
	http->rng ^= http->rng << 25;
	http->rng ^= http->rng >> 27;
	return http->rng * UINT64_C(2685821657736338717);
}

static bool cancelled(const dtn__http *http)
{
	return http->cancel && *http->cancel;
}

static const char *method_of(const dtn__http_request *req)
{
	return req->method ? req->method : "GET";
}

static bool idempotent(const dtn__http_request *req)
{
	static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
	const char *m = method_of(req);

	if (req->idempotent)
		return req->idempotent > 0;
	for (size_t i = 0; i < DTN__ARRAY_LEN(safe); i++)
		if (!strcmp(m, safe[i]))
			return true;
	return false;
}

/* Whether the header list names header `name` (a line "Name: ..." or "Name:" or "Name;"). */
static bool has_header(const char *const *headers, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; headers && headers[i]; i++)
		if (!strncasecmp(headers[i], name, n) &&
		    (headers[i][n] == ':' || headers[i][n] == ';'))
			return true;
	return false;
}

/* ---- URLs ---- */

/* Where the authority of a URL starts and ends ("scheme://[userinfo@]host[:port]"). */
static void url_authority(const char *url, const char **start, const char **end)
{
	const char *p = strstr(url, "://");

	*start = p ? p + 3 : url;
	*end = *start + strcspn(*start, "/?#");
}

char *dtn__http_redact_url(const char *url)
{
	const char *a, *b, *path_end;
	dtn__buf out = DTN__BUF_INIT;

	if (!url)
		return dtn__strdup("");
	url_authority(url, &a, &b);
	/* Credentials in the authority are dropped with the query and fragment. */
	for (const char *p = a; p < b; p++)
		if (*p == '@')
			a = p + 1;
	path_end = b + strcspn(b, "?#");
	dtn__buf_add(&out, url, (size_t)(strstr(url, "://") ? strstr(url, "://") + 3 - url : 0));
	dtn__buf_add(&out, a, (size_t)(path_end - a));
	return dtn__buf_detach(&out);
}

/* Host (IPv6 without brackets) and port of a URL, for the attempt record. */
static char *url_host_port(const char *url, int *port)
{
	const char *a, *b, *at, *colon = NULL, *host_end;
	bool https = !strncasecmp(url, "https:", 6);

	url_authority(url, &a, &b);
	while ((at = memchr(a, '@', (size_t)(b - a))))
		a = at + 1;
	if (*a == '[') {
		host_end = memchr(a, ']', (size_t)(b - a));
		if (!host_end)
			host_end = b;
		if (host_end < b && host_end[1] == ':')
			colon = host_end + 1;
		a++;
	} else {
		colon = memchr(a, ':', (size_t)(b - a));
		host_end = colon ? colon : b;
	}
	*port = https ? 443 : 80;
	if (colon && colon + 1 < b) {
		long p = strtol(colon + 1, NULL, 10);
		if (p > 0 && p < 65536)
			*port = (int)p;
	}
	return dtn__strndup(a, (size_t)(host_end - a));
}

static char *escape(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	dtn__buf out = DTN__BUF_INIT;

	dtn__buf_add(&out, "", 0);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		unsigned char c = *p;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
			dtn__buf_putc(&out, (char)c);
		} else {
			char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
			dtn__buf_add(&out, enc, 3);
		}
	}
	return dtn__buf_detach(&out);
}

char *dtn__http_escape(const char *s)
{
	return escape(s, false);
}

char *dtn__http_escape_path(const char *s)
{
	return escape(s, true);
}

/* ---- responses ---- */

void dtn__http_response_clear(dtn__http_response *response)
{
	if (!response)
		return;
	dtn__buf_free(&response->body);
	dtn__strv_free(&response->headers);
	response->status = 0;
	response->attempts = 0;
	response->deadline_hit = false;
}

const char *dtn__http_response_header(const dtn__http_response *response, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; response && i < response->headers.len; i++) {
		const char *h = response->headers.items[i];
		if (!strncasecmp(h, name, n) && h[n] == ':') {
			h += n + 1;
			while (*h == ' ' || *h == '\t')
				h++;
			return h;
		}
	}
	return NULL;
}

/*
 * The longest wait any Retry-After or Retry-After-<name> header asks for, in ms; -1 if none.
 * Values are seconds or an HTTP date.
 */
static long retry_after_ms(const dtn__http_response *response)
{
	long best = -1;

	for (size_t i = 0; i < response->headers.len; i++) {
		const char *h = response->headers.items[i], *v, *colon = strchr(h, ':');
		long ms = -1;
		size_t n;
		if (!colon)
			continue;
		n = (size_t)(colon - h);
		if (!(n == 11 && !strncasecmp(h, "retry-after", 11)) &&
		    !(n > 12 && !strncasecmp(h, "retry-after-", 12)))
			continue;
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (*v >= '0' && *v <= '9') {
			char *end;
			long s = strtol(v, &end, 10);
			if (*end == '\0' || *end == ' ')
				ms = (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s) * 1000;
		} else {
			time_t t = curl_getdate(v, NULL);
			if (t != (time_t)-1) {
				time_t d = t - time(NULL);
				ms = d <= 0 ? 0 : (d > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : d) * 1000;
			}
		}
		if (ms > best)
			best = ms;
	}
	return best;
}

/* ---- callbacks from libcurl ---- */

static bool xfer_cancelled(const xfer *x)
{
	return !x->req.ignore_cancel && cancelled(x->http);
}

static void note_activity(xfer *x)
{
	x->activity_ms = now_ms();
}

static size_t on_header(char *data, size_t size, size_t n, void *payload)
{
	xfer *x = payload;
	size_t len = size * n, l = len;
	char *line;

	while (l > 0 && (data[l - 1] == '\r' || data[l - 1] == '\n'))
		l--;
	note_activity(x);
	if (l == 0)
		return len;
	if (l > 5 && !strncmp(data, "HTTP/", 5)) {
		/* A new response (after 100 Continue, say): only the final one's headers count. */
		dtn__strv_free(&x->resp->headers);
		return len;
	}
	if (data[0] == ' ' || data[0] == '\t')
		return len; /* obsolete line folding: ignored */
	line = dtn__strndup(data, l);
	if (!line || dtn__strv_push_owned(&x->resp->headers, line) < 0) {
		x->nomem = true;
		return 0;
	}
	return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *payload)
{
	xfer *x = payload;
	size_t len = size * n;
	dtn__buf *body = &x->resp->body;

	note_activity(x);
	if (xfer_cancelled(x)) {
		x->cancelled = true;
		return 0;
	}
	if (x->status == 0)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	x->down_bytes += (int64_t)len;
	if (x->req.on_data && x->status >= 200 && x->status < 300) {
		x->delivered = true;
		if (x->req.on_data(data, len, x->req.payload) != 0) {
			x->user_stop = true;
			return 0;
		}
		return len;
	}
	if (x->req.on_data && body->len + len > ERROR_BODY_MAX)
		dtn__buf_add(body, data, body->len < ERROR_BODY_MAX ? ERROR_BODY_MAX - body->len : 0);
	else
		dtn__buf_add(body, data, len);
	if (body->failed) {
		x->nomem = true;
		return 0;
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *payload)
{
	xfer *x = payload;
	size_t len = size * n, got;

	if (xfer_cancelled(x)) {
		x->cancelled = true;
		return CURL_READFUNC_ABORT;
	}
	x->read_started = true;
	got = x->req.read(buf, len, x->req.payload);
	if (got == (size_t)-1 || got > len) {
		x->user_stop = true;
		return CURL_READFUNC_ABORT;
	}
	x->up_bytes += (int64_t)got;
	note_activity(x);
	return got;
}

/* libcurl rewinds a body itself when it must send it again (a reused connection was dead). */
static int on_seek(void *payload, curl_off_t offset, int origin)
{
	xfer *x = payload;

	if (offset != 0 || origin != SEEK_SET || !x->req.rewind)
		return CURL_SEEKFUNC_CANTSEEK;
	if (x->req.rewind(x->req.payload) < 0)
		return CURL_SEEKFUNC_FAIL;
	x->up_bytes = 0;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *payload, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
	curl_off_t ulnow)
{
	xfer *x = payload;

	(void)dltotal;
	(void)ultotal;
	if (xfer_cancelled(x)) {
		x->cancelled = true;
		return 1;
	}
	if (dlnow != x->seen_dl || ulnow != x->seen_ul) {
		x->seen_dl = dlnow;
		x->seen_ul = ulnow;
		note_activity(x);
	}
	return 0;
}

/* ---- the client ---- */

int dtn__http_new(dtn__http **out, const dtn__http_opts *opts)
{
	static const dtn__http_opts none = {.version = 1};
	dtn__http *http;

	*out = NULL;
	if (!opts)
		opts = &none;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return DTN_ERROR;
	if (!(http = dtn__calloc(1, sizeof(*http))))
		return DTN_ENOMEM;
	http->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
	http->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60000;
	http->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 4;
	http->backoff_ms = opts->backoff_ms > 0 ? opts->backoff_ms : 250;
	http->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 8000;
	http->retry_after_max_ms = opts->retry_after_max_ms > 0 ? opts->retry_after_max_ms : 60000;
	http->cancel = opts->cancel;
	if (opts->observer) {
		http->observer = *opts->observer;
		http->has_observer = true;
	}
	http->user_agent = opts->user_agent ? dtn__strdup(opts->user_agent)
					    : dtn__strdup("dtn-build/" DTN_VERSION);
	http->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)http;
	if (!http->rng)
		http->rng = 1;
	if (!http->user_agent || !(http->multi = curl_multi_init())) {
		dtn__http_free(http);
		return DTN_ENOMEM;
	}
	*out = http;
	return 0;
}

static CURL *easy_get(dtn__http *http)
{
	if (http->pool_len > 0)
		return http->pool[--http->pool_len];
	return curl_easy_init();
}

static void easy_put(dtn__http *http, CURL *easy)
{
	if (!easy)
		return;
	curl_easy_reset(easy);
	if (http->pool_len == http->pool_cap) {
		size_t cap = http->pool_cap ? http->pool_cap * 2 : 4;
		CURL **p = dtn__realloc(http->pool, cap * sizeof(*p));
		if (!p) {
			curl_easy_cleanup(easy);
			return;
		}
		http->pool = p;
		http->pool_cap = cap;
	}
	http->pool[http->pool_len++] = easy;
}

static void xfer_free(xfer *x);

void dtn__http_free(dtn__http *http)
{
	if (!http)
		return;
	while (http->xfers)
		xfer_free(http->xfers);
	for (size_t i = 0; i < http->pool_len; i++)
		curl_easy_cleanup(http->pool[i]);
	dtn__free(http->pool);
	if (http->multi)
		curl_multi_cleanup(http->multi);
	dtn__free(http->user_agent);
	dtn__free(http);
}

/* ---- one attempt ---- */

static void attempt_reset(xfer *x)
{
	dtn__http_response_clear(x->resp);
	x->resp->attempts = x->attempts;
	x->up_bytes = x->down_bytes = 0;
	x->seen_dl = x->seen_ul = 0;
	x->status = 0;
	x->read_started = x->delivered = false;
	x->cancelled = x->idle = x->user_stop = x->nomem = false;
	x->errbuf[0] = '\0';
	x->rec.resend_count = x->attempts - 1;
	x->rec.status = 0;
	x->rec.error_type = NULL;
	x->rec.request_bytes = x->req.read ? x->req.body_size : (int64_t)x->req.body_len;
	x->rec.response_bytes = 0;
	x->activity_ms = now_ms();
}

/* The request headers: the caller's, the observer's, then the defaults not overridden. */
static int build_headers(xfer *x)
{
	const char *const *h = x->req.headers;
	struct curl_slist *list = NULL, *t;
	bool posting = x->req.body || (!x->req.read && !strcmp(method_of(&x->req), "POST"));

	for (size_t i = 0; h && h[i]; i++) {
		if (!(t = curl_slist_append(list, h[i])))
			goto nomem;
		list = t;
	}
	for (size_t i = 0; i < x->extra.len; i++) {
		if (!(t = curl_slist_append(list, x->extra.items[i])))
			goto nomem;
		list = t;
	}
	/*
	 * No "Expect: 100-continue" round trip before large bodies, no form content type. Not on
	 * signed requests: libcurl's SigV4 signs every line of the list, these empty ones too.
	 */
	if (x->req.sigv4)
		posting = false;
	else if (!has_header(h, "Expect")) {
		if (!(t = curl_slist_append(list, "Expect:")))
			goto nomem;
		list = t;
	}
	if (posting && !has_header(h, "Content-Type")) {
		if (!(t = curl_slist_append(list, "Content-Type:")))
			goto nomem;
		list = t;
	}
	x->slist = list;
	return 0;
nomem:
	curl_slist_free_all(list);
	return DTN_ENOMEM;
}

#define SET(opt, val)                                                  \
	do {                                                           \
		if (cc == CURLE_OK)                                    \
			cc = curl_easy_setopt(e, opt, val);            \
	} while (0)

static CURLcode setup_method(xfer *x, CURL *e)
{
	const dtn__http_request *req = &x->req;
	const char *m = method_of(req);
	CURLcode cc = CURLE_OK;

	if (req->read) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, x);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)(req->body_size >= 0 ? req->body_size : -1));
		if (strcmp(m, "PUT"))
			SET(CURLOPT_CUSTOMREQUEST, m);
	} else if (req->body || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		if (strcmp(m, "POST"))
			SET(CURLOPT_CUSTOMREQUEST, m);
	} else if (!strcmp(m, "HEAD")) {
		SET(CURLOPT_NOBODY, 1L);
	} else {
		SET(CURLOPT_HTTPGET, 1L);
		if (strcmp(m, "GET"))
			SET(CURLOPT_CUSTOMREQUEST, m);
	}
	return cc;
}

static CURLcode setup_easy(xfer *x, CURL *e)
{
	const dtn__http_request *req = &x->req;
	long timeout = attempt_timeout(x);
	CURLcode cc = CURLE_OK;

	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_CONNECTTIMEOUT_MS, x->http->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout > 0 ? timeout : 0L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	/* libcurl sends a request again, silently, when a reused connection turns out to be
	 * closed before any answer: right for a server that never saw it, wrong for one that
	 * acted on it and lost the answer. A request that must not be sent twice gets a
	 * connection of its own, where libcurl never does that. */
	SET(CURLOPT_FRESH_CONNECT, idempotent(req) ? 0L : 1L);
	SET(CURLOPT_USERAGENT, x->http->user_agent);
	SET(CURLOPT_HTTPHEADER, x->slist);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, x);
	if (req->accept_encoding)
		SET(CURLOPT_ACCEPT_ENCODING, req->accept_encoding);
	if (req->sigv4) {
		SET(CURLOPT_AWS_SIGV4, req->sigv4);
		SET(CURLOPT_USERPWD, req->sigv4_user ? req->sigv4_user : "");
	}
	if (cc == CURLE_OK)
		cc = setup_method(x, e);
	return cc;
}

#undef SET

/* Starts the next attempt; a negative code means it could not be started (reported as such). */
static enum outcome attempt_start(xfer *x)
{
	dtn__http *http = x->http;

	if (x->attempts > 0 && x->read_started) {
		if (!x->req.rewind || x->req.rewind(x->req.payload) < 0)
			return OUT_REWIND;
	}
	x->attempts++;
	attempt_reset(x);
	if (http->has_observer && http->observer.begin) {
		x->token = NULL;
		/* A signed request takes no headers from the observer: libcurl would sign them too,
		 * and a proxy that rewrites trace headers would then break the signature. */
		http->observer.begin(&x->token, &x->rec, x->req.sigv4 ? NULL : &x->extra,
				     http->observer.payload);
	}
	x->begun = true;
	if (build_headers(x) < 0 || !(x->easy = easy_get(http)))
		return OUT_NOMEM;
	if (setup_easy(x, x->easy) != CURLE_OK)
		return OUT_NOMEM;
	if (curl_multi_add_handle(http->multi, x->easy) != CURLM_OK)
		return OUT_NOMEM;
	x->state = XFER_RUNNING;
	return OUT_RESPONSE;
}

static enum outcome classify(xfer *x, CURLcode cc)
{
	curl_off_t connect_us = 0;
	long sent = 0;

	if (x->cancelled)
		return OUT_CANCELLED;
	if (x->idle)
		return OUT_IDLE;
	if (x->user_stop)
		return OUT_USER;
	if (x->nomem)
		return OUT_NOMEM;
	switch (cc) {
	case CURLE_OK:
		return OUT_RESPONSE;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return OUT_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		/* Only a request that never went out may be sent again whatever its method; a
		 * reused connection reports no connect time, so the bytes sent decide. */
		curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
		curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
		return connect_us == 0 && sent == 0 && x->status == 0 ? OUT_CONNECT : OUT_TIMEOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SEND_FAIL_REWIND:
		return OUT_BROKEN;
	case CURLE_OUT_OF_MEMORY:
		return OUT_NOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_READ_ERROR:
		return OUT_USER;
	default:
		return OUT_OTHER;
	}
}

/*
 * The attempt's error.type: the status of an error answer, else one of the classes the HTTP
 * semantic conventions name (timeout, connection_refused, name_resolution, tls_handshake,
 * _OTHER); "cancelled" for a request stopped on purpose, which the observer does not count as
 * an error.
 */
static const char *error_type(xfer *x, enum outcome o, CURLcode cc)
{
	switch (o) {
	case OUT_RESPONSE:
		if (x->status < 400)
			return NULL;
		snprintf(x->status_text, sizeof(x->status_text), "%ld", x->status);
		return x->status_text;
	case OUT_TIMEOUT:
	case OUT_IDLE:
		return "timeout";
	case OUT_CANCELLED:
		return "cancelled";
	default:
		break;
	}
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "name_resolution";
	case CURLE_COULDNT_CONNECT:
		return "connection_refused";
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return "tls_handshake";
	default:
		return "_OTHER";
	}
}

static void observer_end(xfer *x, enum outcome o, CURLcode cc)
{
	dtn__http *http = x->http;

	if (!x->begun)
		return;
	x->begun = false;
	x->rec.status = x->status;
	x->rec.error_type = error_type(x, o, cc);
	if (x->req.read)
		x->rec.request_bytes = x->up_bytes;
	x->rec.response_bytes = x->down_bytes;
	if (http->has_observer && http->observer.end)
		http->observer.end(x->token, &x->rec, http->observer.payload);
	x->token = NULL;
}

/* Returns the easy handle and the attempt's header lists. */
static void attempt_release(xfer *x)
{
	if (x->easy) {
		if (x->state == XFER_RUNNING)
			curl_multi_remove_handle(x->http->multi, x->easy);
		easy_put(x->http, x->easy);
		x->easy = NULL;
	}
	curl_slist_free_all(x->slist);
	x->slist = NULL;
	dtn__strv_free(&x->extra);
}

static long backoff_delay(dtn__http *http, int attempts)
{
	long d = http->backoff_ms, max = http->backoff_max_ms;

	for (int i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	d += (long)(next_random(http) % (uint64_t)(d / 4 + 1));
	return d > max ? max : d;
}

static bool should_retry(xfer *x, enum outcome o)
{
	bool replayable = !x->read_started || x->req.rewind;

	if (x->attempts >= x->http->max_attempts || x->delivered || !replayable ||
	    x->req.idempotent < 0)
		return false;
	switch (o) {
	case OUT_CONNECT:
		return true;
	case OUT_BROKEN:
	case OUT_TIMEOUT:
	case OUT_IDLE:
		return idempotent(&x->req);
	case OUT_RESPONSE:
		/* a 429 was refused before anything was done, whatever the method */
		return x->status == 429 ||
		       (idempotent(&x->req) &&
			(x->status == 502 || x->status == 503 || x->status == 504 ||
			 (x->status == 500 && x->req.retry_500)));
	default:
		return false;
	}
}

/* Why the attempt failed, as a short phrase (never the URL's query or credentials). */
static const char *reason(xfer *x, CURLcode cc, char *buf, size_t size)
{
	long os_errno = 0;

	if (x->easy)
		curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		long t = x->req.timeout_ms ? x->req.timeout_ms : x->http->timeout_ms;
		if (t <= 0 || t > x->http->connect_timeout_ms)
			t = x->http->connect_timeout_ms;
		snprintf(buf, size, "connection timed out after %ld ms", t);
		return buf;
	}
	if (os_errno)
		return strerror_r((int)os_errno, buf, size);
	return curl_easy_strerror(cc);
}

static void finish(xfer *x, enum outcome o, CURLcode cc)
{
	const char *m = method_of(&x->req), *u = x->url;
	int n = x->attempts;
	const char *s = n == 1 ? "" : "s";
	long timeout = x->req.timeout_ms ? x->req.timeout_ms : x->http->timeout_ms;
	char why[256];
	dtn_error *err = &x->err;

	switch (o) {
	case OUT_RESPONSE:
		x->rc = 0;
		break;
	case OUT_CONNECT:
		x->rc = dtn__error_set(err, DTN_ECONNECT, "could not connect to %s after %d attempt%s: %s",
			u, n, s, reason(x, cc, why, sizeof(why)));
		break;
	case OUT_BROKEN:
		x->rc = dtn__error_set(err, DTN_ECONNECT, "%s %s: the connection broke (%d attempt%s): %s",
			m, u, n, s, reason(x, cc, why, sizeof(why)));
		break;
	case OUT_TIMEOUT:
		x->resp->deadline_hit = x->deadline_capped;
		x->rc = dtn__error_set(err, DTN_ETIMEOUT, "%s %s timed out after %ld ms (%d attempt%s)",
			m, u, timeout, n, s);
		break;
	case OUT_IDLE:
		x->rc = dtn__error_set(err, DTN_ETIMEOUT,
			"%s %s: nothing received for %ld ms (%d attempt%s)", m, u, x->req.idle_timeout_ms,
			n, s);
		break;
	case OUT_CANCELLED:
		x->rc = dtn__error_set(err, DTN_EINTR, "%s %s was interrupted", m, u);
		break;
	case OUT_USER:
		x->rc = dtn__error_set(err, DTN_EUSER, "%s %s was stopped by a callback", m, u);
		break;
	case OUT_NOMEM:
		x->rc = dtn__error_set(err, DTN_ENOMEM, "out of memory during %s %s", m, u);
		break;
	case OUT_REWIND:
		x->rc = dtn__error_set(err, DTN_EIO, "%s %s: the request body could not be sent again",
			m, u);
		break;
	default:
		x->rc = dtn__error_set(err, cc == CURLE_URL_MALFORMAT ? DTN_EINVAL : DTN_ERROR,
			"%s %s failed: %s", m, u, curl_easy_strerror(cc));
		break;
	}
	attempt_release(x);
	x->state = XFER_DONE;
}

/* An attempt ended (libcurl said so, or the loop stopped it): report, then retry or finish. */
static void attempt_done(xfer *x, CURLcode cc)
{
	dtn__http *http = x->http;
	enum outcome o;
	long delay, ra;

	if (x->status == 0 && x->easy)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	o = classify(x, cc);
	x->resp->status = x->status;
	observer_end(x, o, cc);
	if (!should_retry(x, o) || xfer_cancelled(x)) {
		if (xfer_cancelled(x) && o != OUT_RESPONSE)
			o = OUT_CANCELLED;
		/* Keep the easy handle for the message (OS errno), then release it. */
		finish(x, o, cc);
		return;
	}
	delay = backoff_delay(http, x->attempts);
	ra = o == OUT_RESPONSE ? retry_after_ms(x->resp) : -1;
	if (ra > http->retry_after_max_ms) {
		/* never sooner than asked: a wait longer than allowed leaves the answer final */
		finish(x, o, cc);
		return;
	}
	if (ra > delay)
		delay = ra;
	if (x->req.deadline_ms > 0 && now_ms() + delay >= x->req.deadline_ms) {
		/* the retry would begin after the deadline: this attempt's outcome is final */
		x->deadline_capped = true;
		finish(x, o, cc);
		return;
	}
	if (http->has_observer && http->observer.retry)
		http->observer.retry(&x->rec, delay, http->observer.payload);
	attempt_release(x);
	x->state = XFER_WAITING;
	x->due_ms = now_ms() + delay;
}

/* Stops a running attempt from the loop (cancel, idle timeout). */
static void attempt_stop(xfer *x)
{
	curl_multi_remove_handle(x->http->multi, x->easy);
	x->state = XFER_WAITING; /* no longer in the multi handle */
	attempt_done(x, CURLE_ABORTED_BY_CALLBACK);
}

static void xfer_free(xfer *x)
{
	xfer **pp = &x->http->xfers;

	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp)
		*pp = x->next;
	if (x->state == XFER_RUNNING)
		x->cancelled = true;
	observer_end(x, OUT_CANCELLED, CURLE_OK);
	attempt_release(x);
	dtn__free(x->url);
	dtn__free(x->host);
	dtn__free(x);
}

/* ---- the loop ---- */

static void start_due(dtn__http *http, int64_t now)
{
	for (xfer *x = http->xfers; x; x = x->next) {
		enum outcome o;
		if (x->state != XFER_WAITING || x->due_ms > now)
			continue;
		if (xfer_cancelled(x)) {
			observer_end(x, OUT_CANCELLED, CURLE_OK);
			finish(x, OUT_CANCELLED, CURLE_ABORTED_BY_CALLBACK);
			continue;
		}
		if ((o = attempt_start(x)) != OUT_RESPONSE) {
			observer_end(x, o, CURLE_OK);
			finish(x, o, CURLE_OK);
		}
	}
}

static void pump(dtn__http *http)
{
	int running = 0, left;
	CURLMsg *msg;
	int64_t now = now_ms();

	if (cancelled(http)) {
		for (xfer *x = http->xfers; x; x = x->next) {
			if (x->req.ignore_cancel)
				continue;
			if (x->state == XFER_RUNNING) {
				x->cancelled = true;
				attempt_stop(x);
			} else if (x->state == XFER_WAITING) {
				x->due_ms = 0;
			}
		}
	}
	start_due(http, now);
	curl_multi_perform(http->multi, &running);
	while ((msg = curl_multi_info_read(http->multi, &left))) {
		xfer *x = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x && x->state == XFER_RUNNING) {
			CURLcode cc = msg->data.result;
			curl_multi_remove_handle(http->multi, x->easy);
			x->state = XFER_WAITING;
			attempt_done(x, cc);
		}
	}
	now = now_ms();
	for (xfer *x = http->xfers; x; x = x->next) {
		if (x->state == XFER_RUNNING && x->req.idle_timeout_ms > 0 &&
		    now - x->activity_ms >= x->req.idle_timeout_ms) {
			x->idle = true;
			attempt_stop(x);
		}
	}
	start_due(http, now_ms());
}

/* How long the loop may sleep: until the earliest retry, at most POLL_MS. */
static long poll_budget(dtn__http *http, int64_t now)
{
	long budget = POLL_MS;

	for (xfer *x = http->xfers; x; x = x->next) {
		if (x->state == XFER_WAITING && x->due_ms - now < budget)
			budget = x->due_ms > now ? (long)(x->due_ms - now) : 0;
	}
	return budget;
}

int dtn__http_batch_new(dtn__http_batch **out, dtn__http *http)
{
	dtn__http_batch *b = dtn__calloc(1, sizeof(*b));

	*out = b;
	if (!b)
		return DTN_ENOMEM;
	b->http = http;
	return 0;
}

void dtn__http_batch_free(dtn__http_batch *batch)
{
	xfer *x, *next;

	if (!batch)
		return;
	for (x = batch->http->xfers; x; x = next) {
		next = x->next;
		if (x->batch == batch)
			xfer_free(x);
	}
	dtn__free(batch);
}

size_t dtn__http_batch_pending(const dtn__http_batch *batch)
{
	return batch ? batch->count : 0;
}

int dtn__http_batch_add(dtn__http_batch *batch, const dtn__http_request *req,
	dtn__http_response *response, void *tag, dtn_error *err)
{
	dtn__http *http = batch->http;
	xfer *x = dtn__calloc(1, sizeof(*x));

	if (!x)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	x->http = http;
	x->batch = batch;
	x->req = *req;
	x->resp = response;
	x->tag = tag;
	x->state = XFER_WAITING;
	x->url = dtn__http_redact_url(req->url);
	x->host = req->url ? url_host_port(req->url, &x->rec.port) : dtn__strdup("");
	if (!x->url || !x->host) {
		dtn__free(x->url);
		dtn__free(x->host);
		dtn__free(x);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	x->rec.method = method_of(req);
	x->rec.url = x->url;
	x->rec.host = x->host;
	dtn__http_response_clear(response);
	x->next = http->xfers;
	http->xfers = x;
	batch->count++;
	return 0;
}

/* The first finished transfer of the batch, unlinked; NULL if none. */
static xfer *take_done(dtn__http_batch *batch)
{
	for (xfer **pp = &batch->http->xfers; *pp; pp = &(*pp)->next) {
		xfer *x = *pp;
		if (x->batch == batch && x->state == XFER_DONE) {
			*pp = x->next;
			x->next = NULL;
			batch->count--;
			return x;
		}
	}
	return NULL;
}

int dtn__http_batch_next(dtn__http_batch *batch, long wait_ms, void **tag, int *result,
	dtn_error *err)
{
	dtn__http *http = batch->http;
	int64_t deadline = wait_ms >= 0 ? now_ms() + wait_ms : INT64_MAX;

	for (;;) {
		xfer *x;
		int64_t now;
		long budget;
		pump(http);
		if ((x = take_done(batch))) {
			*tag = x->tag;
			*result = x->rc;
			if (x->rc < 0 && err)
				*err = x->err;
			dtn__free(x->url);
			dtn__free(x->host);
			dtn__free(x);
			return 1;
		}
		now = now_ms();
		if (batch->count == 0 || now >= deadline)
			return 0;
		budget = poll_budget(http, now);
		if (deadline - now < budget)
			budget = (long)(deadline - now);
		curl_multi_poll(http->multi, NULL, 0, (int)budget, NULL);
	}
}

int dtn__http_do(dtn__http *http, const dtn__http_request *req, dtn__http_response *response,
	dtn_error *err)
{
	dtn__http_batch batch = {http, 0};
	void *tag;
	int rc, result = DTN_ERROR;

	if ((rc = dtn__http_batch_add(&batch, req, response, NULL, err)) < 0)
		return rc;
	while (!dtn__http_batch_next(&batch, -1, &tag, &result, err))
		;
	return result;
}
