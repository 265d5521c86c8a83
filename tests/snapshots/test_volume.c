/*
 * test_volume.c - volumes against the test server: list, get by name and id, create, the wait
 * through pending_create -> creating -> ready, the error state, duplicate names, delete and its
 * refusals, deadlines, and the recorded SDK session's volume calls replayed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "daytona_fixture.h"
#include "testutil.h"
#include "transcript.h"

/* Volumes go pending_create -> creating -> ready in 60 + 60 ms. */
static int setup(void **state)
{
	(void)state;
	tu_daytona_reset(0.06);
	return 0;
}

static dtn_daytona *client_with(dtn_daytona_opts o)
{
	if (!o.poll_interval_ms)
		o.poll_interval_ms = 20;
	return tu_daytona_client(o);
}

static dtn_daytona *client(void)
{
	return client_with((dtn_daytona_opts){0});
}

/* Seeds a volume directly in `state`; returns its id (static storage). */
static const char *seed(const char *name, const char *state)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"name\": \"%s\", \"state\": \"%s\"}", name, state);
	return tu_daytona_seed("volumes", body);
}

/* State lines a wait delivered, joined with ','. */
typedef struct seen {
	char states[1024];
	int stop_after;              /* > 0: ask to stop after this many lines */
	int lines;
	volatile int *cancel_after;  /* set to 1 after the first line */
} seen;

static int on_log(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	seen *s = payload;

	assert_int_equal(kind, DTN_LOG_STATE);
	assert_int_equal(strlen(line), len);
	strncat(s->states, line, sizeof(s->states) - strlen(s->states) - 2);
	strcat(s->states, ",");
	s->lines++;
	if (s->cancel_after)
		*s->cancel_after = 1;
	return s->stop_after && s->lines >= s->stop_after;
}

static void test_snapshots_volume__list_and_get_by_name_and_id(void **state)
{
	dtn_daytona *c = client();
	dtn_volumes *list = NULL;
	dtn_volume *v = NULL, *w = NULL;
	char id[64];
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_volume_list(c, &list, &err), 0);
	assert_int_equal(list->count, 0);
	dtn_volumes_free(list);
	snprintf(id, sizeof(id), "%s", seed("v1", "ready"));
	seed("v2", "error");
	assert_int_equal(dtn_volume_list(c, &list, &err), 0);
	assert_int_equal(list->count, 2);
	assert_string_equal(list->items[0]->name, "v1");
	assert_string_equal(list->items[0]->id, id);
	assert_string_equal(list->items[0]->state, "ready");
	assert_null(list->items[0]->error_reason);
	assert_string_equal(list->items[1]->name, "v2");
	assert_string_equal(list->items[1]->state, "error");
	assert_non_null(list->items[0]->organization_id);
	assert_non_null(list->items[0]->created_at);
	assert_int_equal(list->items[0]->json[0], '{');
	dtn_volumes_free(list);

	assert_int_equal(dtn_volume_get(c, "v1", &v, &err), 0);
	assert_string_equal(v->id, id);
	assert_int_equal(dtn_volume_get_by_id(c, id, &w, &err), 0);
	assert_string_equal(w->name, "v1");
	assert_string_equal(w->json, v->json);
	dtn_volume_free(w);
	/* find: a UUID by id, anything else by name */
	assert_int_equal(dtn_volume_find(c, id, &w, &err), 0);
	assert_string_equal(w->name, "v1");
	dtn_volume_free(w);
	assert_int_equal(dtn_volume_find(c, "v2", &w, &err), 0);
	assert_string_equal(w->state, "error");
	dtn_volume_free(w);
	dtn_volume_free(v);
	assert_int_equal(tu_daytona_count("api", "GET", "/api/volumes/by-name/v1"), 1);
	assert_int_equal(tu_daytona_count("api", "GET", "/api/volumes/by-name/v2"), 1);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__unknown_is_a_clear_not_found(void **state)
{
	static const char uuid[] = "0f0e0d0c-0b0a-4909-8807-060504030201";
	dtn_daytona *c = client();
	dtn_volume *v = (dtn_volume *)&v;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_volume_get(c, "nope", &v, &err), DTN_ENOTFOUND);
	assert_null(v);
	tu_assert_contains(err.message, "volume \"nope\" not found");
	tu_assert_contains(err.message, "Volume with name nope not found");
	assert_int_equal(dtn_volume_get_by_id(c, uuid, &v, &err), DTN_ENOTFOUND);
	tu_assert_contains(err.message, "volume with id \"0f0e0d0c-0b0a-4909-8807-060504030201\"");
	/* a UUID that is neither an id nor a name: both were asked */
	assert_int_equal(dtn_volume_find(c, uuid, &v, &err), DTN_ENOTFOUND);
	assert_int_equal(tu_daytona_count("api", "GET", "/api/volumes/by-name/0f0e0d0c"), 1);
	assert_int_equal(dtn_volume_delete(c, "nope", false, &err), DTN_ENOTFOUND);
	tu_assert_contains(err.message, "volume \"nope\" not found");
	assert_int_equal(tu_daytona_count("api", "DELETE", NULL), 0);
	/* names are path segments: escaped, never a path of their own */
	assert_int_equal(dtn_volume_get(c, "a/b c", &v, &err), DTN_ENOTFOUND);
	assert_int_equal(tu_daytona_count("api", "GET", "/api/volumes/by-name/a%2Fb%20c"), 1);
	assert_int_equal(dtn_volume_get(c, "", &v, &err), DTN_EINVAL);
	assert_int_equal(dtn_volume_create(c, "\xff", NULL, &err), DTN_EINVAL);
	tu_assert_contains(err.message, "UTF-8");
	dtn_daytona_free(c);
}

static void test_snapshots_volume__create_then_wait_until_ready(void **state)
{
	dtn_daytona *c = client();
	dtn_volume *v = NULL, *ready = NULL;
	seen got = {0};
	dtn_error err;

	(void)state;
	/* creating lasts long enough (480 ms) for the 20 ms polls to see it on a busy machine */
	tu_server_scenario(&tu_srv, "{\"names\": {\"v1\": {\"volume_creating_ms\": 8000}}}");
	assert_int_equal(dtn_volume_create(c, "v1", &v, &err), 0);
	assert_string_equal(v->name, "v1");
	assert_string_equal(v->state, "pending_create");
	assert_int_equal(dtn_volume_wait(c, v, &(dtn_volume_wait_opts){.log = on_log,
								       .payload = &got},
					 &ready, &err),
			 0);
	assert_string_equal(ready->state, "ready");
	assert_string_equal(ready->id, v->id);
	assert_string_equal(got.states,
			    "volume v1: pending_create,volume v1: creating,volume v1: ready,");
	/* the wait polls by name, as the recorded client and Go's WaitForReady do */
	assert_true(tu_daytona_count("api", "GET", "/api/volumes/by-name/v1") >= 2);
	dtn_volume_free(ready);
	/* a volume already ready costs no request */
	assert_int_equal(dtn_volume_get(c, "v1", &ready, &err), 0);
	tu_daytona_forget_requests();
	assert_int_equal(dtn_volume_wait(c, ready, NULL, NULL, &err), 0);
	assert_int_equal(tu_daytona_count("api", NULL, NULL), 0);
	dtn_volume_free(ready);
	dtn_volume_free(v);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__duplicate_name_exists(void **state)
{
	dtn_daytona *c = client();
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_volume_create(c, "v1", NULL, &err), 0);
	assert_int_equal(dtn_volume_create(c, "v1", NULL, &err), DTN_EEXISTS);
	assert_string_equal(err.message, "volume \"v1\" already exists");
	assert_int_equal(err.code, DTN_EEXISTS);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__error_state_fails_with_reason(void **state)
{
	dtn_daytona *c = client();
	dtn_volume *v = (dtn_volume *)&v;
	seen got = {0};
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"bad\": {\"volume_outcome\": \"error\", "
				    "\"error_reason\": \"storage quota exceeded\"}}}");
	assert_int_equal(dtn_volume_ensure(c, "bad", &(dtn_volume_wait_opts){.log = on_log,
									     .payload = &got},
					   &v, &err),
			 DTN_EBUILD);
	assert_null(v);
	assert_string_equal(err.message, "volume \"bad\" failed: storage quota exceeded");
	tu_assert_contains(got.states, "volume bad: error,");
	dtn_daytona_free(c);
}

static void test_snapshots_volume__ensure_creates_once_and_never_an_id(void **state)
{
	dtn_daytona *c = client();
	dtn_volume *v = NULL, *again = NULL;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_volume_ensure(c, "data", NULL, &v, &err), 0);
	assert_string_equal(v->state, "ready");
	assert_int_equal(dtn_volume_ensure(c, "data", NULL, &again, &err), 0);
	assert_string_equal(again->id, v->id);
	dtn_volume_free(again);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/volumes"), 1);
	/* by id: one request, no lookup by name */
	tu_daytona_forget_requests();
	assert_int_equal(dtn_volume_ensure(c, v->id, NULL, &again, &err), 0);
	assert_string_equal(again->name, "data");
	assert_int_equal(tu_daytona_count("api", NULL, NULL), 1);
	dtn_volume_free(again);
	/* an unknown id is not a name to create */
	tu_daytona_forget_requests();
	assert_int_equal(dtn_volume_ensure(c, "11111111-2222-4333-8444-555555555555", NULL, &again,
					   &err),
			 DTN_ENOTFOUND);
	tu_assert_contains(err.message, "11111111-2222-4333-8444-555555555555");
	assert_int_equal(tu_daytona_count("api", "POST", NULL), 0);
	dtn_volume_free(v);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__delete_by_name_and_id_and_wait(void **state)
{
	dtn_daytona *c = client();
	dtn_volume *v = NULL;
	char id[64];
	dtn_error err;

	(void)state;
	seed("old", "ready");
	assert_int_equal(dtn_volume_delete(c, "old", true, &err), 0);
	assert_int_equal(dtn_volume_get(c, "old", &v, &err), DTN_ENOTFOUND);
	/* a name is looked up, an id deleted directly (as the SDKs do) */
	assert_int_equal(tu_daytona_count("api", "GET", "/api/volumes/by-name/old"), 2);
	/* old2 stays pending_delete long enough to be seen so, however slow the machine */
	tu_server_scenario(&tu_srv, "{\"names\": {\"old2\": {\"volume_deleting_ms\": 600000}}}");
	snprintf(id, sizeof(id), "%s", seed("old2", "error"));
	tu_daytona_forget_requests();
	assert_int_equal(dtn_volume_delete(c, id, false, &err), 0);
	assert_int_equal(tu_daytona_count("api", NULL, NULL), 1);
	assert_int_equal(tu_daytona_count("api", "DELETE", "/api/volumes/"), 1);
	assert_int_equal(dtn_volume_get(c, "old2", &v, &err), 0);
	assert_string_equal(v->state, "pending_delete");
	dtn_volume_free(v);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__delete_refused_while_creating(void **state)
{
	dtn_daytona *c = client();
	dtn_error err;

	(void)state;
	seed("young", "creating");
	assert_int_equal(dtn_volume_delete(c, "young", false, &err), DTN_EBUSY);
	tu_assert_contains(err.message, "cannot delete volume \"young\" now");
	tu_assert_contains(err.message, "only a ready volume or one in error can be deleted");
	tu_assert_contains(err.message, "400 Bad Request");
	dtn_daytona_free(c);
}

static void test_snapshots_volume__delete_refused_while_in_use(void **state)
{
	dtn_daytona *c = client();
	dtn_sandbox *s = NULL;
	dtn_volume *v = NULL;
	dtn_error err;

	(void)state;
	assert_int_equal(tu_server_control(&tu_srv, "POST", "/_control/snapshots",
					   "{\"name\": \"s\", \"state\": \"active\"}", NULL),
			 200);
	seed("shared", "ready");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){
					.snapshot = "s",
					.mounts = &(dtn_mount){"shared", "/data", NULL},
					.nmounts = 1},
					NULL, &s, &err),
			 0);
	assert_int_equal(dtn_volume_delete(c, "shared", false, &err), DTN_EBUSY);
	tu_assert_contains(err.message, "cannot delete volume \"shared\": a sandbox uses it");
	tu_assert_contains(err.message, "409 Conflict");
	assert_int_equal(dtn_volume_get(c, "shared", &v, &err), 0);
	assert_string_equal(v->state, "ready");
	dtn_volume_free(v);
	/* once the sandbox is gone the volume can go */
	assert_int_equal(dtn_sandbox_delete(c, s->id, &err), 0);
	assert_int_equal(dtn_volume_delete(c, "shared", true, &err), 0);
	dtn_sandbox_free(s);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__deadline_names_the_state(void **state)
{
	dtn_daytona *c = client_with((dtn_daytona_opts){.timeout_ms = 1000});
	dtn_volume *v = (dtn_volume *)&v;
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"slow\": {\"volume_pending_ms\": 600000}}}");
	assert_int_equal(dtn_volume_ensure(c, "slow", NULL, &v, &err), DTN_ETIMEOUT);
	assert_null(v);
	assert_string_equal(err.message, "volume \"slow\" was not ready when the time limit of 1 s "
					 "ran out (state: pending_create)");
	dtn_daytona_free(c);
}

static void test_snapshots_volume__cancel_and_callback_stop(void **state)
{
	volatile int cancel = 0;
	dtn_daytona *c = client_with((dtn_daytona_opts){.cancel = &cancel});
	seen got = {.cancel_after = &cancel};
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"volume_pending_ms\": 600000}");
	assert_int_equal(dtn_volume_ensure(c, "a", &(dtn_volume_wait_opts){.log = on_log,
									   .payload = &got},
					   NULL, &err),
			 DTN_EINTR);
	assert_int_equal(got.lines, 1);
	cancel = 0;
	got = (seen){.stop_after = 1};
	assert_int_equal(dtn_volume_ensure(c, "a", &(dtn_volume_wait_opts){.log = on_log,
									   .payload = &got},
					   NULL, &err),
			 DTN_EUSER);
	assert_int_equal(got.lines, 1);
	dtn_daytona_free(c);
}

static void test_snapshots_volume__malformed_answers(void **state)
{
	dtn_daytona *c = client();
	dtn_volumes *list = NULL;
	dtn_volume *v = NULL;
	dtn_error err;

	(void)state;
	tu_server_fault(&tu_srv,
			"{\"server\": \"api\", \"path\": \"^/api/volumes$\", \"status\": 200,"
			" \"body\": \"{\\\"items\\\": []}\", \"content_type\": "
			"\"application/json\"}");
	assert_int_equal(dtn_volume_list(c, &list, &err), DTN_EPROTOCOL);
	assert_null(list);
	tu_assert_contains(err.message, "not a JSON array");
	tu_server_fault(&tu_srv, "{\"server\": \"api\", \"path\": \"by-name/x$\", \"status\": 200,"
				 " \"body\": \"{\\\"id\\\": \\\"1\\\", \\\"name\\\": \\\"x\\\"}\", "
				 "\"content_type\": \"application/json\"}");
	assert_int_equal(dtn_volume_get(c, "x", &v, &err), DTN_EPROTOCOL);
	assert_null(v);
	assert_string_equal(err.message, "the server described a volume without a state");
	dtn_daytona_free(c);
}

/* Every allocation that fails makes the call fail cleanly (ASan and valgrind check the rest). */
static void test_snapshots_volume__allocation_failures(void **state)
{
	dtn_daytona *c = client();
	dtn_volumes *list = NULL;
	dtn_volume *v = NULL;
	dtn_error err;
	int rc;

	(void)state;
	seed("v1", "ready");
	for (long n = 1;; n++) {
		tu_fail_alloc_after(n);
		rc = dtn_volume_list(c, &list, &err);
		tu_alloc_reset();
		if (rc == 0)
			break;
		assert_int_equal(rc, DTN_ENOMEM);
		assert_null(list);
	}
	assert_int_equal(list->count, 1);
	dtn_volumes_free(list);
	for (long n = 1;; n++) {
		tu_fail_alloc_after(n);
		rc = dtn_volume_get(c, "v1", &v, &err);
		tu_alloc_reset();
		if (rc == 0)
			break;
		assert_int_equal(rc, DTN_ENOMEM);
		assert_null(v);
	}
	dtn_volume_free(v);
	dtn_daytona_free(c);
}

/*
 * The recorded session: volume.get('v1', true) then polling by name until ready; list; delete
 * by id. dtn's ensure and delete make the same calls (polls counted once).
 */
static void test_snapshots_volume__transcript_replayed(void **state)
{
	static const char recorded_id[] = "f63c1107-cd5c-41b9-9533-0d88a0656af9";
	dtn_daytona *c = client();
	dtn_volumes *list = NULL;
	dtn_volume *v = NULL;
	char *want, *got, *fixed;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_volume_ensure(c, "v1", NULL, &v, &err), 0);
	want = tu_transcript_calls("volume-get-or-create", "api");
	assert_string_equal(want, "GET /api/volumes/by-name/v1 \n"
				  "POST /api/volumes {\"name\":\"v1\"}\n"
				  "GET /api/volumes/by-name/v1 \n");
	got = tu_server_calls(&tu_srv, "api");
	assert_string_equal(got, want);
	free(want);
	free(got);

	tu_daytona_forget_requests();
	assert_int_equal(dtn_volume_list(c, &list, &err), 0);
	assert_int_equal(list->count, 1);
	dtn_volumes_free(list);
	want = tu_transcript_calls("volume-list", "api");
	got = tu_server_calls(&tu_srv, "api");
	assert_string_equal(got, want);
	free(want);
	free(got);

	tu_daytona_forget_requests();
	assert_int_equal(dtn_volume_delete(c, v->id, false, &err), 0);
	want = tu_transcript_calls("volume-delete", "api");
	fixed = tu_replace(want, recorded_id, v->id);
	got = tu_server_calls(&tu_srv, "api");
	assert_string_equal(got, fixed);
	free(want);
	free(fixed);
	free(got);
	dtn_volume_free(v);
	dtn_daytona_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_snapshots_volume__list_and_get_by_name_and_id, setup),
		cmocka_unit_test_setup(test_snapshots_volume__unknown_is_a_clear_not_found, setup),
		cmocka_unit_test_setup(test_snapshots_volume__create_then_wait_until_ready, setup),
		cmocka_unit_test_setup(test_snapshots_volume__duplicate_name_exists, setup),
		cmocka_unit_test_setup(test_snapshots_volume__error_state_fails_with_reason, setup),
		cmocka_unit_test_setup(test_snapshots_volume__ensure_creates_once_and_never_an_id,
				       setup),
		cmocka_unit_test_setup(test_snapshots_volume__delete_by_name_and_id_and_wait, setup),
		cmocka_unit_test_setup(test_snapshots_volume__delete_refused_while_creating, setup),
		cmocka_unit_test_setup(test_snapshots_volume__delete_refused_while_in_use, setup),
		cmocka_unit_test_setup(test_snapshots_volume__deadline_names_the_state, setup),
		cmocka_unit_test_setup(test_snapshots_volume__cancel_and_callback_stop, setup),
		cmocka_unit_test_setup(test_snapshots_volume__malformed_answers, setup),
		cmocka_unit_test_setup(test_snapshots_volume__allocation_failures, setup),
		cmocka_unit_test_setup(test_snapshots_volume__transcript_replayed, setup),
	};

	return cmocka_run_group_tests(tests, tu_daytona_group_setup, tu_daytona_group_teardown);
}
