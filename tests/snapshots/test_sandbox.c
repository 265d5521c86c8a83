/*
 * test_sandbox.c - sandboxes from a snapshot with volumes: the server's mount rules checked
 * before anything is sent, NAME:PATH[:SUBPATH], the create body, volumes made ready first,
 * waiting until started, start failures, deadlines, and the recorded session replayed.
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

#include "api.h"
#include "daytona_fixture.h"
#include "testutil.h"
#include "transcript.h"

/* Volumes and sandboxes take 60 ms per state; snapshot "s" is active. */
static int setup(void **state)
{
	(void)state;
	tu_daytona_reset(0.06);
	tu_daytona_seed("snapshots", "{\"name\": \"s\", \"state\": \"active\"}");
	return 0;
}

static dtn_daytona *client_with(dtn_daytona_opts o)
{
	o.poll_interval_ms = 20;
	return tu_daytona_client(o);
}

static dtn_daytona *client(void)
{
	return client_with((dtn_daytona_opts){0});
}

static const char *seed_volume(const char *name, const char *state, const char *id)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"name\": \"%s\", \"state\": \"%s\"%s%s%s}", name, state,
		 id ? ", \"id\": \"" : "", id ? id : "", id ? "\"" : "");
	return tu_daytona_seed("volumes", body);
}

/* Lines delivered, "kind:line" joined with '\n'. */
typedef struct seen {
	char text[4096];
} seen;

static int on_log(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	seen *s = payload;
	size_t n = strlen(s->text);

	assert_int_equal(strlen(line), len);
	snprintf(s->text + n, sizeof(s->text) - n, "%s:%s\n",
		 kind == DTN_LOG_PHASE ? "phase" : kind == DTN_LOG_STATE ? "state" : "output", line);
	return 0;
}

/* ---- mounts, without a server ---- */

static int check(const char *volume, const char *path, const char *subpath, dtn_error *err)
{
	return dtn_mount_check(&(dtn_mount){volume, path, subpath}, err);
}

static void assert_refused(const char *path, const char *subpath, const char *why)
{
	dtn_error err;

	dtn_error_clear(&err);
	if (check("data", path, subpath, &err) != DTN_EINVAL)
		fail_msg("mount path \"%s\" subpath \"%s\" was accepted", path,
			 subpath ? subpath : "(none)");
	tu_assert_contains(err.message, "volume data: ");
	tu_assert_contains(err.message, why);
}

static void test_snapshots_sandbox__mount_paths_by_the_server_rules(void **state)
{
	static const char *const good[] = {
		"/home/daytona/data", "/data", "/data/", "/a/.b", "/a/..b/c", "/a/b...",
		"/procfs", "/etcetera", "/library", "/home/daytona/etc", "/bin2", "/usr/lib",
		"/d\xc3\xa4ta", "/with space", "/lib64x",
	};
	dtn_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (check("data", good[i], NULL, &err) != 0)
			fail_msg("\"%s\" refused: %s", good[i], err.message);
	assert_refused("data", NULL, "mount path \"data\" must be an absolute path");
	assert_refused("home/x", NULL, "must be an absolute path");
	assert_refused("", NULL, "mount path \"\" is empty");
	assert_refused(NULL, NULL, "is empty");
	assert_refused("/", NULL, "is the root directory");
	assert_refused("//", NULL, "is the root directory");
	assert_refused("/a/../b", NULL, "must not contain \".\" or \"..\" components");
	assert_refused("/a/./b", NULL, "components");
	assert_refused("/a/..", NULL, "components");
	assert_refused("/a/.", NULL, "components");
	assert_refused("/..", NULL, "components");
	assert_refused("/.", NULL, "components");
	assert_refused("/a//b", NULL, "must not contain \"//\"");
	assert_refused("/a/b//", NULL, "\"//\"");
	assert_refused("//data", NULL, "\"//\"");
	static const char *const system[] = {"/proc", "/sys", "/dev", "/boot", "/etc",
					     "/bin", "/sbin", "/lib", "/lib64"};
	for (size_t i = 0; i < sizeof(system) / sizeof(system[0]); i++) {
		char below[64];

		assert_refused(system[i], NULL, "is a system directory");
		snprintf(below, sizeof(below), "%s/x/y", system[i]);
		assert_refused(below, NULL, "is a system directory");
		snprintf(below, sizeof(below), "%s/", system[i]);
		assert_refused(below, NULL, "is a system directory");
	}
	assert_refused("/data\n", NULL, "mount path \"/data\\n\" is not printable UTF-8 text");
	assert_refused("/d\xff", NULL, "not printable UTF-8");
}

static void test_snapshots_sandbox__subpaths_by_the_server_rules(void **state)
{
	static const char *const good[] = {"proj-a", "a/b", "a/b/", "team.a", "a.b", "", NULL};
	dtn_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (check("data", "/data", good[i], &err) != 0)
			fail_msg("subpath \"%s\" refused: %s", good[i], err.message);
	assert_refused("/data", "/abs", "subpath \"/abs\" must not start with '/'");
	assert_refused("/data", "a/../b", "subpath \"a/../b\" must not contain \"..\"");
	assert_refused("/data", "..", "must not contain \"..\"");
	assert_refused("/data", "a..b", "must not contain \"..\"");
	assert_refused("/data", "a//b", "subpath \"a//b\" must not contain \"//\"");
	assert_refused("/data", "a\tb", "not printable UTF-8");
	assert_int_equal(check(NULL, "/data", NULL, &err), DTN_EINVAL);
	assert_string_equal(err.message, "a volume mount names no volume");
	assert_int_equal(check("", "/data", NULL, &err), DTN_EINVAL);
}

static void assert_parsed(const char *text, const char *volume, const char *path,
			  const char *subpath)
{
	dtn_mount *m = NULL;
	dtn_error err;

	if (dtn_mount_parse(text, &m, &err) != 0)
		fail_msg("\"%s\": %s", text, err.message);
	assert_string_equal(m->volume, volume);
	assert_string_equal(m->mount_path, path);
	if (subpath)
		assert_string_equal(m->subpath, subpath);
	else
		assert_null(m->subpath);
	dtn_free(m);
}

static void assert_parse_error(const char *text, const char *message)
{
	dtn_mount *m = (dtn_mount *)&m;
	dtn_error err;

	assert_int_equal(dtn_mount_parse(text, &m, &err), DTN_EINVAL);
	assert_null(m);
	assert_string_equal(err.message, message);
}

static void test_snapshots_sandbox__mount_parse(void **state)
{
	(void)state;
	assert_parsed("data:/home/daytona/data", "data", "/home/daytona/data", NULL);
	assert_parsed("data:/home/daytona/data:team-a", "data", "/home/daytona/data", "team-a");
	assert_parsed("data:/d:a:b", "data", "/d", "a:b");
	assert_parsed("f63c1107-cd5c-41b9-9533-0d88a0656af9:/d",
		      "f63c1107-cd5c-41b9-9533-0d88a0656af9", "/d", NULL);
	assert_parse_error("data", "volume mount \"data\": expected NAME:PATH[:SUBPATH]");
	assert_parse_error(":/data", "volume mount \":/data\": the volume name before the first "
				     "':' is empty");
	assert_parse_error("data:", "volume mount \"data:\": the mount path after the first ':' "
				    "is empty");
	assert_parse_error("data::x", "volume mount \"data::x\": the mount path after the first "
				      "':' is empty");
	assert_parse_error("data:/d:", "volume mount \"data:/d:\": the subpath after the second "
				       "':' is empty (leave the ':' out to mount the whole volume)");
	assert_parse_error("data:rel", "volume data: mount path \"rel\" must be an absolute path");
	assert_parse_error("data:/etc", "volume data: mount path \"/etc\" is a system directory "
					"(nothing can be mounted on or below /proc, /sys, /dev, "
					"/boot, /etc, /bin, /sbin, /lib or /lib64)");
	assert_parse_error("data:/d:/x", "volume data: subpath \"/x\" must not start with '/' (it "
					 "is a prefix inside the volume)");
	assert_parse_error(NULL, "volume mount \"(null)\": expected NAME:PATH[:SUBPATH]");
	for (long n = 1; n < 3; n++) {
		dtn_mount *m = NULL;
		dtn_error err;

		tu_fail_alloc_after(n);
		assert_int_equal(dtn_mount_parse("a:/b:c", &m, &err), n == 1 ? DTN_ENOMEM : 0);
		tu_alloc_reset();
		dtn_free(m);
	}
}

static void test_snapshots_sandbox__create_body(void **state)
{
	dtn_daytona *c = client();
	dtn_mount mounts[] = {{"v1", "/home/daytona/data", "proj-a"}, {"v2", "/data", NULL}};
	dtn_error err;
	char *body;

	(void)state;
	assert_int_equal(dtn_sandbox_create_body(c, &(dtn_sandbox_params){.name = "wire-sbx-vol",
									 .snapshot = "s",
									 .mounts = mounts,
									 .nmounts = 2},
						 &body, &err),
			 0);
	assert_string_equal(body, "{\"name\":\"wire-sbx-vol\",\"snapshot\":\"s\",\"env\":{},"
				  "\"labels\":{\"code-toolbox-language\":\"python\"},"
				  "\"target\":\"us\",\"volumes\":[{\"volumeId\":\"v1\","
				  "\"mountPath\":\"/home/daytona/data\",\"subpath\":\"proj-a\"},"
				  "{\"volumeId\":\"v2\",\"mountPath\":\"/data\"}]}");
	dtn_free(body);
	/* no client: no target; env and labels; a label replaces the toolbox language */
	assert_int_equal(dtn_sandbox_create_body(NULL, &(dtn_sandbox_params){
						   .snapshot = "s",
						   .env = DTN_STRV("A=1", "B=x=y", "C="),
						   .labels = DTN_STRV("team=ml",
								      "code-toolbox-language=typescript")},
						 &body, &err),
			 0);
	assert_string_equal(body, "{\"snapshot\":\"s\",\"env\":{\"A\":\"1\",\"B\":\"x=y\",\"C\":\"\"},"
				  "\"labels\":{\"code-toolbox-language\":\"typescript\","
				  "\"team\":\"ml\"}}");
	dtn_free(body);
	assert_int_equal(dtn_sandbox_create_body(c, &(dtn_sandbox_params){.snapshot = NULL},
						 &body, &err),
			 DTN_EINVAL);
	assert_string_equal(err.message, "a sandbox needs a snapshot to start from");
	assert_int_equal(dtn_sandbox_create_body(c, &(dtn_sandbox_params){
						   .snapshot = "s", .env = DTN_STRV("NOEQUALS")},
						 &body, &err),
			 DTN_EINVAL);
	assert_string_equal(err.message,
			    "environment variable \"NOEQUALS\": expected KEY=VALUE in UTF-8");
	assert_int_equal(dtn_sandbox_create_body(c, &(dtn_sandbox_params){
						   .snapshot = "s", .labels = DTN_STRV("=v")},
						 &body, &err),
			 DTN_EINVAL);
	assert_int_equal(dtn_sandbox_create_body(c, &(dtn_sandbox_params){
						   .snapshot = "s", .name = ""},
						 &body, &err),
			 DTN_EINVAL);
	assert_string_equal(err.message, "sandbox name \"\" is empty");
	mounts[1].mount_path = "/home/daytona/data";
	assert_int_equal(dtn_sandbox_create_body(c, &(dtn_sandbox_params){
						   .snapshot = "s", .mounts = mounts, .nmounts = 2},
						 &body, &err),
			 DTN_EINVAL);
	assert_string_equal(err.message,
			    "volumes v1 and v2 are both mounted at /home/daytona/data");
	dtn_daytona_free(c);
}

/* ---- against the server ---- */

static void test_snapshots_sandbox__bad_mount_sends_nothing(void **state)
{
	dtn_daytona *c = client();
	dtn_mount mounts[] = {{"v1", "/data", NULL}, {"v2", "/proc/x", NULL}};
	dtn_sandbox *s = (dtn_sandbox *)&s;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "s",
								     .mounts = mounts,
								     .nmounts = 2},
					    NULL, &s, &err),
			 DTN_EINVAL);
	assert_null(s);
	tu_assert_contains(err.message, "volume v2: mount path \"/proc/x\" is a system directory");
	assert_int_equal(tu_daytona_count(NULL, NULL, NULL), 0);
	mounts[1] = (dtn_mount){"v2", "/x", "../up"};
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "s",
								     .mounts = mounts,
								     .nmounts = 2},
					    NULL, &s, &err),
			 DTN_EINVAL);
	assert_int_equal(tu_daytona_count(NULL, NULL, NULL), 0);
	dtn_daytona_free(c);
}

static void test_snapshots_sandbox__volumes_by_name_and_id(void **state)
{
	dtn_daytona *c = client();
	dtn_sandbox *s = NULL;
	char id[64], body_want[1024];
	json_t *log, *r, *body = NULL;
	seen got = {{0}};
	dtn_error err;
	size_t i;

	(void)state;
	snprintf(id, sizeof(id), "%s", seed_volume("ready-one", "ready", NULL));
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){
					.snapshot = "s",
					.name = "sb",
					.mounts = (dtn_mount[]){{"fresh", "/home/daytona/data", "team-a"},
								{id, "/models", NULL}},
					.nmounts = 2},
					&(dtn_sandbox_opts){.log = on_log, .payload = &got}, &s, &err),
			 0);
	assert_string_equal(s->state, "started");
	assert_string_equal(s->name, "sb");
	assert_string_equal(s->snapshot, "s");
	assert_string_equal(s->target, "us");
	assert_int_equal(s->nvolumes, 2);
	assert_string_equal(s->volumes[1].volume_id, id);
	assert_string_equal(s->volumes[1].mount_path, "/models");
	assert_null(s->volumes[1].subpath);
	assert_string_equal(s->volumes[0].mount_path, "/home/daytona/data");
	assert_string_equal(s->volumes[0].subpath, "team-a");
	tu_assert_contains(got.text, "phase:volume fresh: making sure it exists and is ready\n"
				     "state:volume fresh: pending_create\n");
	tu_assert_contains(got.text, "state:volume fresh: ready\n");
	tu_assert_contains(got.text, "state:volume ready-one: ready\n");
	tu_assert_contains(got.text, "phase:creating a sandbox from snapshot s\n");
	tu_assert_contains(got.text, "state:sandbox \"sb\" (");
	/* the volume made for the mount was created once, and the body names both by id */
	assert_int_equal(tu_daytona_count("api", "POST", "/api/volumes"), 1);
	log = tu_server_requests(&tu_srv, "api");
	json_array_foreach(log, i, r) if (strcmp(json_string_value(json_object_get(r, "path")),
						 "/api/sandbox") == 0)
	{
		assert_null(body);
		body = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
	}
	json_decref(log);
	assert_non_null(body);
	snprintf(body_want, sizeof(body_want),
		 "[{\"volumeId\":\"%s\",\"mountPath\":\"/home/daytona/data\",\"subpath\":"
		 "\"team-a\"},{\"volumeId\":\"%s\",\"mountPath\":\"/models\"}]",
		 s->volumes[0].volume_id, id);
	{
		char *vols = json_dumps(json_object_get(body, "volumes"), JSON_COMPACT);

		assert_string_equal(vols, body_want);
		free(vols);
	}
	assert_string_equal(json_string_value(json_object_get(body, "target")), "us");
	json_decref(body);
	dtn_sandbox_free(s);
	assert_int_equal(dtn_sandbox_get(c, "sb", &s, &err), 0);
	assert_string_equal(s->state, "started");
	dtn_sandbox_free(s);
	dtn_daytona_free(c);
}

/* A volume created a moment ago is still pending: the create waits instead of a 400. */
static void test_snapshots_sandbox__volume_not_ready_is_waited_for(void **state)
{
	dtn_daytona *c = client();
	dtn_sandbox *s = NULL;
	dtn_volume *v = NULL;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_volume_create(c, "young", &v, &err), 0);
	assert_string_equal(v->state, "pending_create");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){
					.snapshot = "s",
					.mounts = &(dtn_mount){"young", "/data", NULL},
					.nmounts = 1},
					NULL, &s, &err),
			 0);
	assert_string_equal(s->volumes[0].volume_id, v->id);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/sandbox"), 1);
	dtn_sandbox_free(s);
	dtn_volume_free(v);
	dtn_daytona_free(c);
}

static void test_snapshots_sandbox__unknowns_are_not_found(void **state)
{
	dtn_daytona *c = client();
	dtn_sandbox *s = (dtn_sandbox *)&s;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_sandbox_get(c, "nope", &s, &err), DTN_ENOTFOUND);
	assert_null(s);
	tu_assert_contains(err.message, "sandbox \"nope\" not found");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "missing"}, NULL,
					    &s, &err),
			 DTN_ENOTFOUND);
	tu_assert_contains(err.message, "Snapshot missing not found");
	/* an unknown volume id: nothing created, no sandbox asked for */
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){
					.snapshot = "s",
					.mounts = &(dtn_mount){"11111111-2222-4333-8444-555555555555",
							       "/data", NULL},
					.nmounts = 1},
					NULL, &s, &err),
			 DTN_ENOTFOUND);
	tu_assert_contains(err.message, "11111111-2222-4333-8444-555555555555");
	assert_int_equal(tu_daytona_count("api", "POST", "/api/volumes"), 0);
	assert_int_equal(tu_daytona_count("api", "POST", "/api/sandbox"), 1);
	dtn_daytona_free(c);
}

/* The server answers 400 when the sandbox fails while it holds the request. */
static void test_snapshots_sandbox__start_failure_during_create(void **state)
{
	dtn_daytona *c = client();
	dtn_sandbox *s = (dtn_sandbox *)&s;
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"doomed\": {\"sandbox_outcome\": \"error\", "
				    "\"error_reason\": \"no runner with enough memory\"}}}");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "s",
								     .name = "doomed"},
					    NULL, &s, &err),
			 DTN_EBUILD);
	assert_null(s);
	tu_assert_contains(err.message, "the sandbox failed to start");
	tu_assert_contains(err.message, "no runner with enough memory");
	dtn_daytona_free(c);
}

/* A sandbox answered while still starting, then seen in state error by the polls. */
static void test_snapshots_sandbox__start_failure_while_polling(void **state)
{
	dtn_daytona *c = client();
	dtn_sandbox *s = (dtn_sandbox *)&s;
	seen got = {{0}};
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"doomed\": {\"sandbox_outcome\": \"error\", "
				    "\"sandbox_create_waits\": false, "
				    "\"error_reason\": \"image pull failed\"}}}");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "s",
								     .name = "doomed"},
					    &(dtn_sandbox_opts){.log = on_log, .payload = &got}, &s,
					    &err),
			 DTN_EBUILD);
	assert_null(s);
	tu_assert_contains(err.message, "sandbox \"doomed\" (");
	tu_assert_contains(err.message, ") failed to start (state error): image pull failed");
	tu_assert_contains(got.text, ": starting\n");
	tu_assert_contains(got.text, ": error\n");
	assert_true(tu_daytona_count("api", "GET", "/api/sandbox/") >= 1);
	dtn_daytona_free(c);
}

static void test_snapshots_sandbox__deadline_while_starting(void **state)
{
	dtn_daytona *c = client_with((dtn_daytona_opts){.timeout_ms = 1000});
	dtn_sandbox *s = (dtn_sandbox *)&s;
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"slow\": {\"sandbox_create_waits\": false, "
				    "\"sandbox_start_ms\": 600000}}}");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "s",
								     .name = "slow"},
					    NULL, &s, &err),
			 DTN_ETIMEOUT);
	assert_null(s);
	tu_assert_contains(err.message, "sandbox \"slow\" (");
	tu_assert_contains(err.message, ") had not started when the time limit of 1 s ran out "
					"(state: starting)");
	dtn_daytona_free(c);
}

/* The server holds POST /sandbox until started: a short request timeout must not cut it. */
static void test_snapshots_sandbox__create_request_outlasts_the_server_wait(void **state)
{
	dtn_daytona *c = client_with((dtn_daytona_opts){.request_timeout_ms = 200});
	dtn_sandbox *s = NULL;
	dtn_error err;

	(void)state;
	tu_server_scenario(&tu_srv, "{\"names\": {\"held\": {\"sandbox_start_ms\": 8000}}}");
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){.snapshot = "s",
								     .name = "held"},
					    &(dtn_sandbox_opts){.no_wait = true}, &s, &err),
			 0);
	assert_string_equal(s->state, "started");
	assert_int_equal(tu_daytona_count("api", "POST", "/api/sandbox"), 1);
	assert_int_equal(tu_daytona_count("api", "GET", "/api/sandbox/"), 0);
	dtn_sandbox_free(s);
	dtn_daytona_free(c);
}

/*
 * The recorded daytona.create({name: 'wire-sbx-vol', snapshot: 's', volumes: [{volumeId,
 * mountPath, subpath}]}): the same POST body byte for byte, then GET /sandbox/<id> until
 * started. dtn first checks that the volume is ready (one GET more than the SDK).
 */
static void test_snapshots_sandbox__transcript_replayed(void **state)
{
	static const char recorded_id[] = "52d64f73-db8f-4fba-b9ea-33e9c486a301";
	static const char volume_id[] = "f63c1107-cd5c-41b9-9533-0d88a0656af9";
	dtn_daytona *c = client();
	dtn_sandbox *s = NULL;
	char *want, *fixed, *got, *expected;
	dtn_error err;

	(void)state;
	assert_int_equal(tu_server_control(&tu_srv, "POST", "/_control/preset/transcript",
					   "{\"time_scale\": 0.06}", NULL),
			 200);
	seed_volume("v1", "ready", volume_id);
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){
					.name = "wire-sbx-vol",
					.snapshot = "s",
					.mounts = &(dtn_mount){volume_id, "/home/daytona/data",
							       "proj-a"},
					.nmounts = 1},
					NULL, &s, &err),
			 0);
	assert_string_equal(s->state, "started");
	want = tu_transcript_calls("sandbox-create-with-volume", "api");
	assert_non_null(strstr(want, "POST /api/sandbox {\"name\":\"wire-sbx-vol\""));
	fixed = tu_replace(want, recorded_id, s->id);
	expected = malloc(strlen(fixed) + 128);
	assert_non_null(expected);
	snprintf(expected, strlen(fixed) + 128, "GET /api/volumes/%s \n%s", volume_id, fixed);
	got = tu_server_calls(&tu_srv, "api");
	assert_string_equal(got, expected);
	free(want);
	free(fixed);
	free(expected);
	free(got);
	dtn_sandbox_free(s);
	dtn_daytona_free(c);
}

/* ---- telemetry ---- */

/* The value of string attribute `key` of the first span called `name` in an OTLP/JSON trace
 * file (one export per line), copied into buf; false when there is no such span or attribute. */
static bool span_attr(const char *text, const char *name, const char *key, char *buf,
		      size_t size)
{
	const char *line = text;

	buf[0] = '\0';
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		json_t *j = json_loadb(line, nl ? (size_t)(nl - line) : strlen(line), 0, NULL);
		json_t *rs, *ss, *sp, *a;
		size_t i, k, m, n;
		bool found = false;

		json_array_foreach(json_object_get(j, "resourceSpans"), i, rs)
		json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss)
		json_array_foreach(json_object_get(ss, "spans"), m, sp)
		{
			if (found || strcmp(json_string_value(json_object_get(sp, "name")), name))
				continue;
			found = true;
			json_array_foreach(json_object_get(sp, "attributes"), n, a)
			if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
				snprintf(buf, size, "%s",
					 json_string_value(json_object_get(
						 json_object_get(a, "value"), "stringValue")));
		}
		json_decref(j);
		if (found)
			return buf[0] != '\0';
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

/* Daytona.create carries the sandbox id (the join key with the sandbox's own telemetry). */
static void test_snapshots_sandbox__spans(void **state)
{
	char path[PATH_MAX], value[256], *text;
	const char *tmp = tu_mkdtemp();
	dtn_daytona *c = client();
	dtn_sandbox *s = NULL;
	dtn_otel *o = NULL;
	dtn_error err;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/trace.jsonl", tmp);
	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .enabled = 1,
							   .trace_file = path, .endpoint = "",
							   .ignore_env = true},
				      &err),
			 0);
	dtn_otel_set_default(o);
	assert_int_equal(dtn_sandbox_create(c, &(dtn_sandbox_params){
					.snapshot = "s",
					.name = "traced",
					.mounts = &(dtn_mount){"tv", "/data", NULL},
					.nmounts = 1},
					NULL, &s, &err),
			 0);
	assert_int_equal(dtn_otel_shutdown(o, 5000), 0);
	assert_int_equal(dtn__read_file(&text, &len, path, "trace", 64 << 20, &err), 0);
	assert_true(span_attr(text, "Daytona.create", "daytona.sandbox.id", value, sizeof(value)));
	assert_string_equal(value, s->id);
	assert_true(span_attr(text, "Daytona.create", "daytona.snapshot.name", value,
			      sizeof(value)));
	assert_string_equal(value, "s");
	assert_true(span_attr(text, "VolumeService.create", "daytona.volume.name", value,
			      sizeof(value)));
	assert_string_equal(value, "tv");
	assert_true(span_attr(text, "VolumeService.wait", "daytona.volume.state", value,
			      sizeof(value)));
	assert_string_equal(value, "ready");
	assert_true(span_attr(text, "Sandbox.waitUntilStarted", "daytona.sandbox.state", value,
			      sizeof(value)));
	assert_string_equal(value, "started");
	assert_true(span_attr(text, "VolumeService.get", "component", value, sizeof(value)));
	assert_string_equal(value, "VolumeService");
	dtn__free(text);
	dtn_sandbox_free(s);
	dtn_daytona_free(c);
	tu_rmtree(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshots_sandbox__mount_paths_by_the_server_rules),
		cmocka_unit_test(test_snapshots_sandbox__subpaths_by_the_server_rules),
		cmocka_unit_test(test_snapshots_sandbox__mount_parse),
		cmocka_unit_test_setup(test_snapshots_sandbox__create_body, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__bad_mount_sends_nothing, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__volumes_by_name_and_id, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__volume_not_ready_is_waited_for, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__unknowns_are_not_found, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__start_failure_during_create, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__start_failure_while_polling, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__deadline_while_starting, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__create_request_outlasts_the_server_wait,
				       setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__transcript_replayed, setup),
		cmocka_unit_test_setup(test_snapshots_sandbox__spans, setup),
	};

	return cmocka_run_group_tests(tests, tu_daytona_group_setup, tu_daytona_group_teardown);
}
