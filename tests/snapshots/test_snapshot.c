/*
 * test_snapshot.c - snapshots against the test server: the create request as the SDK sends it,
 * waiting by id with states and build logs, failures, get, list, delete and activate by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "daytona_fixture.h"
#include "testutil.h"

static const char dockerfile[] = "FROM python:3.12.10-slim-bookworm\n"
				 "RUN python -m pip install requests\n"
				 "COPY x.txt /home/daytona/x.txt\n";

/* Every scenario runs 5 times faster than the recorded one: still slow enough for a poll
 * every 50 ms to see each state, even under valgrind. */
static int setup(void **state)
{
	(void)state;
	tu_daytona_reset(0.2);
	return 0;
}

static dtn_daytona *client(void)
{
	return tu_daytona_client((dtn_daytona_opts){0});
}

/* What a wait delivered. */
typedef struct seen {
	char states[512];  /* "pending,building,active," */
	int lines;
	char last[4][512]; /* the last output lines */
	int stop_after;    /* > 0: ask to stop after this many output lines */
} seen;

static int on_log(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	seen *s = payload;

	assert_int_equal(strlen(line), len);
	if (kind == DTN_LOG_STATE) {
		strncat(s->states, line, sizeof(s->states) - strlen(s->states) - 2);
		strcat(s->states, ",");
		return 0;
	}
	assert_int_equal(kind, DTN_LOG_OUTPUT);
	memmove(s->last[0], s->last[1], sizeof(s->last[0]) * 3);
	snprintf(s->last[3], sizeof(s->last[3]), "%s", line);
	s->lines++;
	return s->stop_after && s->lines >= s->stop_after;
}

/* The JSON body of the last request whose method and path are these. */
static json_t *last_body(const char *method, const char *path)
{
	json_t *log = tu_daytona_requests("api"), *r, *body = NULL;
	size_t i;

	json_array_foreach(log, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "method")), method) == 0 &&
		    strcmp(json_string_value(json_object_get(r, "path")), path) == 0) {
			json_decref(body);
			body = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
		}
	}
	json_decref(log);
	assert_non_null(body);
	return body;
}

static dtn_snapshot *create(dtn_daytona *c, const dtn_snapshot_params *p)
{
	dtn_snapshot *s = NULL;
	dtn_error err;

	if (dtn_snapshot_create(c, p, &s, &err) < 0)
		fail_msg("create: %s", err.message);
	return s;
}

/* Waits for s with its build logs, which go to got with the states. */
static int wait_logged(dtn_daytona *c, const dtn_snapshot *s, seen *got, dtn_snapshot **done,
		       dtn_error *err)
{
	return dtn_snapshot_wait(
	    c, s, &(dtn_snapshot_wait_opts){.log = on_log, .payload = got, .logs = true}, done,
	    err);
}

static void test_snapshots_snapshot__create_declarative_and_wait(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	json_t *body;
	seen got = {0};
	dtn_error err;
	char *text;

	(void)state;
	s = create(c, &(dtn_snapshot_params){.name = "wire-snap", .dockerfile = dockerfile,
					     .context_hashes = DTN_STRV("28ab1296")});
	assert_string_equal(s->state, "pending");
	assert_string_equal(s->dockerfile, dockerfile);
	assert_string_equal(s->context_hashes[0], "28ab1296");
	assert_int_equal(wait_logged(c, s, &got, &done, &err), 0);
	assert_string_equal(done->state, "active");
	assert_string_equal(done->id, s->id);
	assert_string_equal(got.states, "pending,building,active,");
	assert_int_equal(got.lines, 9);
	assert_string_equal(got.last[3], "#10 exporting to image");

	/* the body as the SDK sends it: name, buildInfo {contextHashes, dockerfileContent},
	 * regionId from the target */
	body = last_body("POST", "/api/snapshots");
	text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(text, "{\"name\":\"wire-snap\",\"buildInfo\":{\"contextHashes\":"
				  "[\"28ab1296\"],\"dockerfileContent\":\"FROM "
				  "python:3.12.10-slim-bookworm\\nRUN python -m pip install "
				  "requests\\nCOPY x.txt /home/daytona/x.txt\\n\"},\"regionId\":\"us\"}");
	free(text);
	json_decref(body);
	/* polled by id, never by name; the logs through the proxy with follow=true */
	assert_int_equal(tu_daytona_count("api", "GET", "/api/snapshots/wire-snap"), 0);
	assert_true(tu_daytona_count("api", "GET", s->id) >= 2);
	assert_int_equal(tu_daytona_count("api", "GET", "/build-logs-url"), 1);
	assert_int_equal(tu_daytona_count("proxy", "GET", "/build-logs"), 1);
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__entrypoint_resources_region(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s;
	json_t *body;
	char *text = NULL;
	dtn_error err;
	dtn_snapshot_params p = {.name = "wire-snap-res",
				 .dockerfile = "FROM python:3.12-slim", /* no final newline */
				 .entrypoint = DTN_STRV("sleep", "infinity"),
				 .cpu = 2,
				 .memory = 4,
				 .disk = 8,
				 .region = "eu"};

	(void)state;
	assert_int_equal(dtn_snapshot_create_body(&text, c, &p, &err), 0);
	assert_string_equal(text, "{\"name\":\"wire-snap-res\",\"buildInfo\":{\"contextHashes\":[],"
				  "\"dockerfileContent\":\"FROM python:3.12-slim\\nENTRYPOINT "
				  "[\\\"sleep\\\", \\\"infinity\\\"]\\n\"},\"cpu\":2,\"memory\":4,"
				  "\"disk\":8,\"regionId\":\"eu\"}");
	s = create(c, &p);
	body = last_body("POST", "/api/snapshots");
	/* the entrypoint went into the Dockerfile, never beside the build info */
	assert_null(json_object_get(body, "entrypoint"));
	json_decref(body);
	assert_int_equal(s->cpu, 2);
	assert_int_equal(s->memory, 4);
	assert_int_equal(s->disk, 8);
	dtn_free(text);
	dtn_snapshot_free(s);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__from_image_name(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	seen got = {0};
	char *text = NULL;
	dtn_error err;
	dtn_snapshot_params p = {.name = "wire-img", .image_name = "python:3.12-slim",
				 .entrypoint = DTN_STRV("sleep", "infinity")};

	(void)state;
	assert_int_equal(dtn_snapshot_create_body(&text, c, &p, &err), 0);
	assert_string_equal(text, "{\"name\":\"wire-img\",\"imageName\":\"python:3.12-slim\","
				  "\"entrypoint\":[\"sleep\",\"infinity\"],\"regionId\":\"us\"}");
	dtn_free(text);
	s = create(c, &p);
	assert_int_equal(wait_logged(c, s, &got, &done, &err), 0);
	assert_string_equal(got.states, "pending,pulling,active,");
	assert_int_equal(got.lines, 0);
	assert_string_equal(done->image_name, "python:3.12-slim");
	assert_string_equal(done->entrypoint[1], "infinity");
	assert_int_equal(tu_daytona_count("api", "GET", "build-logs-url"), 0);
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__bad_params(void **state)
{
	char *text = NULL;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_snapshot_create_body(&text, NULL, &(dtn_snapshot_params){0}, &err),
			 DTN_EINVAL);
	assert_non_null(strstr(err.message, "name"));
	assert_int_equal(dtn_snapshot_create_body(&text, NULL,
						  &(dtn_snapshot_params){.name = "x",
									 .dockerfile = "FROM a:1",
									 .image_name = "a:1"},
						  &err),
			 DTN_EINVAL);
	assert_non_null(strstr(err.message, "either"));
	assert_int_equal(dtn_snapshot_create_body(&text, NULL,
						  &(dtn_snapshot_params){.name = "x",
									 .image_name = "localhost:5000/py"},
						  &err),
			 DTN_EINVAL);
	assert_non_null(strstr(err.message, "localhost:5000/py"));
	assert_int_equal(dtn_snapshot_create_body(&text, NULL,
						  &(dtn_snapshot_params){.name = "x",
									 .image_name = "py:latest"},
						  &err),
			 DTN_EINVAL);
	assert_non_null(strstr(err.message, "latest"));
	assert_int_equal(dtn_snapshot_create_body(&text, NULL,
						  &(dtn_snapshot_params){.name = "x",
									 .image_name = "py@sha256:ab",
									 .cpu = -1},
						  &err),
			 DTN_EINVAL);
	assert_null(text);
	/* no target and no region: no regionId */
	assert_int_equal(dtn_snapshot_create_body(&text, NULL,
						  &(dtn_snapshot_params){.name = "x",
									 .image_name = "py@sha256:ab"},
						  &err),
			 0);
	assert_string_equal(text, "{\"name\":\"x\",\"imageName\":\"py@sha256:ab\"}");
	dtn_free(text);
}

static void test_snapshots_snapshot__dedupe_already_active(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	seen got = {0};
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"create_state\": \"active\"}");
	s = create(c, &(dtn_snapshot_params){.name = "dup", .dockerfile = dockerfile});
	assert_string_equal(s->state, "active");
	assert_int_equal(wait_logged(c, s, &got, &done, &err), 0);
	assert_string_equal(got.states, "active,");
	/* nothing to wait for: no poll, no stream */
	assert_int_equal(tu_daytona_count("api", "GET", "/api/snapshots/"), 0);
	assert_int_equal(tu_daytona_count("proxy", NULL, "/"), 0);
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__pending_to_active_without_stream(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	seen got = {0};
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"skip_building\": true}");
	s = create(c, &(dtn_snapshot_params){.name = "quick", .dockerfile = dockerfile});
	assert_int_equal(wait_logged(c, s, &got, &done, &err), 0);
	assert_string_equal(got.states, "pending,active,");
	assert_int_equal(tu_daytona_count("api", "GET", "build-logs-url"), 0);
	assert_int_equal(tu_daytona_count("proxy", NULL, "/"), 0);
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__build_failed_stream_never_ends(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	seen got = {0};
	dtn_error err;
	json_t *log, *r;
	size_t i;
	bool client_closed = false;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"outcome\": \"build_failed\", \"error_reason\": "
				    "\"Failed to build snapshot: exit code 1\"}");
	s = create(c, &(dtn_snapshot_params){.name = "wire-snap-fail", .dockerfile = dockerfile});
	assert_int_equal(wait_logged(c, s, &got, &done, &err), DTN_EBUILD);
	assert_non_null(strstr(err.message, "wire-snap-fail"));
	assert_non_null(strstr(err.message, "build_failed"));
	assert_non_null(strstr(err.message, "Failed to build snapshot: exit code 1"));
	assert_string_equal(got.states, "pending,building,build_failed,");
	assert_int_equal(got.lines, 3);
	assert_non_null(strstr(got.last[3], "exit code: 1"));
	/* the failed snapshot is handed back */
	assert_non_null(done);
	assert_string_equal(done->error_reason, "Failed to build snapshot: exit code 1");
	/* the stream, which the server never ends, was closed by dtn (the server notices a
	 * little later) */
	for (int tries = 0; tries < 1000 && !client_closed; tries++) {
		log = tu_server_requests(&tu_srv, "proxy");
		json_array_foreach(log, i, r)
		{
			const char *end = json_string_value(json_object_get(r, "stream_end"));

			client_closed |= end && strcmp(end, "client closed") == 0;
		}
		json_decref(log);
		if (!client_closed)
			usleep(10000);
	}
	assert_true(client_closed);
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__failed_between_polls_still_shows_the_log(void **state)
{
	dtn_daytona *c = tu_daytona_client((dtn_daytona_opts){.poll_interval_ms = 1500});
	dtn_snapshot *s, *done = NULL;
	seen got = {0};
	dtn_error err;
	json_t *log;

	(void)state;
	/* pending and building both end before the first poll */
	tu_server_scenario(&tu_srv, "{\"outcome\": \"build_failed\"}");
	s = create(c, &(dtn_snapshot_params){.name = "quick-fail", .dockerfile = dockerfile});
	assert_int_equal(wait_logged(c, s, &got, &done, &err), DTN_EBUILD);
	assert_string_equal(got.states, "pending,build_failed,");
	assert_int_equal(got.lines, 3);
	assert_non_null(strstr(got.last[3], "exit code: 1"));
	log = tu_server_requests(&tu_srv, "proxy");
	assert_int_equal(json_array_size(log), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "query")),
			    "follow=false");
	json_decref(log);
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__error_state(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"outcome\": \"error\", \"error_reason\": \"no runner\"}");
	s = create(c, &(dtn_snapshot_params){.name = "img-err", .image_name = "python:3.12-slim"});
	assert_int_equal(dtn_snapshot_wait(c, s, NULL, &done, &err), DTN_EBUILD);
	assert_non_null(strstr(err.message, "(error): no runner"));
	dtn_snapshot_free(s);
	dtn_snapshot_free(done);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__wait_deadline_and_cancel(void **state)
{
	volatile int cancel = 0;
	dtn_daytona *c =
	    tu_daytona_client((dtn_daytona_opts){.timeout_ms = 400, .cancel = &cancel});
	dtn_snapshot *s, *done = NULL;
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"pending_ms\": -1}");
	s = create(c, &(dtn_snapshot_params){.name = "stuck", .dockerfile = dockerfile});
	assert_int_equal(dtn_snapshot_wait(c, s, NULL, &done, &err), DTN_ETIMEOUT);
	assert_non_null(strstr(err.message, "still pending"));
	assert_null(done);
	dtn_daytona_set_timeout(c, 0);
	cancel = 1;
	assert_int_equal(dtn_snapshot_wait(c, s, NULL, &done, &err), DTN_EINTR);
	dtn_snapshot_free(s);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__callback_stops(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s, *done = NULL;
	seen got = {.stop_after = 2};
	dtn_error err;

	(void)state;
	s = create(c, &(dtn_snapshot_params){.name = "stopper", .dockerfile = dockerfile});
	assert_int_equal(wait_logged(c, s, &got, &done, &err), DTN_EUSER);
	/* never called after it asked to stop */
	assert_int_equal(got.lines, 2);
	dtn_snapshot_free(s);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__name_taken(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s = NULL;
	dtn_error err;

	(void)state;
	tu_server_control(&tu_srv, "POST", "/_control/snapshots", "{\"name\":\"taken\"}", NULL);
	assert_int_equal(dtn_snapshot_create(c,
					     &(dtn_snapshot_params){.name = "taken",
								    .image_name = "python:3.12-slim"},
					     &s, &err),
			 DTN_EEXISTS);
	assert_non_null(strstr(err.message, "taken"));
	assert_non_null(strstr(err.message, "already exists"));
	assert_null(s);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__get_and_list_pages(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s = NULL;
	dtn_snapshot_page *page = NULL;
	dtn_error err;
	char body[128];

	(void)state;
	for (int i = 0; i < 23; i++) {
		snprintf(body, sizeof(body), "{\"name\":\"snap-%02d\"}", i);
		assert_int_equal(
		    tu_server_control(&tu_srv, "POST", "/_control/snapshots", body, NULL), 200);
	}
	assert_int_equal(dtn_snapshot_get(c, "snap-07", &s, &err), 0);
	assert_string_equal(s->name, "snap-07");
	assert_string_equal(s->state, "active");
	assert_non_null(strstr(s->json, "\"snap-07\""));
	dtn_snapshot_free(s);
	assert_int_equal(dtn_snapshot_get(c, "missing:snap", &s, &err), DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "snapshot \"missing:snap\" not found"));

	/* every page */
	tu_daytona_forget_requests();
	assert_int_equal(dtn_snapshot_list(c, &(dtn_snapshot_list_opts){.limit = 10}, &page, &err),
			 0);
	assert_int_equal(page->count, 23);
	assert_int_equal(page->total, 23);
	assert_int_equal(page->total_pages, 3);
	assert_int_equal(tu_daytona_count("api", "GET", "/api/snapshots"), 3);
	dtn_snapshot_page_free(page);
	/* the pages came gzip-compressed, as dtn accepts */
	{
		json_t *log = tu_daytona_requests("api");

		assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0),
								      "content_encoding")),
				    "gzip");
		json_decref(log);
	}

	/* one page */
	assert_int_equal(dtn_snapshot_list(c, &(dtn_snapshot_list_opts){.page = 3, .limit = 10},
					   &page, &err),
			 0);
	assert_int_equal(page->count, 3);
	assert_int_equal(page->page, 3);
	dtn_snapshot_page_free(page);

	/* filtered by name */
	assert_int_equal(dtn_snapshot_list(c, &(dtn_snapshot_list_opts){.name = "snap-1"}, &page,
					   &err),
			 0);
	assert_int_equal(page->count, 10);
	dtn_snapshot_page_free(page);
	assert_int_equal(dtn_snapshot_list(c, &(dtn_snapshot_list_opts){.page = -1}, &page, &err),
			 DTN_EINVAL);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__delete_and_activate_by_name(void **state)
{
	dtn_daytona *c = client();
	dtn_snapshot *s = NULL, *gone = NULL;
	dtn_error err;
	json_t *log;
	const char *id;
	char path[128];

	(void)state;
	tu_server_control(&tu_srv, "POST", "/_control/snapshots",
			  "{\"name\":\"wire-img\",\"state\":\"inactive\"}", NULL);
	assert_int_equal(dtn_snapshot_activate(c, "wire-img", &s, &err), 0);
	assert_string_equal(s->state, "pending");
	/* resolved with a GET first, then activated by id */
	log = tu_server_requests(&tu_srv, "api");
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "path")),
			    "/api/snapshots/wire-img");
	snprintf(path, sizeof(path), "/api/snapshots/%s/activate", s->id);
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "path")),
			    path);
	json_decref(log);

	/* activating an active snapshot is refused by the server */
	tu_server_control(&tu_srv, "POST", "/_control/snapshots", "{\"name\":\"on\"}", NULL);
	assert_int_equal(dtn_snapshot_activate(c, "on", NULL, &err), DTN_EINVAL);

	/* delete by name, waiting until it is gone */
	id = s->id;
	assert_int_equal(dtn_snapshot_delete(c, "wire-img", true, &err), 0);
	snprintf(path, sizeof(path), "/api/snapshots/%s", id);
	assert_int_equal(tu_daytona_count("api", "DELETE", path), 1);
	assert_int_equal(dtn_snapshot_get(c, id, &gone, &err), DTN_ENOTFOUND);
	assert_null(gone);
	assert_int_equal(dtn_snapshot_delete(c, "wire-img", false, &err), DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "wire-img"));
	dtn_snapshot_free(s);
	dtn_daytona_free(c);
}

static void test_snapshots_snapshot__allocation_failures(void **state)
{
	static const char dto[] =
		"{\"id\":\"f63708ba-fd7e-4311-8d86-64b4cc2d59cc\",\"name\":\"wire-snap\","
		"\"state\":\"active\",\"entrypoint\":[\"sleep\",\"infinity\"],\"cpu\":1,"
		"\"mem\":1,\"disk\":3,\"regionIds\":[\"us\"],\"buildInfo\":{\"dockerfileContent\":"
		"\"FROM a:1\\n\",\"contextHashes\":[\"h1\",\"h2\"]}}";
	json_t *j = json_loads(dto, 0, NULL);
	dtn_snapshot_params p = {.name = "n", .dockerfile = "FROM a:1",
				 .context_hashes = DTN_STRV("h1"), .entrypoint = DTN_STRV("x")};

	(void)state;
	assert_non_null(j);
	for (long n = 1;; n++) {
		dtn_snapshot *s = NULL, *copy = NULL;
		char *text = NULL;
		int rc;

		tu_fail_alloc_after(n);
		rc = dtn__snapshot_from_json(&s, j, NULL);
		if (rc == 0 && (copy = dtn_snapshot_dup(s)) == NULL)
			rc = DTN_ENOMEM;
		if (rc == 0)
			rc = dtn_snapshot_create_body(&text, NULL, &p, NULL);
		tu_alloc_reset();
		dtn_snapshot_free(copy);
		if (rc == 0) {
			assert_string_equal(s->context_hashes[1], "h2");
			assert_string_equal(s->entrypoint[0], "sleep");
			assert_int_equal(s->memory, 1);
			assert_non_null(strstr(text, "ENTRYPOINT [\\\"x\\\"]"));
			dtn_free(text);
			dtn_snapshot_free(s);
			break;
		}
		assert_int_equal(rc, DTN_ENOMEM);
		assert_null(text);
		dtn_snapshot_free(s);
	}
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_snapshots_snapshot__create_declarative_and_wait, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__entrypoint_resources_region, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__from_image_name, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__bad_params, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__dedupe_already_active, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__pending_to_active_without_stream,
				       setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__build_failed_stream_never_ends, setup),
		cmocka_unit_test_setup(
			test_snapshots_snapshot__failed_between_polls_still_shows_the_log, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__error_state, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__wait_deadline_and_cancel, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__callback_stops, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__name_taken, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__get_and_list_pages, setup),
		cmocka_unit_test_setup(test_snapshots_snapshot__delete_and_activate_by_name, setup),
		cmocka_unit_test(test_snapshots_snapshot__allocation_failures),
	};

	return cmocka_run_group_tests(tests, tu_daytona_group_setup, tu_daytona_group_teardown);
}
