/*
 * test_toml.c - the TOML 1.0 reader: every construct, every class of error with its position,
 * the pyproject fixtures, nesting limits and allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"
#include "toml.h"

/* ---- checks shared by the tests ---- */

static dtn__toml *parse_ok_n(const char *text, size_t len)
{
	dtn__toml *root = NULL;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	rc = dtn__toml_parse(&root, text, len, &err);
	if (rc != 0 || !root)
		fail_msg("rejected valid TOML with %d (%d:%d: %s):\n%.*s", rc, err.line, err.column,
			 err.message, (int)(len > 300 ? 300 : len), text);
	assert_int_equal(dtn__toml_type_of(root), DTN__TOML_TABLE);
	return root;
}

static dtn__toml *parse_ok(const char *text)
{
	return parse_ok_n(text, strlen(text));
}

/* The text must be rejected at line:column with a message containing `fragment`. */
static void expect_error_n(const char *text, size_t len, int line, int column,
			   const char *fragment)
{
	dtn__toml *root = (dtn__toml *)&root;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	rc = dtn__toml_parse(&root, text, len, &err);
	if (rc != DTN_ESYNTAX || root || err.code != DTN_ESYNTAX || err.line != line ||
	    err.column != column || !strstr(err.message, fragment) || err.file[0])
		fail_msg("input:\n%.*s\nexpected %d:%d: ...%s...\n     got %d:%d: %s (rc %d)",
			 (int)(len > 300 ? 300 : len), text, line, column, fragment, err.line,
			 err.column, err.message,
			 rc);
}

static void expect_error(const char *text, int line, int column, const char *fragment)
{
	expect_error_n(text, strlen(text), line, column, fragment);
}

/* Follows a dotted path of plain keys ("a.b.c") from the root. */
static const dtn__toml *path(const dtn__toml *root, const char *dotted)
{
	char buf[256];
	const dtn__toml *v = root;

	snprintf(buf, sizeof(buf), "%s", dotted);
	for (char *part = buf, *dot; v && part; part = dot) {
		if ((dot = strchr(part, '.')))
			*dot++ = '\0';
		v = dtn__toml_get(v, part);
	}
	return v;
}

static void assert_str_at(const dtn__toml *root, const char *dotted, const char *want)
{
	const dtn__toml *v = path(root, dotted);

	if (!v || dtn__toml_type_of(v) != DTN__TOML_STRING)
		fail_msg("%s is not a string", dotted);
	assert_string_equal(dtn__toml_str(v), want);
}

static void assert_int_at(const dtn__toml *root, const char *dotted, long long want)
{
	const dtn__toml *v = path(root, dotted);

	if (!v || dtn__toml_type_of(v) != DTN__TOML_INTEGER)
		fail_msg("%s is not an integer", dotted);
	if (dtn__toml_int(v) != want)
		fail_msg("%s is %lld, not %lld", dotted, dtn__toml_int(v), want);
}

static void assert_float_at(const dtn__toml *root, const char *dotted, double want)
{
	const dtn__toml *v = path(root, dotted);

	if (!v || dtn__toml_type_of(v) != DTN__TOML_FLOAT)
		fail_msg("%s is not a float", dotted);
	if (dtn__toml_float(v) != want)
		fail_msg("%s is %.17g, not %.17g", dotted, dtn__toml_float(v), want);
}

static char *read_data(const char *name, size_t *len)
{
	char file[4096];
	FILE *f;
	char *text;
	long n;

	snprintf(file, sizeof(file), "%s/toml/%s", tu_data_dir(), name);
	assert_non_null(f = fopen(file, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((n = ftell(f)) >= 0);
	rewind(f);
	assert_non_null(text = malloc((size_t)n + 1));
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	text[n] = '\0';
	*len = (size_t)n;
	return text;
}

static dtn__toml *parse_data(const char *name)
{
	size_t len;
	char *text = read_data(name, &len);
	dtn__toml *root = parse_ok_n(text, len);

	free(text);
	return root;
}

/* The strings of an array, comma-joined, for compact assertions. */
static const char *join(const dtn__toml *arr, char *buf, size_t size)
{
	size_t o = 0;

	assert_int_equal(dtn__toml_type_of(arr), DTN__TOML_ARRAY);
	buf[0] = '\0';
	for (size_t i = 0; i < dtn__toml_count(arr); i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? "," : "",
				      dtn__toml_str(dtn__toml_at(arr, i)));
	return buf;
}

/* ---- pyproject files ---- */

static void test_imagedsl_toml__pyproject_basic(void **state)
{
	dtn__toml *root = parse_data("pyproject-basic.toml");
	const dtn__toml *opt = path(root, "project.optional-dependencies");
	char buf[512];

	(void)state;
	assert_str_at(root, "project.name", "demo");
	assert_str_at(root, "project.version", "0.1.0");
	assert_string_equal(join(path(root, "project.dependencies"), buf, sizeof(buf)),
			    "requests>=2.0,numpy,pandas[excel]>=2.0; python_version >= '3.9'");
	assert_int_equal(dtn__toml_type_of(opt), DTN__TOML_TABLE);
	assert_int_equal(dtn__toml_count(opt), 3);
	assert_string_equal(dtn__toml_key_at(opt, 0), "dev");
	assert_string_equal(dtn__toml_key_at(opt, 1), "docs");
	assert_string_equal(dtn__toml_key_at(opt, 2), "empty");
	assert_string_equal(join(dtn__toml_get(opt, "dev"), buf, sizeof(buf)), "pytest>=7,black");
	assert_string_equal(join(dtn__toml_get(opt, "docs"), buf, sizeof(buf)), "mkdocs,Sphinx==7.2");
	assert_int_equal(dtn__toml_count(dtn__toml_get(opt, "empty")), 0);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__pyproject_others(void **state)
{
	dtn__toml *root;
	char buf[512];

	(void)state;
	root = parse_data("pyproject-emptydeps.toml");
	assert_int_equal(dtn__toml_type_of(path(root, "project.dependencies")), DTN__TOML_ARRAY);
	assert_int_equal(dtn__toml_count(path(root, "project.dependencies")), 0);
	assert_string_equal(join(path(root, "project.optional-dependencies.extra"), buf,
				 sizeof(buf)), "zope.interface,Django>=4");
	dtn__toml_free(root);

	root = parse_data("pyproject-nodeps.toml");
	assert_str_at(root, "project.name", "nodeps");
	assert_null(path(root, "project.dependencies"));
	dtn__toml_free(root);

	root = parse_data("pyproject-noproject.toml");
	assert_null(dtn__toml_get(root, "project"));
	assert_true(dtn__toml_bool(path(root, "tool.demo.setting")));
	dtn__toml_free(root);

	root = parse_data("pyproject-onlyoptional.toml");
	assert_string_equal(join(path(root, "project.dependencies"), buf, sizeof(buf)), "six");
	assert_string_equal(join(path(root, "project.optional-dependencies.test"), buf,
				 sizeof(buf)), "pytest");
	dtn__toml_free(root);

	/* Valid TOML whose optional-dependencies is an array rather than a table. */
	root = parse_data("pyproject-badoptional.toml");
	assert_int_equal(dtn__toml_type_of(path(root, "project.optional-dependencies")),
			 DTN__TOML_ARRAY);
	assert_string_equal(join(path(root, "project.optional-dependencies"), buf, sizeof(buf)),
			    "dev");
	dtn__toml_free(root);
}

static void test_imagedsl_toml__pyproject_invalid(void **state)
{
	size_t len;
	char *text = read_data("pyproject-invalid.toml", &len);

	(void)state;
	/* dependencies = ["requests",   -- the array opened on line 3 never closes */
	expect_error_n(text, len, 3, 16, "unterminated array");
	free(text);
}

/* ---- document structure ---- */

static void test_imagedsl_toml__empty_and_blank(void **state)
{
	dtn__toml *root;

	(void)state;
	root = parse_ok("");
	assert_int_equal(dtn__toml_count(root), 0);
	dtn__toml_free(root);
	root = parse_ok(" \t\n# only a comment\n\n   # indented\t comment");
	assert_int_equal(dtn__toml_count(root), 0);
	dtn__toml_free(root);
	root = parse_ok_n(NULL, 0);
	assert_int_equal(dtn__toml_count(root), 0);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__comments(void **state)
{
	dtn__toml *root = parse_ok("# head\n"
				   "a = 1 # after a value\n"
				   "[t] # after a header\n"
				   "b = \"# not a comment\" #x\n"
				   "c = [ # in an array\n 1, # element\n # alone\n]\n"
				   "# caf\xc3\xa9 \t unicode in a comment\n");

	(void)state;
	assert_int_at(root, "a", 1);
	assert_str_at(root, "t.b", "# not a comment");
	assert_int_equal(dtn__toml_count(path(root, "t.c")), 1);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__keys(void **state)
{
	dtn__toml *root = parse_ok("bare_key-1 = 1\n"
				   "1234 = 2\n"
				   "\"quoted key\" = 3\n"
				   "'literal \\key' = 4\n"
				   "\"\" = 5\n"
				   "\"\\u00e9t\\u00e9\" = 6\n"
				   "  indented\t=\t7\n");

	(void)state;
	assert_int_at(root, "bare_key-1", 1);
	assert_int_at(root, "1234", 2);
	assert_int_at(root, "quoted key", 3);
	assert_int_equal(dtn__toml_int(dtn__toml_get(root, "literal \\key")), 4);
	assert_int_equal(dtn__toml_int(dtn__toml_get(root, "")), 5);
	assert_int_equal(dtn__toml_int(dtn__toml_get(root, "\xc3\xa9t\xc3\xa9")), 6);
	assert_int_at(root, "indented", 7);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__dotted_keys(void **state)
{
	dtn__toml *root = parse_ok("a.b.c = 1\n"
				   "a . b . d = 2\n"
				   "a.\"x.y\" = 3\n"
				   "'q'.\"r\".s = 4\n"
				   "3.14159 = \"pi\"\n"
				   "[fruit]\n"
				   "apple.color = \"red\"\n"
				   "apple.taste.sweet = true\n"
				   "[fruit.apple.texture]\n"
				   "smooth = true\n");
	const dtn__toml *apple;

	(void)state;
	assert_int_at(root, "a.b.c", 1);
	assert_int_at(root, "a.b.d", 2);
	assert_int_equal(dtn__toml_int(dtn__toml_get(dtn__toml_get(root, "a"), "x.y")), 3);
	assert_int_at(root, "q.r.s", 4);
	assert_str_at(root, "3.14159", "pi");
	apple = path(root, "fruit.apple");
	assert_int_equal(dtn__toml_count(apple), 3);
	assert_string_equal(dtn__toml_key_at(apple, 2), "texture");
	assert_true(dtn__toml_bool(path(root, "fruit.apple.taste.sweet")));
	assert_true(dtn__toml_bool(path(root, "fruit.apple.texture.smooth")));
	dtn__toml_free(root);
}

static void test_imagedsl_toml__tables(void **state)
{
	dtn__toml *root = parse_ok("top = 0\n"
				   "[a]\n"
				   "x = 1\n"
				   "[a.b]\n"
				   "x = 2\n"
				   "[ c . \"d e\" . 'f' ]\n"
				   "x = 3\n"
				   "[g.h.i]\n"
				   "[g]\n"
				   "x = 4\n"
				   "[g.h]\n"
				   "x = 5\n"
				   "[j.k]\n"
				   "[j.l]\n");

	(void)state;
	assert_int_at(root, "top", 0);
	assert_int_at(root, "a.x", 1);
	assert_int_at(root, "a.b.x", 2);
	assert_int_at(root, "c.d e.f.x", 3);
	assert_int_at(root, "g.x", 4);
	assert_int_at(root, "g.h.x", 5);
	assert_int_equal(dtn__toml_type_of(path(root, "g.h.i")), DTN__TOML_TABLE);
	assert_int_equal(dtn__toml_count(path(root, "j")), 2);
	dtn__toml_free(root);
}

/* Keys keep the order in which they first appeared, also for implicitly created tables. */
static void test_imagedsl_toml__key_order(void **state)
{
	dtn__toml *root = parse_ok("z = 1\ny = 2\n[m.n]\n[b]\n[m]\nq = 1\na = 2\n");
	const char *want[] = {"z", "y", "m", "b"};

	(void)state;
	assert_int_equal(dtn__toml_count(root), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(dtn__toml_key_at(root, i), want[i]);
	assert_string_equal(dtn__toml_key_at(path(root, "m"), 0), "n");
	assert_string_equal(dtn__toml_key_at(path(root, "m"), 2), "a");
	assert_null(dtn__toml_key_at(root, 4));
	assert_null(dtn__toml_at(root, 4));
	dtn__toml_free(root);
}

static void test_imagedsl_toml__arrays_of_tables(void **state)
{
	dtn__toml *root = parse_ok("[[fruits]]\n"
				   "name = \"apple\"\n"
				   "[fruits.physical]\n"
				   "color = \"red\"\n"
				   "[[fruits.varieties]]\n"
				   "name = \"red delicious\"\n"
				   "[[fruits.varieties]]\n"
				   "name = \"granny smith\"\n"
				   "[[fruits]]\n"
				   "name = \"banana\"\n"
				   "[[fruits.varieties]]\n"
				   "name = \"plantain\"\n"
				   "[[ spaced . 'key' ]]\n"
				   "[[spaced.key]]\n"
				   "x = 1\n");
	const dtn__toml *fruits = dtn__toml_get(root, "fruits"), *apple, *banana;

	(void)state;
	assert_int_equal(dtn__toml_type_of(fruits), DTN__TOML_ARRAY);
	assert_int_equal(dtn__toml_count(fruits), 2);
	apple = dtn__toml_at(fruits, 0);
	banana = dtn__toml_at(fruits, 1);
	assert_str_at(apple, "name", "apple");
	assert_str_at(apple, "physical.color", "red");
	assert_int_equal(dtn__toml_count(dtn__toml_get(apple, "varieties")), 2);
	assert_str_at(dtn__toml_at(dtn__toml_get(apple, "varieties"), 1), "name", "granny smith");
	assert_str_at(banana, "name", "banana");
	assert_int_equal(dtn__toml_count(dtn__toml_get(banana, "varieties")), 1);
	assert_null(dtn__toml_get(banana, "physical"));
	assert_int_equal(dtn__toml_count(path(root, "spaced.key")), 2);
	assert_int_equal(dtn__toml_count(dtn__toml_at(path(root, "spaced.key"), 0)), 0);
	assert_int_at(dtn__toml_at(path(root, "spaced.key"), 1), "x", 1);
	dtn__toml_free(root);
}

/* ---- strings ---- */

static void test_imagedsl_toml__basic_strings(void **state)
{
	dtn__toml *root = parse_ok("a = \"b\\bt\\tn\\nf\\fr\\rq\\\"s\\\\\"\n"
				   "u = \"\\u00E9\\u20ac\\U0001F600\\U00000041\\u007f\"\n"
				   "tab = \"x\ty\"\n"
				   "utf8 = \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"\n"
				   "empty = \"\"\n"
				   "hash = \"a#b\"\n");

	(void)state;
	assert_str_at(root, "a", "b\bt\tn\nf\fr\rq\"s\\");
	assert_str_at(root, "u", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "A\x7f");
	assert_str_at(root, "tab", "x\ty");
	assert_str_at(root, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_str_at(root, "empty", "");
	assert_str_at(root, "hash", "a#b");
	dtn__toml_free(root);
}

static void test_imagedsl_toml__escape_errors(void **state)
{
	(void)state;
	expect_error("a = \"x\\e\"", 1, 7, "invalid escape sequence");
	expect_error("a = \"\\x41\"", 1, 6, "invalid escape sequence");
	expect_error("a = \"\\ \"", 1, 6, "invalid escape sequence");
	expect_error("a = \"\\a\"", 1, 6, "invalid escape sequence");
	expect_error("a = \"\\\n\"", 1, 6, "invalid escape sequence");
	expect_error("a = \"\\u12\"", 1, 6, "\\u needs 4 hexadecimal digits");
	expect_error("a = \"\\u12G4\"", 1, 6, "\\u needs 4 hexadecimal digits");
	expect_error("a = \"\\U0001F60\"", 1, 6, "\\U needs 8 hexadecimal digits");
	expect_error("a = \"\\uD800\"", 1, 6, "not a Unicode scalar value");
	expect_error("a = \"\\uDFFF\"", 1, 6, "not a Unicode scalar value");
	expect_error("a = \"\\U0000D83D\"", 1, 6, "not a Unicode scalar value");
	expect_error("a = \"\\U00110000\"", 1, 6, "not a Unicode scalar value");
	expect_error("a = \"\\UFFFFFFFF\"", 1, 6, "not a Unicode scalar value");
	expect_error("a = \"\\u0000\"", 1, 6, "U+0000");
	expect_error("\"k\\q\" = 1", 1, 3, "invalid escape sequence");
	expect_error("a = \"\\", 1, 5, "unterminated string");
	/* The largest scalar values are fine. */
	dtn__toml_free(parse_ok("a = \"\\U0010FFFF\\uD7FF\\uE000\\uFFFF\""));
}

static void test_imagedsl_toml__control_characters(void **state)
{
	(void)state;
	expect_error_n("a = \"x\0\"", 8, 1, 7, "control character U+0000 in string");
	expect_error("a = \"x\x01\"", 1, 7, "control character U+0001 in string");
	expect_error("a = \"x\x1f\"", 1, 7, "control character U+001F in string");
	expect_error("a = \"x\x7f\"", 1, 7, "control character U+007F in string");
	expect_error("a = 'x\x08'", 1, 7, "control character U+0008 in string");
	expect_error("a = \"\"\"\nx\x0b\"\"\"", 2, 2, "control character U+000B in string");
	expect_error("a = '''\nx\x0c'''", 2, 2, "control character U+000C in string");
	expect_error("a = \"x\ry\"", 1, 7, "carriage return without a line feed in string");
	expect_error("a = \"\"\"x\ry\"\"\"", 1, 9, "carriage return without a line feed");
	expect_error("# bad \x01 comment\n", 1, 7, "control character U+0001 in comment");
	expect_error("a = 1 # \x7f\n", 1, 9, "control character U+007F in comment");
	expect_error("# x\ry\n", 1, 4, "carriage return without a line feed in comment");
	expect_error("a = 1\r", 1, 6, "expected end of line after a value");
	expect_error("\x01", 1, 1, "expected a key, found U+0001");
}

static void test_imagedsl_toml__literal_strings(void **state)
{
	dtn__toml *root = parse_ok("winpath = 'C:\\Users\\nodejs\\templates'\n"
				   "quoted = 'Tom \"Dubs\" Preston-Werner'\n"
				   "regex = '<\\i\\c*\\s*>'\n"
				   "tab = 'a\tb'\n"
				   "empty = ''\n");

	(void)state;
	assert_str_at(root, "winpath", "C:\\Users\\nodejs\\templates");
	assert_str_at(root, "quoted", "Tom \"Dubs\" Preston-Werner");
	assert_str_at(root, "regex", "<\\i\\c*\\s*>");
	assert_str_at(root, "tab", "a\tb");
	assert_str_at(root, "empty", "");
	dtn__toml_free(root);
}

static void test_imagedsl_toml__multiline_basic_strings(void **state)
{
	dtn__toml *root = parse_ok("a = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
				   "b = \"\"\"\n\nkeeps the second newline\"\"\"\n"
				   "c = \"\"\"The quick brown \\\n\n\n    fox jumps over \\\n"
				   "      the lazy dog.\"\"\"\n"
				   "d = \"\"\"\\\n    trimmed \\   \t\n   all\\\n   \"\"\"\n"
				   "e = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\n"
				   "f = \"\"\"Here are three quotation marks: \"\"\\\".\"\"\"\n"
				   "g = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n"
				   "h = \"\"\"two at the end\"\"\"\"\"\n"
				   "i = \"\"\"\"\"\"\n"
				   "j = \"\"\"\"\"\"\"\n"
				   "k = \"\"\"tab\there \\t \\u00e9 # no comment\"\"\"\n");

	(void)state;
	assert_str_at(root, "a", "Roses are red\nViolets are blue");
	assert_str_at(root, "b", "\nkeeps the second newline");
	assert_str_at(root, "c", "The quick brown fox jumps over the lazy dog.");
	assert_str_at(root, "d", "trimmed all");
	assert_str_at(root, "e", "Here are two quotation marks: \"\". Simple enough.");
	assert_str_at(root, "f", "Here are three quotation marks: \"\"\".");
	assert_str_at(root, "g", "\"This,\" she said, \"is just a pointless statement.\"");
	assert_str_at(root, "h", "two at the end\"\"");
	assert_str_at(root, "i", "");
	assert_str_at(root, "j", "\"");
	assert_str_at(root, "k", "tab\there \t \xc3\xa9 # no comment");
	dtn__toml_free(root);
}

static void test_imagedsl_toml__multiline_literal_strings(void **state)
{
	dtn__toml *root = parse_ok("regex2 = '''I [dw]on't need \\d{2} apples'''\n"
				   "lines = '''\nThe first newline is\ntrimmed in raw strings.\n"
				   "   All other whitespace\n   is preserved.\n'''\n"
				   "quot15 = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\n"
				   "apos = ''''That,' she said, 'is still pointless.''''\n"
				   "two = '''x'''''\n"
				   "bs = '''a \\\n b'''\n");

	(void)state;
	assert_str_at(root, "regex2", "I [dw]on't need \\d{2} apples");
	assert_str_at(root, "lines", "The first newline is\ntrimmed in raw strings.\n"
				     "   All other whitespace\n   is preserved.\n");
	assert_str_at(root, "quot15", "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"");
	assert_str_at(root, "apos", "'That,' she said, 'is still pointless.'");
	assert_str_at(root, "two", "x''");
	assert_str_at(root, "bs", "a \\\n b");
	dtn__toml_free(root);
}

static void test_imagedsl_toml__string_errors(void **state)
{
	(void)state;
	expect_error("a = \"open", 1, 5, "unterminated string");
	expect_error("a = \"open\nb = 1\"", 1, 5, "unterminated string");
	expect_error("a = 'open\n'", 1, 5, "unterminated string");
	expect_error("a = \"\"\"open\n\n", 1, 5, "unterminated string");
	expect_error("x = 1\na = '''open\"\"\"", 2, 5, "unterminated string");
	expect_error("a = \"\"\"x\"\"\"\"\"\"", 1, 14, "too many quotes");
	expect_error("a = '''x''''''", 1, 14, "too many quotes");
	expect_error("a = \"\"\"x\"\"\"y", 1, 12, "expected end of line after a value, found 'y'");
	expect_error("a = \"\"\"a\\ b\"\"\"", 1, 9, "invalid escape sequence");
	/* A multi-line string is not a key. */
	expect_error("\"\"\"k\"\"\" = 1", 1, 3, "expected '=' after a key, found '\"'");
}

/* ---- numbers and booleans ---- */

static void test_imagedsl_toml__integers(void **state)
{
	dtn__toml *root = parse_ok("a = 0\nb = +99\nc = -17\nd = 1_000\ne = 5_349_221\n"
				   "f = 1_2_3_4_5\ng = +0\nh = -0\n"
				   "max = 9223372036854775807\nmin = -9223372036854775808\n"
				   "hex = 0xDEADBEEF\nhex2 = 0xdead_beef\nhex3 = 0x00ff\n"
				   "oct = 0o01234567\noct2 = 0o755\nbin = 0b11010110\n"
				   "hexmax = 0x7fffffffffffffff\nbinz = 0b0\n"
				   "arr = [1,-2]\n");

	(void)state;
	assert_int_at(root, "a", 0);
	assert_int_at(root, "b", 99);
	assert_int_at(root, "c", -17);
	assert_int_at(root, "d", 1000);
	assert_int_at(root, "e", 5349221);
	assert_int_at(root, "f", 12345);
	assert_int_at(root, "g", 0);
	assert_int_at(root, "h", 0);
	assert_int_at(root, "max", LLONG_MAX);
	assert_int_at(root, "min", LLONG_MIN);
	assert_int_at(root, "hex", 0xDEADBEEF);
	assert_int_at(root, "hex2", 0xDEADBEEF);
	assert_int_at(root, "hex3", 255);
	assert_int_at(root, "oct", 01234567);
	assert_int_at(root, "oct2", 0755);
	assert_int_at(root, "bin", 214);
	assert_int_at(root, "hexmax", LLONG_MAX);
	assert_int_at(root, "binz", 0);
	assert_int_equal(dtn__toml_int(dtn__toml_at(dtn__toml_get(root, "arr"), 1)), -2);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__integer_errors(void **state)
{
	(void)state;
	expect_error("a = 01", 1, 5, "leading zeros are not allowed");
	expect_error("a = -01", 1, 5, "leading zeros are not allowed");
	expect_error("a = 0_1", 1, 5, "leading zeros are not allowed");
	expect_error("a = 00", 1, 5, "leading zeros are not allowed");
	expect_error("a = 1__0", 1, 5, "invalid number \"1__0\"");
	expect_error("a = 1_", 1, 5, "invalid number \"1_\"");
	expect_error("a = _1", 1, 5, "invalid value \"_1\"");
	expect_error("a = +_1", 1, 5, "invalid value \"+_1\"");
	expect_error("a = ++1", 1, 5, "invalid value \"++1\"");
	expect_error("a = 1-2", 1, 5, "invalid number");
	expect_error("a = 9223372036854775808", 1, 5, "out of range");
	expect_error("a = -9223372036854775809", 1, 5, "out of range");
	expect_error("a = 99999999999999999999999", 1, 5, "out of range");
	expect_error("a = 0x8000000000000000", 1, 5, "out of range");
	expect_error("a = 0b1000000000000000000000000000000000000000000000000000000000000000", 1, 5,
		     "out of range");
	expect_error("a = +0x1", 1, 5, "a sign is not allowed");
	expect_error("a = -0o1", 1, 5, "a sign is not allowed");
	expect_error("a = 0X1F", 1, 5, "invalid number");
	expect_error("a = 0B1", 1, 5, "invalid number");
	expect_error("a = 0x", 1, 5, "invalid number");
	expect_error("a = 0x_1", 1, 5, "invalid number");
	expect_error("a = 0x1_", 1, 5, "invalid number");
	expect_error("a = 0xG", 1, 5, "invalid number");
	expect_error("a = 0o8", 1, 5, "invalid number");
	expect_error("a = 0b102", 1, 5, "invalid number");
	expect_error("a = 1x", 1, 5, "invalid number");
	expect_error("a = +", 1, 5, "invalid value \"+\"");
	expect_error("a = 1 2", 1, 7, "expected end of line after a value, found '2'");
}

static void test_imagedsl_toml__floats(void **state)
{
	dtn__toml *root = parse_ok("a = +1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\n"
				   "f = -2E-2\ng = 6.626e-34\nh = 224_617.445_991_228\n"
				   "i = 0.0\nj = -0.0\nk = 1e1_0\nl = 0e0\nm = 9_9.0_1e-0_1\n"
				   "n = 1e-400\n");

	(void)state;
	assert_float_at(root, "a", 1.0);
	assert_float_at(root, "b", 3.1415);
	assert_float_at(root, "c", -0.01);
	assert_float_at(root, "d", 5e22);
	assert_float_at(root, "e", 1e6);
	assert_float_at(root, "f", -2e-2);
	assert_float_at(root, "g", 6.626e-34);
	assert_float_at(root, "h", 224617.445991228);
	assert_float_at(root, "i", 0.0);
	assert_float_at(root, "j", 0.0);
	assert_true(signbit(dtn__toml_float(path(root, "j"))));
	assert_false(signbit(dtn__toml_float(path(root, "i"))));
	assert_float_at(root, "k", 1e10);
	assert_float_at(root, "l", 0.0);
	assert_float_at(root, "m", 9.901);
	assert_float_at(root, "n", 0.0);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__special_floats(void **state)
{
	dtn__toml *root = parse_ok("a = inf\nb = +inf\nc = -inf\nd = nan\ne = +nan\nf = -nan\n"
				   "g = [inf,nan]\n");

	(void)state;
	assert_true(isinf(dtn__toml_float(path(root, "a"))) && dtn__toml_float(path(root, "a")) > 0);
	assert_true(isinf(dtn__toml_float(path(root, "b"))) && dtn__toml_float(path(root, "b")) > 0);
	assert_true(isinf(dtn__toml_float(path(root, "c"))) && dtn__toml_float(path(root, "c")) < 0);
	assert_true(isnan(dtn__toml_float(path(root, "d"))));
	assert_true(isnan(dtn__toml_float(path(root, "e"))));
	assert_true(isnan(dtn__toml_float(path(root, "f"))));
	assert_int_equal(dtn__toml_type_of(path(root, "f")), DTN__TOML_FLOAT);
	assert_int_equal(dtn__toml_count(path(root, "g")), 2);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__float_errors(void **state)
{
	(void)state;
	expect_error("a = 1.", 1, 5, "invalid number \"1.\"");
	expect_error("a = .5", 1, 5, "invalid value \".5\"");
	expect_error("a = -.5", 1, 5, "invalid value \"-.5\"");
	expect_error("a = 1.e5", 1, 5, "invalid number");
	expect_error("a = 1e", 1, 5, "invalid number");
	expect_error("a = 1e+", 1, 5, "invalid number");
	expect_error("a = 1e_5", 1, 5, "invalid number");
	expect_error("a = 1e5_", 1, 5, "invalid number");
	expect_error("a = 1_.0", 1, 5, "invalid number");
	expect_error("a = 1._0", 1, 5, "invalid number");
	expect_error("a = 1.0_", 1, 5, "invalid number");
	expect_error("a = 1.2.3", 1, 5, "invalid number");
	expect_error("a = 03.14", 1, 5, "leading zeros are not allowed");
	expect_error("a = -03.14", 1, 5, "leading zeros are not allowed");
	expect_error("a = 00e1", 1, 5, "leading zeros are not allowed");
	expect_error("a = 1e400", 1, 5, "out of range");
	expect_error("a = -1.5e999", 1, 5, "out of range");
	expect_error("a = Inf", 1, 5, "invalid value");
	expect_error("a = NaN", 1, 5, "invalid value");
	expect_error("a = infinity", 1, 5, "invalid value");
	expect_error("a = nan1", 1, 5, "invalid value");
	expect_error("a = inf.0", 1, 5, "invalid value");
	expect_error("a = 0x1.0", 1, 5, "invalid number");
}

static void test_imagedsl_toml__booleans(void **state)
{
	dtn__toml *root = parse_ok("t = true\nf = false\narr = [true,false]\n");

	(void)state;
	assert_int_equal(dtn__toml_type_of(path(root, "t")), DTN__TOML_BOOL);
	assert_true(dtn__toml_bool(path(root, "t")));
	assert_false(dtn__toml_bool(path(root, "f")));
	assert_true(dtn__toml_bool(dtn__toml_at(path(root, "arr"), 0)));
	dtn__toml_free(root);
	expect_error("a = True", 1, 5, "invalid value \"True\"");
	expect_error("a = truex", 1, 5, "invalid value \"truex\"");
	expect_error("a = fals", 1, 5, "invalid value \"fals\"");
	expect_error("a = yes", 1, 5, "invalid value \"yes\"");
	expect_error("a = true false", 1, 10, "expected end of line after a value");
}

/* ---- dates and times ---- */

static void test_imagedsl_toml__datetimes(void **state)
{
	static const struct {
		const char *key, *text;
		dtn__toml_datetime_kind kind;
	} want[] = {
		{"odt1", "1979-05-27T07:32:00Z", DTN__TOML_OFFSET_DATETIME},
		{"odt2", "1979-05-27T00:32:00-07:00", DTN__TOML_OFFSET_DATETIME},
		{"odt3", "1979-05-27T00:32:00.999999+14:30", DTN__TOML_OFFSET_DATETIME},
		{"odt4", "1979-05-27 07:32:00z", DTN__TOML_OFFSET_DATETIME},
		{"ldt1", "1979-05-27T07:32:00", DTN__TOML_LOCAL_DATETIME},
		{"ldt2", "1979-05-27t00:32:00.123456789", DTN__TOML_LOCAL_DATETIME},
		{"ldt3", "1979-05-27 07:32:00", DTN__TOML_LOCAL_DATETIME},
		{"ld1", "1979-05-27", DTN__TOML_LOCAL_DATE},
		{"ld2", "2000-02-29", DTN__TOML_LOCAL_DATE},
		{"ld3", "2024-02-29", DTN__TOML_LOCAL_DATE},
		{"ld4", "0000-01-31", DTN__TOML_LOCAL_DATE},
		{"lt1", "07:32:00", DTN__TOML_LOCAL_TIME},
		{"lt2", "00:32:00.999999", DTN__TOML_LOCAL_TIME},
		{"lt3", "23:59:60", DTN__TOML_LOCAL_TIME},
	};
	dtn__toml *root = parse_ok("odt1 = 1979-05-27T07:32:00Z\n"
				   "odt2 = 1979-05-27T00:32:00-07:00\n"
				   "odt3 = 1979-05-27T00:32:00.999999+14:30\n"
				   "odt4 = 1979-05-27 07:32:00z\n"
				   "ldt1 = 1979-05-27T07:32:00\n"
				   "ldt2 = 1979-05-27t00:32:00.123456789\n"
				   "ldt3 = 1979-05-27 07:32:00 # space separator\n"
				   "ld1 = 1979-05-27 # a date, then a comment\n"
				   "ld2 = 2000-02-29\n"
				   "ld3 = 2024-02-29\n"
				   "ld4 = 0000-01-31\n"
				   "lt1 = 07:32:00\n"
				   "lt2 = 00:32:00.999999\n"
				   "lt3 = 23:59:60\n"
				   "arr = [1979-05-27 , 07:32:00,1979-05-27T07:32:00Z]\n");

	(void)state;
	for (size_t i = 0; i < DTN__ARRAY_LEN(want); i++) {
		const dtn__toml *v = dtn__toml_get(root, want[i].key);
		assert_int_equal(dtn__toml_type_of(v), DTN__TOML_DATETIME);
		assert_string_equal(dtn__toml_str(v), want[i].text);
		assert_int_equal(dtn__toml_datetime_kind_of(v), want[i].kind);
	}
	assert_int_equal(dtn__toml_count(path(root, "arr")), 3);
	assert_string_equal(dtn__toml_str(dtn__toml_at(path(root, "arr"), 1)), "07:32:00");
	dtn__toml_free(root);
}

static void test_imagedsl_toml__datetime_errors(void **state)
{
	(void)state;
	expect_error("a = 1979-13-01", 1, 5, "month out of range");
	expect_error("a = 1979-00-01", 1, 5, "month out of range");
	expect_error("a = 1979-01-00", 1, 5, "day out of range");
	expect_error("a = 1979-01-32", 1, 5, "day out of range");
	expect_error("a = 1979-04-31", 1, 5, "day out of range");
	expect_error("a = 1979-02-29", 1, 5, "day out of range");
	expect_error("a = 1900-02-29", 1, 5, "day out of range");
	expect_error("a = 24:00:00", 1, 5, "hour out of range");
	expect_error("a = 12:60:00", 1, 5, "minute out of range");
	expect_error("a = 12:00:61", 1, 5, "second out of range");
	expect_error("a = 1979-05-27T25:00:00", 1, 5, "hour out of range");
	expect_error("a = 1979-05-27T07:32:00+24:00", 1, 5, "time offset out of range");
	expect_error("a = 1979-05-27T07:32:00+01:60", 1, 5, "time offset out of range");
	expect_error("a = 1979-05-27T07:32:00+01", 1, 5, "time offset");
	expect_error("a = 1979-05-27T07:32:00+0100", 1, 5, "time offset");
	expect_error("a = 07:32", 1, 5, "expected HH:MM:SS");
	expect_error("a = 1979-05-27T07:32", 1, 5, "expected HH:MM:SS");
	expect_error("a = 1979-05-27T", 1, 5, "expected HH:MM:SS");
	expect_error("a = 1979-05-27 07", 1, 5, "expected HH:MM:SS");
	expect_error("a = 1979-5-27", 1, 5, "expected YYYY-MM-DD");
	expect_error("a = 1979-05-7", 1, 5, "expected YYYY-MM-DD");
	expect_error("a = 7:32:00", 1, 6, "expected end of line after a value, found ':'");
	expect_error("a = 07:32:00.", 1, 5, "expected digits after '.'");
	expect_error("a = 07:32:00Z", 1, 5, "unexpected characters");
	expect_error("a = 07:32:00+01:00", 1, 5, "unexpected characters");
	expect_error("a = 1979-05-27Z", 1, 5, "unexpected characters");
	expect_error("a = 1979-05-27T07:32:00ZZ", 1, 5, "unexpected characters");
	expect_error("a = 1979-05-27X07:32:00", 1, 5, "unexpected characters");
	expect_error("a = 1979-05-27  07:32:00", 1, 17, "expected end of line after a value");
}

/* ---- arrays and inline tables ---- */

static void test_imagedsl_toml__arrays(void **state)
{
	dtn__toml *root = parse_ok("ints = [ 1, 2, 3 ]\n"
				   "strs = [ \"a\", 'b', \"\"\"c\"\"\", '''d''' ]\n"
				   "nested = [ [ 1, 2 ], [\"a\", [ ]] ]\n"
				   "mixed = [ 0.1, 1, \"x\", true, 1979-05-27, {a = 1}, [] ]\n"
				   "multi = [\n  1,\n  2, # comment\n\n]\n"
				   "crlf = [\r\n 1,\r\n # c\r\n 2\r\n]\r\n"
				   "empty = []\n"
				   "blank = [ # c\n  # c\n  ] # c\n"
				   "tables = [{a = 1}, {b = 2}]\n");
	const dtn__toml *nested = path(root, "nested"), *mixed = path(root, "mixed");

	(void)state;
	assert_int_equal(dtn__toml_count(path(root, "ints")), 3);
	assert_int_equal(dtn__toml_int(dtn__toml_at(path(root, "ints"), 2)), 3);
	assert_string_equal(dtn__toml_str(dtn__toml_at(path(root, "strs"), 3)), "d");
	assert_int_equal(dtn__toml_count(nested), 2);
	assert_int_equal(dtn__toml_type_of(dtn__toml_at(dtn__toml_at(nested, 1), 1)),
			 DTN__TOML_ARRAY);
	assert_int_equal(dtn__toml_count(mixed), 7);
	assert_int_equal(dtn__toml_type_of(dtn__toml_at(mixed, 0)), DTN__TOML_FLOAT);
	assert_int_equal(dtn__toml_type_of(dtn__toml_at(mixed, 4)), DTN__TOML_DATETIME);
	assert_int_equal(dtn__toml_type_of(dtn__toml_at(mixed, 5)), DTN__TOML_TABLE);
	assert_int_equal(dtn__toml_count(path(root, "multi")), 2);
	assert_int_equal(dtn__toml_int(dtn__toml_at(path(root, "crlf"), 1)), 2);
	assert_int_equal(dtn__toml_count(path(root, "empty")), 0);
	assert_int_equal(dtn__toml_count(path(root, "blank")), 0);
	assert_int_at(dtn__toml_at(path(root, "tables"), 1), "b", 2);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__array_errors(void **state)
{
	(void)state;
	expect_error("a = [1,,2]", 1, 8, "expected a value, found ','");
	expect_error("a = [,]", 1, 6, "expected a value, found ','");
	expect_error("a = [1 2]", 1, 8, "expected ',' or ']' in array, found '2'");
	expect_error("a = [1\n2]", 2, 1, "expected ',' or ']' in array, found '2'");
	expect_error("x = 0\na = [1,\n2,\n", 2, 5, "unterminated array");
	expect_error("a = [", 1, 5, "unterminated array");
	expect_error("a = [ # comment", 1, 5, "unterminated array");
	expect_error("a = [1] 2", 1, 9, "expected end of line after a value, found '2'");
	expect_error("a = [1, # \x01\n]", 1, 11, "control character U+0001 in comment");
	expect_error("a = [1 # \x01\n]", 1, 10, "control character U+0001 in comment");
	expect_error("a = [=]", 1, 6, "expected a value, found '='");
}

static void test_imagedsl_toml__inline_tables(void **state)
{
	dtn__toml *root = parse_ok("name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
				   "point = {x=1,y=2}\n"
				   "animal = { type.name = \"pug\", type.age = 3 }\n"
				   "empty = {}\n"
				   "spaced = {  }\n"
				   "nested = { a = { b = { c = 1 } }, arr = [ 1,\n 2 ], "
				   "s = \"\"\"\nx\"\"\" }\n"
				   "[t]\n"
				   "v = { \"quoted key\" = true, 'lit' = 1.5 }\n");
	const dtn__toml *name = path(root, "name");

	(void)state;
	assert_int_equal(dtn__toml_count(name), 2);
	assert_string_equal(dtn__toml_key_at(name, 1), "last");
	assert_str_at(root, "name.first", "Tom");
	assert_int_at(root, "point.y", 2);
	assert_str_at(root, "animal.type.name", "pug");
	assert_int_at(root, "animal.type.age", 3);
	assert_int_equal(dtn__toml_type_of(path(root, "empty")), DTN__TOML_TABLE);
	assert_int_equal(dtn__toml_count(path(root, "spaced")), 0);
	assert_int_at(root, "nested.a.b.c", 1);
	assert_int_equal(dtn__toml_count(path(root, "nested.arr")), 2);
	assert_str_at(root, "nested.s", "x");
	assert_true(dtn__toml_bool(dtn__toml_get(path(root, "t.v"), "quoted key")));
	assert_float_at(root, "t.v.lit", 1.5);
	dtn__toml_free(root);
}

static void test_imagedsl_toml__inline_table_errors(void **state)
{
	(void)state;
	expect_error("a = {b = 1,}", 1, 11, "trailing comma in inline table");
	expect_error("a = {b = 1, }", 1, 11, "trailing comma in inline table");
	expect_error("a = {\n}", 1, 6, "newline in inline table");
	expect_error("a = {b = 1\n}", 1, 11, "newline in inline table");
	expect_error("a = {b = 1,\nc = 2}", 1, 12, "newline in inline table");
	expect_error("a = {b = 1 # c\n}", 1, 12, "expected ',' or '}' in inline table, found '#'");
	expect_error("a = {b = 1 c = 2}", 1, 12, "expected ',' or '}' in inline table, found 'c'");
	expect_error("a = {", 1, 5, "unterminated inline table");
	expect_error("a = {b = 1", 1, 5, "unterminated inline table");
	expect_error("a = {b = 1,", 1, 5, "unterminated inline table");
	expect_error("a = {,}", 1, 6, "expected a key, found ','");
	expect_error("a = {b}", 1, 7, "expected '=' after a key, found '}'");
	expect_error("a = {b = }", 1, 10, "expected a value, found '}'");
	expect_error("a = {b = 1, b = 2}", 1, 13, "key \"b\" defined twice");
	expect_error("a = {b.c = 1, b = 2}", 1, 15, "key \"b\" defined twice");
	expect_error("a = {b = {c = 1}, b.d = 2}", 1, 19, "cannot add keys to inline table \"b\"");
	expect_error("a = {b = 1, b.c = 2}", 1, 13, "key \"b\" already has a value");
}

/* ---- redefinitions ---- */

static void test_imagedsl_toml__redefinition_errors(void **state)
{
	(void)state;
	/* keys */
	expect_error("a = 1\na = 2", 2, 1, "key \"a\" defined twice");
	expect_error("[project]\nname = 'x'\nname = 'y'", 3, 1, "key \"name\" defined twice");
	expect_error("a = 1\n\"a\" = 2", 2, 1, "key \"a\" defined twice");
	expect_error("'a' = 1\n\"\\u0061\" = 2", 2, 1, "key \"a\" defined twice");
	expect_error("\"a\\u0001b\" = 1\n\"a\\u0001b\" = 2", 2, 1, "key \"a?b\" defined twice");
	expect_error("a.b = 1\na.b = 2", 2, 3, "key \"a.b\" defined twice");
	expect_error("a.b.c = 1\na.b = 2", 2, 3, "key \"a.b\" defined twice");
	expect_error("a = 1\na.b = 2", 2, 1, "key \"a\" already has a value");
	expect_error("a = [1]\na.b = 2", 2, 1, "cannot add keys to array \"a\"");
	expect_error("[t]\na = {}\na.b = 2", 3, 1, "cannot add keys to inline table \"a\"");
	expect_error("[product]\ntype = { name = \"Nail\" }\ntype.edible = false", 3, 1,
		     "cannot add keys to inline table \"type\"");
	expect_error("[product]\ntype.name = \"Nail\"\ntype = { edible = false }", 3, 1,
		     "key \"type\" defined twice");
	/* table headers */
	expect_error("[a]\n[a]", 2, 2, "table \"a\" defined twice");
	expect_error("[a]\n[a.b]\n[a]", 3, 2, "table \"a\" defined twice");
	expect_error("[a.b]\n[ a . 'b' ]", 2, 7, "table \"a.b\" defined twice");
	expect_error("[a]\nb = 1\n[a.b]", 3, 4, "key \"a.b\" already has a value");
	expect_error("a = 1\n[a]", 2, 2, "key \"a\" already has a value");
	expect_error("a = 1\n[a.b]", 2, 2, "key \"a\" already has a value");
	/* dotted keys against headers, both ways */
	expect_error("a.b = 1\n[a]", 2, 2, "table \"a\" already defined by dotted keys");
	expect_error("[fruit]\napple.color = \"red\"\n[fruit.apple]", 3, 8,
		     "table \"fruit.apple\" already defined by dotted keys");
	expect_error("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", 3, 14,
		     "table \"fruit.apple.taste\" already defined by dotted keys");
	expect_error("[a.b.c]\n[a]\nb.d = 1\n[a.b]", 4, 4,
		     "table \"a.b\" already defined by dotted keys");
	expect_error("[a.b.c]\nz = 9\n[a]\nb.c.t = 1", 4, 3,
		     "table \"b.c\" has a [header] and cannot be extended with a dotted key");
	expect_error("[a.b]\nc = 1\n[a]\nb.d = 2", 4, 1,
		     "table \"b\" has a [header] and cannot be extended with a dotted key");
	/* inline tables and static arrays are closed */
	expect_error("a = {}\n[a]", 2, 2, "table \"a\" already defined as an inline table");
	expect_error("a = {b = {}}\n[a.b]", 2, 2, "cannot add keys to inline table \"a\"");
	expect_error("a = {b = 1}\n[a.c]", 2, 2, "cannot add keys to inline table \"a\"");
	expect_error("a = {b = []}\n[[a.b]]", 2, 3, "cannot add keys to inline table \"a\"");
	expect_error("a = []\n[[a]]", 2, 3, "cannot add tables to static array \"a\"");
	expect_error("a = [{}]\n[[a]]", 2, 3, "cannot add tables to static array \"a\"");
	expect_error("a = [{b = 1}]\n[a.c]", 2, 2, "cannot add tables to static array \"a\"");
	expect_error("a = [{b = 1}]\n[a]", 2, 2, "key \"a\" already has a value");
	/* arrays of tables */
	expect_error("[[a]]\n[a]", 2, 2, "table \"a\" is already an array of tables");
	expect_error("[a]\n[[a]]", 2, 3, "table \"a\" is not an array of tables");
	expect_error("[[f]]\n[f.p]\n[[f.p]]", 3, 5, "table \"f.p\" is not an array of tables");
	expect_error("[[f]]\n[[f.v]]\n[f.v]", 3, 4, "table \"f.v\" is already an array of tables");
	expect_error("[f.p]\n[[f]]", 2, 3, "table \"f\" is not an array of tables");
	expect_error("[[t.arr]]\n[t]\narr.x = 1", 3, 1, "cannot add keys to array \"arr\"");
	expect_error("[[a]]\nb = 1\nb = 2", 3, 1, "key \"b\" defined twice");
	expect_error("a = 1\n[[a]]", 2, 3, "key \"a\" already has a value");
}

/* What TOML allows around those rules. */
static void test_imagedsl_toml__definitions_allowed(void **state)
{
	dtn__toml *root = parse_ok("a.b.c = 1\n"
				   "a.b.d = 2\n"
				   "a.e = 3\n"
				   "[a.x]\n"        /* a sub-table of a table made by dotted keys */
				   "y = 1\n"
				   "[a.b.f]\n"
				   "[g.h.i]\n"
				   "[g]\n"          /* an implicit table made explicit */
				   "h.j = 1\n"      /* an implicit table extended by a dotted key */
				   "[[k]]\n"
				   "[k.l]\n"
				   "m = 1\n"
				   "[[k]]\n"
				   "[k.l]\n"        /* the same sub-table in a new element */
				   "m = 2\n"
				   "[[k.n]]\n"
				   "[k.n.o]\n");

	(void)state;
	assert_int_at(root, "a.b.c", 1);
	assert_int_at(root, "a.e", 3);
	assert_int_at(root, "a.x.y", 1);
	assert_int_equal(dtn__toml_type_of(path(root, "a.b.f")), DTN__TOML_TABLE);
	assert_int_at(root, "g.h.j", 1);
	assert_int_equal(dtn__toml_type_of(path(root, "g.h.i")), DTN__TOML_TABLE);
	assert_int_at(dtn__toml_at(path(root, "k"), 0), "l.m", 1);
	assert_int_at(dtn__toml_at(path(root, "k"), 1), "l.m", 2);
	assert_int_equal(dtn__toml_type_of(path(dtn__toml_at(dtn__toml_get(dtn__toml_at(
								  path(root, "k"), 1), "n"), 0), "o")),
			 DTN__TOML_TABLE);
	dtn__toml_free(root);
}

/* ---- syntax around keys, values and headers ---- */

static void test_imagedsl_toml__syntax_errors(void **state)
{
	(void)state;
	expect_error("= 1", 1, 1, "expected a key, found '='");
	expect_error("a", 1, 2, "expected '=' after a key, found end of input");
	expect_error("a = 1\nb\n", 2, 2, "expected '=' after a key, found end of line");
	expect_error("a b = 1", 1, 3, "expected '=' after a key, found 'b'");
	expect_error("a.", 1, 3, "expected a key, found end of input");
	expect_error("a..b = 1", 1, 3, "expected a key, found '.'");
	expect_error(".a = 1", 1, 1, "expected a key, found '.'");
	expect_error("a.b. = 1", 1, 6, "expected a key, found '='");
	expect_error("a$ = 1", 1, 2, "expected '=' after a key, found '$'");
	expect_error("caf\xc3\xa9 = 1", 1, 4, "expected '=' after a key, found U+00E9");
	expect_error("\xc3\xa9 = 1", 1, 1, "expected a key, found U+00E9");
	expect_error("a =", 1, 4, "missing value");
	expect_error("a = \nb = 1", 1, 5, "missing value");
	expect_error("a = # comment", 1, 5, "missing value");
	expect_error("a = @", 1, 5, "expected a value, found '@'");
	expect_error("a = 1 b = 2", 1, 7, "expected end of line after a value, found 'b'");
	expect_error("first = \"Tom\" last = \"Preston-Werner\"", 1, 15,
		     "expected end of line after a value, found 'l'");
	expect_error("a = \"x\" \"y\"", 1, 9, "expected end of line after a value");
	expect_error("a = bare", 1, 5, "invalid value \"bare\"");
	/* headers */
	expect_error("[]", 1, 2, "expected a key, found ']'");
	expect_error("[[]]", 1, 3, "expected a key, found ']'");
	expect_error("[a", 1, 3, "expected ']' closing the header, found end of input");
	expect_error("[a\n]", 1, 3, "expected ']' closing the header, found end of line");
	expect_error("[a.]", 1, 4, "expected a key, found ']'");
	expect_error("[.a]", 1, 2, "expected a key, found '.'");
	expect_error("[a b]", 1, 4, "expected ']' closing the header, found 'b'");
	expect_error("[a]]", 1, 4, "expected end of line after a table header, found ']'");
	expect_error("[a] b = 1", 1, 5, "expected end of line after a table header, found 'b'");
	expect_error("[[a]", 1, 4, "expected \"]]\" closing the header, found ']'");
	expect_error("[[a] ]", 1, 4, "expected \"]]\" closing the header, found ']'");
	expect_error("[ [a] ]", 1, 3, "expected a key, found '['");
	expect_error("[\"a\nb\"]", 1, 2, "unterminated string");
	expect_error("['''a''']", 1, 4, "expected ']' closing the header, found '''");
}

/* ---- encodings and line endings ---- */

static void test_imagedsl_toml__crlf(void **state)
{
	dtn__toml *root = parse_ok("# c\r\n[project]\r\nname = \"x\" # c\r\n"
				   "s = \"\"\"\r\nline1\r\nline2 \\\r\n  joined\"\"\"\r\n"
				   "l = '''\r\nraw\r\n'''\r\n");

	(void)state;
	assert_str_at(root, "project.name", "x");
	assert_str_at(root, "project.s", "line1\nline2 joined");
	assert_str_at(root, "project.l", "raw\n");
	dtn__toml_free(root);
	/* Positions count CRLF as one line break; a lone CR is not a line break. */
	expect_error("a = 1\r\nb = 2\r\nb = 3\r\n", 3, 1, "key \"b\" defined twice");
	expect_error("a = 1\rb = 2", 1, 6, "expected end of line after a value");
	expect_error("a = 1\r\r\n", 1, 6, "expected end of line after a value");
	expect_error("\r", 1, 1, "expected a key, found U+000D");
	expect_error("[a]\r", 1, 4, "expected end of line after a table header");
	expect_error("a = [\r1]", 1, 6, "expected a value, found U+000D");
	expect_error("a = '''\rx'''", 1, 8, "carriage return without a line feed in string");
}

static void test_imagedsl_toml__utf8(void **state)
{
	dtn__toml *root;

	(void)state;
	/* Columns count characters, not bytes. */
	expect_error("k = \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" x", 1, 11,
		     "expected end of line after a value, found 'x'");
	expect_error("a = 1\n# caf\xc3\xa9\nb = \"\xff\"", 3, 6, "invalid UTF-8");
	expect_error("a = \"\xc0\xaf\"", 1, 6, "invalid UTF-8");           /* overlong */
	expect_error("a = \"\xe0\x80\xaf\"", 1, 6, "invalid UTF-8");       /* overlong */
	expect_error("a = \"\xf0\x80\x80\xaf\"", 1, 6, "invalid UTF-8");   /* overlong */
	expect_error("a = \"\xed\xa0\x80\"", 1, 6, "invalid UTF-8");       /* surrogate */
	expect_error("a = \"\xf4\x90\x80\x80\"", 1, 6, "invalid UTF-8");   /* past U+10FFFF */
	expect_error("a = \"\x80\"", 1, 6, "invalid UTF-8");               /* lone continuation */
	expect_error("a = \"\xe2\x82\"", 1, 6, "invalid UTF-8");           /* truncated */
	expect_error("# \xc3", 1, 3, "invalid UTF-8");                     /* truncated at the end */
	expect_error("# \xf5\x80\x80\x80", 1, 3, "invalid UTF-8");
	expect_error("\xc3\xa9\xc3\xa9 = \"\xfe\"", 1, 7, "invalid UTF-8");
	/* A byte order mark is skipped and not counted. */
	root = parse_ok("\xef\xbb\xbf" "a = 1\n");
	assert_int_at(root, "a", 1);
	dtn__toml_free(root);
	expect_error("\xef\xbb\xbf" "a = 1 x", 1, 7, "expected end of line after a value");
	expect_error("a = 1\n\xef\xbb\xbf" "b = 2", 2, 1, "expected a key, found U+FEFF");
	root = parse_ok("\"\xf0\x9f\x98\x80\" = \"\xf4\x8f\xbf\xbf\"\n");
	assert_string_equal(dtn__toml_key_at(root, 0), "\xf0\x9f\x98\x80");
	assert_string_equal(dtn__toml_str(dtn__toml_at(root, 0)), "\xf4\x8f\xbf\xbf");
	dtn__toml_free(root);
}

/* The text need not be NUL-terminated: only len bytes are read. */
static void test_imagedsl_toml__length_bounded(void **state)
{
	const char text[] = "a = 12345\nb = \"str\"\nc = [1, 2]";
	char *copy = malloc(sizeof(text) - 1);
	dtn__toml *root;

	(void)state;
	assert_non_null(copy);
	memcpy(copy, text, sizeof(text) - 1);
	root = parse_ok_n(copy, 7);
	assert_int_at(root, "a", 123);
	dtn__toml_free(root);
	root = parse_ok_n(copy, sizeof(text) - 1);
	assert_int_equal(dtn__toml_count(path(root, "c")), 2);
	dtn__toml_free(root);
	expect_error_n(copy, 17, 2, 5, "unterminated string");
	expect_error_n(copy, sizeof(text) - 2, 3, 5, "unterminated array");
	free(copy);
}

/* ---- reading the tree ---- */

static void test_imagedsl_toml__accessors(void **state)
{
	dtn__toml *root = parse_ok("s = \"x\"\ni = 7\nf = 1.5\nb = true\nd = 07:00:00\na = [1]\n");
	const dtn__toml *s = path(root, "s"), *i = path(root, "i"), *f = path(root, "f");
	const dtn__toml *a = path(root, "a");

	(void)state;
	assert_null(dtn__toml_get(NULL, "s"));
	assert_null(dtn__toml_get(root, NULL));
	assert_null(dtn__toml_get(s, "s"));
	assert_null(dtn__toml_get(a, "0"));
	assert_null(dtn__toml_get(root, "missing"));
	assert_int_equal(dtn__toml_count(NULL), 0);
	assert_int_equal(dtn__toml_count(s), 0);
	assert_null(dtn__toml_at(s, 0));
	assert_null(dtn__toml_at(a, 1));
	assert_non_null(dtn__toml_at(a, 0));
	assert_null(dtn__toml_key_at(a, 0));
	assert_null(dtn__toml_str(i));
	assert_null(dtn__toml_str(NULL));
	assert_string_equal(dtn__toml_str(path(root, "d")), "07:00:00");
	assert_int_equal(dtn__toml_int(s), 0);
	assert_int_equal(dtn__toml_int(f), 0);
	assert_true(dtn__toml_float(i) == 0.0);
	assert_false(dtn__toml_bool(i));
	assert_false(dtn__toml_bool(NULL));
	assert_int_equal(dtn__toml_datetime_kind_of(s), 0);
	assert_int_equal(dtn__toml_type_of(NULL), 0);
	assert_int_equal(dtn__toml_type_of(i), DTN__TOML_INTEGER);
	dtn__toml_free(root);
	dtn__toml_free(NULL);
}

/* A NULL err is allowed, and an error never touches err->file. */
static void test_imagedsl_toml__error_record(void **state)
{
	dtn__toml *root = NULL;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn__toml_parse(&root, "a = ", 4, NULL), DTN_ESYNTAX);
	assert_null(root);
	dtn_error_clear(&err);
	snprintf(err.file, sizeof(err.file), "pyproject.toml");
	assert_int_equal(dtn__toml_parse(&root, "a = 1\na = 2", 11, &err), DTN_ESYNTAX);
	assert_string_equal(err.file, "pyproject.toml");
	assert_int_equal(err.code, DTN_ESYNTAX);
	assert_string_equal(err.message, "key \"a\" defined twice");
}

/* A very long key is shortened in the message, between parts of a dotted key too. */
static void test_imagedsl_toml__long_key_in_message(void **state)
{
	dtn__toml *root = NULL;
	dtn_error err;
	char text[1200];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 2; i++) {
		memset(text + n, 'k', 500);
		n += 500;
		memcpy(text + n, " = 1\n", 5);
		n += 5;
	}
	assert_int_equal(dtn__toml_parse(&root, text, n, &err), DTN_ESYNTAX);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.message, "kkk...\" defined twice"));
	assert_true(strlen(err.message) < 200);
	text[0] = 'a';
	for (int i = 0; i < 150; i++)
		memcpy(text + 1 + 2 * i, ".a", 2);
	memcpy(text + 301, " = 1\n", 5);
	memcpy(text + 306, text, 306);
	assert_int_equal(dtn__toml_parse(&root, text, 612, &err), DTN_ESYNTAX);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.message, "\"a.a.a."));
	assert_non_null(strstr(err.message, "...\" defined twice"));
	assert_true(strlen(err.message) < 200);
}

/* ---- limits ---- */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	assert_non_null(s);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

static void test_imagedsl_toml__nesting(void **state)
{
	char *open, *close, *text;
	dtn__toml *root;
	const dtn__toml *v;
	size_t depth = 0;

	(void)state;
	/* 256 nested arrays are fine ... */
	open = repeat("a = ", "[", DTN__TOML_MAX_DEPTH, "");
	close = repeat("", "]", DTN__TOML_MAX_DEPTH, "");
	text = malloc(strlen(open) + strlen(close) + 1);
	assert_non_null(text);
	snprintf(text, strlen(open) + strlen(close) + 1, "%s%s", open, close);
	root = parse_ok(text);
	for (v = dtn__toml_get(root, "a"); dtn__toml_type_of(v) == DTN__TOML_ARRAY;
	     v = dtn__toml_at(v, 0))
		depth++;
	assert_int_equal(depth, DTN__TOML_MAX_DEPTH);
	dtn__toml_free(root);
	free(text);
	free(open);
	free(close);
	/* ... the 257th is refused where it opens, and a huge depth does not recurse away. */
	text = repeat("a = ", "[", DTN__TOML_MAX_DEPTH + 1, "");
	expect_error(text, 1, 4 + DTN__TOML_MAX_DEPTH + 1, "nesting deeper than 256 levels");
	free(text);
	text = repeat("a = ", "[", 1000000, "");
	expect_error(text, 1, 4 + DTN__TOML_MAX_DEPTH + 1, "nesting deeper than 256 levels");
	free(text);
	text = repeat("a = ", "{b = ", 100000, "");
	expect_error(text, 1, 5 + 5 * DTN__TOML_MAX_DEPTH, "nesting deeper than 256 levels");
	free(text);
	/* Key parts count as levels too: in dotted keys, in headers and below them. */
	text = repeat("a", ".a", DTN__TOML_MAX_DEPTH - 1, " = 1");
	root = parse_ok(text);
	dtn__toml_free(root);
	free(text);
	text = repeat("a", ".a", DTN__TOML_MAX_DEPTH, " = 1");
	expect_error(text, 1, 2 * DTN__TOML_MAX_DEPTH + 1, "nesting deeper than 256 levels");
	free(text);
	text = repeat("[a", ".a", DTN__TOML_MAX_DEPTH - 1, "]\nb = 1");
	root = parse_ok(text);
	dtn__toml_free(root);
	free(text);
	text = repeat("[a", ".a", DTN__TOML_MAX_DEPTH - 1, "]\nb = []");
	expect_error(text, 2, 5, "nesting deeper than 256 levels");
	free(text);
	text = repeat("[[a", ".a", DTN__TOML_MAX_DEPTH - 1, "]]");
	expect_error(text, 1, 2 * DTN__TOML_MAX_DEPTH + 1, "nesting deeper than 256 levels");
	free(text);
	text = repeat("x = ", "[", 100000, "\n");
	expect_error(text, 1, 4 + DTN__TOML_MAX_DEPTH + 1, "nesting deeper");
	free(text);
}

/* Many keys in one table: lookups find each one and order is kept. */
static void test_imagedsl_toml__large_table(void **state)
{
	enum { KEYS = 20000 };
	dtn__buf b = DTN__BUF_INIT;
	dtn__toml *root;
	char key[32];

	(void)state;
	for (int i = 0; i < KEYS; i++)
		dtn__buf_printf(&b, "key%d = %d\n", i, i);
	dtn__buf_printf(&b, "[t]\n");
	for (int i = 0; i < KEYS; i++)
		dtn__buf_printf(&b, "\"%d\".x = %d\n", KEYS - i, i);
	assert_false(b.failed);
	root = parse_ok_n(b.data, b.len);
	assert_int_equal(dtn__toml_count(root), KEYS + 1);
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		assert_string_equal(dtn__toml_key_at(root, (size_t)i), key);
		assert_int_equal(dtn__toml_int(dtn__toml_get(root, key)), i);
		snprintf(key, sizeof(key), "%d", KEYS - i);
		assert_int_equal(dtn__toml_int(dtn__toml_get(dtn__toml_get(path(root, "t"), key),
							     "x")), i);
	}
	assert_null(dtn__toml_get(root, "key20000"));
	dtn__toml_free(root);
	/* A duplicate late in a big table is still found. */
	dtn__buf_printf(&b, "\"17\".x = 1\n");
	expect_error_n(b.data, b.len, 2 * KEYS + 2, 6, "key \"17.x\" defined twice");
	dtn__buf_free(&b);
}

/* ---- allocation failures ---- */

static long fail_countdown; /* allocations left before they fail; negative: never fail */
static long live_blocks;

static void *counting_malloc(size_t size)
{
	void *p;

	if (fail_countdown == 0)
		return NULL;
	if (fail_countdown > 0)
		fail_countdown--;
	if ((p = malloc(size)))
		live_blocks++;
	return p;
}

static void *counting_realloc(void *ptr, size_t size)
{
	void *p;

	if (fail_countdown == 0)
		return NULL;
	if (fail_countdown > 0)
		fail_countdown--;
	if ((p = realloc(ptr, size)) && !ptr)
		live_blocks++;
	return p;
}

static void counting_free(void *ptr)
{
	if (ptr)
		live_blocks--;
	free(ptr);
}

static void test_imagedsl_toml__allocation_failures(void **state)
{
	static const char text[] =
		"title = \"alloc\"\n"
		"a.b.c = 'lit'\n"
		"ml = \"\"\"\nmulti \\\n line \\u00e9\"\"\"\n"
		"ints = [1, 0x10, -3, 1_000]\n"
		"floats = [1.5, 2e10, inf]\n"
		"when = 1979-05-27T07:32:00Z\n"
		"nested = [[1, 2], [\"a\", {x = 1, y.z = [true]}]]\n"
		"k01=1\nk02=2\nk03=3\nk04=4\nk05=5\nk06=6\nk07=7\nk08=8\nk09=9\nk10=10\n"
		"k11=1\nk12=2\nk13=3\nk14=4\nk15=5\nk16=6\nk17=7\nk18=8\nk19=9\nk20=10\n"
		"[project]\n"
		"dependencies = [\"requests>=2\", \"numpy\"]\n"
		"[project.optional-dependencies]\n"
		"dev = [\"pytest\"]\n"
		"[[bin]]\nname = \"x\"\n[bin.sub]\n[[bin]]\nname = \"y\"\n";
	dtn_allocator counting = {counting_malloc, counting_realloc, counting_free};
	dtn__toml *root;
	dtn_error err;
	long n;
	int rc = DTN_ENOMEM;

	(void)state;
	for (n = 0; rc != 0; n++) {
		assert_true(n < 100000);
		fail_countdown = n;
		live_blocks = 0;
		dtn_error_clear(&err);
		root = (dtn__toml *)&root;
		dtn_set_allocator(&counting);
		rc = dtn__toml_parse(&root, text, sizeof(text) - 1, &err);
		if (rc == 0) {
			assert_int_equal(dtn__toml_count(root), 29);
			assert_string_equal(dtn__toml_str(dtn__toml_get(root, "ml")), "multi line \xc3\xa9");
			assert_int_equal(dtn__toml_count(path(root, "bin")), 2);
			dtn__toml_free(root);
		}
		dtn_set_allocator(NULL);
		if (rc != 0) {
			assert_int_equal(rc, DTN_ENOMEM);
			assert_int_equal(err.code, DTN_ENOMEM);
			assert_null(root);
		}
		assert_int_equal(live_blocks, 0);
	}
	/* The loop got somewhere: several allocations were needed and each one was failed once. */
	assert_true(n > 50);
	/* Syntax errors found after allocations also free everything. */
	fail_countdown = -1;
	live_blocks = 0;
	dtn_set_allocator(&counting);
	rc = dtn__toml_parse(&root, "a = [{b = 1}, {c = \"x\"}]\n[t]\nx = 1\nx = 2\n", 40, &err);
	dtn_set_allocator(NULL);
	assert_int_equal(rc, DTN_ESYNTAX);
	assert_int_equal(live_blocks, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagedsl_toml__pyproject_basic),
		cmocka_unit_test(test_imagedsl_toml__pyproject_others),
		cmocka_unit_test(test_imagedsl_toml__pyproject_invalid),
		cmocka_unit_test(test_imagedsl_toml__empty_and_blank),
		cmocka_unit_test(test_imagedsl_toml__comments),
		cmocka_unit_test(test_imagedsl_toml__keys),
		cmocka_unit_test(test_imagedsl_toml__dotted_keys),
		cmocka_unit_test(test_imagedsl_toml__tables),
		cmocka_unit_test(test_imagedsl_toml__key_order),
		cmocka_unit_test(test_imagedsl_toml__arrays_of_tables),
		cmocka_unit_test(test_imagedsl_toml__basic_strings),
		cmocka_unit_test(test_imagedsl_toml__escape_errors),
		cmocka_unit_test(test_imagedsl_toml__control_characters),
		cmocka_unit_test(test_imagedsl_toml__literal_strings),
		cmocka_unit_test(test_imagedsl_toml__multiline_basic_strings),
		cmocka_unit_test(test_imagedsl_toml__multiline_literal_strings),
		cmocka_unit_test(test_imagedsl_toml__string_errors),
		cmocka_unit_test(test_imagedsl_toml__integers),
		cmocka_unit_test(test_imagedsl_toml__integer_errors),
		cmocka_unit_test(test_imagedsl_toml__floats),
		cmocka_unit_test(test_imagedsl_toml__special_floats),
		cmocka_unit_test(test_imagedsl_toml__float_errors),
		cmocka_unit_test(test_imagedsl_toml__booleans),
		cmocka_unit_test(test_imagedsl_toml__datetimes),
		cmocka_unit_test(test_imagedsl_toml__datetime_errors),
		cmocka_unit_test(test_imagedsl_toml__arrays),
		cmocka_unit_test(test_imagedsl_toml__array_errors),
		cmocka_unit_test(test_imagedsl_toml__inline_tables),
		cmocka_unit_test(test_imagedsl_toml__inline_table_errors),
		cmocka_unit_test(test_imagedsl_toml__redefinition_errors),
		cmocka_unit_test(test_imagedsl_toml__definitions_allowed),
		cmocka_unit_test(test_imagedsl_toml__syntax_errors),
		cmocka_unit_test(test_imagedsl_toml__crlf),
		cmocka_unit_test(test_imagedsl_toml__utf8),
		cmocka_unit_test(test_imagedsl_toml__length_bounded),
		cmocka_unit_test(test_imagedsl_toml__accessors),
		cmocka_unit_test(test_imagedsl_toml__error_record),
		cmocka_unit_test(test_imagedsl_toml__long_key_in_message),
		cmocka_unit_test(test_imagedsl_toml__nesting),
		cmocka_unit_test(test_imagedsl_toml__large_table),
		cmocka_unit_test(test_imagedsl_toml__allocation_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
