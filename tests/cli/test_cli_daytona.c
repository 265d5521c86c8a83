/*
 * test_cli_daytona.c - dtn-build's Daytona commands against the test server: build (output,
 * --json, --dry-run, failures, reuse, exit codes, Ctrl-C), snapshot list|get|delete|activate,
 * logs, and the configuration errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daytona_fixture.h"
#include "testutil.h"

static char dir[4096], spec_path[4200];

static void write_spec(const char *name, const char *steps)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "image:\n  debian_slim: \"3.12\"\n  steps:\n%s"
		 "snapshot:\n  name: %s\n  resources: {cpu: 2, memory: 4, disk: 8}\n",
		 steps, name);
	tu_write(dir, "dtn.yaml", text);
}

static int group_setup(void **state)
{
	char cache[4200];

	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	snprintf(spec_path, sizeof(spec_path), "%s/dtn.yaml", dir);
	snprintf(cache, sizeof(cache), "%s/.cache", dir);
	setenv("DTN_CACHE_DIR", cache, 1);
	tu_write(dir, "app/main.py", "print('hi')\n");
	return tu_daytona_group_setup(state);
}

static int group_teardown(void **state)
{
	tu_rmtree(dir);
	return tu_daytona_group_teardown(state);
}

static int setup(void **state)
{
	(void)state;
	tu_daytona_reset(0.05);
	tu_server_setenv(&tu_srv);
	unsetenv("NO_COLOR");
	return 0;
}

/* Runs dtn-build with the arguments (NULL-terminated) in the spec's directory. */
#define dtn(...) tu_daytona_cli(dir, __VA_ARGS__)
/* Runs it and checks the exit status, and texts in stdout and stderr (NULL: not checked). */
#define expect(status, out, err, ...) tu_daytona_cli_expect(dir, status, out, err, __VA_ARGS__)

static void test_cli_daytona__build_prints_phases_states_and_result(void **state)
{
	tu_run r;

	(void)state;
	write_spec("cli-snap", "    - add_local_dir: [app, /home/daytona/app]\n");
	r = dtn("build", spec_path, "--daytona", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "== uploading app"));
	assert_non_null(strstr(r.out, "== creating snapshot cli-snap"));
	assert_non_null(strstr(r.out, "-- state: active"));
	assert_non_null(strstr(r.out, "built snapshot cli-snap (active, id "));
	/* piped: plain lines, no colour */
	assert_null(strchr(r.out, '\033'));
	tu_run_free(&r);

	/* the name is taken now */
	r = dtn("build", spec_path, "--daytona", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "\"cli-snap\" already exists"));
	assert_non_null(strstr(r.err, "--replace"));
	tu_run_free(&r);

	/* unchanged: reused, printed as the final snapshot JSON */
	r = dtn("build", spec_path, "--if-changed", "--json", NULL);
	assert_int_equal(r.status, 0);
	{
		json_t *j = json_loads(r.out, 0, NULL);

		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "name")), "cli-snap");
		assert_string_equal(json_string_value(json_object_get(j, "state")), "active");
		json_decref(j);
	}
	assert_non_null(strstr(r.err, "unchanged"));
	tu_run_free(&r);

	/* --replace builds it again */
	expect(0, "deleting the existing snapshot cli-snap", NULL, "build", spec_path, "--replace",
	       NULL);
}

static void test_cli_daytona__dry_run_sends_nothing(void **state)
{
	tu_run r;

	(void)state;
	write_spec("cli-dry", "    - add_local_dir: [app, /home/daytona/app]\n");
	/* no credentials needed to look */
	unsetenv("DAYTONA_API_KEY");
	r = dtn("build", spec_path, "--daytona", "--dry-run", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "POST "));
	assert_non_null(strstr(r.out, "\"name\":\"cli-dry\",\"buildInfo\""));
	assert_non_null(strstr(r.out, "\"cpu\":2,\"memory\":4,\"disk\":8,\"regionId\":\"us\""));
	assert_non_null(strstr(r.out, "COPY app /home/daytona/app"));
	tu_run_free(&r);
	r = dtn("build", spec_path, "--daytona", "--dry-run", "--json", NULL);
	assert_int_equal(r.status, 0);
	{
		json_t *j = json_loads(r.out, 0, NULL);

		assert_non_null(j);
		assert_true(json_is_true(json_object_get(j, "dry_run")));
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(j, "request"), "name")),
			"cli-dry");
		assert_int_equal(json_array_size(json_object_get(j, "contexts")), 1);
		json_decref(j);
	}
	tu_run_free(&r);
	assert_int_equal(tu_daytona_count(NULL, NULL, NULL), 0);
}

static void test_cli_daytona__failed_build_shows_reason_and_lines(void **state)
{
	json_t *j;
	tu_run r;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"outcome\": \"build_failed\", \"error_reason\": "
				    "\"Failed to build snapshot: exit code 1\"}");
	write_spec("cli-fail", "    - pip_install: [definitely-not-a-package]\n");
	r = dtn("build", spec_path, "--daytona", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "-- state: build_failed"));
	assert_non_null(strstr(r.err, "Failed to build snapshot: exit code 1"));
	assert_non_null(strstr(r.err, "  | ERROR: No matching distribution"));
	tu_run_free(&r);
	/* --json: the error, the failing lines and the snapshot on stdout */
	r = dtn("build", spec_path, "--daytona", "--replace", "--json", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")),
			       "Failed to build snapshot: exit code 1"));
	assert_true(json_array_size(json_object_get(j, "failed_lines")) > 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "snapshot"),
							      "state")), "build_failed");
	json_decref(j);
	tu_run_free(&r);
	/* a key the server rejects: no snapshot, but still the error */
	r = dtn("build", spec_path, "--daytona", "--api-key", "not-the-key", "--json", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_non_null(json_string_value(json_object_get(j, "error")));
	assert_true(json_is_null(json_object_get(j, "snapshot")));
	assert_null(strstr(r.out, "not-the-key"));
	json_decref(j);
	tu_run_free(&r);
}

static void test_cli_daytona__configuration_and_auth_errors(void **state)
{
	tu_run r;

	(void)state;
	write_spec("cli-cfg", "    - pip_install: [numpy]\n");
	unsetenv("DAYTONA_API_KEY");
	r = dtn("build", spec_path, "--daytona", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "DAYTONA_API_KEY"));
	assert_non_null(strstr(r.err, "DAYTONA_JWT_TOKEN"));
	tu_run_free(&r);

	/* an explicit key that the server rejects */
	r = dtn("snapshot", "list", "--api-key", "not-the-key", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "401"));
	assert_null(strstr(r.err, "not-the-key"));
	tu_run_free(&r);

	/* a server that is down, named */
	tu_server_setenv(&tu_srv);
	expect(1, NULL, "http://127.0.0.1:9/api/snapshots", "snapshot", "list", "--api-url",
	       "http://127.0.0.1:9/api", "--timeout", "20", NULL);

	expect(2, NULL, NULL, "snapshot", "frobnicate", NULL);
}

static void test_cli_daytona__snapshot_commands(void **state)
{
	tu_run r;
	json_t *j;

	(void)state;
	tu_server_control(&tu_srv, "POST", "/_control/snapshots", "{\"name\":\"one\"}", NULL);
	tu_server_control(&tu_srv, "POST", "/_control/snapshots",
			  "{\"name\":\"two\",\"state\":\"inactive\"}", NULL);

	r = dtn("snapshot", "list", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);
	tu_run_free(&r);

	r = dtn("snapshot", "list", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "NAME"));
	assert_non_null(strstr(r.out, "2 of 2 snapshots"));
	tu_run_free(&r);

	expect(0, "state:      active", NULL, "snapshot", "get", "one", NULL);

	expect(1, NULL, "snapshot \"missing:snap\" not found", "snapshot", "get", "missing:snap",
	       NULL);

	r = dtn("snapshot", "activate", "two", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "state")), "pending");
	json_decref(j);
	tu_run_free(&r);

	expect(0, "deleted snapshot one", NULL, "snapshot", "delete", "one", NULL);
	expect(1, NULL, NULL, "snapshot", "get", "one", NULL);
}

static void test_cli_daytona__logs(void **state)
{
	tu_run r;

	(void)state;
	write_spec("cli-logs", "    - pip_install: [rich]\n");
	expect(0, NULL, NULL, "build", spec_path, "--daytona", NULL);
	r = dtn("logs", "cli-logs", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "#1 [internal] load build definition from Dockerfile\n"));
	assert_non_null(strstr(r.out, "#10 exporting to image\n"));
	tu_run_free(&r);
	expect(1, NULL, NULL, "logs", "nope", "--follow", NULL);
}

static void test_cli_daytona__interrupt_exits_130(void **state)
{
	char *argv[] = {(char *)"/usr/bin/timeout", (char *)"--preserve-status", (char *)"-s",
			(char *)"INT", (char *)"5", (char *)tu_dtn_build(), (char *)"build", spec_path,
			(char *)"--daytona", NULL};
	tu_run r;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"pending_ms\": -1}");
	write_spec("cli-int", "    - pip_install: [pandas]\n");
	r = tu_run_cmd(argv, dir);
	assert_int_equal(r.status, 130);
	assert_non_null(strstr(r.err, "interrupted"));
	assert_non_null(strstr(r.out, "-- state: pending"));
	tu_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_cli_daytona__build_prints_phases_states_and_result, setup),
		cmocka_unit_test_setup(test_cli_daytona__dry_run_sends_nothing, setup),
		cmocka_unit_test_setup(test_cli_daytona__failed_build_shows_reason_and_lines, setup),
		cmocka_unit_test_setup(test_cli_daytona__configuration_and_auth_errors, setup),
		cmocka_unit_test_setup(test_cli_daytona__snapshot_commands, setup),
		cmocka_unit_test_setup(test_cli_daytona__logs, setup),
		cmocka_unit_test_setup(test_cli_daytona__interrupt_exits_130, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
