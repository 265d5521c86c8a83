/*
 * dtn_daytona.h - the Daytona API: configuration, the client, snapshots and their build logs.
 *
 *     dtn_daytona *c;
 *     dtn_snapshot *s, *done;
 *     dtn_daytona_new(&c, NULL, &err);                   // DAYTONA_API_KEY, ... as the SDKs
 *     dtn_snapshot_create(c, &(dtn_snapshot_params){.name = "py", .image_name = "python:3.12"},
 *                         &s, &err);
 *     dtn_snapshot_wait(c, s, &(dtn_snapshot_wait_opts){.log = print_line}, &done, &err);
 *
 * Configuration is read the way the Daytona SDKs read it: explicit values in dtn_daytona_opts
 * (the command line) win over the process environment, which wins over `.env.local`, which
 * wins over `.env` (both in the working directory; only DAYTONA_* keys are taken from them):
 *
 *   DAYTONA_API_KEY                                   an API key, or
 *   DAYTONA_JWT_TOKEN + DAYTONA_ORGANIZATION_ID       a token and its organization
 *   DAYTONA_API_URL  (DAYTONA_SERVER_URL, deprecated) default https://app.daytona.io/api
 *   DAYTONA_TARGET                                    the default region of new snapshots
 *
 * An API key, when present, is used and a token ignored. Credentials never appear in any
 * message, warning or error that libdtn produces.
 *
 * Every request carries the SDKs' headers with `X-Daytona-Source: dtn-build`. Failed requests are
 * retried as the transport's policy says (connection failures; 429, 502, 503 and 504 on
 * idempotent requests), and a server's error answer becomes a dtn error code with the server's
 * message: 400 DTN_EINVAL, 401 and 403 DTN_EAUTH, 404 DTN_ENOTFOUND, 409 DTN_EEXISTS, 429
 * DTN_ERATELIMIT (after the retries), other statuses DTN_EHTTP; a server that cannot be reached
 * DTN_ECONNECT naming its URL.
 *
 * A client may be used by one thread at a time.
 */
#ifndef DTN_DAYTONA_H
#define DTN_DAYTONA_H

#include <stdbool.h>
#include <stddef.h>

#include "dtn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dtn_daytona dtn_daytona;

/* Receives one warning (one line, no newline), e.g. about a deprecated variable. */
typedef void (*dtn_daytona_warn_fn)(const char *message, void *payload);

typedef struct dtn_daytona_opts {
	unsigned version;             /* 0 or 1 */
	/* Explicit values; NULL (or "") means "from the environment or the .env files". Giving
	 * api_key or jwt_token here makes the environment's credentials unused. */
	const char *api_key;
	const char *jwt_token;
	const char *organization_id;
	const char *api_url;
	const char *target;
	/* The directory whose .env.local and .env are read: NULL the working directory, "" none. */
	const char *env_dir;
	bool ignore_environment;      /* do not read the process environment */
	bool no_credentials;          /* credentials are optional (nothing will be sent) */
	long poll_interval_ms;        /* between state polls; 0: 1000 */
	/* One deadline for everything done with the client, counted from dtn_daytona_new (see
	 * dtn_daytona_set_timeout); 0: none. */
	long timeout_ms;
	long request_timeout_ms;      /* one request; 0: 60 s */
	long connect_timeout_ms;      /* 0: 10 s */
	int max_attempts;             /* attempts per request; 0: the transport's default (4) */
	long backoff_ms;              /* first retry delay; 0: the transport's default (250 ms) */
	/* After the snapshot reaches a final state, how long a silent build-log stream is still
	 * read before it is cut (a failed build's stream never ends by itself); 0: 2000 ms. */
	long log_grace_ms;
	/* Checked while waiting and during transfers; when it reads non-zero the operation stops
	 * with DTN_EINTR. May be NULL. */
	const volatile int *cancel;
	dtn_daytona_warn_fn warn;     /* may be NULL */
	void *payload;
	/* The hook told about every HTTP attempt, for libdtn's own modules: a pointer to the
	 * transport's observer structure (copied). NULL: telemetry's (CLIENT spans, traceparent),
	 * which does nothing while telemetry is off. */
	const void *http_observer;
} dtn_daytona_opts;

/*
 * Reads the configuration and makes a client; `opts` may be NULL. On success *out belongs to the
 * caller (dtn_daytona_free). Errors: DTN_ECONFIG (no credentials: the message names the
 * variables; a token without an organization; an API URL that is not http(s); a malformed or
 * unreadable .env file), DTN_ENOMEM, DTN_ERROR.
 */
int dtn_daytona_new(dtn_daytona **out, const dtn_daytona_opts *opts, dtn_error *err);

/* Frees the client. Accepts NULL. */
void dtn_daytona_free(dtn_daytona *c);

/* Restarts the overall deadline: `timeout_ms` from now (0: none). */
void dtn_daytona_set_timeout(dtn_daytona *c, long timeout_ms);

/* The API base URL in use (no trailing '/'), borrowed. */
const char *dtn_daytona_api_url(const dtn_daytona *c);

/* The target (DAYTONA_TARGET), borrowed; NULL when none is configured. */
const char *dtn_daytona_target(const dtn_daytona *c);

/* Whether the client has credentials (false only with no_credentials). */
bool dtn_daytona_has_credentials(const dtn_daytona *c);

/* ---- snapshots ------------------------------------------------------------------------------ */

/* A snapshot as the server described it. Strings are NULL when the server sent none. */
typedef struct dtn_snapshot {
	const char *id;
	const char *name;
	const char *state;        /* pending, pulling, building, active, inactive, error, ... */
	const char *image_name;   /* for snapshots made from a registry image */
	const char *error_reason;
	const char *dockerfile;   /* buildInfo.dockerfileContent; NULL without build info */
	const char *const *context_hashes; /* buildInfo.contextHashes; never NULL */
	const char *const *region_ids;     /* never NULL */
	const char *const *entrypoint;     /* NULL when none */
	int cpu;
	int gpu;
	int memory;               /* GiB ("mem") */
	int disk;                 /* GiB */
	double size;              /* GB; negative when not known yet */
	const char *created_at;
	const char *updated_at;
	const char *json;         /* the server's whole answer as compact JSON text */
} dtn_snapshot;

/* Frees a snapshot. Accepts NULL. */
void dtn_snapshot_free(dtn_snapshot *s);

/* A copy of s (NULL when memory runs out). */
dtn_snapshot *dtn_snapshot_dup(const dtn_snapshot *s);

/* Whether a state is final: active, error or build_failed. */
bool dtn_snapshot_state_is_final(const char *state);

/* What a new snapshot is made of. Exactly one of dockerfile and image_name. */
typedef struct dtn_snapshot_params {
	unsigned version;             /* 0 or 1 */
	const char *name;             /* required */
	const char *dockerfile;       /* build info: the whole Dockerfile text */
	const char *const *context_hashes; /* the contexts the Dockerfile needs (uploaded first);
					    * NULL for none */
	const char *image_name;       /* a registry image with a tag or digest */
	/* With image_name it is sent as such; with a Dockerfile an ENTRYPOINT line is appended to
	 * the Dockerfile instead, as the SDKs do. NULL for none. */
	const char *const *entrypoint;
	int cpu, gpu, memory, disk;   /* 0: the server's default */
	const char *region;           /* regionId; NULL: the client's target, if any */
} dtn_snapshot_params;

/*
 * The exact JSON text dtn_snapshot_create would POST, in fresh memory (*out, freed with
 * dtn_free). `c` may be NULL (then no target fills the region). Errors: DTN_EINVAL (a missing
 * name, both or neither of dockerfile and image_name, an image without a tag, negative
 * resources), DTN_ENOMEM.
 */
int dtn_snapshot_create_body(char **out, const dtn_daytona *c, const dtn_snapshot_params *p,
			     dtn_error *err);

/*
 * Asks the server to make the snapshot (POST /snapshots) and returns its first description
 * (usually "pending"; "active" when the same build already exists in the region). Does not wait.
 * *out belongs to the caller. Errors: those of dtn_snapshot_create_body, DTN_EEXISTS (the name
 * is taken), and the request errors above.
 */
int dtn_snapshot_create(dtn_daytona *c, const dtn_snapshot_params *p, dtn_snapshot **out,
			dtn_error *err);

typedef struct dtn_snapshot_wait_opts {
	unsigned version;             /* 0 or 1 */
	/* Receives the states as DTN_LOG_STATE lines (the first one the state waited from, then
	 * each change) and, when `logs` is set, the build's output as DTN_LOG_OUTPUT lines. Called
	 * from one thread at a time, never after the wait returned. May be NULL. */
	dtn_log_fn log;
	void *payload;
	bool logs;                    /* stream the build logs of a snapshot with build info */
} dtn_snapshot_wait_opts;

/*
 * Polls the snapshot `from` (by id, every poll interval, under the client's deadline) until its
 * state is final, streaming its build logs meanwhile when asked. On success (active) *out is the
 * final description, owned by the caller. Errors: DTN_EBUILD (build_failed or error; the message
 * carries the server's errorReason), DTN_ENOTFOUND (the snapshot vanished), DTN_ETIMEOUT (the
 * deadline passed), DTN_EINTR, DTN_EUSER (the callback asked to stop), request errors. On
 * DTN_EBUILD *out is still set to the failed snapshot.
 */
int dtn_snapshot_wait(dtn_daytona *c, const dtn_snapshot *from, const dtn_snapshot_wait_opts *opts,
		      dtn_snapshot **out, dtn_error *err);

/*
 * The snapshot called `id_or_name` (GET /snapshots/{id or name}). *out belongs to the caller.
 * Errors: DTN_ENOTFOUND naming it, request errors.
 */
int dtn_snapshot_get(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out, dtn_error *err);

/* One page of a listing. */
typedef struct dtn_snapshot_page {
	dtn_snapshot **items;
	size_t count;
	long total;                   /* over all pages */
	long page;                    /* the last page read */
	long total_pages;
} dtn_snapshot_page;

void dtn_snapshot_page_free(dtn_snapshot_page *p);

typedef struct dtn_snapshot_list_opts {
	unsigned version;             /* 0 or 1 */
	long page;                    /* 0: every page; else that page only (1-based) */
	long limit;                   /* per page; 0: 100 when reading every page, else 10 */
	const char *name;             /* only names containing this (case-insensitive); NULL: all */
} dtn_snapshot_list_opts;

/*
 * Lists snapshots (GET /snapshots?page=&limit=); `opts` may be NULL (every page). *out belongs
 * to the caller (dtn_snapshot_page_free). Errors: DTN_EINVAL (a negative page or limit),
 * DTN_EPROTOCOL (a malformed answer), request errors.
 */
int dtn_snapshot_list(dtn_daytona *c, const dtn_snapshot_list_opts *opts,
		      dtn_snapshot_page **out, dtn_error *err);

/*
 * Deletes a snapshot; a name is first resolved to its id with a GET. With `wait`, polls until
 * the server no longer knows it (under the client's deadline). Errors: DTN_ENOTFOUND,
 * DTN_ETIMEOUT, DTN_EINTR, request errors.
 */
int dtn_snapshot_delete(dtn_daytona *c, const char *id_or_name, bool wait, dtn_error *err);

/*
 * Activates an inactive snapshot (a name is resolved first) and returns its new description in
 * *out (may be NULL when not wanted). Errors: DTN_ENOTFOUND, DTN_EINVAL (the server refused: it
 * is not inactive), request errors.
 */
int dtn_snapshot_activate(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out,
			  dtn_error *err);

/*
 * Delivers the build logs of a snapshot to `log` as DTN_LOG_OUTPUT lines: everything logged so
 * far, and with `follow` also what comes while the build goes on, until it ends (with the state
 * changes as DTN_LOG_STATE lines). Errors: DTN_ENOTFOUND (no such snapshot, or it has no build
 * logs: made from an image, or no runner holds them), DTN_EUSER, DTN_EINTR, DTN_ETIMEOUT,
 * request errors.
 */
int dtn_snapshot_logs(dtn_daytona *c, const char *id_or_name, bool follow, dtn_log_fn log,
		      void *payload, dtn_error *err);

#ifdef __cplusplus
}
#endif

#endif
