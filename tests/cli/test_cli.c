/*
 * test_cli.c - dtn-build as a user meets it: help, version, usage errors, spec errors with
 * their positions and exit codes, and nothing on stdout when anything is wrong.
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
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char dir[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	tu_write(dir, "ok.yaml", "image:\n  base: alpine:3.19\n  steps:\n"
				 "    - add_local_file: [app.py, /app/]\n"
				 "    - run_commands: [\"echo hi\"]\n");
	tu_write(dir, "app.py", "print(1)\n");
	tu_write(dir, "typo.yaml", "image:\n  base: alpine\n  steps:\n    - pip_instal: [a]\n");
	tu_write(dir, "notyaml.yaml", "image: [unclosed\n");
	tu_write(dir, "badpy.yaml", "image:\n  debian_slim: \"3.8\"\n");
	tu_write(dir, "missing.yaml", "image:\n  base: a\n  steps:\n"
				      "    - add_local_file: {local: nope.txt, remote: /x}\n");
	tu_write(dir, "shape.yaml", "image:\n  base: a\n  steps:\n    - env: [A, B]\n");
	tu_write(dir, "tree.yaml", "image:\n  base: a\n  steps:\n"
				   "    - add_local_dir: {local: proj, remote: /p}\n");
	tu_write(dir, ".dockerignore", "proj/*.log\n");
	tu_write(dir, "proj/main.c", "int main(void) { return 0; }\n");
	tu_write(dir, "proj/sub/data.bin", "\x01\x02\x03");
	tu_write(dir, "proj/debug.log", "noise\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	return 0;
}

/* Runs dtn-build with up to three arguments (NULL-terminated). */
static tu_run dtn(const char *a, const char *b, const char *c)
{
	char spec[PATH_MAX + 256];
	const char *args[3] = {a, b, c};
	char *argv[5] = {(char *)tu_dtn_build()};

	for (int i = 0; i < 3 && args[i]; i++) {
		if (strstr(args[i], ".yaml")) {
			snprintf(spec, sizeof(spec), "%s/%s", dir, args[i]);
			argv[i + 1] = spec;
		} else {
			argv[i + 1] = (char *)args[i];
		}
	}
	return tu_run_cmd(argv, dir);
}

static void assert_contains(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("\"%s\" does not contain \"%s\"", text, needle);
}

static void test_cli_cli__help_and_version(void **state)
{
	tu_run r;

	(void)state;
	r = dtn("--version", NULL, NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "dtn-build " DTN_VERSION "\n");
	tu_run_free(&r);
	r = dtn("--help", NULL, NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "dockerfile");
	assert_contains(r.out, "context");
	tu_run_free(&r);
	r = dtn("dockerfile", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "usage: dtn-build dockerfile SPEC");
	tu_run_free(&r);
	r = dtn("context", "-h", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "--json");
	tu_run_free(&r);
}

static void test_cli_cli__usage_errors(void **state)
{
	tu_run r;

	(void)state;
	r = dtn(NULL, NULL, NULL);
	assert_int_equal(r.status, 2);
	tu_run_free(&r);
	r = dtn("frobnicate", NULL, NULL);
	assert_int_equal(r.status, 2);
	assert_contains(r.err, "unknown command \"frobnicate\"");
	tu_run_free(&r);
	r = dtn("dockerfile", NULL, NULL);
	assert_int_equal(r.status, 2);
	assert_string_equal(r.out, "");
	tu_run_free(&r);
	r = dtn("context", "ok.yaml", "--bogus");
	assert_int_equal(r.status, 2);
	assert_contains(r.err, "unknown option \"--bogus\"");
	tu_run_free(&r);
	r = dtn("context", "ok.yaml", "--json=yes");
	assert_int_equal(r.status, 2);
	assert_contains(r.err, "--json takes no value");
	tu_run_free(&r);
	r = dtn("dockerfile", "ok.yaml", "typo.yaml");
	assert_int_equal(r.status, 2);
	assert_contains(r.err, "unexpected argument");
	assert_string_equal(r.out, "");
	tu_run_free(&r);
}

static void test_cli_cli__dockerfile_and_context(void **state)
{
	tu_run r;

	(void)state;
	r = dtn("dockerfile", "ok.yaml", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "FROM alpine:3.19\nCOPY app.py /app/app.py\nRUN echo hi\n");
	assert_string_equal(r.err, "");
	tu_run_free(&r);
	r = dtn("context", "ok.yaml", "--json");
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "\"archive_path\": \"app.py\"");
	assert_contains(r.out, "\"kind\": \"file\"");
	assert_contains(r.out, "\"step\": \"add_local_file\"");
	tu_run_free(&r);
	r = dtn("context", "ok.yaml", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "app.py -> app.py");
	tu_run_free(&r);
}

/* Each bad spec: exit 2, nothing on stdout, one line on stderr with FILE:LINE:COLUMN. */
static void assert_spec_error(const char *spec, const char *position, const char *needle)
{
	const char *cmds[] = {"dockerfile", "context"};
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "%s/%s:%s: ", dir, spec, position);
	for (int i = 0; i < 2; i++) {
		tu_run r = dtn(cmds[i], spec, NULL);

		assert_int_equal(r.status, 2);
		assert_string_equal(r.out, "");
		assert_contains(r.err, want);
		assert_contains(r.err, needle);
		assert_non_null(strchr(r.err, '\n'));
		assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
		tu_run_free(&r);
	}
}

static void test_cli_cli__spec_errors(void **state)
{
	tu_run r;

	(void)state;
	assert_spec_error("typo.yaml", "4:7", "did you mean \"pip_install\"");
	assert_spec_error("notyaml.yaml", "2:1", "");
	assert_spec_error("badpy.yaml", "2:16", "3.8");
	assert_spec_error("missing.yaml", "4:23", "nope.txt");
	assert_spec_error("shape.yaml", "4:12", "env");
	r = dtn("dockerfile", "nothere.yaml", NULL);
	assert_int_equal(r.status, 2);
	assert_contains(r.err, "nothere.yaml");
	assert_string_equal(r.out, "");
	tu_run_free(&r);
}

/* Runs a command given as a list (a program path first, or a dtn-build argument list). */
static tu_run run_list(bool tool, const char *const *args)
{
	char *argv[16];
	size_t n = 0;

	if (tool)
		argv[n++] = (char *)tu_dtn_build();
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return tu_run_cmd(argv, dir);
}

/* context: the identity, counts and what was left out; -o archives that extract to the tree */
static void test_cli_cli__context_archives(void **state)
{
	char out[PATH_MAX + 16], tarfile[PATH_MAX + 96], x[PATH_MAX + 16], hash[65] = "";
	const char *h;
	tu_run r;

	(void)state;
	r = dtn("context", "tree.yaml", "--json");
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "\"files\": 2");
	assert_contains(r.out, "\"excluded\": 1");
	assert_contains(r.out, ".dockerignore:1 proj/*.log");
	h = strstr(r.out, "\"hash\": \"");
	assert_non_null(h);
	memcpy(hash, h + 9, 64);
	tu_run_free(&r);

	snprintf(out, sizeof(out), "%s/out", dir);
	r = run_list(true, DTN_STRV("context", "tree.yaml", "-o", out));
	assert_int_equal(r.status, 0);
	assert_contains(r.out, hash);
	tu_run_free(&r);
	snprintf(tarfile, sizeof(tarfile), "%s/%s.tar", out, hash);
	snprintf(x, sizeof(x), "%s/x", dir);
	mkdir(x, 0755);
	r = run_list(false, DTN_STRV("/bin/tar", "-xf", tarfile, "-C", x));
	assert_int_equal(r.status, 0);
	tu_run_free(&r);
	r = run_list(false, DTN_STRV("/usr/bin/diff", "-r", "--exclude=*.log", "proj", "x/proj"));
	assert_int_equal(r.status, 0);
	tu_run_free(&r);
	snprintf(x, sizeof(x), "%s/x/proj/debug.log", dir);
	assert_int_not_equal(access(x, F_OK), 0);

	r = dtn("context", "tree.yaml", "--explain");
	assert_int_equal(r.status, 2);
	tu_run_free(&r);
	r = run_list(true, DTN_STRV("context", "tree.yaml", "--explain", "proj/debug.log"));
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "left out by");
	assert_contains(r.out, ".dockerignore:1 proj/*.log");
	tu_run_free(&r);
	r = run_list(true, DTN_STRV("context", "tree.yaml", "--explain", "elsewhere.txt"));
	assert_int_equal(r.status, 1);
	assert_contains(r.out, "in no build context");
	tu_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_cli__help_and_version),
		cmocka_unit_test(test_cli_cli__usage_errors),
		cmocka_unit_test(test_cli_cli__dockerfile_and_context),
		cmocka_unit_test(test_cli_cli__spec_errors),
		cmocka_unit_test(test_cli_cli__context_archives),
	};

	return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
