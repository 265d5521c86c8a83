/*
 * local.h - the pieces of the local backend: running an engine's process (local_proc.c) and the
 * build directory (local_dir.c), orchestrated by local.c. Internal.
 */
#ifndef DTN_BUILDER_LOCAL_H
#define DTN_BUILDER_LOCAL_H

#include <stdbool.h>

#include "dtn_local.h"
#include "internal.h"

/* ---- processes (local_proc.c) ---- */

/* The longest line delivered whole; a longer one arrives in pieces of this size. */
#define DTN__LINE_MAX 8192

/* Seconds a stopped process group gets between SIGTERM and SIGKILL. */
#define DTN__PROC_GRACE 10

/* Receives one line of output (NUL-terminated, without its newline); non-zero stops. */
typedef int (*dtn__line_fn)(const char *line, size_t len, void *payload);

typedef struct dtn__proc {
	const char *const *argv;    /* argv[0] is the executable's path; nothing goes via a shell */
	const char *const *env;     /* "NAME=value" set in the child's environment; may be NULL */
	const volatile int *cancel; /* may be NULL */
	long long deadline;         /* dtn__local_now_ms() value to stop at; 0: none */
	dtn__line_fn line;          /* may be NULL: the output is read and dropped */
	void *payload;
} dtn__proc;

/* Milliseconds of the monotonic clock. */
long long dtn__local_now_ms(void);

/*
 * Runs p->argv in a new process group, standard input /dev/null, standard output and error
 * through one pipe, split into lines for p->line. Returns 0 with *status the exit status (128 +
 * N when killed by signal N). When p->cancel becomes non-zero, the deadline passes or p->line
 * returns non-zero, the group gets SIGTERM (SIGKILL DTN__PROC_GRACE seconds later), no more
 * lines are delivered, and DTN_EINTR, DTN_ETIMEOUT or DTN_EUSER is returned once it is gone.
 * DTN_EIO: the process could not be started (err says why); DTN_ENOMEM.
 */
int dtn__proc_run(const dtn__proc *p, int *status, dtn_error *err);

/* Splits `text` at blanks (space, tab, newline) into a fresh NULL-terminated list. */
char **dtn__split_blanks(const char *text);

/* Whether `name` is an executable file in a directory of $PATH; its path in out if so. */
bool dtn__find_on_path(const char *name, char *out, size_t size);

/* ---- the build directory (local_dir.c) ---- */

/*
 * A fresh directory under tmp_dir (NULL: $TMPDIR, else /tmp), its real path in *out (dtn_free):
 * DIR/Dockerfile holds `dockerfile`, DIR/ignore is empty (the engine's ignore file) and
 * DIR/context the build context, empty so far. Errors: DTN_EIO, DTN_ENOMEM.
 */
int dtn__local_dir_make(char **out, const char *tmp_dir, const char *dockerfile, dtn_error *err);

/*
 * Adds the context's files to DIR/context at their archive paths: archived by the builder
 * (checked against `hash`) into a temporary tar, then extracted with their permission bits;
 * nothing is written outside DIR/context, nor through a link. Errors: those of
 * dtn_builder_archive, DTN_EIO (extraction), DTN_ENOMEM.
 */
int dtn__local_dir_add(dtn_builder *b, const char *dir, const dtn_context *ctx, const char *hash,
		       dtn_error *err);

/* Removes a tree without following links (write permission is given back to directories on
 * the way). Returns 0, or -1 with errno when something stayed. */
int dtn__rmtree(const char *path);

#endif
