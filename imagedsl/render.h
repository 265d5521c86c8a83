/*
 * render.h - the escaping functions of the Dockerfile renderer, one per context a string can
 * land in. Internal to libdtn.
 */
#ifndef DTN_IMAGEDSL_RENDER_H
#define DTN_IMAGEDSL_RENDER_H

#include "internal.h"

/*
 * A shell word, quoted exactly as the reference SDK's quoting helper (shell-quote 1.12.0)
 * quotes it, so pip arguments, ENV values and WORKDIR paths render byte-identically.
 */
void dtn__render_shell_word(dtn__buf *b, const char *s);

/*
 * A JSON array of strings with ", " between items (Docker's exec form). Fails with DTN_EINVAL
 * for text that is not UTF-8, DTN_ENOMEM when memory runs out.
 */
int dtn__render_json_array(dtn__buf *b, const char *const *items);

/*
 * A COPY instruction for one source and destination: the plain form when both paths are plain,
 * else the JSON form, so names with whitespace, quotes, `$` or backslashes land where intended.
 */
int dtn__render_copy(dtn__buf *b, const char *src, const char *dst);

/* A double-quoted Dockerfile string (LABEL values): `"`, `\` and `$` escaped. */
void dtn__render_quoted(dtn__buf *b, const char *s);

/* Whether a string contains a character JavaScript's /\s/ matches. */
bool dtn__has_js_space(const char *s);

/* `s` without leading and trailing JavaScript whitespace, in fresh memory. */
char *dtn__trim_js_space(const char *s);

/* Orders strings as JavaScript's default sort does (by UTF-16 code units). */
int dtn__compare_utf16(const char *a, const char *b);

#endif
