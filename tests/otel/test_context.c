/*
 * test_context.c - W3C trace context: traceparent parsing (valid and invalid values) and
 * formatting, and the traceparent of spans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "dtn_otel.h"

static const char example[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_otel_context__parses_the_w3c_example(void **state)
{
	dtn_trace_context c;
	char buf[64];

	(void)state;
	assert_int_equal(dtn_trace_context_parse(&c, example), 0);
	assert_int_equal(c.trace_id[0], 0x4b);
	assert_int_equal(c.trace_id[15], 0x36);
	assert_int_equal(c.span_id[0], 0x00);
	assert_int_equal(c.span_id[7], 0xb7);
	assert_int_equal(c.flags, 1);
	assert_int_equal(dtn_trace_context_format(&c, buf, sizeof(buf)), 55);
	assert_string_equal(buf, example);
}

static void test_otel_context__rejects_invalid_values(void **state)
{
	static const char *const bad[] = {
		"",
		"00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* no flags */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",    /* short flags */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span id */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 is 55 long */
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* no '-' after */
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   /* separators */
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   /* not hex */
		"0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",   /* flags */
	};
	dtn_trace_context c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dtn_trace_context_parse(&c, bad[i]) != DTN_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(dtn_trace_context_parse(&c, NULL), DTN_EINVAL);
}

/* A later version may append fields after a '-'; unknown flag bits are dropped. */
static void test_otel_context__future_versions_and_flags(void **state)
{
	dtn_trace_context c;
	char buf[64];

	(void)state;
	assert_int_equal(dtn_trace_context_parse(
		&c, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"), 0);
	assert_int_equal(dtn_trace_context_parse(
		&c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"), 0);
	assert_int_equal(c.flags, 0x03);
	dtn_trace_context_format(&c, buf, sizeof(buf));
	assert_string_equal(buf + 53, "03");
	/* too small a buffer: nothing, and "" */
	assert_int_equal(dtn_trace_context_format(&c, buf, 10), 0);
	assert_string_equal(buf, "");
}

/* Without telemetry there is no span, and no context to hand on. */
static void test_otel_context__no_span_no_context(void **state)
{
	char buf[64] = "junk";

	(void)state;
	assert_null(dtn_otel_default());
	assert_null(dtn_span_start("X.y", DTN_SPAN_INTERNAL, NULL));
	assert_int_equal(dtn_span_traceparent(NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_otel_context__parses_the_w3c_example),
		cmocka_unit_test(test_otel_context__rejects_invalid_values),
		cmocka_unit_test(test_otel_context__future_versions_and_flags),
		cmocka_unit_test(test_otel_context__no_span_no_context),
	};

	return cmocka_run_group_tests_name("otel/context", tests, NULL, NULL);
}
