/*
 * daytona_fixture.h - what the tests that talk to the Daytona test server share: one server per
 * test program (tu_srv), started and stopped around the group and reset before each test;
 * clients for it that retry and poll fast; and readers of what the server was sent.
 */
#ifndef DTN_DAYTONA_FIXTURE_H
#define DTN_DAYTONA_FIXTURE_H

#include <jansson.h>
#include <stddef.h>

#include "dtn.h"
#include "server.h"
#include "testutil.h"

/* The test program's server. */
extern tu_server tu_srv;

/* cmocka group setup and teardown: start tu_srv (-1 when it cannot start), stop it. */
int tu_daytona_group_setup(void **state);
int tu_daytona_group_teardown(void **state);

/*
 * Resets the server (objects, request log, scenario, faults) and, when time_scale > 0, runs
 * its scenarios at that fraction of the recorded durations.
 */
void tu_daytona_reset(double time_scale);

/* cmocka setup: tu_daytona_reset(0), for tests that take the recorded durations. */
int tu_daytona_setup(void **state);

/* Seeds an object directly: POST /_control/<kind> ("volumes", "snapshots") with `json`; its id
 * (static storage, valid until the next call). Fails the test when the server refuses. */
const char *tu_daytona_seed(const char *kind, const char *json);

/*
 * A client of tu_srv: no environment, no .env files; o's unset api_url, api_key (unless a JWT
 * is given) and target come from the server ("us"), and retries wait 10 ms, polls 50 ms and the
 * log grace 300 ms unless o says otherwise. Fails the test when it cannot be made.
 */
dtn_daytona *tu_daytona_client(dtn_daytona_opts o);

/* Empties the server's request log. */
void tu_daytona_forget_requests(void);

/* The request log of `server` ("api", "s3", "proxy"; NULL: all), owned; fails the test when it
 * cannot be read. */
json_t *tu_daytona_requests(const char *server);

/* How many requests `server` logged with `method` (NULL: any) whose path contains path_part
 * (NULL: any path). */
size_t tu_daytona_count(const char *server, const char *method, const char *path_part);

/* The value of header `name` (any case) of a logged request, or NULL. */
const char *tu_daytona_header(const json_t *req, const char *name);

/*
 * Runs dtn-build with the arguments (NULL-terminated) in `cwd`, as tu_run_cmd does, and fails
 * the test when the server's API key shows in what it printed.
 */
tu_run tu_daytona_cli(const char *cwd, const char *first, ...);

/*
 * tu_daytona_cli, then checks the exit status and that standard output and standard error
 * contain `out` and `err` (NULL: not checked); frees the run.
 */
void tu_daytona_cli_expect(const char *cwd, int status, const char *out, const char *err,
			   const char *first, ...);

/* Fails the test, showing both, when `text` does not contain `needle`. */
void tu_assert_contains(const char *text, const char *needle);

#endif
