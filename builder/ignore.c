/*
 * ignore.c - `.dockerignore` rules with Docker's semantics (see ignore.h for what they are).
 *
 * Docker turns each pattern into a regular expression by a character-by-character translation
 * and hands it to Go's regexp package, except for three shapes it compares as plain strings
 * (no wildcard at all; plain text then a final `**`; `**` then plain text). dtn performs the
 * same translation into the same expression text, then reads that text with the rules of Go's
 * regular-expression parser for the few constructs the translation can produce, and compiles
 * it into a small program: characters, classes, repeated classes, "any directories", the
 * start-of-path anchor. Reading Docker's expression rather than the pattern is what keeps the
 * odd cases (a `?` inside `[...]` closing the class early, POSIX class names) exactly Docker's.
 *
 * A program is matched by simulating all of its positions at once over the characters of the
 * path (a bit set per step), so no pattern can make matching slower than the path length
 * times the program length, and nothing is allocated while matching. Before that, a literal
 * head and tail of the program are compared with the path, which settles most non-matches
 * (`*.pyc` against `src/app.py`) without running the program at all.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ignore.h"

/* Docker's line reader refuses longer lines. */
#define IG_MAX_LINE 65535
/* Positions of one program; the matcher keeps two bit sets of this size on the stack. */
#define IG_MAX_OPS 4096
/* Rules the one-off matcher can follow without allocating. */
#define IG_STACK_WORDS 16

#define REPLACEMENT 0xfffdUL

enum ig_mode {
	MODE_EXACT,  /* the path equals the literal */
	MODE_PREFIX, /* the path starts with it (plain text, then a final `**`) */
	MODE_SUFFIX, /* the path ends with it (`**`, then plain text) */
	MODE_REGEX,  /* the program decides */
};

enum ig_op_kind {
	OP_RUNE,       /* one character, equal to arg */
	OP_CLASS,      /* one character of the class at cls[arg] */
	OP_CLASS_STAR, /* any number of characters of that class */
	OP_LINE_STAR,  /* any number of characters other than a newline */
	OP_DIRS,       /* "nothing, or anything up to a '/'": on at op + 2, or into op + 1 */
	OP_DIRS_BODY,  /* inside OP_DIRS: any character but a newline; a '/' may end it */
	OP_BEGIN,      /* holds at the start of the path only */
	OP_ACCEPT,     /* the end of the program */
};

typedef struct ig_op {
	uint32_t kind;
	uint32_t arg;
} ig_op;

typedef struct ig_rule {
	char *text;         /* as written, trimmed, with its '!' */
	const char *source; /* borrowed from dtn__ignore.names */
	int line;           /* 1-based in a .dockerignore, 0 for an extra pattern */
	bool exception;
	int mode;
	char *pat; /* the pattern as Docker keeps it: cleaned, without '!' */
	size_t pat_len;
	const char *lit; /* MODE_EXACT/PREFIX/SUFFIX: the text compared, inside pat */
	size_t lit_len;
	ig_op *ops; /* MODE_REGEX */
	size_t nops;
	uint32_t *cls; /* classes: count of ranges, negated flag, then count (lo, hi) pairs */
	char *fix;     /* MODE_REGEX: bytes the path must start with, then those it must end with */
	size_t head_len, tail_len;
	long slashes; /* MODE_REGEX: how many '/' a matching path has, or -1 when that varies */
	size_t keep_len; /* exceptions: length of pat without a trailing slash-`**` or slash-`*` */
	bool keep_wild;  /* ... and whether that part has a wildcard, `[`, `]`, `^` or `\` */
} ig_rule;

struct dtn__ignore {
	ig_rule *rules;
	size_t len, cap;
	dtn__strv names;
	bool any_exception;
	bool wild_exception;
};

/* Where a pattern comes from, for messages. */
typedef struct ig_where {
	const char *file;
	int line;
} ig_where;

/* State of compiling one pattern. */
typedef struct ig_comp {
	const char *re; /* Docker's expression, without its anchors */
	size_t n, j;
	dtn__buf ops, cls;
	size_t nops;
	char msg[192]; /* what is wrong, when a step fails */
} ig_comp;

/* ---- text the way Go reads it ---------------------------------------------------------- */

/* Go's unicode.IsSpace. */
static bool go_space(unsigned long c)
{
	switch (c) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
	case 0x3000:
		return true;
	default:
		return c >= 0x2000 && c <= 0x200a;
	}
}

/* Where the last character of s[0..n) starts, as Go finds it (n > 0). */
static size_t last_char_start(const char *s, size_t n)
{
	size_t start = n - 1, lim = n >= 4 ? n - 4 : 0;

	if ((unsigned char)s[start] < 0x80)
		return start;
	while (start > lim && ((unsigned char)s[start] & 0xc0) == 0x80)
		start--;
	return start;
}

/* strings.TrimSpace: a byte that is not UTF-8 is not white space. */
static void trim_space(const char **s, size_t *n)
{
	unsigned long c;
	size_t w;

	while (*n && (w = dtn__utf8_decode(*s, *n, &c)) && go_space(c)) {
		*s += w;
		*n -= w;
	}
	while (*n) {
		size_t start = last_char_start(*s, *n);

		w = dtn__utf8_decode(*s + start, *n - start, &c);
		if (!w || start + w != *n || !go_space(c))
			break;
		*n = start;
	}
}

/*
 * filepath.Clean into out (room for n + 2 bytes): repeated '/' and "." parts go, ".." removes
 * the part before it (or stays when there is none, or goes at the root), a trailing '/' goes,
 * and nothing left is ".". Returns the length.
 */
static size_t go_clean(const char *s, size_t n, char *out)
{
	bool rooted = n && s[0] == '/';
	size_t r = 0, w = 0, floor = 0;

	if (rooted)
		out[w++] = '/', r = 1, floor = 1;
	while (r < n) {
		size_t e = r;

		while (e < n && s[e] != '/')
			e++;
		if (e - r == 2 && s[r] == '.' && s[r + 1] == '.') {
			if (w > floor) {
				for (w--; w > floor && out[w] != '/'; w--)
					;
			} else if (!rooted) {
				if (w)
					out[w++] = '/';
				out[w++] = '.', out[w++] = '.';
				floor = w;
			}
		} else if (e > r && !(e - r == 1 && s[r] == '.')) {
			if (w > (rooted ? 1u : 0u))
				out[w++] = '/';
			memcpy(out + w, s + r, e - r);
			w += e - r;
		}
		r = e + (e < n);
	}
	if (!w)
		out[w++] = '.';
	out[w] = '\0';
	return w;
}

/* A cleaned copy of s[0..n) in fresh memory, or NULL. */
static char *clean_dup(const char *s, size_t n, size_t *len)
{
	char *out = dtn__malloc(n + 2);

	if (out)
		*len = go_clean(s, n, out);
	return out;
}

/* ---- Go's filepath.Match syntax -------------------------------------------------------- */

/* One member of a class (a character, perhaps quoted), as Go's matcher reads it. */
static const char *class_member_error(const char *c, size_t m, size_t *j, bool after_dash)
{
	unsigned long r;
	size_t w;

	if (*j >= m)
		return "\"[\" is not closed";
	if (c[*j] == '-')
		return "a range in \"[...]\" needs a character before \"-\"";
	if (c[*j] == ']')
		return after_dash ? "a range in \"[...]\" needs a character after \"-\""
				  : "\"[]\" is an empty character class";
	if (c[*j] == '\\' && ++*j >= m)
		return "\"[\" is not closed";
	w = dtn__utf8_decode(c + *j, m - *j, &r);
	if (!w)
		return "a character class holds bytes that are not UTF-8";
	*j += w;
	return *j >= m ? "\"[\" is not closed" : NULL;
}

/* Checks one run of a pattern between unbracketed stars, as Go's matcher does. */
static const char *chunk_error(const char *c, size_t m)
{
	const char *e;
	size_t j = 0;

	while (j < m) {
		if (c[j] == '\\') {
			if (j + 1 >= m)
				return "it ends with a lone \"\\\"";
			j += 2;
			continue;
		}
		if (c[j++] != '[')
			continue;
		if (j < m && c[j] == '^')
			j++;
		for (int nrange = 0;; nrange++) {
			if (j < m && c[j] == ']' && nrange) {
				j++;
				break;
			}
			if ((e = class_member_error(c, m, &j, false)))
				return e;
			if (c[j] == '-') {
				j++;
				if ((e = class_member_error(c, m, &j, true)))
					return e;
			}
		}
	}
	return NULL;
}

/* NULL when Go's filepath.Match accepts the pattern, else what is wrong with it. */
static const char *go_syntax_error(const char *p, size_t n)
{
	const char *e;
	size_t k = 0;

	while (k < n) {
		size_t start;
		bool inrange = false;

		while (k < n && p[k] == '*')
			k++;
		for (start = k; k < n; k++) {
			if (p[k] == '\\')
				k += k + 1 < n;
			else if (p[k] == '[')
				inrange = true;
			else if (p[k] == ']')
				inrange = false;
			else if (p[k] == '*' && !inrange)
				break;
		}
		if ((e = chunk_error(p + start, k - start)))
			return e;
	}
	return NULL;
}

/* ---- Docker's translation -------------------------------------------------------------- */

/* The next character of p at *k, a byte that is not UTF-8 reading as U+FFFD. */
static unsigned long next_char(const char *p, size_t n, size_t *k)
{
	unsigned long c;
	size_t w = dtn__utf8_decode(p + *k, n - *k, &c);

	if (!w)
		w = 1, c = REPLACEMENT;
	*k += w;
	return c;
}

static void buf_put_char(dtn__buf *b, unsigned long c)
{
	char s[4];

	if (c < 0x80) {
		dtn__buf_putc(b, (char)c);
	} else if (c < 0x800) {
		s[0] = (char)(0xc0 | (c >> 6)), s[1] = (char)(0x80 | (c & 0x3f));
		dtn__buf_add(b, s, 2);
	} else if (c < 0x10000) {
		s[0] = (char)(0xe0 | (c >> 12)), s[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		s[2] = (char)(0x80 | (c & 0x3f));
		dtn__buf_add(b, s, 3);
	} else {
		s[0] = (char)(0xf0 | (c >> 18)), s[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		s[2] = (char)(0x80 | ((c >> 6) & 0x3f)), s[3] = (char)(0x80 | (c & 0x3f));
		dtn__buf_add(b, s, 4);
	}
}

/* A `**` at p[*k - 1] (the first star already read): its expression text and mode. */
static void translate_stars(const char *p, size_t n, size_t *k, int i, dtn__buf *re, int *mode)
{
	(*k)++;
	if (*k < n && p[*k] == '/')
		(*k)++;
	if (*k < n) {
		dtn__buf_puts(re, "(.*/)?");
		*mode = MODE_REGEX;
	} else if (*mode == MODE_EXACT) {
		*mode = MODE_PREFIX;
	} else {
		dtn__buf_puts(re, ".*");
		*mode = MODE_REGEX;
	}
	if (i == 0)
		*mode = MODE_SUFFIX;
}

/*
 * Docker's translation of a pattern into expression text (without the anchors it puts
 * around it) and the way the pattern is compared. A byte order mark at the start is
 * skipped, as Go's text scanner does; `i` counts characters read, `**` counting once.
 */
static int translate(const char *p, size_t n, dtn__buf *re)
{
	int mode = MODE_EXACT;
	size_t k = n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3) ? 3 : 0;

	for (int i = 0; k < n; i++) {
		unsigned long c = next_char(p, n, &k);

		if (c == '*' && k < n && p[k] == '*') {
			translate_stars(p, n, &k, i, re, &mode);
		} else if (c == '*' || c == '?') {
			dtn__buf_puts(re, c == '*' ? "[^/]*" : "[^/]");
			mode = MODE_REGEX;
		} else if (c && c < 0x80 && strchr(".+()|{}$", (int)c)) {
			dtn__buf_putc(re, '\\');
			dtn__buf_putc(re, (char)c);
		} else if (c == '\\' && k < n) {
			dtn__buf_putc(re, '\\');
			buf_put_char(re, next_char(p, n, &k));
			mode = MODE_REGEX;
		} else {
			buf_put_char(re, c);
			if (c == '[' || c == ']')
				mode = MODE_REGEX;
		}
	}
	return mode;
}

/* ---- reading Docker's expression ------------------------------------------------------- */

static int comp_fail(ig_comp *c, int code, const char *fmt, ...) DTN__PRINTF(3, 4);

static int comp_fail(ig_comp *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return code;
}

static int emit(ig_comp *c, uint32_t kind, uint32_t arg)
{
	ig_op op = {kind, arg};

	if (++c->nops > IG_MAX_OPS)
		return comp_fail(c, DTN_EUNSUPPORTED, "the pattern is too long for dtn");
	dtn__buf_add(&c->ops, (const char *)&op, sizeof(op));
	return c->ops.failed ? DTN_ENOMEM : 0;
}

static void cls_put(ig_comp *c, uint32_t v)
{
	dtn__buf_add(&c->cls, (const char *)&v, sizeof(v));
}

/* A `\` escape at re[j]: Go takes punctuation and spaces as themselves. */
static int read_escape(ig_comp *c, unsigned long *out)
{
	unsigned char e = (unsigned char)c->re[c->j + 1];

	if (e >= 0x80)
		return comp_fail(c, DTN_EINVAL,
				 "\"\\\" before a non-ASCII character is refused by Docker");
	if ((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))
		return comp_fail(c, DTN_EUNSUPPORTED,
				 "Docker reads \"\\%c\" as a regular-expression escape, which dtn "
				 "does not reproduce; write the character without \"\\\"",
				 e);
	c->j += 2;
	*out = e;
	return 0;
}

static const struct {
	const char *name;
	unsigned nranges;
	uint32_t r[8];
} posix_classes[] = {
	{"alnum", 3, {'0', '9', 'A', 'Z', 'a', 'z'}},
	{"alpha", 2, {'A', 'Z', 'a', 'z'}},
	{"ascii", 1, {0, 0x7f}},
	{"blank", 2, {'\t', '\t', ' ', ' '}},
	{"cntrl", 2, {0, 0x1f, 0x7f, 0x7f}},
	{"digit", 1, {'0', '9'}},
	{"graph", 1, {'!', '~'}},
	{"lower", 1, {'a', 'z'}},
	{"print", 1, {' ', '~'}},
	{"punct", 4, {'!', '/', ':', '@', '[', '`', '{', '~'}},
	{"space", 2, {'\t', '\r', ' ', ' '}},
	{"upper", 1, {'A', 'Z'}},
	{"word", 4, {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'}},
	{"xdigit", 3, {'0', '9', 'A', 'F', 'a', 'f'}},
};

/* Adds the ranges that the n sorted ranges r leave out; returns how many. */
static int add_complement(ig_comp *c, const uint32_t *r, unsigned n)
{
	uint32_t lo = 0;
	int added = 0;

	for (unsigned k = 0; k < n; k++) {
		if (r[2 * k] > lo)
			cls_put(c, lo), cls_put(c, r[2 * k] - 1), added++;
		lo = r[2 * k + 1] + 1;
	}
	cls_put(c, lo), cls_put(c, 0x10ffff);
	return added + 1;
}

/* Adds the ranges of a POSIX class name ("alpha", "^alpha"); returns how many, or -1. */
static int add_posix(ig_comp *c, const char *name, size_t len)
{
	bool neg = len && name[0] == '^';

	name += neg, len -= neg;
	for (size_t i = 0; i < DTN__ARRAY_LEN(posix_classes); i++) {
		const char *known = posix_classes[i].name;
		const uint32_t *r = posix_classes[i].r;
		unsigned n = posix_classes[i].nranges;

		if (strlen(known) != len || memcmp(known, name, len))
			continue;
		if (!neg) {
			for (unsigned k = 0; k < 2 * n; k++)
				cls_put(c, r[k]);
			return (int)n;
		}
		return add_complement(c, r, n);
	}
	return -1;
}

/* One member of a class in the expression: a character or a `\` escape. */
static int read_class_char(ig_comp *c, unsigned long *out)
{
	if (c->j >= c->n)
		return comp_fail(c, DTN_EINVAL, "\"[\" is not closed");
	if (c->re[c->j] == '\\')
		return read_escape(c, out);
	*out = next_char(c->re, c->n, &c->j);
	return 0;
}

/* A `[:name:]` at re[j] inside a class: >0 ranges added, 0 when it is not one, <0 error. */
static int read_posix(ig_comp *c, size_t *nranges)
{
	const char *s = c->re + c->j, *end;
	int n;

	if (c->n - c->j <= 2 || s[0] != '[' || s[1] != ':')
		return 0;
	end = memmem(s + 2, c->n - c->j - 2, ":]", 2);
	if (!end)
		return 0;
	n = add_posix(c, s + 2, (size_t)(end - s - 2));
	if (n < 0)
		return comp_fail(c, DTN_EINVAL, "unknown character class \"%.*s\"",
				 (int)(end + 2 - s), s);
	c->j += (size_t)(end + 2 - s);
	*nranges += (size_t)n;
	return 1;
}

/* One range of a class ("a", "a-z"), appended. */
static int read_range(ig_comp *c)
{
	unsigned long lo, hi;
	int rc;

	if ((rc = read_class_char(c, &lo)) < 0)
		return rc;
	hi = lo;
	if (c->n - c->j >= 2 && c->re[c->j] == '-' && c->re[c->j + 1] != ']') {
		c->j++;
		if ((rc = read_class_char(c, &hi)) < 0)
			return rc;
		if (hi < lo)
			return comp_fail(c, DTN_EINVAL, "the range in \"[...]\" is reversed");
	}
	cls_put(c, (uint32_t)lo);
	cls_put(c, (uint32_t)hi);
	return 0;
}

/* A class at re[j] == '[' as Go's parser reads it; *at gets its place in the class table. */
static int read_class(ig_comp *c, uint32_t *at)
{
	size_t head = c->cls.len, nranges = 0;
	bool first = true;
	int rc;

	c->j++;
	*at = (uint32_t)(head / sizeof(uint32_t));
	cls_put(c, 0);
	cls_put(c, c->j < c->n && c->re[c->j] == '^');
	c->j += c->j < c->n && c->re[c->j] == '^';
	for (;;) {
		if (c->j >= c->n)
			return comp_fail(c, DTN_EINVAL, "\"[\" is not closed");
		if (c->re[c->j] == ']' && !first)
			break;
		first = false;
		if ((rc = read_posix(c, &nranges)) < 0)
			return rc;
		if (rc)
			continue;
		if ((rc = read_range(c)) < 0)
			return rc;
		nranges++;
	}
	c->j++;
	if (c->cls.failed)
		return DTN_ENOMEM;
	memcpy(c->cls.data + head, &(uint32_t){(uint32_t)nranges}, sizeof(uint32_t));
	return 0;
}

/* One piece of the expression at re[j]. */
static int read_piece(ig_comp *c)
{
	const char *s = c->re + c->j;
	size_t left = c->n - c->j;
	unsigned long ch;
	uint32_t at;
	int rc;

	if (left >= 6 && !memcmp(s, "(.*/)?", 6)) {
		c->j += 6;
		if ((rc = emit(c, OP_DIRS, 0)) < 0)
			return rc;
		return emit(c, OP_DIRS_BODY, 0);
	}
	if (left >= 2 && !memcmp(s, ".*", 2)) {
		c->j += 2;
		return emit(c, OP_LINE_STAR, 0);
	}
	if (*s == '[') {
		if ((rc = read_class(c, &at)) < 0)
			return rc;
		if (c->j < c->n && c->re[c->j] == '*') {
			c->j++;
			return emit(c, OP_CLASS_STAR, at);
		}
		return emit(c, OP_CLASS, at);
	}
	if (*s == '^') {
		c->j++;
		return emit(c, OP_BEGIN, 0);
	}
	if (strchr("*?()|+{}$.", *s))
		return comp_fail(c, DTN_EUNSUPPORTED, "dtn cannot read Docker's expression here");
	if (*s == '\\') {
		if ((rc = read_escape(c, &ch)) < 0)
			return rc;
	} else {
		ch = next_char(c->re, c->n, &c->j);
	}
	return emit(c, OP_RUNE, (uint32_t)ch);
}

/* ---- compiling one rule ---------------------------------------------------------------- */

/* The literal head and tail of a program, which the path must start and end with. */
static int make_fix(ig_rule *r)
{
	dtn__buf b = DTN__BUF_INIT;
	size_t k = 0, t = r->nops - 1;

	while (k < r->nops && r->ops[k].kind == OP_BEGIN)
		k++;
	for (; k < r->nops && r->ops[k].kind == OP_RUNE && r->ops[k].arg != REPLACEMENT; k++)
		buf_put_char(&b, r->ops[k].arg);
	r->head_len = b.len;
	while (t > k && r->ops[t - 1].kind == OP_RUNE && r->ops[t - 1].arg != REPLACEMENT)
		t--;
	for (; t < r->nops - 1; t++)
		buf_put_char(&b, r->ops[t].arg);
	r->tail_len = b.len - r->head_len;
	dtn__buf_putc(&b, '\0');
	r->fix = dtn__buf_detach(&b);
	return r->fix ? 0 : DTN_ENOMEM;
}

static bool in_class(const uint32_t *cls, uint32_t at, unsigned long c)
{
	const uint32_t *r = cls + at + 2;
	uint32_t n = cls[at];

	for (uint32_t i = 0; i < n; i++) {
		if (c >= r[2 * i] && c <= r[2 * i + 1])
			return !cls[at + 1];
	}
	return cls[at + 1];
}

/* Counts the '/' of a program when no wildcard of it can read one. */
static void count_slashes(ig_rule *r)
{
	r->slashes = 0;
	for (size_t k = 0; k < r->nops; k++) {
		const ig_op *op = &r->ops[k];

		if (op->kind == OP_RUNE) {
			r->slashes += op->arg == '/';
		} else if (op->kind == OP_DIRS_BODY || op->kind == OP_LINE_STAR ||
			   ((op->kind == OP_CLASS || op->kind == OP_CLASS_STAR) &&
			    in_class(r->cls, op->arg, '/'))) {
			r->slashes = -1;
			return;
		}
	}
}

static int compile_regex(ig_rule *r, const dtn__buf *re, char *msg, size_t size)
{
	ig_comp c = {re->data ? re->data : "", re->len, 0, DTN__BUF_INIT, DTN__BUF_INIT, 0, ""};
	int rc = 0;

	while (rc == 0 && c.j < c.n)
		rc = read_piece(&c);
	if (rc == 0)
		rc = emit(&c, OP_ACCEPT, 0);
	if (rc == 0 && c.cls.failed)
		rc = DTN_ENOMEM;
	if (rc == 0) {
		dtn__buf_putc(&c.cls, '\0');
		r->nops = c.nops;
		r->ops = (ig_op *)(void *)dtn__buf_detach(&c.ops);
		r->cls = (uint32_t *)(void *)dtn__buf_detach(&c.cls);
		rc = r->ops && r->cls ? make_fix(r) : DTN_ENOMEM;
		if (rc == 0)
			count_slashes(r);
	}
	snprintf(msg, size, "%s", c.msg);
	dtn__buf_free(&c.ops);
	dtn__buf_free(&c.cls);
	return rc;
}

/* What may_reinclude needs of an exception. */
static void note_exception(ig_rule *r)
{
	size_t n = r->pat_len;

	if (n >= 3 && !memcmp(r->pat + n - 3, "/**", 3))
		n -= 3;
	if (n >= 2 && !memcmp(r->pat + n - 2, "/*", 2))
		n -= 2;
	r->keep_len = n;
	r->keep_wild = false;
	for (size_t i = 0; i < n; i++)
		r->keep_wild |= strchr("*[]?^\\", r->pat[i]) && r->pat[i];
}

/* Checks and compiles r->pat; on failure msg says why. */
static int compile_rule(ig_rule *r, char *msg, size_t size)
{
	dtn__buf re = DTN__BUF_INIT;
	const char *e = go_syntax_error(r->pat, r->pat_len);
	int rc = 0;

	if (e) {
		snprintf(msg, size, "%s", e);
		return DTN_EINVAL;
	}
	r->mode = translate(r->pat, r->pat_len, &re);
	r->lit = r->pat, r->lit_len = r->pat_len;
	if (r->mode == MODE_PREFIX)
		r->lit_len -= 2;
	else if (r->mode == MODE_SUFFIX)
		r->lit += 2, r->lit_len -= 2;
	if (re.failed)
		rc = DTN_ENOMEM;
	else if (r->mode == MODE_REGEX)
		rc = compile_regex(r, &re, msg, size);
	if (rc == 0 && r->exception)
		note_exception(r);
	dtn__buf_free(&re);
	return rc;
}

static void rule_free(ig_rule *r)
{
	dtn__free(r->text);
	dtn__free(r->pat);
	dtn__free(r->ops);
	dtn__free(r->cls);
	dtn__free(r->fix);
}

/* ---- reading lines --------------------------------------------------------------------- */

/* Sets err for a bad pattern: `pattern "TEXT": what`, at the pattern's place. */
static int bad_pattern(dtn_error *err, int code, const ig_where *w, const char *text,
		       const char *what)
{
	char shown[256];

	dtn__printable(shown, sizeof(shown), text);
	dtn__error_set(err, code, "pattern \"%s\": %s", shown, what);
	dtn__error_at(err, w->file, w->line, 0);
	return code;
}

/*
 * What Docker's .dockerignore reader makes of one line (or an extra pattern): NULL in *out
 * for nothing, else the pattern text it hands on, with its '!'. *text gets the line trimmed.
 */
static int read_line(const char *s, size_t n, char **out, char **text)
{
	dtn__buf b = DTN__BUF_INIT;
	bool invert;
	size_t len;
	char *clean;

	*out = *text = NULL;
	trim_space(&s, &n);
	if (!n)
		return 0;
	if (!(*text = dtn__strndup(s, n)))
		return DTN_ENOMEM;
	if ((invert = s[0] == '!')) {
		s++, n--;
		trim_space(&s, &n);
		dtn__buf_putc(&b, '!');
	}
	if (n) {
		if (!(clean = clean_dup(s, n, &len))) {
			dtn__buf_free(&b);
			return DTN_ENOMEM;
		}
		if (len > 1 && clean[0] == '/')
			dtn__buf_add(&b, clean + 1, len - 1);
		else
			dtn__buf_add(&b, clean, len);
		dtn__free(clean);
	}
	*out = dtn__buf_detach(&b);
	return *out ? 0 : DTN_ENOMEM;
}

/*
 * What Docker's matcher makes of a pattern handed on by the reader: it trims and cleans it
 * again, then takes a '!' off. r->pat stays NULL when nothing is left.
 */
static int docker_pattern(ig_rule *r, const char *s)
{
	size_t n = strlen(s), len;
	char *clean;

	trim_space(&s, &n);
	if (!n)
		return 0;
	if (!(clean = clean_dup(s, n, &len)))
		return DTN_ENOMEM;
	if (clean[0] == '!') {
		r->exception = true;
		memmove(clean, clean + 1, len--);
	}
	r->pat = clean;
	r->pat_len = len;
	return 0;
}

static int push_rule(dtn__ignore *ig, const ig_rule *r)
{
	if (ig->len == ig->cap) {
		size_t cap = ig->cap ? 2 * ig->cap : 16;
		ig_rule *p = dtn__realloc(ig->rules, cap * sizeof(*p));

		if (!p)
			return DTN_ENOMEM;
		ig->rules = p;
		ig->cap = cap;
	}
	ig->rules[ig->len++] = *r;
	if (r->exception) {
		ig->any_exception = true;
		ig->wild_exception |= r->keep_wild;
	}
	return 0;
}

/* Drops the rules from `keep` on, after a failed load. */
static void truncate_rules(dtn__ignore *ig, size_t keep)
{
	while (ig->len > keep)
		rule_free(&ig->rules[--ig->len]);
	ig->any_exception = ig->wild_exception = false;
	for (size_t i = 0; i < ig->len; i++) {
		ig->any_exception |= ig->rules[i].exception;
		ig->wild_exception |= ig->rules[i].exception && ig->rules[i].keep_wild;
	}
}

/* Reads, checks and appends one line or item. */
static int add_line(dtn__ignore *ig, const char *s, size_t n, const ig_where *w, dtn_error *err)
{
	ig_rule r = {0};
	char *handed = NULL, msg[192] = "";
	int rc;

	if ((rc = read_line(s, n, &handed, &r.text)) < 0 || !handed)
		goto out;
	if ((rc = docker_pattern(&r, handed)) < 0 || !r.pat)
		goto out;
	if (r.exception && r.pat_len == 0) {
		rc = bad_pattern(err, DTN_EINVAL, w, r.text,
				 "an exception needs a pattern after \"!\"");
		goto out;
	}
	r.source = w->file;
	r.line = w->line;
	if ((rc = compile_rule(&r, msg, sizeof(msg))) < 0 && rc != DTN_ENOMEM) {
		rc = bad_pattern(err, rc, w, r.text, msg);
		goto out;
	}
	if (rc == 0 && (rc = push_rule(ig, &r)) == 0)
		r = (ig_rule){0};
out:
	if (rc == DTN_ENOMEM)
		dtn__error_set(err, DTN_ENOMEM, "out of memory");
	dtn__free(handed);
	rule_free(&r);
	return rc;
}

/* Checks a raw line of a .dockerignore and adds it unless it is a comment. */
static int add_text_line(dtn__ignore *ig, const char *s, size_t n, const ig_where *w,
			 dtn_error *err)
{
	if (n > IG_MAX_LINE) {
		dtn__error_set(err, DTN_EINVAL, "line is longer than %d bytes", IG_MAX_LINE);
		dtn__error_at(err, w->file, w->line, 0);
		return DTN_EINVAL;
	}
	if (w->line == 1 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3, n -= 3;
	if (n && s[n - 1] == '\r')
		n--;
	if (n && s[0] == '#')
		return 0;
	if (memchr(s, '\0', n)) {
		dtn__error_set(err, DTN_EUNSUPPORTED,
			       "line holds a NUL byte: the file is not UTF-8 text (UTF-16?)");
		dtn__error_at(err, w->file, w->line, 0);
		return DTN_EUNSUPPORTED;
	}
	return add_line(ig, s, n, w, err);
}

/* Keeps a copy of a source name for the rules to point at. */
static const char *keep_name(dtn__ignore *ig, char *owned)
{
	if (!owned || dtn__strv_push_owned(&ig->names, owned) < 0)
		return NULL;
	return ig->names.items[ig->names.len - 1];
}

/* ---- the public part ------------------------------------------------------------------- */

int dtn__ignore_new(dtn__ignore **out)
{
	*out = dtn__calloc(1, sizeof(**out));
	return *out ? 0 : DTN_ENOMEM;
}

void dtn__ignore_free(dtn__ignore *ig)
{
	if (!ig)
		return;
	truncate_rules(ig, 0);
	dtn__free(ig->rules);
	dtn__strv_free(&ig->names);
	dtn__free(ig);
}

int dtn__ignore_add_text(dtn__ignore *ig, const char *text, size_t len, const char *source,
			 dtn_error *err)
{
	size_t keep = ig->len, pos = 0;
	ig_where w = {keep_name(ig, dtn__strdup(source ? source : ".dockerignore")), 0};
	int rc = 0;

	if (!w.file)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	while (rc == 0 && pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;

		w.line++;
		rc = add_text_line(ig, text + pos, end - pos, &w, err);
		pos = end + 1;
	}
	if (rc < 0)
		truncate_rules(ig, keep);
	return rc;
}

int dtn__ignore_add_patterns(dtn__ignore *ig, const char *const *patterns, const char *source,
			     dtn_error *err)
{
	size_t keep = ig->len;
	int rc = 0;

	for (size_t i = 0; rc == 0 && patterns && patterns[i]; i++) {
		ig_where w = {NULL, 0};

		w.file = keep_name(ig, dtn__aprintf("%s[%zu]", source ? source : "ignore", i));
		if (!w.file)
			rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		else
			rc = add_line(ig, patterns[i], strlen(patterns[i]), &w, err);
	}
	if (rc < 0)
		truncate_rules(ig, keep);
	return rc;
}

size_t dtn__ignore_count(const dtn__ignore *ig)
{
	return ig ? ig->len : 0;
}

static const ig_rule *rule_at(const dtn__ignore *ig, int i)
{
	return ig && i >= 0 && (size_t)i < ig->len ? &ig->rules[i] : NULL;
}

const char *dtn__ignore_rule_text(const dtn__ignore *ig, int i)
{
	const ig_rule *r = rule_at(ig, i);

	return r ? r->text : NULL;
}

const char *dtn__ignore_rule_source(const dtn__ignore *ig, int i)
{
	const ig_rule *r = rule_at(ig, i);

	return r ? r->source : NULL;
}

int dtn__ignore_rule_line(const dtn__ignore *ig, int i)
{
	const ig_rule *r = rule_at(ig, i);

	return r ? r->line : 0;
}

bool dtn__ignore_rule_is_exception(const dtn__ignore *ig, int i)
{
	const ig_rule *r = rule_at(ig, i);

	return r && r->exception;
}

const char *dtn__ignore_rule_pattern(const dtn__ignore *ig, int i)
{
	const ig_rule *r = rule_at(ig, i);

	return r ? r->pat : NULL;
}

/* ---- matching -------------------------------------------------------------------------- */

/* Puts position k, and the positions it reaches without reading, into the set. */
static void nfa_add(uint64_t *set, const ig_op *ops, size_t k, bool at_start)
{
	for (;;) {
		uint64_t bit = (uint64_t)1 << (k % 64);

		if (set[k / 64] & bit)
			return;
		set[k / 64] |= bit;
		switch (ops[k].kind) {
		case OP_CLASS_STAR:
		case OP_LINE_STAR:
			k++;
			break;
		case OP_DIRS:
			set[(k + 1) / 64] |= (uint64_t)1 << ((k + 1) % 64);
			k += 2;
			break;
		case OP_BEGIN:
			if (!at_start)
				return;
			k++;
			break;
		default:
			return;
		}
	}
}

/* Position k reads character c; what it leads to goes into next. */
static void nfa_step(uint64_t *next, const ig_rule *r, size_t k, unsigned long c)
{
	const ig_op *op = &r->ops[k];

	switch (op->kind) {
	case OP_RUNE:
		if (c == op->arg)
			nfa_add(next, r->ops, k + 1, false);
		break;
	case OP_CLASS:
		if (in_class(r->cls, op->arg, c))
			nfa_add(next, r->ops, k + 1, false);
		break;
	case OP_CLASS_STAR:
		if (in_class(r->cls, op->arg, c))
			nfa_add(next, r->ops, k, false);
		break;
	case OP_LINE_STAR:
		if (c != '\n')
			nfa_add(next, r->ops, k, false);
		break;
	case OP_DIRS_BODY:
		if (c != '\n')
			nfa_add(next, r->ops, k, false);
		if (c == '/')
			nfa_add(next, r->ops, k + 1, false);
		break;
	default:
		break;
	}
}

static long count_char(const char *s, size_t n, char c)
{
	long count = 0;

	for (const char *p = s; (p = memchr(p, c, n - (size_t)(p - s))); p++)
		count++;
	return count;
}

static bool regex_match(const ig_rule *r, const char *s, size_t n)
{
	uint64_t sets[2][IG_MAX_OPS / 64];
	uint64_t *cur = sets[0], *next = sets[1];
	size_t words = (r->nops + 63) / 64, p = 0;

	if (r->head_len > n || memcmp(s, r->fix, r->head_len) ||
	    r->tail_len > n || memcmp(s + n - r->tail_len, r->fix + r->head_len, r->tail_len))
		return false;
	if (r->slashes >= 0 && count_char(s, n, '/') != r->slashes)
		return false;
	memset(cur, 0, words * sizeof(*cur));
	nfa_add(cur, r->ops, 0, true);
	while (p < n) {
		unsigned long c = next_char(s, n, &p);
		uint64_t *t, any = 0;

		memset(next, 0, words * sizeof(*next));
		for (size_t i = 0; i < words; i++) {
			uint64_t x = cur[i];

			any |= x;
			for (; x; x &= x - 1)
				nfa_step(next, r, i * 64 + (size_t)__builtin_ctzll(x), c);
		}
		if (!any)
			return false;
		t = cur, cur = next, next = t;
	}
	return cur[(r->nops - 1) / 64] >> ((r->nops - 1) % 64) & 1;
}

/* Whether rule r's pattern matches the path s[0..n) itself. */
static bool rule_match(const ig_rule *r, const char *s, size_t n)
{
	const char *l = r->lit;
	size_t ln = r->lit_len;

	switch (r->mode) {
	case MODE_EXACT:
		return n == ln && !memcmp(s, l, n);
	case MODE_PREFIX:
		return n >= ln && !memcmp(s, l, ln);
	case MODE_SUFFIX:
		if (n >= ln && !memcmp(s + n - ln, l, ln))
			return true;
		return ln && l[0] == '/' && n == ln - 1 && !memcmp(s, l + 1, n);
	default:
		return regex_match(r, s, n);
	}
}

/* Whether rule r's pattern matches one of the parent directories of s[0..n). */
static bool rule_match_parents(const ig_rule *r, const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (s[k] == '/' && rule_match(r, s, k))
			return true;
	}
	return false;
}

size_t dtn__ignore_state_words(const dtn__ignore *ig)
{
	size_t n = ig ? ig->len : 0;

	return n ? (n + 63) / 64 : 1;
}

int dtn__ignore_match_entry(const dtn__ignore *ig, const uint64_t *parent, const char *path,
			    size_t len, uint64_t *state, int *rule)
{
	bool matched = false;
	int last = -1;

	for (size_t i = 0; ig && i < ig->len; i++) {
		const ig_rule *r = &ig->rules[i];
		uint64_t bit = (uint64_t)1 << (i % 64);
		bool m = parent && (parent[i / 64] & bit);

		/* Docker does not try a rule that could not change the answer so far, and then
		 * does not record it as matching for the entry's children either. */
		if (!m && len && r->exception == matched) {
			m = rule_match(r, path, len) ||
			    (!parent && rule_match_parents(r, path, len));
		}
		if (state)
			state[i / 64] = m ? state[i / 64] | bit : state[i / 64] & ~bit;
		if (m) {
			matched = !r->exception;
			last = (int)i;
		}
	}
	if (rule)
		*rule = last;
	return matched;
}

bool dtn__ignore_may_reinclude(const dtn__ignore *ig, const char *dir, size_t len)
{
	if (!ig || !ig->any_exception)
		return false;
	if (ig->wild_exception)
		return true;
	for (size_t i = 0; i < ig->len; i++) {
		const ig_rule *r = &ig->rules[i];

		if (!r->exception || r->keep_len < len || memcmp(r->pat, dir, len))
			continue;
		if (r->keep_len == len || r->pat[len] == '/')
			return true;
	}
	return false;
}

int dtn__ignore_match(const dtn__ignore *ig, const char *path, size_t len, bool is_dir,
		      int *rule)
{
	uint64_t stack[IG_STACK_WORDS] = {0}, *st = stack;
	size_t words = dtn__ignore_state_words(ig), k = 0;
	int rc = 0, last = -1;

	(void)is_dir;
	if (words > IG_STACK_WORDS && !(st = dtn__calloc(words, sizeof(*st))))
		return DTN_ENOMEM;
	/* The entry and each of its parents in turn, each from its parent's state, stopping
	 * at an excluded directory that the walk would not go into. */
	while (len) {
		const char *slash = memchr(path + k, '/', len - k);
		size_t end = slash ? (size_t)(slash - path) : len;

		rc = dtn__ignore_match_entry(ig, k ? st : NULL, path, end, st, &last);
		if (end == len || (rc == 1 && !dtn__ignore_may_reinclude(ig, path, end)))
			break;
		k = end + 1;
	}
	if (st != stack)
		dtn__free(st);
	if (rule)
		*rule = last;
	return rc;
}
