/*
 * vectors.c - the recorded SDK vectors and their expectations, for the runners that replay them
 * through the C API and through dtn-build.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vectors.h"

#define PLACEHOLDER "{{FIXTURES}}"

static struct {
	char fixtures[PATH_MAX];
	json_t *vectors; /* image-vectors.json */
	json_t *parity;  /* parity.json */
} suite;

/* ---- the data ------------------------------------------------------------------------------- */

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

int tv_load(void)
{
	const char *data = tu_data_dir();
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/fixtures", data);
	if (!realpath(path, suite.fixtures)) {
		perror(path);
		return -1;
	}
	suite.vectors = load_json(data, "image-vectors.json");
	suite.parity = load_json(data, "parity.json");
	if (!suite.vectors || !suite.parity)
		return -1;
	if (setenv("HOME", suite.fixtures, 1) < 0) {
		perror("HOME");
		return -1;
	}
	return 0;
}

void tv_unload(void)
{
	json_decref(suite.vectors);
	json_decref(suite.parity);
	suite.vectors = suite.parity = NULL;
}

const char *tv_fixtures(void)
{
	return suite.fixtures;
}

json_t *tv_vectors(void)
{
	return json_object_get(suite.vectors, "vectors");
}

json_t *tv_parity(void)
{
	return suite.parity;
}

/* Tolerates entries without an id: the runners' data checks report those. */
json_t *tv_parity_for(const char *id)
{
	size_t i;
	json_t *p;

	json_array_foreach (suite.parity, i, p)
		if (json_is_string(json_object_get(p, "id")) &&
		    strcmp(json_string_value(json_object_get(p, "id")), id) == 0)
			return p;
	return NULL;
}

tv_kind tv_parity_kind(json_t *parity)
{
	const char *kind = json_string_value(json_object_get(parity, "parity"));

	if (!kind)
		return TV_UNKNOWN;
	if (strcmp(kind, "exact") == 0)
		return TV_EXACT;
	if (strncmp(kind, "correction-", 11) == 0)
		return TV_CORRECTION;
	if (strcmp(kind, "yaml-text") == 0)
		return TV_YAML_TEXT;
	if (strcmp(kind, "c-not-expressible") == 0)
		return TV_C_NOT_EXPRESSIBLE;
	return TV_UNKNOWN;
}

void tv_assert_count(void)
{
	assert_int_equal(json_array_size(tv_vectors()),
	                 json_integer_value(json_object_get(suite.vectors, "count")));
}

const char *tv_member_string(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("expected a string \"%s\" in the test data", key);
	return json_string_value(v);
}

/* ---- expectations --------------------------------------------------------------------------- */

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
static json_t *expected_exact_contexts(const tv_case *vc)
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
		                      context_json(tv_member_string(c, "sourcePath"),
		                                   tv_member_string(c, "archivePath"),
		                                   json_string_value(json_array_get(kinds, i))));
	return out;
}

static json_t *expected_corrected_contexts(const tv_case *vc)
{
	json_t *out = json_array(), *c;
	size_t i;

	assert_non_null(out);
	json_array_foreach (json_object_get(vc->parity, "contexts"), i, c)
		json_array_append_new(out, context_json(tv_member_string(c, "source"),
		                                        tv_member_string(c, "archive_path"),
		                                        tv_member_string(c, "kind")));
	return out;
}

json_t *tv_expected_result(const tv_case *vc)
{
	bool exact = strcmp(tv_member_string(vc->parity, "parity"), "exact") == 0;
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
	                    json_substituted(tv_member_string(source, "dockerfile")));
	json_object_set_new(out, "contexts",
	                    exact ? expected_exact_contexts(vc) : expected_corrected_contexts(vc));
	return out;
}

void tv_error_want_read(tv_error_want *out, json_t *error)
{
	json_t *dockerfile = json_object_get(error, "dockerfile");

	*out = (tv_error_want){
	    .code = tv_member_string(error, "code"),
	    .contains = tv_member_string(error, "contains"),
	    .dockerfile = json_string_value(dockerfile),
	    .line = dockerfile ? (long)json_integer_value(json_object_get(error, "line")) : 0,
	};
}

/* ---- showing differences -------------------------------------------------------------------- */

/* A value as one line of JSON; the caller frees it. */
static char *show(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(s);
	return s;
}

char *tv_show_text(const char *text)
{
	json_t *v = json_stringn_nocheck(text, strlen(text));
	char *s;

	assert_non_null(v);
	s = show(v);
	json_decref(v);
	return s;
}

bool tv_check_text(const char *id, const char *label, json_t *expected, const char *actual)
{
	const char *want = json_string_value(expected);
	char *a, *b;
	size_t at = 0;

	if (strcmp(want, actual) == 0)
		return true;
	while (want[at] && want[at] == actual[at])
		at++;
	a = show(expected);
	b = tv_show_text(actual);
	print_error("vector %s: %s differs at byte %zu\n", id, label, at);
	print_error("  expected: %s\n", a);
	print_error("  actual:   %s\n", b);
	free(a);
	free(b);
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

bool tv_check_contexts(const char *id, json_t *expected, json_t *actual)
{
	if (json_equal(expected, actual))
		return true;
	print_error("vector %s: contexts differ\n", id);
	print_list("expected", expected);
	print_list("actual", actual);
	return false;
}

void tv_finish(const tv_case *vc, bool ok, const char *what)
{
	if (!ok)
		fail_msg("vector %s (%s): %s differs from the expectation", vc->id,
		         tv_member_string(vc->parity, "parity"), what);
}

/* ---- the test table ------------------------------------------------------------------------- */

static char *test_name(const char *group, const char *id)
{
	size_t len = strlen("test_") + strlen(group) + strlen("__") + strlen(id) + 1;
	char *name = malloc(len);

	if (name)
		snprintf(name, len, "test_%s__%s", group, id);
	return name;
}

/*
 * One test per vector that has a parity entry and passes the filter, after tests[0]. Returns
 * how many tests the table holds, or 0 when a name could not be allocated.
 */
static size_t fill_table(struct CMUnitTest *tests, tv_case *cases, const char *group,
                         CMUnitTestFunction each, tv_filter keep, void *payload, tv_counts *counts)
{
	size_t i, n = 1;
	json_t *v;

	json_array_foreach (tv_vectors(), i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		json_t *p = id ? tv_parity_for(id) : NULL;

		if (!p)
			continue; /* the data check reports it */
		cases[n] = (tv_case){.id = id, .vector = v, .parity = p};
		counts->kinds[tv_parity_kind(p)]++;
		if (keep && !keep(&cases[n], payload))
			continue;
		tests[n] = (struct CMUnitTest){
		    .name = test_name(group, id), .test_func = each, .initial_state = &cases[n]};
		if (!tests[n].name)
			return 0;
		n++;
	}
	return n;
}

int tv_run_tests(const char *group, struct CMUnitTest first, CMUnitTestFunction each,
                 tv_filter keep, void *payload, tv_counts *counts, size_t *out_run)
{
	size_t size = json_array_size(tv_vectors()) + 1, n, i;
	struct CMUnitTest *tests = calloc(size, sizeof(*tests));
	tv_case *cases = calloc(size, sizeof(*cases));
	int rc = 1;

	*counts = (tv_counts){{0}};
	*out_run = 0;
	if (!tests || !cases)
		goto out;
	tests[0] = first;
	if (!(n = fill_table(tests, cases, group, each, keep, payload, counts)))
		goto out;
	rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	*out_run = n - 1;
out:
	for (i = 1; tests && i < size; i++)
		free((char *)tests[i].name);
	free(tests);
	free(cases);
	return rc;
}
