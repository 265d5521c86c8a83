/*
 * dfresolve.c - finds what one COPY/ADD source names inside the build context.
 *
 * A source is a path relative to the context root, component by component: a literal name,
 * or a wildcard matched against the entries of the directories found so far (the rules of Go's
 * filepath.Match, which `docker build` uses). Every directory the walk descends into and every
 * match is checked by its real path, so a link can never lead the build outside the context.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dfscan.h"

/* ---- wildcards -------------------------------------------------------------------------- */

/* One character of s (UTF-8, an invalid byte counting as one); *r gets it, or -1 when the
 * byte is invalid. Returns its length. */
static size_t rune_at(const char *s, size_t n, long *r)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len, i;
	long cp;

	*r = -1;
	if (u[0] < 0x80) {
		*r = u[0];
		return 1;
	}
	if (u[0] >= 0xC2 && u[0] <= 0xDF)
		len = 2, cp = u[0] & 0x1F;
	else if (u[0] >= 0xE0 && u[0] <= 0xEF)
		len = 3, cp = u[0] & 0x0F;
	else if (u[0] >= 0xF0 && u[0] <= 0xF4)
		len = 4, cp = u[0] & 0x07;
	else
		return 1;
	if (n < len)
		return 1;
	for (i = 1; i < len; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 1;
		cp = (cp << 6) | (u[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 1;
	*r = cp;
	return len;
}

/* One end of a range in a character class: a character or `\` and one. */
static int class_char(const char **p, const char *end, long *r)
{
	if (*p >= end || **p == '-' || **p == ']')
		return DTN_EINVAL;
	if (**p == '\\' && ++*p >= end)
		return DTN_EINVAL;
	*p += rune_at(*p, (size_t)(end - *p), r);
	if (*r < 0 || *p >= end)
		return DTN_EINVAL; /* an invalid byte, or the class never closes */
	return 0;
}

/* Reads the class at *p (after '[') up to its ']' and says whether it holds r. */
static int class_match(const char **p, const char *end, long r, bool *in)
{
	bool negate = false, hit = false;
	int ranges = 0, rc;

	if (*p < end && (**p == '^' || **p == '!')) {
		negate = true;
		(*p)++;
	}
	for (;;) {
		long lo, hi;

		if (*p < end && **p == ']' && ranges > 0) {
			(*p)++;
			break;
		}
		if ((rc = class_char(p, end, &lo)) < 0)
			return rc;
		hi = lo;
		if (**p == '-') {
			(*p)++;
			if ((rc = class_char(p, end, &hi)) < 0)
				return rc;
		}
		if (lo <= r && r <= hi)
			hit = true;
		ranges++;
	}
	*in = hit != negate;
	return 0;
}

/*
 * Matches the pattern element at *p (not '*') against the start of the non-empty name *s.
 * Returns 1 and advances both on a match, 0 when it does not match, DTN_EINVAL for a
 * malformed element. As in Go, `?` and classes take one character, other elements one byte.
 */
static int match_one(const char **p, const char *pe, const char **s, const char *se)
{
	long r;
	size_t w = rune_at(*s, (size_t)(se - *s), &r);
	bool in;
	int rc;

	if (**p == '?') {
		if (**s == '/')
			return 0;
		(*p)++;
		*s += w;
		return 1;
	}
	if (**p == '[') {
		(*p)++;
		if ((rc = class_match(p, pe, r < 0 ? 0xFFFD : r, &in)) < 0)
			return rc;
		if (in)
			*s += w;
		return in;
	}
	if (**p == '\\' && ++*p >= pe)
		return DTN_EINVAL;
	if (**p != **s)
		return 0;
	(*p)++;
	(*s)++;
	return 1;
}

/* Checks the whole pattern, as Go does even when a name fails to match early. */
static int glob_valid(const char *p, const char *pe)
{
	while (p < pe) {
		const char *q = p;
		bool in;
		long r;
		int rc;

		if (*p == '*' || *p == '?') {
			p++;
		} else if (*p == '[') {
			q = p + 1;
			if ((rc = class_match(&q, pe, 0, &in)) < 0)
				return rc;
			p = q;
		} else {
			if (*p == '\\' && ++p >= pe)
				return DTN_EINVAL;
			p += rune_at(p, (size_t)(pe - p), &r);
		}
	}
	return 0;
}

int dtn__df_glob_match(const char *pattern, const char *name)
{
	const char *p = pattern, *pe = pattern + strlen(pattern);
	const char *s = name, *se = name + strlen(name);
	const char *star_p = NULL, *star_s = NULL;
	long r;
	int rc;

	if ((rc = glob_valid(p, pe)) < 0)
		return rc;
	while (s < se) {
		const char *p2 = p, *s2 = s;

		if (p < pe && *p == '*') {
			while (p < pe && *p == '*')
				p++;
			star_p = p;
			star_s = s;
			continue;
		}
		if (p < pe && match_one(&p2, pe, &s2, se) == 1) {
			p = p2;
			s = s2;
			continue;
		}
		if (!star_p || *star_s == '/')
			return 0; /* nothing to retry, or '*' would have to cross a '/' */
		/* let the last '*' swallow one more character and try again */
		star_s += rune_at(star_s, (size_t)(se - star_s), &r);
		s = star_s;
		p = star_p;
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

/* Whether a component has an unescaped `*`, `?` or `[` (BuildKit's containsWildcards). */
static bool has_wildcard(const char *c)
{
	for (; *c; c++) {
		if (*c == '\\' && c[1])
			c++;
		else if (*c == '*' || *c == '?' || *c == '[')
			return true;
	}
	return false;
}

/* ---- the walk --------------------------------------------------------------------------- */

typedef struct walk {
	const char *root;
	char root_real[PATH_MAX];
	const char *source; /* as given, for messages */
	bool strict;
	bool wild; /* some component so far was a wildcard */
	dtn_error *err;
} walk;

static int outside(walk *w, const char *rel)
{
	if (w->strict && w->wild)
		return dtn__error_set(w->err, DTN_EOUTSIDE,
				      "forbidden path outside the build context: %s "
				      "(matched by %s)",
				      rel, w->source);
	if (w->strict)
		return dtn__error_set(w->err, DTN_EOUTSIDE,
				      "forbidden path outside the build context: %s", w->source);
	if (w->wild)
		return dtn__error_set(w->err, DTN_EOUTSIDE,
				      "COPY source \"%s\" matches \"%s\", which leads outside the "
				      "build context through a symbolic link",
				      w->source, rel);
	return dtn__error_set(w->err, DTN_EOUTSIDE,
			      "COPY source \"%s\" leads outside the build context through a "
			      "symbolic link",
			      w->source);
}

static char *full_path(const walk *w, const char *rel)
{
	return rel[0] ? dtn__aprintf("%s/%s", w->root, rel) : dtn__strdup(w->root);
}

static bool inside(const walk *w, const char *real)
{
	size_t n = strlen(w->root_real);

	if (strcmp(w->root_real, "/") == 0)
		return true;
	return strncmp(real, w->root_real, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/*
 * Resolves root/rel through every link: 0 with its real path in real, DTN_EOUTSIDE (no message
 * yet) when it lies outside the context, DTN_ENOMEM, or the errno of realpath as a positive
 * number.
 */
static int real_inside(walk *w, const char *rel, char real[PATH_MAX])
{
	char *full = full_path(w, rel);
	int rc = 0;

	if (!full)
		return DTN_ENOMEM;
	if (!realpath(full, real))
		rc = errno ? errno : EIO;
	else if (!inside(w, real))
		rc = DTN_EOUTSIDE;
	dtn__free(full);
	return rc;
}

static int not_found(walk *w)
{
	if (w->wild)
		return dtn__error_set(w->err, DTN_ENOTFOUND, "COPY source \"%s\" matches no files",
				      w->source);
	return dtn__error_set(w->err, DTN_ENOTFOUND, "COPY source \"%s\" does not exist",
			      w->source);
}

static int push_join(dtn__strv *v, const char *dir, const char *name)
{
	return dtn__strv_push_owned(v, dir[0] ? dtn__aprintf("%s/%s", dir, name)
					      : dtn__strdup(name));
}

/* Adds the entries of directory `rel` that match the pattern. */
static int match_dir(walk *w, const char *rel, const char *pattern, dtn__strv *next)
{
	char *full = full_path(w, rel);
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (!full)
		return DTN_ENOMEM;
	if (!(d = opendir(full))) {
		dtn__free(full);
		return 0; /* not a directory: nothing in it matches */
	}
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (dtn__df_glob_match(pattern, e->d_name) == 1)
			rc = push_join(next, rel, e->d_name);
	}
	closedir(d);
	dtn__free(full);
	return rc;
}

/* Adds rel/name when it exists (without following a final link). */
static int match_literal(walk *w, const char *rel, const char *name, dtn__strv *next)
{
	struct stat st;
	char *path, *full;
	int rc = 0;

	if (!(path = rel[0] ? dtn__aprintf("%s/%s", rel, name) : dtn__strdup(name)))
		return DTN_ENOMEM;
	if (!(full = full_path(w, path))) {
		dtn__free(path);
		return DTN_ENOMEM;
	}
	if (lstat(full, &st) == 0) {
		rc = dtn__strv_push_owned(next, path); /* takes path, even when it fails */
	} else {
		dtn__free(path);
		if (!w->wild)
			rc = not_found(w);
	}
	dtn__free(full);
	return rc;
}

/* Extends every candidate by one component; a candidate must be a directory inside root. */
static int step(walk *w, dtn__strv *cands, const char *comp, dtn__strv *next)
{
	bool wild = has_wildcard(comp);
	char real[PATH_MAX];
	int rc = 0;

	for (size_t k = 0; k < cands->len && rc == 0; k++) {
		const char *rel = cands->items[k];

		if (rel[0] && (rc = real_inside(w, rel, real)) != 0) {
			/* a wildcard match that is no directory holds nothing; one that leads
			 * outside is not looked into (docker build would not find anything
			 * there either, it never leaves the context) */
			if (rc == DTN_ENOMEM)
				return rc;
			if (!w->wild)
				return rc == DTN_EOUTSIDE ? outside(w, rel) : not_found(w);
			rc = 0;
			continue;
		}
		rc = wild ? match_dir(w, rel, comp, next) : match_literal(w, rel, comp, next);
	}
	w->wild = w->wild || wild;
	return rc;
}

/* ---- checking the matches --------------------------------------------------------------- */

static int check_type(walk *w, const char *rel, mode_t mode)
{
	const char *what = S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" : "a device";

	if (S_ISDIR(mode) || S_ISREG(mode))
		return 0;
	if (w->wild)
		return dtn__error_set(w->err, DTN_EINVAL,
				      "COPY source \"%s\" matches \"%s\", which is %s, not a file "
				      "or directory",
				      w->source, rel, what);
	return dtn__error_set(w->err, DTN_EINVAL,
			      "COPY source \"%s\" is %s, not a file or directory", w->source, what);
}

/* The checks of one match: inside the context through its links, a file or a directory. */
static int check_match(walk *w, const char *rel, bool trailing, dtn__df_match *m)
{
	char real[PATH_MAX];
	struct stat st;
	int rc = real_inside(w, rel, real);

	if (rc == DTN_EOUTSIDE)
		return outside(w, rel);
	if (rc == ENOENT || rc == ENOTDIR)
		return dtn__error_set(w->err, DTN_ENOTFOUND,
				      "COPY source \"%s\" is a symbolic link whose target does not "
				      "exist",
				      w->source);
	if (rc == ELOOP)
		return dtn__error_set(w->err, DTN_EINVAL,
				      "COPY source \"%s\" is a loop of symbolic links", w->source);
	if (rc > 0 || (rc == 0 && stat(real, &st) != 0))
		return dtn__error_set(w->err, DTN_EIO, "COPY source \"%s\" cannot be read: %s",
				      w->source, strerror(rc > 0 ? rc : errno));
	if (rc < 0 || (rc = check_type(w, rel, st.st_mode)) < 0)
		return rc;
	if (trailing && !S_ISDIR(st.st_mode))
		return w->wild ? 1
			       : dtn__error_set(w->err, DTN_ENOTFOUND,
						"COPY source \"%s\" is not a directory", w->source);
	m->is_dir = S_ISDIR(st.st_mode);
	m->rel = trailing ? dtn__aprintf("%s/", rel) : dtn__strdup(rel);
	return m->rel ? 0 : DTN_ENOMEM;
}

/* Byte order of the paths; a trailing '/' (on every match or on none) takes no part, so that
 * "a/" still comes before "a-b/" as "a" comes before "a-b". */
static int by_rel(const void *a, const void *b)
{
	const char *x = ((const dtn__df_match *)a)->rel, *y = ((const dtn__df_match *)b)->rel;
	size_t nx = strlen(x), ny = strlen(y);
	int c;

	nx -= nx > 1 && x[nx - 1] == '/';
	ny -= ny > 1 && y[ny - 1] == '/';
	c = memcmp(x, y, nx < ny ? nx : ny);
	return c ? c : (nx > ny) - (nx < ny);
}

/* Turns the candidates into checked, sorted matches. */
static int collect(walk *w, dtn__strv *cands, bool trailing, dtn__df_match **out,
		   size_t *count)
{
	dtn__df_match *m = dtn__calloc(cands->len ? cands->len : 1, sizeof(*m));
	size_t n = 0;
	int rc = 0;

	if (!m)
		return DTN_ENOMEM;
	for (size_t k = 0; k < cands->len && rc >= 0; k++) {
		rc = check_match(w, cands->items[k], trailing, &m[n]);
		if (rc == 0)
			n++;
	}
	if (rc >= 0 && n == 0)
		rc = not_found(w);
	if (rc < 0) {
		dtn__df_matches_free(m, n);
		return rc;
	}
	qsort(m, n, sizeof(*m), by_rel);
	*out = m;
	*count = n;
	return 0;
}

/* ---- entry points ----------------------------------------------------------------------- */

/* The source as a normalised context-relative path, or an error when it leaves the context. */
/* The source names something outside the context by its spelling alone. */
static int spelled_outside(walk *w, bool absolute)
{
	if (w->strict)
		dtn__error_set(w->err, DTN_EOUTSIDE, "forbidden path outside the build context: %s",
			       w->source);
	else
		dtn__error_set(w->err, DTN_EOUTSIDE, "COPY source \"%s\" is %s the build context",
			       w->source, absolute ? "an absolute path outside" : "outside");
	return DTN_EOUTSIDE;
}

static int relative(walk *w, char **rel, bool *trailing)
{
	const char *s = w->source;
	size_t n;

	if (s[0] == '/' && w->strict)
		return spelled_outside(w, true);
	n = strlen(s);
	/* one spare byte, so that an empty source can become "." */
	if (!(*rel = dtn__malloc(n + 2)))
		return DTN_ENOMEM;
	memcpy(*rel, s, n + 1);
	*trailing = n > 0 && s[n - 1] == '/';
	dtn__path_normalize(*rel);
	if (!(*rel)[0])
		memcpy(*rel, ".", 2);
	if ((*rel)[0] == '/') {
		/* docker build reads an absolute source inside the context, where "/.." is
		 * still the root */
		n = strspn(*rel, "/");
		memmove(*rel, *rel + n, strlen(*rel + n) + 1);
		if (!(*rel)[0])
			memcpy(*rel, ".", 2);
	}
	if (strcmp(*rel, "..") == 0 || strncmp(*rel, "../", 3) == 0)
		return spelled_outside(w, false);
	n = strlen(*rel);
	if (n > 1 && (*rel)[n - 1] == '/')
		(*rel)[n - 1] = '\0';
	return 0;
}

/* Checks every wildcard component before the walk, so that a malformed pattern is an error
 * whatever the tree holds. */
static int check_patterns(walk *w, char *rel)
{
	char *comp, *slash;
	int rc = 0;

	for (comp = rel; comp && rc == 0; comp = slash ? slash + 1 : NULL) {
		if ((slash = strchr(comp, '/')))
			*slash = '\0';
		if (has_wildcard(comp) && dtn__df_glob_match(comp, "") < 0)
			rc = dtn__error_set(w->err, DTN_EINVAL,
					    "COPY source \"%s\" is not a valid pattern", w->source);
		if (slash)
			*slash = '/';
	}
	return rc;
}

/* Walks the components of rel from the root. */
static int walk_components(walk *w, char *rel, dtn__strv *cands)
{
	dtn__strv next = {0};
	char *comp, *slash;
	int rc;

	if ((rc = check_patterns(w, rel)) < 0 || (rc = dtn__strv_push(cands, "")) < 0)
		return rc;
	for (comp = rel; comp; comp = slash ? slash + 1 : NULL) {
		if ((slash = strchr(comp, '/')))
			*slash = '\0';
		rc = step(w, cands, comp, &next);
		dtn__strv_free(cands);
		*cands = next;
		memset(&next, 0, sizeof(next));
		if (rc < 0)
			return rc;
	}
	return 0;
}

int dtn__df_resolve(dtn__df_match **out, size_t *count, const char *root, const char *source,
		    bool strict, dtn_error *err)
{
	walk w = {.root = root, .source = source, .strict = strict, .err = err};
	dtn__strv cands = {0};
	bool trailing = false;
	char *rel = NULL;
	int rc;

	*out = NULL;
	*count = 0;
	if (!realpath(root, w.root_real)) {
		rc = dtn__error_set(err, DTN_ENOTFOUND, "build context %s cannot be opened: %s",
				    root, strerror(errno));
		goto out;
	}
	if ((rc = relative(&w, &rel, &trailing)) < 0)
		goto out;
	if (strcmp(rel, ".") == 0)
		rc = dtn__strv_push(&cands, "");
	else
		rc = walk_components(&w, rel, &cands);
	if (rc == 0)
		rc = collect(&w, &cands, trailing && strcmp(rel, ".") != 0, out, count);
	if (rc == 0 && *count == 1 && !(*out)[0].rel[0]) {
		dtn__free((*out)[0].rel); /* the root itself */
		if (!((*out)[0].rel = dtn__strdup(".")))
			rc = DTN_ENOMEM;
	}
out:
	if (rc == DTN_ENOMEM)
		dtn__error_set(err, rc, "out of memory");
	if (rc < 0 && *out) {
		dtn__df_matches_free(*out, *count);
		*out = NULL;
		*count = 0;
	}
	dtn__strv_free(&cands);
	dtn__free(rel);
	return rc;
}

void dtn__df_matches_free(dtn__df_match *m, size_t count)
{
	for (size_t k = 0; m && k < count; k++)
		dtn__free(m[k].rel);
	dtn__free(m);
}
