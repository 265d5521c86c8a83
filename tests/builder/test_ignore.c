/*
 * test_ignore.c - .dockerignore rules: reading, pattern syntax, matching with Docker's
 * semantics, explanations, errors, the walker's questions, allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ignore.h"
#include "testutil.h"

/* A rule set read from `text` as a .dockerignore; fails the test when it does not load. */
static dtn__ignore *load(const char *text)
{
	dtn__ignore *ig;
	dtn_error err;

	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_new(&ig), 0);
	if (dtn__ignore_add_text(ig, text, strlen(text), ".dockerignore", &err) < 0)
		fail_msg("%s:%d: %s", err.file, err.line, err.message);
	return ig;
}

static int match(const dtn__ignore *ig, const char *path, int *rule)
{
	return dtn__ignore_match(ig, path, strlen(path), false, rule);
}

/* One case: the rules, a path, whether it is excluded and which rule (index) decides. */
typedef struct ig_case {
	const char *rules;
	const char *path;
	int excluded;
	int rule;
} ig_case;

static void run_cases(const ig_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dtn__ignore *ig = load(cases[i].rules);
		int rule = -2, got = match(ig, cases[i].path, &rule);

		if (got != cases[i].excluded || rule != cases[i].rule)
			fail_msg("rules \"%s\", path \"%s\": got %d by rule %d, want %d by rule %d",
				 cases[i].rules, cases[i].path, got, rule, cases[i].excluded,
				 cases[i].rule);
		dtn__ignore_free(ig);
	}
}

/* The examples of Docker's .dockerignore documentation. */
static void test_builder_ignore__docker_documentation(void **state)
{
	static const ig_case cases[] = {
		/* one level down only */
		{"*/temp*", "somedir/temporary.txt", 1, 0},
		{"*/temp*", "somedir/temp", 1, 0},
		{"*/temp*", "somedir/temp/inner.txt", 1, 0},
		{"*/temp*", "temporary.txt", 0, -1},
		{"*/temp*", "a/b/temporary.txt", 0, -1},
		/* two levels down only */
		{"*/*/temp*", "somedir/subdir/temporary.txt", 1, 0},
		{"*/*/temp*", "somedir/temporary.txt", 0, -1},
		/* one more character, at the root */
		{"temp?", "tempa", 1, 0},
		{"temp?", "tempb/x", 1, 0},
		{"temp?", "temp", 0, -1},
		{"temp?", "tempab", 0, -1},
		{"temp?", "d/tempa", 0, -1},
		/* any depth */
		{"**/*.go", "main.go", 1, 0},
		{"**/*.go", "cmd/tool/main.go", 1, 0},
		{"**/*.go", "cmd/tool/main.gox", 0, -1},
		/* an exception */
		{"*.md\n!README.md", "README.md", 0, 1},
		{"*.md\n!README.md", "CHANGES.md", 1, 0},
		{"*.md\n!README.md", "docs/CHANGES.md", 0, -1},
		/* the last rule that matches decides */
		{"*.md\n!README*.md\nREADME-secret.md", "README-secret.md", 1, 2},
		{"*.md\n!README*.md\nREADME-secret.md", "README-public.md", 0, 1},
		{"*.md\n!README*.md\nREADME-secret.md", "notes.md", 1, 0},
		{"*.md\nREADME-secret.md\n!README*.md", "README-secret.md", 0, 2},
	};

	(void)state;
	run_cases(cases, DTN__ARRAY_LEN(cases));
}

/* A rule matches a path or one of its parents; patterns are anchored at the root. */
static void test_builder_ignore__parents_and_anchoring(void **state)
{
	static const ig_case cases[] = {
		{"build", "build", 1, 0},
		{"build", "build/x/y", 1, 0},
		{"build", "src/build", 0, -1},
		{"build", "buildx", 0, -1},
		{"a/b", "a/b/c/d", 1, 0},
		{"a/b", "a", 0, -1},
		{"a/b", "a/bc", 0, -1},
		{"*.pyc", "x.pyc", 1, 0},
		{"*.pyc", "pkg/x.pyc", 0, -1},
		{"*", "anything/at/all", 1, 0},
		{"src/*.c", "src/a.c", 1, 0},
		{"src/*.c", "src/sub/a.c", 0, -1},
		{"src/*", "src/sub/a.c", 1, 0},
		{"?", "a/b", 1, 0},
		{"a?c", "a/c", 0, -1},
		{"x", "", 0, -1},
	};

	(void)state;
	run_cases(cases, DTN__ARRAY_LEN(cases));
}

/* `**` in front, in the middle and at the end, and Docker's plain-string shortcuts. */
static void test_builder_ignore__double_star(void **state)
{
	static const ig_case cases[] = {
		{"**", "a", 1, 0},
		{"**", "a/b/c", 1, 0},
		{"**/node_modules", "node_modules", 1, 0},
		{"**/node_modules", "web/app/node_modules/x/y.js", 1, 0},
		{"**/node_modules", "web/node_modulesx", 0, -1},
		{"a/**/b", "a/b", 1, 0},
		{"a/**/b", "a/x/y/b", 1, 0},
		{"a/**/b", "a/x/yb", 0, -1},
		{"a/**/b", "b", 0, -1},
		{"a/**", "a/x", 1, 0},
		{"a/**", "a/x/y", 1, 0},
		{"a/**", "a", 0, -1},
		{"a/**/*.txt", "a/b/c.txt", 1, 0},
		{"a/**/*.txt", "a/c.txt", 1, 0},
		{"**/*.txt/x", "d/e.txt/x", 1, 0},
		/* plain text then `**` compares bytes, across '/' */
		{"a**", "ab/c", 1, 0},
		{"a.b**", "a.bc", 1, 0},
		/* `**` then plain text is a plain suffix test */
		{"**foo", "a/xfoo", 1, 0},
		{"**/foo", "xfoo", 0, -1},
		/* in the middle without '/', `**` still stands for whole directories */
		{"a**b", "ab", 1, 0},
		{"a**b", "ax/b", 1, 0},
		{"a**b", "axb", 0, -1},
		/* `**` in an expression does not read a newline, `*` does */
		{"a/**/b*", "a/x\ny/bz", 0, -1},
		{"a/*/b*", "a/x\ny/bz", 1, 0},
		{"**/x", "a\nb/x", 1, 0},
	};

	(void)state;
	run_cases(cases, DTN__ARRAY_LEN(cases));
}

/* Character classes, escapes and `^`, as Docker's expression reads them. */
static void test_builder_ignore__classes_and_escapes(void **state)
{
	static const ig_case cases[] = {
		{"[Tt]humbs.db", "Thumbs.db", 1, 0},
		{"[Tt]humbs.db", "thumbs.db", 1, 0},
		{"[Tt]humbs.db", "xhumbs.db", 0, -1},
		{"file[0-9]", "file7", 1, 0},
		{"file[0-9]", "filex", 0, -1},
		{"[^a]x", "bx", 1, 0},
		{"[^a]x", "ax", 0, -1},
		{"[^a]x", "éx", 1, 0},
		/* '!' is an ordinary member, as in Go */
		{"[!a]x", "!x", 1, 0},
		{"[!a]x", "ax", 1, 0},
		{"[!a]x", "bx", 0, -1},
		{"[\\]]", "]", 1, 0},
		{"[a\\-z]", "-", 1, 0},
		{"[a\\-z]", "b", 0, -1},
		{"[[:digit:]]x", "5x", 1, 0},
		{"[[:digit:]]x", "ax", 0, -1},
		{"[[:^alpha:]]", "5", 1, 0},
		{"[[:^alpha:]]", "q", 0, -1},
		{"\\*.txt", "*.txt", 1, 0},
		{"\\*.txt", "a.txt", 0, -1},
		{"a\\?", "a?", 1, 0},
		{"a\\?", "ab", 0, -1},
		{"\\[x]", "[x]", 1, 0},
		{"a.b", "axb", 0, -1},
		{"a+b*", "a+bc", 1, 0},
		{"(x)*", "(x)y", 1, 0},
		{"$HOME*", "$HOME1", 1, 0},
		/* `^` is plain in a pattern without wildcards and an anchor in one with them */
		{"a^b", "a^b", 1, 0},
		{"a^b*", "a^bc", 0, -1},
		{"^ab*", "abc", 1, 0},
		/* a `?` inside [...] ends the class early in Docker's expression */
		{"[a?]", "a]", 1, 0},
		{"[a?]", "a", 0, -1},
		{"[a*]", "]", 1, 0},
		{"é*", "été", 1, 0},
		{"?", "é", 1, 0},
		{"a?", "a\xff", 1, 0},
	};

	(void)state;
	run_cases(cases, DTN__ARRAY_LEN(cases));
}

/* Comments, white space, CRLF, a byte order mark, cleaning and leading slashes. */
static void test_builder_ignore__reading(void **state)
{
	static const ig_case cases[] = {
		{"# *.c\n*.h", "a.c", 0, -1},
		{"# *.c\n*.h", "a.h", 1, 0},
		{" #a", "#a", 1, 0},
		{"\n\n  \t\n\ta.c  \n", "a.c", 1, 0},
		{"a.c\r\nb.c\r\n", "a.c", 1, 0},
		{"a.c\r\nb.c\r\n", "b.c", 1, 1},
		{"\xef\xbb\xbf*.c", "x.c", 1, 0},
		{"\xef\xbb\xbf#x\n*.c", "x.c", 1, 0},
		{"\xc2\xa0x\xe3\x80\x80", "x", 1, 0},
		{"\xe2\x80\x83x\xe2\x80\x8a", "x", 1, 0},
		{"\xe2\x80\x8bx", "x", 0, -1},
		{"/foo", "foo", 1, 0},
		{"/foo/", "foo/bar", 1, 0},
		{"foo/", "foo", 1, 0},
		{"./a//b/./c", "a/b/c", 1, 0},
		{"a/../b", "b", 1, 0},
		{"a/../b", "a", 0, -1},
		{"x\n! /x/keep", "x/keep", 0, 1},
		{"x\n!./x/keep", "x/keep", 0, 1},
		{".", "a", 0, -1},
		{"/", "a", 0, -1},
		{"../a", "a", 0, -1},
		{"/ a", "a", 1, 0},
		{"/!a", "a", 0, -1},
		{"a b", "a b", 1, 0},
	};

	(void)state;
	run_cases(cases, DTN__ARRAY_LEN(cases));
}

/* Exceptions take back entries below excluded directories, in Docker's order of trying. */
static void test_builder_ignore__exceptions(void **state)
{
	static const ig_case cases[] = {
		{"build\n!build/keep", "build/keep", 0, 1},
		{"build\n!build/keep", "build/keep/deep", 0, 1},
		{"build\n!build/keep", "build/other", 1, 0},
		{"build\n!build/keep", "build", 1, 0},
		{"**/*.log\n!important/*.log", "important/a.log", 0, 1},
		{"**/*.log\n!important/*.log", "important/sub/a.log", 1, 0},
		{"*\n!src\nsrc/*.tmp", "src/a.tmp", 1, 2},
		{"*\n!src\nsrc/*.tmp", "src/a.c", 0, 1},
		{"*\n!src\nsrc/*.tmp", "docs", 1, 0},
		/* an exception while nothing is excluded yet is not tried, nor inherited */
		{"a/b\n!a", "a/b", 1, 0},
		{"a/b\n!a", "a/b/c", 1, 0},
		{"a/b\n!a", "a", 0, -1},
		{"a\n!a\na/b", "a/b/c", 1, 2},
		{"a\n!a\na/b", "a/c", 0, 1},
		/* below a directory that is not walked into, the directory's rule answers */
		{"x\n!y", "x/y", 1, 0},
		{"!y\nx", "x/y", 1, 1},
		/* with a wildcard exception the walk goes into x and the exception is tried */
		{"x\n!*/keep", "x/keep", 0, 1},
	};

	(void)state;
	run_cases(cases, DTN__ARRAY_LEN(cases));
}

/* The walker's question: must an excluded directory be walked? */
static void test_builder_ignore__may_reinclude(void **state)
{
	dtn__ignore *ig;

	(void)state;
	ig = load("build\ndist\n");
	assert_false(dtn__ignore_may_reinclude(ig, "build", 5));
	dtn__ignore_free(ig);

	ig = load("build\n!build/keep/**\n!other/x");
	assert_true(dtn__ignore_may_reinclude(ig, "build", 5));
	assert_true(dtn__ignore_may_reinclude(ig, "build/keep", 10));
	assert_false(dtn__ignore_may_reinclude(ig, "build/kee", 9));
	assert_false(dtn__ignore_may_reinclude(ig, "build/keep/sub", 14));
	assert_true(dtn__ignore_may_reinclude(ig, "other", 5));
	assert_false(dtn__ignore_may_reinclude(ig, "bui", 3));
	assert_false(dtn__ignore_may_reinclude(ig, "dist", 4));
	dtn__ignore_free(ig);

	ig = load("build\n!build/*\n");
	assert_true(dtn__ignore_may_reinclude(ig, "build", 5));
	assert_false(dtn__ignore_may_reinclude(ig, "dist", 4));
	dtn__ignore_free(ig);

	/* any wildcard left in an exception: every directory must be walked */
	ig = load("*\n!**/keep");
	assert_true(dtn__ignore_may_reinclude(ig, "anything", 8));
	dtn__ignore_free(ig);
	ig = load("*\n![ab]/x");
	assert_true(dtn__ignore_may_reinclude(ig, "c", 1));
	dtn__ignore_free(ig);

	assert_false(dtn__ignore_may_reinclude(NULL, "x", 1));
}

/* Which rule decided, where it came from and how it was written. */
static void test_builder_ignore__explain(void **state)
{
	static const char text[] = "# build output\nbuild\n\n*.pyc\n  !keep.pyc  \n";
	static const char *const extra[] = {"  ", "!build/dist", "/tmp/", NULL};
	dtn__ignore *ig;
	dtn_error err;
	int rule;

	(void)state;
	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_new(&ig), 0);
	assert_int_equal(dtn__ignore_add_text(ig, text, strlen(text), "ctx/.dockerignore", &err),
			 0);
	assert_int_equal(dtn__ignore_add_patterns(ig, extra, "ignore", &err), 0);
	assert_int_equal(dtn__ignore_count(ig), 5);

	assert_int_equal(match(ig, "x.pyc", &rule), 1);
	assert_int_equal(rule, 1);
	assert_string_equal(dtn__ignore_rule_text(ig, rule), "*.pyc");
	assert_string_equal(dtn__ignore_rule_source(ig, rule), "ctx/.dockerignore");
	assert_int_equal(dtn__ignore_rule_line(ig, rule), 4);
	assert_false(dtn__ignore_rule_is_exception(ig, rule));

	assert_int_equal(match(ig, "keep.pyc", &rule), 0);
	assert_int_equal(rule, 2);
	assert_string_equal(dtn__ignore_rule_text(ig, rule), "!keep.pyc");
	assert_string_equal(dtn__ignore_rule_pattern(ig, rule), "keep.pyc");
	assert_int_equal(dtn__ignore_rule_line(ig, rule), 5);
	assert_true(dtn__ignore_rule_is_exception(ig, rule));

	assert_int_equal(match(ig, "build/dist/a", &rule), 0);
	assert_int_equal(rule, 3);
	assert_string_equal(dtn__ignore_rule_source(ig, rule), "ignore[1]");
	assert_int_equal(dtn__ignore_rule_line(ig, rule), 0);

	assert_int_equal(match(ig, "tmp/x", &rule), 1);
	assert_int_equal(rule, 4);
	assert_string_equal(dtn__ignore_rule_source(ig, rule), "ignore[2]");
	assert_string_equal(dtn__ignore_rule_text(ig, rule), "/tmp/");
	assert_string_equal(dtn__ignore_rule_pattern(ig, rule), "tmp");

	assert_int_equal(match(ig, "src/main.c", &rule), 0);
	assert_int_equal(rule, -1);

	assert_null(dtn__ignore_rule_text(ig, 5));
	assert_null(dtn__ignore_rule_source(ig, -1));
	assert_int_equal(dtn__ignore_rule_line(ig, 99), 0);
	assert_null(dtn__ignore_rule_pattern(NULL, 0));
	assert_int_equal(dtn__ignore_count(NULL), 0);
	dtn__ignore_free(ig);
}

/* An extra pattern starting with '#' is a pattern, not a comment. */
static void test_builder_ignore__extra_patterns(void **state)
{
	static const char *const extra[] = {"#notes", "*.o", NULL};
	dtn__ignore *ig;
	int rule;

	(void)state;
	assert_int_equal(dtn__ignore_new(&ig), 0);
	assert_int_equal(dtn__ignore_add_patterns(ig, NULL, "ignore", NULL), 0);
	assert_int_equal(dtn__ignore_add_patterns(ig, extra, NULL, NULL), 0);
	assert_int_equal(match(ig, "#notes", &rule), 1);
	assert_int_equal(rule, 0);
	assert_string_equal(dtn__ignore_rule_source(ig, 1), "ignore[1]");
	assert_int_equal(match(ig, "a.o", &rule), 1);
	dtn__ignore_free(ig);
}

/* One load error: code, line, and words expected in the message. */
static void expect_error(const char *text, int code, int line, const char *words)
{
	dtn__ignore *ig;
	dtn_error err;

	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_new(&ig), 0);
	assert_int_equal(dtn__ignore_add_text(ig, "kept\n", 5, "base", NULL), 0);
	if (dtn__ignore_add_text(ig, text, strlen(text), "sub/.dockerignore", &err) != code)
		fail_msg("\"%s\": want code %d, got %d (%s)", text, code, err.code, err.message);
	assert_int_equal(err.code, code);
	assert_string_equal(err.file, "sub/.dockerignore");
	assert_int_equal(err.line, line);
	if (!strstr(err.message, words))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err.message, words);
	/* the set is as it was before the failed call */
	assert_int_equal(dtn__ignore_count(ig), 1);
	assert_int_equal(match(ig, "kept", NULL), 1);
	dtn__ignore_free(ig);
}

static void test_builder_ignore__errors(void **state)
{
	(void)state;
	expect_error("a\n# c\nsrc/[ab", DTN_EINVAL, 3, "\"[\" is not closed");
	expect_error("a\n!*.c\n!", DTN_EINVAL, 3, "exception needs a pattern");
	expect_error("!/", DTN_EINVAL, 1, "exception needs a pattern");
	expect_error("x[]", DTN_EINVAL, 1, "empty character class");
	expect_error("[-a]", DTN_EINVAL, 1, "before \"-\"");
	expect_error("[a-]", DTN_EINVAL, 1, "after \"-\"");
	expect_error("a\\", DTN_EINVAL, 1, "lone \"\\\"");
	expect_error("[z-a]", DTN_EINVAL, 1, "reversed");
	expect_error("[[:alfa:]]", DTN_EINVAL, 1, "[:alfa:]");
	expect_error("x/\\\xc3\xa9", DTN_EINVAL, 1, "non-ASCII");
	expect_error("[\xff]", DTN_EINVAL, 1, "not UTF-8");
	expect_error("ok\n\\d*", DTN_EUNSUPPORTED, 2, "\\d");
}

/* Errors that the table above cannot express: NUL bytes, long lines, extra patterns. */
static void test_builder_ignore__errors_raw(void **state)
{
	static const char nul[] = "a\n*.c\0x\n";
	static const char *const extra[] = {"*.o", "src/[", NULL};
	dtn__ignore *ig;
	dtn_error err;
	char *big;

	(void)state;
	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_new(&ig), 0);
	assert_int_equal(dtn__ignore_add_text(ig, nul, sizeof(nul) - 1, NULL, &err),
			 DTN_EUNSUPPORTED);
	assert_int_equal(err.line, 2);
	assert_string_equal(err.file, ".dockerignore");
	assert_non_null(strstr(err.message, "NUL"));
	/* a NUL in a comment is fine, as it is for Docker */
	assert_int_equal(dtn__ignore_add_text(ig, "#\0\nx", 4, NULL, &err), 0);
	assert_int_equal(dtn__ignore_count(ig), 1);

	big = malloc(70000);
	assert_non_null(big);
	memset(big, 'a', 70000);
	big[0] = '#';
	assert_int_equal(dtn__ignore_add_text(ig, big, 65535, NULL, &err), 0);
	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_add_text(ig, big, 65536, NULL, &err), DTN_EINVAL);
	assert_int_equal(err.line, 1);
	big[10] = '\n';
	assert_int_equal(dtn__ignore_add_text(ig, big, 70000, NULL, &err), DTN_EINVAL);
	assert_int_equal(err.line, 2);
	free(big);

	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_add_patterns(ig, extra, "step", &err), DTN_EINVAL);
	assert_string_equal(err.file, "step[1]");
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.message, "\"src/[\""));
	assert_int_equal(dtn__ignore_count(ig), 1);
	dtn__ignore_free(ig);
}

/* The walker's one-level matching agrees with the whole-path answer. */
static void test_builder_ignore__entry_state(void **state)
{
	static const char *const paths[] = {"a", "a/b", "a/b/c", "a/b/c/d", "a/x", "a/x/keep"};
	dtn__ignore *ig = load("a/b\n!a\n*/x\n!a/x/keep\n**/d");
	uint64_t st[6][1];
	int want_rule, rule;

	(void)state;
	assert_int_equal(dtn__ignore_state_words(ig), 1);
	for (size_t i = 0; i < DTN__ARRAY_LEN(paths); i++) {
		const char *p = paths[i], *slash = strrchr(p, '/');
		const uint64_t *parent = NULL;
		int want = match(ig, p, &want_rule);

		if (slash) {
			for (size_t j = 0; j < i; j++) {
				if (strlen(paths[j]) == (size_t)(slash - p) &&
				    !strncmp(paths[j], p, strlen(paths[j])))
					parent = st[j];
			}
			assert_non_null(parent);
		}
		assert_int_equal(dtn__ignore_match_entry(ig, parent, p, strlen(p), st[i], &rule),
				 want);
		assert_int_equal(rule, want_rule);
	}
	assert_int_equal(match(ig, "a/b/c", NULL), 1);
	assert_int_equal(match(ig, "a/x/keep", NULL), 0);
	assert_int_equal(match(ig, "a/b/c/d", &rule), 1);

	/* the state may be updated in place */
	st[0][0] = 0;
	assert_int_equal(dtn__ignore_match_entry(ig, NULL, "a", 1, st[0], NULL), 0);
	assert_int_equal(dtn__ignore_match_entry(ig, st[0], "a/x", 3, st[0], NULL), 1);
	assert_int_equal(dtn__ignore_match_entry(ig, st[0], "a/x/keep", 8, st[0], &rule), 0);
	assert_int_equal(rule, 3);

	/* without a parent's state, parents are tried directly */
	assert_int_equal(dtn__ignore_match_entry(ig, NULL, "q/x/y", 5, NULL, &rule), 1);
	assert_int_equal(rule, 2);
	dtn__ignore_free(ig);
	assert_int_equal(dtn__ignore_match_entry(NULL, NULL, "a", 1, NULL, &rule), 0);
	assert_int_equal(rule, -1);
}

/* Sets with many rules need more than one word of state and scratch memory. */
static void test_builder_ignore__many_rules(void **state)
{
	dtn__buf b = DTN__BUF_INIT;
	dtn__ignore *ig;
	int rule;

	(void)state;
	for (int i = 0; i < 1500; i++)
		dtn__buf_printf(&b, "dir%d\n", i);
	dtn__buf_puts(&b, "!dir7/keep\n");
	assert_false(b.failed);
	ig = load(b.data);
	assert_int_equal(dtn__ignore_count(ig), 1501);
	assert_int_equal(dtn__ignore_state_words(ig), 24);
	assert_int_equal(match(ig, "dir1499/x", &rule), 1);
	assert_int_equal(rule, 1499);
	assert_int_equal(match(ig, "dir7/keep/x", &rule), 0);
	assert_int_equal(rule, 1500);
	assert_int_equal(match(ig, "dir1500", &rule), 0);
	tu_fail_alloc_after(1);
	assert_int_equal(match(ig, "dir1/x", &rule), DTN_ENOMEM);
	tu_alloc_reset();
	dtn__ignore_free(ig);
	dtn__buf_free(&b);
}

/* Long and pathological patterns: bounded work, a clear refusal past the limit. */
static void test_builder_ignore__long_patterns(void **state)
{
	dtn__buf b = DTN__BUF_INIT;
	dtn__ignore *ig;
	dtn_error err;
	char path[4001];

	(void)state;
	for (int i = 0; i < 900; i++)
		dtn__buf_puts(&b, "*a");
	dtn__buf_puts(&b, "*b\n");
	ig = load(b.data);
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(match(ig, path, NULL), 0);
	path[sizeof(path) - 2] = 'b';
	assert_int_equal(match(ig, path, NULL), 1);
	dtn__ignore_free(ig);

	b.len = 0;
	for (int i = 0; i < 3000; i++)
		dtn__buf_puts(&b, "a?");
	assert_int_equal(dtn__ignore_new(&ig), 0);
	dtn_error_clear(&err);
	assert_int_equal(dtn__ignore_add_text(ig, b.data, b.len, NULL, &err), DTN_EUNSUPPORTED);
	assert_non_null(strstr(err.message, "too long"));
	/* a long plain pattern is fine */
	b.len = 0;
	for (int i = 0; i < 3000; i++)
		dtn__buf_puts(&b, "ab");
	assert_int_equal(dtn__ignore_add_text(ig, b.data, b.len, NULL, &err), 0);
	assert_int_equal(dtn__ignore_match(ig, b.data, b.len, true, NULL), 1);
	dtn__ignore_free(ig);
	dtn__buf_free(&b);
}

/* Every allocation failure gives DTN_ENOMEM and leaks nothing; then loading succeeds. */
static void test_builder_ignore__allocation_failures(void **state)
{
	static const char text[] = "# c\n*.pyc\n**/node_modules\n!keep/**\nsrc/[a-c]?/x*\n"
				   "a/**/b\n[[:digit:]]x\nlit\n";
	static const char *const extra[] = {"!build/keep", "tmp/", NULL};
	int rc = DTN_ENOMEM, rule;
	dtn__ignore *ig = NULL;

	(void)state;
	for (long fail = 1; rc == DTN_ENOMEM && fail < 100000; fail++) {
		dtn_error err;

		dtn_error_clear(&err);
		tu_fail_alloc_after(fail);
		rc = dtn__ignore_new(&ig);
		if (rc == 0)
			rc = dtn__ignore_add_text(ig, text, sizeof(text) - 1, NULL, &err);
		if (rc == 0)
			rc = dtn__ignore_add_patterns(ig, extra, "ignore", &err);
		tu_alloc_reset();
		if (rc == DTN_ENOMEM) {
			assert_true(ig == NULL || dtn__ignore_count(ig) <= 7);
			dtn__ignore_free(ig);
			ig = NULL;
		}
	}
	assert_int_equal(rc, 0);
	assert_int_equal(dtn__ignore_count(ig), 9);
	assert_int_equal(match(ig, "src/b1/xy", &rule), 1);
	assert_int_equal(rule, 3);
	assert_int_equal(match(ig, "tmp/a", &rule), 1);
	assert_int_equal(rule, 8);
	assert_int_equal(match(ig, "1x", &rule), 1);
	assert_int_equal(rule, 5);
	dtn__ignore_free(ig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_ignore__docker_documentation),
		cmocka_unit_test(test_builder_ignore__parents_and_anchoring),
		cmocka_unit_test(test_builder_ignore__double_star),
		cmocka_unit_test(test_builder_ignore__classes_and_escapes),
		cmocka_unit_test(test_builder_ignore__reading),
		cmocka_unit_test(test_builder_ignore__exceptions),
		cmocka_unit_test(test_builder_ignore__may_reinclude),
		cmocka_unit_test(test_builder_ignore__explain),
		cmocka_unit_test(test_builder_ignore__extra_patterns),
		cmocka_unit_test(test_builder_ignore__errors),
		cmocka_unit_test(test_builder_ignore__errors_raw),
		cmocka_unit_test(test_builder_ignore__entry_state),
		cmocka_unit_test(test_builder_ignore__many_rules),
		cmocka_unit_test(test_builder_ignore__long_patterns),
		cmocka_unit_test(test_builder_ignore__allocation_failures),
	};

	return cmocka_run_group_tests_name("builder/ignore", tests, NULL, NULL);
}
