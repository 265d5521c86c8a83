/*
 * http.h - libdtn's HTTP transport over libcurl. Internal: not installed, no libcurl type here.
 *
 * One dtn__http client per process or per operation: it keeps connections alive between
 * requests, applies per-request timeouts and the retry policy, streams request and response
 * bodies, and tells an observer about every attempt (telemetry hangs its CLIENT spans and the
 * W3C traceparent header there, since core may not call otel).
 *
 * Retry policy (design §6): an attempt is retried with exponential backoff and jitter when
 *   - the connection could not be made (refused, unresolved, unreachable), on any method;
 *   - the connection broke or timed out before a response, when the request is idempotent;
 *   - the response is 429, on any method (the request was refused, not run);
 *   - the response is 502, 503 or 504 (or 500 when the request says so), when the request is
 *     idempotent.
 * A retry waits at least what a Retry-After or Retry-After-<name> header says; when that is
 * longer than retry_after_max_ms, the answer is final.
 * A request is idempotent when its method is GET, HEAD, PUT, DELETE or OPTIONS, unless the
 * caller says otherwise. Streamed request bodies are retried only when they can be rewound.
 */
#ifndef DTN_CORE_HTTP_H
#define DTN_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtn_core.h"
#include "internal.h"

/*
 * Threads: a client, and the batches made from it, may be used by one thread at a time;
 * separate clients may be used from separate threads at once. libcurl's global state is set up
 * once, thread-safely, by the first dtn__http_new.
 */
typedef struct dtn__http dtn__http;

/* What one attempt looked like, for observers (telemetry) and error messages. */
typedef struct dtn__http_attempt {
	const char *method;
	const char *url;          /* with any query string removed: safe to record */
	const char *host;         /* server.address */
	int port;                 /* server.port */
	int resend_count;         /* 0 for the first attempt */
	long status;              /* 0 until a response arrived */
	const char *error_type;   /* NULL, or a short low-cardinality type such as "timeout" */
	int64_t request_bytes;    /* -1 when unknown */
	int64_t response_bytes;
} dtn__http_attempt;

typedef struct dtn__http_observer {
	/*
	 * Called before each attempt. It may add request headers by appending complete
	 * "Name: value" lines to `headers` (the traceparent); `headers` is NULL for a SigV4-signed
	 * request, which carries only the headers it was given. `*token` is handed back to end().
	 */
	void (*begin)(void **token, const dtn__http_attempt *attempt, dtn__strv *headers,
		void *payload);
	/* Called after each attempt with its outcome. */
	void (*end)(void *token, const dtn__http_attempt *attempt, void *payload);
	/* Called before sleeping for a retry (dtn.http.retries). */
	void (*retry)(const dtn__http_attempt *attempt, long delay_ms, void *payload);
	void *payload;
} dtn__http_observer;

typedef struct dtn__http_opts {
	int version;              /* 1 */
	long connect_timeout_ms;  /* 0: 10 s */
	long timeout_ms;          /* default per-request timeout; 0: 60 s */
	int max_attempts;         /* 0: 4 (one try and three retries) */
	long backoff_ms;          /* first retry delay; 0: 250 ms, doubled each retry, +0-25% jitter */
	long backoff_max_ms;      /* 0: 8 s */
	const char *user_agent;   /* NULL: "dtn-build/<version>" */
	/* Checked between transfers and while one runs; when it reads non-zero the request
	 * stops with DTN_EINTR. May be NULL. */
	const volatile int *cancel;
	const dtn__http_observer *observer; /* may be NULL; copied */
	/* The longest Retry-After waited for; 0: 60 s. A retry never starts before the time the
	 * server asked for: when it asks for longer, its answer is the response. */
	long retry_after_max_ms;
} dtn__http_opts;

/* How the request body is given: not at all, as bytes, or by a read callback. */
typedef struct dtn__http_request {
	const char *method;       /* "GET", "POST", ... */
	const char *url;
	/* "Name: value" lines, NULL-terminated, may be NULL. A line "Name:" removes a header curl
	 * would add itself (Accept, Expect, ...). */
	const char *const *headers;
	const void *body;         /* NULL with body_len 0 for no body */
	size_t body_len;
	/* A streamed body: read() fills up to len bytes and returns how many, 0 at the end, or
	 * (size_t)-1 to abort the request with DTN_EUSER. rewind(), when given, makes the body
	 * replayable for retries; it returns 0 or fails the request. body_size is the length if
	 * known (-1 for chunked). */
	size_t (*read)(char *buf, size_t len, void *payload);
	int (*rewind)(void *payload);
	int64_t body_size;
	/* When set, response bytes of a 2xx answer go here as they arrive instead of into
	 * response->body (error bodies are still collected, up to 64 KiB). A non-zero return
	 * stops the transfer with DTN_EUSER. */
	int (*on_data)(const char *data, size_t len, void *payload);
	void *payload;
	long timeout_ms;          /* each attempt, whole; 0: the client's default; -1: none */
	/* An absolute end for all attempts together, on dtn__http_now_ms()'s clock; 0: none. No
	 * attempt runs past it and no retry is made that would start after it. */
	int64_t deadline_ms;
	/* A stream that delivers nothing for this long fails with error_type "timeout". 0: off. */
	long idle_timeout_ms;
	int idempotent;           /* 0: by method; 1: yes; -1: never retry */
	/* AWS SigV4 signing by libcurl: sigv4 is curl's provider string ("aws:amz:REGION:s3"),
	 * sigv4_user "ACCESS_KEY:SECRET". The session token and x-amz-content-sha256 go in
	 * headers. NULL for unsigned requests. */
	const char *sigv4;
	const char *sigv4_user;
	/* NULL: no Accept-Encoding is sent; "": every encoding libcurl can decode is offered and
	 * the body is decoded before it reaches on_data or response->body. */
	const char *accept_encoding;
	/* true: the client's cancel flag does not stop this request (clean-up requests such as
	 * aborting an upload after an interrupt); give it a short timeout. */
	bool ignore_cancel;
	/* true: a 500 is retried as a 503 is (S3 asks for it: "InternalError ... try again"). */
	bool retry_500;
} dtn__http_request;

typedef struct dtn__http_response {
	long status;              /* 0 when no response arrived */
	dtn__buf body;            /* the collected body (NUL-terminated) */
	dtn__strv headers;        /* "name: value" lines of the final response */
	int attempts;
	/* The request failed with DTN_ETIMEOUT because its deadline_ms came, not its timeout. */
	bool deadline_hit;
} dtn__http_response;

#define DTN__HTTP_RESPONSE_INIT {0, DTN__BUF_INIT, {NULL, 0, 0}, 0, false}

/* Milliseconds on the monotonic clock, for deadline_ms. */
int64_t dtn__http_now_ms(void);

/* A new client; *out is freed with dtn__http_free. Returns 0, DTN_ENOMEM or DTN_ERROR. */
int dtn__http_new(dtn__http **out, const dtn__http_opts *opts);
void dtn__http_free(dtn__http *http);

/*
 * Performs the request with the retry policy. Returns 0 when a response arrived, whatever its
 * status (the caller judges the status), with `response` filled. Otherwise a negative code:
 * DTN_ECONNECT (the server could not be reached, after retries; the message names the URL
 * without its query), DTN_ETIMEOUT, DTN_EINTR (cancelled), DTN_EUSER (a callback stopped),
 * DTN_ENOMEM. `response` is filled as far as the transfer got; clear it with
 * dtn__http_response_clear in every case.
 */
int dtn__http_do(dtn__http *http, const dtn__http_request *req, dtn__http_response *response,
	dtn_error *err);

void dtn__http_response_clear(dtn__http_response *response);

/*
 * Several requests in flight at once on the client's connections (S3 multipart parts). Each
 * request added keeps the retry policy, timeouts and observer calls of dtn__http_do; the
 * request struct is copied, but what its pointers refer to (URL, headers, body, payload) and
 * `response` must stay valid until the request is handed back by dtn__http_batch_next.
 * Transfers only progress inside dtn__http_batch_next (and dtn__http_do on the same client).
 */
typedef struct dtn__http_batch dtn__http_batch;

/* A new, empty batch on `http`; DTN_ENOMEM. Free it before the client. */
int dtn__http_batch_new(dtn__http_batch **out, dtn__http *http);
/* Stops the requests still in the batch (observers see them end) and frees it. NULL is fine. */
void dtn__http_batch_free(dtn__http_batch *batch);
/* Starts a request; `tag` identifies it in dtn__http_batch_next. Returns 0 or DTN_ENOMEM. */
int dtn__http_batch_add(dtn__http_batch *batch, const dtn__http_request *req,
	dtn__http_response *response, void *tag, dtn_error *err);
/* How many requests were added and not yet handed back. */
size_t dtn__http_batch_pending(const dtn__http_batch *batch);
/*
 * Drives the transfers until one request has finished (with its retries) or wait_ms passed
 * (0: do what can be done without waiting; -1: no limit). Returns 1 with *tag and *result set
 * (result is what dtn__http_do would have returned; err is filled when it is negative), or 0
 * when nothing finished in time or the batch is empty. A set cancel flag finishes every
 * request with DTN_EINTR.
 */
int dtn__http_batch_next(dtn__http_batch *batch, long wait_ms, void **tag, int *result,
	dtn_error *err);

/* The value of the first header called name (case-insensitive), borrowed; NULL if absent. */
const char *dtn__http_response_header(const dtn__http_response *response, const char *name);

/*
 * A URL-encoded copy of s (RFC 3986 unreserved characters kept) for a path segment or query
 * value; NULL when memory runs out.
 */
char *dtn__http_escape(const char *s);
/* As dtn__http_escape but '/' is kept: for a path of several segments (an object key). */
char *dtn__http_escape_path(const char *s);

/* The URL without its query string and fragment, in fresh memory; NULL when memory runs out. */
char *dtn__http_redact_url(const char *url);

#endif
