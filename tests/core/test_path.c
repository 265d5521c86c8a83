/*
 * test_path.c - path spelling: normalisation, joining, `~` expansion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void assert_norm(const char *in, const char *want)
{
	char *p = dtn__strdup(in);

	dtn__path_normalize(p);
	assert_string_equal(p, want);
	dtn__free(p);
}

static void test_core_path__normalize(void **state)
{
	(void)state;
	assert_norm("a/b", "a/b");
	assert_norm("./a/./b", "a/b");
	assert_norm("a//b///c", "a/b/c");
	assert_norm("a/../b", "b");
	assert_norm("a/b/../../..", "..");
	assert_norm("../../x", "../../x");
	assert_norm("a/..", ".");
	assert_norm(".", ".");
	assert_norm("", "");
	assert_norm("./", ".");
	assert_norm("tree/", "tree/");
	assert_norm("./tree/./", "tree/");
	assert_norm("/", "/");
	assert_norm("/..", "/");
	assert_norm("/a/../../b", "/b");
	assert_norm("/a/b/", "/a/b/");
	assert_norm("..a/b", "..a/b");
}

static void test_core_path__join(void **state)
{
	char *p;

	(void)state;
	p = dtn__path_join("/root/ctx", "./app.py");
	assert_string_equal(p, "/root/ctx/app.py");
	dtn__free(p);
	p = dtn__path_join("/root/ctx", "/abs");
	assert_string_equal(p, "/abs");
	dtn__free(p);
	p = dtn__path_join("ctx/", "src/");
	assert_string_equal(p, "ctx/src/");
	dtn__free(p);
	p = dtn__path_join("", "a/../b");
	assert_string_equal(p, "b");
	dtn__free(p);
}

static void assert_tilde(const char *in, const char *want)
{
	char *p = dtn__path_expand_tilde(in, "/cwd");

	assert_string_equal(p, want);
	dtn__free(p);
}

static void test_core_path__tilde(void **state)
{
	(void)state;
	setenv("HOME", "/home/me", 1);
	assert_tilde("~", "/home/me");
	assert_tilde("~/x/y", "/home/me/x/y");
	assert_tilde("~+", "/cwd");
	assert_tilde("~+/x", "/cwd/x");
	assert_tilde("~user/x", "/home/me/user/x");
	assert_tilde("x/~", "x/~");
	assert_tilde("/abs", "/abs");
}

static void test_core_path__parts(void **state)
{
	char *d;

	(void)state;
	assert_string_equal(dtn__path_basename("a/b.txt"), "b.txt");
	assert_string_equal(dtn__path_basename("b.txt"), "b.txt");
	d = dtn__path_dirname("/a/b/c");
	assert_string_equal(d, "/a/b");
	dtn__free(d);
	d = dtn__path_dirname("/c");
	assert_string_equal(d, "/");
	dtn__free(d);
	d = dtn__path_dirname("c");
	assert_string_equal(d, ".");
	dtn__free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_path__normalize),
		cmocka_unit_test(test_core_path__join),
		cmocka_unit_test(test_core_path__tilde),
		cmocka_unit_test(test_core_path__parts),
	};

	return cmocka_run_group_tests_name("core/path", tests, NULL, NULL);
}
