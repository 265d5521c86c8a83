/*
 * test_vectors_cli.c - the image vectors recorded from the Daytona TypeScript SDK, replayed
 * through dtn-build and the YAML spec format.
 *
 * Each vector has a spec, fixtures/vector-<id>.yaml, that says in YAML what the vector's calls
 * say in the SDK. For every vector the test runs `dtn-build dockerfile SPEC` and
 * `dtn-build context SPEC --json` and checks the Dockerfile text, the context list (source,
 * archive path, kind) and, for error vectors, the exit code and the one-line diagnostic.
 *
 * The vectors were recorded with the fixtures directory as the working directory and as HOME.
 * Here HOME is the fixtures directory but the working directory is an empty temporary one: a
 * spec's relative paths resolve against the spec's own directory, so it must work from anywhere.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vectors.h"

/* The CLI's documented exit code for a usage or spec error. */
#define EXIT_SPEC_ERROR 2

/* An empty directory to run in, removed at the end. */
static char workdir[PATH_MAX];

static void spec_path(char *buf, size_t size, const char *id)
{
	int n = snprintf(buf, size, "%s/vector-%s.yaml", tv_fixtures(), id);

	assert_true(n > 0 && (size_t)n < size);
}

/* ---- checks --------------------------------------------------------------------------------- */

static bool check_exit(const char *id, const char *what, const tu_run *r, int want)
{
	char *err;

	if (r->status == want)
		return true;
	err = tv_show_text(r->err);
	print_error("vector %s: `%s` exited with %d, expected %d; stderr: %s\n", id, what,
	            r->status, want, err);
	free(err);
	return false;
}

static bool check_dockerfile(const char *id, const tu_run *r, json_t *expected)
{
	if (!check_exit(id, "dockerfile", r, 0))
		return false;
	return tv_check_text(id, "`dockerfile` output", expected, r->out);
}

static bool is_string_member(json_t *obj, const char *key)
{
	return json_is_string(json_object_get(obj, key));
}

/*
 * One context object of `context --json`, reduced to the fields the vectors record. The other
 * documented fields must be there too: an absolute path and the step's name.
 */
static json_t *reduce_context(const char *id, json_t *c)
{
	const char *path;

	if (!json_is_object(c) || !is_string_member(c, "source") ||
	    !is_string_member(c, "archive_path") || !is_string_member(c, "kind") ||
	    !is_string_member(c, "path") || !is_string_member(c, "step")) {
		print_error("vector %s: a context lacks source, path, archive_path, kind or step\n",
		            id);
		return NULL;
	}
	path = json_string_value(json_object_get(c, "path"));
	if (path[0] != '/') {
		print_error("vector %s: context path \"%s\" is not absolute\n", id, path);
		return NULL;
	}
	return json_pack("{s:O, s:O, s:O}", "source", json_object_get(c, "source"), "archive_path",
	                 json_object_get(c, "archive_path"), "kind", json_object_get(c, "kind"));
}

static json_t *parse_contexts(const char *id, const char *text)
{
	json_error_t jerr;
	json_t *doc = json_loads(text, JSON_DISABLE_EOF_CHECK, &jerr), *out, *c, *reduced;
	size_t i;

	if (!json_is_array(doc)) {
		print_error("vector %s: `context --json` did not print a JSON array: %s\n", id,
		            doc ? "another JSON value" : jerr.text);
		json_decref(doc);
		return NULL;
	}
	out = json_array();
	assert_non_null(out);
	json_array_foreach (doc, i, c) {
		if (!(reduced = reduce_context(id, c))) {
			json_decref(out);
			out = NULL;
			break;
		}
		json_array_append_new(out, reduced);
	}
	json_decref(doc);
	return out;
}

static bool check_contexts(const char *id, const tu_run *r, json_t *expected)
{
	json_t *actual;
	bool ok;

	if (!check_exit(id, "context --json", r, 0))
		return false;
	if (!(actual = parse_contexts(id, r->out)))
		return false;
	ok = tv_check_contexts(id, expected, actual);
	json_decref(actual);
	return ok;
}

/* The number of the spec's last line: every error vector fails at its last call. */
static long last_line(const char *id)
{
	char path[PATH_MAX];
	long lines = 0;
	FILE *f;
	int c, prev = '\n';

	spec_path(path, sizeof(path), id);
	f = fopen(path, "r");
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF) {
		if (c == '\n')
			lines++;
		prev = c;
	}
	fclose(f);
	return prev == '\n' ? lines : lines + 1;
}

/*
 * Whether text holds "FILE:LINE:COLUMN: " (COLUMN >= 1). Where the column may be unknown (an
 * error in a Dockerfile line need not name one), "FILE:LINE: " is accepted too.
 */
static bool position_ok(const char *text, const char *file, long line, bool need_column)
{
	char where[PATH_MAX + 32];
	const char *at;
	char *end;
	long column;

	snprintf(where, sizeof(where), "%s:%ld:", file, line);
	if (!(at = strstr(text, where)))
		return false;
	at += strlen(where);
	if (*at == ' ' && !need_column)
		return true;
	column = strtol(at, &end, 10);
	return end != at && column >= 1 && end[0] == ':' && end[1] == ' ';
}

/*
 * Exit code 2, nothing on stdout, and one line on stderr: "dtn-build: ", the position and a
 * message naming the offending input. A spec error points at the failing step (the spec's last
 * line); an error in a Dockerfile line points at the Dockerfile's line.
 */
static bool check_error(const char *id, const char *what, const tu_run *r, json_t *error)
{
	const char *nl = strchr(r->err, '\n');
	char spec[PATH_MAX];
	const char *file = spec;
	tv_error_want want;
	long line;
	char *err;

	tv_error_want_read(&want, error);
	if (!check_exit(id, what, r, EXIT_SPEC_ERROR))
		return false;
	if (want.dockerfile) {
		file = want.dockerfile;
		line = want.line;
	} else {
		snprintf(spec, sizeof(spec), "vector-%s.yaml", id);
		line = last_line(id);
	}
	if (r->out[0] == '\0' && strncmp(r->err, "dtn-build: ", 11) == 0 && nl && !nl[1] &&
	    position_ok(r->err, file, line, !want.dockerfile) && strstr(r->err, want.contains))
		return true;
	err = tv_show_text(r->err);
	print_error("vector %s: `%s` should fail with no stdout (got %zu bytes) and one stderr "
	            "line \"dtn-build: .../%s:%ld:COLUMN: ...%s...\"\n  stderr: %s\n",
	            id, what, strlen(r->out), file, line, want.contains, err);
	free(err);
	return false;
}

/* ---- the tests ------------------------------------------------------------------------------ */

static tu_run run_command(const char *id, const char *command)
{
	char spec[PATH_MAX];
	char *argv[] = {(char *)tu_dtn_build(), (char *)command, spec, (char *)"--json", NULL};

	spec_path(spec, sizeof(spec), id);
	if (strcmp(command, "context") != 0)
		argv[3] = NULL;
	return tu_run_cmd(argv, NULL);
}

static void test_vector(void **state)
{
	const tv_case *vc = *state;
	json_t *expected = tv_expected_result(vc), *error = json_object_get(expected, "error");
	tu_run df = run_command(vc->id, "dockerfile");
	tu_run ctx = run_command(vc->id, "context");
	bool ok;

	if (error) {
		ok = check_error(vc->id, "dockerfile", &df, error);
		ok = check_error(vc->id, "context --json", &ctx, error) && ok;
	} else {
		ok = check_dockerfile(vc->id, &df, json_object_get(expected, "dockerfile"));
		ok = check_contexts(vc->id, &ctx, json_object_get(expected, "contexts")) && ok;
	}
	tu_run_free(&df);
	tu_run_free(&ctx);
	json_decref(expected);
	tv_finish(vc, ok, "dtn-build's result");
}

/* Every vector has its spec next to the fixtures and an entry in parity.json. */
static void test_cli_vectors_cli__every_vector_has_a_spec(void **state)
{
	json_t *v;
	char path[PATH_MAX];
	size_t i;

	(void)state;
	tv_assert_count();
	json_array_foreach (tv_vectors(), i, v) {
		const char *id = tv_member_string(v, "id");

		spec_path(path, sizeof(path), id);
		if (access(path, R_OK) != 0)
			fail_msg("vector %s has no spec %s", id, path);
		if (!tv_parity_for(id))
			fail_msg("vector %s has no entry in parity.json", id);
	}
}

/* ---- set-up --------------------------------------------------------------------------------- */

/* HOME is the fixtures (as when recording); the working directory is a fresh empty one. */
static int suite_load(void)
{
	if (tv_load() < 0)
		return -1;
	tu_dtn_build(); /* a missing dtn-build stops the run here, not in the first vector */
	snprintf(workdir, sizeof(workdir), "%s", tu_mkdtemp());
	if (chdir(workdir) < 0) {
		perror(workdir);
		return -1;
	}
	return 0;
}

static void suite_unload(void)
{
	if (chdir("/") == 0 && workdir[0])
		rmdir(workdir);
	tv_unload();
}

int main(void)
{
	tv_counts c;
	size_t run;
	int rc = 1;

	if (suite_load() < 0)
		goto out;
	rc = tv_run_tests(
	    "cli_vectors_cli",
	    (struct CMUnitTest)cmocka_unit_test(test_cli_vectors_cli__every_vector_has_a_spec),
	    test_vector, NULL, NULL, &c, &run);
	/* one line saying how the vectors divide, like the C API runner's */
	printf("vectors (CLI): %zu run, %d exact, %d correction%s, %d yaml-text, %d not "
	       "expressible in C\n",
	       run, c.kinds[TV_EXACT], c.kinds[TV_CORRECTION],
	       c.kinds[TV_CORRECTION] == 1 ? "" : "s", c.kinds[TV_YAML_TEXT],
	       c.kinds[TV_C_NOT_EXPRESSIBLE] + c.kinds[TV_UNKNOWN]);
out:
	suite_unload();
	return rc;
}
