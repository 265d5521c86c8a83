/*
 * spec_internal.h - what the files of the YAML spec loader share. Not installed.
 *
 * The loader reads the whole document with libyaml's document API, then walks it once, in
 * document order, calling the public DSL for each step. Every string handed to the DSL is
 * borrowed from the document (libyaml keeps scalars NUL-terminated) and the DSL copies it, so
 * the document only has to live as long as the walk.
 */
#ifndef DTN_SPEC_INTERNAL_H
#define DTN_SPEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "dtn_image.h"
#include "internal.h"

/* Specs larger than this are refused before libyaml sees them. */
#define DTN__SPEC_MAX_SIZE ((size_t)16 << 20)
/* How deeply lists may nest where nested lists are flattened. */
#define DTN__SPEC_MAX_DEPTH 16
/* How many nodes one load may visit, counting each use of an alias again. This keeps alias
 * bombs (a list of aliases of lists of aliases ...) from running away with time and memory. */
#define DTN__SPEC_MAX_VISITS ((size_t)1000000)

typedef struct dtn__spec_loader {
	yaml_document_t *doc;
	const char *file; /* the spec's name, for positions */
	const char *dir;  /* its directory, for relative paths */
	dtn_image *img;
	dtn_error *err;   /* never NULL */
	size_t visits;
} dtn__spec_loader;

/* A NULL-terminated list of strings borrowed from the document, with each one's node. */
typedef struct dtn__spec_list {
	const char **items;
	yaml_node_t **nodes;
	size_t len;
	size_t cap;
} dtn__spec_list;

#define DTN__SPEC_LIST_INIT {NULL, NULL, 0, 0}

/* A key a mapping may have: its name and an optional second spelling (camelCase). A NULL
 * name marks a slot that is not used by this mapping. */
typedef struct dtn__spec_key {
	const char *name;
	const char *alias;
} dtn__spec_key;

/* Flags of dtn__spec_strings. */
enum {
	DTN__SPEC_FLATTEN = 1, /* nested lists are flattened */
	DTN__SPEC_LIST = 2     /* a single string is not accepted */
};

/* ---- nodes and errors (spec_node.c) ---- */

/* Latches the loader's error at node (position-less when node is NULL); returns code. */
int dtn__spec_fail(dtn__spec_loader *L, const yaml_node_t *node, int code, const char *fmt,
		   ...) DTN__PRINTF(4, 5);
/* The node with the given id, or NULL. */
yaml_node_t *dtn__spec_node(const dtn__spec_loader *L, int id);
/* Counts one more visited node; fails once the budget is spent. */
int dtn__spec_visit(dtn__spec_loader *L, const yaml_node_t *node);
/* True for a plain null scalar: empty, ~, null, Null or NULL. */
bool dtn__spec_is_null(const yaml_node_t *node);
/* "null", "a string", "a list" or "a mapping". */
const char *dtn__spec_kind(const yaml_node_t *node);
/* The text of a scalar node ("" for anything else). */
const char *dtn__spec_text(const yaml_node_t *node);
/* A short one-line rendering of s for messages, written into buf. */
const char *dtn__spec_show(const char *s, char *buf, size_t size);

/* A scalar's text as a string; null, lists and mappings are errors. */
int dtn__spec_string(dtn__spec_loader *L, yaml_node_t *node, const char *subject,
		     const char **out);
/* A YAML boolean: true/false (any case) and the YAML 1.1 yes/no/on/off. */
int dtn__spec_bool(dtn__spec_loader *L, yaml_node_t *node, const char *subject, bool *out);
/* A non-negative decimal integer that fits an int. */
int dtn__spec_uint(dtn__spec_loader *L, yaml_node_t *node, const char *subject, int *out);
/* A string or a list of strings, appended to out. */
int dtn__spec_strings(dtn__spec_loader *L, yaml_node_t *node, const char *subject, int flags,
		      dtn__spec_list *out);

int dtn__spec_list_push(dtn__spec_list *l, const char *s, yaml_node_t *node);
void dtn__spec_list_free(dtn__spec_list *l);

/*
 * Checks a mapping against the keys it may have: vals[i] becomes the value of keys[i] (NULL
 * when absent). `where` names the mapping in messages ("pip_install"; NULL at the top level).
 * Unknown keys (with a suggestion), duplicates and keys that are not strings are errors.
 */
int dtn__spec_keys(dtn__spec_loader *L, yaml_node_t *map, const char *where,
		   const dtn__spec_key *keys, size_t nkeys, yaml_node_t **vals);
/* The error for a required key that is missing from map. */
int dtn__spec_missing(dtn__spec_loader *L, yaml_node_t *map, const char *where,
		      const char *key);
/* Fails with `unknown <what> "given"` plus a suggestion among the candidates (NULL-ended). */
int dtn__spec_unknown(dtn__spec_loader *L, yaml_node_t *at, const char *what,
		      const char *given, const char *where, const char *const *candidates);
/* The closest candidate to `given` when it is close enough to suggest, else NULL. */
const char *dtn__spec_suggest(const char *given, const char *const *candidates);

/*
 * After a DSL call: 0 when the image is fine, else its error as the loader's error, placed at
 * `at` unless the DSL error already names a position in another file (a Dockerfile).
 */
int dtn__spec_check(dtn__spec_loader *L, const yaml_node_t *at);

/* ---- steps (spec_steps.c) ---- */

/* Applies the list of steps under image.steps (NULL or a null node: none). */
int dtn__spec_steps(dtn__spec_loader *L, yaml_node_t *steps);
/* Applies one step by name (entrypoint, cmd and workdir under snapshot use this too). */
int dtn__spec_step(dtn__spec_loader *L, yaml_node_t *key, yaml_node_t *value);

#endif
