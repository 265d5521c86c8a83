/*
 * dfscan.c - reads Dockerfile text for the sources of its COPY and ADD instructions.
 *
 * The reading follows the BuildKit Dockerfile frontend rather than the Daytona SDK's regular
 * expressions: parser directives, line continuations, heredoc bodies, flags, the JSON (exec)
 * and shell forms, and the shell-like word processing Docker applies to COPY/ADD arguments
 * (quotes, escapes, `$VAR` and `${VAR...}`), with variables scoped by ENV, ARG and FROM.
 *
 * Two deliberate differences from Docker: a source word may hold quoted blanks (`"my dir"`),
 * and a variable the Dockerfile does not define is an error instead of an empty string, since
 * dtn resolves sources before the base image or any build argument is known.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "dfscan.h"

#define MAX_WORD (1u << 20)   /* bytes one expanded word may reach */
#define MAX_TOTAL (32u << 20) /* bytes all kept variable values and sources may reach */
#define MAX_DEPTH 64          /* nesting of ${V:-...} */
#define MAX_JSON_DEPTH 512

/* ---- small text helpers ---------------------------------------------------------------- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether p[0..n) is `kw` (lower case) in any case. */
static bool word_is(const char *p, size_t n, const char *kw)
{
	size_t i;

	for (i = 0; i < n && kw[i]; i++)
		if (lower(p[i]) != kw[i])
			return false;
	return i == n && !kw[i];
}

/* The blanks that split instruction words (Docker's [\t\v\f\r ]). */
static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* The byte length of a Unicode white-space character starting at p, 0 if there is none.
 * Docker trims lines with Go's unicode.IsSpace, which knows more than ASCII. */
static size_t space_at(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (!n)
		return 0;
	if (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r'))
		return 1;
	if (n >= 2 && u[0] == 0xC2 && (u[1] == 0x85 || u[1] == 0xA0))
		return 2;
	if (n < 3)
		return 0;
	if ((u[0] == 0xE1 && u[1] == 0x9A && u[2] == 0x80) ||
	    (u[0] == 0xE2 && u[1] == 0x80 &&
	     (u[2] <= 0x8A || u[2] == 0xA8 || u[2] == 0xA9 || u[2] == 0xAF)) ||
	    (u[0] == 0xE2 && u[1] == 0x81 && u[2] == 0x9F) ||
	    (u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80))
		return 3;
	return 0;
}

/* The byte length of a white-space character ending at p + n, 0 if there is none. */
static size_t space_before(const char *p, size_t n)
{
	if (n >= 3 && space_at(p + n - 3, 3) == 3)
		return 3;
	if (n >= 2 && space_at(p + n - 2, 2) == 2)
		return 2;
	if (n >= 1 && space_at(p + n - 1, 1) == 1)
		return 1;
	return 0;
}

static size_t skip_space(const char *p, size_t i, size_t n)
{
	size_t k;

	while (i < n && (k = space_at(p + i, n - i)))
		i += k;
	return i;
}

static size_t trim_space_end(const char *p, size_t start, size_t end)
{
	size_t k;

	while (end > start && (k = space_before(p + start, end - start)))
		end -= k;
	return end;
}

static int clamp_int(size_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

/* ---- variables -------------------------------------------------------------------------- */

enum var_kind {
	VAR_SET,     /* the Dockerfile gives it a value */
	VAR_NOVALUE, /* an ARG without a default: only a build argument would set it */
	VAR_UNKNOWN  /* set, but its value depends on something dtn cannot know */
};

typedef struct var {
	char *name;
	char *value; /* VAR_SET: the value (vlen bytes, NUL-terminated) */
	size_t vlen;
	char *via; /* VAR_UNKNOWN: the undefined variable its value used, or NULL */
	enum var_kind kind;
} var;

typedef struct vars {
	var *v;
	size_t len, cap;
} vars;

static void var_free(var *v)
{
	dtn__free(v->name);
	dtn__free(v->value);
	dtn__free(v->via);
	memset(v, 0, sizeof(*v));
}

static void vars_free(vars *t)
{
	for (size_t i = 0; i < t->len; i++)
		var_free(&t->v[i]);
	dtn__free(t->v);
	memset(t, 0, sizeof(*t));
}

static var *vars_find(const vars *t, const char *name, size_t n)
{
	for (size_t i = t->len; i-- > 0;)
		if (strlen(t->v[i].name) == n && memcmp(t->v[i].name, name, n) == 0)
			return &t->v[i];
	return NULL;
}

/* Stores *nv in t, replacing a variable of the same name; takes ownership of its strings. */
static int vars_put(vars *t, var *nv)
{
	var *old = vars_find(t, nv->name, strlen(nv->name));

	if (old) {
		var_free(old);
		*old = *nv;
		return 0;
	}
	if (t->len == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		var *p = dtn__realloc(t->v, cap * sizeof(*p));

		if (!p) {
			var_free(nv);
			return DTN_ENOMEM;
		}
		t->v = p;
		t->cap = cap;
	}
	t->v[t->len++] = *nv;
	return 0;
}

/* ---- scanner state ---------------------------------------------------------------------- */

typedef struct stage {
	char *name;  /* lower-case `AS` name, or NULL */
	long parent; /* the earlier stage this one is built FROM, or -1 */
	vars env;
	vars args;
} stage;

typedef struct scanner {
	const char *buf; /* prelude, newline, text */
	size_t len, pos;
	int lineno;        /* physical lines read so far */
	int prelude_lines; /* how many of them belong to the prelude */
	char esc;
	bool directives_done;
	bool seen_directive[3];
	vars globals; /* ARGs declared before the first FROM */
	stage *stages;
	size_t nstages, capstages;
	dtn__df_source *src;
	size_t nsrc, capsrc;
	size_t total; /* bytes of values and sources kept */
	dtn_error *err;
} scanner;

/* One logical line: physical lines joined by continuations. */
typedef struct logical {
	dtn__buf text;
	size_t first_len; /* bytes of text taken from its first physical line */
	size_t lead;      /* bytes skipped at the start of that line */
	int line;         /* that line's number among all lines read */
	int instr_col;    /* column of the instruction keyword */
	bool in_text;     /* it starts in the scanned text, not in the prelude */
} logical;

static int column_of(const logical *l, size_t off)
{
	return off < l->first_len ? clamp_int(l->lead + off + 1) : l->instr_col;
}

static int fail_at(scanner *s, const logical *l, int column, int code, const char *fmt, ...)
	DTN__PRINTF(5, 6);

/* Records an error on the line where the instruction l starts. */
static int fail_at(scanner *s, const logical *l, int column, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dtn__error_setv(s->err, code, fmt, ap);
	va_end(ap);
	dtn__error_at(s->err, NULL, l->line - s->prelude_lines, column);
	return code;
}

static stage *current_stage(scanner *s)
{
	return s->nstages ? &s->stages[s->nstages - 1] : NULL;
}

/*
 * The variable `name` as an instruction sees it: before the first FROM (and on FROM lines)
 * only the global ARGs; in a stage its ENV (also those of the stage it is built from), then
 * its ARGs, since ENV wins over an ARG of the same name.
 */
static const var *lookup(const scanner *s, bool global, const char *name, size_t n)
{
	const stage *st;
	const var *v;

	if (global || !s->nstages)
		return vars_find(&s->globals, name, n);
	for (st = &s->stages[s->nstages - 1];; st = &s->stages[st->parent]) {
		if ((v = vars_find(&st->env, name, n)))
			return v;
		if (st->parent < 0)
			break;
	}
	return vars_find(&s->stages[s->nstages - 1].args, name, n);
}

/* ---- word expansion (Docker's shell lexer for one word) -------------------------------- */

typedef struct expander {
	const scanner *s;
	bool global;         /* see lookup() */
	bool literal_dollar; /* heredoc names: quotes are removed but `$` stays */
	char esc;
	const char *p;
	size_t n, i;
	int depth;
	/* the first variable met whose value is not known; not an error by itself, because a
	 * ${V:-word} whose word is not used does not need it */
	bool unresolved;
	enum var_kind ukind; /* VAR_SET here means "not defined at all" */
	char uname[128];
	char uvia[128];
	/* a hard error */
	const char *why;
	char msg[256];
} expander;

typedef struct unresolved_state {
	bool unresolved;
	enum var_kind ukind;
	char uname[128];
	char uvia[128];
} unresolved_state;

static void save_unresolved(const expander *ex, unresolved_state *st)
{
	st->unresolved = ex->unresolved;
	st->ukind = ex->ukind;
	memcpy(st->uname, ex->uname, sizeof(st->uname));
	memcpy(st->uvia, ex->uvia, sizeof(st->uvia));
}

static void load_unresolved(expander *ex, const unresolved_state *st)
{
	ex->unresolved = st->unresolved;
	ex->ukind = st->ukind;
	memcpy(ex->uname, st->uname, sizeof(ex->uname));
	memcpy(ex->uvia, st->uvia, sizeof(ex->uvia));
}

static int ex_fail(expander *ex, int code, const char *why)
{
	ex->why = why;
	return code;
}

/* Remembers that the variable p[0..n) (found as v, or not at all) has no known value. */
static void ex_note(expander *ex, const char *name, size_t n, const var *v)
{
	if (ex->unresolved)
		return;
	ex->unresolved = true;
	ex->ukind = v ? v->kind : VAR_SET;
	snprintf(ex->uname, sizeof(ex->uname), "%.*s", (int)(n > 100 ? 100 : n), name);
	snprintf(ex->uvia, sizeof(ex->uvia), "%s", v && v->via ? v->via : "");
}

static int ex_put(expander *ex, dtn__buf *out, const char *p, size_t n)
{
	if (n > MAX_WORD || out->len > MAX_WORD - n)
		return ex_fail(ex, DTN_EINVAL, "the word expands to more than 1 MiB");
	dtn__buf_add(out, p, n);
	return out->failed ? DTN_ENOMEM : 0;
}

/* Reads a variable name at ex->i: digits, one special character, or [A-Za-z0-9_]*. */
static size_t ex_name(expander *ex)
{
	size_t start = ex->i;
	char c = ex->i < ex->n ? ex->p[ex->i] : '\0';

	if (c >= '0' && c <= '9') {
		while (ex->i < ex->n && ex->p[ex->i] >= '0' && ex->p[ex->i] <= '9')
			ex->i++;
		return ex->i - start;
	}
	if (c && strchr("@*#?-$!", c)) {
		ex->i++;
		return 1;
	}
	while (ex->i < ex->n) {
		c = ex->p[ex->i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			break;
		ex->i++;
	}
	return ex->i - start;
}

static int ex_until(expander *ex, dtn__buf *out, char stop);

/* $NAME or ${NAME}: the value, or a note that it is not known. */
static int ex_value(expander *ex, dtn__buf *out, const char *name, size_t n)
{
	const var *v = lookup(ex->s, ex->global, name, n);

	if (!v || v->kind != VAR_SET) {
		ex_note(ex, name, n, v);
		return 0;
	}
	return ex_put(ex, out, v->value, v->vlen);
}

/* The `?` modifier on an unset or empty variable: Docker's error, with the given word. */
static int ex_required(expander *ex, const char *name, size_t n, const dtn__buf *word,
		       bool unset)
{
	if (word->len)
		snprintf(ex->msg, sizeof(ex->msg), "variable \"%.*s\": %.*s", (int)n, name,
			 (int)(word->len > 160 ? 160 : word->len), word->data);
	else
		snprintf(ex->msg, sizeof(ex->msg), "variable \"%.*s\" is not allowed to be %s",
			 (int)n, name, unset ? "unset" : "empty");
	return ex_fail(ex, DTN_EINVAL, ex->msg);
}

/*
 * Applies the modifier op (`-`, `+`, `?`, with `:` when colon) of ${NAME op word}. The word
 * was expanded already (as Docker does); `wst` says whether it met an unknown variable, which
 * only matters when the word is used.
 */
static int ex_modifier(expander *ex, dtn__buf *out, const char *name, size_t n, char op,
		       bool colon, const dtn__buf *word, const unresolved_state *wst)
{
	const var *v = lookup(ex->s, ex->global, name, n);
	bool unset = !v || v->kind == VAR_NOVALUE;
	bool empty = !unset && v->kind == VAR_SET && v->vlen == 0;
	bool use_word;

	if (v && v->kind == VAR_UNKNOWN && (colon || op != '+')) {
		ex_note(ex, name, n, v); /* the decision needs the value */
		return 0;
	}
	if (op == '?') {
		if (unset || (colon && empty))
			return ex_required(ex, name, n, word, unset);
		return ex_put(ex, out, v->value, v->vlen);
	}
	if (op == '-')
		use_word = unset || (colon && empty);
	else
		use_word = !unset && !(colon && empty);
	if (!use_word)
		return op == '-' ? ex_put(ex, out, v->value, v->vlen) : 0;
	if (wst->unresolved && !ex->unresolved)
		load_unresolved(ex, wst);
	return ex_put(ex, out, word->data ? word->data : "", word->len);
}

/* Reads the operator after ${NAME: `}`, or one of - + ? with an optional ':' before it. */
static int ex_operator(expander *ex, char *op, bool *colon)
{
	*colon = false;
	if (ex->i >= ex->n)
		return ex_fail(ex, DTN_ESYNTAX, "missing '}'");
	*op = ex->p[ex->i++];
	if (*op == ':') {
		*colon = true;
		if (ex->i >= ex->n)
			return ex_fail(ex, DTN_ESYNTAX, "missing '}'");
		*op = ex->p[ex->i++];
		if (*op == '#' || *op == '%')
			return ex_fail(ex, DTN_ESYNTAX, "unsupported modifier in a substitution");
	} else if (*op == '#' || *op == '%' || *op == '/') {
		return ex_fail(ex, DTN_EUNSUPPORTED,
			       "${V#p}, ${V%p} and ${V/p/r} substitutions are not supported");
	}
	if (*op == '}' && !*colon)
		return 0;
	if (*op != '-' && *op != '+' && *op != '?')
		return ex_fail(ex, DTN_ESYNTAX, "unsupported modifier in a substitution");
	return 0;
}

/* ${...}, with ex->i on the '{'. */
static int ex_brace(expander *ex, dtn__buf *out)
{
	dtn__buf word = DTN__BUF_INIT;
	unresolved_state saved, wst;
	const char *name;
	size_t n;
	bool colon;
	char op, c;
	int rc;

	ex->i++;
	if (ex->i >= ex->n)
		return ex_fail(ex, DTN_ESYNTAX, "missing '}'");
	c = ex->p[ex->i];
	if (c == '{' || c == '}' || c == ':')
		return ex_fail(ex, DTN_ESYNTAX, "bad substitution");
	name = ex->p + ex->i;
	n = ex_name(ex);
	if ((rc = ex_operator(ex, &op, &colon)) < 0)
		return rc;
	if (op == '}')
		return ex_value(ex, out, name, n);
	if (++ex->depth > MAX_DEPTH)
		return ex_fail(ex, DTN_ESYNTAX, "substitutions nested too deeply");
	save_unresolved(ex, &saved);
	ex->unresolved = false;
	rc = ex_until(ex, &word, '}');
	ex->depth--;
	save_unresolved(ex, &wst);
	load_unresolved(ex, &saved);
	if (rc == 0)
		rc = word.failed ? DTN_ENOMEM
				 : ex_modifier(ex, out, name, n, op, colon, &word, &wst);
	dtn__buf_free(&word);
	return rc;
}

static int ex_dollar(expander *ex, dtn__buf *out)
{
	const char *name;
	size_t n;

	ex->i++;
	if (ex->i < ex->n && ex->p[ex->i] == '{')
		return ex_brace(ex, out);
	name = ex->p + ex->i;
	if (!(n = ex_name(ex)))
		return ex_put(ex, out, "$", 1);
	return ex_value(ex, out, name, n);
}

static int ex_single(expander *ex, dtn__buf *out)
{
	const char *q = memchr(ex->p + ex->i + 1, '\'', ex->n - ex->i - 1);
	size_t start = ex->i + 1;

	if (!q)
		return ex_fail(ex, DTN_ESYNTAX, "unterminated single quote");
	ex->i = (size_t)(q - ex->p) + 1;
	return ex_put(ex, out, ex->p + start, (size_t)(q - ex->p) - start);
}

/* Inside double quotes the escape character escapes only `"`, `$` and itself. */
static int ex_double(expander *ex, dtn__buf *out)
{
	int rc = 0;

	ex->i++;
	while (rc == 0) {
		char c;

		if (ex->i >= ex->n)
			return ex_fail(ex, DTN_ESYNTAX, "unterminated double quote");
		c = ex->p[ex->i];
		if (c == '"') {
			ex->i++;
			return 0;
		}
		if (c == '$' && !ex->literal_dollar) {
			rc = ex_dollar(ex, out);
		} else if (c == ex->esc && ex->i + 1 >= ex->n) {
			ex->i++;
		} else if (c == ex->esc && (ex->p[ex->i + 1] == '"' || ex->p[ex->i + 1] == '$' ||
					    ex->p[ex->i + 1] == ex->esc)) {
			rc = ex_put(ex, out, ex->p + ex->i + 1, 1);
			ex->i += 2;
		} else {
			rc = ex_put(ex, out, &c, 1);
			ex->i++;
		}
	}
	return rc;
}

/* Processes characters up to `stop` (consumed; '\0' for the end of the word). */
static int ex_until(expander *ex, dtn__buf *out, char stop)
{
	int rc = 0;

	while (rc == 0 && ex->i < ex->n) {
		char c = ex->p[ex->i];

		if (stop && c == stop) {
			ex->i++;
			return 0;
		}
		if (c == '\'') {
			rc = ex_single(ex, out);
		} else if (c == '"') {
			rc = ex_double(ex, out);
		} else if (c == '$' && !ex->literal_dollar) {
			rc = ex_dollar(ex, out);
		} else if (c == ex->esc) {
			ex->i++; /* an escape at the very end is dropped */
			if (ex->i < ex->n)
				rc = ex_put(ex, out, ex->p + ex->i++, 1);
		} else {
			rc = ex_put(ex, out, &c, 1);
			ex->i++;
		}
	}
	if (rc == 0 && stop)
		rc = ex_fail(ex, DTN_ESYNTAX, "missing '}'");
	return rc;
}

/* Expands the word p[0..n) into out (reset first). Check ex->unresolved afterwards. */
static int expand(expander *ex, const scanner *s, bool global, const char *p, size_t n,
		  dtn__buf *out)
{
	int rc;

	memset(ex, 0, sizeof(*ex));
	ex->s = s;
	ex->global = global;
	ex->esc = s->esc;
	ex->p = p;
	ex->n = n;
	out->len = 0;
	out->failed = false;
	rc = ex_until(ex, out, '\0');
	if (rc == 0 && !out->data)
		dtn__buf_add(out, "", 0); /* callers get a string even when it is empty */
	if (rc == 0 && out->failed)
		rc = DTN_ENOMEM;
	return rc;
}

/* ---- words ------------------------------------------------------------------------------ */

/* An argument of an instruction: a raw shell word or a decoded JSON string. */
typedef struct item {
	const char *p;
	size_t n;
	size_t off; /* where it starts in the logical line */
	bool heredoc;
} item;

typedef struct items {
	item *v;
	size_t len, cap;
} items;

static int items_push(items *it, const char *p, size_t n, size_t off)
{
	if (it->len == it->cap) {
		size_t cap = it->cap ? it->cap * 2 : 8;
		item *v = dtn__realloc(it->v, cap * sizeof(*v));

		if (!v)
			return DTN_ENOMEM;
		it->v = v;
		it->cap = cap;
	}
	it->v[it->len++] = (item){p, n, off, false};
	return 0;
}

/*
 * Splits t[start..end) into raw words at blanks, keeping quoted blanks and escaped characters
 * inside a word (the quotes and escapes stay; expand() removes them later).
 */
static int split_words(const char *t, size_t start, size_t end, char esc, items *out)
{
	size_t i = start;

	while (i < end) {
		size_t w, opened = 0;
		char quote = 0;

		while (i < end && blank(t[i]))
			i++;
		if (i >= end)
			break;
		for (w = i; i < end; i++) {
			char c = t[i];

			if (!quote && blank(c))
				break;
			if (c == esc && quote != '\'' && i + 1 < end) {
				i++;
			} else if (!quote && (c == '\'' || c == '"')) {
				quote = c;
				opened = i;
			} else if (quote && c == quote) {
				quote = 0;
			}
		}
		/* a quote left open does not swallow the rest: the word ends at the next blank
		 * after it, as Docker splits, and its expansion reports the quote */
		for (i = quote ? opened : i; quote && i < end && !blank(t[i]);)
			i++;
		if (items_push(out, t + w, i - w, w) < 0)
			return DTN_ENOMEM;
	}
	return 0;
}

/*
 * Splits t[start..end) at blanks only. Docker splits COPY and ADD arguments this way before
 * it reads quotes, so a quoted blank does not join two words ("quoted dir" is two words, and
 * each then has an unterminated quote); expand() reads the quotes of each word later.
 */
static int split_blanks(const char *t, size_t start, size_t end, items *out)
{
	size_t i = start;

	while (i < end) {
		size_t w;

		while (i < end && blank(t[i]))
			i++;
		if (i >= end)
			break;
		for (w = i; i < end && !blank(t[i]); i++)
			;
		if (items_push(out, t + w, i - w, w) < 0)
			return DTN_ENOMEM;
	}
	return 0;
}

/* ---- instruction arguments -------------------------------------------------------------- */

typedef struct args {
	items it;       /* the arguments after the flags */
	dtn__buf store; /* decoded JSON strings */
	bool from;      /* --from was given */
	bool json;      /* the exec form */
	bool nonstring; /* a JSON array holding something other than strings */
	bool nul;       /* a JSON string holding a NUL byte */
} args;

static void args_free(args *a)
{
	dtn__free(a->it.v);
	dtn__buf_free(&a->store);
	memset(a, 0, sizeof(*a));
}

/*
 * Skips the leading flags (`--name` or `--name=value`; `--from` may also take its value as
 * the next word; a lone `--` ends them) and returns the index of the first argument.
 */
static size_t skip_flags(const items *w, bool *from)
{
	size_t k = 0;

	*from = false;
	while (k < w->len && w->v[k].n >= 2 && w->v[k].p[0] == '-' && w->v[k].p[1] == '-') {
		const char *f = w->v[k].p + 2;
		size_t n = w->v[k].n - 2;
		const char *eq = memchr(f, '=', n);

		k++;
		if (n == 0)
			break;
		if (word_is(f, eq ? (size_t)(eq - f) : n, "from")) {
			*from = true;
			if (!eq && k < w->len)
				k++;
		}
	}
	return k;
}

/*
 * Tries the exec form on t[start..end): a JSON array, and nothing after it. When it is one,
 * a->it gets its strings (all at the array's column); a JSON value that is not a string marks
 * the instruction as malformed.
 */
static int parse_json(args *a, const char *t, size_t start, size_t end)
{
	json_t *arr = json_loadb(t + start, end - start, JSON_ALLOW_NUL, NULL), *v;
	size_t i, *at = NULL, n;
	int rc = 0;

	if (!json_is_array(arr))
		goto out;
	a->json = true;
	n = json_array_size(arr);
	if (n && !(at = dtn__calloc(n, sizeof(*at)))) {
		rc = DTN_ENOMEM;
		goto out;
	}
	/* the strings go back to back into the store first, so pointers into it stay valid */
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			a->nonstring = true;
			goto out;
		}
		if (strlen(json_string_value(v)) != json_string_length(v)) {
			a->nul = true;
			goto out;
		}
		at[i] = a->store.len;
		dtn__buf_add(&a->store, json_string_value(v), json_string_length(v));
		dtn__buf_putc(&a->store, '\0');
	}
	if (a->store.failed)
		rc = DTN_ENOMEM;
	for (i = 0; i < n && rc == 0; i++)
		rc = items_push(&a->it, a->store.data + at[i], strlen(a->store.data + at[i]),
				start);
out:
	dtn__free(at);
	json_decref(arr);
	return rc;
}

/* Reads the arguments of RUN/COPY/ADD in t[start..end): flags, then exec or shell form. */
static int parse_args(args *a, const char *t, size_t start, size_t end)
{
	items w = {0};
	size_t k;
	int rc;

	memset(a, 0, sizeof(*a));
	if ((rc = split_blanks(t, start, end, &w)) < 0)
		goto out;
	k = skip_flags(&w, &a->from);
	if (k < w.len && (rc = parse_json(a, t, w.v[k].off, end)) < 0)
		goto out;
	if (a->json)
		goto out;
	for (; k < w.len; k++)
		if ((rc = items_push(&a->it, w.v[k].p, w.v[k].n, w.v[k].off)) < 0)
			goto out;
out:
	dtn__free(w.v);
	if (rc < 0)
		args_free(a);
	return rc;
}

/* ---- heredocs --------------------------------------------------------------------------- */

typedef struct heredoc {
	char *name;
	bool chomp; /* <<-: leading tabs do not count on the terminator line */
} heredoc;

typedef struct heredocs {
	heredoc *v;
	size_t len, cap;
} heredocs;

static void heredocs_clear(heredocs *h)
{
	for (size_t i = 0; i < h->len; i++)
		dtn__free(h->v[i].name);
	h->len = 0;
}

static void heredocs_free(heredocs *h)
{
	heredocs_clear(h);
	dtn__free(h->v);
	memset(h, 0, sizeof(*h));
}

/*
 * Whether the raw word is a heredoc opener ([digits]<<[-]WORD, as BuildKit's
 * ^(\d*)<<(-?)([^<]*)$); if so, adds the terminator (WORD without its quotes) to h.
 */
static int heredoc_word(const scanner *s, const item *w, heredocs *h, bool *is)
{
	dtn__buf name = DTN__BUF_INIT;
	expander ex;
	size_t i = 0;
	bool chomp = false;
	int rc;

	*is = false;
	while (i < w->n && w->p[i] >= '0' && w->p[i] <= '9')
		i++;
	if (w->n - i < 3 || w->p[i] != '<' || w->p[i + 1] != '<')
		return 0;
	i += 2;
	if (w->p[i] == '-')
		chomp = true, i++;
	if (i >= w->n || memchr(w->p + i, '<', w->n - i))
		return 0;
	memset(&ex, 0, sizeof(ex));
	ex.s = s;
	ex.esc = s->esc;
	ex.literal_dollar = true;
	ex.p = w->p + i;
	ex.n = w->n - i;
	if ((rc = ex_until(&ex, &name, '\0')) < 0 || name.failed) {
		dtn__buf_free(&name);
		/* an unterminated quote makes it an ordinary word */
		return rc == DTN_ENOMEM || name.failed ? DTN_ENOMEM : 0;
	}
	if (h->len == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 4;
		heredoc *v = dtn__realloc(h->v, cap * sizeof(*v));

		if (!v) {
			dtn__buf_free(&name);
			return DTN_ENOMEM;
		}
		h->v = v;
		h->cap = cap;
	}
	if (!(h->v[h->len].name = dtn__buf_detach(&name)))
		return DTN_ENOMEM;
	h->v[h->len++].chomp = chomp;
	*is = true;
	return 0;
}

/* Marks the heredoc words of a shell-form RUN/COPY/ADD and lists their terminators. */
static int find_heredocs(const scanner *s, args *a, heredocs *h)
{
	int rc;

	if (a->json)
		return 0;
	for (size_t k = 0; k < a->it.len; k++)
		if ((rc = heredoc_word(s, &a->it.v[k], h, &a->it.v[k].heredoc)) < 0)
			return rc;
	return 0;
}

/* ---- physical and logical lines --------------------------------------------------------- */

/* The next physical line, without its '\n' and trailing '\r's; false at the end. */
static bool next_line(scanner *s, const char **p, size_t *n)
{
	const char *nl;
	size_t len;

	if (s->pos >= s->len)
		return false;
	*p = s->buf + s->pos;
	nl = memchr(*p, '\n', s->len - s->pos);
	len = nl ? (size_t)(nl - *p) : s->len - s->pos;
	s->pos += len + (nl ? 1 : 0);
	if (s->lineno == 0 && len >= 3 && memcmp(*p, "\xEF\xBB\xBF", 3) == 0) {
		*p += 3; /* a byte-order mark */
		len -= 3;
	}
	while (len && (*p)[len - 1] == '\r')
		len--;
	*n = len;
	if (s->lineno < INT_MAX)
		s->lineno++;
	return true;
}

/*
 * Whether a line continues: it ends with the escape character (then only spaces and tabs),
 * not itself escaped. *keep is the length of the text it contributes.
 */
static bool continues(const char *p, size_t n, char esc, size_t *keep)
{
	size_t e = n;

	while (e && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	if (!e || p[e - 1] != esc || (e >= 2 && p[e - 2] == esc)) {
		*keep = n;
		return false;
	}
	*keep = e - 1;
	return true;
}

/* The blanks of Go's \s, which the directive syntax allows around its parts. */
static bool re_space(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n';
}

/* Handles a parser directive (`# escape=`, `# syntax=`, `# check=`) at the top of the file. */
static int directive(scanner *s, const char *p, size_t n, logical *l)
{
	static const char *const known[] = {"escape", "syntax", "check"};
	size_t i = 1, name, nlen, v, vend;
	size_t k;

	if (!n || p[0] != '#')
		goto done;
	while (i < n && re_space(p[i]))
		i++;
	name = i;
	while (i < n && ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
			 (i > name && p[i] >= '0' && p[i] <= '9')))
		i++;
	nlen = i - name;
	while (i < n && re_space(p[i]))
		i++;
	if (!nlen || i >= n || p[i] != '=')
		goto done;
	v = ++i;
	while (v < n && re_space(p[v]))
		v++;
	for (vend = n; vend > v && re_space(p[vend - 1]);)
		vend--;
	if (vend == v && v == i)
		goto done; /* nothing after '=' */
	if (vend == v)
		v--, vend = v + 1; /* the regular expression keeps one blank as the value */
	for (k = 0; k < DTN__ARRAY_LEN(known); k++)
		if (word_is(p + name, nlen, known[k]))
			break;
	if (k == DTN__ARRAY_LEN(known))
		goto done;
	if (s->seen_directive[k] && l->in_text)
		return fail_at(s, l, clamp_int(l->lead + 1), DTN_ESYNTAX,
			       "only one %s parser directive can be used", known[k]);
	s->seen_directive[k] = true;
	if (k == 0 && vend - v == 1 && (p[v] == '\\' || p[v] == '`'))
		s->esc = p[v];
	else if (k == 0 && l->in_text)
		return fail_at(s, l, clamp_int(l->lead + v + 1), DTN_ESYNTAX,
			       "invalid escape directive \"%.*s\": the escape character is ` or \\",
			       (int)(vend - v > 40 ? 40 : vend - v), p + v);
	return 0;
done:
	s->directives_done = true;
	return 0;
}

/* A comment line or a blank line (both dropped inside a continuation). */
static bool comment_or_blank(const char *p, size_t n)
{
	size_t i = skip_space(p, 0, n);

	return i == n || p[i] == '#';
}

/* Reads the next instruction: 1 when there is one in *l, 0 at the end, or an error. */
static int read_logical(scanner *s, logical *l)
{
	const char *p;
	size_t n, lead, keep;
	bool more;
	int rc;

	l->text.len = 0;
	for (;;) {
		if (!next_line(s, &p, &n))
			return 0;
		lead = skip_space(p, 0, n);
		l->line = s->lineno;
		l->in_text = s->lineno > s->prelude_lines;
		l->lead = lead;
		l->first_len = 0;
		if (!s->directives_done && (rc = directive(s, p + lead, n - lead, l)) < 0)
			return rc;
		if (lead < n && p[lead] == '#')
			continue;
		more = continues(p + lead, n - lead, s->esc, &keep);
		if (more || keep)
			break;
	}
	dtn__buf_add(&l->text, p + lead, keep);
	l->first_len = keep;
	while (more && next_line(s, &p, &n)) {
		if (comment_or_blank(p, n))
			continue;
		more = continues(p, n, s->esc, &keep);
		dtn__buf_add(&l->text, p, keep);
	}
	return l->text.failed ? DTN_ENOMEM : 1;
}

/* Skips the bodies of the heredocs the last instruction opened. */
static void skip_heredocs(scanner *s, const heredocs *h)
{
	const char *p;
	size_t n;

	for (size_t k = 0; k < h->len; k++) {
		size_t nlen = strlen(h->v[k].name);

		while (next_line(s, &p, &n)) {
			while (h->v[k].chomp && n && p[0] == '\t')
				p++, n--;
			if (n == nlen && memcmp(p, h->v[k].name, n) == 0)
				break;
		}
	}
}

/* ---- ENV, ARG, FROM --------------------------------------------------------------------- */

/*
 * Builds the variable `key` = expansion of value[0..vn) (value NULL: none given). Variables the
 * value uses without a known value make it unknown rather than failing, since ENV and ARG
 * may well use variables of the base image. Returns 1 when *v was made, 0 when the key cannot
 * be known, or ENOMEM.
 */
static int make_var(scanner *s, bool global, const char *key, size_t kn, const char *value,
		    size_t vn, var *v)
{
	dtn__buf b = DTN__BUF_INIT;
	const char *via;
	expander ex;
	int rc;

	memset(v, 0, sizeof(*v));
	rc = expand(&ex, s, global, key, kn, &b);
	if (rc == DTN_ENOMEM)
		goto nomem;
	if (rc < 0 || ex.unresolved || !b.len || memchr(b.data, '\0', b.len)) {
		dtn__buf_free(&b);
		return 0;
	}
	if (!(v->name = dtn__buf_detach(&b)))
		goto nomem;
	if (!value) {
		v->kind = VAR_NOVALUE;
		return 1;
	}
	rc = expand(&ex, s, global, value, vn, &b);
	if (rc == DTN_ENOMEM)
		goto nomem;
	if (rc == 0 && !ex.unresolved && b.len <= MAX_TOTAL - s->total) {
		s->total += b.len;
		v->kind = VAR_SET;
		v->vlen = b.len;
		if (!(v->value = dtn__buf_detach(&b)))
			goto nomem;
		return 1;
	}
	dtn__buf_free(&b);
	v->kind = VAR_UNKNOWN;
	/* name the variable at the root of it: P=$Q with Q unknown because of PATH says PATH */
	via = ex.ukind == VAR_UNKNOWN ? ex.uvia : ex.uname;
	if (rc == 0 && ex.unresolved && via[0] && !(v->via = dtn__strdup(via)))
		goto nomem;
	return 1;
nomem:
	dtn__buf_free(&b);
	var_free(v);
	return DTN_ENOMEM;
}

/* Gives a bare `ARG name` inside a stage the default of the global ARG of that name. */
static int inherit_global(scanner *s, var *v)
{
	const var *g = vars_find(&s->globals, v->name, strlen(v->name));

	if (!g || g->kind == VAR_NOVALUE)
		return 0;
	v->kind = g->kind;
	if (g->value && !(v->value = dtn__strndup(g->value, g->vlen)))
		return DTN_ENOMEM;
	v->vlen = g->vlen;
	if (g->via && !(v->via = dtn__strdup(g->via)))
		return DTN_ENOMEM;
	return 0;
}

/* Stores the pending variables (all expanded before any is set, as Docker does). */
static int put_all(vars *dst, vars *pending)
{
	int rc = 0;

	for (size_t k = 0; k < pending->len; k++) {
		if (rc == 0)
			rc = vars_put(dst, &pending->v[k]);
		else
			var_free(&pending->v[k]);
		memset(&pending->v[k], 0, sizeof(pending->v[k]));
	}
	pending->len = 0;
	return rc;
}

static int pend(vars *pending, int made, var *v)
{
	if (made <= 0)
		return made;
	return vars_put(pending, v);
}

/* The legacy ENV key value: the key ends at the first blank, the value is the rest. */
static int env_legacy(scanner *s, const char *t, size_t start, size_t end, vars *pending)
{
	size_t k = start, vs;
	var v;

	while (k < end && !blank(t[k]))
		k++;
	for (vs = k; vs < end && blank(t[vs]);)
		vs++;
	if (vs >= end)
		return 0; /* Docker wants two arguments */
	return pend(pending, make_var(s, false, t + start, k - start, t + vs, end - vs, &v), &v);
}

/* ENV key=value ... or the legacy ENV key value. */
static int handle_env(scanner *s, const char *t, size_t start, size_t end)
{
	stage *st = current_stage(s);
	vars pending = {0};
	items w = {0};
	var v;
	int rc;

	if (!st)
		return 0; /* Docker refuses ENV before FROM */
	if ((rc = split_words(t, start, end, s->esc, &w)) < 0 || !w.len)
		goto out;
	if (!memchr(w.v[0].p, '=', w.v[0].n))
		rc = env_legacy(s, t, start, end, &pending);
	for (size_t i = 0; rc == 0 && memchr(w.v[0].p, '=', w.v[0].n) && i < w.len; i++) {
		const char *eq = memchr(w.v[i].p, '=', w.v[i].n);
		size_t kn;

		if (!eq)
			break; /* Docker rejects the instruction; keep what came before */
		kn = (size_t)(eq - w.v[i].p);
		rc = pend(&pending, make_var(s, false, w.v[i].p, kn, eq + 1, w.v[i].n - kn - 1, &v),
			  &v);
	}
	if (rc == 0)
		rc = put_all(&st->env, &pending);
out:
	vars_free(&pending);
	dtn__free(w.v);
	return rc;
}

/* ARG name[=default] ...: global before the first FROM, else in the current stage. */
static int handle_arg(scanner *s, const char *t, size_t start, size_t end)
{
	stage *st = current_stage(s);
	vars pending = {0};
	items w = {0};
	var v;
	int rc;

	if ((rc = split_words(t, start, end, s->esc, &w)) < 0)
		goto out;
	for (size_t i = 0; rc == 0 && i < w.len; i++) {
		const char *eq = memchr(w.v[i].p, '=', w.v[i].n);
		size_t kn = eq ? (size_t)(eq - w.v[i].p) : w.v[i].n;
		int made = make_var(s, !st, w.v[i].p, kn, eq ? eq + 1 : NULL,
				    eq ? w.v[i].n - kn - 1 : 0, &v);

		if (made > 0 && !eq && st && (rc = inherit_global(s, &v)) < 0) {
			var_free(&v);
			break;
		}
		if (made > 0 && !eq && !st && vars_find(&s->globals, v.name, strlen(v.name))) {
			var_free(&v); /* redeclared without a default: keeps its value */
			continue;
		}
		rc = pend(&pending, made, &v);
	}
	if (rc == 0)
		rc = put_all(st ? &st->args : &s->globals, &pending);
out:
	vars_free(&pending);
	dtn__free(w.v);
	return rc;
}

/* The earlier stage named `base` (already lower case), or -1. */
static long find_stage(const scanner *s, const char *base)
{
	for (size_t k = s->nstages; k-- > 0;)
		if (s->stages[k].name && strcmp(s->stages[k].name, base) == 0)
			return (long)k;
	return -1;
}

/* The lower-case name of the image a FROM line builds on, NULL when it cannot be known. */
static char *from_base(scanner *s, const item *w, int *rc)
{
	dtn__buf b = DTN__BUF_INIT;
	expander ex;

	*rc = expand(&ex, s, true, w->p, w->n, &b);
	if (*rc < 0 || ex.unresolved) {
		*rc = *rc == DTN_ENOMEM ? DTN_ENOMEM : 0;
		dtn__buf_free(&b);
		return NULL;
	}
	for (size_t k = 0; k < b.len; k++)
		b.data[k] = lower(b.data[k]);
	return dtn__buf_detach(&b);
}

/* FROM [--flags] image [AS name]: a new stage, which inherits the ENV of a named earlier one. */
static int handle_from(scanner *s, const char *t, size_t start, size_t end)
{
	items w = {0};
	stage st = {.parent = -1};
	char *base = NULL;
	bool unused;
	size_t k;
	int rc;

	if ((rc = split_words(t, start, end, s->esc, &w)) < 0)
		goto out;
	k = skip_flags(&w, &unused);
	if (k < w.len && !(base = from_base(s, &w.v[k], &rc)) && rc < 0)
		goto out;
	if (base)
		st.parent = find_stage(s, base);
	if (k + 2 < w.len && word_is(w.v[k + 1].p, w.v[k + 1].n, "as")) {
		if (!(st.name = dtn__strndup(w.v[k + 2].p, w.v[k + 2].n))) {
			rc = DTN_ENOMEM;
			goto out;
		}
		for (char *c = st.name; *c; c++)
			*c = lower(*c);
	}
	if (s->nstages == s->capstages) {
		size_t cap = s->capstages ? s->capstages * 2 : 4;
		stage *p = dtn__realloc(s->stages, cap * sizeof(*p));

		if (!p) {
			dtn__free(st.name);
			rc = DTN_ENOMEM;
			goto out;
		}
		s->stages = p;
		s->capstages = cap;
	}
	s->stages[s->nstages++] = st;
out:
	dtn__free(base);
	dtn__free(w.v);
	return rc;
}

/* ---- COPY and ADD ----------------------------------------------------------------------- */

static bool is_url(const char *p)
{
	return strstr(p, "://") || strncmp(p, "git@", 4) == 0;
}

/* Reports a variable without a known value met in a source. */
static int fail_unresolved(scanner *s, const logical *l, const item *w, const expander *ex,
			   const char *kw)
{
	if (ex->ukind == VAR_NOVALUE)
		return fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
			       "variable \"%s\" has no value: its ARG has no default (%s sources "
			       "are resolved when dtn runs, without build arguments)",
			       ex->uname, kw);
	if (ex->ukind == VAR_UNKNOWN && ex->uvia[0])
		return fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
			       "variable \"%s\" is not known: its value uses \"%s\", whose value "
			       "dtn does not know (%s sources are resolved when dtn runs)",
			       ex->uname, ex->uvia, kw);
	if (ex->ukind == VAR_UNKNOWN)
		return fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
			       "variable \"%s\" has a value dtn cannot work out (%s sources are "
			       "resolved when dtn runs)",
			       ex->uname, kw);
	return fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
		       "variable \"%s\" is not defined (%s sources are resolved when dtn runs)",
		       ex->uname, kw);
}

static int push_source(scanner *s, dtn__df_source *src)
{
	if (s->nsrc == s->capsrc) {
		size_t cap = s->capsrc ? s->capsrc * 2 : 8;
		dtn__df_source *p = dtn__realloc(s->src, cap * sizeof(*p));

		if (!p) {
			dtn__free(src->text);
			return DTN_ENOMEM;
		}
		s->src = p;
		s->capsrc = cap;
	}
	s->src[s->nsrc++] = *src;
	return 0;
}

/* Expands one source word and lists it, unless it is a URL given to ADD. Docker processes
 * quotes, escapes and variables in the strings of the JSON form too. */
static int add_source(scanner *s, const logical *l, const item *w, bool is_add,
		      bool exec_form)
{
	const char *kw = is_add ? "ADD" : "COPY";
	dtn__buf b = DTN__BUF_INIT;
	dtn__df_source src;
	expander ex;
	int rc = expand(&ex, s, false, w->p, w->n, &b);

	if (rc == DTN_ENOMEM)
		goto out;
	if (rc < 0)
		rc = fail_at(s, l, column_of(l, w->off), rc, "%s source %.*s: %s%s", kw,
			     (int)(w->n > 200 ? 200 : w->n), w->p, ex.why,
			     exec_form && rc == DTN_ESYNTAX
				     ? " (docker build reads quotes inside JSON strings too)"
				     : "");
	else if (ex.unresolved)
		rc = fail_unresolved(s, l, w, &ex, kw);
	else if (memchr(b.data, '\0', b.len))
		rc = fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
			     "%s source contains a NUL byte", kw);
	else if (is_url(b.data) && !is_add)
		rc = fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
			     "COPY source \"%s\" is a URL; only ADD downloads URLs", b.data);
	else if (b.len > MAX_TOTAL - s->total)
		rc = fail_at(s, l, column_of(l, w->off), DTN_EINVAL,
			     "%s sources expand to more than 32 MiB", kw);
	if (rc < 0 || is_url(b.data))
		goto out;
	s->total += b.len;
	src = (dtn__df_source){dtn__buf_detach(&b), l->line - s->prelude_lines,
			       column_of(l, w->off), is_add};
	rc = src.text ? push_source(s, &src) : DTN_ENOMEM;
out:
	dtn__buf_free(&b);
	return rc;
}

/* COPY or ADD: its heredocs, then (in the scanned text) its sources. */
static int handle_copy(scanner *s, const logical *l, size_t start, size_t end, bool is_add,
		       heredocs *h)
{
	const char *t = l->text.data;
	const char *kw = is_add ? "ADD" : "COPY";
	args a;
	int rc;

	if ((rc = parse_args(&a, t, start, end)) < 0)
		return rc;
	if ((rc = find_heredocs(s, &a, h)) < 0 || !l->in_text)
		goto out;
	if (a.nul) {
		rc = fail_at(s, l, column_of(l, start), DTN_EINVAL,
			     "%s: a JSON string holds a NUL byte, which no path can", kw);
		goto out;
	}
	if (a.nonstring) {
		rc = fail_at(s, l, column_of(l, start), DTN_EINVAL,
			     "%s: when using JSON array syntax, arrays must be comprised of "
			     "strings only",
			     kw);
		goto out;
	}
	if (a.it.len < 2) {
		rc = fail_at(s, l, l->instr_col, DTN_EINVAL, "%s requires at least two arguments",
			     kw);
		goto out;
	}
	for (size_t k = 0; !a.from && k + 1 < a.it.len && rc == 0; k++)
		if (!a.it.v[k].heredoc)
			rc = add_source(s, l, &a.it.v[k], is_add, a.json);
out:
	args_free(&a);
	return rc;
}

/* RUN (or an ONBUILD RUN/COPY/ADD): only its heredoc bodies matter. */
static int handle_heredocs_only(scanner *s, const char *t, size_t start, size_t end,
				heredocs *h)
{
	args a;
	int rc;

	if ((rc = parse_args(&a, t, start, end)) < 0)
		return rc;
	rc = find_heredocs(s, &a, h);
	args_free(&a);
	return rc;
}

/* Splits t[start..end) into its keyword and the start of its arguments. */
static size_t keyword(const char *t, size_t start, size_t end, size_t *rest)
{
	size_t k = start;

	while (k < end && !blank(t[k]))
		k++;
	*rest = k;
	while (*rest < end && blank(t[*rest]))
		(*rest)++;
	return k - start;
}

static int instruction(scanner *s, logical *l, heredocs *h)
{
	const char *t = l->text.data ? l->text.data : "";
	size_t start = skip_space(t, 0, l->text.len), end, rest, kn;

	end = trim_space_end(t, start, l->text.len);
	kn = keyword(t, start, end, &rest);
	l->instr_col = clamp_int(l->lead + (start < l->first_len ? start : 0) + 1);
	if (word_is(t + start, kn, "copy") || word_is(t + start, kn, "add"))
		return handle_copy(s, l, rest, end, kn == 3, h);
	if (word_is(t + start, kn, "run"))
		return handle_heredocs_only(s, t, rest, end, h);
	if (word_is(t + start, kn, "env"))
		return handle_env(s, t, rest, end);
	if (word_is(t + start, kn, "arg"))
		return handle_arg(s, t, rest, end);
	if (word_is(t + start, kn, "from"))
		return handle_from(s, t, rest, end);
	if (word_is(t + start, kn, "onbuild")) {
		size_t sub = rest, subrest;

		kn = keyword(t, sub, end, &subrest);
		if (word_is(t + sub, kn, "run") || word_is(t + sub, kn, "copy") ||
		    word_is(t + sub, kn, "add"))
			return handle_heredocs_only(s, t, subrest, end, h);
	}
	return 0;
}

/* ---- entry points ----------------------------------------------------------------------- */

static int scan_lines(scanner *s)
{
	logical l = {DTN__BUF_INIT, 0, 0, 0, 0, false};
	heredocs h = {0};
	int rc;

	while ((rc = read_logical(s, &l)) > 0) {
		if ((rc = instruction(s, &l, &h)) < 0)
			break;
		skip_heredocs(s, &h);
		heredocs_clear(&h);
	}
	dtn__buf_free(&l.text);
	heredocs_free(&h);
	return rc;
}

/* The prelude and the text as one file, with a newline between them when the prelude lacks
 * one (dtn adds it before appending). */
static int join_input(scanner *s, dtn__buf *all, const char *prelude, const char *text,
		      size_t len)
{
	size_t plen = prelude ? strlen(prelude) : 0;

	dtn__buf_add(all, prelude ? prelude : "", plen);
	if (plen && prelude[plen - 1] != '\n')
		dtn__buf_putc(all, '\n');
	for (size_t k = 0; k < all->len; k++)
		if (all->data[k] == '\n' && s->prelude_lines < INT_MAX)
			s->prelude_lines++;
	dtn__buf_add(all, text ? text : "", text ? len : 0);
	if (all->failed)
		return DTN_ENOMEM;
	s->buf = all->data ? all->data : "";
	s->len = all->len;
	return 0;
}

static void scanner_free(scanner *s)
{
	vars_free(&s->globals);
	for (size_t k = 0; k < s->nstages; k++) {
		dtn__free(s->stages[k].name);
		vars_free(&s->stages[k].env);
		vars_free(&s->stages[k].args);
	}
	dtn__free(s->stages);
}

int dtn__df_scan(dtn__df_source **out, size_t *count, const char *prelude, const char *text,
		 size_t len, dtn_error *err)
{
	scanner s = {.esc = '\\', .err = err};
	dtn__buf all = DTN__BUF_INIT;
	int rc;

	*out = NULL;
	*count = 0;
	if ((rc = join_input(&s, &all, prelude, text, len)) == 0)
		rc = scan_lines(&s);
	if (rc == DTN_ENOMEM)
		dtn__error_set(err, rc, "out of memory");
	if (rc < 0) {
		dtn__df_sources_free(s.src, s.nsrc);
	} else {
		*out = s.src;
		*count = s.nsrc;
	}
	scanner_free(&s);
	dtn__buf_free(&all);
	return rc < 0 ? rc : 0;
}

void dtn__df_sources_free(dtn__df_source *sources, size_t count)
{
	for (size_t k = 0; sources && k < count; k++)
		dtn__free(sources[k].text);
	dtn__free(sources);
}
