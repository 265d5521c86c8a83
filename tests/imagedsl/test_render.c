/*
 * test_render.c - the escaping functions of the Dockerfile renderer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "render.h"

static void assert_word(const char *in, const char *want)
{
	dtn__buf b = DTN__BUF_INIT;

	dtn__render_shell_word(&b, in);
	assert_false(b.failed);
	assert_string_equal(dtn__buf_cstr(&b), want);
	dtn__buf_free(&b);
}

/* The reference SDK's quoting helper, one case per rule of its documentation. */
static void test_imagedsl_render__shell_word_rules(void **state)
{
	(void)state;
	assert_word("", "''");
	assert_word("numpy", "numpy");
	assert_word("it's done!", "'it'\"'\"'s done!'");
	assert_word("hello world", "'hello world'");
	assert_word("say \"hi\"", "'say \"hi\"'");
	assert_word("C:\\path", "'C:\\path'");
	assert_word("it's", "\"it's\"");
	assert_word("it's \"both\"", "\"it's \\\"both\\\"\"");
	assert_word("https://example.com/it's", "\"https://example.com/it's\"");
	assert_word("it's $HOME `x` \\", "\"it's \\$HOME \\`x\\` \\\\\"");
	assert_word("numpy>=1.26,<2", "numpy\\>\\=1.26\\,\\<2");
	assert_word("uvicorn[standard]", "uvicorn\\[standard\\]");
	assert_word("https://x.org/a?b=c", "https\\://x.org/a\\?b\\=c");
	assert_word("$PATH", "\\$PATH");
	assert_word("~/dir", "\\~/dir");
	assert_word("a:b::c", "a\\:b:\\:c");
	assert_word("C:*", "C:\\*");
	assert_word("\xc3\xbcn\xc3\xaf", "\xc3\xbcn\xc3\xaf");
	assert_word("bang!", "bang\\!");
	assert_word("a+b%c_d-e.f/g", "a+b%c_d-e.f/g");
}

/* JavaScript's \s includes Unicode spaces: such a word is single-quoted too. */
static void test_imagedsl_render__unicode_whitespace(void **state)
{
	(void)state;
	assert_word("a\xc2\xa0" "b", "'a\xc2\xa0" "b'");       /* no-break space */
	assert_word("a\xe2\x80\x83" "b", "'a\xe2\x80\x83" "b'"); /* em space */
	assert_word("a\xe3\x80\x80" "b", "'a\xe3\x80\x80" "b'"); /* ideographic space */
	assert_word("a\xe2\x80\x8b" "b", "a\xe2\x80\x8b" "b");   /* zero width: not a space */
	assert_true(dtn__has_js_space("x\ty"));
	assert_false(dtn__has_js_space("xy"));
}

static void test_imagedsl_render__trim(void **state)
{
	char *t;

	(void)state;
	t = dtn__trim_js_space("  \t--no-cache-dir  --upgrade \n");
	assert_string_equal(t, "--no-cache-dir  --upgrade");
	dtn__free(t);
	t = dtn__trim_js_space(" \xc2\xa0 ");
	assert_string_equal(t, "");
	dtn__free(t);
}

static void assert_copy(const char *src, const char *dst, const char *want)
{
	dtn__buf b = DTN__BUF_INIT;

	assert_int_equal(dtn__render_copy(&b, src, dst), 0);
	assert_string_equal(dtn__buf_cstr(&b), want);
	dtn__buf_free(&b);
}

static void test_imagedsl_render__copy(void **state)
{
	(void)state;
	assert_copy("files/hello.txt", "/app/hello.txt", "COPY files/hello.txt /app/hello.txt\n");
	assert_copy("tree/", "/app/", "COPY tree/ /app/\n");
	assert_copy("files/with space.txt", "/app/with space.txt",
		    "COPY [\"files/with space.txt\", \"/app/with space.txt\"]\n");
	assert_copy("it's.txt", "/w/", "COPY [\"it\\\\'s.txt\", \"/w/\"]\n");
	assert_copy("dollar$sign.txt", "/w/", "COPY [\"dollar\\\\$sign.txt\", \"/w/\"]\n");
	assert_copy("q\"uote", "/q", "COPY [\"q\\\\\\\"uote\", \"/q\"]\n");
	/* a wildcard character in a source is escaped for the matcher, then for the lexer */
	assert_copy("star*.txt", "/s/", "COPY [\"star\\\\\\\\*.txt\", \"/s/\"]\n");
	/* destinations are not patterns */
	assert_copy("a.txt", "/x[1]/", "COPY a.txt /x[1]/\n");
}

static void assert_json(const char *const *items, const char *want)
{
	dtn__buf b = DTN__BUF_INIT;

	assert_int_equal(dtn__render_json_array(&b, items), 0);
	assert_string_equal(dtn__buf_cstr(&b), want);
	dtn__buf_free(&b);
}

static void test_imagedsl_render__json_array(void **state)
{
	dtn__buf b = DTN__BUF_INIT;

	(void)state;
	assert_json(DTN_STRV("python", "-m", "http.server"), "[\"python\", \"-m\", \"http.server\"]");
	assert_json((const char *const[]){NULL}, "[]");
	assert_json(DTN_STRV(""), "[\"\"]");
	assert_json(DTN_STRV("echo \"hi\"", "a\\b", "/x/y"),
		    "[\"echo \\\"hi\\\"\", \"a\\\\b\", \"/x/y\"]");
	assert_json(DTN_STRV("\xc3\xbc"), "[\"\xc3\xbc\"]");
	assert_int_equal(dtn__render_json_array(&b, DTN_STRV("\xff")), DTN_EINVAL);
	dtn__buf_free(&b);
}

static void test_imagedsl_render__quoted(void **state)
{
	dtn__buf b = DTN__BUF_INIT;

	(void)state;
	dtn__render_quoted(&b, "say \"hi\" to $USER \\o/");
	assert_string_equal(dtn__buf_cstr(&b), "\"say \\\"hi\\\" to \\$USER \\\\o/\"");
	dtn__buf_free(&b);
}

/* Sorting as JavaScript does: by UTF-16 code units, so U+1F600 sorts before U+FF21. */
static void test_imagedsl_render__utf16_order(void **state)
{
	(void)state;
	assert_true(dtn__compare_utf16("B", "a") < 0);
	assert_true(dtn__compare_utf16("Z", "_") < 0);
	assert_true(dtn__compare_utf16("_", "a") < 0);
	assert_true(dtn__compare_utf16("z", "~") < 0);
	assert_true(dtn__compare_utf16("~", "\xc3\xa9") < 0);
	assert_true(dtn__compare_utf16("a", "ab") < 0);
	assert_int_equal(dtn__compare_utf16("same", "same"), 0);
	assert_true(dtn__compare_utf16("\xf0\x9f\x98\x80", "\xef\xbc\xa1") < 0);
	assert_true(strcmp("\xf0\x9f\x98\x80", "\xef\xbc\xa1") > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagedsl_render__shell_word_rules),
		cmocka_unit_test(test_imagedsl_render__unicode_whitespace),
		cmocka_unit_test(test_imagedsl_render__trim),
		cmocka_unit_test(test_imagedsl_render__copy),
		cmocka_unit_test(test_imagedsl_render__json_array),
		cmocka_unit_test(test_imagedsl_render__quoted),
		cmocka_unit_test(test_imagedsl_render__utf16_order),
	};

	return cmocka_run_group_tests_name("imagedsl/render", tests, NULL, NULL);
}
