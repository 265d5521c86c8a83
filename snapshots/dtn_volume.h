/*
 * dtn_volume.h - Daytona volumes, and sandboxes started from a snapshot with volumes mounted.
 *
 *     dtn_mount *m;
 *     dtn_sandbox *sb;
 *     dtn_mount_parse("datasets:/home/daytona/data:team-a", &m, &err);
 *     dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "data-science",
 *                                                 .mounts = m, .nmounts = 1},
 *                        NULL, &sb, &err);         // volumes made ready, sandbox started
 *
 * A volume is persistent storage (a prefix in the organization's object storage) that sandboxes
 * mount at a path. The server makes a volume asynchronously (pending_create -> creating ->
 * ready) and refuses to mount one that is not ready, so dtn waits for `ready` before it asks
 * for a sandbox.
 *
 * The functions take a client made with dtn_daytona_new (dtn_daytona.h) and follow its rules:
 * one overall deadline (dtn_daytona_set_timeout), polls every poll interval, the cancel flag,
 * errors mapped from the server's answers. Codes met here besides the request errors:
 *   DTN_ENOTFOUND  the volume or sandbox does not exist (the message names it)
 *   DTN_EEXISTS    a volume of that name exists already
 *   DTN_EBUSY      the volume is used by a sandbox, or its state forbids deleting it
 *   DTN_EINVAL     a bad argument: a mount the server would refuse, an empty name, ...
 *   DTN_EBUILD     the sandbox failed to start (error, build_failed), or the volume went into
 *                  state error; the message carries the server's errorReason
 *   DTN_ETIMEOUT   the deadline passed while waiting (the message names the last state)
 *   DTN_EINTR      the cancel flag was raised
 */
#ifndef DTN_VOLUME_H
#define DTN_VOLUME_H

#include <stdbool.h>
#include <stddef.h>

#include "dtn_core.h"
#include "dtn_daytona.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- volumes -------------------------------------------------------------------------------- */

/* A volume as the server described it. Strings are NULL when the server sent none. */
typedef struct dtn_volume {
	const char *id;              /* a UUID */
	const char *name;
	const char *organization_id;
	const char *state;           /* pending_create, creating, ready, pending_delete,
				      * deleting, deleted, error */
	const char *error_reason;    /* why the state is error */
	const char *created_at;      /* ISO-8601 */
	const char *updated_at;
	const char *last_used_at;
	const char *json;            /* the server's whole answer as compact JSON text */
} dtn_volume;

/* Frees a volume. Accepts NULL. */
void dtn_volume_free(dtn_volume *v);

/* Volumes, in the server's order. */
typedef struct dtn_volumes {
	dtn_volume **items;
	size_t count;
} dtn_volumes;

/* Frees a list and its volumes. Accepts NULL. */
void dtn_volumes_free(dtn_volumes *list);

/*
 * Every volume of the organization (GET /volumes: one plain array, deleted ones left out).
 * *out belongs to the caller. Errors: DTN_EPROTOCOL (a malformed answer), request errors.
 */
int dtn_volume_list(dtn_daytona *c, dtn_volumes **out, dtn_error *err);

/* The volume called `name` (GET /volumes/by-name/{name}). DTN_ENOTFOUND when none. */
int dtn_volume_get(dtn_daytona *c, const char *name, dtn_volume **out, dtn_error *err);

/* The volume with this id (GET /volumes/{id}). DTN_ENOTFOUND when none. */
int dtn_volume_get_by_id(dtn_daytona *c, const char *id, dtn_volume **out, dtn_error *err);

/*
 * A volume named as a user names it: a UUID is looked up as an id first, then as a name (a
 * sandbox's volumeId is resolved the same way by the server); anything else as a name.
 */
int dtn_volume_find(dtn_daytona *c, const char *id_or_name, dtn_volume **out, dtn_error *err);

/*
 * Creates a volume (POST /volumes). The answer is usually still pending_create: wait with
 * dtn_volume_wait before mounting it. *out (may be NULL when not wanted) belongs to the caller.
 * Errors: DTN_EINVAL (an empty name, not UTF-8), DTN_EEXISTS (the name is taken; the server
 * says so with a 400), request errors.
 */
int dtn_volume_create(dtn_daytona *c, const char *name, dtn_volume **out, dtn_error *err);

/*
 * Deletes a volume (DELETE /volumes/{id}; a name is first resolved with dtn_volume_find). The
 * server deletes in the background (pending_delete -> deleting -> deleted); with `wait` this
 * polls until the volume is gone. Errors: DTN_ENOTFOUND, DTN_EBUSY (a sandbox uses it, or it
 * is neither ready nor in error), DTN_ETIMEOUT, DTN_EINTR, request errors.
 */
int dtn_volume_delete(dtn_daytona *c, const char *id_or_name, bool wait, dtn_error *err);

typedef struct dtn_volume_wait_opts {
	unsigned version;            /* 0 or 1 */
	/* State changes as DTN_LOG_STATE lines ("volume v1: creating"); may be NULL. */
	dtn_log_fn log;
	void *payload;
} dtn_volume_wait_opts;

/*
 * Polls the volume `from` (by name, every poll interval, under the client's deadline) until it
 * is ready. `from` is a volume these functions returned, the state to start from: a volume
 * already ready costs no request.
 * On success *out (may be NULL) is the ready volume, owned by the caller. Errors: DTN_EBUILD
 * (state error, with its errorReason), DTN_ENOTFOUND (the volume was deleted or replaced by
 * another of the same name), DTN_ETIMEOUT (naming the last state), DTN_EINTR, DTN_EUSER (the
 * callback asked to stop), request errors. `opts` may be NULL.
 */
int dtn_volume_wait(dtn_daytona *c, const dtn_volume *from, const dtn_volume_wait_opts *opts,
		    dtn_volume **out, dtn_error *err);

/*
 * Makes sure the volume `id_or_name` exists and is ready: looks it up as dtn_volume_find does,
 * creates it when no volume has that name (never for a UUID: an unknown id is DTN_ENOTFOUND),
 * then waits as dtn_volume_wait does. *out (may be NULL) receives the ready volume.
 */
int dtn_volume_ensure(dtn_daytona *c, const char *id_or_name, const dtn_volume_wait_opts *opts,
		      dtn_volume **out, dtn_error *err);

/* ---- mounts --------------------------------------------------------------------------------- */

/* One volume to mount in a sandbox. */
typedef struct dtn_mount {
	const char *volume;          /* the volume's name or id */
	const char *mount_path;      /* an absolute path inside the sandbox */
	const char *subpath;         /* a key prefix inside the volume; NULL or "" for all of it */
} dtn_mount;

/*
 * Checks a mount by the server's rules, so that a bad one is refused before anything is sent.
 * The mount path must be absolute, not the root, without "." or ".." components, without
 * "//", and neither /proc, /sys, /dev, /boot, /etc, /bin, /sbin, /lib, /lib64 nor anything
 * below them. A subpath must not start with '/' and contains neither ".." nor "//". Every
 * string must be UTF-8 without control characters. Returns 0 or DTN_EINVAL naming the volume,
 * the value and the rule.
 */
int dtn_mount_check(const dtn_mount *m, dtn_error *err);

/*
 * Parses the command-line form NAME:PATH[:SUBPATH] (a volume name or id, the mount path, then
 * everything after the second ':' as the subpath) and checks it as dtn_mount_check does. *out
 * is a single block freed with dtn_free. Errors: DTN_EINVAL naming the text and what is wrong,
 * DTN_ENOMEM.
 */
int dtn_mount_parse(const char *text, dtn_mount **out, dtn_error *err);

/* ---- sandboxes ------------------------------------------------------------------------------ */

/* One mounted volume as the server reports it. */
typedef struct dtn_sandbox_volume {
	const char *volume_id;
	const char *mount_path;
	const char *subpath;         /* NULL for the whole volume */
} dtn_sandbox_volume;

/* A sandbox as the server described it. Strings are NULL when the server sent none. */
typedef struct dtn_sandbox {
	const char *id;
	const char *name;
	const char *state;           /* creating, starting, started, error, build_failed, ... */
	const char *error_reason;
	const char *snapshot;
	const char *target;
	const char *toolbox_proxy_url;
	int cpu;
	int gpu;
	int memory;                  /* GiB */
	int disk;                    /* GiB */
	const dtn_sandbox_volume *volumes;
	size_t nvolumes;
	const char *json;            /* the server's whole answer as compact JSON text */
} dtn_sandbox;

/* Frees a sandbox. Accepts NULL. */
void dtn_sandbox_free(dtn_sandbox *s);

/*
 * What a new sandbox is made of. The body sent is the Daytona SDKs' for a sandbox from a
 * snapshot: name (when given), snapshot, env, labels (always with code-toolbox-language=python,
 * as the SDKs set it, unless `labels` gives that key), target (the client's, when configured),
 * volumes. Resources are the snapshot's: the server refuses them beside a snapshot.
 */
typedef struct dtn_sandbox_params {
	unsigned version;            /* 0 or 1 */
	const char *snapshot;        /* required: the snapshot's name or id */
	const char *name;            /* NULL: the server names the sandbox after its id */
	const dtn_mount *mounts;     /* nmounts volumes to mount (may be NULL with 0) */
	size_t nmounts;
	const char *const *env;      /* "KEY=VALUE" items, NULL-terminated; may be NULL */
	const char *const *labels;   /* "KEY=VALUE" items, NULL-terminated; may be NULL */
} dtn_sandbox_params;

/*
 * The exact JSON text POST /sandbox would carry for p, with each mount's `volume` sent as its
 * volumeId as given (dtn_sandbox_create sends the resolved ids). *out is freed with dtn_free.
 * `c` may be NULL (then no target). Errors: DTN_EINVAL (no snapshot, a bad mount, two mounts
 * at one path, an env or label item without '=' or not UTF-8), DTN_ENOMEM.
 */
int dtn_sandbox_create_body(const dtn_daytona *c, const dtn_sandbox_params *p, char **out,
			    dtn_error *err);

typedef struct dtn_sandbox_opts {
	unsigned version;            /* 0 or 1 */
	/* Phases ("volume v1: creating"), volume and sandbox states as DTN_LOG_PHASE and
	 * DTN_LOG_STATE lines; may be NULL. */
	dtn_log_fn log;
	void *payload;
	bool no_wait;                /* return after the create, without waiting for started */
} dtn_sandbox_opts;

/*
 * Creates a sandbox from a snapshot with volumes mounted, and waits until it is started:
 *   1. every mount is checked (dtn_mount_check; two mounts at one path are refused too) and
 *      nothing is sent when one is bad;
 *   2. each volume is made ready (dtn_volume_ensure: created when missing, waited for);
 *   3. POST /sandbox with the volumes' ids (the server holds this request while the sandbox
 *      starts, up to 30 s, so its timeout is never below 45 s unless the deadline is nearer);
 *   4. GET /sandbox/{id} until the state is started (at once, then every poll interval).
 * On success *out (may be NULL) is the started sandbox, owned by the caller. Errors: those of
 * dtn_sandbox_create_body and dtn_volume_ensure; DTN_EBUILD (the sandbox went to error or
 * build_failed, or the server reported that it failed to start; the message names the sandbox
 * and the server's reason); DTN_ETIMEOUT (naming the last state); DTN_ENOTFOUND (an unknown
 * snapshot or volume id, or the sandbox vanished); DTN_EINTR; DTN_EUSER; request errors.
 * `opts` may be NULL.
 */
int dtn_sandbox_create(dtn_daytona *c, const dtn_sandbox_params *p, const dtn_sandbox_opts *opts,
		       dtn_sandbox **out, dtn_error *err);

/*
 * Polls the sandbox `from` (one these functions returned) by id until it is started, as step 4
 * of dtn_sandbox_create. Errors as there. `opts` may be NULL; its no_wait is ignored.
 */
int dtn_sandbox_wait(dtn_daytona *c, const dtn_sandbox *from, const dtn_sandbox_opts *opts,
		     dtn_sandbox **out, dtn_error *err);

/* The sandbox with this id or name (GET /sandbox/{idOrName}). DTN_ENOTFOUND when none. */
int dtn_sandbox_get(dtn_daytona *c, const char *id_or_name, dtn_sandbox **out, dtn_error *err);

/* Deletes a sandbox (DELETE /sandbox/{idOrName}); the server destroys it in the background. */
int dtn_sandbox_delete(dtn_daytona *c, const char *id_or_name, dtn_error *err);

#ifdef __cplusplus
}
#endif

#endif
