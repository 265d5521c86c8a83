/*
 * dtn_core.h - errors, allocation and string lists shared by every libdtn module.
 *
 * Every function that can fail returns an int: 0 on success, a negative DTN_E* code on failure.
 * Details of a failure (where it happened and a one-line message) are written to a caller-supplied
 * dtn_error, which may be NULL when the caller only wants the code.
 */
#ifndef DTN_CORE_H
#define DTN_CORE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DTN_VERSION "0.1.0"
#define DTN_VERSION_MAJOR 0
#define DTN_VERSION_MINOR 1
#define DTN_VERSION_PATCH 0

/*
 * Error codes. The list only grows; a code never changes meaning.
 */
enum {
	DTN_OK = 0,
	DTN_ERROR = -1,       /* an unspecified failure */
	DTN_ENOMEM = -2,      /* out of memory */
	DTN_EINVAL = -3,      /* an argument is not acceptable */
	DTN_ENOTFOUND = -4,   /* a file, directory or object does not exist */
	DTN_EIO = -5,         /* reading or writing failed */
	DTN_ESYNTAX = -6,     /* malformed input text (YAML, TOML, Dockerfile) */
	DTN_EUSER = -7,       /* a callback asked to stop */
	DTN_EOUTSIDE = -8,    /* a path leaves its build context */
	DTN_EUNSUPPORTED = -9, /* valid input that this version does not support */
	DTN_ECHANGED = -10,    /* a file changed while dtn read it */
	DTN_ECONNECT = -11,    /* a server could not be reached (after retries) */
	DTN_ETIMEOUT = -12,    /* an operation or request ran out of time */
	DTN_EINTR = -13,       /* the operation was cancelled (an interrupt) */
	DTN_EAUTH = -14,       /* credentials are missing or were rejected (401, 403) */
	DTN_ECONFIG = -15,     /* the configuration is incomplete or contradictory */
	DTN_EEXISTS = -16,     /* the object already exists (409, duplicate name) */
	DTN_EHTTP = -17,       /* a server answered with an error status not covered above */
	DTN_ERATELIMIT = -18,  /* a server kept answering 429 Too Many Requests */
	DTN_EBUILD = -19,      /* a build failed (build_failed, error, a failing step) */
	DTN_EPROTOCOL = -20,   /* a server's answer was malformed */
	DTN_EBUSY = -21        /* the object is in use, or its state forbids the operation */
};

/*
 * Build output for the application, one whole line at a time (no newline; a line longer than
 * the transport's bound arrives in pieces). `kind` says what the line is: the build's own output
 * (BuildKit, the engine), a state change of the remote build ("building"), or a phase of dtn's
 * own work ("uploading context src"). Return 0 to go on; non-zero stops the operation, which
 * then fails with DTN_EUSER.
 */
typedef enum dtn_log_kind {
	DTN_LOG_OUTPUT = 0,
	DTN_LOG_STATE = 1,
	DTN_LOG_PHASE = 2
} dtn_log_kind;

typedef int (*dtn_log_fn)(dtn_log_kind kind, const char *line, size_t len, void *payload);

/* The name of an error code ("out of memory", ...); never NULL. */
const char *dtn_strerror(int code);

/*
 * Details of one failure. `file` is the input the error is about (a spec, a Dockerfile, a path;
 * empty when there is none); `line` and `column` are 1-based positions in it, 0 when unknown.
 * `message` is one line saying what was wrong with which input. Both strings are always
 * NUL-terminated and are truncated, never overflowed, when too long.
 */
typedef struct dtn_error {
	int code;
	int line;
	int column;
	char file[1024];
	char message[2048];
} dtn_error;

/* Resets *err to "no error". Accepts NULL. */
void dtn_error_clear(dtn_error *err);

/*
 * Writes "FILE:LINE:COLUMN: message" (or the parts that are known) into buf, truncating to
 * size - 1 bytes. Returns the length the full text would have, as snprintf does.
 */
int dtn_error_format(const dtn_error *err, char *buf, size_t size);

/*
 * The allocation seam. Every allocation libdtn makes itself goes through these functions; the
 * libraries it uses (libyaml, libcurl, ...) keep their own. Set them before any other call; a
 * NULL pointer in `a` (or a NULL `a`) restores the C library's function. Not thread-safe.
 */
typedef struct dtn_allocator {
	void *(*malloc)(size_t size);
	void *(*realloc)(void *ptr, size_t size);
	void (*free)(void *ptr);
} dtn_allocator;

void dtn_set_allocator(const dtn_allocator *a);

/*
 * A string list is a NULL-terminated array of borrowed strings:
 *   dtn_image_pip_install(img, DTN_STRV("requests", "pytest"), NULL);
 */
#define DTN_STRV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Frees memory that a libdtn function handed to the caller as plain memory. Accepts NULL. */
void dtn_free(void *ptr);

/* The number of strings in a NULL-terminated list; 0 for NULL. */
size_t dtn_strv_len(const char *const *v);

#ifdef __cplusplus
}
#endif

#endif
