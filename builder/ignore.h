/*
 * ignore.h - `.dockerignore` rules, read and matched the way `docker build` does. Internal.
 *
 * Reading a .dockerignore text
 *
 *   The text is split at '\n'; one '\r' at the end of a line is dropped, so CRLF files read
 *   like LF files. A UTF-8 byte order mark at the start of the first line is dropped. A line
 *   whose very first byte is '#' is a comment (" #x" is not: it is the pattern "#x"). Then
 *   surrounding white space (Unicode white space, as Go's strings.TrimSpace knows it) is
 *   trimmed and empty lines are skipped. A leading '!' makes the line an exception; the rest
 *   is trimmed again. What remains is cleaned like a path (`a//b` -> `a/b`, `./a` -> `a`,
 *   `a/../b` -> `b`, `a/` -> `a`, `..` kept when it climbs above the start), and one leading
 *   '/' is dropped unless the pattern is "/" itself. Docker then trims and cleans the result
 *   (with its '!') once more before reading its syntax, which only matters in odd cases: "/ a"
 *   ends up as "a", "/!a" ends up as the exception "!a", "!/" is an exception with no pattern
 *   and so an error, and a line that cleans to white space alone is dropped. A line longer
 *   than 65535 bytes is an error, as it is for Docker's line reader.
 *
 *   Extra patterns (the `ignore:` list of a step) are read like lines of a .dockerignore,
 *   except that a leading '#' is not a comment: an item of a list is always a pattern.
 *
 * Pattern syntax
 *
 *   Docker checks each pattern with Go's filepath.Match syntax and then matches paths with a
 *   regular expression built from it. dtn reproduces that expression's meaning:
 *
 *     `*`         any run of characters other than '/' (possibly empty);
 *     `?`         one character other than '/';
 *     `[...]`     one character of a class: ranges `a-z`, negation with a leading `^`
 *                 (`!` is an ordinary member, as in Go), `\` quoting the next character;
 *                 POSIX names such as `[[:digit:]]` work as in Go's regular expressions;
 *     `\c`        the character c, for c a punctuation character or a space;
 *     `**`        any number of directories, including none: `**` followed by more pattern
 *                 (a '/' after it is swallowed) stands for "nothing, or anything ending with
 *                 '/'", so `**`/`*.go` matches `a.go` and `x/y/a.go`, and `a`/`**`/`b` matches
 *                 `a/b` and `a/x/y/b`; a pattern ending with `**` matches anything that
 *                 starts with what comes before it (`a`/`**` matches `a/x` and `a/x/y` but not
 *                 `a`, and `a**` matches `ab/c`);
 *     anything else stands for itself.
 *
 *   Patterns are anchored at the context root: `*.pyc` matches `x.pyc` but not `d/x.pyc` (no
 *   implicit `**`/ in front). The following quirks of Docker's translation are kept, since a
 *   difference would silently change what is sent: a pattern made only of plain characters
 *   and a trailing `**` compares bytes (`a.b**` matches `a.bc`); a pattern starting with `**`
 *   and otherwise plain is a plain suffix test (`**foo` matches `a/xfoo`; `**`/`foo` matches
 *   `foo` and `a/foo`); `^` outside a class in a pattern that has wildcards anchors at the
 *   start of the path (so `a^*` never matches) while in a pattern without any it is an
 *   ordinary character; a `**` in the middle, and a final `**` after other wildcards, never
 *   match a newline character; `*` or `?` written inside `[...]` end the class early in Docker's
 *   expression, and dtn matches what that expression matches. Paths are read as UTF-8, a
 *   byte that is not valid UTF-8 counting as one character U+FFFD, as Go does.
 *
 *   Errors (at load time, with the source and line): a syntax error for Go's filepath.Match
 *   (an unclosed or empty class, `[-a]`, `[a-]`, a trailing `\`, a byte that is not UTF-8
 *   inside a class), a lone "!", and what Docker's regular expression compiler refuses (a
 *   reversed range `[z-a]`, an unknown `[:name:]`, `\` before a non-ASCII character) are
 *   DTN_EINVAL. Docker reports the latter group only when the pattern is first tried; dtn
 *   reports them at once. DTN_EUNSUPPORTED: `\` before a letter or digit (Docker reads `\d`,
 *   `\w`, `\n`, `\x41`, `\Q`... as regular-expression escapes, which dtn does not
 *   reproduce), a NUL byte in a .dockerignore (a UTF-16 file, say), and a pattern with
 *   wildcards longer than about 4000 bytes.
 *
 * Matching
 *
 *   A rule matches a path when its pattern matches the path itself or one of its parent
 *   directories (`build` excludes `build/x/y`), and the last rule that matches decides: a
 *   plain rule excludes, an exception includes again; no match includes. Whether an entry is
 *   a directory makes no difference (`foo/` is `foo`). The context root itself is never
 *   matched.
 *
 *   Like BuildKit's context walker, each entry inherits from its parent directory which rules
 *   matched there, and a rule that was not needed while matching the parent (an exception
 *   while nothing was excluded, a plain rule while the parent was already excluded) is only
 *   tried on the entry itself, not again on its parents. In a few orderings this gives a
 *   different answer from "some parent matched": with `a/b` then `!a`, `a/b/c` stays
 *   excluded.
 *
 *   An excluded directory is still walked when some exception could take something below it
 *   back (dtn__ignore_may_reinclude); BuildKit then sends the directory itself as well
 *   whenever it sends an entry below it. Otherwise nothing below it is sent, whatever the
 *   rules say about those paths.
 *
 * Paths are relative to the context root, separated by single '/', with no leading or
 * trailing '/' and no "." or ".." parts: `src/app/main.py`.
 */
#ifndef DTN_BUILDER_IGNORE_H
#define DTN_BUILDER_IGNORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct dtn__ignore dtn__ignore;

/* An empty rule set (it excludes nothing). Returns 0 or DTN_ENOMEM (*out is then NULL). */
int dtn__ignore_new(dtn__ignore **out);

/* Frees a rule set; accepts NULL. */
void dtn__ignore_free(dtn__ignore *ig);

/*
 * Appends the rules of a .dockerignore text (`len` bytes, need not be NUL-terminated) after
 * the rules already in the set. `source` names the text in messages and explanations (e.g.
 * ".dockerignore"; NULL means ".dockerignore"); it is copied.
 *
 * Returns 0, or on failure a negative code with the set unchanged and err (may be NULL)
 * filled: err->file = source, err->line = the line, err->message saying what is wrong with
 * which pattern. Codes: DTN_EINVAL (malformed pattern, line too long), DTN_EUNSUPPORTED
 * (see above), DTN_ENOMEM.
 */
int dtn__ignore_add_text(dtn__ignore *ig, const char *text, size_t len, const char *source,
			 dtn_error *err);

/*
 * Appends extra patterns (a NULL-terminated list; NULL adds nothing) after the rules already
 * in the set. Pattern i is named "SOURCE[i]" (source NULL means "ignore"), counting every
 * item of the list, also blank ones, which add no rule. Errors as dtn__ignore_add_text, with
 * err->file = "SOURCE[i]" and err->line = 0. Add the .dockerignore first so that the extra
 * patterns come after it, as they should.
 */
int dtn__ignore_add_patterns(dtn__ignore *ig, const char *const *patterns, const char *source,
			     dtn_error *err);

/* Number of rules (comments, blank lines and blank items are not rules). 0 for NULL. */
size_t dtn__ignore_count(const dtn__ignore *ig);

/*
 * Rule i (0 <= i < count): its text as written, trimmed, with its '!' if it is an exception;
 * the name of its source (".dockerignore", "ignore[2]"); its 1-based line in a .dockerignore,
 * 0 for an extra pattern; whether it is an exception; its pattern as Docker reads it (cleaned,
 * without '!'). Strings are borrowed from the set. Out of range: NULL, 0 or false.
 */
const char *dtn__ignore_rule_text(const dtn__ignore *ig, int i);
const char *dtn__ignore_rule_source(const dtn__ignore *ig, int i);
int dtn__ignore_rule_line(const dtn__ignore *ig, int i);
bool dtn__ignore_rule_is_exception(const dtn__ignore *ig, int i);
const char *dtn__ignore_rule_pattern(const dtn__ignore *ig, int i);

/*
 * Whether `path` is left out of the context, answering for the whole walk: the rules for the
 * path and its parents as above, and "excluded" when a parent directory is excluded and not
 * walked into. `is_dir` makes no difference (Docker does not look at it); it is there so that
 * callers say what they have. Returns 1 (excluded) or 0 (included), and DTN_ENOMEM only for
 * sets of more than 1024 rules (which need scratch memory). *rule (may be NULL) gets the
 * index of the rule that decided (for a path below a directory that is not walked into, the
 * rule that excluded that directory), or -1 when no rule matches. The work grows with the
 * depth of the path times the number of rules; a walker that keeps each directory's state
 * can use dtn__ignore_match_entry instead, which costs one level.
 */
int dtn__ignore_match(const dtn__ignore *ig, const char *path, size_t len, bool is_dir,
		      int *rule);

/* ---- for the walker: matching one entry from its parent's state, without allocating ---- */

/* How many uint64_t words one entry's match state takes (at least 1). */
size_t dtn__ignore_state_words(const dtn__ignore *ig);

/*
 * Matches the entry `path` (len bytes) given `parent`, the state its parent directory got
 * from this function, or NULL for an entry directly in the context root. When `state` is not
 * NULL it receives this entry's state (dtn__ignore_state_words words) for matching the
 * entry's children; it may be the same array as `parent`. Returns 1 (excluded) or 0
 * (included); *rule (may be NULL) gets the deciding rule or -1. Does not consider whether a
 * parent directory is walked into at all: that is the walker's part, with
 * dtn__ignore_may_reinclude. With a NULL parent for a path below the root, parent
 * directories are tried directly, as Docker does when it has no state.
 */
int dtn__ignore_match_entry(const dtn__ignore *ig, const uint64_t *parent, const char *path,
			    size_t len, uint64_t *state, int *rule);

/*
 * For a directory that dtn__ignore_match_entry excluded: whether something below it could be
 * taken back by an exception, so that the walker must still walk into it. The answer is
 * Docker's: false when there are no exceptions; true when some exception has a wildcard,
 * `[`, `]`, `^` or `\` (once a trailing slash and `**` or `*` is set aside); otherwise true
 * when some exception names the directory or a path below it. Walking into a directory that Docker
 * would skip finds nothing included, so the answer may err only towards walking.
 */
bool dtn__ignore_may_reinclude(const dtn__ignore *ig, const char *dir, size_t len);

#endif
