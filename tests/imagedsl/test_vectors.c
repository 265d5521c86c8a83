/*
 * test_vectors.c - the image vectors recorded from the Daytona TypeScript SDK, replayed through
 * the C DSL.
 *
 * Each vector is a list of SDK calls with the Dockerfile and contexts the SDK produced (or the
 * error it threw). parity.json says, per vector, whether dtn must give exactly that, a corrected
 * result (with the corrected expectation), or cannot be asked the same question through the C
 * API at all (a number where the SDK expects a string). One cmocka test per vector, so a failure
 * names the vector; the message shows what was expected and what came out.
 *
 * The vectors were recorded with the fixtures directory as both the working directory and HOME;
 * the test sets up the same and replaces the {{FIXTURES}} token with the fixtures' real path.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "dtn_image.h"

#define PLACEHOLDER "{{FIXTURES}}"

/* One vector to run: borrowed from the loaded documents. */
struct vector_case {
	const char *id;
	json_t *vector;
	json_t *parity;
};

static struct {
	char fixtures[PATH_MAX];
	json_t *vectors; /* image-vectors.json */
	json_t *parity;  /* parity.json */
} suite;

/* ---- small utilities ---------------------------------------------------------------------- */

static const struct {
	const char *name;
	int code;
} codes[] = {
    {"DTN_OK", DTN_OK},
    {"DTN_ERROR", DTN_ERROR},
    {"DTN_ENOMEM", DTN_ENOMEM},
    {"DTN_EINVAL", DTN_EINVAL},
    {"DTN_ENOTFOUND", DTN_ENOTFOUND},
    {"DTN_EIO", DTN_EIO},
    {"DTN_ESYNTAX", DTN_ESYNTAX},
    {"DTN_EUSER", DTN_EUSER},
    {"DTN_EOUTSIDE", DTN_EOUTSIDE},
    {"DTN_EUNSUPPORTED", DTN_EUNSUPPORTED},
};

static const char *code_name(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return codes[i].name;
	return "(unknown code)";
}

static int code_value(const char *name)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(codes[i].name, name) == 0)
			return codes[i].code;
	fail_msg("parity.json names an unknown error code %s", name);
	return 1;
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

/* A JSON string value with the placeholder substituted. */
static json_t *json_substituted(const char *s)
{
	char *text = substitute(s);
	json_t *v = json_string(text);

	free(text);
	assert_non_null(v);
	return v;
}

static const char *member_string(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("expected a string \"%s\" in the test data", key);
	return json_string_value(v);
}

/* A growable NULL-terminated string list, the shape every list argument of the DSL takes. */
struct strlist {
	const char **v;
	size_t n;
};

static void strlist_push(struct strlist *l, const char *s)
{
	const char **v = realloc(l->v, (l->n + 2) * sizeof(*v));

	assert_non_null(v);
	v[l->n++] = s;
	v[l->n] = NULL;
	l->v = v;
}

/* An empty list is still a list: the DSL gets a lone NULL, never a NULL pointer. */
static const char *const *strlist_get(struct strlist *l)
{
	if (!l->v) {
		l->v = calloc(1, sizeof(*l->v));
		assert_non_null(l->v);
	}
	return l->v;
}

/* Strings of an arbitrarily nested JSON list, depth first (the SDK flattens pip packages). */
static void strlist_flatten(struct strlist *l, json_t *value, const char *id)
{
	size_t i;
	json_t *item;

	if (json_is_string(value)) {
		strlist_push(l, json_string_value(value));
		return;
	}
	if (!json_is_array(value))
		fail_msg("vector %s: a list item is not a string; not expressible in C", id);
	json_array_foreach (value, i, item)
		strlist_flatten(l, item, id);
}

/* A flat list of strings; anything else cannot be said through the C API. */
static void strlist_from(struct strlist *l, json_t *value, const char *id)
{
	size_t i;
	json_t *item;

	if (!json_is_array(value))
		fail_msg("vector %s: expected a list argument; not expressible in C", id);
	json_array_foreach (value, i, item) {
		if (!json_is_string(item))
			fail_msg("vector %s: a list item is not a string; not expressible in C",
			         id);
		strlist_push(l, json_string_value(item));
	}
}

/* ---- replaying the calls -------------------------------------------------------------------- */

/* Everything a replayed call allocates, freed after the image is checked. */
struct replay {
	const char *id;
	struct strlist lists[16];
	size_t nlists;
};

static struct strlist *replay_list(struct replay *r)
{
	assert_true(r->nlists < sizeof(r->lists) / sizeof(r->lists[0]));
	return &r->lists[r->nlists++];
}

static void replay_free(struct replay *r)
{
	for (size_t i = 0; i < r->nlists; i++)
		free(r->lists[i].v);
}

/* A positional argument; JSON null (and a missing one) means "omitted". */
static json_t *arg(json_t *call, size_t i)
{
	json_t *v = json_array_get(json_object_get(call, "args"), i);

	return json_is_null(v) ? NULL : v;
}

static const char *arg_string(struct replay *r, json_t *call, size_t i)
{
	json_t *v = arg(call, i);

	if (!v)
		return NULL;
	if (!json_is_string(v))
		fail_msg("vector %s: argument %zu is not a string; not expressible in C", r->id, i);
	return json_string_value(v);
}

static bool opt_bool(json_t *opts, const char *key)
{
	return json_is_true(json_object_get(opts, key));
}

/* The SDK's pip options object as dtn_pip_opts; NULL when the call has none. */
static const dtn_pip_opts *pip_opts(struct replay *r, json_t *o, dtn_pip_opts *opts)
{
	const char *key;
	json_t *v;

	if (!o)
		return NULL;
	*opts = (dtn_pip_opts){.version = DTN_OPTS_VERSION};
	json_object_foreach (o, key, v) {
		if (strcmp(key, "findLinks") == 0) {
			struct strlist *l = replay_list(r);
			strlist_from(l, v, r->id);
			opts->find_links = strlist_get(l);
		} else if (strcmp(key, "extraIndexUrls") == 0) {
			struct strlist *l = replay_list(r);
			strlist_from(l, v, r->id);
			opts->extra_index_urls = strlist_get(l);
		} else if (strcmp(key, "optionalDependencies") == 0) {
			struct strlist *l = replay_list(r);
			strlist_from(l, v, r->id);
			opts->optional_dependencies = strlist_get(l);
		} else if (strcmp(key, "indexUrl") == 0) {
			opts->index_url = json_string_value(v);
		} else if (strcmp(key, "extraOptions") == 0) {
			opts->extra_options = json_string_value(v);
		} else if (strcmp(key, "pre") == 0) {
			opts->pre = json_is_true(v);
		} else {
			fail_msg("vector %s: unknown pip option %s", r->id, key);
		}
	}
	return opts;
}

static dtn_image *construct(struct replay *r, json_t *call)
{
	const char *method = member_string(call, "method");
	json_t *opts;

	if (strcmp(method, "base") == 0)
		return dtn_image_base(arg_string(r, call, 0));
	if (strcmp(method, "debianSlim") == 0)
		return dtn_image_debian_slim(arg_string(r, call, 0));
	if (strcmp(method, "fromDockerfile") == 0) {
		opts = arg(call, 1);
		return dtn_image_from_dockerfile(
		    arg_string(r, call, 0), &(dtn_dockerfile_opts){
		                                .version = DTN_OPTS_VERSION,
		                                .strict_context = opt_bool(opts, "strictContext"),
		                            });
	}
	fail_msg("vector %s: the first call %s is not a constructor", r->id, method);
	return NULL;
}

static void step_pip(struct replay *r, dtn_image *img, json_t *call)
{
	struct strlist *packages = replay_list(r);
	dtn_pip_opts opts;

	strlist_flatten(packages, arg(call, 0), r->id);
	dtn_image_pip_install(img, strlist_get(packages), pip_opts(r, arg(call, 1), &opts));
}

static void step_requirements(struct replay *r, dtn_image *img, json_t *call)
{
	dtn_pip_opts opts;

	dtn_image_pip_install_from_requirements(img, arg_string(r, call, 0),
	                                        pip_opts(r, arg(call, 1), &opts));
}

static void step_pyproject(struct replay *r, dtn_image *img, json_t *call)
{
	dtn_pip_opts opts;

	dtn_image_pip_install_from_pyproject(img, arg_string(r, call, 0),
	                                     pip_opts(r, arg(call, 1), &opts));
}

static void step_add_file(struct replay *r, dtn_image *img, json_t *call)
{
	dtn_image_add_local_file(img, arg_string(r, call, 0), arg_string(r, call, 1));
}

static void step_add_dir(struct replay *r, dtn_image *img, json_t *call)
{
	dtn_image_add_local_dir(img, arg_string(r, call, 0), arg_string(r, call, 1), NULL);
}

/* Variadic in the SDK: a string is one command, a list is the quoted-words form. */
static void step_run(struct replay *r, dtn_image *img, json_t *call)
{
	json_t *args = json_object_get(call, "args"), *item;
	size_t i;

	json_array_foreach (args, i, item) {
		struct strlist *l = replay_list(r);

		if (json_is_string(item)) {
			strlist_push(l, json_string_value(item));
			dtn_image_run_commands(img, strlist_get(l));
		} else {
			strlist_from(l, item, r->id);
			dtn_image_run_words(img, strlist_get(l));
		}
	}
}

static void step_env(struct replay *r, dtn_image *img, json_t *call)
{
	const char *key;
	json_t *value;

	json_object_foreach (arg(call, 0), key, value) {
		if (!json_is_string(value))
			fail_msg("vector %s: ENV %s is not a string; not expressible in C", r->id,
			         key);
		dtn_image_env(img, key, json_string_value(value));
	}
}

static void step_workdir(struct replay *r, dtn_image *img, json_t *call)
{
	dtn_image_workdir(img, arg_string(r, call, 0));
}

static void step_entrypoint(struct replay *r, dtn_image *img, json_t *call)
{
	struct strlist *l = replay_list(r);

	strlist_from(l, arg(call, 0), r->id);
	dtn_image_entrypoint(img, strlist_get(l));
}

static void step_cmd(struct replay *r, dtn_image *img, json_t *call)
{
	struct strlist *l = replay_list(r);

	strlist_from(l, arg(call, 0), r->id);
	dtn_image_cmd(img, strlist_get(l));
}

static void step_dockerfile_commands(struct replay *r, dtn_image *img, json_t *call)
{
	struct strlist *l = replay_list(r);

	strlist_from(l, arg(call, 0), r->id);
	dtn_image_dockerfile_commands(img, strlist_get(l),
	                              &(dtn_dockerfile_opts){
	                                  .version = DTN_OPTS_VERSION,
	                                  .context_dir = arg_string(r, call, 1),
	                                  .strict_context = opt_bool(arg(call, 2), "strictContext"),
	                              });
}

static const struct {
	const char *method;
	void (*apply)(struct replay *r, dtn_image *img, json_t *call);
} steps[] = {
    {"pipInstall", step_pip},
    {"pipInstallFromRequirements", step_requirements},
    {"pipInstallFromPyproject", step_pyproject},
    {"addLocalFile", step_add_file},
    {"addLocalDir", step_add_dir},
    {"runCommands", step_run},
    {"env", step_env},
    {"workdir", step_workdir},
    {"entrypoint", step_entrypoint},
    {"cmd", step_cmd},
    {"dockerfileCommands", step_dockerfile_commands},
};

static void apply_step(struct replay *r, dtn_image *img, json_t *call)
{
	const char *method = member_string(call, "method");

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (strcmp(steps[i].method, method) == 0) {
			steps[i].apply(r, img, call);
			return;
		}
	}
	fail_msg("vector %s: no C call for the SDK method %s", r->id, method);
}

static dtn_image *replay_calls(struct replay *r, json_t *calls)
{
	dtn_image *img = construct(r, json_array_get(calls, 0));

	assert_non_null(img);
	for (size_t i = 1; i < json_array_size(calls); i++)
		apply_step(r, img, json_array_get(calls, i));
	return img;
}

/* ---- expected and actual results ------------------------------------------------------------ */

static json_t *context_json(const char *source, const char *archive_path, const char *kind)
{
	json_t *c = json_object();

	assert_non_null(c);
	json_object_set_new(c, "source", json_substituted(source));
	json_object_set_new(c, "archive_path", json_substituted(archive_path));
	json_object_set_new(c, "kind", json_string(kind));
	return c;
}

/* The SDK's own result, with the kinds that parity.json adds for exact vectors. */
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
 * the recorded vector when it is exact and from parity.json when dtn corrects the SDK.
 */
static json_t *expected_result(const struct vector_case *vc)
{
	bool exact = strcmp(member_string(vc->parity, "parity"), "exact") == 0;
	json_t *out = json_object(), *error = json_object_get(vc->parity, "error");
	json_t *source = exact ? vc->vector : vc->parity;

	assert_non_null(out);
	if (error) {
		if (exact && !json_object_get(vc->vector, "error"))
			fail_msg("vector %s: parity.json expects an error the SDK did not throw",
			         vc->id);
		json_object_set(out, "error", error);
		return out;
	}
	json_object_set_new(out, "dockerfile",
	                    json_substituted(member_string(source, "dockerfile")));
	json_object_set_new(out, "contexts",
	                    exact ? expected_exact_contexts(vc) : expected_corrected_contexts(vc));
	return out;
}

static json_t *actual_contexts(const dtn_image *img)
{
	json_t *out = json_array();

	assert_non_null(out);
	for (size_t i = 0; i < dtn_image_context_count(img); i++) {
		const dtn_context *c = dtn_image_context(img, i);
		json_t *o;

		assert_non_null(c);
		o = json_pack("{s:s?, s:s?, s:s?}", "source", c->source, "archive_path",
		              c->archive_path, "kind", dtn_context_kind_name(c->kind));
		assert_non_null(o);
		json_array_append_new(out, o);
	}
	return out;
}

/* A value as one line of JSON, for messages; the caller frees it. */
static char *show(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(s);
	return s;
}

static bool check_dockerfile(const char *id, json_t *expected, const char *actual)
{
	const char *want = json_string_value(expected);
	json_t *got = json_string(actual);
	char *a, *b;
	size_t at = 0;

	if (strcmp(want, actual) == 0) {
		json_decref(got);
		return true;
	}
	while (want[at] && want[at] == actual[at])
		at++;
	a = show(expected);
	b = show(got);
	print_error("vector %s: Dockerfile differs at byte %zu\n", id, at);
	print_error("  expected: %s\n", a);
	print_error("  actual:   %s\n", b);
	free(a);
	free(b);
	json_decref(got);
	return false;
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

static bool check_contexts(const char *id, json_t *expected, json_t *actual)
{
	if (json_equal(expected, actual))
		return true;
	print_error("vector %s: contexts differ\n", id);
	print_list("expected", expected);
	print_list("actual", actual);
	return false;
}

static bool check_success(const char *id, json_t *expected, const dtn_image *img)
{
	char text[4096];
	json_t *contexts;
	bool ok;

	if (dtn_image_status(img) < 0) {
		dtn_error_format(dtn_image_error(img), text, sizeof(text));
		print_error("vector %s: expected success, got %s: %s\n", id,
		            code_name(dtn_image_status(img)), text);
		return false;
	}
	ok = check_dockerfile(id, json_object_get(expected, "dockerfile"),
	                      dtn_image_dockerfile(img));
	contexts = actual_contexts(img);
	ok = check_contexts(id, json_object_get(expected, "contexts"), contexts) && ok;
	json_decref(contexts);
	return ok;
}

/* Where an error about a Dockerfile line must point: the file and its 1-based line. */
static bool check_error_line(const char *id, json_t *want, const dtn_error *err)
{
	json_t *file = json_object_get(want, "dockerfile");
	json_int_t line = json_integer_value(json_object_get(want, "line"));

	if (!file)
		return true;
	if (strstr(err->file, json_string_value(file)) && err->line == line)
		return true;
	print_error("vector %s: expected the error at %s line %d, got file \"%s\" line %d\n", id,
	            json_string_value(file), (int)line, err->file, err->line);
	return false;
}

static bool check_error(const char *id, json_t *want, const dtn_image *img)
{
	const dtn_error *err = dtn_image_error(img);
	int code = code_value(member_string(want, "code"));
	const char *contains = member_string(want, "contains");
	char text[4096];

	dtn_error_format(err, text, sizeof(text));
	if (dtn_image_status(img) != code) {
		print_error("vector %s: expected %s, got %s (%s)\n", id, code_name(code),
		            code_name(dtn_image_status(img)), text);
		return false;
	}
	if (err->code != code || !strstr(text, contains)) {
		print_error("vector %s: expected a %s error naming \"%s\", got %s: \"%s\"\n", id,
		            code_name(code), contains, code_name(err->code), text);
		return false;
	}
	return check_error_line(id, want, err);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_vector(void **state)
{
	const struct vector_case *vc = *state;
	struct replay r = {.id = vc->id};
	json_t *expected = expected_result(vc), *error = json_object_get(expected, "error");
	dtn_image *img = replay_calls(&r, json_object_get(vc->vector, "calls"));
	bool ok = error ? check_error(vc->id, error, img) : check_success(vc->id, expected, img);

	dtn_image_free(img);
	replay_free(&r);
	json_decref(expected);
	if (!ok)
		fail_msg("vector %s (%s): the C API result differs from the expectation", vc->id,
		         member_string(vc->parity, "parity"));
}

static json_t *parity_for(const char *id)
{
	size_t i;
	json_t *p;

	json_array_foreach (suite.parity, i, p)
		if (strcmp(member_string(p, "id"), id) == 0)
			return p;
	return NULL;
}

static bool parity_kind_known(const char *kind)
{
	static const char *const kinds[] = {"exact", "yaml-text", "c-not-expressible"};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return true;
	return strncmp(kind, "correction-", 11) == 0;
}

/* Every vector has exactly one parity entry that says what to expect, and no entry is stray. */
static void test_imagedsl_vectors__parity_covers_every_vector(void **state)
{
	json_t *vectors = json_object_get(suite.vectors, "vectors"), *v, *p;
	size_t i;

	(void)state;
	assert_int_equal(json_array_size(vectors),
	                 json_integer_value(json_object_get(suite.vectors, "count")));
	assert_int_equal(json_array_size(suite.parity), json_array_size(vectors));
	json_array_foreach (vectors, i, v) {
		const char *id = member_string(v, "id");

		p = parity_for(id);
		if (!p)
			fail_msg("vector %s has no entry in parity.json", id);
		assert_ptr_equal(p, json_array_get(suite.parity, i));
		if (!parity_kind_known(member_string(p, "parity")))
			fail_msg("vector %s: unknown parity %s", id, member_string(p, "parity"));
		if (json_object_get(v, "error") && !json_object_get(p, "error") &&
		    !json_object_get(p, "dockerfile"))
			fail_msg("vector %s: the SDK threw, parity.json says nothing to expect",
			         id);
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

/* Loads the data and enters the fixtures as the SDK's recording did (cwd and HOME). */
static int suite_load(void)
{
	const char *data = getenv("DTN_TEST_DATA");
	char path[PATH_MAX];

	if (!data)
		data = "tests/data";
	snprintf(path, sizeof(path), "%s/fixtures", data);
	if (!realpath(path, suite.fixtures)) {
		perror(path);
		return -1;
	}
	suite.vectors = load_json(data, "image-vectors.json");
	suite.parity = load_json(data, "parity.json");
	if (!suite.vectors || !suite.parity)
		return -1;
	if (chdir(suite.fixtures) < 0 || setenv("HOME", suite.fixtures, 1) < 0) {
		perror(suite.fixtures);
		return -1;
	}
	return 0;
}

/* Which vectors the C API can replay, and how they are counted in the summary. */
struct tally {
	int exact, corrected, yaml_only;
};

static bool runnable_in_c(const char *id, const char *parity, struct tally *t)
{
	if (!parity)
		return true; /* the coverage test reports the broken entry */
	if (strcmp(parity, "yaml-text") == 0 || strcmp(parity, "c-not-expressible") == 0) {
		printf("vector %s: not expressible through the C API (%s); replayed through the "
		       "CLI only\n",
		       id, parity);
		t->yaml_only++;
		return false;
	}
	if (strcmp(parity, "exact") == 0)
		t->exact++;
	else
		t->corrected++;
	return true;
}

static char *test_name(const char *id)
{
	size_t len = strlen("test_imagedsl_vectors__") + strlen(id) + 1;
	char *name = malloc(len);

	assert_non_null(name);
	snprintf(name, len, "test_imagedsl_vectors__%s", id);
	return name;
}

int main(void)
{
	json_t *vectors, *v;
	struct CMUnitTest *tests;
	struct vector_case *cases;
	struct tally t = {0};
	size_t i, n = 1;
	int rc;

	if (suite_load() < 0)
		return 1;
	vectors = json_object_get(suite.vectors, "vectors");
	tests = calloc(json_array_size(vectors) + 1, sizeof(*tests));
	cases = calloc(json_array_size(vectors) + 1, sizeof(*cases));
	if (!tests || !cases)
		return 1;
	tests[0] =
	    (struct CMUnitTest)cmocka_unit_test(test_imagedsl_vectors__parity_covers_every_vector);
	json_array_foreach (vectors, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		json_t *p = id ? parity_for(id) : NULL;

		if (!p || !runnable_in_c(id, json_string_value(json_object_get(p, "parity")), &t))
			continue;
		cases[n] = (struct vector_case){.id = id, .vector = v, .parity = p};
		tests[n] = (struct CMUnitTest){
		    .name = test_name(id), .test_func = test_vector, .initial_state = &cases[n]};
		n++;
	}
	rc = _cmocka_run_group_tests("imagedsl_vectors", tests, n, NULL, NULL);
	printf("vectors (C API): %d exact, %d correction%s, %d not expressible in C\n", t.exact,
	       t.corrected, t.corrected == 1 ? "" : "s", t.yaml_only);
	for (i = 1; i < n; i++)
		free((char *)tests[i].name);
	free(tests);
	free(cases);
	json_decref(suite.vectors);
	json_decref(suite.parity);
	return rc;
}
