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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#define PLACEHOLDER "{{FIXTURES}}"

/* A command that has not finished after this long is killed and the test fails. */
#define RUN_TIMEOUT_MS 60000

/* The CLI's documented exit code for a usage or spec error. */
#define EXIT_SPEC_ERROR 2

extern char **environ;

struct vector_case {
	const char *id;
	json_t *vector;
	json_t *parity;
};

static struct {
	char fixtures[PATH_MAX];
	char tool[PATH_MAX];
	char workdir[PATH_MAX];
	json_t *vectors; /* image-vectors.json */
	json_t *parity;  /* parity.json */
} suite;

/* What one run of dtn-build did. */
struct run {
	int exit_code; /* -1 when it did not exit normally */
	char *out;
	char *err;
};

/* ---- small utilities ---------------------------------------------------------------------- */

static const char *member_string(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("expected a string \"%s\" in the test data", key);
	return json_string_value(v);
}

/* A copy of s with every {{FIXTURES}} replaced by the fixtures' path; the caller frees it. */
static char *substitute(const char *s)
{
	size_t plen = strlen(PLACEHOLDER), flen = strlen(suite.fixtures), len = 0;
	char *out = malloc(strlen(s) * (flen + 1) + 1);

	assert_non_null(out);
	while (*s) {
		if (strncmp(s, PLACEHOLDER, plen) == 0) {
			memcpy(out + len, suite.fixtures, flen);
			len += flen;
			s += plen;
		} else {
			out[len++] = *s++;
		}
	}
	out[len] = '\0';
	return out;
}

static json_t *json_substituted(const char *s)
{
	char *text = substitute(s);
	json_t *v = json_string(text);

	free(text);
	assert_non_null(v);
	return v;
}

/* A value as one line of JSON, for messages; the caller frees it. */
static char *show(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(s);
	return s;
}

/* Text as a JSON string literal, so that newlines and odd bytes are visible in a message. */
static char *show_text(const char *text)
{
	json_t *v = json_stringn_nocheck(text, strlen(text));
	char *s;

	assert_non_null(v);
	s = show(v);
	json_decref(v);
	return s;
}

static void spec_path(char *buf, size_t size, const char *id)
{
	int n = snprintf(buf, size, "%s/vector-%s.yaml", suite.fixtures, id);

	assert_true(n > 0 && (size_t)n < size);
}

/* ---- running dtn-build ---------------------------------------------------------------------- */

static char *slurp(FILE *f)
{
	size_t len = 0, cap = 4096, got;
	char *buf = malloc(cap);

	assert_non_null(buf);
	rewind(f);
	while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += got;
		if (cap - len - 1 == 0) {
			buf = realloc(buf, cap *= 2);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

/* Waits for the child, killing it when it outlives RUN_TIMEOUT_MS. */
static int wait_child(pid_t pid)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	int status, waited = 0;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && waited < RUN_TIMEOUT_MS) {
		nanosleep(&tick, NULL);
		waited += 10;
	}
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("%s did not finish within %d ms", suite.tool, RUN_TIMEOUT_MS);
	}
	assert_int_equal(r, pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs dtn-build with the given arguments (no shell), stdin empty, both outputs captured. */
static struct run run_tool(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	FILE *out = tmpfile(), *err = tmpfile();
	struct run r;
	pid_t pid;

	assert_non_null(out);
	assert_non_null(err);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fileno(out), 1);
	posix_spawn_file_actions_adddup2(&fa, fileno(err), 2);
	if (posix_spawn(&pid, suite.tool, &fa, NULL, argv, environ) != 0)
		fail_msg("cannot run %s", suite.tool);
	posix_spawn_file_actions_destroy(&fa);
	r.exit_code = wait_child(pid);
	r.out = slurp(out);
	r.err = slurp(err);
	fclose(out);
	fclose(err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* ---- expected results ----------------------------------------------------------------------- */

static json_t *context_json(const char *source, const char *archive_path, const char *kind)
{
	json_t *c = json_object();

	assert_non_null(c);
	json_object_set_new(c, "source", json_substituted(source));
	json_object_set_new(c, "archive_path", json_substituted(archive_path));
	json_object_set_new(c, "kind", json_string(kind));
	return c;
}

/* The SDK's own contexts, with the kinds that parity.json adds for exact vectors. */
static json_t *expected_exact_contexts(const struct vector_case *vc)
{
	json_t *out = json_array(), *kinds = json_object_get(vc->parity, "context_kinds"), *c;
	json_t *recorded = json_object_get(vc->vector, "contexts");
	size_t i;

	assert_non_null(out);
	if (json_array_size(kinds) != json_array_size(recorded))
		fail_msg("vector %s: parity.json has %zu context kinds for %zu contexts", vc->id,
		         json_array_size(kinds), json_array_size(recorded));
	json_array_foreach (recorded, i, c)
		json_array_append_new(out,
		                      context_json(member_string(c, "sourcePath"),
		                                   member_string(c, "archivePath"),
		                                   json_string_value(json_array_get(kinds, i))));
	return out;
}

static json_t *expected_corrected_contexts(const struct vector_case *vc)
{
	json_t *out = json_array(), *c;
	size_t i;

	assert_non_null(out);
	json_array_foreach (json_object_get(vc->parity, "contexts"), i, c)
		json_array_append_new(out, context_json(member_string(c, "source"),
		                                        member_string(c, "archive_path"),
		                                        member_string(c, "kind")));
	return out;
}

/*
 * What dtn must produce: {"dockerfile", "contexts"} or {"error": {code, contains, ...}}, from
 * the recorded vector when it is exact and from parity.json otherwise. YAML can say everything
 * the SDK calls said, so no vector is left out here.
 */
static json_t *expected_result(const struct vector_case *vc)
{
	bool exact = strcmp(member_string(vc->parity, "parity"), "exact") == 0;
	json_t *out = json_object(), *error = json_object_get(vc->parity, "error");
	json_t *source = exact ? vc->vector : vc->parity;

	assert_non_null(out);
	if (error) {
		json_object_set(out, "error", error);
		return out;
	}
	json_object_set_new(out, "dockerfile",
	                    json_substituted(member_string(source, "dockerfile")));
	json_object_set_new(out, "contexts",
	                    exact ? expected_exact_contexts(vc) : expected_corrected_contexts(vc));
	return out;
}

/* ---- checks --------------------------------------------------------------------------------- */

static bool check_exit(const char *id, const char *what, const struct run *r, int want)
{
	char *err;

	if (r->exit_code == want)
		return true;
	err = show_text(r->err);
	print_error("vector %s: `%s` exited with %d, expected %d; stderr: %s\n", id, what,
	            r->exit_code, want, err);
	free(err);
	return false;
}

static bool check_dockerfile(const char *id, const struct run *r, json_t *expected)
{
	const char *want = json_string_value(expected);
	char *a, *b;
	size_t at = 0;

	if (!check_exit(id, "dockerfile", r, 0))
		return false;
	if (strcmp(want, r->out) == 0)
		return true;
	while (want[at] && want[at] == r->out[at])
		at++;
	a = show(expected);
	b = show_text(r->out);
	print_error("vector %s: `dockerfile` output differs at byte %zu\n", id, at);
	print_error("  expected: %s\n", a);
	print_error("  actual:   %s\n", b);
	free(a);
	free(b);
	return false;
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

/* A list one item per line: the test framework cuts long messages short. */
static void print_list(const char *label, const json_t *list)
{
	size_t i;
	json_t *item;
	char *text;

	print_error("  %s (%zu):\n", label, json_array_size(list));
	json_array_foreach (list, i, item) {
		text = show(item);
		print_error("    %s\n", text);
		free(text);
	}
}

static bool check_contexts(const char *id, const struct run *r, json_t *expected)
{
	json_t *actual;
	bool ok;

	if (!check_exit(id, "context --json", r, 0))
		return false;
	if (!(actual = parse_contexts(id, r->out)))
		return false;
	ok = json_equal(expected, actual);
	if (!ok) {
		print_error("vector %s: contexts differ\n", id);
		print_list("expected", expected);
		print_list("actual", actual);
	}
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
static bool check_error(const char *id, const char *what, const struct run *r, json_t *want)
{
	const char *contains = member_string(want, "contains");
	const char *nl = strchr(r->err, '\n');
	json_t *dockerfile = json_object_get(want, "dockerfile");
	char spec[PATH_MAX];
	const char *file = spec;
	long line;
	char *err;

	if (!check_exit(id, what, r, EXIT_SPEC_ERROR))
		return false;
	if (dockerfile) {
		file = json_string_value(dockerfile);
		line = (long)json_integer_value(json_object_get(want, "line"));
	} else {
		snprintf(spec, sizeof(spec), "vector-%s.yaml", id);
		line = last_line(id);
	}
	if (r->out[0] == '\0' && strncmp(r->err, "dtn-build: ", 11) == 0 && nl && !nl[1] &&
	    position_ok(r->err, file, line, !dockerfile) && strstr(r->err, contains))
		return true;
	err = show_text(r->err);
	print_error("vector %s: `%s` should fail with no stdout (got %zu bytes) and one stderr "
	            "line \"dtn-build: .../%s:%ld:COLUMN: ...%s...\"\n  stderr: %s\n",
	            id, what, strlen(r->out), file, line, contains, err);
	free(err);
	return false;
}

/* ---- the tests ------------------------------------------------------------------------------ */

static struct run run_command(const char *id, const char *command)
{
	char spec[PATH_MAX];
	char *argv[] = {suite.tool, (char *)command, spec, (char *)"--json", NULL};

	spec_path(spec, sizeof(spec), id);
	if (strcmp(command, "context") != 0)
		argv[3] = NULL;
	return run_tool(argv);
}

static void test_vector(void **state)
{
	const struct vector_case *vc = *state;
	json_t *expected = expected_result(vc), *error = json_object_get(expected, "error");
	struct run df = run_command(vc->id, "dockerfile");
	struct run ctx = run_command(vc->id, "context");
	bool ok;

	if (error) {
		ok = check_error(vc->id, "dockerfile", &df, error);
		ok = check_error(vc->id, "context --json", &ctx, error) && ok;
	} else {
		ok = check_dockerfile(vc->id, &df, json_object_get(expected, "dockerfile"));
		ok = check_contexts(vc->id, &ctx, json_object_get(expected, "contexts")) && ok;
	}
	run_free(&df);
	run_free(&ctx);
	json_decref(expected);
	if (!ok)
		fail_msg("vector %s (%s): dtn-build's result differs from the expectation", vc->id,
		         member_string(vc->parity, "parity"));
}

static json_t *parity_for(const char *id)
{
	size_t i;
	json_t *p;

	json_array_foreach (suite.parity, i, p)
		if (json_is_string(json_object_get(p, "id")) &&
		    strcmp(json_string_value(json_object_get(p, "id")), id) == 0)
			return p;
	return NULL;
}

/* Every vector has its spec next to the fixtures and an entry in parity.json. */
static void test_cli_vectors_cli__every_vector_has_a_spec(void **state)
{
	json_t *vectors = json_object_get(suite.vectors, "vectors"), *v;
	char path[PATH_MAX];
	size_t i;

	(void)state;
	assert_int_equal(json_array_size(vectors),
	                 json_integer_value(json_object_get(suite.vectors, "count")));
	json_array_foreach (vectors, i, v) {
		const char *id = member_string(v, "id");

		spec_path(path, sizeof(path), id);
		if (access(path, R_OK) != 0)
			fail_msg("vector %s has no spec %s", id, path);
		if (!parity_for(id))
			fail_msg("vector %s has no entry in parity.json", id);
	}
}

/* ---- set-up and the test table -------------------------------------------------------------- */

static json_t *load_json(const char *data, const char *name)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *doc;

	snprintf(path, sizeof(path), "%s/vectors/%s", data, name);
	doc = json_load_file(path, 0, &jerr);
	if (!doc)
		fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
	return doc;
}

static int resolve(const char *path, char *out)
{
	if (realpath(path, out))
		return 0;
	perror(path);
	return -1;
}

/* HOME is the fixtures (as when recording); the working directory is a fresh empty one. */
static int suite_load(void)
{
	const char *data = getenv("DTN_TEST_DATA"), *tool = getenv("DTN_BUILD");
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/fixtures", data ? data : "tests/data");
	if (resolve(path, suite.fixtures) < 0 ||
	    resolve(tool ? tool : "build/dtn-build", suite.tool))
		return -1;
	suite.vectors = load_json(data ? data : "tests/data", "image-vectors.json");
	suite.parity = load_json(data ? data : "tests/data", "parity.json");
	if (!suite.vectors || !suite.parity)
		return -1;
	snprintf(suite.workdir, sizeof(suite.workdir), "%s/dtn-vectors-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(suite.workdir) || chdir(suite.workdir) < 0 ||
	    setenv("HOME", suite.fixtures, 1) < 0) {
		perror(suite.workdir);
		return -1;
	}
	return 0;
}

static void suite_unload(void)
{
	if (chdir("/") == 0 && suite.workdir[0])
		rmdir(suite.workdir);
	json_decref(suite.vectors);
	json_decref(suite.parity);
}

static char *test_name(const char *id)
{
	size_t len = strlen("test_cli_vectors_cli__") + strlen(id) + 1;
	char *name = malloc(len);

	assert_non_null(name);
	snprintf(name, len, "test_cli_vectors_cli__%s", id);
	return name;
}

/* One line saying how the vectors divide, like the C API runner's. */
static void print_summary(size_t n)
{
	int exact = 0, corrected = 0, yaml_text = 0, other = 0;
	size_t i;
	json_t *p;

	json_array_foreach (suite.parity, i, p) {
		const char *kind = json_string_value(json_object_get(p, "parity"));

		if (!kind)
			continue;
		if (strcmp(kind, "exact") == 0)
			exact++;
		else if (strncmp(kind, "correction-", 11) == 0)
			corrected++;
		else if (strcmp(kind, "yaml-text") == 0)
			yaml_text++;
		else
			other++;
	}
	printf("vectors (CLI): %zu run, %d exact, %d correction%s, %d yaml-text, %d not "
	       "expressible in C\n",
	       n, exact, corrected, corrected == 1 ? "" : "s", yaml_text, other);
}

int main(void)
{
	struct CMUnitTest *tests = NULL;
	struct vector_case *cases = NULL;
	json_t *vectors, *v;
	size_t i, n = 1;
	int rc = 1;

	if (suite_load() < 0)
		goto out;
	vectors = json_object_get(suite.vectors, "vectors");
	tests = calloc(json_array_size(vectors) + 1, sizeof(*tests));
	cases = calloc(json_array_size(vectors) + 1, sizeof(*cases));
	if (!tests || !cases)
		goto out;
	tests[0] =
	    (struct CMUnitTest)cmocka_unit_test(test_cli_vectors_cli__every_vector_has_a_spec);
	json_array_foreach (vectors, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		json_t *p = id ? parity_for(id) : NULL;

		if (!p)
			continue; /* reported by the first test */
		cases[n] = (struct vector_case){.id = id, .vector = v, .parity = p};
		tests[n] = (struct CMUnitTest){
		    .name = test_name(id), .test_func = test_vector, .initial_state = &cases[n]};
		n++;
	}
	rc = _cmocka_run_group_tests("cli_vectors_cli", tests, n, NULL, NULL);
	print_summary(n - 1);
	for (i = 1; i < n; i++)
		free((char *)tests[i].name);
out:
	free(tests);
	free(cases);
	suite_unload();
	return rc;
}
