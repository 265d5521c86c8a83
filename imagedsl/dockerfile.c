/*
 * dockerfile.c - Dockerfile text given by the user: from_dockerfile and dockerfile_commands.
 * Their COPY/ADD sources become contexts, found the way `docker build` finds them.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dfscan.h"
#include "image_internal.h"

/* Dockerfiles larger than this are refused rather than read. */
#define DOCKERFILE_MAX (4u << 20)

/* Latches a scanner or resolver error at `line`/`column` of the Dockerfile called `name`. */
static void fail_at(dtn_image *img, dtn_error *err, const char *name, int line, int column)
{
	dtn__error_at(err, name, line, column);
	dtn__image_fail_with(img, err);
}

/* Adds the contexts of one source: each match under root. */
static int add_matches(dtn_image *img, const dtn__df_source *src, const char *root,
		       const char *spelled_root, bool strict, const char *step, const char *name)
{
	dtn__df_match *m = NULL;
	size_t n = 0;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	if ((rc = dtn__df_resolve(&m, &n, root, src->text, strict, &err)) < 0) {
		fail_at(img, &err, name, src->line, src->column);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *source = dtn__path_join(spelled_root, m[i].rel);
		char *path = dtn__path_join(root, m[i].rel);

		rc = source && path ? dtn__image_add_context(img, source, path, m[i].rel,
							     m[i].is_dir ? DTN_CONTEXT_DIR
									 : DTN_CONTEXT_FILE,
							     step, NULL, root)
				    : DTN_ENOMEM;
		dtn__free(source);
		dtn__free(path);
	}
	dtn__df_matches_free(m, n);
	if (rc < 0)
		dtn__image_fail(img, rc, "out of memory");
	return rc;
}

int dtn__image_scan_copies(dtn_image *img, const char *prelude, const char *text,
			   const char *root, const char *spelled_root, bool strict,
			   const char *step, const char *dockerfile_name)
{
	dtn__df_source *sources = NULL;
	size_t n = 0;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	if ((rc = dtn__df_scan(&sources, &n, prelude, text, strlen(text), &err)) < 0) {
		fail_at(img, &err, dockerfile_name, err.line, err.column);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = add_matches(img, &sources[i], root, spelled_root, strict, step,
				 dockerfile_name);
	dtn__df_sources_free(sources, n);
	return rc;
}

/* Opens the Dockerfile at `path`: its text and its absolute directory. */
static int read_dockerfile(dtn_image *img, const char *path, char **text, char **dir)
{
	dtn__local_path p;
	struct stat st;
	dtn_error err;
	size_t len;
	int rc = -1;

	dtn_error_clear(&err);
	if (dtn__image_local_path(img, &p, path) < 0) {
		dtn__image_fail(img, DTN_ENOMEM, "out of memory");
		return -1;
	}
	if (stat(p.absolute, &st) < 0)
		dtn__image_fail(img, DTN_ENOTFOUND, "Dockerfile %s does not exist", path);
	else if (!S_ISREG(st.st_mode))
		dtn__image_fail(img, DTN_EINVAL, "Dockerfile path %s exists but is not a file", path);
	else if (dtn__read_file(text, &len, p.absolute, path, DOCKERFILE_MAX, &err) < 0)
		dtn__image_fail_with(img, &err);
	else if (!(*dir = dtn__path_dirname(p.absolute)))
		dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	else
		rc = 0;
	dtn__local_path_free(&p);
	return rc;
}

dtn_image *dtn_image_from_dockerfile(const char *path, const dtn_dockerfile_opts *opts)
{
	dtn_image *img = dtn__image_new();
	char *text = NULL, *dir = NULL;

	if (img->status < 0)
		return img;
	if (!path || !*path)
		return dtn__image_fail(img, DTN_EINVAL, "from_dockerfile: no path given");
	if (opts && opts->base_dir && dtn_image_resolve_from(img, opts->base_dir)->status < 0)
		return img;
	if (read_dockerfile(img, path, &text, &dir) < 0)
		goto out;
	if (dtn__image_scan_copies(img, NULL, text, dir, dir, opts && opts->strict_context,
				   "from_dockerfile", path) < 0)
		goto out;
	/* the text is kept byte for byte; a missing final newline is added only when a later
	 * step appends (dtn__image_begin_line) */
	dtn__buf_puts(&img->dockerfile, text);
	dtn__image_check_buf(img);
out:
	dtn__free(text);
	dtn__free(dir);
	return img;
}

/* The commands joined with newlines and ended by one, as the SDK appends them. */
static char *join_commands(const char *const *commands)
{
	dtn__buf b = DTN__BUF_INIT;

	for (size_t i = 0; commands && commands[i]; i++) {
		if (i)
			dtn__buf_putc(&b, '\n');
		dtn__buf_puts(&b, commands[i]);
	}
	dtn__buf_putc(&b, '\n');
	return dtn__buf_detach(&b);
}

/* The context directory of dockerfile_commands: checked, absolute and as spelled. */
static int context_dir(dtn_image *img, const char *given, dtn__local_path *p)
{
	struct stat st;

	if (dtn__image_local_path(img, p, given) < 0) {
		dtn__image_fail(img, DTN_ENOMEM, "out of memory");
		return -1;
	}
	if (stat(p->absolute, &st) < 0)
		dtn__image_fail(img, DTN_ENOTFOUND, "context directory %s does not exist", given);
	else if (!S_ISDIR(st.st_mode))
		dtn__image_fail(img, DTN_EINVAL, "context path %s exists but is not a directory",
				given);
	else
		return 0;
	dtn__local_path_free(p);
	return -1;
}

dtn_image *dtn_image_dockerfile_commands(dtn_image *img, const char *const *commands,
					 const dtn_dockerfile_opts *opts)
{
	const char *dir = opts ? opts->context_dir : NULL;
	bool strict = opts && opts->strict_context;
	dtn__local_path ctx = {0};
	char *text = NULL, *cwd = NULL;
	const char *root, *spelled;

	STEP_GUARD(img);
	if (strict && (!dir || !*dir))
		return dtn__image_fail(img, DTN_EINVAL,
				       "dockerfile_commands: strict_context needs a context_dir, "
				       "so that the build context boundary is explicit");
	if (dir && *dir) {
		if (context_dir(img, dir, &ctx) < 0)
			return img;
		root = ctx.absolute;
		spelled = ctx.spelled;
	} else {
		if (!img->base_dir && !(cwd = dtn__path_cwd()))
			return dtn__image_fail(img, DTN_ENOMEM, "out of memory");
		root = img->base_dir ? img->base_dir : cwd;
		spelled = "";
	}
	if (!(text = join_commands(commands)))
		dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	else if (dtn__image_scan_copies(img, dtn__buf_cstr(&img->dockerfile), text, root, spelled,
					strict, "dockerfile_commands", "") == 0) {
		dtn__image_begin_line(img);
		dtn__buf_puts(&img->dockerfile, text);
		dtn__image_check_buf(img);
	}
	dtn__free(text);
	dtn__free(cwd);
	dtn__local_path_free(&ctx);
	return img;
}
