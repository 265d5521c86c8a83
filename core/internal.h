/*
 * internal.h - helpers shared by libdtn's own source files. Not installed.
 */
#ifndef DTN_CORE_INTERNAL_H
#define DTN_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "dtn_core.h"

#if defined(__GNUC__)
#define DTN__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DTN__PRINTF(f, a)
#endif

#define DTN__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation (the seam of dtn_set_allocator) ---- */

void *dtn__malloc(size_t size);
void *dtn__calloc(size_t n, size_t size);
void *dtn__realloc(void *ptr, size_t size);
void dtn__free(void *ptr);
char *dtn__strdup(const char *s);
/* Overwrites a string that may hold a credential, then frees it; NULL is accepted. */
void dtn__free_secret(char *s);
char *dtn__strndup(const char *s, size_t n);
/* A formatted string in fresh memory, or NULL when memory runs out. */
char *dtn__aprintf(const char *fmt, ...) DTN__PRINTF(1, 2);

/* ---- growable byte buffer ---- */

/*
 * A buffer latches DTN_ENOMEM like the image builder: after a failed append every later append
 * does nothing and `failed` stays set. `data` is always NUL-terminated once anything was added.
 */
typedef struct dtn__buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
} dtn__buf;

#define DTN__BUF_INIT {NULL, 0, 0, false}

void dtn__buf_add(dtn__buf *b, const char *data, size_t len);
void dtn__buf_puts(dtn__buf *b, const char *s);
void dtn__buf_putc(dtn__buf *b, char c);
void dtn__buf_printf(dtn__buf *b, const char *fmt, ...) DTN__PRINTF(2, 3);
/* The text so far ("" when empty), borrowed. */
const char *dtn__buf_cstr(const dtn__buf *b);
/* Hands the text to the caller (never NULL unless the buffer failed) and resets the buffer. */
char *dtn__buf_detach(dtn__buf *b);
void dtn__buf_free(dtn__buf *b);

/* ---- string lists ---- */

/* A growable NULL-terminated list of owned strings. */
typedef struct dtn__strv {
	char **items;
	size_t len;
	size_t cap;
} dtn__strv;

/* Appends a copy of s; returns 0 or DTN_ENOMEM. */
int dtn__strv_push(dtn__strv *v, const char *s);
/* Appends s itself, taking ownership (freed even on failure). */
int dtn__strv_push_owned(dtn__strv *v, char *s);
void dtn__strv_free(dtn__strv *v);
/* A deep copy of a NULL-terminated list ({NULL} for NULL); NULL when memory runs out. */
char **dtn__strv_dup(const char *const *v);
void dtn__strv_free_array(char **v);

/* ---- errors ---- */

/* Fills err (if not NULL) and returns code. */
int dtn__error_set(dtn_error *err, int code, const char *fmt, ...) DTN__PRINTF(3, 4);
int dtn__error_setv(dtn_error *err, int code, const char *fmt, va_list ap);
/* Puts `prefix` in front of the message (truncating the end when too long). */
void dtn__error_prefix(dtn_error *err, const char *prefix);
/* Sets the position fields; file may be NULL to leave it unchanged. */
void dtn__error_at(dtn_error *err, const char *file, int line, int column);

/* ---- paths ---- */

/*
 * Expands a leading `~` the way the Daytona SDK does (expand-tilde): "~" and "~/x" use $HOME,
 * "~+" and "~+/x" the directory `cwd`, and "~name" becomes $HOME/name. Other paths are copied.
 */
char *dtn__path_expand_tilde(const char *path, const char *cwd);
/* `rel` joined to `dir` and normalised (".", "..", repeated '/' removed; a trailing '/' kept).
 * An absolute `rel` is only normalised. */
char *dtn__path_join(const char *dir, const char *rel);
/* Normalises in place as dtn__path_join does. A relative path that climbs above its start
 * keeps its leading "../"; one that cancels out ("a/..") becomes "."; "" stays "". */
void dtn__path_normalize(char *path);
/* The current directory in fresh memory, or NULL. */
char *dtn__path_cwd(void);
/* The last component of a path ("" for "/"), borrowed from it. A trailing '/' is ignored:
 * basename of "a/b/" is "b/"... callers strip it first where that matters. */
const char *dtn__path_basename(const char *path);
/* The directory part of a path in fresh memory ("." when there is none). */
char *dtn__path_dirname(const char *path);

/* ---- files ---- */

/*
 * Reads the whole regular file at `path` into fresh memory (NUL-terminated; *len excludes the
 * NUL). Files larger than `max` bytes are refused. Errors: DTN_ENOTFOUND, DTN_EINVAL (not a
 * regular file, too large), DTN_EIO, DTN_ENOMEM; err->message names `shown` (the path as the
 * user wrote it).
 */
int dtn__read_file(char **out, size_t *len, const char *path, const char *shown, size_t max,
		   dtn_error *err);

/* ---- text ---- */

/* Decodes one UTF-8 sequence at s[0..n); returns its length (>= 1) and the code point in *cp,
 * or 0 when the bytes are not valid UTF-8 (*cp is then the first byte). */
size_t dtn__utf8_decode(const char *s, size_t n, unsigned long *cp);
/*
 * `s` made fit for a one-line message: control characters written as \n, \t or \xNN, NULL as
 * "(null)", truncated to size - 1 bytes. Returns buf.
 */
const char *dtn__printable(char *buf, size_t size, const char *s);
/* Whether the text is valid UTF-8. */
bool dtn__utf8_valid(const char *s, size_t n);

#endif
