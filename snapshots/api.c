/*
 * api.c - the Daytona client: its headers, one API call with the error answer mapped to a dtn
 * error, the overall deadline and cancellation.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "otel_http.h"

/* The transport's clock, so the overall deadline can be handed to it as it is. */
int64_t dtn__now_ms(void)
{
	return dtn__http_now_ms();
}

/* Builds the header lists once: every request sends the same ones (wire §2). */
static int make_headers(dtn_daytona *c)
{
	const dtn__daytona_config *cfg = &c->cfg;
	const char *token = cfg->api_key ? cfg->api_key : cfg->jwt_token;
	dtn__strv *lists[] = {&c->headers, &c->stream_headers};
	int rc = 0;

	if (dtn__strv_push(&c->headers, "Accept: application/json") < 0)
		return DTN_ENOMEM;
	/* the log stream is plain text: any type, never JSON */
	if (dtn__strv_push(&c->stream_headers, "Accept: */*") < 0)
		return DTN_ENOMEM;
	for (size_t i = 0; i < DTN__ARRAY_LEN(lists) && rc == 0; i++) {
		dtn__strv *h = lists[i];

		if (token)
			rc = dtn__strv_push_owned(h, dtn__aprintf("Authorization: Bearer %s", token));
		if (rc == 0)
			rc = dtn__strv_push(h, "X-Daytona-Source: " DTN__DAYTONA_SOURCE);
		if (rc == 0)
			rc = dtn__strv_push(h, "X-Daytona-SDK-Version: " DTN_VERSION);
		if (rc == 0 && !cfg->api_key && cfg->jwt_token)
			rc = dtn__strv_push_owned(h, dtn__aprintf("X-Daytona-Organization-ID: %s",
								  cfg->organization_id));
	}
	return rc;
}

static void free_headers(dtn__strv *h)
{
	/* the Authorization line holds the credential */
	for (size_t i = 0; i < h->len; i++)
		if (strncasecmp(h->items[i], "Authorization:", 14) == 0)
			explicit_bzero(h->items[i], strlen(h->items[i]));
	dtn__strv_free(h);
}

int dtn_daytona_new(dtn_daytona **out, const dtn_daytona_opts *opts, dtn_error *err)
{
	static const dtn_daytona_opts none;
	dtn_daytona *c;
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if (!opts)
		opts = &none;
	if (!(c = dtn__calloc(1, sizeof(*c))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	pthread_mutex_init(&c->cb_lock, NULL);
	if ((rc = dtn__daytona_config_resolve(&c->cfg, opts, err)) < 0)
		goto fail;
	c->poll_ms = opts->poll_interval_ms > 0 ? opts->poll_interval_ms : 1000;
	c->grace_ms = opts->log_grace_ms > 0 ? opts->log_grace_ms : 2000;
	c->request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 60000;
	c->cancel = opts->cancel;
	c->warn = opts->warn;
	c->payload = opts->payload;
	/* telemetry's observer costs next to nothing while telemetry is off */
	c->observer = opts->http_observer ? *(const dtn__http_observer *)opts->http_observer
					  : *dtn__otel_http_observer();
	c->has_observer = true;
	c->http_opts = (dtn__http_opts){
		.version = 1,
		.connect_timeout_ms = opts->connect_timeout_ms,
		.timeout_ms = c->request_timeout_ms,
		.max_attempts = opts->max_attempts,
		.backoff_ms = opts->backoff_ms,
		.cancel = opts->cancel,
		.observer = c->has_observer ? &c->observer : NULL,
	};
	dtn_daytona_set_timeout(c, opts->timeout_ms);
	if ((rc = make_headers(c)) < 0) {
		dtn__error_set(err, rc, "out of memory");
		goto fail;
	}
	if ((rc = dtn__http_new(&c->http, &c->http_opts)) < 0) {
		dtn__error_set(err, rc, "cannot set up the HTTP client");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	dtn_daytona_free(c);
	return rc;
}

void dtn_daytona_free(dtn_daytona *c)
{
	if (!c)
		return;
	dtn__http_free(c->http);
	free_headers(&c->headers);
	free_headers(&c->stream_headers);
	dtn__daytona_config_clear(&c->cfg);
	pthread_mutex_destroy(&c->cb_lock);
	dtn__free(c);
}

void dtn_daytona_set_timeout(dtn_daytona *c, long timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
	c->deadline_ms = timeout_ms > 0 ? dtn__now_ms() + timeout_ms : 0;
}

const char *dtn_daytona_api_url(const dtn_daytona *c)
{
	return c->cfg.api_url;
}

const char *dtn_daytona_target(const dtn_daytona *c)
{
	return c->cfg.target;
}

bool dtn_daytona_has_credentials(const dtn_daytona *c)
{
	return c->cfg.api_key || c->cfg.jwt_token;
}

/* ---- deadline and cancellation ---- */

long dtn__api_remaining_ms(const dtn_daytona *c)
{
	int64_t left;

	if (!c->deadline_ms)
		return LONG_MAX;
	left = c->deadline_ms - dtn__now_ms();
	return left > 0 ? (long)left : 0;
}

int dtn__api_check(dtn_daytona *c, dtn_error *err)
{
	if (c->cancel && *c->cancel)
		return dtn__error_set(err, DTN_EINTR, "interrupted");
	if (c->deadline_ms && dtn__api_remaining_ms(c) == 0)
		return dtn__error_set(err, DTN_ETIMEOUT, "the time limit of %ld s ran out",
				      (c->timeout_ms + 999) / 1000);
	return 0;
}

int dtn__api_sleep(dtn_daytona *c, long ms, dtn_error *err)
{
	int64_t until = dtn__now_ms() + ms;
	int rc;

	while ((rc = dtn__api_check(c, err)) == 0) {
		int64_t left = until - dtn__now_ms();
		struct timespec ts;

		if (left <= 0)
			return 0;
		if (left > 20)
			left = 20;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			if (c->cancel && *c->cancel)
				break;
	}
	return rc;
}

void dtn__api_warn(dtn_daytona *c, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!c->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->cb_lock);
	c->warn(msg, c->payload);
	pthread_mutex_unlock(&c->cb_lock);
}

int dtn__api_log(dtn_daytona *c, dtn_log_fn log, void *payload, dtn_log_kind kind,
		 const char *line, size_t len)
{
	int rc;

	if (!log)
		return 0;
	pthread_mutex_lock(&c->cb_lock);
	rc = log(kind, line, len, payload);
	pthread_mutex_unlock(&c->cb_lock);
	return rc;
}

/* ---- paths ---- */

char *dtn__api_path(const char *fmt, ...)
{
	dtn__buf b = DTN__BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (p[0] == '%' && p[1] == 's') {
			char *seg = dtn__http_escape(va_arg(ap, const char *));

			if (!seg)
				b.failed = true;
			else
				dtn__buf_puts(&b, seg);
			dtn__free(seg);
			p++;
		} else {
			dtn__buf_putc(&b, *p);
		}
	}
	va_end(ap);
	if (b.failed) {
		dtn__buf_free(&b);
		return NULL;
	}
	return dtn__buf_detach(&b);
}

bool dtn__is_uuid(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};

	for (size_t g = 0; g < DTN__ARRAY_LEN(groups); g++) {
		for (int i = 0; i < groups[g]; i++, s++)
			if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
			      (*s >= 'A' && *s <= 'F')))
				return false;
		if (g + 1 < DTN__ARRAY_LEN(groups) && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

/* ---- error answers ---- */

static const char *reason_phrase(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "";
	}
}

static int status_code(long status)
{
	switch (status) {
	case 400:
		return DTN_EINVAL;
	case 401:
	case 403:
		return DTN_EAUTH;
	case 404:
		return DTN_ENOTFOUND;
	case 409:
		return DTN_EEXISTS;
	case 429:
		return DTN_ERATELIMIT;
	default:
		return DTN_EHTTP;
	}
}

/* The server's message from a Nest error body (wire §3), or the start of a body of text. */
static bool is_html(const char *body, size_t len)
{
	while (len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n'))
		body++, len--;
	return (len >= 14 && strncasecmp(body, "<!doctype html", 14) == 0) ||
	       (len >= 5 && strncasecmp(body, "<html", 5) == 0);
}

#define HTML_HINT "an HTML page, not an API answer (does the API URL end in /api?)"

static void server_message(const dtn__http_response *r, char *buf, size_t size)
{
	const char *body = dtn__buf_cstr(&r->body);
	json_t *j = r->body.len ? json_loadb(body, r->body.len, 0, NULL) : NULL;
	const json_t *m = j ? json_object_get(j, "message") : NULL;
	dtn__buf text = DTN__BUF_INIT;

	buf[0] = '\0';
	if (m && json_is_array(m)) {
		size_t i;
		json_t *v;

		json_array_foreach(m, i, v) if (json_is_string(v))
		{
			if (text.len)
				dtn__buf_puts(&text, ", ");
			dtn__buf_puts(&text, json_string_value(v));
		}
	} else if (m && json_is_string(m)) {
		dtn__buf_puts(&text, json_string_value(m));
	} else if (j && dtn__json_str(j, "error")) {
		dtn__buf_puts(&text, dtn__json_str(j, "error"));
	} else if (!j && r->body.len) {
		if (is_html(body, r->body.len))
			dtn__buf_puts(&text, HTML_HINT);
		else
			dtn__buf_add(&text, body, r->body.len > 300 ? 300 : r->body.len);
	}
	dtn__printable(buf, size, dtn__buf_cstr(&text));
	dtn__buf_free(&text);
	json_decref(j);
}

/* "; retry after N s" from a Retry-After or Retry-After-<name> header, or "". */
static void retry_after(const dtn__http_response *r, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < r->headers.len; i++) {
		const char *h = r->headers.items[i], *colon = strchr(h, ':');

		if (colon && strncasecmp(h, "retry-after", 11) == 0) {
			char v[40];

			while (*++colon == ' ')
				;
			snprintf(buf, size, "; the server asks to retry after %s s",
				 dtn__printable(v, sizeof(v), colon));
			return;
		}
	}
}

int dtn__api_error_from_response(const dtn__http_response *r, const char *method,
				 const char *url, const char *what, dtn_error *err)
{
	char msg[1024], extra[120] = "", *shown = dtn__http_redact_url(url);
	int code = status_code(r->status);

	server_message(r, msg, sizeof(msg));
	if (r->status == 429)
		retry_after(r, extra, sizeof(extra));
	if (r->status == 404 && what)
		dtn__error_set(err, code, "%s not found (%s %s: 404 Not Found%s%s)", what, method,
			       shown ? shown : "", msg[0] ? ": " : "", msg);
	else
		dtn__error_set(err, code, "%s %s: %ld %s%s%s%s", method, shown ? shown : "",
			       r->status, reason_phrase(r->status), msg[0] ? ": " : "", msg, extra);
	if (r->status == 401 || r->status == 403)
		dtn__error_prefix(err, r->status == 401
					       ? "the credentials were rejected (check DAYTONA_API_KEY or "
						 "DAYTONA_JWT_TOKEN): "
					       : "not allowed with these credentials: ");
	dtn__free(shown);
	return code;
}

/* ---- one API call ---- */

static long request_timeout(const dtn_daytona *c)
{
	long left = dtn__api_remaining_ms(c);

	return left < c->request_timeout_ms ? (left > 0 ? left : 1) : c->request_timeout_ms;
}

static int parse_answer(const dtn__http_response *r, const char *method, const char *url,
			json_t **out, dtn_error *err)
{
	json_error_t jerr;
	json_t *j;

	if (!out)
		return 0;
	if (r->body.len == 0) {
		*out = NULL;
		return 0;
	}
	if (!(j = json_loadb(dtn__buf_cstr(&r->body), r->body.len, 0, &jerr))) {
		char *shown = dtn__http_redact_url(url);
		int rc = is_html(dtn__buf_cstr(&r->body), r->body.len)
				 ? dtn__error_set(err, DTN_EPROTOCOL, "%s %s: " HTML_HINT, method,
						  shown ? shown : "")
				 : dtn__error_set(err, DTN_EPROTOCOL,
						  "%s %s: the answer is not JSON (%s at byte %d)",
						  method, shown ? shown : "", jerr.text, jerr.position);

		dtn__free(shown);
		return rc;
	}
	*out = j;
	return 0;
}

int dtn__api_call(dtn_daytona *c, const char *method, const char *path, json_t *body,
		  const char *what, json_t **out, dtn_error *err)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn__strv headers = {NULL, 0, 0};
	char *url = NULL, *text = NULL;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = dtn__api_check(c, err)) < 0)
		return rc;
	if (!(url = dtn__aprintf("%s%s", c->cfg.api_url, path)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->headers.len && rc == 0; i++) {
		rc = dtn__strv_push(&headers, c->headers.items[i]);
		if (rc == 0 && i == 0 && body)
			rc = dtn__strv_push(&headers, "Content-Type: application/json");
	}
	if (rc == 0 && body && !(text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = DTN_ENOMEM;
	if (rc < 0) {
		dtn__error_set(err, rc, "out of memory");
		goto out;
	}
	rc = dtn__http_do(c->http,
			  &(dtn__http_request){.method = method,
					       .url = url,
					       .headers = (const char *const *)headers.items,
					       .body = text,
					       .body_len = text ? strlen(text) : 0,
					       /* as the SDKs: compressed answers are welcome */
					       .accept_encoding = "",
					       .timeout_ms = request_timeout(c),
					       .deadline_ms = c->deadline_ms},
			  &r, err);
	/* a request cut short by the overall deadline reports the deadline */
	if (rc == DTN_ETIMEOUT && r.deadline_hit)
		rc = dtn__error_set(err, DTN_ETIMEOUT, "the time limit of %ld s ran out",
				    (c->timeout_ms + 999) / 1000);
	if (rc < 0)
		goto out;
	if (r.status >= 200 && r.status < 300)
		rc = parse_answer(&r, method, url, out, err);
	else
		rc = dtn__api_error_from_response(&r, method, url, what, err);
out:
	dtn__http_response_clear(&r);
	free_headers(&headers);
	free(text);
	dtn__free(url);
	return rc;
}

int dtn__api_request(dtn_daytona *c, const char *method, const char *path, json_t *body,
		     json_t **out, dtn_error *err)
{
	return dtn__api_call(c, method, path, body, NULL, out, err);
}

/* ---- JSON helpers ---- */

const char *dtn__json_str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long dtn__json_int(const json_t *o, const char *key, long dflt)
{
	const json_t *v = json_object_get(o, key);
	double d;

	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (!json_is_real(v))
		return dflt;
	/* a real beyond the range of long has no conversion: it is taken as absent */
	d = json_real_value(v);
	return d >= (double)LONG_MIN && d < (double)LONG_MAX ? (long)d : dflt;
}

json_t *dtn__json_strv(const char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

char **dtn__json_to_strv(const json_t *arr)
{
	dtn__strv v = {NULL, 0, 0};
	size_t i;
	json_t *s;
	char **out;

	json_array_foreach(arr, i, s) if (json_is_string(s) &&
					  dtn__strv_push(&v, json_string_value(s)) < 0)
	{
		dtn__strv_free(&v);
		return NULL;
	}
	if (!v.items)
		return dtn__calloc(1, sizeof(char *));
	out = v.items;
	return out;
}
