/*
 * test_volume_cli.c - `dtn-build volume` and `dtn-build sandbox create` against the test
 * server: output, JSON, usage errors, refused mounts that send nothing, exit codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daytona_fixture.h"
#include "testutil.h"
#include "transcript.h"

static char dir[PATH_MAX];

static int group_setup(void **state)
{
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	if (tu_daytona_group_setup(state) < 0)
		return -1;
	tu_server_setenv(&tu_srv);
	return 0;
}

static int group_teardown(void **state)
{
	tu_rmtree(dir);
	return tu_daytona_group_teardown(state);
}

static int setup(void **state)
{
	(void)state;
	tu_daytona_reset(0.03);
	tu_daytona_seed("snapshots", "{\"name\": \"s\", \"state\": \"active\"}");
	return 0;
}

/* Runs dtn-build with the arguments (NULL-terminated) in the temporary directory. */
#define dtn(...) tu_daytona_cli(dir, __VA_ARGS__)
/* Runs it and checks the exit status, and texts in stdout and stderr (NULL: not checked). */
#define expect(status, out, err, ...) tu_daytona_cli_expect(dir, status, out, err, __VA_ARGS__)

static void test_cli_volume_cli__create_list_get_delete(void **state)
{
	char *want, *got;
	tu_run r;
	json_t *j;

	(void)state;
	r = dtn("volume", "list", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "no volumes\n");
	tu_run_free(&r);
	/* configured from DAYTONA_API_KEY, DAYTONA_API_URL and DAYTONA_TARGET alone, the list is
	 * the recorded session's client-from-env call */
	want = tu_transcript_calls("client-from-env", "api");
	got = tu_server_calls(&tu_srv, "api");
	assert_string_equal(got, want);
	free(want);
	free(got);

	r = dtn("volume", "create", "data", "--wait", NULL);
	assert_int_equal(r.status, 0);
	tu_assert_contains(r.out, "volume data (");
	tu_assert_contains(r.out, ") is ready\n");
	tu_assert_contains(r.err, "volume data: pending_create");
	tu_assert_contains(r.err, "volume data: ready");
	tu_run_free(&r);

	r = dtn("volume", "list", NULL);
	assert_int_equal(r.status, 0);
	tu_assert_contains(r.out, "NAME");
	tu_assert_contains(r.out, "data");
	tu_assert_contains(r.out, "ready");
	tu_run_free(&r);

	r = dtn("volume", "list", "--json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_true(json_is_array(j));
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")),
			    "data");
	json_decref(j);
	tu_run_free(&r);

	r = dtn("volume", "get", "data", "--json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	assert_true(json_is_null(json_object_get(j, "errorReason")));
	json_decref(j);
	tu_run_free(&r);

	r = dtn("volume", "get", "data", NULL);
	assert_int_equal(r.status, 0);
	tu_assert_contains(r.out, "name:       data\n");
	tu_assert_contains(r.out, "state:      ready\n");
	tu_run_free(&r);

	r = dtn("volume", "delete", "data", "--wait", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "volume data is deleted\n");
	tu_run_free(&r);
	assert_int_equal(tu_daytona_count("api", "DELETE", "/api/volumes/"), 1);
}

static void test_cli_volume_cli__failures_and_exit_codes(void **state)
{
	tu_run r;

	(void)state;
	r = dtn("volume", "get", "nope", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	tu_assert_contains(r.err, "volume \"nope\" not found");
	tu_run_free(&r);

	tu_server_scenario(&tu_srv, "{\"names\": {\"dup\": {\"volume_pending_ms\": 6000000}}}");
	expect(0, "is pending_create", NULL, "volume", "create", "dup", NULL);
	expect(1, NULL, "dtn-build: volume \"dup\" already exists\n", "volume", "create", "dup",
	       NULL);
	/* still being created: the server refuses to delete it */
	expect(1, NULL, "cannot delete volume \"dup\" now", "volume", "delete", "dup", NULL);

	tu_server_scenario(&tu_srv, "{\"names\": {\"bad\": {\"volume_outcome\": \"error\", "
				    "\"error_reason\": \"no storage\"}}}");
	expect(1, NULL, "volume \"bad\" failed: no storage", "volume", "create", "bad", "--wait",
	       NULL);

	tu_server_scenario(&tu_srv, "{\"names\": {\"slow\": {\"volume_pending_ms\": 6000000}}}");
	expect(1, NULL,
	       "volume \"slow\" was not ready when the time limit of 2 s ran out "
	       "(state: pending_create)",
	       "volume", "create", "slow", "--wait", "--timeout", "2", NULL);
}

static void test_cli_volume_cli__usage(void **state)
{
	tu_run r;

	(void)state;
	expect(2, NULL, "usage: dtn-build volume list", "volume", NULL);
	expect(0, "usage: dtn-build volume list", NULL, "volume", "--help", NULL);
	expect(2, NULL, "unknown action \"grow\"", "volume", "grow", "x", NULL);
	expect(2, NULL, NULL, "volume", "get", NULL);
	expect(2, NULL, "--wait goes with create and delete", "volume", "list", "--wait", NULL);
	expect(2, NULL, "--timeout wants a number of seconds, not \"soon\"", "volume", "create",
	       "x", "--timeout", "soon", NULL);
	assert_int_equal(tu_daytona_count("api", NULL, NULL), 0);
	/* no credentials: a configuration error naming the variables */
	unsetenv("DAYTONA_API_KEY");
	r = dtn("volume", "list", NULL);
	tu_server_setenv(&tu_srv);
	assert_int_equal(r.status, 3);
	tu_assert_contains(r.err, "DAYTONA_API_KEY");
	tu_run_free(&r);
}

static void test_cli_volume_cli__sandbox_create_with_volumes(void **state)
{
	tu_run r;
	json_t *j, *vols;

	(void)state;
	r = dtn("sandbox", "create", "--snapshot", "s", "--name", "sb", "--volume",
		"data:/home/daytona/data:team-a", "--volume=models:/models", "--env", "A=1",
		"--label", "team=ml", "--json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "started");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "sb");
	vols = json_object_get(j, "volumes");
	assert_int_equal(json_array_size(vols), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 0),
							      "mountPath")),
			    "/home/daytona/data");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 0),
							      "subpath")),
			    "team-a");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "env"), "A")),
			    "1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "labels"),
							      "code-toolbox-language")),
			    "python");
	json_decref(j);
	tu_assert_contains(r.err, "== volume data: making sure it exists and is ready");
	tu_assert_contains(r.err, "-- state: volume models: ready");
	tu_assert_contains(r.err, "== creating a sandbox from snapshot s");
	tu_run_free(&r);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/volumes"), 2);

	r = dtn("sandbox", "create", "--snapshot", "s", "--volume", "data:/data2", NULL);
	assert_int_equal(r.status, 0);
	tu_assert_contains(r.out, "is started, from snapshot s\n");
	tu_assert_contains(r.out, " at /data2\n");
	tu_run_free(&r);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/volumes"), 2);
}

static void test_cli_volume_cli__sandbox_refusals_send_nothing(void **state)
{
	static const char *const bad[][2] = {
		{"data", "expected NAME:PATH[:SUBPATH]"},
		{"data:relative", "mount path \"relative\" must be an absolute path"},
		{"data:/", "is the root directory"},
		{"data:/a/../b", "\".\" or \"..\" components"},
		{"data:/a//b", "must not contain \"//\""},
		{"data:/etc/app", "is a system directory"},
		{"data:/x:/abs", "subpath \"/abs\" must not start with '/'"},
		{"data:/x:a/../b", "must not contain \"..\""},
		{"data:/x:", "the subpath after the second ':' is empty"},
		{":/x", "the volume name before the first ':' is empty"},
	};
	tu_run r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = dtn("sandbox", "create", "--snapshot", "s", "--volume", "ok:/ok", "--volume",
			bad[i][0], NULL);
		if (r.status != 2)
			fail_msg("--volume %s: exit %d: %s", bad[i][0], r.status, r.err);
		tu_assert_contains(r.err, bad[i][1]);
		assert_string_equal(r.out, "");
		tu_run_free(&r);
	}
	expect(2, NULL, "volumes a and b are both mounted at /same", "sandbox", "create",
	       "--snapshot", "s", "--volume", "a:/same", "--volume", "b:/same", NULL);
	expect(2, NULL, "create needs --snapshot S", "sandbox", "create", "--volume", "a:/x", NULL);
	expect(2, NULL, "environment variable \"NOVALUE\": expected KEY=VALUE", "sandbox", "create",
	       "--snapshot", "s", "--env", "NOVALUE", NULL);
	expect(2, NULL, "--volume needs a value", "sandbox", "create", "--snapshot", "s",
	       "--volume", NULL);
	expect(2, NULL, "unknown action \"start\"", "sandbox", "start", NULL);
	assert_int_equal(tu_daytona_count(NULL, NULL, NULL), 0);
}

static void test_cli_volume_cli__sandbox_start_failure_and_unknown_snapshot(void **state)
{
	tu_run r;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"doomed\": {\"sandbox_outcome\": \"error\", "
				    "\"sandbox_create_waits\": false, "
				    "\"error_reason\": \"image pull failed\"}}}");
	r = dtn("sandbox", "create", "--snapshot", "s", "--name", "doomed", NULL);
	assert_int_equal(r.status, 1);
	tu_assert_contains(r.err, "failed to start (state error): image pull failed");
	assert_string_equal(r.out, "");
	tu_run_free(&r);
	expect(1, NULL, "Snapshot ghost not found", "sandbox", "create", "--snapshot", "ghost",
	       NULL);
}

/* build SPEC --sandbox: the fresh snapshot started with the spec's volumes mounted. */
static void test_cli_volume_cli__build_then_sandbox_with_spec_volumes(void **state)
{
	char spec[PATH_MAX + 16];
	json_t *j, *vols;
	tu_run r;

	(void)state;
	tu_write(dir, "vols.yaml", "image:\n  base: python:3.12-slim\n"
				   "snapshot:\n  name: with-vols\n"
				   "volumes:\n"
				   "  - name: datasets\n    mount_path: /home/daytona/data\n"
				   "    subpath: team-a\n"
				   "  - name: cache\n    mount_path: /cache\n");
	snprintf(spec, sizeof(spec), "%s/vols.yaml", dir);
	r = dtn("build", spec, "--daytona", "--sandbox", "--json", NULL);
	if (r.status != 0)
		fail_msg("build --sandbox: exit %d: %s", r.status, r.err);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "snapshot"),
							      "state")),
			    "active");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "sandbox"),
							      "state")),
			    "started");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "sandbox"),
							      "snapshot")),
			    "with-vols");
	vols = json_object_get(json_object_get(j, "sandbox"), "volumes");
	assert_int_equal(json_array_size(vols), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 0),
							      "mountPath")),
			    "/home/daytona/data");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 0),
							      "subpath")),
			    "team-a");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 1),
							      "mountPath")),
			    "/cache");
	json_decref(j);
	tu_run_free(&r);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/volumes"), 2);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/sandbox"), 1);

	/* a spec whose mount the server would refuse: refused before anything is built */
	tu_write(dir, "badvol.yaml", "image:\n  base: python:3.12-slim\n"
				     "snapshot:\n  name: bad-vols\n"
				     "volumes:\n  - name: x\n    mount_path: /etc/x\n");
	snprintf(spec, sizeof(spec), "%s/badvol.yaml", dir);
	expect(2, NULL,
	       "build: the spec's volumes: volume x: mount path \"/etc/x\" is a "
	       "system directory",
	       "build", spec, "--daytona", "--sandbox", NULL);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/snapshots"), 1);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/sandbox"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_cli_volume_cli__create_list_get_delete, setup),
		cmocka_unit_test_setup(test_cli_volume_cli__failures_and_exit_codes, setup),
		cmocka_unit_test_setup(test_cli_volume_cli__usage, setup),
		cmocka_unit_test_setup(test_cli_volume_cli__sandbox_create_with_volumes, setup),
		cmocka_unit_test_setup(test_cli_volume_cli__sandbox_refusals_send_nothing, setup),
		cmocka_unit_test_setup(test_cli_volume_cli__sandbox_start_failure_and_unknown_snapshot,
				       setup),
		cmocka_unit_test_setup(test_cli_volume_cli__build_then_sandbox_with_spec_volumes,
				       setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
