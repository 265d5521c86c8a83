/*
 * toml.h - a small TOML 1.0 reader, used to read pyproject.toml. Not installed.
 *
 * The whole document is parsed into a tree of values owned by its root table. Everything the
 * reader accepts is valid TOML 1.0; everything else is rejected with the 1-based line and column
 * (counted in characters) of the first problem.
 *
 * Where TOML leaves room, this reader chooses: integers must fit in 64 bits and floats must not
 * overflow a double; a string or key holding U+0000 is rejected (values are handed out as C
 * strings); containers may nest at most DTN__TOML_MAX_DEPTH levels below the root; a leading
 * UTF-8 byte order mark is skipped; CRLF inside multi-line strings becomes LF; second 60 (a leap
 * second) is accepted in times.
 */
#ifndef DTN_IMAGEDSL_TOML_H
#define DTN_IMAGEDSL_TOML_H

#include <stdbool.h>
#include <stddef.h>

#include "dtn_core.h"

/* How deeply tables and arrays may nest (counting every dotted-key and header level). */
#define DTN__TOML_MAX_DEPTH 256

/* One value; a parsed document is its root table. */
typedef struct dtn__toml dtn__toml;

typedef enum dtn__toml_type {
	DTN__TOML_TABLE = 1,
	DTN__TOML_ARRAY,
	DTN__TOML_STRING,
	DTN__TOML_INTEGER,
	DTN__TOML_FLOAT,
	DTN__TOML_BOOL,
	DTN__TOML_DATETIME
} dtn__toml_type;

/* The four kinds of date and time TOML knows; all are kept as their source text. */
typedef enum dtn__toml_datetime_kind {
	DTN__TOML_OFFSET_DATETIME = 1, /* 1979-05-27T07:32:00-07:00 */
	DTN__TOML_LOCAL_DATETIME,      /* 1979-05-27T07:32:00 */
	DTN__TOML_LOCAL_DATE,          /* 1979-05-27 */
	DTN__TOML_LOCAL_TIME           /* 07:32:00 */
} dtn__toml_datetime_kind;

/*
 * Parses text[0..len) (need not be NUL-terminated). On success *out is the root table, owned by
 * the caller (free with dtn__toml_free). On failure *out is NULL and the result is DTN_ESYNTAX
 * or DTN_ENOMEM; err (may be NULL) gets the code, the line and column (0 for DTN_ENOMEM) and a
 * one-line message such as `key "name" defined twice`. err->file is never touched.
 */
int dtn__toml_parse(dtn__toml **out, const char *text, size_t len, dtn_error *err);

/* The type of v; 0 for NULL. Every reader below also accepts NULL, so lookups can chain:
 * dtn__toml_get(dtn__toml_get(root, "project"), "dependencies"). */
dtn__toml_type dtn__toml_type_of(const dtn__toml *v);

/* A table's value for one (not dotted) key, borrowed; NULL when absent or v is not a table. */
const dtn__toml *dtn__toml_get(const dtn__toml *table, const char *key);

/* Number of elements of an array or keys of a table; 0 for other values. */
size_t dtn__toml_count(const dtn__toml *v);

/* The i-th array element or table value (tables keep document order); NULL when out of range. */
const dtn__toml *dtn__toml_at(const dtn__toml *v, size_t i);

/* The i-th key of a table in document order; NULL when out of range or not a table. */
const char *dtn__toml_key_at(const dtn__toml *table, size_t i);

/* A string's decoded text or a date-time's source text, borrowed; NULL for other types. */
const char *dtn__toml_str(const dtn__toml *v);

/* The kind of a date-time value; 0 for other types. */
dtn__toml_datetime_kind dtn__toml_datetime_kind_of(const dtn__toml *v);

/* The integer / float / boolean value; 0 (false) for other types. */
long long dtn__toml_int(const dtn__toml *v);
double dtn__toml_float(const dtn__toml *v);
bool dtn__toml_bool(const dtn__toml *v);

/* Frees a parsed document. Accepts NULL. Only call it on a root returned by dtn__toml_parse. */
void dtn__toml_free(dtn__toml *v);

#endif
