/*
 * spec_node.c - reading values out of the YAML document for the spec loader: strings,
 * booleans, numbers, string lists, checked mappings, and the errors about them.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "spec_internal.h"

/* The longest name the suggestion search looks at; longer ones get no suggestion. */
#define SUGGEST_MAX 64

int dtn__spec_fail(dtn__spec_loader *L, const yaml_node_t *node, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dtn__error_setv(L->err, code, fmt, ap);
	va_end(ap);
	if (node)
		dtn__error_at(L->err, L->file, (int)node->start_mark.line + 1,
			      (int)node->start_mark.column + 1);
	else
		dtn__error_at(L->err, L->file, 0, 0);
	return code;
}

yaml_node_t *dtn__spec_node(const dtn__spec_loader *L, int id)
{
	return yaml_document_get_node(L->doc, id);
}

int dtn__spec_visit(dtn__spec_loader *L, const yaml_node_t *node)
{
	if (++L->visits <= DTN__SPEC_MAX_VISITS)
		return 0;
	return dtn__spec_fail(L, node, DTN_EINVAL,
			      "the spec has more than %zu values (counting every use of an alias)",
			      DTN__SPEC_MAX_VISITS);
}

bool dtn__spec_is_null(const yaml_node_t *node)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	const char *s;

	if (!node || node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)node->data.scalar.value;
	for (size_t i = 0; i < DTN__ARRAY_LEN(nulls); i++)
		if (strcmp(s, nulls[i]) == 0)
			return true;
	return false;
}

const char *dtn__spec_kind(const yaml_node_t *node)
{
	if (!node || dtn__spec_is_null(node))
		return "null";
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a string";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

const char *dtn__spec_text(const yaml_node_t *node)
{
	if (!node || node->type != YAML_SCALAR_NODE)
		return "";
	return (const char *)node->data.scalar.value;
}

const char *dtn__spec_show(const char *s, char *buf, size_t size)
{
	size_t n = 0, i;

	/* Room is kept for an escape of four bytes, "..." and the NUL. */
	for (i = 0; s[i] && n + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			n += (size_t)snprintf(buf + n, size - n, "\\n");
		else if (c == '\t')
			n += (size_t)snprintf(buf + n, size - n, "\\t");
		else if (c == '"' || c == '\\')
			n += (size_t)snprintf(buf + n, size - n, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	if (s[i])
		n += (size_t)snprintf(buf + n, size - n, "...");
	buf[n] = '\0';
	return buf;
}

int dtn__spec_string(dtn__spec_loader *L, yaml_node_t *node, const char *subject,
		     const char **out)
{
	*out = NULL;
	if (!node || node->type != YAML_SCALAR_NODE || dtn__spec_is_null(node))
		return dtn__spec_fail(L, node, DTN_EINVAL, "%s: expected a string, got %s",
				      subject, dtn__spec_kind(node));
	/* A double-quoted "\0" would silently cut the string short in C. */
	if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
		return dtn__spec_fail(L, node, DTN_EINVAL,
				      "%s: a string may not contain a NUL character", subject);
	*out = (const char *)node->data.scalar.value;
	return 0;
}

int dtn__spec_bool(dtn__spec_loader *L, yaml_node_t *node, const char *subject, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	const char *s = dtn__spec_text(node);
	char shown[80];

	/* A quoted "true" is a string in YAML, so only plain scalars count as booleans. */
	if (node && node->type == YAML_SCALAR_NODE &&
	    node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		for (size_t i = 0; i < DTN__ARRAY_LEN(yes); i++) {
			if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
				*out = strcasecmp(s, yes[i]) == 0;
				return 0;
			}
		}
	}
	if (node && node->type == YAML_SCALAR_NODE && !dtn__spec_is_null(node))
		return dtn__spec_fail(L, node, DTN_EINVAL, "%s: expected true or false, got \"%s\"",
				      subject, dtn__spec_show(s, shown, sizeof(shown)));
	return dtn__spec_fail(L, node, DTN_EINVAL, "%s: expected true or false, got %s", subject,
			      dtn__spec_kind(node));
}

int dtn__spec_uint(dtn__spec_loader *L, yaml_node_t *node, const char *subject, int *out)
{
	const char *s = dtn__spec_text(node);
	long long v = 0;
	size_t i;
	char shown[80];

	if (!node || node->type != YAML_SCALAR_NODE || dtn__spec_is_null(node))
		return dtn__spec_fail(L, node, DTN_EINVAL,
				      "%s: expected a non-negative integer, got %s", subject,
				      dtn__spec_kind(node));
	/* Digits past INT_MAX only matter as "too large", so the value stops growing there. */
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++)
		v = v > INT_MAX ? v : v * 10 + (s[i] - '0');
	if (i == 0 || s[i] || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return dtn__spec_fail(L, node, DTN_EINVAL,
				      "%s: expected a non-negative integer, got \"%s\"", subject,
				      dtn__spec_show(s, shown, sizeof(shown)));
	if (v > INT_MAX)
		return dtn__spec_fail(L, node, DTN_EINVAL, "%s: %s is too large", subject,
				      dtn__spec_show(s, shown, sizeof(shown)));
	*out = (int)v;
	return 0;
}

int dtn__spec_list_push(dtn__spec_list *l, const char *s, yaml_node_t *node)
{
	if (l->len + 2 > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		const char **items = dtn__realloc(l->items, cap * sizeof(*items));
		yaml_node_t **nodes;

		if (!items)
			return DTN_ENOMEM;
		l->items = items;
		if (!(nodes = dtn__realloc(l->nodes, cap * sizeof(*nodes))))
			return DTN_ENOMEM;
		l->nodes = nodes;
		l->cap = cap;
	}
	l->nodes[l->len] = node;
	l->items[l->len++] = s;
	l->items[l->len] = NULL;
	return 0;
}

void dtn__spec_list_free(dtn__spec_list *l)
{
	dtn__free(l->items);
	dtn__free(l->nodes);
	l->items = NULL;
	l->nodes = NULL;
	l->len = l->cap = 0;
}

static int push_string(dtn__spec_loader *L, yaml_node_t *node, const char *subject,
		       dtn__spec_list *out)
{
	const char *s;
	int rc;

	if ((rc = dtn__spec_string(L, node, subject, &s)) < 0)
		return rc;
	if (dtn__spec_list_push(out, s, node) < 0)
		return dtn__spec_fail(L, NULL, DTN_ENOMEM, "out of memory");
	return 0;
}

static int collect(dtn__spec_loader *L, yaml_node_t *seq, const char *subject, int flags,
		   int depth, dtn__spec_list *out)
{
	int rc;

	if (depth > DTN__SPEC_MAX_DEPTH)
		return dtn__spec_fail(L, seq, DTN_EINVAL, "%s: lists nested more than %d deep",
				      subject, DTN__SPEC_MAX_DEPTH);
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = dtn__spec_node(L, *it);

		if ((rc = dtn__spec_visit(L, item)) < 0)
			return rc;
		if (item && item->type == YAML_SEQUENCE_NODE && (flags & DTN__SPEC_FLATTEN))
			rc = collect(L, item, subject, flags, depth + 1, out);
		else if (item && item->type == YAML_SCALAR_NODE)
			rc = push_string(L, item, subject, out);
		else
			rc = dtn__spec_fail(L, item, DTN_EINVAL,
					    "%s: expected a list of strings, got %s in the list",
					    subject, dtn__spec_kind(item));
		if (rc < 0)
			return rc;
	}
	return 0;
}

int dtn__spec_strings(dtn__spec_loader *L, yaml_node_t *node, const char *subject, int flags,
		      dtn__spec_list *out)
{
	if (node && node->type == YAML_SEQUENCE_NODE)
		return collect(L, node, subject, flags, 1, out);
	if (flags & DTN__SPEC_LIST)
		return dtn__spec_fail(L, node, DTN_EINVAL, "%s: must be a list of strings, got %s",
				      subject, dtn__spec_kind(node));
	if (node && node->type == YAML_SCALAR_NODE && !dtn__spec_is_null(node))
		return push_string(L, node, subject, out);
	return dtn__spec_fail(L, node, DTN_EINVAL, "%s: expected a string or a list, got %s",
			      subject, dtn__spec_kind(node));
}

/* ---- suggestions ---- */

/* Optimal string alignment distance (edits, with swaps of neighbours), ignoring ASCII case. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t rows[3][SUGGEST_MAX + 1];
	size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		int ca = tolower((unsigned char)a[i - 1]);

		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			int cb = tolower((unsigned char)b[j - 1]);
			size_t best = prev[j - 1] + (ca != cb);

			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		size_t *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

const char *dtn__spec_suggest(const char *given, const char *const *candidates)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	if (strlen(given) > SUGGEST_MAX)
		return NULL;
	for (size_t i = 0; candidates[i]; i++) {
		size_t len = strlen(candidates[i]), d, limit;

		if (len > SUGGEST_MAX)
			continue;
		d = distance(given, candidates[i]);
		/* Close means about one edit per three letters of the known name. */
		limit = len / 3 > 1 ? len / 3 : 1;
		if (d <= limit && d < best_d) {
			best = candidates[i];
			best_d = d;
		}
	}
	return best;
}

int dtn__spec_unknown(dtn__spec_loader *L, yaml_node_t *at, const char *what,
		      const char *given, const char *where, const char *const *candidates)
{
	const char *hint = dtn__spec_suggest(given, candidates);
	char shown[96], in[128] = "";

	if (where)
		snprintf(in, sizeof(in), " in %s", where);
	dtn__spec_show(given, shown, sizeof(shown));
	if (hint)
		return dtn__spec_fail(L, at, DTN_EINVAL,
				      "unknown %s \"%s\"%s (did you mean \"%s\"?)", what, shown, in,
				      hint);
	return dtn__spec_fail(L, at, DTN_EINVAL, "unknown %s \"%s\"%s", what, shown, in);
}

/* ---- checked mappings ---- */

static int find_key(const dtn__spec_key *keys, size_t nkeys, const char *s)
{
	for (size_t i = 0; i < nkeys; i++) {
		if (!keys[i].name)
			continue;
		if (strcmp(keys[i].name, s) == 0 ||
		    (keys[i].alias && strcmp(keys[i].alias, s) == 0))
			return (int)i;
	}
	return -1;
}

static int unknown_key(dtn__spec_loader *L, yaml_node_t *at, const char *given,
		       const char *where, const dtn__spec_key *keys, size_t nkeys)
{
	const char *cands[2 * 16 + 1];
	size_t n = 0;

	for (size_t i = 0; i < nkeys && n + 2 < DTN__ARRAY_LEN(cands); i++) {
		if (!keys[i].name)
			continue;
		cands[n++] = keys[i].name;
		if (keys[i].alias)
			cands[n++] = keys[i].alias;
	}
	cands[n] = NULL;
	return dtn__spec_unknown(L, at, "key", given, where, cands);
}

int dtn__spec_keys(dtn__spec_loader *L, yaml_node_t *map, const char *where,
		   const dtn__spec_key *keys, size_t nkeys, yaml_node_t **vals)
{
	char in[128] = "", shown[96];
	int rc;

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	if (where)
		snprintf(in, sizeof(in), " in %s", where);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = dtn__spec_node(L, p->key);
		int idx;

		if ((rc = dtn__spec_visit(L, k)) < 0)
			return rc;
		if (!k || k->type != YAML_SCALAR_NODE)
			return dtn__spec_fail(L, k, DTN_EINVAL, "a key%s must be a string, got %s",
					      in, dtn__spec_kind(k));
		if ((idx = find_key(keys, nkeys, dtn__spec_text(k))) < 0)
			return unknown_key(L, k, dtn__spec_text(k), where, keys, nkeys);
		if (vals[idx])
			return dtn__spec_fail(L, k, DTN_EINVAL, "duplicate key \"%s\"%s",
					      dtn__spec_show(dtn__spec_text(k), shown,
							     sizeof(shown)),
					      in);
		vals[idx] = dtn__spec_node(L, p->value);
	}
	return 0;
}

int dtn__spec_missing(dtn__spec_loader *L, yaml_node_t *map, const char *where,
		      const char *key)
{
	if (where)
		return dtn__spec_fail(L, map, DTN_EINVAL, "missing key \"%s\" in %s", key, where);
	return dtn__spec_fail(L, map, DTN_EINVAL, "missing key \"%s\"", key);
}

/* ---- errors of the DSL ---- */

/*
 * A file named in a DSL error (a Dockerfile, a pyproject.toml) is spelled as the spec wrote it,
 * relative to the spec's directory. Joining the two names it from the current directory, the
 * way the spec itself is named, so the position can be opened as it stands.
 */
static void name_from_cwd(dtn__spec_loader *L)
{
	char joined[sizeof(L->err->file)];
	int n;

	if (L->err->file[0] == '/' || L->err->file[0] == '~' || !L->dir ||
	    strcmp(L->dir, ".") == 0)
		return;
	n = snprintf(joined, sizeof(joined), "%s/%s", L->dir, L->err->file);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return;
	dtn__path_normalize(joined);
	snprintf(L->err->file, sizeof(L->err->file), "%s", joined);
}

int dtn__spec_check(dtn__spec_loader *L, const yaml_node_t *at)
{
	int status = dtn_image_status(L->img);
	const dtn_error *e;

	if (status >= 0)
		return 0;
	e = dtn_image_error(L->img);
	*L->err = *e;
	if (L->err->code >= 0)
		L->err->code = status;
	/* An error inside a Dockerfile (or another file) already says where it is. */
	if (e->file[0] && e->line > 0) {
		name_from_cwd(L);
		return L->err->code;
	}
	if (at)
		dtn__error_at(L->err, L->file, (int)at->start_mark.line + 1,
			      (int)at->start_mark.column + 1);
	else
		dtn__error_at(L->err, L->file, 0, 0);
	return L->err->code;
}
