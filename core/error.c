/*
 * error.c - error codes, their names and the dtn_error record.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const names[] = {
	"success",
	"error",
	"out of memory",
	"invalid argument",
	"not found",
	"input/output error",
	"syntax error",
	"stopped by a callback",
	"path outside the build context",
	"not supported",
	"changed while being read",
	"could not connect",
	"timed out",
	"interrupted",
	"authentication failed",
	"configuration error",
	"already exists",
	"server error",
	"rate limited",
	"build failed",
	"malformed server response",
	"in use or busy",
};

const char *dtn_strerror(int code)
{
	if (code > 0 || (size_t)-code >= DTN__ARRAY_LEN(names))
		return "unknown error";
	return names[-code];
}

void dtn_error_clear(dtn_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int dtn__error_setv(dtn_error *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
	}
	return code;
}

int dtn__error_set(dtn_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dtn__error_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

void dtn__error_at(dtn_error *err, const char *file, int line, int column)
{
	if (!err)
		return;
	if (file)
		snprintf(err->file, sizeof(err->file), "%s", file);
	err->line = line;
	err->column = column;
}

int dtn_error_format(const dtn_error *err, char *buf, size_t size)
{
	if (!err)
		return snprintf(buf, size, "%s", "");
	if (!err->file[0] && err->line > 0)
		return snprintf(buf, size, "line %d: %s", err->line, err->message);
	if (!err->file[0])
		return snprintf(buf, size, "%s", err->message);
	if (err->line <= 0)
		return snprintf(buf, size, "%s: %s", err->file, err->message);
	if (err->column <= 0)
		return snprintf(buf, size, "%s:%d: %s", err->file, err->line, err->message);
	return snprintf(buf, size, "%s:%d:%d: %s", err->file, err->line, err->column,
			err->message);
}

void dtn__error_prefix(dtn_error *err, const char *prefix)
{
	size_t plen, mlen, cap;

	if (!err)
		return;
	cap = sizeof(err->message) - 1;
	plen = strlen(prefix);
	if (plen > cap)
		plen = cap;
	mlen = strnlen(err->message, cap);
	if (mlen > cap - plen)
		mlen = cap - plen;
	memmove(err->message + plen, err->message, mlen);
	memcpy(err->message, prefix, plen);
	err->message[plen + mlen] = '\0';
}
