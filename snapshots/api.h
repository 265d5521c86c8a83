/*
 * api.h - the Daytona client's inside, shared by the snapshots module's files (snapshots,
 * volumes, sandboxes, object storage). Not installed.
 */
#ifndef DTN_SNAPSHOTS_API_H
#define DTN_SNAPSHOTS_API_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dtn_daytona.h"
#include "dtn_otel.h"
#include "http.h"
#include "internal.h"

#define DTN__DAYTONA_DEFAULT_URL "https://app.daytona.io/api"
#define DTN__DAYTONA_SOURCE "dtn-build"

/* The resolved configuration. Strings are owned; NULL when not configured. */
typedef struct dtn__daytona_config {
	char *api_key;
	char *jwt_token;          /* NULL when an API key is used */
	char *organization_id;    /* sent only with a token */
	char *api_url;            /* never NULL; no trailing '/' */
	char *target;
} dtn__daytona_config;

/*
 * Resolves the configuration from the explicit values of `opts`, the environment and the
 * .env files (see dtn_daytona.h). Errors: DTN_ECONFIG, DTN_ENOMEM. `out` is cleared with
 * dtn__daytona_config_clear in every case.
 */
int dtn__daytona_config_resolve(dtn__daytona_config *out, const dtn_daytona_opts *opts,
				dtn_error *err);
void dtn__daytona_config_clear(dtn__daytona_config *cfg);

/* One KEY=VALUE pair of a .env file. */
typedef struct dtn__dotenv {
	dtn__strv keys;
	dtn__strv values;
} dtn__dotenv;

/*
 * Parses .env text: `# comments`, blank lines, an optional `export ` prefix, values bare
 * (trailing ` # comment` removed, blanks trimmed), 'single-quoted' (literal), "double-quoted"
 * (\n \r \t \" \\ escapes) or `backquoted`; quoted values may span lines. Only keys starting
 * with `prefix` are kept (NULL: all); a later definition wins. A malformed line that mentions
 * `prefix` is passed to warn as "NAME:LINE: ..." (never with its value). Returns 0 or DTN_ENOMEM.
 */
int dtn__dotenv_parse(dtn__dotenv *out, const char *text, size_t len, const char *name,
		      const char *prefix, dtn_daytona_warn_fn warn, void *payload);
/* The value of key (borrowed), or NULL. */
const char *dtn__dotenv_get(const dtn__dotenv *env, const char *key);
void dtn__dotenv_clear(dtn__dotenv *env);

struct dtn_daytona {
	dtn__daytona_config cfg;
	dtn__http *http;
	dtn__http_opts http_opts;      /* to make more clients (a log stream's thread) */
	dtn__http_observer observer;
	bool has_observer;
	dtn__strv headers;             /* the API headers without Content-Type */
	dtn__strv stream_headers;      /* the same without Accept (log streams) */
	long poll_ms;
	long grace_ms;
	long request_timeout_ms;
	int64_t deadline_ms;           /* monotonic; 0: none */
	long timeout_ms;               /* what the deadline was set from, for messages */
	const volatile int *cancel;
	dtn_daytona_warn_fn warn;
	void *payload;
	/* Serialises the application's log and warn callbacks when a stream runs beside polling. */
	pthread_mutex_t cb_lock;
};

/* Monotonic milliseconds. */
int64_t dtn__now_ms(void);

/*
 * Performs one API call: `path` (starting with '/', segments already escaped) is appended to
 * the API URL; `body` (may be NULL) is sent as compact JSON. On a 2xx answer *out (may be NULL)
 * gets the parsed JSON (NULL for an empty body), owned by the caller. Error answers are mapped
 * as dtn_daytona.h says; `what` (may be NULL) names the object for the message of a 404
 * ("snapshot \"x\""). Errors also: DTN_EPROTOCOL (a 2xx answer that is not JSON), DTN_EINTR,
 * DTN_ETIMEOUT (the client's deadline), transport errors.
 */
int dtn__api_call(dtn_daytona *c, const char *method, const char *path, json_t *body,
		  const char *what, json_t **out, dtn_error *err);

/* dtn__api_call without naming the object. */
int dtn__api_request(dtn_daytona *c, const char *method, const char *path, json_t *body,
		     json_t **out, dtn_error *err);

/*
 * Fills err from an error answer (status >= 300) of `method url` and returns the mapped code.
 * The message is the server's (body "message", else "error", else the start of the body).
 */
int dtn__api_error_from_response(const dtn__http_response *r, const char *method,
				 const char *url, const char *what, dtn_error *err);

/*
 * A path from a printf-like template whose %s arguments are URL-encoded as path segments:
 * dtn__api_path("/snapshots/%s/activate", id). Only %s is supported. NULL when memory runs out.
 */
char *dtn__api_path(const char *fmt, ...);

/* DTN_EINTR when the cancel flag is set, DTN_ETIMEOUT when the deadline passed, else 0. */
int dtn__api_check(dtn_daytona *c, dtn_error *err);

/* Sleeps `ms` in small steps, stopping early with dtn__api_check's errors. */
int dtn__api_sleep(dtn_daytona *c, long ms, dtn_error *err);

/* Milliseconds left before the deadline (LONG_MAX when there is none; 0 when it passed). */
long dtn__api_remaining_ms(const dtn_daytona *c);

/* Sends a warning (formatted) to the application, under the callback lock. */
void dtn__api_warn(dtn_daytona *c, const char *fmt, ...) DTN__PRINTF(2, 3);

/* Whether s looks like a UUID (8-4-4-4-12 hex digits). */
bool dtn__is_uuid(const char *s);

/* ---- JSON helpers ---- */

/* The string member `key` of o, borrowed; NULL when absent or not a string. */
const char *dtn__json_str(const json_t *o, const char *key);
/* The integer member `key` of o (a real truncated); `dflt` when absent, not a number or out of
 * the range of long. */
long dtn__json_int(const json_t *o, const char *key, long dflt);
/* A JSON array of strings from a NULL-terminated list (an empty array for NULL). */
json_t *dtn__json_strv(const char *const *v);
/* The strings of a JSON array as a NULL-terminated list in fresh memory ({NULL} when the
 * member is absent); NULL when memory runs out. Non-strings are skipped. */
char **dtn__json_to_strv(const json_t *arr);

/* ---- snapshots, for the other files of the module ---- */

/* A snapshot from the server's SnapshotDto. Errors: DTN_EPROTOCOL (no id/name/state),
 * DTN_ENOMEM. */
int dtn__snapshot_from_json(dtn_snapshot **out, const json_t *j, dtn_error *err);

/* dtn_snapshot_get without a span of its own: for lookups whose "not found" is an answer. */
int dtn__snapshot_lookup(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out,
			 dtn_error *err);

/* ---- build-log streams ---- */

/*
 * Splits a byte stream into lines of at most `max` bytes (longer ones go out in pieces, never
 * cutting a UTF-8 sequence), without the newline and a trailing '\r'. After a restart, the
 * lines (and pieces of a line) already delivered are skipped when the stream starts over from
 * its beginning.
 */
typedef struct dtn__lines {
	char *buf;
	size_t len;
	size_t max;
	uint64_t line;       /* index of the line being received */
	uint64_t off;        /* bytes of that line received so far */
	uint64_t skip_lines; /* after a restart: lines already delivered */
	uint64_t skip_bytes; /* and bytes of the next one already delivered in pieces */
	uint64_t delivered;  /* lines (and pieces) handed to the callback */
} dtn__lines;

typedef int (*dtn__line_fn)(const char *line, size_t len, void *payload);

/* 0 or DTN_ENOMEM; max 0 means 8192. */
int dtn__lines_init(dtn__lines *l, size_t max);
/* Feeds bytes; returns 0, or the callback's non-zero value. */
int dtn__lines_feed(dtn__lines *l, const char *data, size_t n, dtn__line_fn fn, void *payload);
/* End of stream: delivers an unfinished last line. */
int dtn__lines_finish(dtn__lines *l, dtn__line_fn fn, void *payload);
/* The stream will start over from its beginning: forget the undelivered tail, skip the rest. */
void dtn__lines_restart(dtn__lines *l);
void dtn__lines_free(dtn__lines *l);

/*
 * A build-log stream read on its own thread: GET <url>?follow=true|false with the client's
 * stream headers, the HTTP status checked, lines delivered to `log` under the callback lock.
 * While the build goes on (dtn__logstream_set_final not called), a stream that drops, or that
 * cannot be opened yet (404, connection failures), is opened again after the poll interval,
 * without delivering again what was delivered. Its span, SnapshotService.streamBuildLogs, is a
 * child of `parent` (NULL: the calling thread's current span).
 */
typedef struct dtn__logstream dtn__logstream;

int dtn__logstream_start(dtn__logstream **out, dtn_daytona *c, const char *url, bool follow,
			 dtn_span *parent, dtn_log_fn log, void *payload, dtn_error *err);
/* The build reached a final state: no more re-opening. */
void dtn__logstream_set_final(dtn__logstream *s);
/* Whether the stream ended by itself (end of data, or it gave up). */
bool dtn__logstream_done(dtn__logstream *s);
/* When data last arrived (dtn__now_ms), or when the stream started. */
int64_t dtn__logstream_last_data(dtn__logstream *s);
/* Whether the callback asked to stop. */
bool dtn__logstream_stopped(dtn__logstream *s);
/*
 * For a followed stream once the build is final: when it did not come to its end (it was cut,
 * dropped or given up), the log is read once more from its beginning without following, and
 * only what was not delivered yet is delivered. 1 when that read started (wait for
 * dtn__logstream_done, then finish), 0 when there is nothing to read again.
 */
int dtn__logstream_reread(dtn__logstream *s);
/*
 * Cuts the stream if it still runs, waits for its thread and frees it. Returns DTN_EUSER when
 * the callback asked to stop; when the stream was given up (it could not be opened or kept
 * dropping), that error if `strict`, else a warning and 0. Accepts NULL.
 */
int dtn__logstream_finish(dtn__logstream *s, bool strict, dtn_error *err);

/* Calls the application's log callback with line[0..len) (NUL-terminated) under the callback
 * lock; non-zero means stop. */
int dtn__api_log(dtn_daytona *c, dtn_log_fn log, void *payload, dtn_log_kind kind,
		 const char *line, size_t len);

#endif
