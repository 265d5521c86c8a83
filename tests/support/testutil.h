/*
 * testutil.h - helpers shared by the test programs: a failing allocator, temporary trees and
 * file writing.
 */
#ifndef DTN_TESTUTIL_H
#define DTN_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "dtn.h"

/*
 * Installs an allocator whose Nth call (counting malloc and realloc from now) fails, and every
 * later one too; n = 0 never fails. tu_alloc_calls() says how many calls were made.
 */
void tu_fail_alloc_after(long n);
long tu_alloc_calls(void);
/* Restores the C library's allocator. */
void tu_alloc_reset(void);

/* A fresh directory under $TMPDIR (or /tmp), in static storage valid until the next call. */
const char *tu_mkdtemp(void);
/* Removes a tree (no links followed). */
void tu_rmtree(const char *path);
/* Writes `text` to dir/name, creating parent directories; aborts the test on failure. */
void tu_write(const char *dir, const char *name, const char *text);
/*
 * Waits until the clock is more than `seconds` past dir/name's mtime and ctime, as the digest
 * cache's rule for recent changes sees them. A bare sleep is not enough: it can end early, and
 * the clock can be set back while it runs. Aborts the test after a minute.
 */
void tu_wait_older(const char *dir, const char *name, int seconds);
/* The test data directory ($DTN_TEST_DATA, else tests/data). */
const char *tu_data_dir(void);

/* What a command printed and how it ended. */
typedef struct tu_run {
	char *out;   /* standard output, NUL-terminated */
	char *err;   /* standard error */
	int status;  /* exit code, or 128 + signal */
} tu_run;

/* How long a command may run before tu_run_cmd kills it (its status is then 128 + SIGKILL). */
#define TU_RUN_TIMEOUT_MS 60000

/*
 * Runs argv (argv[0] a path; no shell) in directory `cwd` (NULL: the current one) with this
 * process's environment and waits for it, at most TU_RUN_TIMEOUT_MS; standard input is
 * /dev/null. Aborts the test when the command cannot be started.
 */
tu_run tu_run_cmd(char *const argv[], const char *cwd);
void tu_run_free(tu_run *r);
/* The dtn-build under test ($DTN_BUILD, else build/dtn-build). */
const char *tu_dtn_build(void);

#endif
