/*
 * test_buf.c - buffers, string lists, errors and the allocation seam.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

static void test_core_buf__grows(void **state)
{
	dtn__buf b = DTN__BUF_INIT;
	char *s;

	(void)state;
	assert_string_equal(dtn__buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		dtn__buf_printf(&b, "%d,", i % 10);
	assert_int_equal(b.len, 2000);
	assert_memory_equal(b.data + 1990, "5,6,7,8,9,", 10);
	s = dtn__buf_detach(&b);
	assert_int_equal(strlen(s), 2000);
	assert_null(b.data);
	dtn__free(s);
}

/* A failed append latches: later appends do nothing, and detach gives NULL. */
static void test_core_buf__latches_failure(void **state)
{
	dtn__buf b = DTN__BUF_INIT;

	(void)state;
	dtn__buf_puts(&b, "ok");
	tu_fail_alloc_after(1);
	for (int i = 0; i < 100; i++)
		dtn__buf_puts(&b, "more text that needs room");
	tu_alloc_reset();
	assert_true(b.failed);
	assert_string_equal(dtn__buf_cstr(&b), "");
	dtn__buf_puts(&b, "x");
	assert_null(dtn__buf_detach(&b));
}

static void test_core_buf__strv(void **state)
{
	dtn__strv v = {0};
	char **copy;

	(void)state;
	assert_int_equal(dtn__strv_push(&v, "a"), 0);
	assert_int_equal(dtn__strv_push(&v, "b"), 0);
	assert_int_equal(dtn_strv_len((const char *const *)v.items), 2);
	assert_null(v.items[2]);
	copy = dtn__strv_dup((const char *const *)v.items);
	assert_string_equal(copy[1], "b");
	assert_null(copy[2]);
	dtn__strv_free_array(copy);
	dtn__strv_free(&v);
	assert_int_equal(dtn_strv_len(NULL), 0);
	assert_int_equal(dtn_strv_len(DTN_STRV("x", "y", "z")), 3);
}

static void test_core_buf__errors(void **state)
{
	dtn_error err;
	char buf[64];

	(void)state;
	dtn_error_clear(&err);
	assert_int_equal(dtn__error_set(&err, DTN_EINVAL, "bad %s", "thing"), DTN_EINVAL);
	dtn_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "bad thing");
	dtn__error_at(&err, "spec.yaml", 7, 5);
	dtn_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "spec.yaml:7:5: bad thing");
	dtn__error_prefix(&err, "step: ");
	assert_string_equal(err.message, "step: bad thing");
	dtn__error_at(&err, "Dockerfile", 3, 0);
	dtn_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "Dockerfile:3: step: bad thing");
	assert_int_equal(dtn_error_format(&err, buf, 4), (int)strlen("Dockerfile:3: step: bad thing"));
	assert_string_equal(buf, "Doc");
	assert_string_equal(dtn_strerror(DTN_ENOMEM), "out of memory");
	assert_string_equal(dtn_strerror(DTN_EOUTSIDE), "path outside the build context");
	assert_string_equal(dtn_strerror(-999), "unknown error");
	assert_string_equal(dtn_strerror(5), "unknown error");
	dtn__error_set(NULL, DTN_EINVAL, "ignored");
}

static void test_core_buf__printable(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(dtn__printable(buf, sizeof(buf), "a\nb\tc\x01"), "a\\nb\\tc\\x01");
	assert_string_equal(dtn__printable(buf, sizeof(buf), NULL), "(null)");
	assert_string_equal(dtn__printable(buf, 6, "abcdefgh"), "abcde");
	assert_string_equal(dtn__printable(buf, 5, "abc\n"), "abc");
	assert_string_equal(dtn__printable(buf, sizeof(buf), "\xc3\xbc"), "\xc3\xbc");
}

static void test_core_buf__read_file(void **state)
{
	const char *dir = tu_mkdtemp();
	char path[4096], *text;
	size_t len;
	dtn_error err;

	(void)state;
	tu_write(dir, "f.txt", "hello");
	snprintf(path, sizeof(path), "%s/f.txt", dir);
	assert_int_equal(dtn__read_file(&text, &len, path, "f.txt", 100, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(text, "hello");
	dtn__free(text);
	assert_int_equal(dtn__read_file(&text, &len, path, "f.txt", 4, &err), DTN_EINVAL);
	assert_non_null(strstr(err.message, "too large"));
	assert_int_equal(dtn__read_file(&text, &len, dir, "dir", 100, &err), DTN_EINVAL);
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(dtn__read_file(&text, &len, path, "none", 100, &err), DTN_ENOTFOUND);
	assert_string_equal(err.message, "none does not exist");
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_buf__grows),
		cmocka_unit_test(test_core_buf__latches_failure),
		cmocka_unit_test(test_core_buf__strv),
		cmocka_unit_test(test_core_buf__errors),
		cmocka_unit_test(test_core_buf__printable),
		cmocka_unit_test(test_core_buf__read_file),
	};

	return cmocka_run_group_tests_name("core/buf", tests, NULL, NULL);
}
