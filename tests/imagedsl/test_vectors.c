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
#include "vectors.h"

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
	const char *method = tv_member_string(call, "method");
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
	const char *method = tv_member_string(call, "method");

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
	ok = tv_check_text(id, "Dockerfile", json_object_get(expected, "dockerfile"),
	                   dtn_image_dockerfile(img));
	contexts = actual_contexts(img);
	ok = tv_check_contexts(id, json_object_get(expected, "contexts"), contexts) && ok;
	json_decref(contexts);
	return ok;
}

/* Where an error about a Dockerfile line must point: the file and its 1-based line. */
static bool check_error_line(const char *id, const tv_error_want *want, const dtn_error *err)
{
	if (!want->dockerfile)
		return true;
	if (strstr(err->file, want->dockerfile) && err->line == want->line)
		return true;
	print_error("vector %s: expected the error at %s line %ld, got file \"%s\" line %d\n", id,
	            want->dockerfile, want->line, err->file, err->line);
	return false;
}

static bool check_error(const char *id, json_t *error, const dtn_image *img)
{
	const dtn_error *err = dtn_image_error(img);
	tv_error_want want;
	char text[4096];
	int code;

	tv_error_want_read(&want, error);
	code = code_value(want.code);
	dtn_error_format(err, text, sizeof(text));
	if (dtn_image_status(img) != code) {
		print_error("vector %s: expected %s, got %s (%s)\n", id, code_name(code),
		            code_name(dtn_image_status(img)), text);
		return false;
	}
	if (err->code != code || !strstr(text, want.contains)) {
		print_error("vector %s: expected a %s error naming \"%s\", got %s: \"%s\"\n", id,
		            code_name(code), want.contains, code_name(err->code), text);
		return false;
	}
	return check_error_line(id, &want, err);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_vector(void **state)
{
	const tv_case *vc = *state;
	struct replay r = {.id = vc->id};
	json_t *expected = tv_expected_result(vc), *error = json_object_get(expected, "error");
	dtn_image *img = replay_calls(&r, json_object_get(vc->vector, "calls"));
	bool ok = error ? check_error(vc->id, error, img) : check_success(vc->id, expected, img);

	dtn_image_free(img);
	replay_free(&r);
	json_decref(expected);
	tv_finish(vc, ok, "the C API result");
}

/* Every vector has exactly one parity entry that says what to expect, and no entry is stray. */
static void test_imagedsl_vectors__parity_covers_every_vector(void **state)
{
	json_t *vectors = tv_vectors(), *v, *p;
	size_t i;

	(void)state;
	tv_assert_count();
	assert_int_equal(json_array_size(tv_parity()), json_array_size(vectors));
	json_array_foreach (vectors, i, v) {
		const char *id = tv_member_string(v, "id");

		p = tv_parity_for(id);
		if (!p)
			fail_msg("vector %s has no entry in parity.json", id);
		assert_ptr_equal(p, json_array_get(tv_parity(), i));
		if (tv_parity_kind(p) == TV_UNKNOWN)
			fail_msg("vector %s: unknown parity %s", id, tv_member_string(p, "parity"));
		if (json_object_get(v, "error") && !json_object_get(p, "error") &&
		    !json_object_get(p, "dockerfile"))
			fail_msg("vector %s: the SDK threw, parity.json says nothing to expect",
			         id);
	}
}

/* ---- set-up and the test table -------------------------------------------------------------- */

/* Vectors the C API cannot be asked are replayed by the CLI runner only. */
static bool runnable_in_c(const tv_case *vc, void *payload)
{
	tv_kind kind = tv_parity_kind(vc->parity);

	(void)payload;
	if (kind != TV_YAML_TEXT && kind != TV_C_NOT_EXPRESSIBLE)
		return true;
	printf("vector %s: not expressible through the C API (%s); replayed through the "
	       "CLI only\n",
	       vc->id, tv_member_string(vc->parity, "parity"));
	return false;
}

/* The vectors were recorded with the fixtures as the working directory and HOME. */
int main(void)
{
	tv_counts c;
	size_t run;
	int rc, corrected, not_c;

	if (tv_load() < 0)
		goto fail;
	if (chdir(tv_fixtures()) < 0) {
		perror(tv_fixtures());
		goto fail;
	}
	rc = tv_run_tests(
	    "imagedsl_vectors",
	    (struct CMUnitTest)cmocka_unit_test(test_imagedsl_vectors__parity_covers_every_vector),
	    test_vector, runnable_in_c, NULL, &c, &run);
	/* a broken parity kind is run as a correction; the data test reports it */
	corrected = c.kinds[TV_CORRECTION] + c.kinds[TV_UNKNOWN];
	not_c = c.kinds[TV_YAML_TEXT] + c.kinds[TV_C_NOT_EXPRESSIBLE];
	printf("vectors (C API): %d exact, %d correction%s, %d not expressible in C\n",
	       c.kinds[TV_EXACT], corrected, corrected == 1 ? "" : "s", not_c);
	tv_unload();
	return rc;
fail:
	tv_unload();
	return 1;
}
