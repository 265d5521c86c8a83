/*
 * test_daytona.c - builds on Daytona against the test server: contexts uploaded once, the
 * request, dry runs, reuse and replacement, failures with their last lines; and the recorded
 * SDK session's snapshot scenarios replayed with dtn, call for call.
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

#include "dtn.h"
#include "daytona_fixture.h"
#include "testutil.h"
#include "transcript.h"

static char dir[4096];

static int group_setup(void **state)
{
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	tu_write(dir, "x.txt", "hello from the build context");
	tu_write(dir, "app/main.py", "print('hi')\n");
	tu_write(dir, "app/pkg/__init__.py", "");
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
	return 0;
}

typedef struct seen {
	int phases, states, lines, warnings;
	char states_text[256];
	char phases_text[4096];
	char warning[1024];
} seen;

static int on_log(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	seen *s = payload;

	(void)len;
	if (kind == DTN_LOG_PHASE) {
		s->phases++;
		strncat(s->phases_text, line, sizeof(s->phases_text) - strlen(s->phases_text) - 2);
		strcat(s->phases_text, "\n");
	} else if (kind == DTN_LOG_OUTPUT)
		s->lines++;
	else {
		s->states++;
		strncat(s->states_text, line, sizeof(s->states_text) - strlen(s->states_text) - 2);
		strcat(s->states_text, ",");
	}
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

static dtn_builder *builder(bool for_daytona, seen *s)
{
	char cache[4200];
	dtn_builder *b = NULL;
	dtn_error err;

	snprintf(cache, sizeof(cache), "%s/.cache", dir);
	if (dtn_builder_new(&b,
			    &(dtn_builder_opts){.cache_dir = cache,
						.for_daytona = for_daytona,
						.warn = on_warn,
						.payload = s},
			    &err) < 0)
		fail_msg("dtn_builder_new: %s", err.message);
	return b;
}

static dtn_spec *spec(const char *steps)
{
	char text[2048], name[4200];
	dtn_spec *sp = NULL;
	dtn_error err;

	snprintf(text, sizeof(text), "image:\n  debian_slim: \"3.12\"\n  steps:\n%s", steps);
	snprintf(name, sizeof(name), "%s/dtn.yaml", dir);
	if (dtn_spec_load_buffer(&sp, text, strlen(text), name, &err) < 0)
		fail_msg("spec: %s", err.message);
	return sp;
}

static const char x_steps[] = "    - pip_install: [requests]\n"
			      "    - add_local_file: [x.txt, /home/daytona/x.txt]\n";

/* A client, a builder and a spec, with what their builds delivered. */
typedef struct rig {
	seen s;
	dtn_daytona *c;
	dtn_builder *b;
	dtn_spec *sp;
	dtn_build_result *res; /* the last build's */
	dtn_error err;
	char logs[160];     /* replays: "/snapshots/<id>/", where the logs were read */
	char rec_logs[160]; /* and where the recording read them */
} rig;

static void rig_start(rig *r, bool for_daytona, const char *steps)
{
	memset(r, 0, sizeof(*r));
	r->c = client(&r->s);
	r->b = builder(for_daytona, &r->s);
	r->sp = spec(steps);
}

/* Builds sp with o, logs and warnings going to the rig; the previous result is freed. */
static int rig_build_spec(rig *r, const dtn_spec *sp, dtn_build_opts o)
{
	dtn_build_result_free(r->res);
	r->res = NULL;
	o.log = on_log;
	o.payload = &r->s;
	return dtn_build_daytona(r->c, r->b, dtn_spec_image(sp), &o, &r->res, &r->err);
}

static int rig_build(rig *r, dtn_build_opts o)
{
	return rig_build_spec(r, r->sp, o);
}

static void rig_end(rig *r)
{
	dtn_build_result_free(r->res);
	dtn_spec_free(r->sp);
	dtn_builder_free(r->b);
	dtn_daytona_free(r->c);
}

static void test_builder_daytona__upload_once_then_skip(void **state)
{
	rig r;
	char key[512];
	unsigned char *obj;
	size_t len;

	(void)state;
	rig_start(&r, true, x_steps);
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "up"}), 0);
	assert_string_equal(r.res->snapshot->state, "active");
	assert_int_equal(r.res->ncontexts, 1);
	assert_true(r.res->contexts[0].uploaded);
	assert_false(r.res->contexts[0].present);
	assert_string_equal(r.res->contexts[0].archive_path, "x.txt");
	assert_string_equal(r.res->snapshot->context_hashes[0], r.res->contexts[0].hash);
	assert_false(r.res->reused);
	assert_null(r.res->failed_lines[0]);
	/* stored under <org>/<hash>/context.tar: a tar holding x.txt */
	snprintf(key, sizeof(key), "%s/%s/context.tar", tu_srv.org_id, r.res->contexts[0].hash);
	obj = tu_server_object(&tu_srv, key, &len);
	assert_non_null(obj);
	assert_int_equal(len % 512, 0);
	assert_memory_equal(obj, "x.txt", 5);
	assert_non_null(memmem(obj, len, "hello from the build context", 28));
	free(obj);
	assert_int_equal(tu_daytona_count("s3", "PUT", NULL), 1);

	/* a second snapshot of the same file: listed, found, not sent again */
	tu_daytona_forget_requests();
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "up-2"}), 0);
	assert_true(r.res->contexts[0].present);
	assert_false(r.res->contexts[0].uploaded);
	assert_int_equal(tu_daytona_count("s3", "PUT", NULL), 0);
	assert_int_equal(tu_daytona_count("s3", "GET", NULL), 1);
	rig_end(&r);
}

static void test_builder_daytona__same_context_twice_and_no_context(void **state)
{
	rig r;
	dtn_spec *none = spec("    - pip_install: [numpy]\n");

	(void)state;
	rig_start(&r, true,
		  "    - add_local_dir: [app, /home/daytona/app]\n"
		  "    - add_local_dir: [app, /home/daytona/app]\n");
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "twice"}), 0);
	assert_int_equal(r.res->ncontexts, 2);
	assert_int_equal(tu_daytona_count("s3", "PUT", NULL), 1);
	assert_int_equal(tu_daytona_count("s3", "GET", NULL), 1);

	/* no context: no push-access, no object storage at all */
	tu_daytona_forget_requests();
	assert_int_equal(rig_build_spec(&r, none, (dtn_build_opts){.name = "bare"}), 0);
	assert_int_equal(tu_daytona_count("s3", NULL, NULL), 0);
	assert_null(strstr(r.res->request, "push-access"));
	assert_non_null(strstr(r.res->request, "\"contextHashes\":[]"));
	dtn_spec_free(none);
	rig_end(&r);
}

static void test_builder_daytona__dry_run_sends_nothing(void **state)
{
	rig r;
	char want[256];

	(void)state;
	rig_start(&r, true, x_steps);
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "dry", .cpu = 2, .dry_run = true}),
			 0);
	assert_null(r.res->snapshot);
	snprintf(want, sizeof(want), "\"contextHashes\":[\"%s\"]", r.res->contexts[0].hash);
	assert_non_null(strstr(r.res->request, want));
	assert_non_null(strstr(r.res->request, "\"cpu\":2,\"regionId\":\"us\"}"));
	assert_string_equal(r.res->dockerfile, dtn_image_dockerfile(dtn_spec_image(r.sp)));
	assert_int_equal(tu_daytona_count(NULL, NULL, NULL), 0);
	rig_end(&r);
}

static void test_builder_daytona__name_taken_reuse_replace(void **state)
{
	rig r;
	dtn_spec *changed = spec("    - pip_install: [flask]\n");
	char *first_id;

	(void)state;
	rig_start(&r, true, x_steps);
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "same"}), 0);
	first_id = strdup(r.res->snapshot->id);

	/* taken, without a flag: a clear error, nothing created */
	tu_daytona_forget_requests();
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "same"}), DTN_EEXISTS);
	assert_null(r.res);
	assert_non_null(strstr(r.err.message, "\"same\" already exists"));
	assert_int_equal(tu_daytona_count("api", "POST", NULL), 0);

	/* unchanged: reused, nothing sent */
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "same", .if_changed = true}), 0);
	assert_true(r.res->reused);
	assert_string_equal(r.res->snapshot->id, first_id);
	assert_int_equal(tu_daytona_count("api", "POST", NULL), 0);
	assert_int_equal(tu_daytona_count("s3", NULL, NULL), 0);

	/* changed with if_changed: replaced */
	assert_int_equal(
	    rig_build_spec(&r, changed, (dtn_build_opts){.name = "same", .if_changed = true}), 0);
	assert_false(r.res->reused);
	assert_true(r.res->replaced);
	assert_string_not_equal(r.res->snapshot->id, first_id);
	assert_int_equal(tu_daytona_count("api", "DELETE", NULL), 1);

	/* replace: deleted (and waited for) then built again */
	tu_daytona_forget_requests();
	assert_int_equal(
	    rig_build_spec(&r, changed, (dtn_build_opts){.name = "same", .replace = true}), 0);
	assert_true(r.res->replaced);
	assert_int_equal(tu_daytona_count("api", "DELETE", NULL), 1);
	assert_int_equal(tu_daytona_count("api", "POST", NULL), 1);

	assert_int_equal(
	    rig_build(&r, (dtn_build_opts){.name = "same", .replace = true, .if_changed = true}),
	    DTN_EINVAL);
	free(first_id);
	dtn_spec_free(changed);
	rig_end(&r);
}

/*
 * The answer to the creation is lost after the server created the snapshot: the build follows
 * that snapshot to its end. A lost answer when nothing of this build was created stays an
 * error, and a snapshot of the name with another build is not taken for it.
 */
static void test_builder_daytona__created_though_the_answer_was_lost(void **state)
{
	rig r;
	json_t *log;
	size_t i;
	json_t *q;
	bool lost = false;

	(void)state;
	rig_start(&r, true, x_steps);
	tu_server_fault(&tu_srv, "{\"server\":\"api\",\"method\":\"POST\",\"path\":\"^/api/snapshots$\","
				 "\"action\":\"lose_answer\"}");
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "lost"}), 0);
	assert_string_equal(r.res->snapshot->state, "active");
	assert_string_equal(r.res->snapshot->name, "lost");
	assert_non_null(strstr(r.s.phases_text, "the answer to the creation was lost"));
	/* one creation only: it was not sent again */
	assert_int_equal(tu_daytona_count("api", "POST", "/snapshots"), 1);
	log = tu_daytona_requests("api");
	json_array_foreach(log, i, q)
		lost |= json_object_get(q, "answer_lost") != NULL;
	assert_true(lost);
	json_decref(log);

	/* nothing created: the connection error stands */
	tu_daytona_forget_requests();
	tu_server_fault(&tu_srv, "{\"server\":\"api\",\"method\":\"POST\",\"path\":\"^/api/snapshots$\","
				 "\"action\":\"reset\"}");
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "lost-too"}), DTN_ECONNECT);
	assert_non_null(strstr(r.err.message, "connection broke"));
	assert_int_equal(tu_daytona_count("api", "POST", "/snapshots"), 1);
	rig_end(&r);
}

static void test_builder_daytona__failed_build_keeps_its_last_lines(void **state)
{
	rig r;

	(void)state;
	rig_start(&r, true, "    - pip_install: [definitely-not-a-package]\n");
	tu_server_scenario(&tu_srv, "{\"outcome\": \"build_failed\"}");
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "fails"}), DTN_EBUILD);
	assert_non_null(r.res);
	assert_non_null(strstr(r.err.message, "build_failed"));
	assert_string_equal(r.res->snapshot->state, "build_failed");
	assert_non_null(r.res->failed_lines[0]);
	assert_non_null(strstr(r.res->failed_lines[1], "No matching distribution"));
	assert_null(r.res->failed_lines[3]);
	rig_end(&r);
}

static void test_builder_daytona__links_warned_once_per_context(void **state)
{
	rig r;
	char link[4200];

	(void)state;
	tu_write(dir, "linked/file", "x");
	snprintf(link, sizeof(link), "%s/linked/to-file", dir);
	assert_int_equal(symlink("file", link), 0);
	rig_start(&r, false, "    - add_local_dir: [linked, /l]\n");
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "links", .dry_run = true}), 0);
	assert_int_equal(r.res->contexts[0].links, 1);
	assert_int_equal(r.s.warnings, 1);
	assert_non_null(strstr(r.s.warning, "empty files"));
	rig_end(&r);
}

static void test_builder_daytona__interrupted(void **state)
{
	volatile int cancel = 1;
	rig r;

	(void)state;
	rig_start(&r, true, x_steps);
	dtn_daytona_free(r.c);
	r.c = tu_daytona_client((dtn_daytona_opts){.cancel = &cancel});
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "int"}), DTN_EINTR);
	assert_null(r.res);
	assert_int_equal(tu_daytona_count("api", "POST", NULL), 0);
	rig_end(&r);
}

/* ---- the recorded session, replayed ---- */

/* The recorded calls of a scenario, with the recording's ids and hashes made ours. */
static char *recorded(const char *scenario, const char *server, const char *const *pairs)
{
	char *text = tu_transcript_calls(scenario, server);

	for (size_t i = 0; pairs && pairs[i]; i += 2) {
		char *next = tu_replace(text, pairs[i], pairs[i + 1]);

		free(text);
		text = next;
	}
	return text;
}

/* The server's calls without the lines starting with `drop` (dtn's own extra checks). */
static char *replayed(const char *server, const char *drop)
{
	char *text = tu_server_calls(&tu_srv, server), *line = text,
	     *out = calloc(1, strlen(text) + 1);

	assert_non_null(out);
	while (*line) {
		char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);

		if (!drop || strncmp(line, drop, strlen(drop)) != 0)
			strncat(out, line, n);
		line += n;
	}
	free(text);
	return out;
}

static void check_calls(const char *scenario, const char *server, const char *const *pairs,
			const char *drop)
{
	char *want = recorded(scenario, server, pairs), *got = replayed(server, drop);

	assert_string_equal(got, want);
	free(want);
	free(got);
}

/* The server plays the recorded session's snapshots (their ids, logs and timings, 10 times
 * faster). */
static void preset_transcript(void)
{
	assert_int_equal(tu_server_control(&tu_srv, "POST", "/_control/preset/transcript",
					   "{\"time_scale\": 0.1}", NULL),
			 200);
}

/* The hash of x.txt's context in the recorded session (the SDK's MD5). */
#define RECORDED_HASH "28ab129647e99fe2c643172bb33bd4e4"

/*
 * Builds as o.name, expecting rc, and compares the API calls with those of the recording
 * `scenario`: dtn polls the new snapshot by id where the SDK polls by name (and first asks
 * whether the name is taken, which is left out), reads the build logs of the new snapshot
 * where the recording read those of `recorded_id` (NULL: no logs were read), and hashes
 * contexts with SHA-256.
 */
static void replay_build_hash(rig *r, const char *scenario, dtn_build_opts o, int rc,
			      const char *recorded_id, const char *recorded_hash);

static void replay_build(rig *r, const char *scenario, dtn_build_opts o, int rc,
			 const char *recorded_id)
{
	replay_build_hash(r, scenario, o, rc, recorded_id, RECORDED_HASH);
}

/* replay_build, the recording's context hash being recorded_hash. */
static void replay_build_hash(rig *r, const char *scenario, dtn_build_opts o, int rc,
			      const char *recorded_id, const char *recorded_hash)
{
	char by_name[160], poll[160], taken[160];
	const char *pairs[7];
	size_t n = 0;

	assert_int_equal(rig_build(r, o), rc);
	snprintf(by_name, sizeof(by_name), "GET /api/snapshots/%s \n", o.name);
	snprintf(taken, sizeof(taken), "GET /api/snapshots/%s ", o.name);
	snprintf(poll, sizeof(poll), "GET /api/snapshots/%s \n", r->res->snapshot->id);
	snprintf(r->logs, sizeof(r->logs), "/snapshots/%s/", r->res->snapshot->id);
	pairs[n++] = by_name;
	pairs[n++] = poll;
	if (recorded_id) {
		snprintf(r->rec_logs, sizeof(r->rec_logs), "/snapshots/%s/", recorded_id);
		pairs[n++] = r->rec_logs;
		pairs[n++] = r->logs;
	}
	if (r->res->ncontexts) {
		pairs[n++] = recorded_hash;
		pairs[n++] = r->res->contexts[0].hash;
	}
	pairs[n] = NULL;
	check_calls(scenario, "api", pairs, taken);
}

/*
 * snapshot.create({name:'wire-snap', image: debianSlim('3.12').pipInstall(['requests'])
 * .addLocalFile('x.txt', '/home/daytona/x.txt')}, {onLogs}). dtn asks whether the name exists
 * first, and polls by id where the SDK polls by name; the hash is dtn's (SHA-256, not MD5).
 */
static void test_builder_daytona__transcript_create_declarative(void **state)
{
	rig r;

	(void)state;
	rig_start(&r, true, x_steps);
	preset_transcript();
	replay_build(&r, "snapshot-create-declarative", (dtn_build_opts){.name = "wire-snap"}, 0,
		     "f63708ba-fd7e-4311-8d86-64b4cc2d59cc");
	check_calls("snapshot-create-declarative", "proxy",
		    (const char *const[]){r.rec_logs, r.logs, NULL}, NULL);
	assert_string_equal(r.s.states_text, "pending,building,active,");
	assert_int_equal(r.s.lines, 9);
	/* S3: one listing, one PutObject */
	assert_int_equal(tu_daytona_count("s3", "GET", NULL), 1);
	assert_int_equal(tu_daytona_count("s3", "PUT", NULL), 1);
	rig_end(&r);
}

/* The same image with resources, entrypoint and region eu: the object is found, no PUT, and
 * pending goes straight to active (no log stream). */
static void test_builder_daytona__transcript_dedupe_resources(void **state)
{
	rig r;

	(void)state;
	rig_start(&r, true,
		  "    - pip_install: [requests]\n"
		  "    - add_local_file: [x.txt, /home/daytona/x.txt]\n"
		  "    - entrypoint: [sleep, infinity]\n");
	preset_transcript();
	assert_int_equal(rig_build(&r, (dtn_build_opts){.name = "first"}), 0);
	tu_daytona_forget_requests();
	replay_build(&r, "snapshot-create-dedupe-resources",
		     (dtn_build_opts){
			 .name = "wire-snap-res", .cpu = 2, .memory = 4, .disk = 8, .region = "eu"},
		     0, NULL);
	assert_int_equal(tu_daytona_count("s3", "PUT", NULL), 0);
	assert_int_equal(tu_daytona_count("proxy", NULL, NULL), 0);
	rig_end(&r);
}

/* pipInstall(['definitely-not-a-package']): no context, so no object storage; the stream that
 * never ends is cut once the state says build_failed. */
static void test_builder_daytona__transcript_build_failed(void **state)
{
	rig r;

	(void)state;
	rig_start(&r, true, "    - pip_install: [definitely-not-a-package]\n");
	preset_transcript();
	replay_build(&r, "snapshot-create-build-failed", (dtn_build_opts){.name = "wire-snap-fail"},
		     DTN_EBUILD, "8bc5a010-068d-43b2-8f68-fd23649fe1ef");
	assert_non_null(strstr(r.err.message, "Failed to build snapshot"));
	assert_int_equal(tu_daytona_count("s3", NULL, NULL), 0);
	rig_end(&r);
}

/* The snapshot calls without contexts: from an image name; list; get; activate and delete by
 * name; a log endpoint answering 404; a dropped GET re-sent; a missing name escaped. */
static void test_builder_daytona__transcript_snapshot_calls(void **state)
{
	seen s = {0};
	dtn_daytona *c = client(&s);
	dtn_snapshot *snap = NULL, *done = NULL;
	dtn_snapshot_page *page = NULL;
	dtn_error err;
	char poll[128], act[160], del[128];

	(void)state;
	preset_transcript();
	tu_daytona_forget_requests();
	assert_int_equal(dtn_snapshot_create(c,
					     &(dtn_snapshot_params){.name = "wire-img",
								    .image_name = "python:3.12-slim",
								    .entrypoint =
									    DTN_STRV("sleep", "infinity")},
					     &snap, &err),
			 0);
	assert_int_equal(dtn_snapshot_wait(c, snap, NULL, &done, &err), 0);
	snprintf(poll, sizeof(poll), "GET /api/snapshots/%s \n", snap->id);
	check_calls("snapshot-create-from-image-name", "api",
		    (const char *const[]){"GET /api/snapshots/wire-img \n", poll, NULL}, NULL);
	dtn_snapshot_free(done);

	tu_daytona_forget_requests();
	assert_int_equal(dtn_snapshot_list(c, &(dtn_snapshot_list_opts){.page = 1}, &page, &err),
			 0);
	dtn_snapshot_page_free(page);
	check_calls("snapshot-list", "api", NULL, NULL);

	tu_daytona_forget_requests();
	tu_server_control(&tu_srv, "POST", "/_control/snapshots/wire-img/state",
			  "{\"state\": \"inactive\"}", NULL);
	assert_int_equal(dtn_snapshot_activate(c, "wire-img", NULL, &err), 0);
	snprintf(act, sizeof(act), "/api/snapshots/%s/activate", snap->id);
	check_calls("snapshot-activate-by-name", "api",
		    (const char *const[]){"/api/snapshots/fd7b77f5-81d6-4762-afb0-4ca4cc3b3b81/"
					  "activate",
					  act, NULL},
		    NULL);

	tu_daytona_forget_requests();
	tu_server_control(&tu_srv, "POST", "/_control/snapshots", "{\"name\": \"wire-snap-big\"}",
			  NULL);
	dtn_snapshot_free(snap);
	assert_int_equal(dtn_snapshot_get(c, "wire-snap-big", &snap, &err), 0);
	tu_daytona_forget_requests();
	assert_int_equal(dtn_snapshot_delete(c, "wire-snap-big", false, &err), 0);
	snprintf(del, sizeof(del), "/api/snapshots/%s", snap->id);
	check_calls("snapshot-delete", "api",
		    (const char *const[]){"/api/snapshots/49b1a55a-86ac-479d-89e4-a6d32085c45f",
					  del, NULL},
		    NULL);
	dtn_snapshot_free(snap);

	tu_daytona_forget_requests();
	assert_int_equal(dtn_snapshot_get(c, "flaky-snap", &snap, &err), 0);
	check_calls("snapshot-get-connreset", "api", NULL, NULL);
	assert_int_equal(tu_daytona_count("api", "GET", NULL), 2);
	dtn_snapshot_free(snap);

	tu_daytona_forget_requests();
	assert_int_equal(dtn_snapshot_get(c, "missing:snap", &snap, &err), DTN_ENOTFOUND);
	check_calls("snapshot-get-404", "api", NULL, NULL);
	dtn_daytona_free(c);
}

static void test_builder_daytona__transcript_logs_404(void **state)
{
	rig r;

	(void)state;
	rig_start(&r, true, "    - pip_install: [numpy]\n");
	preset_transcript();
	replay_build(&r, "snapshot-create-logs-404", (dtn_build_opts){.name = "wire-snap-logs-404"},
		     0, "57effba1-a991-40ab-8c63-e634893a14e5");
	/* the 404 body is not a log line: a warning says the log could not be read */
	assert_int_equal(r.s.lines, 0);
	assert_non_null(strstr(r.s.warning, "build logs not found"));
	rig_end(&r);
}

/* The value of query parameter `name` in a logged request's query, in buf ("" when absent). */
static const char *query_param(const json_t *req, const char *name, char *buf, size_t size)
{
	const char *q = json_string_value(json_object_get(req, "query")), *p = q;
	size_t n = strlen(name);

	buf[0] = '\0';
	while (p && *p) {
		size_t len = strcspn(p, "&");

		if (!strncmp(p, name, n) && p[n] == '=')
			snprintf(buf, size, "%.*s", (int)(len - n - 1), p + n + 1);
		p += len + (p[len] == '&');
	}
	return buf;
}

/*
 * addLocalFile('big.bin') of 6 MiB: as the SDK, a multipart upload (CreateMultipartUpload, a
 * part of 5 MiB and the rest, CompleteMultipartUpload) after the listing missed, and the
 * object holds the tar; the API calls are the recording's.
 */
static void test_builder_daytona__transcript_multipart(void **state)
{
	size_t size = 6 * 1024 * 1024, len = 0, parts = 0, part_bytes = 0;
	char path[4200], key[512], num[16], *data = malloc(size);
	const char *xml = NULL;
	unsigned char *obj;
	json_t *log, *q;
	FILE *f;
	rig r;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 2654435761u >> 13);
	snprintf(path, sizeof(path), "%s/big.bin", dir);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(data, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
	rig_start(&r, true, "    - add_local_file: [big.bin, /home/daytona/big.bin]\n");
	preset_transcript();
	replay_build_hash(&r, "snapshot-create-multipart", (dtn_build_opts){.name = "wire-snap-big"},
			  0, "49b1a55a-86ac-479d-89e4-a6d32085c45f",
			  "2c264fa14ce41b11fe19d003fb3c6e61");
	log = tu_daytona_requests("s3");
	assert_int_equal(json_array_size(log), 5);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(log, 0), "query")),
			       "list-type=2"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "query")),
			    "uploads=");
	for (size_t i = 2; i < 4; i++) {
		q = json_array_get(log, i);
		assert_string_equal(json_string_value(json_object_get(q, "method")), "PUT");
		query_param(q, "partNumber", num, sizeof(num));
		if (!strcmp(num, "1"))
			assert_int_equal(json_integer_value(json_object_get(q, "body_length")),
					 5 * 1024 * 1024);
		parts++;
		part_bytes += (size_t)json_integer_value(json_object_get(q, "body_length"));
		assert_true(json_is_true(json_object_get(q, "signature_verified")));
	}
	assert_int_equal(parts, 2);
	q = json_array_get(log, 4);
	assert_string_equal(json_string_value(json_object_get(q, "method")), "POST");
	assert_non_null(xml = json_string_value(json_object_get(q, "body")));
	assert_non_null(strstr(xml, "<PartNumber>1</PartNumber>"));
	assert_non_null(strstr(xml, "<PartNumber>2</PartNumber>"));
	/* the assembled object is the tar: big.bin's header, its bytes, two zero blocks */
	snprintf(key, sizeof(key), "%s/%s/context.tar", tu_srv.org_id, r.res->contexts[0].hash);
	obj = tu_server_object(&tu_srv, key, &len);
	assert_non_null(obj);
	assert_int_equal(len, part_bytes);
	assert_int_equal(len, 512 + size + 1024);
	assert_memory_equal(obj, "big.bin", 8);
	assert_memory_equal(obj + 512, data, size);
	free(obj);
	json_decref(log);
	free(data);
	rig_end(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_builder_daytona__upload_once_then_skip, setup),
		cmocka_unit_test_setup(test_builder_daytona__same_context_twice_and_no_context,
				       setup),
		cmocka_unit_test_setup(test_builder_daytona__dry_run_sends_nothing, setup),
		cmocka_unit_test_setup(test_builder_daytona__name_taken_reuse_replace, setup),
		cmocka_unit_test_setup(test_builder_daytona__created_though_the_answer_was_lost, setup),
		cmocka_unit_test_setup(test_builder_daytona__failed_build_keeps_its_last_lines, setup),
		cmocka_unit_test_setup(test_builder_daytona__links_warned_once_per_context, setup),
		cmocka_unit_test_setup(test_builder_daytona__interrupted, setup),
		cmocka_unit_test_setup(test_builder_daytona__transcript_create_declarative, setup),
		cmocka_unit_test_setup(test_builder_daytona__transcript_dedupe_resources, setup),
		cmocka_unit_test_setup(test_builder_daytona__transcript_build_failed, setup),
		cmocka_unit_test_setup(test_builder_daytona__transcript_snapshot_calls, setup),
		cmocka_unit_test_setup(test_builder_daytona__transcript_logs_404, setup),
		cmocka_unit_test_setup(test_builder_daytona__transcript_multipart, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
