/*
 * utf8.c - just enough UTF-8 to classify characters the way the reference SDK's regular
 * expressions do.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

size_t dtn__utf8_decode(const char *s, size_t n, unsigned long *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned long c, min;
	size_t len;

	*cp = n ? u[0] : 0;
	if (!n)
		return 0;
	if (u[0] < 0x80)
		return 1;
	if ((u[0] & 0xe0) == 0xc0)
		len = 2, c = u[0] & 0x1f, min = 0x80;
	else if ((u[0] & 0xf0) == 0xe0)
		len = 3, c = u[0] & 0x0f, min = 0x800;
	else if ((u[0] & 0xf8) == 0xf0)
		len = 4, c = u[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (u[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

bool dtn__utf8_valid(const char *s, size_t n)
{
	unsigned long cp;

	for (size_t i = 0; i < n;) {
		size_t len = dtn__utf8_decode(s + i, n - i, &cp);

		if (!len)
			return false;
		i += len;
	}
	return true;
}

const char *dtn__printable(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	if (!size)
		return buf;
	if (!s)
		s = "(null)";
	for (; *s && n + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[5];
		size_t len;

		if (c >= 0x20 && c != 0x7f) {
			buf[n++] = (char)c;
			continue;
		}
		if (c == '\n')
			len = (size_t)snprintf(esc, sizeof(esc), "\\n");
		else if (c == '\t')
			len = (size_t)snprintf(esc, sizeof(esc), "\\t");
		else if (c == '\r')
			len = (size_t)snprintf(esc, sizeof(esc), "\\r");
		else
			len = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
		if (n + len >= size)
			break;
		memcpy(buf + n, esc, len);
		n += len;
	}
	buf[n] = '\0';
	return buf;
}
