/*
 * vectors.h - what the image vector runners share: the recorded SDK vectors and parity.json,
 * the expectation each vector sets (exact or corrected), and the messages that show expected
 * against actual.
 *
 * The data is tests/data/vectors/image-vectors.json (what the Daytona TypeScript SDK produced
 * for each list of calls) and tests/data/vectors/parity.json (per vector: whether dtn gives
 * exactly that, a corrected result, or cannot be asked through one of its front ends). Strings
 * in both hold {{FIXTURES}} where the recording had the fixtures' path.
 *
 * Checks report through cmocka, so apart from tv_load, tv_unload and tv_run_tests these are
 * meant to be called from inside a test.
 */
#ifndef DTN_TEST_VECTORS_H
#define DTN_TEST_VECTORS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

/* One vector to run, with its parity entry: both borrowed from the loaded documents. */
typedef struct tv_case {
	const char *id;
	json_t *vector;
	json_t *parity;
} tv_case;

/* What parity.json says about a vector. */
typedef enum tv_kind {
	TV_EXACT,             /* dtn gives what the SDK gave */
	TV_CORRECTION,        /* "correction-...": dtn gives parity.json's corrected result */
	TV_YAML_TEXT,         /* only the YAML spec can say it */
	TV_C_NOT_EXPRESSIBLE, /* the C API cannot take the SDK's arguments */
	TV_UNKNOWN,           /* none of these: the data is broken */
} tv_kind;

/* How many vectors of each kind tv_run_tests saw (those with a parity entry). */
typedef struct tv_counts {
	int kinds[TV_UNKNOWN + 1];
} tv_counts;

/*
 * Loads both documents from the test data directory and sets HOME to the fixtures, as when the
 * vectors were recorded. The working directory is left to the caller. Returns 0, or -1 after
 * printing why.
 */
int tv_load(void);
/* Frees what tv_load loaded. */
void tv_unload(void);
/* The fixtures directory, an absolute path. */
const char *tv_fixtures(void);
/* The "vectors" array of image-vectors.json. */
json_t *tv_vectors(void);
/* The parity entry for a vector id, or NULL. */
json_t *tv_parity_for(const char *id);
/* The whole parity.json array. */
json_t *tv_parity(void);
/* The kind of a parity entry. */
tv_kind tv_parity_kind(json_t *parity);
/* Fails the test unless the vectors file has as many vectors as its "count" says. */
void tv_assert_count(void);

/* A string member of the test data; fails the test when there is none. */
const char *tv_member_string(json_t *obj, const char *key);

/*
 * What dtn must produce for a vector: {"dockerfile", "contexts"} (contexts as {source,
 * archive_path, kind}) or {"error": {code, contains[, dockerfile, line]}}, from the recording
 * when the vector is exact and from parity.json otherwise, {{FIXTURES}} replaced. The caller
 * frees it with json_decref.
 */
json_t *tv_expected_result(const tv_case *vc);

/* An expected error, read from the "error" member of tv_expected_result. */
typedef struct tv_error_want {
	const char *code;       /* DTN_E* name */
	const char *contains;   /* text the message must hold */
	const char *dockerfile; /* NULL, or the Dockerfile the error must point into */
	long line;              /* with dockerfile: its 1-based line */
} tv_error_want;

void tv_error_want_read(tv_error_want *out, json_t *error);

/* Text as one line of JSON, so that newlines and odd bytes show; the caller frees it. */
char *tv_show_text(const char *text);

/*
 * Compares a produced Dockerfile with the expected JSON string; on a difference prints where it
 * starts and both texts, "vector ID: LABEL differs at byte N". Returns whether they are equal.
 */
bool tv_check_text(const char *id, const char *label, json_t *expected, const char *actual);
/* Compares two context lists; on a difference prints both, one context a line. */
bool tv_check_contexts(const char *id, json_t *expected, json_t *actual);

/* Decides whether a vector gets a test; payload is tv_run_tests'. */
typedef bool (*tv_filter)(const tv_case *vc, void *payload);

/*
 * Runs the cmocka group `group`: `first` (a check of the data as a whole), then `each` once per
 * vector that has a parity entry and that `keep` (NULL: every one) accepts, named
 * test_GROUP__ID with the tv_case as its state. Fills `counts` and `*out_run` (the number of
 * vector tests). Returns cmocka's result, or 1 when out of memory.
 */
int tv_run_tests(const char *group, struct CMUnitTest first, CMUnitTestFunction each,
                 tv_filter keep, void *payload, tv_counts *counts, size_t *out_run);

/* Fails the vector's test when !ok, naming the vector, its parity and what was checked. */
void tv_finish(const tv_case *vc, bool ok, const char *what);

#endif
