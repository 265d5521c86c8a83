/*
 * image.c - the image handle: its sticky error, its Dockerfile buffer, its contexts and the
 * constructors that do not read files.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "image_internal.h"
#include "image_otel.h"
#include "render.h"

/* What a constructor returns when it cannot allocate: every call on it does nothing. */
static dtn_image nil_image = {
	.status = DTN_ENOMEM,
	.err = {.code = DTN_ENOMEM, .message = "out of memory"},
};

static const char *const no_patterns[] = {NULL};

dtn_image *dtn__image_new(void)
{
	dtn_image *img = dtn__calloc(1, sizeof(*img));

	return img ? img : &nil_image;
}

dtn_image *dtn__image_fail_with(dtn_image *img, const dtn_error *err)
{
	if (img->status < 0)
		return img;
	img->err = *err;
	if (img->err.code >= 0)
		img->err.code = DTN_ERROR;
	img->status = img->err.code;
	return img;
}

dtn_image *dtn__image_fail(dtn_image *img, int code, const char *fmt, ...)
{
	dtn_error err;
	va_list ap;

	if (img->status < 0)
		return img;
	dtn_error_clear(&err);
	va_start(ap, fmt);
	dtn__error_setv(&err, code, fmt, ap);
	va_end(ap);
	return dtn__image_fail_with(img, &err);
}

dtn_image *dtn_image_fail(dtn_image *img, const dtn_error *err)
{
	if (!img || !err)
		return img;
	return dtn__image_fail_with(img, err);
}

dtn_image *dtn__image_check_buf(dtn_image *img)
{
	if (img->dockerfile.failed)
		return dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	return img;
}

void dtn__image_begin_line(dtn_image *img)
{
	dtn__buf *b = &img->dockerfile;

	if (b->len && b->data[b->len - 1] != '\n')
		dtn__buf_putc(b, '\n');
}

int dtn__image_add_context(dtn_image *img, const char *source, const char *path,
			   const char *archive_path, dtn_context_kind kind, const char *step,
			   const char *const *ignore, const char *root)
{
	dtn_context *c;

	if (img->ncontexts == img->capcontexts) {
		size_t cap = img->capcontexts ? img->capcontexts * 2 : 4;

		if (!(c = dtn__realloc(img->contexts, cap * sizeof(*c))))
			return DTN_ENOMEM;
		img->contexts = c;
		img->capcontexts = cap;
	}
	c = &img->contexts[img->ncontexts];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->step = step;
	c->source = dtn__strdup(source);
	c->path = dtn__strdup(path);
	c->archive_path = dtn__strdup(archive_path);
	c->root = dtn__strdup(root);
	c->ignore = ignore && ignore[0] ? (const char *const *)dtn__strv_dup(ignore) : no_patterns;
	img->ncontexts++;
	if (!c->source || !c->path || !c->archive_path || !c->root || !c->ignore)
		return DTN_ENOMEM;
	return 0;
}

static void context_free(dtn_context *c)
{
	dtn__free((char *)c->source);
	dtn__free((char *)c->path);
	dtn__free((char *)c->archive_path);
	dtn__free((char *)c->root);
	if (c->ignore != no_patterns)
		dtn__strv_free_array((char **)c->ignore);
}

int dtn__image_local_path(dtn_image *img, dtn__local_path *out, const char *given)
{
	char *cwd = NULL;
	const char *dir = img->base_dir;

	memset(out, 0, sizeof(*out));
	if (!dir && !(dir = cwd = dtn__path_cwd()))
		return DTN_ENOMEM;
	out->spelled = dtn__path_expand_tilde(given, dir);
	if (out->spelled)
		out->absolute = dtn__path_join(dir, out->spelled);
	out->base = cwd ? cwd : dtn__strdup(dir);
	if (!out->spelled || !out->absolute || !out->base) {
		dtn__local_path_free(out);
		return DTN_ENOMEM;
	}
	return 0;
}

void dtn__local_path_free(dtn__local_path *p)
{
	dtn__free(p->spelled);
	dtn__free(p->absolute);
	dtn__free(p->base);
	p->spelled = p->absolute = p->base = NULL;
}

dtn_image *dtn_image_base(const char *ref)
{
	dtn_image *img = dtn__image_new();

	if (img->status < 0)
		return img;
	if (!ref)
		return dtn__image_fail(img, DTN_EINVAL, "base: no image reference given");
	dtn__buf_printf(&img->dockerfile, "FROM %s\n", ref);
	return dtn__image_check_buf(img);
}

static const struct {
	const char *series, *release;
} python_releases[] = {
	{"3.9", "3.9.22"}, {"3.10", "3.10.17"}, {"3.11", "3.11.12"},
	{"3.12", "3.12.10"}, {"3.13", "3.13.3"},
};

dtn_image *dtn_image_debian_slim(const char *series)
{
	dtn_image *img = dtn__image_new();
	const char *release = NULL;
	size_t newest = DTN__ARRAY_LEN(python_releases) - 1;

	if (img->status < 0)
		return img;
	if (!series || !*series)
		series = python_releases[newest].series;
	for (size_t i = 0; i < DTN__ARRAY_LEN(python_releases); i++)
		if (strcmp(series, python_releases[i].series) == 0)
			release = python_releases[i].release;
	if (!release)
		return dtn__image_fail(img, DTN_EINVAL,
				       "unsupported Python version \"%s\": the supported series "
				       "are 3.9, 3.10, 3.11, 3.12 and 3.13", series);
	dtn__buf_printf(&img->dockerfile,
			"FROM python:%s-slim-bookworm\n"
			"RUN apt-get update\n"
			"RUN apt-get install -y gcc gfortran build-essential\n"
			"RUN pip install --upgrade pip\n"
			"RUN echo 'debconf debconf/frontend select Noninteractive' | "
			"debconf-set-selections\n",
			release);
	return dtn__image_check_buf(img);
}

dtn_image *dtn_image_resolve_from(dtn_image *img, const char *dir)
{
	dtn__local_path p;
	struct stat st;
	char *old;

	if (!img || img->status < 0)
		return img;
	if (!dir)
		return dtn__image_fail(img, DTN_EINVAL, "resolve_from: no directory given");
	if (dtn__image_local_path(img, &p, dir) < 0)
		return dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	if (stat(p.absolute, &st) < 0 || !S_ISDIR(st.st_mode)) {
		dtn__image_fail(img, DTN_ENOTFOUND, "directory %s does not exist", dir);
		dtn__local_path_free(&p);
		return img;
	}
	old = img->base_dir;
	img->base_dir = p.absolute;
	p.absolute = NULL;
	dtn__free(old);
	dtn__local_path_free(&p);
	return img;
}

int dtn_image_status(const dtn_image *img)
{
	return img ? img->status : DTN_EINVAL;
}

const dtn_error *dtn_image_error(const dtn_image *img)
{
	return img ? &img->err : &nil_image.err;
}

const char *dtn_image_dockerfile(const dtn_image *img)
{
	const char *df;
	dtn_span *span;

	if (!img || img->status < 0)
		return "";
	df = dtn__buf_cstr(&img->dockerfile);
	if ((span = dtn_span_start_op("Image.dockerfile", NULL))) {
		dtn__image_otel_dockerfile(span, df);
		dtn_span_end_op(span, 0, NULL);
	}
	return df;
}

size_t dtn_image_context_count(const dtn_image *img)
{
	return img && img->status == 0 ? img->ncontexts : 0;
}

const dtn_context *dtn_image_context(const dtn_image *img, size_t i)
{
	if (i >= dtn_image_context_count(img))
		return NULL;
	return &img->contexts[i];
}

const char *dtn_context_kind_name(dtn_context_kind kind)
{
	return kind == DTN_CONTEXT_DIR ? "dir" : "file";
}

void dtn_image_free(dtn_image *img)
{
	if (!img || img == &nil_image)
		return;
	for (size_t i = 0; i < img->ncontexts; i++)
		context_free(&img->contexts[i]);
	dtn__free(img->contexts);
	dtn__buf_free(&img->dockerfile);
	dtn__free(img->base_dir);
	dtn__free(img);
}
