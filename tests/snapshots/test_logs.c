/*
 * test_logs.c - build logs: bytes into bounded lines, and the stream against the test server
 * (chunks across lines, a dropped stream re-opened without repeating lines, a log endpoint
 * answering 404, a stalled stream, the logs of a past or running build).
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

/* ---- lines ---- */

typedef struct collected {
	char text[8192]; /* each line followed by '|' */
	int n;
	int stop_at;
} collected;

static int collect(const char *line, size_t len, void *payload)
{
	collected *c = payload;

	assert_int_equal(strlen(line), len);
	strncat(c->text, line, sizeof(c->text) - strlen(c->text) - 2);
	strcat(c->text, "|");
	c->n++;
	return c->stop_at && c->n >= c->stop_at;
}

static void feed(dtn__lines *l, const char *s, collected *c)
{
	/* byte by byte and all at once must give the same lines: feed in odd pieces */
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i += 3)
		assert_int_equal(dtn__lines_feed(l, s + i, n - i < 3 ? n - i : 3, collect, c), 0);
}

static void test_snapshots_logs__lines_split_and_bounded(void **state)
{
	dtn__lines l;
	collected c = {0};

	(void)state;
	assert_int_equal(dtn__lines_init(&l, 8), 0);
	feed(&l, "one\ntwo\r\n\nthree-is-long\npartial", &c);
	assert_string_equal(c.text, "one|two||three-is|-long|");
	assert_int_equal(dtn__lines_finish(&l, collect, &c), 0);
	assert_string_equal(c.text, "one|two||three-is|-long|partial|");
	dtn__lines_free(&l);
}

/* A line exactly as long as the bound is one line, not a line and an empty one; a CRLF cut
 * between its CR and LF loses the CR; a lone CRLF is still an empty line. */
static void test_snapshots_logs__line_of_the_bound_adds_no_empty_line(void **state)
{
	dtn__lines l;
	collected c = {0};

	(void)state;
	assert_int_equal(dtn__lines_init(&l, 8), 0);
	feed(&l, "abcdefgh\nx\nabcdefg\r\n\r\ny\n", &c);
	assert_string_equal(c.text, "abcdefgh|x|abcdefg||y|");
	dtn__lines_free(&l);
}

static void test_snapshots_logs__pieces_never_cut_utf8(void **state)
{
	dtn__lines l;
	collected c = {0};

	(void)state;
	assert_int_equal(dtn__lines_init(&l, 8), 0);
	/* "abcdef" + "é" (2 bytes) would end at byte 8 */
	feed(&l, "abcdefg\xc3\xa9xyz\n", &c);
	assert_string_equal(c.text, "abcdefg|\xc3\xa9xyz|");
	dtn__lines_free(&l);
}

static void test_snapshots_logs__restart_skips_what_was_delivered(void **state)
{
	dtn__lines l;
	collected c = {0};

	(void)state;
	assert_int_equal(dtn__lines_init(&l, 8), 0);
	feed(&l, "a1\nb2\nlong-line-", &c); /* "long-lin" went out as a piece */
	assert_string_equal(c.text, "a1|b2|long-lin|");
	dtn__lines_restart(&l);
	/* the stream starts over from the beginning and goes on */
	feed(&l, "a1\nb2\nlong-line-end\nc3\n", &c);
	assert_string_equal(c.text, "a1|b2|long-lin|e-end|c3|");
	/* dropped again before reaching the point: nothing delivered twice */
	dtn__lines_restart(&l);
	feed(&l, "a1\n", &c);
	dtn__lines_restart(&l);
	feed(&l, "a1\nb2\nlong-line-end\nc3\nd4\n", &c);
	assert_string_equal(c.text, "a1|b2|long-lin|e-end|c3|d4|");
	assert_int_equal(l.delivered, 6);
	dtn__lines_free(&l);
}

static void test_snapshots_logs__callback_stop(void **state)
{
	dtn__lines l;
	collected c = {.stop_at = 2};

	(void)state;
	assert_int_equal(dtn__lines_init(&l, 0), 0);
	assert_int_not_equal(dtn__lines_feed(&l, "a\nb\nc\n", 6, collect, &c), 0);
	assert_string_equal(c.text, "a|b|");
	dtn__lines_free(&l);
}

/* ---- streams against the server ---- */

static int setup(void **state)
{
	(void)state;
	tu_daytona_reset(0.05);
	return 0;
}

typedef struct seen {
	char out[8192];
	char states[256];
	int lines;
	int warnings;
	char warning[1024];
} seen;

static int on_log(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	seen *s = payload;
	char *dst = kind == DTN_LOG_STATE ? s->states : s->out;
	size_t size = kind == DTN_LOG_STATE ? sizeof(s->states) : sizeof(s->out);

	(void)len;
	strncat(dst, line, size - strlen(dst) - 2);
	strcat(dst, "|");
	if (kind == DTN_LOG_OUTPUT)
		s->lines++;
	return 0;
}

static void on_warn(const char *message, void *payload)
{
	seen *s = payload;

	s->warnings++;
	snprintf(s->warning, sizeof(s->warning), "%s", message);
}

static dtn_daytona *client(seen *s)
{
	return tu_daytona_client((dtn_daytona_opts){.warn = on_warn, .payload = s});
}

/* Creates a declarative snapshot and waits for it with its logs. */
static int build(dtn_daytona *c, const char *name, seen *s, dtn_error *err)
{
	dtn_snapshot *snap = NULL, *done = NULL;
	int rc;

	if (dtn_snapshot_create(c,
				&(dtn_snapshot_params){.name = name,
						       .dockerfile = "FROM python:3.12-slim\n"},
				&snap, err) < 0)
		fail_msg("create: %s", err->message);
	rc = dtn_snapshot_wait(c, snap,
			       &(dtn_snapshot_wait_opts){.log = on_log, .payload = s, .logs = true},
			       &done, err);
	dtn_snapshot_free(snap);
	dtn_snapshot_free(done);
	return rc;
}

static const char lines_json[] =
	"[\"#1 one\\n\", \"#2 two\\n\", \"#3 three\\n\", \"#4 four\\n\", \"#5 five\\n\"]";
static const char lines_seen[] = "#1 one|#2 two|#3 three|#4 four|#5 five|";

static void scenario(const char *extra)
{
	char json[1024];

	/* a line every 100 ms: the build is seen building even under valgrind */
	snprintf(json, sizeof(json), "{\"log_lines\": %s, \"log_interval_ms\": 2000%s%s}",
		 lines_json, extra ? ", " : "", extra ? extra : "");
	tu_server_scenario(&tu_srv, json);
}

static void test_snapshots_logs__chunks_across_lines(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;

	(void)state;
	scenario("\"log_chunk_bytes\": 5");
	assert_int_equal(build(c, "chunky", &s, &err), 0);
	assert_string_equal(s.out, lines_seen);
	assert_int_equal(s.warnings, 0);
	dtn_daytona_free(c);
}

static void test_snapshots_logs__dropped_stream_reopened_without_repeats(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;

	(void)state;
	/* the first opening drops after two lines; the next one replays the log from its start */
	scenario("\"log_mode\": \"drop\", \"log_fault_after_lines\": 2, \"log_fault_times\": 1");
	assert_int_equal(build(c, "droppy", &s, &err), 0);
	assert_string_equal(s.out, lines_seen);
	assert_int_equal(s.warnings, 0);
	/* two openings of the stream */
	{
		json_t *log = tu_server_requests(&tu_srv, "proxy");

		assert_int_equal(json_array_size(log), 2);
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(log, 0), "stream_end")),
			"dropped");
		json_decref(log);
	}
	dtn_daytona_free(c);
}

static void test_snapshots_logs__log_404_is_not_a_log_line(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;

	(void)state;
	scenario("\"log_mode\": \"404\"");
	assert_int_equal(build(c, "nologs", &s, &err), 0);
	assert_string_equal(s.out, "");
	assert_string_equal(s.states, "pending|building|active|");
	assert_int_equal(s.warnings, 1);
	assert_non_null(strstr(s.warning, "404"));
	assert_non_null(strstr(s.warning, "build logs not found"));
	dtn_daytona_free(c);
}

/*
 * The proxy's log of stream openings: "query>stream_end|" for each, once the server has seen
 * each one end (it notices a client that went away a little later; 10 s at most).
 */
static void stream_openings(char *buf, size_t size)
{
	for (int tries = 0; tries < 1000; tries++) {
		json_t *log = tu_server_requests(&tu_srv, "proxy"), *r;
		bool all_ended = true;
		size_t i;

		buf[0] = '\0';
		json_array_foreach(log, i, r)
		{
			const char *end = json_string_value(json_object_get(r, "stream_end"));

			all_ended &= end != NULL;
			snprintf(buf + strlen(buf), size - strlen(buf), "%s>%s|",
				 json_string_value(json_object_get(r, "query")), end ? end : "?");
		}
		json_decref(log);
		if (all_ended)
			return;
		usleep(10000);
	}
}

/*
 * A stream that stalls for good: cut once the build is over, then the log is read once more
 * without following, which stalls too and is given up; the build is still a success.
 */
static void test_snapshots_logs__stalled_stream_ends_after_the_build(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;
	char opened[512];

	(void)state;
	scenario("\"log_mode\": \"stall\", \"log_fault_after_lines\": 3, \"build_ms\": 6000");
	assert_int_equal(build(c, "stally", &s, &err), 0);
	assert_string_equal(s.out, "#1 one|#2 two|#3 three|");
	assert_string_equal(s.states, "pending|building|active|");
	assert_int_equal(s.warnings, 0);
	stream_openings(opened, sizeof(opened));
	assert_string_equal(opened, "follow=true>client closed|follow=false>client closed|");
	dtn_daytona_free(c);
}

/* A stream that stalled once: after the build, the lines it held back are read, once each. */
static void test_snapshots_logs__stalled_stream_read_again_after_the_build(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;
	char opened[512];

	(void)state;
	scenario("\"log_mode\": \"stall\", \"log_fault_after_lines\": 3, "
		 "\"log_fault_times\": 1, \"build_ms\": 6000");
	assert_int_equal(build(c, "stalled-once", &s, &err), 0);
	assert_string_equal(s.out, lines_seen);
	assert_int_equal(s.warnings, 0);
	stream_openings(opened, sizeof(opened));
	assert_string_equal(opened, "follow=true>client closed|follow=false>eof|");
	dtn_daytona_free(c);
}

/*
 * A failed build whose stream stalled before its last lines: the failing lines still arrive
 * (the stream of a failed build never ends, so its log is always read once more).
 */
static void test_snapshots_logs__failed_build_shows_the_lines_a_stall_held_back(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;
	char opened[512];

	(void)state;
	scenario("\"log_mode\": \"stall\", \"log_fault_after_lines\": 2, "
		 "\"log_fault_times\": 1, \"outcome\": \"build_failed\"");
	assert_int_equal(build(c, "stalled-failing", &s, &err), DTN_EBUILD);
	assert_non_null(strstr(err.message, "build_failed"));
	assert_string_equal(s.out, lines_seen);
	assert_int_equal(s.warnings, 0);
	stream_openings(opened, sizeof(opened));
	assert_string_equal(opened, "follow=true>client closed|follow=false>eof|");
	dtn_daytona_free(c);
}

static void test_snapshots_logs__past_and_running_builds(void **state)
{
	seen s = {0}, again = {0}, followed = {0};
	dtn_daytona *c = client(&s);
	dtn_snapshot *img = NULL;
	dtn_error err;
	json_t *log;

	(void)state;
	scenario(NULL);
	assert_int_equal(build(c, "past", &s, &err), 0);

	/* a finished build: the whole log, follow=false */
	assert_int_equal(dtn_snapshot_logs(c, "past", false, on_log, &again, &err), 0);
	assert_string_equal(again.out, lines_seen);
	log = tu_server_requests(&tu_srv, "proxy");
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "query")),
			    "follow=false");
	json_decref(log);

	/* a running build followed to its end, with its states */
	/* still pending when followed: the log is opened once the build runs */
	tu_server_scenario(&tu_srv, "{\"pending_ms\": 4000}");
	assert_int_equal(dtn_snapshot_create(c,
					     &(dtn_snapshot_params){.name = "running",
								    .dockerfile = "FROM a:1\n"},
					     &img, &err),
			 0);
	dtn_snapshot_free(img);
	assert_int_equal(dtn_snapshot_logs(c, "running", true, on_log, &followed, &err), 0);
	assert_string_equal(followed.out, lines_seen);
	assert_string_equal(followed.states, "pending|building|active|");

	/* a snapshot made from an image has no build logs */
	assert_int_equal(dtn_snapshot_create(c,
					     &(dtn_snapshot_params){.name = "from-image",
								    .image_name = "python:3.12-slim"},
					     &img, &err),
			 0);
	dtn_snapshot_free(img);
	assert_int_equal(dtn_snapshot_logs(c, "from-image", false, on_log, &followed, &err),
			 DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "python:3.12-slim"));
	assert_int_equal(dtn_snapshot_logs(c, "nope", false, on_log, &followed, &err),
			 DTN_ENOTFOUND);
	dtn_daytona_free(c);
}

static void test_snapshots_logs__unreadable_log_is_an_error_for_logs(void **state)
{
	seen s = {0}, again = {0};
	dtn_daytona *c = client(&s);
	dtn_error err;

	(void)state;
	scenario(NULL);
	assert_int_equal(build(c, "gone-logs", &s, &err), 0);
	tu_server_scenario(&tu_srv, "{\"log_mode\": \"404\"}");
	assert_int_equal(dtn_snapshot_logs(c, "gone-logs", false, on_log, &again, &err),
			 DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "build logs not found"));
	dtn_daytona_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshots_logs__lines_split_and_bounded),
		cmocka_unit_test(test_snapshots_logs__line_of_the_bound_adds_no_empty_line),
		cmocka_unit_test(test_snapshots_logs__pieces_never_cut_utf8),
		cmocka_unit_test(test_snapshots_logs__restart_skips_what_was_delivered),
		cmocka_unit_test(test_snapshots_logs__callback_stop),
		cmocka_unit_test_setup(test_snapshots_logs__chunks_across_lines, setup),
		cmocka_unit_test_setup(test_snapshots_logs__dropped_stream_reopened_without_repeats,
				       setup),
		cmocka_unit_test_setup(test_snapshots_logs__log_404_is_not_a_log_line, setup),
		cmocka_unit_test_setup(test_snapshots_logs__stalled_stream_ends_after_the_build, setup),
		cmocka_unit_test_setup(test_snapshots_logs__stalled_stream_read_again_after_the_build,
				       setup),
		cmocka_unit_test_setup(
			test_snapshots_logs__failed_build_shows_the_lines_a_stall_held_back, setup),
		cmocka_unit_test_setup(test_snapshots_logs__past_and_running_builds, setup),
		cmocka_unit_test_setup(test_snapshots_logs__unreadable_log_is_an_error_for_logs, setup),
	};

	return cmocka_run_group_tests(tests, tu_daytona_group_setup, tu_daytona_group_teardown);
}
