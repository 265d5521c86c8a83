/*
 * image_internal.h - the image handle's layout, shared by the files of the image DSL.
 */
#ifndef DTN_IMAGEDSL_IMAGE_INTERNAL_H
#define DTN_IMAGEDSL_IMAGE_INTERNAL_H

#include "dtn_image.h"
#include "internal.h"

struct dtn_image {
	int status;           /* 0, or the latched error's code */
	dtn_error err;        /* the first error */
	dtn__buf dockerfile;  /* the text so far */
	dtn_context *contexts;
	size_t ncontexts, capcontexts;
	char *base_dir;       /* relative paths resolve here; NULL: the current directory */
};

/* Every step starts by checking the handle: after an error, calls do nothing. */
#define STEP_GUARD(img)                                                                    \
	do {                                                                               \
		if (!(img) || (img)->status < 0)                                           \
			return (img);                                                      \
	} while (0)

/* A new empty image, or the nil image when memory runs out. */
dtn_image *dtn__image_new(void);

/* Latches an error on the image (the first one wins) and returns the image. */
dtn_image *dtn__image_fail(dtn_image *img, int code, const char *fmt, ...) DTN__PRINTF(3, 4);

/* Latches the error in `err` (whose code is negative). */
dtn_image *dtn__image_fail_with(dtn_image *img, const dtn_error *err);

/* Latches DTN_ENOMEM if the Dockerfile buffer failed to grow. */
dtn_image *dtn__image_check_buf(dtn_image *img);

/* Starts a new instruction line: a Dockerfile read without a final newline gets one first. */
void dtn__image_begin_line(dtn_image *img);

/* Adds a context; the strings are copied. Returns 0 or DTN_ENOMEM. */
int dtn__image_add_context(dtn_image *img, const char *source, const char *path,
			   const char *archive_path, dtn_context_kind kind, const char *step,
			   const char *const *ignore, const char *root);

/* A path as the user spelled it, `~` expanded, and the same path absolute and normalised. */
typedef struct dtn__local_path {
	char *spelled;  /* `~` expanded, otherwise as given */
	char *absolute;
	char *base;     /* the absolute directory it was resolved against */
} dtn__local_path;

int dtn__image_local_path(dtn_image *img, dtn__local_path *out, const char *given);
void dtn__local_path_free(dtn__local_path *p);

/* COPY sources of Dockerfile text: adds a context per source found under `root`. */
int dtn__image_scan_copies(dtn_image *img, const char *prelude, const char *text,
			   const char *root, const char *spelled_root, bool strict,
			   const char *step, const char *dockerfile_name);

/* pip's option suffix (" --index-url ..."), rendered as the SDK does. */
void dtn__image_pip_suffix(dtn__buf *b, const dtn_pip_opts *opts);

#endif
