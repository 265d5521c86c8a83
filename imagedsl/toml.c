/*
 * toml.c - a recursive-descent TOML 1.0 reader over an in-memory buffer.
 *
 * The text is checked to be UTF-8 once, up front, so the parser only ever looks at bytes. Line
 * and column numbers are not tracked while parsing; the failing byte offset is turned into a
 * position only when an error is reported.
 *
 * TOML's rules about what may be defined where are kept as flags on the tables themselves:
 * a table is "explicit" once a [header] named it, "dotted" once dotted keys created or entered
 * it, and "frozen" when it was written inline. Arrays written as values are static; only arrays
 * created by [[header]] may grow through headers.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "toml.h"

enum {
	F_EXPLICIT = 1, /* table named by a [header], or an element of an array of tables */
	F_DOTTED = 2,   /* table created or entered through a dotted key */
	F_FROZEN = 4,   /* inline table: complete once its closing brace is read */
	F_AOT = 8       /* array created by [[header]]; other arrays are static values */
};

/* Tables with at least this many keys get a hash index, so big tables stay linear to build. */
#define INDEX_MIN 16

typedef struct entry {
	char *key;
	dtn__toml *val;
} entry;

struct dtn__toml {
	unsigned char type;
	unsigned char flags; /* F_* for tables and arrays, the kind for date-times */
	unsigned short depth;
	union {
		struct {
			entry *items;
			size_t len, cap;
			size_t *index; /* open addressing; a slot holds position + 1, 0 is empty */
			size_t index_cap;
		} t;
		struct {
			dtn__toml **items;
			size_t len, cap;
		} a;
		char *s;
		long long i;
		double f;
		bool b;
	} u;
};

/* One part of a dotted key, with where it was written (for messages). */
typedef struct keypart {
	char *name;
	const char *pos;
} keypart;

typedef struct keypath {
	keypart *parts;
	size_t len, cap;
} keypath;

typedef struct parser {
	const char *start; /* lines and columns are counted from here */
	const char *p;
	const char *end;
	dtn_error *err;
	dtn__toml *root;
	dtn__toml *cur; /* the table key/value lines go to */
	dtn__buf scratch;
} parser;

#define KEY_TEXT_SIZE 160

/* ---- characters ---- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_bare_key_char(char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}

/* Characters that can make up a number, a boolean, inf or nan. */
static bool is_token_char(char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == '+' || c == '-';
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_digit_in(char c, int base)
{
	if (base == 16)
		return hex_value(c) >= 0;
	return c >= '0' && c < '0' + base;
}

/* Control characters TOML forbids in strings and comments (tab is allowed). */
static bool is_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The first byte that does not start a valid UTF-8 sequence, or NULL. */
static const char *utf8_find_invalid(const char *s, const char *end)
{
	unsigned long cp;
	size_t n;

	while (s < end) {
		if ((unsigned char)*s < 0x80) {
			s++;
			continue;
		}
		if (!(n = dtn__utf8_decode(s, (size_t)(end - s), &cp)))
			return s;
		s += n;
	}
	return NULL;
}

static void utf8_encode(dtn__buf *b, uint32_t cp)
{
	char out[4];
	size_t n;

	if (cp < 0x80) {
		out[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6), n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12), n = 3;
	} else {
		out[0] = (char)(0xf0 | cp >> 18), n = 4;
	}
	for (size_t i = 1; i < n; i++)
		out[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f));
	dtn__buf_add(b, out, n);
}

/* ---- errors ---- */

/* Line and column (both 1-based, the column in characters) of `at`. */
static void position(const char *start, const char *at, int *line, int *column)
{
	long l = 1, c = 1;

	for (const char *p = start; p < at; p++) {
		if (*p == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)*p & 0xc0) != 0x80) {
			c++;
		}
	}
	*line = l > INT_MAX ? INT_MAX : (int)l;
	*column = c > INT_MAX ? INT_MAX : (int)c;
}

static int fail(parser *ps, const char *at, const char *fmt, ...) DTN__PRINTF(3, 4);

static int fail(parser *ps, const char *at, const char *fmt, ...)
{
	va_list ap;
	int line, column;

	if (!ps->err)
		return DTN_ESYNTAX;
	va_start(ap, fmt);
	dtn__error_setv(ps->err, DTN_ESYNTAX, fmt, ap);
	va_end(ap);
	position(ps->start, at, &line, &column);
	dtn__error_at(ps->err, NULL, line, column);
	return DTN_ESYNTAX;
}

static int nomem(parser *ps)
{
	dtn__error_set(ps->err, DTN_ENOMEM, "out of memory");
	dtn__error_at(ps->err, NULL, 0, 0);
	return DTN_ENOMEM;
}

/* Names the character at p for "expected X, found Y" messages. */
static const char *describe(const parser *ps, const char *p, char *buf, size_t size)
{
	unsigned long cp;

	if (p >= ps->end)
		return "end of input";
	if (*p == '\n' || (*p == '\r' && p + 1 < ps->end && p[1] == '\n'))
		return "end of line";
	if (*p > 0x20 && *p < 0x7f) {
		snprintf(buf, size, "'%c'", *p);
		return buf;
	}
	dtn__utf8_decode(p, (size_t)(ps->end - p), &cp);
	snprintf(buf, size, "U+%04lX", cp);
	return buf;
}

static int unexpected(parser *ps, const char *expected)
{
	char buf[16];

	return fail(ps, ps->p, "expected %s, found %s", expected,
		    describe(ps, ps->p, buf, sizeof(buf)));
}

static int bad_control(parser *ps, const char *at, const char *where)
{
	if (*at == '\r')
		return fail(ps, at, "carriage return without a line feed in %s", where);
	return fail(ps, at, "control character U+%04X in %s", (unsigned)(unsigned char)*at, where);
}

static size_t utf8_seq_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* The first n parts of a key joined with dots, for messages: control characters become '?'
 * and a long key is cut (on a character boundary) with "...". */
static const char *key_text(const keypath *kp, size_t n, char *buf, size_t size)
{
	const size_t room = size - 4;
	size_t o = 0, len;

	for (size_t i = 0; i < n; i++) {
		if (i) {
			if (o + 1 > room)
				goto cut;
			buf[o++] = '.';
		}
		for (const char *s = kp->parts[i].name; *s; s += len) {
			len = utf8_seq_len((unsigned char)*s);
			if (o + len > room)
				goto cut;
			if (len == 1 && is_control((unsigned char)*s))
				buf[o] = '?';
			else
				memcpy(buf + o, s, len);
			o += len;
		}
	}
	buf[o] = '\0';
	return buf;
cut:
	memcpy(buf + o, "...", 4);
	return buf;
}

/* ---- values ---- */

static void node_free(dtn__toml *v)
{
	if (!v)
		return;
	switch (v->type) {
	case DTN__TOML_TABLE:
		for (size_t i = 0; i < v->u.t.len; i++) {
			dtn__free(v->u.t.items[i].key);
			node_free(v->u.t.items[i].val);
		}
		dtn__free(v->u.t.items);
		dtn__free(v->u.t.index);
		break;
	case DTN__TOML_ARRAY:
		for (size_t i = 0; i < v->u.a.len; i++)
			node_free(v->u.a.items[i]);
		dtn__free(v->u.a.items);
		break;
	case DTN__TOML_STRING:
	case DTN__TOML_DATETIME:
		dtn__free(v->u.s);
		break;
	default:
		break;
	}
	dtn__free(v);
}

/* A new empty value; containers are refused past the nesting bound. */
static int node_new(parser *ps, dtn__toml_type type, unsigned depth, const char *at,
		    dtn__toml **out)
{
	dtn__toml *v;

	*out = NULL;
	if ((type == DTN__TOML_TABLE || type == DTN__TOML_ARRAY) && depth > DTN__TOML_MAX_DEPTH)
		return fail(ps, at, "nesting deeper than %d levels", DTN__TOML_MAX_DEPTH);
	if (!(v = dtn__calloc(1, sizeof(*v))))
		return nomem(ps);
	v->type = (unsigned char)type;
	v->depth = (unsigned short)depth;
	*out = v;
	return 0;
}

/* A string or date-time value owning s (freed on failure). */
static int node_text(parser *ps, dtn__toml_type type, char *s, dtn__toml **out)
{
	int rc;

	if (!s)
		return nomem(ps);
	if ((rc = node_new(ps, type, 0, NULL, out)) < 0) {
		dtn__free(s);
		return rc;
	}
	(*out)->u.s = s;
	return 0;
}

static size_t hash_key(const char *s)
{
	uint64_t h = 14695981039346656037u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return (size_t)h;
}

static void index_put(size_t *slots, size_t cap, const char *key, size_t pos)
{
	size_t i = hash_key(key) & (cap - 1);

	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = pos + 1;
}

/* Rebuilds the hash index of table t with room for four times its keys. */
static bool index_grow(dtn__toml *t)
{
	size_t cap = 64, *slots;

	while (cap < t->u.t.len * 4)
		cap *= 2;
	if (!(slots = dtn__calloc(cap, sizeof(*slots))))
		return false;
	for (size_t i = 0; i < t->u.t.len; i++)
		index_put(slots, cap, t->u.t.items[i].key, i);
	dtn__free(t->u.t.index);
	t->u.t.index = slots;
	t->u.t.index_cap = cap;
	return true;
}

static dtn__toml *table_find(const dtn__toml *t, const char *key)
{
	size_t i, slot, mask;

	if (!t->u.t.index) {
		for (i = 0; i < t->u.t.len; i++)
			if (!strcmp(t->u.t.items[i].key, key))
				return t->u.t.items[i].val;
		return NULL;
	}
	mask = t->u.t.index_cap - 1;
	for (i = hash_key(key) & mask; (slot = t->u.t.index[i]); i = (i + 1) & mask)
		if (!strcmp(t->u.t.items[slot - 1].key, key))
			return t->u.t.items[slot - 1].val;
	return NULL;
}

/* Adds key (not yet present) to table t. Takes key and val: on failure they are either freed
 * or already owned by t, which the caller frees with the rest of the tree. */
static int table_add(parser *ps, dtn__toml *t, char *key, dtn__toml *val)
{
	entry *items;
	size_t cap;

	if (t->u.t.len == t->u.t.cap) {
		cap = t->u.t.cap ? t->u.t.cap * 2 : 4;
		if (cap > SIZE_MAX / sizeof(*items) ||
		    !(items = dtn__realloc(t->u.t.items, cap * sizeof(*items)))) {
			dtn__free(key);
			node_free(val);
			return nomem(ps);
		}
		t->u.t.items = items;
		t->u.t.cap = cap;
	}
	t->u.t.items[t->u.t.len++] = (entry){key, val};
	if (t->u.t.len >= INDEX_MIN && t->u.t.len * 2 > t->u.t.index_cap)
		return index_grow(t) ? 0 : nomem(ps);
	if (t->u.t.index)
		index_put(t->u.t.index, t->u.t.index_cap, key, t->u.t.len - 1);
	return 0;
}

/* Appends v to array a; v is freed on failure. */
static int array_push(parser *ps, dtn__toml *a, dtn__toml *v)
{
	dtn__toml **items;
	size_t cap;

	if (a->u.a.len == a->u.a.cap) {
		cap = a->u.a.cap ? a->u.a.cap * 2 : 4;
		if (cap > SIZE_MAX / sizeof(*items) ||
		    !(items = dtn__realloc(a->u.a.items, cap * sizeof(*items)))) {
			node_free(v);
			return nomem(ps);
		}
		a->u.a.items = items;
		a->u.a.cap = cap;
	}
	a->u.a.items[a->u.a.len++] = v;
	return 0;
}

/* Adds a new empty table or array to table t under the name of key part k. */
static int add_child(parser *ps, dtn__toml *t, const keypart *k, dtn__toml_type type,
		     unsigned flags, dtn__toml **out)
{
	dtn__toml *c;
	char *name;
	int rc;

	if ((rc = node_new(ps, type, t->depth + 1u, k->pos, &c)) < 0)
		return rc;
	c->flags = (unsigned char)flags;
	if (!(name = dtn__strdup(k->name))) {
		node_free(c);
		return nomem(ps);
	}
	if ((rc = table_add(ps, t, name, c)) < 0)
		return rc;
	*out = c;
	return 0;
}

/* ---- whitespace, newlines and comments ---- */

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

/* Length of the newline at p: 1 for LF, 2 for CRLF, 0 otherwise (a lone CR included). */
static size_t newline_at(const parser *ps, const char *p)
{
	if (p < ps->end && *p == '\n')
		return 1;
	if (p + 1 < ps->end && p[0] == '\r' && p[1] == '\n')
		return 2;
	return 0;
}

/* Skips a comment from its '#' up to, not including, the end of its line. */
static int skip_comment(parser *ps)
{
	for (ps->p++; ps->p < ps->end && !newline_at(ps, ps->p); ps->p++)
		if (is_control((unsigned char)*ps->p))
			return bad_control(ps, ps->p, "comment");
	return 0;
}

/* Skips whitespace, newlines and comments, as allowed between array elements. */
static int skip_blank(parser *ps)
{
	size_t nl;
	int rc;

	for (;;) {
		skip_ws(ps);
		if ((nl = newline_at(ps, ps->p))) {
			ps->p += nl;
		} else if (ps->p < ps->end && *ps->p == '#') {
			if ((rc = skip_comment(ps)) < 0)
				return rc;
		} else {
			return 0;
		}
	}
}

/* After a key/value pair or a header only whitespace and a comment may end the line. */
static int end_of_line(parser *ps, const char *after)
{
	char what[64];
	size_t nl;
	int rc;

	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '#' && (rc = skip_comment(ps)) < 0)
		return rc;
	if (ps->p >= ps->end)
		return 0;
	if ((nl = newline_at(ps, ps->p))) {
		ps->p += nl;
		return 0;
	}
	snprintf(what, sizeof(what), "end of line after %s", after);
	return unexpected(ps, what);
}

/* ---- strings ---- */

static bool is_triple(const parser *ps, char quote)
{
	return ps->end - ps->p >= 3 && ps->p[0] == quote && ps->p[1] == quote && ps->p[2] == quote;
}

/* \uXXXX or \UXXXXXXXX at bs; the code point must be a Unicode scalar value other than 0. */
static int unicode_escape(parser *ps, const char *bs, int digits)
{
	uint32_t cp = 0;
	int d;

	for (int i = 0; i < digits; i++) {
		if (ps->end - bs < 3 + i || (d = hex_value(bs[2 + i])) < 0)
			return fail(ps, bs, "invalid escape sequence: \\%c needs %d hexadecimal digits",
				    bs[1], digits);
		cp = cp << 4 | (uint32_t)d;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return fail(ps, bs, "escape \"%.*s\" is not a Unicode scalar value", digits + 2, bs);
	if (cp == 0)
		return fail(ps, bs, "U+0000 is not supported in strings");
	utf8_encode(&ps->scratch, cp);
	ps->p = bs + 2 + digits;
	return 0;
}

/* A backslash ending a line of a multi-line basic string: it and all whitespace and newlines
 * after it are dropped. Returns false when the backslash does not end its line. */
static bool line_ending_backslash(parser *ps, const char *bs)
{
	const char *p = bs + 1;
	size_t nl;

	while (p < ps->end && (*p == ' ' || *p == '\t'))
		p++;
	if (!newline_at(ps, p))
		return false;
	for (;;) {
		if (p < ps->end && (*p == ' ' || *p == '\t'))
			p++;
		else if ((nl = newline_at(ps, p)))
			p += nl;
		else
			break;
	}
	ps->p = p;
	return true;
}

static int escape(parser *ps, const char *open, bool multi)
{
	static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
	const char *bs = ps->p, *hit;
	char buf[16];

	if (bs + 1 >= ps->end)
		return fail(ps, open, "unterminated string");
	if (bs[1] == 'u' || bs[1] == 'U')
		return unicode_escape(ps, bs, bs[1] == 'u' ? 4 : 8);
	if (bs[1] && (hit = strchr(from, bs[1]))) {
		dtn__buf_putc(&ps->scratch, to[hit - from]);
		ps->p = bs + 2;
		return 0;
	}
	if (multi && line_ending_backslash(ps, bs))
		return 0;
	return fail(ps, bs, "invalid escape sequence: backslash followed by %s",
		    describe(ps, bs + 1, buf, sizeof(buf)));
}

/* At a quote inside a multi-line string: up to two quotes are content, three end the string
 * and one or two more right before them are still content. *closed tells which it was. */
static int multi_quotes(parser *ps, char quote, bool *closed)
{
	size_t q = 0;

	while (ps->p + q < ps->end && ps->p[q] == quote)
		q++;
	*closed = q >= 3;
	if (q > 5)
		return fail(ps, ps->p + 5, "too many quotes at the end of a multi-line string");
	dtn__buf_add(&ps->scratch, ps->p, *closed ? q - 3 : q);
	ps->p += q;
	return 0;
}

/* Any of the four kinds of string at ps->p; *out gets the decoded text in fresh memory. */
static int parse_string(parser *ps, bool multi, char **out)
{
	const char quote = *ps->p, *open = ps->p, *run;
	const bool basic = quote == '"';
	bool closed = false;
	size_t nl;
	int rc;

	ps->scratch.len = 0;
	ps->p += multi ? 3 : 1;
	if (multi)
		ps->p += newline_at(ps, ps->p);
	while (!closed) {
		for (run = ps->p; ps->p < ps->end; ps->p++) {
			unsigned char c = (unsigned char)*ps->p;
			if (c == (unsigned char)quote || (basic && c == '\\') || is_control(c))
				break;
		}
		dtn__buf_add(&ps->scratch, run, (size_t)(ps->p - run));
		if (ps->p >= ps->end)
			return fail(ps, open, "unterminated string");
		rc = 0;
		if (*ps->p == quote && !multi) {
			ps->p++;
			closed = true;
		} else if (*ps->p == quote) {
			rc = multi_quotes(ps, quote, &closed);
		} else if (*ps->p == '\\') {
			rc = escape(ps, open, multi);
		} else if ((nl = newline_at(ps, ps->p))) {
			if (!multi)
				return fail(ps, open, "unterminated string");
			dtn__buf_putc(&ps->scratch, '\n');
			ps->p += nl;
		} else {
			rc = bad_control(ps, ps->p, "string");
		}
		if (rc < 0)
			return rc;
	}
	if (ps->scratch.failed)
		return nomem(ps);
	if (!(*out = dtn__strndup(ps->scratch.len ? ps->scratch.data : "", ps->scratch.len)))
		return nomem(ps);
	return 0;
}

/* ---- keys ---- */

static void keypath_free(keypath *kp)
{
	for (size_t i = 0; i < kp->len; i++)
		dtn__free(kp->parts[i].name);
	dtn__free(kp->parts);
}

/* Appends a part, taking name. */
static int keypath_push(parser *ps, keypath *kp, char *name, const char *pos)
{
	keypart *parts;
	size_t cap;

	if (kp->len == kp->cap) {
		cap = kp->cap ? kp->cap * 2 : 4;
		if (!(parts = dtn__realloc(kp->parts, cap * sizeof(*parts)))) {
			dtn__free(name);
			return nomem(ps);
		}
		kp->parts = parts;
		kp->cap = cap;
	}
	kp->parts[kp->len++] = (keypart){name, pos};
	return 0;
}

static int parse_simple_key(parser *ps, char **out)
{
	const char *s = ps->p;

	if (s < ps->end && (*s == '"' || *s == '\''))
		return parse_string(ps, false, out);
	while (ps->p < ps->end && is_bare_key_char(*ps->p))
		ps->p++;
	if (ps->p == s)
		return unexpected(ps, "a key");
	if (!(*out = dtn__strndup(s, (size_t)(ps->p - s))))
		return nomem(ps);
	return 0;
}

/* A dotted key; whitespace after it is skipped too. */
static int parse_key(parser *ps, keypath *kp)
{
	const char *pos;
	char *name;
	int rc;

	for (;;) {
		pos = ps->p;
		if (kp->len == DTN__TOML_MAX_DEPTH)
			return fail(ps, pos, "nesting deeper than %d levels", DTN__TOML_MAX_DEPTH);
		if ((rc = parse_simple_key(ps, &name)) < 0)
			return rc;
		if ((rc = keypath_push(ps, kp, name, pos)) < 0)
			return rc;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '.')
			return 0;
		ps->p++;
		skip_ws(ps);
	}
}

/* ---- numbers, booleans, dates and times ---- */

/* DIGIT *( DIGIT / "_" DIGIT ) in the given base from s[*i]. */
static bool scan_digits(const char *s, size_t n, size_t *i, int base)
{
	size_t j = *i;

	if (j >= n || !is_digit_in(s[j], base))
		return false;
	for (j++; j < n; j++) {
		if (s[j] == '_') {
			if (j + 1 >= n || !is_digit_in(s[j + 1], base))
				return false;
		} else if (!is_digit_in(s[j], base)) {
			break;
		}
	}
	*i = j;
	return true;
}

/* Digits of s (underscores skipped) accumulated into *out; false past limit. */
static bool accumulate(const char *s, size_t n, int base, unsigned long long limit,
		       unsigned long long *out)
{
	unsigned long long v = 0, d;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_')
			continue;
		d = (unsigned long long)hex_value(s[i]);
		if (v > (limit - d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + d;
	}
	*out = v;
	return true;
}

static int make_int(parser *ps, const char *tok, long long value, dtn__toml **out)
{
	int rc;

	if ((rc = node_new(ps, DTN__TOML_INTEGER, 0, tok, out)) < 0)
		return rc;
	(*out)->u.i = value;
	return 0;
}

static int make_float(parser *ps, const char *tok, double value, dtn__toml **out)
{
	int rc;

	if ((rc = node_new(ps, DTN__TOML_FLOAT, 0, tok, out)) < 0)
		return rc;
	(*out)->u.f = value;
	return 0;
}

/* 0x, 0o and 0b integers: digits of the base with single underscores between them. */
static int parse_radix(parser *ps, const char *s, size_t n, dtn__toml **out)
{
	int base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
	unsigned long long v;
	size_t j = 2;

	if (!scan_digits(s, n, &j, base) || j != n)
		return fail(ps, s, "invalid number \"%.*s\"", (int)(n > 40 ? 40 : n), s);
	if (!accumulate(s + 2, n - 2, base, LLONG_MAX, &v))
		return fail(ps, s, "integer \"%.*s\" out of range", (int)(n > 40 ? 40 : n), s);
	return make_int(ps, s, (long long)v, out);
}

/* strtod reads the decimal point of the current locale, so '.' is swapped for it. */
static int convert_float(parser *ps, const char *s, size_t n, dtn__toml **out)
{
	const char *point = localeconv()->decimal_point;
	dtn__buf *b = &ps->scratch;
	char *end;
	double d;

	b->len = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dtn__buf_puts(b, point && *point ? point : ".");
		else if (s[i] != '_')
			dtn__buf_putc(b, s[i]);
	}
	if (b->failed)
		return nomem(ps);
	errno = 0;
	d = strtod(b->data, &end);
	if (*end)
		return fail(ps, s, "invalid number \"%.*s\"", (int)(n > 40 ? 40 : n), s);
	if (errno == ERANGE && isinf(d))
		return fail(ps, s, "float \"%.*s\" out of range", (int)(n > 40 ? 40 : n), s);
	return make_float(ps, s, d, out);
}

/* Decimal integers and floats; i is past the sign. */
static int parse_decimal(parser *ps, const char *s, size_t n, size_t i, dtn__toml **out)
{
	const int shown = (int)(n > 40 ? 40 : n);
	bool is_float = false, neg = s[0] == '-';
	unsigned long long v, limit = (unsigned long long)LLONG_MAX + (neg ? 1 : 0);
	size_t j = i;

	if (!scan_digits(s, n, &j, 10))
		goto bad;
	if (s[i] == '0' && j - i > 1)
		return fail(ps, s, "leading zeros are not allowed in \"%.*s\"", shown, s);
	if (j < n && s[j] == '.') {
		j++;
		if (!scan_digits(s, n, &j, 10))
			goto bad;
		is_float = true;
	}
	if (j < n && (s[j] == 'e' || s[j] == 'E')) {
		j++;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (!scan_digits(s, n, &j, 10))
			goto bad;
		is_float = true;
	}
	if (j != n)
		goto bad;
	if (is_float)
		return convert_float(ps, s, n, out);
	if (!accumulate(s + i, n - i, 10, limit, &v))
		return fail(ps, s, "integer \"%.*s\" out of range", shown, s);
	if (neg)
		return make_int(ps, s, v > LLONG_MAX ? LLONG_MIN : -(long long)v, out);
	return make_int(ps, s, (long long)v, out);
bad:
	return fail(ps, s, "invalid number \"%.*s\"", shown, s);
}

static int parse_number(parser *ps, const char *s, size_t n, dtn__toml **out)
{
	size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
	bool neg = s[0] == '-';

	if (n - i == 3 && !memcmp(s + i, "inf", 3))
		return make_float(ps, s, neg ? -(double)INFINITY : (double)INFINITY, out);
	if (n - i == 3 && !memcmp(s + i, "nan", 3))
		return make_float(ps, s, neg ? -(double)NAN : (double)NAN, out);
	if (n - i > 1 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b')) {
		if (i)
			return fail(ps, s, "a sign is not allowed on hexadecimal, octal or binary "
					   "integers");
		return parse_radix(ps, s, n, out);
	}
	if (i == n || !is_digit(s[i]))
		return fail(ps, s, "invalid value \"%.*s\"", (int)(n > 40 ? 40 : n), s);
	return parse_decimal(ps, s, n, i, out);
}

/* true, false, inf, nan and numbers. */
static int parse_bare_value(parser *ps, dtn__toml **out)
{
	const char *s = ps->p;
	size_t n;
	int rc;

	while (ps->p < ps->end && is_token_char(*ps->p))
		ps->p++;
	n = (size_t)(ps->p - s);
	if (!n)
		return unexpected(ps, "a value");
	if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5))) {
		if ((rc = node_new(ps, DTN__TOML_BOOL, 0, s, out)) < 0)
			return rc;
		(*out)->u.b = n == 4;
		return 0;
	}
	return parse_number(ps, s, n, out);
}

/* n decimal digits at s. */
static bool fixed_digits(const char *s, const char *end, int n, int *out)
{
	int v = 0;

	if (end - s < n)
		return false;
	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

	return month == 2 && leap ? 29 : days[month - 1];
}

/* YYYY-MM-DD; returns what is wrong, or NULL. */
static const char *scan_date(const char **pp, const char *end)
{
	const char *p = *pp;
	int y, m, d;

	if (!fixed_digits(p, end, 4, &y) || end - p < 10 || p[4] != '-' ||
	    !fixed_digits(p + 5, end, 2, &m) || p[7] != '-' || !fixed_digits(p + 8, end, 2, &d))
		return "expected YYYY-MM-DD";
	if (m < 1 || m > 12)
		return "month out of range";
	if (d < 1 || d > days_in_month(y, m))
		return "day out of range";
	*pp = p + 10;
	return NULL;
}

/* HH:MM:SS with an optional fraction. */
static const char *scan_time(const char **pp, const char *end)
{
	const char *p = *pp;
	int h, m, s;

	if (!fixed_digits(p, end, 2, &h) || end - p < 8 || p[2] != ':' ||
	    !fixed_digits(p + 3, end, 2, &m) || p[5] != ':' || !fixed_digits(p + 6, end, 2, &s))
		return "expected HH:MM:SS";
	if (h > 23)
		return "hour out of range";
	if (m > 59)
		return "minute out of range";
	if (s > 60)
		return "second out of range";
	p += 8;
	if (p < end && *p == '.') {
		if (++p >= end || !is_digit(*p))
			return "expected digits after '.'";
		while (p < end && is_digit(*p))
			p++;
	}
	*pp = p;
	return NULL;
}

/* Z or +HH:MM / -HH:MM. */
static const char *scan_offset(const char **pp, const char *end)
{
	const char *p = *pp;
	int h, m;

	if (*p == 'Z' || *p == 'z') {
		*pp = p + 1;
		return NULL;
	}
	if (!fixed_digits(p + 1, end, 2, &h) || end - p < 6 || p[3] != ':' ||
	    !fixed_digits(p + 4, end, 2, &m))
		return "expected a time offset like +HH:MM";
	if (h > 23 || m > 59)
		return "time offset out of range";
	*pp = p + 6;
	return NULL;
}

static bool looks_like_datetime(const parser *ps)
{
	const char *p = ps->p;
	int v;

	return (fixed_digits(p, ps->end, 4, &v) && ps->end - p > 4 && p[4] == '-') ||
	       (fixed_digits(p, ps->end, 2, &v) && ps->end - p > 2 && p[2] == ':');
}

/* Offset and local date-times, local dates and local times, kept as their text. */
static int parse_datetime(parser *ps, dtn__toml **out)
{
	const char *s = ps->p, *p = s, *e = ps->end, *why;
	size_t shown = 0;
	int kind, rc;

	if (e - p > 4 && p[4] == '-') {
		kind = DTN__TOML_LOCAL_DATE;
		why = scan_date(&p, e);
		if (!why && p < e &&
		    (*p == 'T' || *p == 't' || (*p == ' ' && p + 1 < e && is_digit(p[1])))) {
			p++;
			kind = DTN__TOML_LOCAL_DATETIME;
			why = scan_time(&p, e);
			if (!why && p < e && (*p == 'Z' || *p == 'z' || *p == '+' || *p == '-')) {
				kind = DTN__TOML_OFFSET_DATETIME;
				why = scan_offset(&p, e);
			}
		}
	} else {
		kind = DTN__TOML_LOCAL_TIME;
		why = scan_time(&p, e);
	}
	if (!why && p < e && (is_token_char(*p) || *p == ':'))
		why = "unexpected characters after it";
	if (why) {
		while (s + shown < e && shown < 40 && (is_token_char(s[shown]) || s[shown] == ':'))
			shown++;
		return fail(ps, s, "invalid date-time \"%.*s\": %s", (int)shown, s, why);
	}
	if ((rc = node_text(ps, DTN__TOML_DATETIME, dtn__strndup(s, (size_t)(p - s)), out)) < 0)
		return rc;
	(*out)->flags = (unsigned char)kind;
	ps->p = p;
	return 0;
}

/* ---- arrays and inline tables ---- */

static int parse_value(parser *ps, unsigned depth, dtn__toml **out);
static int parse_keyval(parser *ps, dtn__toml *base);

static int parse_array(parser *ps, unsigned depth, dtn__toml **out)
{
	const char *open = ps->p;
	dtn__toml *arr, *v;
	int rc;

	if ((rc = node_new(ps, DTN__TOML_ARRAY, depth, open, &arr)) < 0)
		return rc;
	ps->p++;
	for (;;) {
		if ((rc = skip_blank(ps)) < 0)
			goto fail;
		if (ps->p >= ps->end)
			goto unterminated;
		if (*ps->p == ']')
			break;
		if ((rc = parse_value(ps, depth + 1, &v)) < 0 || (rc = array_push(ps, arr, v)) < 0)
			goto fail;
		if ((rc = skip_blank(ps)) < 0)
			goto fail;
		if (ps->p >= ps->end)
			goto unterminated;
		if (*ps->p == ']')
			break;
		if (*ps->p != ',') {
			rc = unexpected(ps, "',' or ']' in array");
			goto fail;
		}
		ps->p++;
	}
	ps->p++;
	*out = arr;
	return 0;
unterminated:
	rc = fail(ps, open, "unterminated array");
fail:
	node_free(arr);
	return rc;
}

/* After a key/value pair of an inline table: ',' and another pair, or '}'. */
static int inline_table_next(parser *ps, const char *open, bool *done)
{
	const char *comma;

	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, open, "unterminated inline table");
	if (newline_at(ps, ps->p))
		return fail(ps, ps->p, "newline in inline table");
	if (*ps->p == '}') {
		ps->p++;
		*done = true;
		return 0;
	}
	if (*ps->p != ',')
		return unexpected(ps, "',' or '}' in inline table");
	comma = ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
		return fail(ps, comma, "trailing comma in inline table");
	if (ps->p >= ps->end)
		return fail(ps, open, "unterminated inline table");
	if (newline_at(ps, ps->p))
		return fail(ps, ps->p, "newline in inline table");
	return 0;
}

static int parse_inline_table(parser *ps, unsigned depth, dtn__toml **out)
{
	const char *open = ps->p;
	bool done = false;
	dtn__toml *t = NULL;
	int rc;

	if ((rc = node_new(ps, DTN__TOML_TABLE, depth, open, &t)) < 0)
		return rc;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		done = true;
	} else if (ps->p >= ps->end) {
		rc = fail(ps, open, "unterminated inline table");
	} else if (newline_at(ps, ps->p)) {
		rc = fail(ps, ps->p, "newline in inline table");
	}
	while (rc == 0 && !done) {
		if ((rc = parse_keyval(ps, t)) == 0)
			rc = inline_table_next(ps, open, &done);
	}
	if (rc < 0) {
		node_free(t);
		return rc;
	}
	t->flags = F_FROZEN;
	*out = t;
	return 0;
}

/* Any value; depth is the nesting level a table or array value would have. */
static int parse_value(parser *ps, unsigned depth, dtn__toml **out)
{
	char *s;
	int rc;

	if (ps->p >= ps->end || newline_at(ps, ps->p) || *ps->p == '#')
		return fail(ps, ps->p, "missing value");
	switch (*ps->p) {
	case '"':
	case '\'':
		if ((rc = parse_string(ps, is_triple(ps, *ps->p), &s)) < 0)
			return rc;
		return node_text(ps, DTN__TOML_STRING, s, out);
	case '[':
		return parse_array(ps, depth, out);
	case '{':
		return parse_inline_table(ps, depth, out);
	default:
		if (looks_like_datetime(ps))
			return parse_datetime(ps, out);
		return parse_bare_value(ps, out);
	}
}

/* ---- definitions ---- */

/* Steps from table *t into part i of a dotted key on the left of '='. */
static int dotted_step(parser *ps, dtn__toml **t, const keypath *kp, size_t i)
{
	const keypart *k = &kp->parts[i];
	dtn__toml *v = table_find(*t, k->name);
	char buf[KEY_TEXT_SIZE];

	if (!v)
		return add_child(ps, *t, k, DTN__TOML_TABLE, F_DOTTED, t);
	if (v->type == DTN__TOML_ARRAY)
		return fail(ps, k->pos, "cannot add keys to array \"%s\" with a dotted key",
			    key_text(kp, i + 1, buf, sizeof(buf)));
	if (v->type != DTN__TOML_TABLE)
		return fail(ps, k->pos, "key \"%s\" already has a value",
			    key_text(kp, i + 1, buf, sizeof(buf)));
	if (v->flags & F_FROZEN)
		return fail(ps, k->pos, "cannot add keys to inline table \"%s\"",
			    key_text(kp, i + 1, buf, sizeof(buf)));
	if (v->flags & F_EXPLICIT)
		return fail(ps, k->pos, "table \"%s\" has a [header] and cannot be extended with "
					"a dotted key", key_text(kp, i + 1, buf, sizeof(buf)));
	v->flags |= F_DOTTED;
	*t = v;
	return 0;
}

/* Defines kp = v in table t; takes v. */
static int assign(parser *ps, dtn__toml *t, keypath *kp, dtn__toml *v)
{
	keypart *last = &kp->parts[kp->len - 1];
	char buf[KEY_TEXT_SIZE];
	int rc;

	for (size_t i = 0; i + 1 < kp->len; i++)
		if ((rc = dotted_step(ps, &t, kp, i)) < 0)
			goto fail;
	if (table_find(t, last->name)) {
		rc = fail(ps, last->pos, "key \"%s\" defined twice",
			  key_text(kp, kp->len, buf, sizeof(buf)));
		goto fail;
	}
	rc = table_add(ps, t, last->name, v);
	last->name = NULL;
	return rc;
fail:
	node_free(v);
	return rc;
}

/* key = value, into table base. */
static int parse_keyval(parser *ps, dtn__toml *base)
{
	keypath kp = {NULL, 0, 0};
	dtn__toml *v;
	int rc;

	if ((rc = parse_key(ps, &kp)) < 0)
		goto out;
	if (ps->p >= ps->end || *ps->p != '=') {
		rc = unexpected(ps, "'=' after a key");
		goto out;
	}
	ps->p++;
	skip_ws(ps);
	if ((rc = parse_value(ps, base->depth + (unsigned)kp.len, &v)) < 0)
		goto out;
	rc = assign(ps, base, &kp, v);
out:
	keypath_free(&kp);
	return rc;
}

/* Steps from table *t into part i of a header's key, creating implicit tables. */
static int header_step(parser *ps, dtn__toml **t, const keypath *kp, size_t i)
{
	const keypart *k = &kp->parts[i];
	dtn__toml *v = table_find(*t, k->name);
	char buf[KEY_TEXT_SIZE];

	if (!v)
		return add_child(ps, *t, k, DTN__TOML_TABLE, 0, t);
	if (v->type == DTN__TOML_TABLE && (v->flags & F_FROZEN))
		return fail(ps, k->pos, "cannot add keys to inline table \"%s\"",
			    key_text(kp, i + 1, buf, sizeof(buf)));
	if (v->type == DTN__TOML_TABLE) {
		*t = v;
		return 0;
	}
	if (v->type == DTN__TOML_ARRAY && (v->flags & F_AOT)) {
		*t = v->u.a.items[v->u.a.len - 1];
		return 0;
	}
	if (v->type == DTN__TOML_ARRAY)
		return fail(ps, k->pos, "cannot add tables to static array \"%s\"",
			    key_text(kp, i + 1, buf, sizeof(buf)));
	return fail(ps, k->pos, "key \"%s\" already has a value",
		    key_text(kp, i + 1, buf, sizeof(buf)));
}

/* The last part of a [table] header: a new table, or an implicit one made explicit. */
static int header_table(parser *ps, dtn__toml *t, const keypath *kp)
{
	const keypart *k = &kp->parts[kp->len - 1];
	dtn__toml *v = table_find(t, k->name);
	char buf[KEY_TEXT_SIZE];
	const char *name = key_text(kp, kp->len, buf, sizeof(buf));

	if (!v)
		return add_child(ps, t, k, DTN__TOML_TABLE, F_EXPLICIT, &ps->cur);
	if (v->type == DTN__TOML_ARRAY && (v->flags & F_AOT))
		return fail(ps, k->pos, "table \"%s\" is already an array of tables", name);
	if (v->type != DTN__TOML_TABLE)
		return fail(ps, k->pos, "key \"%s\" already has a value", name);
	if (v->flags & F_FROZEN)
		return fail(ps, k->pos, "table \"%s\" already defined as an inline table", name);
	if (v->flags & F_EXPLICIT)
		return fail(ps, k->pos, "table \"%s\" defined twice", name);
	if (v->flags & F_DOTTED)
		return fail(ps, k->pos, "table \"%s\" already defined by dotted keys", name);
	v->flags |= F_EXPLICIT;
	ps->cur = v;
	return 0;
}

/* The last part of an [[array]] header: a new element, creating the array if needed. */
static int header_array(parser *ps, dtn__toml *t, const keypath *kp)
{
	const keypart *k = &kp->parts[kp->len - 1];
	dtn__toml *v = table_find(t, k->name), *elem = NULL;
	char buf[KEY_TEXT_SIZE];
	const char *name = key_text(kp, kp->len, buf, sizeof(buf));
	int rc;

	if (v && v->type == DTN__TOML_TABLE)
		return fail(ps, k->pos, "table \"%s\" is not an array of tables", name);
	if (v && v->type == DTN__TOML_ARRAY && !(v->flags & F_AOT))
		return fail(ps, k->pos, "cannot add tables to static array \"%s\"", name);
	if (v && v->type != DTN__TOML_ARRAY)
		return fail(ps, k->pos, "key \"%s\" already has a value", name);
	if (!v && (rc = add_child(ps, t, k, DTN__TOML_ARRAY, F_AOT, &v)) < 0)
		return rc;
	if ((rc = node_new(ps, DTN__TOML_TABLE, v->depth + 1u, k->pos, &elem)) < 0)
		return rc;
	elem->flags = F_EXPLICIT;
	if ((rc = array_push(ps, v, elem)) < 0)
		return rc;
	ps->cur = elem;
	return 0;
}

/* [a.b] or [[a.b]]. */
static int parse_header(parser *ps)
{
	const bool aot = ps->end - ps->p >= 2 && ps->p[1] == '[';
	keypath kp = {NULL, 0, 0};
	dtn__toml *t = ps->root;
	int rc;

	ps->p += aot ? 2 : 1;
	skip_ws(ps);
	if ((rc = parse_key(ps, &kp)) < 0)
		goto out;
	if (ps->p >= ps->end || *ps->p != ']' || (aot && (ps->end - ps->p < 2 || ps->p[1] != ']'))) {
		rc = unexpected(ps, aot ? "\"]]\" closing the header" : "']' closing the header");
		goto out;
	}
	ps->p += aot ? 2 : 1;
	for (size_t i = 0; i + 1 < kp.len; i++)
		if ((rc = header_step(ps, &t, &kp, i)) < 0)
			goto out;
	rc = aot ? header_array(ps, t, &kp) : header_table(ps, t, &kp);
out:
	keypath_free(&kp);
	return rc;
}

static int parse_document(parser *ps)
{
	size_t nl;
	int rc;

	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end)
			return 0;
		if ((nl = newline_at(ps, ps->p))) {
			ps->p += nl;
			continue;
		}
		if (*ps->p == '#') {
			rc = skip_comment(ps);
		} else if (*ps->p == '[') {
			if ((rc = parse_header(ps)) == 0)
				rc = end_of_line(ps, "a table header");
		} else {
			if ((rc = parse_keyval(ps, ps->cur)) == 0)
				rc = end_of_line(ps, "a value");
		}
		if (rc < 0)
			return rc;
	}
}

int dtn__toml_parse(dtn__toml **out, const char *text, size_t len, dtn_error *err)
{
	parser ps = {NULL, NULL, NULL, err, NULL, NULL, DTN__BUF_INIT};
	const char *bad;
	int rc;

	*out = NULL;
	if (!text)
		text = "", len = 0;
	ps.start = ps.p = text;
	ps.end = text + len;
	/* A byte order mark only says the text is UTF-8; it is not part of the document. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		ps.start = ps.p = text + 3;
	if ((bad = utf8_find_invalid(ps.p, ps.end))) {
		rc = fail(&ps, bad, "invalid UTF-8");
		goto out;
	}
	if ((rc = node_new(&ps, DTN__TOML_TABLE, 0, ps.p, &ps.root)) < 0)
		goto out;
	ps.cur = ps.root;
	if ((rc = parse_document(&ps)) < 0)
		goto out;
	*out = ps.root;
	ps.root = NULL;
out:
	node_free(ps.root);
	dtn__buf_free(&ps.scratch);
	return rc;
}

/* ---- reading the tree ---- */

dtn__toml_type dtn__toml_type_of(const dtn__toml *v)
{
	return v ? (dtn__toml_type)v->type : (dtn__toml_type)0;
}

const dtn__toml *dtn__toml_get(const dtn__toml *table, const char *key)
{
	if (!table || table->type != DTN__TOML_TABLE || !key)
		return NULL;
	return table_find(table, key);
}

size_t dtn__toml_count(const dtn__toml *v)
{
	if (v && v->type == DTN__TOML_TABLE)
		return v->u.t.len;
	if (v && v->type == DTN__TOML_ARRAY)
		return v->u.a.len;
	return 0;
}

const dtn__toml *dtn__toml_at(const dtn__toml *v, size_t i)
{
	if (i >= dtn__toml_count(v))
		return NULL;
	return v->type == DTN__TOML_TABLE ? v->u.t.items[i].val : v->u.a.items[i];
}

const char *dtn__toml_key_at(const dtn__toml *table, size_t i)
{
	if (!table || table->type != DTN__TOML_TABLE || i >= table->u.t.len)
		return NULL;
	return table->u.t.items[i].key;
}

const char *dtn__toml_str(const dtn__toml *v)
{
	if (v && (v->type == DTN__TOML_STRING || v->type == DTN__TOML_DATETIME))
		return v->u.s;
	return NULL;
}

dtn__toml_datetime_kind dtn__toml_datetime_kind_of(const dtn__toml *v)
{
	if (v && v->type == DTN__TOML_DATETIME)
		return (dtn__toml_datetime_kind)v->flags;
	return (dtn__toml_datetime_kind)0;
}

long long dtn__toml_int(const dtn__toml *v)
{
	return v && v->type == DTN__TOML_INTEGER ? v->u.i : 0;
}

double dtn__toml_float(const dtn__toml *v)
{
	return v && v->type == DTN__TOML_FLOAT ? v->u.f : 0.0;
}

bool dtn__toml_bool(const dtn__toml *v)
{
	return v && v->type == DTN__TOML_BOOL && v->u.b;
}

void dtn__toml_free(dtn__toml *v)
{
	node_free(v);
}
