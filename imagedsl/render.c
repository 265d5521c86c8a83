/*
 * render.c - escaping for each place a string can land in the Dockerfile.
 *
 * The shell-word rules reproduce the reference SDK's quoting helper byte for byte; getting them
 * wrong would change the Dockerfile text and so the server's build cache key. The other
 * renderers are ours and exist where the SDK's output would not build as written.
 */
#include <jansson.h>
#include <string.h>

#include "render.h"

static bool is_js_space_cp(unsigned long cp)
{
	switch (cp) {
	case ' ': case '\t': case '\n': case '\v': case '\f': case '\r':
	case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
	case 0x3000: case 0xfeff:
		return true;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

/* The code point at s (a lone invalid byte counts as itself, length 1). */
static size_t next_cp(const char *s, unsigned long *cp)
{
	size_t n = dtn__utf8_decode(s, strnlen(s, 4), cp);

	return n ? n : 1;
}

bool dtn__has_js_space(const char *s)
{
	unsigned long cp;

	for (; *s; s += next_cp(s, &cp)) {
		next_cp(s, &cp);
		if (is_js_space_cp(cp))
			return true;
	}
	return false;
}

char *dtn__trim_js_space(const char *s)
{
	const char *start = s, *end = s;
	unsigned long cp;
	size_t n;

	for (const char *p = s; *p; p += n) {
		n = next_cp(p, &cp);
		if (!is_js_space_cp(cp)) {
			if (start == s && end == s)
				start = p;
			end = p + n;
		}
	}
	if (end == s)
		return dtn__strdup("");
	return dtn__strndup(start, (size_t)(end - start));
}

static bool is_special(char c)
{
	return c && strchr("#!\"$&'()*,:;<=>?@[\\]^`{|}~", c) != NULL;
}

static bool is_ascii_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Rule 5: backslash before each special character, except that a letter and colon in front
 * of one ("C:\*") are copied as they are. */
static void escape_specials(dtn__buf *b, const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		if (is_ascii_letter(s[i]) && s[i + 1] == ':' && is_special(s[i + 2])) {
			dtn__buf_add(b, s + i, 2);
			dtn__buf_putc(b, '\\');
			dtn__buf_putc(b, s[i + 2]);
			i += 2;
		} else {
			if (is_special(s[i]))
				dtn__buf_putc(b, '\\');
			dtn__buf_putc(b, s[i]);
		}
	}
}

static void replace_char(dtn__buf *b, const char *s, char c, const char *with)
{
	for (; *s; s++) {
		if (*s == c)
			dtn__buf_puts(b, with);
		else
			dtn__buf_putc(b, *s);
	}
}

void dtn__render_shell_word(dtn__buf *b, const char *s)
{
	bool apos = strchr(s, '\'') != NULL, space = dtn__has_js_space(s);
	bool dquote = strchr(s, '"') != NULL, bslash = strchr(s, '\\') != NULL;

	if (!*s) {
		dtn__buf_puts(b, "''");
	} else if (apos && strchr(s, '!')) {
		dtn__buf_putc(b, '\'');
		replace_char(b, s, '\'', "'\"'\"'");
		dtn__buf_putc(b, '\'');
	} else if ((dquote || space || bslash) && !apos) {
		dtn__buf_putc(b, '\'');
		dtn__buf_puts(b, s);
		dtn__buf_putc(b, '\'');
	} else if (dquote || apos || space) {
		dtn__buf_putc(b, '"');
		for (; *s; s++) {
			if (strchr("\"\\$`", *s))
				dtn__buf_putc(b, '\\');
			dtn__buf_putc(b, *s);
		}
		dtn__buf_putc(b, '"');
	} else {
		escape_specials(b, s);
	}
}

int dtn__render_json_array(dtn__buf *b, const char *const *items)
{
	json_t *arr = json_array();
	char *text = NULL;
	int rc = DTN_ENOMEM;

	if (!arr)
		return DTN_ENOMEM;
	for (size_t i = 0; items && items[i]; i++) {
		if (!dtn__utf8_valid(items[i], strlen(items[i]))) {
			rc = DTN_EINVAL;
			goto out;
		}
		if (json_array_append_new(arr, json_string(items[i])) < 0)
			goto out;
	}
	/* jansson writes ", " between items unless asked to be compact, as Docker users do */
	if (!(text = json_dumps(arr, JSON_ENCODE_ANY)))
		goto out;
	dtn__buf_puts(b, text);
	rc = b->failed ? DTN_ENOMEM : 0;
out:
	free(text);
	json_decref(arr);
	return rc;
}

/* Characters that need escaping in a COPY path: Docker's word lexer sees quotes, `$` and
 * backslashes, and its wildcard matcher sees `*`, `?` and `[`. */
static const char lexer_chars[] = "\"'$\\";
static const char glob_chars[] = "*?[]\\";

/* Whether a path can be written as it is; sources are also wildcard patterns. */
static bool copy_path_is_plain(const char *s, bool source)
{
	if (!*s || dtn__has_js_space(s) || strpbrk(s, lexer_chars))
		return false;
	return !source || !strpbrk(s, glob_chars);
}

/* Puts a backslash before each character of `chars` in s. */
static void escape_chars(dtn__buf *b, const char *s, const char *chars)
{
	for (; *s; s++) {
		if (strchr(chars, *s))
			dtn__buf_putc(b, '\\');
		dtn__buf_putc(b, *s);
	}
}

/*
 * The JSON form of COPY. Docker still runs each item through its word lexer (quotes, `$` and
 * backslashes are special there) and matches sources as wildcard patterns, so a source is
 * escaped for the matcher first and then, like the destination, for the lexer.
 */
static int render_copy_json(dtn__buf *b, const char *src, const char *dst)
{
	dtn__buf glob = DTN__BUF_INIT, words[2] = {DTN__BUF_INIT, DTN__BUF_INIT};
	int rc = DTN_ENOMEM;

	escape_chars(&glob, src, glob_chars);
	escape_chars(&words[0], dtn__buf_cstr(&glob), lexer_chars);
	escape_chars(&words[1], dst, lexer_chars);
	if (glob.failed || words[0].failed || words[1].failed)
		goto out;
	dtn__buf_puts(b, "COPY ");
	rc = dtn__render_json_array(b, (const char *const[]){dtn__buf_cstr(&words[0]),
							     dtn__buf_cstr(&words[1]), NULL});
	dtn__buf_putc(b, '\n');
	if (rc == 0 && b->failed)
		rc = DTN_ENOMEM;
out:
	dtn__buf_free(&glob);
	dtn__buf_free(&words[0]);
	dtn__buf_free(&words[1]);
	return rc;
}

int dtn__render_copy(dtn__buf *b, const char *src, const char *dst)
{
	if (copy_path_is_plain(src, true) && copy_path_is_plain(dst, false)) {
		dtn__buf_printf(b, "COPY %s %s\n", src, dst);
		return b->failed ? DTN_ENOMEM : 0;
	}
	return render_copy_json(b, src, dst);
}

void dtn__render_quoted(dtn__buf *b, const char *s)
{
	dtn__buf_putc(b, '"');
	for (; *s; s++) {
		if (strchr("\"\\$", *s))
			dtn__buf_putc(b, '\\');
		dtn__buf_putc(b, *s);
	}
	dtn__buf_putc(b, '"');
}

/* The UTF-16 code unit at position `unit` (0 or 1) of code point cp. */
static unsigned utf16_unit(unsigned long cp, int unit)
{
	if (cp < 0x10000)
		return (unsigned)cp;
	cp -= 0x10000;
	return unit == 0 ? 0xd800 + (unsigned)(cp >> 10) : 0xdc00 + (unsigned)(cp & 0x3ff);
}

int dtn__compare_utf16(const char *a, const char *b)
{
	while (*a && *b) {
		unsigned long ca, cb;
		size_t na = next_cp(a, &ca), nb = next_cp(b, &cb);

		if (ca != cb) {
			unsigned ua = utf16_unit(ca, 0), ub = utf16_unit(cb, 0);

			if (ua == ub) {
				ua = utf16_unit(ca, 1);
				ub = utf16_unit(cb, 1);
			}
			return ua < ub ? -1 : 1;
		}
		a += na;
		b += nb;
	}
	return *a ? 1 : (*b ? -1 : 0);
}
