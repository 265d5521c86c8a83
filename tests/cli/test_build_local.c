/*
 * test_build_local.c - `dtn-build build` on the local backend as a user meets it, with a
 * stand-in engine (a script named buildah first on PATH): the backend chosen without
 * credentials and the line saying so, usage errors, --dry-run, --json, a failing build's exit
 * code and lines, a missing engine, Ctrl-C. Real builds: tests/e2e/test_local_build.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char top[PATH_MAX];
static char saved_path[8192];

/* A stand-in buildah: `inspect` fails, `bud` prints lines and fails or hangs when told to. */
static const char fake_engine[] =
	"#!/bin/sh\n"
	"for a in \"$@\"; do case \"$a\" in\n"
	"  inspect) exit 125 ;;\n"
	"  bud) break ;;\n"
	"esac; done\n"
	"prev=; for a in \"$@\"; do case \"$prev\" in -f) df=$a ;; esac; prev=$a; done\n"
	"echo 'STEP 1/2: FROM base'\n"
	"if grep -q HANG \"$df\"; then echo hanging; sleep 300 & wait; fi\n"
	"if grep -q FAIL \"$df\"; then\n"
	"  echo 'failing-line-XYZ'; echo 'Error: building at STEP \"RUN FAIL\": exit status 3' >&2\n"
	"  exit 3\n"
	"fi\n"
	"echo done\n";

static int setup(void **st)
{
	char bin[PATH_MAX], path[sizeof(saved_path) + PATH_MAX];

	(void)st;
	snprintf(top, sizeof(top), "%s", tu_mkdtemp());
	tu_write(top, "bin/buildah", fake_engine);
	snprintf(bin, sizeof(bin), "%s/bin/buildah", top);
	chmod(bin, 0755);
	snprintf(saved_path, sizeof(saved_path), "%s", getenv("PATH") ? getenv("PATH") : "");
	snprintf(path, sizeof(path), "%s/bin:/usr/local/bin:/usr/bin:/bin", top);
	setenv("PATH", path, 1);
	setenv("BUILDAH_ISOLATION", "chroot", 1);
	unsetenv("DAYTONA_API_KEY");
	unsetenv("DAYTONA_JWT_TOKEN");
	unsetenv("DTN_BUILDAH_ARGS");
	tu_write(top, "ok.yaml", "image:\n  base: localhost/dtn/busybox:1\n  steps:\n"
				 "    - add_local_file: [app.txt, /app/]\n"
				 "snapshot: {name: demo}\n");
	tu_write(top, "app.txt", "app\n");
	tu_write(top, "fail.yaml", "image:\n  base: b\n  steps:\n    - run_commands: [FAIL]\n"
				   "snapshot: {name: demo}\n");
	tu_write(top, "hang.yaml", "image:\n  base: b\n  steps:\n    - run_commands: [HANG]\n"
				   "snapshot: {name: demo}\n");
	tu_write(top, "noname.yaml", "image:\n  base: b\n");
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	setenv("PATH", saved_path, 1);
	tu_rmtree(top);
	return 0;
}

/* dtn-build build SPEC and more arguments (NULL-terminated), in the scratch directory. */
static tu_run build(const char *spec, ...)
{
	const char *argv[16] = {tu_dtn_build(), "build"};
	char path[PATH_MAX];
	size_t n = 3;
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", top, spec);
	argv[2] = path;
	va_start(ap, spec);
	for (const char *a = va_arg(ap, const char *); a && n < 15; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	return tu_run_cmd((char *const *)argv, top);
}

static void assert_contains(const char *text, const char *needle)
{
	if (!text || !strstr(text, needle))
		fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(null)", needle);
}

static void assert_status(const tu_run *r, int status)
{
	if (r->status != status)
		fail_msg("status %d, not %d\nstdout: %s\nstderr: %s", r->status, status, r->out,
			 r->err);
}

static void test_cli_build_local__local_without_credentials(void **st)
{
	tu_run r;

	(void)st;
	r = build("ok.yaml", NULL);
	assert_status(&r, 0);
	assert_contains(r.err, "no Daytona credentials: building locally with buildah\n");
	assert_contains(r.out, "== building dtn/demo:");
	assert_contains(r.out, "STEP 1/2: FROM base\ndone\n");
	assert_contains(r.out, "\nbuilt dtn/demo:");
	assert_contains(r.out, " with buildah\n");
	tu_run_free(&r);
	/* named explicitly, nothing is said about credentials */
	r = build("ok.yaml", "--local", NULL);
	assert_status(&r, 0);
	assert_null(strstr(r.err, "credentials"));
	tu_run_free(&r);
}

static void test_cli_build_local__usage_errors(void **st)
{
	static const char *const cases[][4] = {
		{"ok.yaml", "--local", "--sandbox", "--sandbox needs the Daytona backend"},
		{"ok.yaml", "--local", "--daytona", "exclude each other"},
		{"ok.yaml", "--local", "--region=eu", "--region applies to Daytona builds only"},
		{"ok.yaml", "--timeout", "soon", "--timeout wants a number of seconds"},
		{"ok.yaml", "--engine", "rkt", "unknown engine \"rkt\""},
		{"noname.yaml", "--local", NULL, "no snapshot name"},
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tu_run r = build(cases[i][0], cases[i][1], cases[i][2], NULL);

		assert_status(&r, 2);
		assert_contains(r.err, cases[i][3]);
		assert_string_equal(r.out, "");
		tu_run_free(&r);
	}
}

static void test_cli_build_local__dry_run(void **st)
{
	json_t *j;
	tu_run r;

	(void)st;
	r = build("ok.yaml", "--local", "--dry-run", NULL);
	assert_status(&r, 0);
	assert_contains(r.out, "backend: local, engine: ");
	assert_contains(r.out, "image: dtn/demo:");
	assert_contains(r.out, "== Dockerfile\nFROM localhost/dtn/busybox:1\nCOPY app.txt "
			       "/app/app.txt\n== build contexts\nfile app.txt -> app.txt");
	assert_null(strstr(r.out, "STEP"));
	tu_run_free(&r);
	r = build("ok.yaml", "--local", "--dry-run", "--json", "--name", "Other Name", NULL);
	assert_status(&r, 0);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "engine")), "buildah");
	assert_int_equal(strncmp(json_string_value(json_object_get(j, "image")), "dtn/other-name:",
				 15), 0);
	assert_int_equal(json_array_size(json_object_get(j, "contexts")), 1);
	assert_true(json_is_true(json_object_get(j, "dry_run")));
	json_decref(j);
	tu_run_free(&r);
}

static void test_cli_build_local__json_result(void **st)
{
	json_t *j;
	tu_run r;

	(void)st;
	r = build("ok.yaml", "--local", "--json", NULL);
	assert_status(&r, 0);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "backend")), "local");
	assert_false(json_is_true(json_object_get(j, "reused")));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "identity"))), 64);
	/* progress went to stderr */
	assert_contains(r.err, "STEP 1/2: FROM base\n");
	json_decref(j);
	tu_run_free(&r);
}

static void test_cli_build_local__failing_build(void **st)
{
	json_t *j;
	tu_run r;

	(void)st;
	r = build("fail.yaml", "--local", NULL);
	assert_status(&r, 1);
	assert_contains(r.out, "failing-line-XYZ\n");
	assert_contains(r.err, "failed: buildah exited with status 3: Error: building at STEP");
	assert_contains(r.err, "the last lines of the build output:\n  | STEP 1/2: FROM base\n"
			       "  | failing-line-XYZ\n");
	tu_run_free(&r);
	r = build("fail.yaml", "--local", "--json", NULL);
	assert_status(&r, 1);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_contains(json_string_value(json_object_get(j, "error")), "exited with status 3");
	assert_int_equal(json_array_size(json_object_get(j, "failed_lines")), 3);
	json_decref(j);
	tu_run_free(&r);
}

static void test_cli_build_local__missing_engine(void **st)
{
	json_t *j;
	tu_run r;

	(void)st;
	r = build("ok.yaml", "--engine", "podman", NULL);
	assert_status(&r, 3);
	assert_contains(r.err, "podman was not found on PATH");
	tu_run_free(&r);
	/* --json: stdout still says how it ended */
	r = build("ok.yaml", "--engine", "podman", "--json", NULL);
	assert_status(&r, 3);
	assert_non_null(j = json_loads(r.out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "backend")), "local");
	assert_contains(json_string_value(json_object_get(j, "error")), "podman was not found");
	assert_int_equal(json_array_size(json_object_get(j, "failed_lines")), 0);
	json_decref(j);
	tu_run_free(&r);
}

static void test_cli_build_local__interrupt_exits_130(void **st)
{
	char log[PATH_MAX], spec[PATH_MAX], *text = calloc(1, 65536);
	int status = 0;
	pid_t pid;

	(void)st;
	assert_non_null(text);
	snprintf(log, sizeof(log), "%s/hang.log", top);
	snprintf(spec, sizeof(spec), "%s/hang.yaml", top);
	if ((pid = fork()) == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(tu_dtn_build(), tu_dtn_build(), "build", spec, "--local", (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	for (int i = 0; i < 600 && !strstr(text, "hanging\n"); i++) {
		FILE *f = fopen(log, "r");

		if (f) {
			text[fread(text, 1, 65535, f)] = '\0';
			fclose(f);
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("dtn-build ended early:\n%s", text);
		usleep(100000);
	}
	assert_contains(text, "hanging\n");
	kill(pid, SIGINT);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 130);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_build_local__local_without_credentials),
		cmocka_unit_test(test_cli_build_local__usage_errors),
		cmocka_unit_test(test_cli_build_local__dry_run),
		cmocka_unit_test(test_cli_build_local__json_result),
		cmocka_unit_test(test_cli_build_local__failing_build),
		cmocka_unit_test(test_cli_build_local__missing_engine),
		cmocka_unit_test(test_cli_build_local__interrupt_exits_130),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
