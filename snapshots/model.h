/*
 * model.h - what the Daytona objects (snapshots, volumes, sandboxes) have in common: each is
 * made from the server's JSON description, which it keeps (its strings point into it), and is
 * fetched with one GET. Not installed.
 */
#ifndef DTN_SNAPSHOTS_MODEL_H
#define DTN_SNAPSHOTS_MODEL_H

#include "api.h"

/* One kind of object. Its public struct comes first, so a pointer to it is one to the object. */
typedef struct dtn__model {
	size_t size;                 /* of the whole object */
	const char *noun;            /* "volume": "the server's answer is not a volume" */
	const char *const *required; /* string members it cannot do without (NULL-terminated) */
	/* Fills a zeroed object from j, keeping a reference to j. On failure the object is
	 * freed with `free`, so fill leaves it consistent. */
	int (*fill)(void *obj, const json_t *j, dtn_error *err);
	void (*free)(void *obj);
} dtn__model;

/*
 * A new object from the server's description j (borrowed). Errors: DTN_EPROTOCOL (not an
 * object, or a required member missing: "the server described a volume without a state"),
 * DTN_ENOMEM, fill's errors. *out is NULL on failure.
 */
int dtn__model_from_json(const dtn__model *m, const json_t *j, void **out, dtn_error *err);

/* A copy of the object described by j (a deep copy of j), or NULL when memory runs out. */
void *dtn__model_dup(const dtn__model *m, const json_t *j);

/*
 * One API call without a body on an object: `method` on the path `fmt` with `arg` as its one
 * path segment (dtn__api_path). `what` names the object in the message of a 404; *out (may be
 * NULL) receives the answer as dtn__api_call gives it. Errors: dtn__api_call's, DTN_ENOMEM.
 */
int dtn__model_call(dtn_daytona *c, const char *method, const char *fmt, const char *arg,
		    const char *what, json_t **out, dtn_error *err);

/* GET with dtn__model_call, the answer made an object. Errors: also from_json's. */
int dtn__model_get(dtn_daytona *c, const dtn__model *m, const char *fmt, const char *arg,
		   const char *what, void **out, dtn_error *err);

#endif
