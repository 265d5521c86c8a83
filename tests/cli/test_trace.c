/*
 * test_trace.c - telemetry from the command line: --trace-file with the root span and the
 * spans of a command, TRACEPARENT, failures on the root span, the global options anywhere,
 * --no-otel, a receiver that never answers (the command still ends within the flush budget,
 * with its own exit code), and `dtn-build trace show` on good, odd and bad files.
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
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "otlp_check.h"
#include "otlp_receiver.h"
#include "server.h"
#include "testutil.h"

static char dir[PATH_MAX], spec[PATH_MAX + 16], trace[PATH_MAX + 16];

static int setup(void **state)
{
	(void)state;
	tu_otel_clear_env();
	unsetenv("NO_COLOR");
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	snprintf(spec, sizeof(spec), "%s/dtn.yaml", dir);
	snprintf(trace, sizeof(trace), "%s/trace.jsonl", dir);
	tu_write(dir, "dtn.yaml", "image:\n  base: alpine:3.19\n  steps:\n"
				  "    - add_local_file: [app.py, /app/]\n"
				  "    - run_commands: [\"echo hi\"]\n");
	tu_write(dir, "app.py", "print(1)\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	return 0;
}

static tu_run run(const char *const *args)
{
	char *argv[16] = {(char *)tu_dtn_build()};
	size_t n = 1;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	return tu_run_cmd(argv, dir);
}

static char *read_text(const char *path)
{
	char *text;
	size_t len;
	dtn_error err;

	assert_int_equal(dtn__read_file(&text, &len, path, path, 64 << 20, &err), 0);
	return text;
}

/* The trace file, every line checked, as its spans. */
static json_t *trace_spans(void)
{
	char *text = read_text(trace), why[1024];
	json_t *spans;

	if (tu_otlp_check_lines(text, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	spans = tu_otlp_collect(text, "spans");
	dtn__free(text);
	return spans;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void test_cli_trace__file_has_the_command_tree(void **state)
{
	tu_run r = run(DTN_STRV("--trace-file", trace, "dockerfile", spec));
	json_t *spans, *root, *load, *df;

	(void)state;
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "FROM alpine:3.19"));
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build dockerfile");
	load = tu_otlp_find(spans, "Spec.load");
	df = tu_otlp_find(spans, "Image.dockerfile");
	assert_non_null(root);
	assert_non_null(load);
	assert_non_null(df);
	assert_null(json_object_get(root, "parentSpanId"));
	assert_string_equal(str(load, "parentSpanId"), str(root, "spanId"));
	assert_string_equal(str(df, "parentSpanId"), str(root, "spanId"));
	assert_string_equal(tu_otlp_attr_str(root, "dtn.command"), "dockerfile");
	assert_string_equal(tu_otlp_attr_str(root, "component"), "dtn-build");
	assert_string_equal(tu_otlp_attr_str(root, "method"), "dockerfile");
	assert_string_equal(tu_otlp_attr_str(root, "dtn.spec.path"), spec);
	assert_int_equal(strlen(tu_otlp_attr_str(root, "dtn.spec.sha256")), 64);
	assert_int_equal(tu_otlp_attr_int(root, "process.exit.code"), 0);
	assert_string_equal(tu_otlp_attr_str(load, "dtn.spec.sha256"),
			    tu_otlp_attr_str(root, "dtn.spec.sha256"));
	assert_int_equal(tu_otlp_attr_int(load, "dtn.spec.layers"), 2);
	assert_string_equal(tu_otlp_attr_str(df, "dtn.image.base"), "alpine:3.19");
	assert_string_equal(str(root, "_service"), "dtn-build");
	json_decref(spans);
	tu_run_free(&r);
}

/* The global options work after the command too, and the context walks have spans. */
static void test_cli_trace__options_anywhere_and_context_spans(void **state)
{
	tu_run r = run(DTN_STRV("context", spec, "--trace-file", trace, "--otel-summary"));
	json_t *spans, *root, *walk;

	(void)state;
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "telemetry: "));
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build context");
	walk = tu_otlp_find(spans, "Context.identify");
	assert_non_null(walk);
	assert_string_equal(str(walk, "parentSpanId"), str(root, "spanId"));
	assert_int_equal(strlen(tu_otlp_attr_str(walk, "dtn.context.hash")), 64);
	assert_int_equal(tu_otlp_attr_int(walk, "dtn.context.files"), 1);
	json_decref(spans);
	tu_run_free(&r);
}

static void test_cli_trace__traceparent_makes_it_a_child(void **state)
{
	tu_run r;
	json_t *spans, *root;

	(void)state;
	setenv("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1);
	r = run(DTN_STRV("--trace-file", trace, "dockerfile", spec));
	unsetenv("TRACEPARENT");
	assert_int_equal(r.status, 0);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build dockerfile");
	assert_string_equal(str(root, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(str(root, "parentSpanId"), "00f067aa0ba902b7");
	assert_string_equal(str(tu_otlp_find(spans, "Spec.load"), "traceId"),
			    "4bf92f3577b34da6a3ce929d0e0e4736");
	json_decref(spans);
	tu_run_free(&r);
}

/* With telemetry off (OTEL_SDK_DISABLED), the trace the process belongs to is still handed on
 * to the API: propagation keeps working. */
static void test_cli_trace__traceparent_forwarded_when_off(void **state)
{
	static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	tu_otlp *rcv = tu_otlp_start("");
	char api[128];
	const char *sent;
	tu_run r;

	(void)state;
	snprintf(api, sizeof(api), "%s/api", tu_otlp_url(rcv));
	setenv("DAYTONA_API_URL", api, 1);
	setenv("DAYTONA_API_KEY", "test-key", 1);
	setenv("OTEL_SDK_DISABLED", "true", 1);
	setenv("TRACEPARENT", tp, 1);
	setenv("TRACESTATE", "ci=1", 1);
	r = run(DTN_STRV("snapshot", "list"));
	unsetenv("DAYTONA_API_URL");
	unsetenv("DAYTONA_API_KEY");
	unsetenv("OTEL_SDK_DISABLED");
	unsetenv("TRACEPARENT");
	unsetenv("TRACESTATE");
	assert_true(tu_otlp_count(rcv) >= 1);
	assert_non_null(strstr(tu_otlp_get(rcv, 0)->path, "/api/snapshots"));
	sent = tu_otlp_header(tu_otlp_get(rcv, 0), "traceparent");
	assert_non_null(sent);
	assert_string_equal(sent, tp);
	assert_string_equal(tu_otlp_header(tu_otlp_get(rcv, 0), "tracestate"), "ci=1");
	tu_run_free(&r);
	tu_otlp_stop(rcv);
}

/* A local build hands its trace to the container engine it runs (TRACEPARENT), naming the span
 * of the phase that runs it. */
static void test_cli_trace__engine_gets_the_traceparent(void **state)
{
	static const char fake[] =
		"#!/bin/sh\n"
		"echo \"${TRACEPARENT:-none}\" >> \"$(dirname \"$0\")/seen\"\n"
		"for a in \"$@\"; do case \"$a\" in inspect) exit 125 ;; bud) break ;; esac; done\n"
		"echo 'Successfully tagged it'\n";
	char engine[PATH_MAX + 32], seen[PATH_MAX + 32], *text, *line, *next;
	json_t *spans, *sp;
	size_t i, lines = 0;
	tu_run r;

	(void)state;
	tu_write(dir, "engine/buildah", fake);
	snprintf(engine, sizeof(engine), "%s/engine/buildah", dir);
	snprintf(seen, sizeof(seen), "%s/engine/seen", dir);
	assert_int_equal(chmod(engine, 0755), 0);
	setenv("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1);
	r = run(DTN_STRV("--trace-file", trace, "build", spec, "--local", "--engine", engine,
			 "--name", "tp", "--no-cache"));
	unsetenv("TRACEPARENT");
	assert_int_equal(r.status, 0);
	spans = trace_spans();
	text = read_text(seen);
	for (line = text; *line; line = next) {
		bool found = false;

		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';

		assert_int_equal(strlen(line), 55);
		assert_memory_equal(line, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
		json_array_foreach(spans, i, sp)
			if (!strncmp(line + 36, str(sp, "spanId"), 16) &&
			    !strncmp(str(sp, "name"), "LocalBuild.", 11))
				found = true;
		if (!found)
			fail_msg("the engine got %s, the id of no LocalBuild span", line);
		lines++;
	}
	assert_true(lines >= 2);
	dtn__free(text);
	json_decref(spans);
	tu_run_free(&r);
}

static void test_cli_trace__failure_on_the_root_span(void **state)
{
	tu_run r = run(DTN_STRV("--trace-file", trace, "dockerfile", "nonexistent.yaml"));
	json_t *spans, *root, *load, *ev;

	(void)state;
	assert_int_equal(r.status, 2);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build dockerfile");
	load = tu_otlp_find(spans, "Spec.load");
	/* the spec could not be read: no Spec.load, the root says why */
	assert_null(load);
	assert_int_equal(tu_otlp_attr_int(root, "process.exit.code"), 2);
	assert_string_equal(tu_otlp_attr_str(root, "error.type"), "usage_error");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "status"),
							    "code")), 2);
	/* with what was reported, not a bare "error" */
	ev = json_array_get(json_object_get(root, "events"), 0);
	assert_string_equal(str(ev, "name"), "exception");
	assert_string_equal(tu_otlp_attr_str(ev, "exception.type"), "DTN_ENOTFOUND");
	assert_non_null(strstr(tu_otlp_attr_str(ev, "exception.message"), "nonexistent.yaml"));
	assert_non_null(strstr(str(json_object_get(root, "status"), "message"),
			       "nonexistent.yaml"));
	json_decref(spans);
	tu_run_free(&r);
}

static void test_cli_trace__usage_errors(void **state)
{
	tu_run r = run(DTN_STRV("dockerfile", spec, "--trace-file"));

	(void)state;
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--trace-file needs a file name"));
	tu_run_free(&r);
	r = run(DTN_STRV("trace", "list", trace));
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown subcommand \"list\""));
	tu_run_free(&r);
	r = run(DTN_STRV("trace", "show", "nonexistent.jsonl"));
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "nonexistent.jsonl"));
	tu_run_free(&r);
	/* a trace file that cannot be created: the command still runs, without telemetry */
	r = run(DTN_STRV("--trace-file", "/nonexistent/dir/t.jsonl", "dockerfile", spec));
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "telemetry is off"));
	tu_run_free(&r);
}

/* An OTLP protocol dtn-build does not speak turns the export off, not the trace file. */
static void test_cli_trace__unsupported_protocol_keeps_the_file(void **state)
{
	tu_otlp *rcv = tu_otlp_start("");
	tu_run r;
	json_t *spans;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tu_otlp_url(rcv), 1);
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", 1);
	r = run(DTN_STRV("--trace-file", trace, "dockerfile", spec));
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err,
			       "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf is not supported"));
	assert_int_equal(tu_otlp_count(rcv), 0);
	spans = trace_spans();
	assert_non_null(tu_otlp_find(spans, "dtn-build dockerfile"));
	assert_non_null(tu_otlp_find(spans, "Spec.load"));
	json_decref(spans);
	tu_run_free(&r);
	tu_otlp_stop(rcv);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A receiver that never answers costs the command its flush budget, not its result. */
static void test_cli_trace__hung_receiver_within_budget(void **state)
{
	tu_otlp *rcv = tu_otlp_start("hang,hang,hang,hang,hang,hang");
	long long t0, plain, spent;
	tu_run r;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tu_otlp_url(rcv), 1);
	setenv("DTN_OTEL_FLUSH_TIMEOUT", "1000", 1);
	/* --no-otel: nothing is sent whatever the environment says; and the time the command
	 * takes by itself (under valgrind, say) */
	t0 = now_ms();
	r = run(DTN_STRV("--no-otel", "dockerfile", spec));
	plain = now_ms() - t0;
	assert_int_equal(r.status, 0);
	assert_int_equal(tu_otlp_count(rcv), 0);
	tu_run_free(&r);
	t0 = now_ms();
	r = run(DTN_STRV("dockerfile", spec));
	spent = now_ms() - t0;
	assert_int_equal(r.status, 0);
	assert_true(tu_otlp_count(rcv) >= 1);
	assert_non_null(strstr(r.err, "not everything was exported within 1000 ms"));
	/* the budget over the command's own time, plus a busy machine's scheduling */
	if (spent > plain + 1000 + 1000)
		fail_msg("dtn-build took %lld ms with a 1000 ms flush budget (%lld ms without "
			 "telemetry)", spent, plain);
	tu_run_free(&r);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("DTN_OTEL_FLUSH_TIMEOUT");
	tu_otlp_stop(rcv);
}

/* Starts dtn-build --trace-file <trace> ARGS... in dir, its output discarded. */
static pid_t start_traced(const char *const *args)
{
	const char *argv[16] = {tu_dtn_build(), "--trace-file", trace};
	size_t n = 3;
	pid_t pid;

	for (size_t i = 0; args[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if ((pid = fork()) == 0) {
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		if (chdir(dir) == 0)
			execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	assert_true(pid > 0);
	return pid;
}

/* Sends SIGINT to pid and gives its exit code; fails when it does not end within 20 s. */
static int interrupt(pid_t pid)
{
	int status = -1;

	kill(pid, SIGINT);
	for (int i = 0; i < 400 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(50000);
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("dtn-build did not end after SIGINT");
	}
	return WEXITSTATUS(status);
}

/* Ctrl-C while a request hangs: exit 130, the root span says cancelled, the request's span is
 * marked cancelled but is not an error (a cancel on purpose). */
static void test_cli_trace__interrupt_ends_spans_cancelled(void **state)
{
	tu_otlp *rcv = tu_otlp_start("hang");
	char api[128], *text;
	json_t *spans, *root, *get;
	pid_t pid;

	(void)state;
	snprintf(api, sizeof(api), "%s/api", tu_otlp_url(rcv));
	setenv("DAYTONA_API_URL", api, 1);
	setenv("DAYTONA_API_KEY", "test-key", 1);
	pid = start_traced(DTN_STRV("snapshot", "list"));
	unsetenv("DAYTONA_API_URL");
	unsetenv("DAYTONA_API_KEY");
	assert_int_equal(tu_otlp_wait(rcv, 1, 20000), 1);
	assert_int_equal(interrupt(pid), 130);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build snapshot");
	get = tu_otlp_find(spans, "GET");
	assert_non_null(root);
	assert_string_equal(tu_otlp_attr_str(root, "error.type"), "cancelled");
	assert_int_equal(tu_otlp_attr_int(root, "process.exit.code"), 130);
	assert_string_equal(tu_otlp_attr_str(root, "daytona.api.url"), api);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "status"),
							    "code")), 2);
	assert_non_null(get);
	assert_string_equal(tu_otlp_attr_str(get, "error.type"), "cancelled");
	assert_null(json_object_get(get, "status"));
	/* the API key stays out of the trace */
	text = json_dumps(spans, 0);
	assert_null(strstr(text, "test-key"));
	free(text);
	json_decref(spans);
	tu_otlp_stop(rcv);
}

static void test_cli_trace__over_otlp(void **state)
{
	tu_otlp *rcv = tu_otlp_start("");
	char why[1024];
	tu_run r;
	json_t *spans;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tu_otlp_url(rcv), 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
	r = run(DTN_STRV("dockerfile", spec));
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_COMPRESSION");
	assert_int_equal(r.status, 0);
	assert_int_equal(tu_otlp_count(rcv), 2);
	for (size_t i = 0; i < 2; i++)
		if (tu_otlp_check(tu_otlp_get(rcv, i)->body, NULL, why, sizeof(why)) < 0)
			fail_msg("request %zu: %s", i, why);
	spans = tu_otlp_collect(tu_otlp_get(rcv, 0)->body, "spans");
	assert_non_null(tu_otlp_find(spans, "dtn-build dockerfile"));
	json_decref(spans);
	tu_run_free(&r);
	tu_otlp_stop(rcv);
}

/* ---- Daytona commands against the test server ---- */

static void daytona_env(const tu_server *srv)
{
	tu_server_setenv(srv);
	/* no .env file of the directory's parents may add anything */
	setenv("DTN_CACHE_DIR", dir, 1);
}

static void daytona_unenv(void)
{
	unsetenv("DAYTONA_API_URL");
	unsetenv("DAYTONA_API_KEY");
	unsetenv("DAYTONA_TARGET");
	unsetenv("DTN_CACHE_DIR");
}

/* The span of the trace whose spanId is id, borrowed; NULL if none. */
static json_t *span_by_id(json_t *spans, const char *id)
{
	size_t i;
	json_t *sp;

	json_array_foreach(spans, i, sp)
		if (id && str(sp, "spanId") && !strcmp(str(sp, "spanId"), id))
			return sp;
	return NULL;
}

static void assert_parent(json_t *spans, json_t *child, const char *parent_name)
{
	json_t *parent;

	assert_non_null(child);
	parent = span_by_id(spans, str(child, "parentSpanId"));
	if (!parent || strcmp(str(parent, "name"), parent_name))
		fail_msg("the parent of %s is %s, not %s", str(child, "name"),
			 parent ? str(parent, "name") : "missing", parent_name);
}

static long long status_code(json_t *sp)
{
	return json_integer_value(json_object_get(json_object_get(sp, "status"), "code"));
}

/* Whether the span has an event called name. */
static bool has_event(json_t *sp, const char *name)
{
	size_t i;
	json_t *ev;

	json_array_foreach(json_object_get(sp, "events"), i, ev)
		if (!strcmp(str(ev, "name"), name))
			return true;
	return false;
}

/* Every span inside its parent's time, as a tree should be. */
static void assert_nested(json_t *spans)
{
	size_t i;
	json_t *sp, *p;

	json_array_foreach(spans, i, sp) {
		if (!(p = span_by_id(spans, str(sp, "parentSpanId"))))
			continue;
		if (strcmp(str(sp, "startTimeUnixNano"), str(p, "startTimeUnixNano")) < 0 ||
		    strcmp(str(sp, "endTimeUnixNano"), str(p, "endTimeUnixNano")) > 0)
			fail_msg("%s lasts beyond its parent %s", str(sp, "name"), str(p, "name"));
	}
}

/* Every HTTP CLIENT span: the stable attributes, no query string, inside an operation. */
static void assert_client_spans(json_t *spans, const char *root_id)
{
	size_t i, n = 0;
	json_t *sp;

	json_array_foreach(spans, i, sp) {
		const char *url;

		if (json_integer_value(json_object_get(sp, "kind")) != 3)
			continue;
		n++;
		url = tu_otlp_attr_str(sp, "url.full");
		assert_non_null(url);
		assert_null(strchr(url, '?'));
		assert_non_null(tu_otlp_attr_str(sp, "http.request.method"));
		assert_non_null(tu_otlp_attr_str(sp, "server.address"));
		assert_true(tu_otlp_attr_int(sp, "server.port") > 0);
		assert_null(tu_otlp_attr(sp, "http.method"));
		assert_null(tu_otlp_attr(sp, "http.url"));
		assert_non_null(span_by_id(spans, str(sp, "parentSpanId")));
		if (!strcmp(str(sp, "parentSpanId"), root_id))
			fail_msg("the request %s is outside every operation", url);
	}
	assert_true(n > 0);
}

/*
 * A build that fails on Daytona: the tree of otel.md §12.2 (the log stream beside the wait,
 * under the creation), the failure on the wait, the creation and the root with exception
 * events; then `logs`, whose requests all belong to its operation.
 */
static void test_cli_trace__daytona_build_tree(void **state)
{
	tu_server srv;
	tu_run r;
	json_t *spans, *root, *create, *wait, *stream, *ctx, *up;

	(void)state;
	if (tu_server_start(&srv) < 0)
		fail_msg("the Daytona test server did not start");
	tu_server_scenario(&srv, "{\"pending_ms\": 100, \"outcome\": \"build_failed\", "
				 "\"log_lines\": [\"#1 RUN echo hi\\n\", 1600, \"ERROR: boom\\n\"]}");
	daytona_env(&srv);
	r = run(DTN_STRV("--trace-file", trace, "build", spec, "--daytona", "--name", "tree"));
	assert_int_equal(r.status, 1);
	tu_run_free(&r);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build build");
	create = tu_otlp_find(spans, "SnapshotService.create");
	wait = tu_otlp_find(spans, "SnapshotService.wait");
	stream = tu_otlp_find(spans, "SnapshotService.streamBuildLogs");
	ctx = tu_otlp_find(spans, "SnapshotService.processImageContext");
	up = tu_otlp_find(spans, "ObjectStorage.upload");
	assert_non_null(root);
	assert_parent(spans, create, "dtn-build build");
	assert_parent(spans, ctx, "SnapshotService.create");
	assert_parent(spans, up, "SnapshotService.processImageContext");
	assert_parent(spans, wait, "SnapshotService.create");
	assert_parent(spans, stream, "SnapshotService.create");
	assert_client_spans(spans, str(root, "spanId"));
	assert_nested(spans);
	/* the failure, where it happened and on the way up */
	assert_string_equal(tu_otlp_attr_str(wait, "error.type"), "daytona.snapshot.build_failed");
	assert_int_equal(status_code(wait), 2);
	assert_true(has_event(wait, "exception"));
	assert_true(has_event(wait, "daytona.snapshot.state_change"));
	assert_string_equal(tu_otlp_attr_str(create, "error.type"),
			    "daytona.snapshot.build_failed");
	assert_true(has_event(create, "exception"));
	assert_string_equal(tu_otlp_attr_str(root, "error.type"), "build_failed");
	assert_true(has_event(root, "exception"));
	assert_int_equal(tu_otlp_attr_int(root, "process.exit.code"), 1);
	assert_int_equal(tu_otlp_attr_int(stream, "dtn.log.lines"), 2);
	json_decref(spans);

	r = run(DTN_STRV("--trace-file", trace, "logs", "tree"));
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "ERROR: boom"));
	tu_run_free(&r);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build logs");
	assert_parent(spans, tu_otlp_find(spans, "SnapshotService.logs"), "dtn-build logs");
	assert_parent(spans, tu_otlp_find(spans, "SnapshotService.streamBuildLogs"),
		      "SnapshotService.logs");
	assert_client_spans(spans, str(root, "spanId"));
	json_decref(spans);
	daytona_unenv();
	tu_server_stop(&srv);
}

/* A context big enough for a multipart upload: its requests belong to the upload, not to the
 * archive that feeds it (which ends before the last part is sent). */
static void test_cli_trace__daytona_multipart_upload_tree(void **state)
{
	size_t big = 6 << 20, i, puts = 0;
	char *text = malloc(big + 1), yaml[PATH_MAX + 32];
	tu_server srv;
	tu_run r;
	json_t *spans, *sp;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < big; i++)
		text[i] = (char)('a' + (i * 7 + i / 4093) % 26);
	text[big] = '\0';
	tu_write(dir, "big/data.txt", text);
	free(text);
	tu_write(dir, "big.yaml", "image:\n  base: alpine:3.19\n  steps:\n"
				  "    - add_local_dir: [big, /big]\n");
	snprintf(yaml, sizeof(yaml), "%s/big.yaml", dir);
	if (tu_server_start(&srv) < 0)
		fail_msg("the Daytona test server did not start");
	tu_server_scenario(&srv, "{\"time_scale\": 0.05}");
	daytona_env(&srv);
	r = run(DTN_STRV("--trace-file", trace, "build", yaml, "--daytona", "--name", "big"));
	daytona_unenv();
	assert_int_equal(r.status, 0);
	tu_run_free(&r);
	spans = trace_spans();
	assert_nested(spans);
	json_array_foreach(spans, i, sp) {
		if (strcmp(str(sp, "name"), "PUT"))
			continue;
		assert_parent(spans, sp, "ObjectStorage.upload");
		puts++;
	}
	assert_true(puts >= 2);
	json_decref(spans);
	tu_server_stop(&srv);
}

/* Ctrl-C while the build log streams: the stream's span is cancelled, not a success. */
static void test_cli_trace__daytona_interrupt_cancels_the_stream(void **state)
{
	tu_server srv;
	json_t *spans, *stream, *root;
	pid_t pid;

	(void)state;
	if (tu_server_start(&srv) < 0)
		fail_msg("the Daytona test server did not start");
	tu_server_scenario(&srv, "{\"pending_ms\": 100, "
				 "\"log_lines\": [\"#1 RUN sleep\\n\", 120000, \"done\\n\"]}");
	daytona_env(&srv);
	pid = start_traced(DTN_STRV("build", spec, "--daytona", "--name", "int"));
	daytona_unenv();
	/* until the log stream is open */
	for (int i = 0; i < 600 && tu_server_count(&srv, "proxy", "GET", NULL) < 1; i++)
		usleep(50000);
	assert_true(tu_server_count(&srv, "proxy", "GET", NULL) >= 1);
	assert_int_equal(interrupt(pid), 130);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build build");
	stream = tu_otlp_find(spans, "SnapshotService.streamBuildLogs");
	assert_string_equal(tu_otlp_attr_str(root, "error.type"), "cancelled");
	assert_int_equal(status_code(root), 2);
	assert_true(has_event(root, "exception"));
	assert_non_null(stream);
	if (!tu_otlp_attr_str(stream, "error.type"))
		fail_msg("the stream's span has no error.type");
	assert_string_equal(tu_otlp_attr_str(stream, "error.type"), "cancelled");
	assert_int_not_equal(status_code(stream), 1);
	assert_string_equal(tu_otlp_attr_str(tu_otlp_find(spans, "SnapshotService.wait"),
					     "error.type"), "cancelled");
	json_decref(spans);
	tu_server_stop(&srv);
}

static const char crafted[] =
	"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
	"{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"spans\":["
	"{\"traceId\":\"11111111111111111111111111111111\",\"spanId\":\"aaaaaaaaaaaaaaaa\","
	"\"name\":\"root\",\"kind\":1,\"startTimeUnixNano\":\"1000000000000000000\","
	"\"endTimeUnixNano\":\"1000000001000000000\",\"status\":{\"code\":1}},"
	"{\"traceId\":\"11111111111111111111111111111111\",\"spanId\":\"bbbbbbbbbbbbbbbb\","
	"\"parentSpanId\":\"aaaaaaaaaaaaaaaa\",\"name\":\"child\",\"kind\":3,"
	"\"startTimeUnixNano\":\"1000000000500000000\",\"endTimeUnixNano\":\"1000000000750000000\","
	"\"attributes\":[{\"key\":\"error.type\",\"value\":{\"stringValue\":\"503\"}}],"
	"\"status\":{\"code\":2}}]}]}]}\n"
	"this is not json\n"
	"{\"resourceMetrics\":[]}\n"
	"\n"
	"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
	"{\"traceId\":\"22222222222222222222222222222222\",\"spanId\":\"cccccccccccccccc\","
	"\"parentSpanId\":\"dddddddddddddddd\",\"name\":\"orphan\",\"kind\":1,"
	"\"startTimeUnixNano\":\"2000000000000000000\","
	"\"endTimeUnixNano\":\"2000000000002000000\"}]}]}]}\n"
	"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"no ids\"}]}]}]}\n";

static void test_cli_trace__show_draws_a_waterfall(void **state)
{
	tu_run r;
	const char *root, *child, *orphan;

	(void)state;
	tu_write(dir, "crafted.jsonl", crafted);
	snprintf(trace, sizeof(trace), "%s/crafted.jsonl", dir);
	r = run(DTN_STRV("trace", "show", trace, "--width", "20"));
	/* bad lines are named, the rest is still drawn, and the exit code says so */
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "crafted.jsonl:2: not JSON"));
	assert_non_null(strstr(r.err, "crafted.jsonl:6: a span without"));
	assert_non_null(strstr(r.out, "trace 11111111111111111111111111111111  svc  2 spans  1.00 s"));
	assert_non_null(strstr(r.out, "trace 22222222222222222222222222222222"));
	root = strstr(r.out, "  root ");
	child = strstr(r.out, "    child ");
	orphan = strstr(r.out, "  orphan ");
	assert_non_null(root);
	assert_non_null(child);
	assert_true(child > root);
	assert_non_null(orphan);
	assert_non_null(strstr(orphan, "(parent dddddddddddddddd not in file)"));
	/* offsets, durations, bars, status */
	assert_non_null(strstr(r.out, "+500.0 ms"));
	assert_non_null(strstr(r.out, "250.0 ms"));
	assert_non_null(strstr(r.out, "|####################| OK"));
	assert_non_null(strstr(r.out, "|          #####     | ERROR 503"));
	/* piped: no colours */
	assert_null(strchr(r.out, '\033'));
	tu_run_free(&r);
	/* a good file: exit 0 */
	tu_write(dir, "good.jsonl", "{\"resourceMetrics\":[]}\n");
	snprintf(trace, sizeof(trace), "%s/good.jsonl", dir);
	r = run(DTN_STRV("trace", "show", trace));
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "no spans"));
	tu_run_free(&r);
}

/* Spans nested as deep as the file likes are all drawn, even by a process with a small stack. */
static void test_cli_trace__show_draws_deep_nesting(void **state)
{
	enum { DEPTH = 20000 };
	dtn__buf b = DTN__BUF_INIT;
	char *argv[] = {(char *)"/bin/sh", (char *)"-c",
			(char *)"ulimit -s 512 && exec \"$0\" trace show \"$1\" --width 10",
			(char *)tu_dtn_build(), trace, NULL};
	const char *p;
	size_t lines = 0;
	tu_run r;

	(void)state;
	dtn__buf_puts(&b, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
	for (int i = 1; i <= DEPTH; i++)
		dtn__buf_printf(&b, "%s{\"traceId\":\"33333333333333333333333333333333\","
				"\"spanId\":\"%016x\",\"parentSpanId\":\"%016x\",\"name\":\"s%d\","
				"\"startTimeUnixNano\":\"%d\",\"endTimeUnixNano\":\"%d\"}",
				i > 1 ? "," : "", i, i - 1, i, i, 2 * DEPTH);
	dtn__buf_puts(&b, "]}]}]}\n");
	assert_false(b.failed);
	tu_write(dir, "deep.jsonl", dtn__buf_cstr(&b));
	dtn__buf_free(&b);
	snprintf(trace, sizeof(trace), "%s/deep.jsonl", dir);
	r = tu_run_cmd(argv, dir);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "20000 spans"));
	/* the root's parent (id 0) is not in the file; every other span hangs under the last */
	assert_non_null(strstr(r.out, "  s1 "));
	assert_non_null(strstr(r.out, "(parent 0000000000000000 not in file)"));
	assert_non_null(strstr(r.out, "\n+0.000 ms       0.040 ms    s2 "));
	assert_non_null(strstr(r.out, "  " "                  s10 ")); /* depth 9 */
	for (p = r.out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, DEPTH + 1);
	tu_run_free(&r);
}

/* The character column of the first '|' on the line of buf that holds p. */
static int bar_column(const char *buf, const char *p)
{
	const char *c;
	int n = 0;

	assert_non_null(p);
	while (*p == '\n')
		p++;
	while (p > buf && p[-1] != '\n')
		p--;
	for (c = p; *c && *c != '|' && *c != '\n'; c++)
		n += ((unsigned char)*c & 0xc0) != 0x80;
	assert_int_equal(*c, '|');
	return n;
}

/*
 * Strings of the file cannot drive the terminal: control characters and marks that reorder
 * text are shown as escapes, names long enough to be cut are cut between characters, and
 * columns count characters, not bytes.
 */
static void test_cli_trace__show_escapes_what_the_file_says(void **state)
{
	static const char hostile[] =
		"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
		"\"value\":{\"stringValue\":\"svc\\u001b]0;owned\\u0007\"}}]},\"scopeSpans\":[{\"spans\":["
		"{\"traceId\":\"44444444444444444444444444444444\",\"spanId\":\"0000000000000001\","
		"\"name\":\"clear\\u001b[2Jscreen\\u009b1m\\u202egnp.exe\",\"startTimeUnixNano\":\"0\","
		"\"endTimeUnixNano\":\"1000\",\"status\":{\"code\":2},\"attributes\":[{\"key\":"
		"\"error.type\",\"value\":{\"stringValue\":\"bad\\r\\nline\"}}]},"
		"{\"traceId\":\"44444444444444444444444444444444\",\"spanId\":\"0000000000000002\","
		"\"parentSpanId\":\"0000000000000001\",\"name\":\"\u00e9t\u00e9 "
		"\u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 "
		"\u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 "
		"\u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9\",\"startTimeUnixNano\":\"0\","
		"\"endTimeUnixNano\":\"500\"},"
		"{\"traceId\":\"44444444444444444444444444444444\",\"spanId\":\"0000000000000003\","
		"\"parentSpanId\":\"0000000000000001\",\"name\":\"\u00e9\u00e9\","
		"\"startTimeUnixNano\":\"500\",\"endTimeUnixNano\":\"1000\"}"
		"]}]}]}\n";
	const char *line, *end;
	tu_run r;

	(void)state;
	tu_write(dir, "hostile.jsonl", hostile);
	snprintf(trace, sizeof(trace), "%s/hostile.jsonl", dir);
	r = run(DTN_STRV("trace", "show", trace, "--width", "10"));
	assert_int_equal(r.status, 0);
	for (const char *c = r.out; *c; c++)
		assert_true((unsigned char)*c >= 0x20 || *c == '\n');
	assert_null(strstr(r.out, "\xc2\x9b"));
	assert_null(strstr(r.out, "\xe2\x80\xae"));
	assert_non_null(strstr(r.out, "svc\\x1b]0;owned\\x07"));
	assert_non_null(strstr(r.out, "clear\\x1b[2Jscreen\\u009b1m\\u202egnp.exe"));
	assert_non_null(strstr(r.out, "ERROR bad\\x0d\\x0aline"));
	/* the long name is cut to the widest column (56) between two characters */
	assert_non_null(line = strstr(r.out, "  \xc3\xa9t\xc3\xa9 "));
	assert_non_null(end = strstr(line, "... |"));
	assert_true((end[-1] & 0xc0) != 0xc0); /* no lead byte without its continuation */
	/* every bar starts in the same column, counted in characters */
	assert_int_equal(bar_column(r.out, strstr(r.out, "\n+")), bar_column(r.out, line));
	assert_int_equal(bar_column(r.out, strstr(r.out, "  \xc3\xa9\xc3\xa9 ")),
			 bar_column(r.out, line));
	tu_run_free(&r);
}

/* A dry run says so on the root span. */
static void test_cli_trace__dry_run_on_the_root(void **state)
{
	tu_run r = run(DTN_STRV("--trace-file", trace, "build", spec, "--local", "--dry-run",
				"--name", "x"));
	json_t *spans, *root;

	(void)state;
	assert_int_equal(r.status, 0);
	spans = trace_spans();
	root = tu_otlp_find(spans, "dtn-build build");
	assert_true(json_is_true(json_object_get(tu_otlp_attr(root, "dtn.dry_run"), "boolValue")));
	assert_non_null(tu_otlp_find(spans, "Context.identify"));
	json_decref(spans);
	tu_run_free(&r);
}

/* What --trace-file wrote, trace show draws. */
static void test_cli_trace__show_reads_what_was_written(void **state)
{
	tu_run r = run(DTN_STRV("--trace-file", trace, "dockerfile", spec));

	(void)state;
	assert_int_equal(r.status, 0);
	tu_run_free(&r);
	r = run(DTN_STRV("trace", "show", trace));
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "dtn-build dockerfile"));
	assert_non_null(strstr(r.out, "\n+"));
	assert_non_null(strstr(r.out, "  Spec.load"));
	assert_non_null(strstr(r.out, "  Image.dockerfile"));
	tu_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cli_trace__file_has_the_command_tree, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__options_anywhere_and_context_spans,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__traceparent_makes_it_a_child, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__traceparent_forwarded_when_off,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__engine_gets_the_traceparent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__failure_on_the_root_span, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__unsupported_protocol_keeps_the_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__hung_receiver_within_budget, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__interrupt_ends_spans_cancelled,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__over_otlp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__daytona_build_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__daytona_multipart_upload_tree, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__daytona_interrupt_cancels_the_stream,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__show_draws_a_waterfall, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__show_reads_what_was_written, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__show_escapes_what_the_file_says,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__show_draws_deep_nesting, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_trace__dry_run_on_the_root, setup, teardown),
	};

	return cmocka_run_group_tests_name("cli/trace", tests, NULL, NULL);
}
