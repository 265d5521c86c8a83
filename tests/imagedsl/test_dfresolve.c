/*
 * test_dfresolve.c - finding what a COPY/ADD source names in a build context: literal paths,
 * wildcards, the context boundary, links and special files; and the wildcard matcher alone.
 *
 * The context is built fresh in a temporary directory:
 *
 *   ctx/  a.txt b.txt .hidden.txt one.cfg two.cfg brack.txt br[a]ck.txt
 *         assets/style.css assets/img/logo.svg assets/icons/x.svg assets/icons/y.png
 *         dir/sub/f.txt dir/sub-b/g.txt   fifo   sock
 *         link-in -> a.txt          link-dir-in -> assets     abs-in -> /.../ctx/b.txt
 *         link-out -> ../outside/secret.txt                   link-dir-out -> ../outside
 *         dangling -> nope.txt      loop -> loop
 *   lit/  br[a]ck.txt               (a bracketed name that exists only literally)
 *   outside/secret.txt
 *   ctx-link -> ctx
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dfscan.h"
#include "testutil.h"

#define MAX_WANT 8

/* base is kept short so that every path built from it fits PATH_MAX */
static char base[PATH_MAX / 4], ctx[PATH_MAX / 2], lit[PATH_MAX / 2], ctx_link[PATH_MAX / 2];

struct resolve_case {
	const char *root; /* "ctx" (default), "lit" or "ctx-link" */
	const char *source;
	bool strict;
	int rc;
	const char *want[MAX_WANT]; /* "rel", "rel (dir)"; or for errors, a part of the message */
};

static const struct resolve_case cases[] = {
	/* literal paths */
	{NULL, "a.txt", false, 0, {"a.txt"}},
	{NULL, "./a.txt", false, 0, {"a.txt"}},
	{NULL, "dir/../a.txt", false, 0, {"a.txt"}},
	{NULL, "assets", false, 0, {"assets (dir)"}},
	{NULL, "assets/", false, 0, {"assets/ (dir)"}},
	{NULL, "./assets//img/", false, 0, {"assets/img/ (dir)"}},
	{NULL, ".", false, 0, {". (dir)"}},
	{NULL, "./", false, 0, {". (dir)"}},
	{NULL, "", false, 0, {". (dir)"}},
	{NULL, "dir/sub/f.txt", false, 0, {"dir/sub/f.txt"}},
	{NULL, "missing.txt", false, DTN_ENOTFOUND, {"COPY source \"missing.txt\" does not exist"}},
	{NULL, "dir/nope/f.txt", false, DTN_ENOTFOUND, {"\"dir/nope/f.txt\" does not exist"}},
	{NULL, "a.txt/x", false, DTN_ENOTFOUND, {"\"a.txt/x\" does not exist"}},
	{NULL, "a.txt/", false, DTN_ENOTFOUND, {"\"a.txt/\" is not a directory"}},
	/* absolute sources: context-relative, except in strict mode */
	{NULL, "/a.txt", false, 0, {"a.txt"}},
	{NULL, "//assets/img", false, 0, {"assets/img (dir)"}},
	{NULL, "/", false, 0, {". (dir)"}},
	{NULL, "/a.txt", true, DTN_EOUTSIDE, {"forbidden path outside the build context: /a.txt"}},
	{NULL, "a.txt", true, 0, {"a.txt"}},
	/* leaving the context with .. */
	{NULL, "../outside/secret.txt", false, DTN_EOUTSIDE,
	 {"COPY source \"../outside/secret.txt\" is outside the build context"}},
	{NULL, "dir/../../x", false, DTN_EOUTSIDE, {"\"dir/../../x\" is outside the build"}},
	{NULL, "..", false, DTN_EOUTSIDE, {"\"..\" is outside"}},
	{NULL, "../x", true, DTN_EOUTSIDE, {"forbidden path outside the build context: ../x"}},
	{NULL, "/../a.txt", false, 0, {"a.txt"}},
	/* wildcards */
	{NULL, "*.cfg", false, 0, {"one.cfg", "two.cfg"}},
	{NULL, "*.txt", false, 0, {".hidden.txt", "a.txt", "b.txt", "br[a]ck.txt", "brack.txt"}},
	{NULL, "?.txt", false, 0, {"a.txt", "b.txt"}},
	{NULL, "[ab].txt", false, 0, {"a.txt", "b.txt"}},
	{NULL, "[^a].txt", false, 0, {"b.txt"}},
	{NULL, "[!a-a].txt", false, 0, {"b.txt"}},
	{NULL, "assets/*/*.svg", false, 0, {"assets/icons/x.svg", "assets/img/logo.svg"}},
	{NULL, "assets/**/*.svg", false, 0, {"assets/icons/x.svg", "assets/img/logo.svg"}},
	{NULL, "assets/*", false, 0,
	 {"assets/icons (dir)", "assets/img (dir)", "assets/style.css"}},
	{NULL, "assets/*/", false, 0, {"assets/icons/ (dir)", "assets/img/ (dir)"}},
	{NULL, "dir/*/", false, 0, {"dir/sub/ (dir)", "dir/sub-b/ (dir)"}},
	{NULL, "dir/*", false, 0, {"dir/sub (dir)", "dir/sub-b (dir)"}},
	{NULL, "*/sub", false, 0, {"dir/sub (dir)"}},
	{NULL, "*/*/f.txt", false, 0, {"dir/sub/f.txt"}},
	{NULL, "./dir/../*.cfg", false, 0, {"one.cfg", "two.cfg"}},
	{NULL, "br[a]ck.txt", false, 0, {"brack.txt"}},
	{"lit", "br[a]ck.txt", false, DTN_ENOTFOUND,
	 {"COPY source \"br[a]ck.txt\" matches no files"}},
	{"lit", "br\\[a]ck.txt", false, DTN_ENOTFOUND, {"does not exist"}},
	{NULL, "*.none", false, DTN_ENOTFOUND, {"\"*.none\" matches no files"}},
	{NULL, "a.txt/*", false, DTN_ENOTFOUND, {"matches no files"}},
	{NULL, "*.txt/", false, DTN_ENOTFOUND, {"matches no files"}},
	{NULL, "[a", false, DTN_EINVAL, {"\"[a\" is not a valid pattern"}},
	{NULL, "x/[]/y", false, DTN_EINVAL, {"is not a valid pattern"}},
	{NULL, "../*", false, DTN_EOUTSIDE, {"outside the build context"}},
	/* links */
	{NULL, "link-in", false, 0, {"link-in"}},
	{NULL, "abs-in", false, 0, {"abs-in"}},
	{NULL, "link-dir-in", false, 0, {"link-dir-in (dir)"}},
	{NULL, "link-dir-in/", false, 0, {"link-dir-in/ (dir)"}},
	{NULL, "link-dir-in/img/logo.svg", false, 0, {"link-dir-in/img/logo.svg"}},
	{NULL, "link-dir-in/*.css", false, 0, {"link-dir-in/style.css"}},
	{NULL, "link-out", false, DTN_EOUTSIDE,
	 {"COPY source \"link-out\" leads outside the build context through a symbolic link"}},
	{NULL, "link-out", true, DTN_EOUTSIDE, {"forbidden path outside the build context: link"}},
	{NULL, "link-dir-out/secret.txt", false, DTN_EOUTSIDE, {"\"link-dir-out/secret.txt\" le"}},
	{NULL, "link-dir-out/no-such-file", false, DTN_EOUTSIDE, {"leads outside"}},
	{NULL, "link-dir-out/*", false, DTN_EOUTSIDE, {"\"link-dir-out/*\" leads outside"}},
	{NULL, "link-*", false, DTN_EOUTSIDE, {"outside the build context"}},
	{NULL, "link-*/secret.txt", false, DTN_ENOTFOUND, {"matches no files"}},
	{NULL, "link-*/*.css", false, 0, {"link-dir-in/style.css"}},
	{NULL, "link-*", true, DTN_EOUTSIDE, {"forbidden path outside the build context: link-"}},
	{NULL, "dangling", false, DTN_ENOTFOUND,
	 {"\"dangling\" is a symbolic link whose target does not exist"}},
	{NULL, "loop", false, DTN_EINVAL, {"\"loop\" is a loop of symbolic links"}},
	{"ctx-link", "link-in", false, 0, {"link-in"}},
	{"ctx-link", "link-out", false, DTN_EOUTSIDE, {"leads outside"}},
	/* special files */
	{NULL, "fifo", false, DTN_EINVAL, {"COPY source \"fifo\" is a FIFO, not a file or dir"}},
	{NULL, "sock", false, DTN_EINVAL, {"\"sock\" is a socket"}},
	{NULL, "fi*", false, DTN_EINVAL, {"matches \"fifo\", which is a FIFO"}},
};

static void make_link(const char *target, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	assert_int_equal(symlink(target, path), 0);
}

static void make_socket(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_true((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", ctx, name) <
		    sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static int setup(void **state)
{
	static const char *const files[] = {
		"ctx/a.txt", "ctx/b.txt", "ctx/.hidden.txt", "ctx/one.cfg", "ctx/two.cfg",
		"ctx/brack.txt", "ctx/br[a]ck.txt", "ctx/assets/style.css",
		"ctx/assets/img/logo.svg", "ctx/assets/icons/x.svg", "ctx/assets/icons/y.png",
		"ctx/dir/sub/f.txt", "ctx/dir/sub-b/g.txt", "lit/br[a]ck.txt",
		"outside/secret.txt",
	};
	char path[PATH_MAX + 16];

	(void)state;
	snprintf(base, sizeof(base), "%s", tu_mkdtemp());
	for (size_t i = 0; i < DTN__ARRAY_LEN(files); i++)
		tu_write(base, files[i], files[i]);
	snprintf(ctx, sizeof(ctx), "%s/ctx", base);
	snprintf(lit, sizeof(lit), "%s/lit", base);
	snprintf(ctx_link, sizeof(ctx_link), "%s/ctx-link", base);
	make_link("a.txt", "ctx/link-in");
	make_link("assets", "ctx/link-dir-in");
	make_link("../outside/secret.txt", "ctx/link-out");
	make_link("../outside", "ctx/link-dir-out");
	make_link("nope.txt", "ctx/dangling");
	make_link("loop", "ctx/loop");
	make_link("ctx", "ctx-link");
	snprintf(path, sizeof(path), "%s/b.txt", ctx);
	make_link(path, "ctx/abs-in");
	snprintf(path, sizeof(path), "%s/fifo", ctx);
	assert_int_equal(mkfifo(path, 0644), 0);
	make_socket("sock");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(base);
	return 0;
}

static const char *root_of(const struct resolve_case *c)
{
	if (c->root && strcmp(c->root, "lit") == 0)
		return lit;
	if (c->root && strcmp(c->root, "ctx-link") == 0)
		return ctx_link;
	return ctx;
}

static void run_case(const struct resolve_case *c)
{
	dtn__df_match *m = (dtn__df_match *)1;
	size_t n = 99, want = 0;
	dtn_error err;
	char got[PATH_MAX];
	int rc;

	dtn_error_clear(&err);
	rc = dtn__df_resolve(&m, &n, root_of(c), c->source, c->strict, &err);
	print_message("source %s%s -> %d %s\n", c->source, c->strict ? " (strict)" : "", rc,
		      rc < 0 ? err.message : "");
	assert_int_equal(rc, c->rc);
	if (rc < 0) {
		assert_null(m);
		assert_int_equal(n, 0);
		assert_int_equal(err.code, rc);
		assert_int_equal(err.line, 0);
		assert_non_null(strstr(err.message, c->want[0]));
		return;
	}
	while (want < MAX_WANT && c->want[want])
		want++;
	assert_int_equal(n, want);
	for (size_t i = 0; i < n; i++) {
		snprintf(got, sizeof(got), "%s%s", m[i].rel, m[i].is_dir ? " (dir)" : "");
		assert_string_equal(got, c->want[i]);
	}
	dtn__df_matches_free(m, n);
}

static void test_imagedsl_dfresolve__cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < DTN__ARRAY_LEN(cases); i++)
		run_case(&cases[i]);
}

/* A scanned Dockerfile resolved end to end, as `docker build` would see the context. */
static void test_imagedsl_dfresolve__scanned_sources(void **state)
{
	static const char text[] = "FROM alpine\nCOPY *.cfg \"assets/*\" /x/\n"
				   "COPY [\"link-dir-in/img/\", \"/y/\"]\nADD ./dir/sub/ /z/\n";
	static const char *const want[] = {"one.cfg", "two.cfg", "assets/icons",
					   "assets/img", "assets/style.css", "link-dir-in/img/",
					   "dir/sub/"};
	dtn__df_source *src;
	size_t n, k = 0;

	(void)state;
	assert_int_equal(dtn__df_scan(&src, &n, NULL, text, sizeof(text) - 1, NULL), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		dtn__df_match *m;
		size_t count;

		assert_int_equal(dtn__df_resolve(&m, &count, ctx, src[i].text, true, NULL), 0);
		for (size_t j = 0; j < count; j++, k++) {
			assert_true(k < DTN__ARRAY_LEN(want));
			assert_string_equal(m[j].rel, want[k]);
		}
		dtn__df_matches_free(m, count);
	}
	assert_int_equal(k, DTN__ARRAY_LEN(want));
	dtn__df_sources_free(src, n);
}

/* Every allocation failure gives DTN_ENOMEM and leaks nothing. */
static void test_imagedsl_dfresolve__allocation_failures(void **state)
{
	static const char *const sources[] = {"assets/*/*.svg", "./dir/sub/", "link-*", "."};
	dtn__df_match *m;
	size_t n;

	(void)state;
	for (size_t i = 0; i < DTN__ARRAY_LEN(sources); i++) {
		int want, rc = DTN_ENOMEM;

		want = dtn__df_resolve(&m, &n, ctx, sources[i], false, NULL);
		if (want == 0)
			dtn__df_matches_free(m, n);
		for (long fail = 1; rc == DTN_ENOMEM && fail < 10000; fail++) {
			dtn_error err;

			dtn_error_clear(&err);
			tu_fail_alloc_after(fail);
			rc = dtn__df_resolve(&m, &n, ctx, sources[i], false, &err);
			tu_alloc_reset();
			if (rc == DTN_ENOMEM)
				assert_null(m);
		}
		assert_int_equal(rc, want);
		if (rc == 0)
			dtn__df_matches_free(m, n);
	}
}

static void test_imagedsl_dfresolve__missing_root(void **state)
{
	dtn__df_match *m;
	dtn_error err;
	size_t n;
	char path[PATH_MAX + 16];

	(void)state;
	snprintf(path, sizeof(path), "%s/no-such-dir", base);
	assert_int_equal(dtn__df_resolve(&m, &n, path, "a.txt", false, &err), DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "no-such-dir"));
}

struct glob_case {
	const char *pattern, *name;
	int want; /* 1 match, 0 no match, DTN_EINVAL malformed */
};

/* Go's filepath.Match rules, '!' also negating a class. */
static const struct glob_case globs[] = {
	{"abc", "abc", 1},
	{"*", "abc", 1},
	{"*", ".hidden", 1},
	{"*", "", 1},
	{"*c", "abc", 1},
	{"a*", "a", 1},
	{"a*", "abc", 1},
	{"a*", "ab/c", 0},
	{"a*/b", "abc/b", 1},
	{"a?c", "a/c", 0},
	{"a[/]c", "a/c", 1},
	{"a*b*c*d*e*", "axbxcxdxe", 1},
	{"a*b*c*d*e*", "axbxcxdx", 0},
	{"*x", "xxx", 1},
	{"ab[c]", "abc", 1},
	{"ab[b-d]", "abc", 1},
	{"ab[e-g]", "abc", 0},
	{"ab[^c]", "abc", 0},
	{"ab[^b-d]", "abc", 0},
	{"ab[^e-g]", "abc", 1},
	{"ab[!e-g]", "abc", 1},
	{"a\\*b", "a*b", 1},
	{"a\\*b", "ab", 0},
	{"a?b", "a\xE2\x98\xBA" "b", 1},
	{"a[^a]b", "a\xE2\x98\xBA" "b", 1},
	{"a???b", "a\xE2\x98\xBA" "b", 0},
	{"[a-\xCE\xB6]*", "\xCE\xB1", 1},
	{"*[a-\xCE\xB6]", "A", 0},
	{"a?b", "a\xFF" "b", 1},
	{"[\\]a]", "]", 1},
	{"[\\-]", "-", 1},
	{"[x\\-]", "x", 1},
	{"[x\\-]", "-", 1},
	{"[x\\-]", "z", 0},
	{"[\\-x]", "x", 1},
	{"[\\-x]", "a", 0},
	{"[]a]", "]", DTN_EINVAL},
	{"[-]", "-", DTN_EINVAL},
	{"[x-]", "x", DTN_EINVAL},
	{"[\\]", "a", DTN_EINVAL},
	{"[a-b-c]", "a", DTN_EINVAL},
	{"[", "a", DTN_EINVAL},
	{"[^", "a", DTN_EINVAL},
	{"[^bc", "a", DTN_EINVAL},
	{"a[", "a", DTN_EINVAL},
	{"a[", "ab", DTN_EINVAL},
	{"a[", "x", DTN_EINVAL},
	{"*x[", "a", DTN_EINVAL},
	{"\\", "a", DTN_EINVAL},
	{"a\\", "a", DTN_EINVAL},
	{"[\xFF]", "a", DTN_EINVAL},
};

static void test_imagedsl_dfresolve__glob_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < DTN__ARRAY_LEN(globs); i++) {
		print_message("match %s %s\n", globs[i].pattern, globs[i].name);
		assert_int_equal(dtn__df_glob_match(globs[i].pattern, globs[i].name),
				 globs[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagedsl_dfresolve__cases),
		cmocka_unit_test(test_imagedsl_dfresolve__scanned_sources),
		cmocka_unit_test(test_imagedsl_dfresolve__allocation_failures),
		cmocka_unit_test(test_imagedsl_dfresolve__missing_root),
		cmocka_unit_test(test_imagedsl_dfresolve__glob_match),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
