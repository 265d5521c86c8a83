/*
 * steps.c - the image steps that only render text: pip, RUN, ENV, WORKDIR, ENTRYPOINT/CMD and
 * the Go SDK's apt_get, label, expose, user and volume.
 */
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"
#include "render.h"

/* User text quoted in a message, made printable (one line). */
#define SHOW(s) dtn__printable((char[256]){0}, 256, (s))

static dtn_image *fail_render(dtn_image *img, int rc, const char *step)
{
	if (rc == DTN_ENOMEM)
		return dtn__image_fail(img, rc, "out of memory");
	return dtn__image_fail(img, rc, "%s: the text is not valid UTF-8", step);
}

void dtn__image_pip_suffix(dtn__buf *b, const dtn_pip_opts *opts)
{
	char *extra;

	if (!opts)
		return;
	for (size_t i = 0; opts->find_links && opts->find_links[i]; i++) {
		dtn__buf_puts(b, " --find-links ");
		dtn__render_shell_word(b, opts->find_links[i]);
	}
	if (opts->index_url && *opts->index_url) {
		dtn__buf_puts(b, " --index-url ");
		dtn__render_shell_word(b, opts->index_url);
	}
	for (size_t i = 0; opts->extra_index_urls && opts->extra_index_urls[i]; i++) {
		dtn__buf_puts(b, " --extra-index-url ");
		dtn__render_shell_word(b, opts->extra_index_urls[i]);
	}
	if (opts->pre)
		dtn__buf_puts(b, " --pre");
	if (!opts->extra_options || !*opts->extra_options)
		return;
	/* blank extra options add nothing (the SDK leaves a stray space) */
	if (!(extra = dtn__trim_js_space(opts->extra_options))) {
		b->failed = true;
		return;
	}
	if (*extra)
		dtn__buf_printf(b, " %s", extra);
	dtn__free(extra);
}

static int compare_packages(const void *a, const void *b)
{
	return dtn__compare_utf16(*(const char *const *)a, *(const char *const *)b);
}

dtn_image *dtn_image_pip_install(dtn_image *img, const char *const *packages,
				 const dtn_pip_opts *opts)
{
	size_t n = dtn_strv_len(packages);
	const char **sorted;
	dtn__buf *b;

	STEP_GUARD(img);
	if (n == 0)
		return img;
	if (!(sorted = dtn__calloc(n, sizeof(*sorted))))
		return dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	memcpy(sorted, packages, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), compare_packages);
	b = &img->dockerfile;
	dtn__image_begin_line(img);
	dtn__buf_puts(b, "RUN python -m pip install");
	for (size_t i = 0; i < n; i++) {
		dtn__buf_putc(b, ' ');
		dtn__render_shell_word(b, sorted[i]);
	}
	dtn__image_pip_suffix(b, opts);
	dtn__buf_putc(b, '\n');
	dtn__free(sorted);
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_run_commands(dtn_image *img, const char *const *commands)
{
	STEP_GUARD(img);
	for (size_t i = 0; commands && commands[i]; i++) {
		dtn__image_begin_line(img);
		dtn__buf_printf(&img->dockerfile, "RUN %s\n", commands[i]);
	}
	return dtn__image_check_buf(img);
}

/* The SDK's list form: each word in double quotes, `"` written as \\\" and `'` as \'. */
dtn_image *dtn_image_run_words(dtn_image *img, const char *const *words)
{
	dtn__buf *b;

	STEP_GUARD(img);
	b = &img->dockerfile;
	dtn__image_begin_line(img);
	dtn__buf_puts(b, "RUN");
	for (size_t i = 0; words && words[i]; i++) {
		dtn__buf_puts(b, i ? " \"" : " \"");
		for (const char *s = words[i]; *s; s++) {
			if (*s == '"')
				dtn__buf_puts(b, "\\\\\\\"");
			else if (*s == '\'')
				dtn__buf_puts(b, "\\'");
			else
				dtn__buf_putc(b, *s);
		}
		dtn__buf_putc(b, '"');
	}
	dtn__buf_putc(b, '\n');
	return dtn__image_check_buf(img);
}

/* Keys of ENV and LABEL: non-empty, one word, no '='. */
static bool valid_key(const char *key)
{
	return key && *key && !strchr(key, '=') && !dtn__has_js_space(key) &&
	       !strpbrk(key, "\"'\\$");
}

dtn_image *dtn_image_env(dtn_image *img, const char *key, const char *value)
{
	STEP_GUARD(img);
	if (!valid_key(key))
		return dtn__image_fail(img, DTN_EINVAL, "env: \"%s\" is not a valid variable name",
				       SHOW(key));
	if (!value)
		return dtn__image_fail(img, DTN_EINVAL, "env: %s has no value", key);
	if (strpbrk(value, "\r\n"))
		return dtn__image_fail(img, DTN_EINVAL,
				       "env: the value of %s contains a line break, which a "
				       "Dockerfile cannot express", key);
	dtn__image_begin_line(img);
	dtn__buf_printf(&img->dockerfile, "ENV %s=", key);
	dtn__render_shell_word(&img->dockerfile, value);
	dtn__buf_putc(&img->dockerfile, '\n');
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_workdir(dtn_image *img, const char *path)
{
	STEP_GUARD(img);
	if (!path)
		return dtn__image_fail(img, DTN_EINVAL, "workdir: no path given");
	if (strpbrk(path, "\r\n"))
		return dtn__image_fail(img, DTN_EINVAL, "workdir: the path contains a line break");
	dtn__image_begin_line(img);
	dtn__buf_puts(&img->dockerfile, "WORKDIR ");
	dtn__render_shell_word(&img->dockerfile, path);
	dtn__buf_putc(&img->dockerfile, '\n');
	return dtn__image_check_buf(img);
}

static dtn_image *exec_form(dtn_image *img, const char *keyword, const char *const *args)
{
	int rc;

	STEP_GUARD(img);
	if (!args)
		return dtn__image_fail(img, DTN_EINVAL, "%s: no list given", keyword);
	dtn__image_begin_line(img);
	dtn__buf_printf(&img->dockerfile, "%s ", keyword);
	if ((rc = dtn__render_json_array(&img->dockerfile, args)) < 0)
		return fail_render(img, rc, keyword);
	dtn__buf_putc(&img->dockerfile, '\n');
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_entrypoint(dtn_image *img, const char *const *args)
{
	return exec_form(img, "ENTRYPOINT", args);
}

dtn_image *dtn_image_cmd(dtn_image *img, const char *const *args)
{
	return exec_form(img, "CMD", args);
}

dtn_image *dtn_image_apt_get(dtn_image *img, const char *const *packages)
{
	dtn__buf *b;

	STEP_GUARD(img);
	if (!dtn_strv_len(packages))
		return img;
	b = &img->dockerfile;
	dtn__image_begin_line(img);
	dtn__buf_puts(b, "RUN apt-get update && apt-get install -y");
	for (size_t i = 0; packages[i]; i++) {
		if (!*packages[i] || strpbrk(packages[i], "\r\n"))
			return dtn__image_fail(img, DTN_EINVAL,
					       "apt_get: \"%s\" is not a package name",
					       SHOW(packages[i]));
		dtn__buf_putc(b, ' ');
		dtn__render_shell_word(b, packages[i]);
	}
	dtn__buf_puts(b, " && rm -rf /var/lib/apt/lists/*\n");
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_label(dtn_image *img, const char *key, const char *value)
{
	STEP_GUARD(img);
	if (!key || !*key || strpbrk(key, "\r\n"))
		return dtn__image_fail(img, DTN_EINVAL, "label: \"%s\" is not a valid label key",
				       SHOW(key));
	if (!value)
		return dtn__image_fail(img, DTN_EINVAL, "label: %s has no value", key);
	if (strpbrk(value, "\r\n"))
		return dtn__image_fail(img, DTN_EINVAL,
				       "label: the value of %s contains a line break, which a "
				       "Dockerfile cannot express", key);
	dtn__image_begin_line(img);
	dtn__buf_puts(&img->dockerfile, "LABEL ");
	if (valid_key(key))
		dtn__buf_puts(&img->dockerfile, key);
	else
		dtn__render_quoted(&img->dockerfile, key);
	dtn__buf_putc(&img->dockerfile, '=');
	dtn__render_quoted(&img->dockerfile, value);
	dtn__buf_putc(&img->dockerfile, '\n');
	return dtn__image_check_buf(img);
}

/* A port number 1-65535 at *p, without leading zeros; advances *p past it. */
static bool port_number(const char **p, unsigned long *n)
{
	size_t digits = 0;

	*n = 0;
	while ((*p)[digits] >= '0' && (*p)[digits] <= '9' && digits < 6)
		*n = *n * 10 + (unsigned long)((*p)[digits++] - '0');
	if (digits == 0 || digits > 5 || *n < 1 || *n > 65535 || **p == '0')
		return false;
	*p += digits;
	return true;
}

/* "N", or a range "N-M" with N <= M, then optionally /tcp, /udp or /sctp. */
static bool valid_port(const char *p)
{
	unsigned long lo, hi;

	if (!port_number(&p, &lo))
		return false;
	if (*p == '-') {
		p++;
		if (!port_number(&p, &hi) || hi < lo)
			return false;
	}
	return !*p || !strcmp(p, "/tcp") || !strcmp(p, "/udp") || !strcmp(p, "/sctp");
}

dtn_image *dtn_image_expose(dtn_image *img, const char *const *ports)
{
	STEP_GUARD(img);
	if (!dtn_strv_len(ports))
		return img;
	for (size_t i = 0; ports[i]; i++)
		if (!valid_port(ports[i]))
			return dtn__image_fail(img, DTN_EINVAL,
					       "expose: \"%s\" is not a port (1-65535) or a range of "
					       "ports (8000-8010), optionally followed by /tcp, /udp or "
					       "/sctp", SHOW(ports[i]));
	dtn__image_begin_line(img);
	dtn__buf_puts(&img->dockerfile, "EXPOSE");
	for (size_t i = 0; ports[i]; i++)
		dtn__buf_printf(&img->dockerfile, " %s", ports[i]);
	dtn__buf_putc(&img->dockerfile, '\n');
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_user(dtn_image *img, const char *user)
{
	STEP_GUARD(img);
	if (!user || !*user || dtn__has_js_space(user) || strpbrk(user, "\"'\\$"))
		return dtn__image_fail(img, DTN_EINVAL, "user: \"%s\" is not a user name",
				       SHOW(user));
	dtn__image_begin_line(img);
	dtn__buf_printf(&img->dockerfile, "USER %s\n", user);
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_volume(dtn_image *img, const char *const *paths)
{
	STEP_GUARD(img);
	if (!dtn_strv_len(paths))
		return img;
	for (size_t i = 0; paths[i]; i++)
		if (!*paths[i] || strpbrk(paths[i], "\r\n$"))
			return dtn__image_fail(img, DTN_EINVAL, "volume: \"%s\" is not a usable path",
					       SHOW(paths[i]));
	return exec_form(img, "VOLUME", paths);
}
