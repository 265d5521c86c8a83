/*
 * context.c - W3C Trace Context: traceparent parsing and formatting.
 */
#include <string.h>

#include "otel_internal.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is invalid in a traceparent */
}

/* Decodes n bytes from 2n lowercase hex digits; false on a bad digit. */
static bool unhex(uint8_t *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int dtn_trace_context_parse(dtn_trace_context *out, const char *tp)
{
	uint8_t version, flags;
	dtn_trace_context ctx;
	size_t len;

	if (!out || !tp)
		return DTN_EINVAL;
	len = strlen(tp);
	/* version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55 */
	if (len < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return DTN_EINVAL;
	if (!unhex(&version, tp, 1) || version == 0xff)
		return DTN_EINVAL;
	if (version == 0 && len != 55)
		return DTN_EINVAL;
	/* A later version may append fields, introduced by '-'. */
	if (len > 55 && tp[55] != '-')
		return DTN_EINVAL;
	if (!unhex(ctx.trace_id, tp + 3, 16) || !unhex(ctx.span_id, tp + 36, 8) ||
	    !unhex(&flags, tp + 53, 1))
		return DTN_EINVAL;
	if (all_zero(ctx.trace_id, 16) || all_zero(ctx.span_id, 8))
		return DTN_EINVAL;
	/* Unknown flag bits are ignored on input: keep sampled and random only. */
	ctx.flags = flags & 0x03;
	*out = ctx;
	return 0;
}

static void hex(char *out, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
}

void dtn__otel_hex(char *out, const uint8_t *b, size_t n)
{
	hex(out, b, n);
	out[2 * n] = '\0';
}

size_t dtn_trace_context_format(const dtn_trace_context *ctx, char *buf, size_t size)
{
	char tmp[56];
	uint8_t flags;

	if (!buf || size == 0)
		return 0;
	buf[0] = '\0';
	if (!ctx || size < sizeof(tmp))
		return 0;
	memcpy(tmp, "00-", 3);
	hex(tmp + 3, ctx->trace_id, 16);
	tmp[35] = '-';
	hex(tmp + 36, ctx->span_id, 8);
	tmp[52] = '-';
	flags = ctx->flags & 0x03;
	hex(tmp + 53, &flags, 1);
	tmp[55] = '\0';
	memcpy(buf, tmp, sizeof(tmp));
	return 55;
}
