/*
 * dfscan.h - finding the local files a Dockerfile's COPY and ADD instructions need. Internal.
 *
 * Two steps, kept apart so the first never touches the file system:
 *
 *   dtn__df_scan     reads Dockerfile text the way the BuildKit Dockerfile frontend does
 *                    (parser directives, line continuations, heredocs, flags, JSON and shell
 *                    forms, ENV/ARG/FROM variable scoping) and lists every COPY/ADD source
 *                    that names a file of the build context;
 *   dtn__df_resolve  finds what one such source names inside the context directory (literal
 *                    paths and wildcards), refusing paths and links that leave the context.
 */
#ifndef DTN_IMAGEDSL_DFSCAN_H
#define DTN_IMAGEDSL_DFSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

/* One COPY/ADD source of the scanned text. */
typedef struct dtn__df_source {
	char *text;  /* the source after quote removal and variable expansion */
	int line;    /* 1-based physical line where the instruction starts, in the scanned text */
	int column;  /* 1-based column of the source word when it is on that line, else of the
	              * instruction */
	bool is_add; /* from ADD rather than COPY */
} dtn__df_source;

/*
 * Scans `text` (len bytes, not necessarily NUL-terminated) for COPY/ADD sources.
 *
 * `prelude` (NUL-terminated, may be NULL) is Dockerfile text that comes before `text` in the
 * same file (earlier instructions of the same image). It is read only for its parser
 * directives and its ENV/ARG/FROM state; it contributes no sources and no errors. When it does
 * not end with a newline, one is assumed between the two. Positions are relative to `text`.
 *
 * Arguments are read as Docker reads them: a JSON array of strings (exec form), else words
 * split at blanks, each then read for quotes, escapes and variables (so a quoted blank does not
 * join two words); JSON strings are read for quotes, escapes and variables too. A source in
 * exec form has the column of its array.
 *
 * Sources are listed in the order they appear. Not listed: sources of `COPY --from` (either
 * spelling), of ONBUILD instructions, heredoc sources (`<<EOF`) and ADD sources that are URLs.
 * Variables (`$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?w}`, `${V?w}`) take
 * the values the Dockerfile gives them; a variable the Dockerfile does not define (one that
 * would come from the base image or a build argument) is an error, since the sources must be
 * known when dtn runs.
 *
 * On success returns 0 and *out is an array of *count sources owned by the caller (free it
 * with dtn__df_sources_free); *out may be NULL when *count is 0. On failure *out is NULL,
 * *count 0, err (may be NULL) gets the message, line and column (err->file is not touched),
 * and the code is returned:
 *   DTN_EINVAL      an undefined variable in a source, fewer than two arguments, a JSON array
 *                   with non-strings, a URL given to COPY, a `${V?}` on an unset variable;
 *   DTN_ESYNTAX     malformed text: an unterminated quote, a bad `${...}`, a bad parser
 *                   directive;
 *   DTN_EUNSUPPORTED  `${V#p}`, `${V%p}` and `${V/p/r}` substitutions;
 *   DTN_ENOMEM.
 */
int dtn__df_scan(dtn__df_source **out, size_t *count, const char *prelude, const char *text,
		 size_t len, dtn_error *err);

/* Frees what dtn__df_scan returned. Accepts NULL. */
void dtn__df_sources_free(dtn__df_source *sources, size_t count);

/* One file or directory a source names. */
typedef struct dtn__df_match {
	char *rel;   /* path relative to the context root, normalised ("a.txt" for "./a.txt",
	              * "." for the root itself); a trailing '/' written in the source is kept */
	bool is_dir; /* a directory (or a link to one inside the context): archived whole */
} dtn__df_match;

/*
 * Finds what `source` (a dtn__df_source text) names inside the context directory `root`
 * (absolute, existing), as `docker build` does:
 *   - the source is relative to root; a leading '/' is too, unless `strict` is set, in which
 *     case an absolute source is refused;
 *   - a component with an unescaped `*`, `?` or `[` is a wildcard with the rules of Go's
 *     filepath.Match (`*` also matches a leading dot; `[^...]` and `[!...]` negate; `\`
 *     escapes); other components are literal names, backslashes included. A wildcard never
 *     matches a file that merely has the pattern as its name: `br[a]ck.txt` finds
 *     "brack.txt", not "br[a]ck.txt";
 *   - links are followed for the check only: the real path must stay inside the real path of
 *     root.
 * On success returns 0 and *out is an array of *count >= 1 matches, sorted byte-wise by rel,
 * owned by the caller (dtn__df_matches_free). On failure *out is NULL, *count 0, err (may be
 * NULL) gets the message naming the source (positions untouched) and the code is returned:
 *   DTN_ENOTFOUND   the path does not exist, a wildcard matches nothing, a dangling link, a
 *                   trailing '/' on something that is not a directory;
 *   DTN_EOUTSIDE    `..` leaves root, a link leads outside it, or (strict) an absolute source;
 *   DTN_EINVAL      a malformed wildcard, a socket, FIFO or device, a link loop;
 *   DTN_EIO         the file system refused to answer (permissions);
 *   DTN_ENOMEM.
 */
int dtn__df_resolve(dtn__df_match **out, size_t *count, const char *root, const char *source,
		    bool strict, dtn_error *err);

/* Frees what dtn__df_resolve returned. Accepts NULL. */
void dtn__df_matches_free(dtn__df_match *m, size_t count);

/*
 * Go filepath.Match: `*` and `?` never match a '/'. Returns 1 on a match, 0 on none,
 * DTN_EINVAL when the pattern is malformed (checked whether or not the name matches).
 */
int dtn__df_glob_match(const char *pattern, const char *name);

#endif
