/*
 * dtn_image.h - the image model, its fluent C DSL and the YAML spec loader.
 *
 * An image is built by a chain of calls, each returning the same handle:
 *
 *     dtn_image *img = dtn_image_debian_slim("3.12");
 *     dtn_image_pip_install(img, DTN_STRV("requests", "pytest"), NULL);
 *     dtn_image_workdir(img, "/home/daytona");
 *     if (dtn_image_status(img) < 0)
 *             report(dtn_image_error(img));
 *     fputs(dtn_image_dockerfile(img), stdout);
 *     dtn_image_free(img);
 *
 * The first failing call latches its error; every later call on the handle does nothing, so a
 * chain is checked once at the end. Constructors never return NULL: when memory runs out they
 * return a shared "nil" image whose status is DTN_ENOMEM (dtn_image_free ignores it).
 *
 * The Dockerfile text is that of the Daytona TypeScript SDK 0.218.0 for the same calls, except
 * where the SDK's output would not build as intended (see docs/parity.md). All string arguments
 * are copied; string lists are NULL-terminated (DTN_STRV). Relative paths resolve against the
 * directory set with dtn_image_resolve_from (the current directory by default) and a leading `~`
 * against $HOME; the spelling given is kept for archive paths, as the SDK does.
 */
#ifndef DTN_IMAGE_H
#define DTN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "dtn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dtn_image dtn_image;

/* ---- options ---------------------------------------------------------------------------- */

#define DTN_OPTS_VERSION 1

/* Options of the pip steps. `version` is 0 or DTN_OPTS_VERSION; unset fields mean "none". */
typedef struct dtn_pip_opts {
	unsigned version;
	const char *const *find_links;       /* --find-links, one per entry */
	const char *index_url;               /* --index-url */
	const char *const *extra_index_urls; /* --extra-index-url, one per entry */
	bool pre;                            /* --pre */
	const char *extra_options;           /* appended verbatim, trimmed; blank adds nothing */
	const char *const *optional_dependencies; /* pip_install_from_pyproject only: groups */
} dtn_pip_opts;

/* Options of dtn_image_from_dockerfile and dtn_image_dockerfile_commands. */
typedef struct dtn_dockerfile_opts {
	unsigned version;
	const char *context_dir; /* dockerfile_commands: where COPY/ADD sources are found */
	bool strict_context;     /* also reject absolute sources and links leaving the context */
	const char *base_dir;    /* from_dockerfile: resolve a relative path here, and later
				  * steps' too (as dtn_image_resolve_from); NULL: the current
				  * directory */
} dtn_dockerfile_opts;

/* Options of dtn_image_add_local_dir. */
typedef struct dtn_dir_opts {
	unsigned version;
	const char *const *ignore; /* .dockerignore-style patterns applied to this directory */
} dtn_dir_opts;

/* ---- constructors ----------------------------------------------------------------------- */

/* FROM ref, copied verbatim. */
dtn_image *dtn_image_base(const char *ref);

/*
 * A Debian slim Python image with the SDK's preamble. `series` is one of "3.9" ... "3.13";
 * NULL or "" means the newest. Anything else latches DTN_EINVAL naming the version.
 */
dtn_image *dtn_image_debian_slim(const char *series);

/*
 * The Dockerfile at `path`, kept byte for byte; every COPY/ADD source in it becomes a context,
 * found the way `docker build` would with the Dockerfile's directory as the build context.
 * Errors: DTN_ENOTFOUND (no such file, or a COPY source that does not exist), DTN_EINVAL (not a
 * regular file, or a COPY line Docker would reject), DTN_EOUTSIDE (a source leaving the
 * context), DTN_ESYNTAX; the error's line is the Dockerfile's. `opts` may be NULL.
 */
dtn_image *dtn_image_from_dockerfile(const char *path, const dtn_dockerfile_opts *opts);

/* ---- steps -------------------------------------------------------------------------------- */

/*
 * Relative paths of later steps resolve against `dir` (which must exist) instead of the
 * current directory. Nothing is added to the Dockerfile.
 */
dtn_image *dtn_image_resolve_from(dtn_image *img, const char *dir);

/* RUN python -m pip install, packages sorted and shell-quoted. An empty list adds nothing. */
dtn_image *dtn_image_pip_install(dtn_image *img, const char *const *packages,
				 const dtn_pip_opts *opts);

/* COPY the requirements file to /.requirements.txt and install from it. */
dtn_image *dtn_image_pip_install_from_requirements(dtn_image *img, const char *path,
						   const dtn_pip_opts *opts);

/*
 * pip install project.dependencies of a pyproject.toml, plus the arrays of the groups named
 * in opts->optional_dependencies. The file itself is not copied into the image.
 */
dtn_image *dtn_image_pip_install_from_pyproject(dtn_image *img, const char *path,
						const dtn_pip_opts *opts);

/* COPY one regular file; a `remote` ending in '/' gets the file's name appended. */
dtn_image *dtn_image_add_local_file(dtn_image *img, const char *local, const char *remote);

/* COPY a directory. `opts` may be NULL. */
dtn_image *dtn_image_add_local_dir(dtn_image *img, const char *local, const char *remote,
				   const dtn_dir_opts *opts);

/* One RUN line per command, each verbatim. */
dtn_image *dtn_image_run_commands(dtn_image *img, const char *const *commands);

/* One RUN line of double-quoted words (the SDK's list form of run_commands). */
dtn_image *dtn_image_run_words(dtn_image *img, const char *const *words);

/* ENV key=value, the value shell-quoted. A value with a newline is rejected (DTN_EINVAL). */
dtn_image *dtn_image_env(dtn_image *img, const char *key, const char *value);

/* WORKDIR path, shell-quoted. */
dtn_image *dtn_image_workdir(dtn_image *img, const char *path);

/* ENTRYPOINT / CMD in exec form; items are JSON strings. */
dtn_image *dtn_image_entrypoint(dtn_image *img, const char *const *args);
dtn_image *dtn_image_cmd(dtn_image *img, const char *const *args);

/*
 * Raw Dockerfile instructions, joined with newlines. Their COPY/ADD sources become contexts,
 * found in opts->context_dir (or the resolve-from directory when there is none). `opts` may be
 * NULL. Errors as dtn_image_from_dockerfile; the error's line is that of the joined commands.
 */
dtn_image *dtn_image_dockerfile_commands(dtn_image *img, const char *const *commands,
					 const dtn_dockerfile_opts *opts);

/* RUN apt-get update && apt-get install -y PACKAGES && rm -rf /var/lib/apt/lists (all). */
dtn_image *dtn_image_apt_get(dtn_image *img, const char *const *packages);

/* LABEL key="value", the value a JSON-style escaped string. */
dtn_image *dtn_image_label(dtn_image *img, const char *key, const char *value);

/* EXPOSE; each port is "N" or a range "N-M" (N <= M), 1 <= N, M <= 65535, optionally followed
 * by "/tcp", "/udp" or "/sctp". */
dtn_image *dtn_image_expose(dtn_image *img, const char *const *ports);

/* USER name[:group]. */
dtn_image *dtn_image_user(dtn_image *img, const char *user);

/* VOLUME in JSON form. */
dtn_image *dtn_image_volume(dtn_image *img, const char *const *paths);

/* ---- results ------------------------------------------------------------------------------ */

/* 0, or the negative code of the first failed call. Accepts NULL (DTN_EINVAL). */
int dtn_image_status(const dtn_image *img);

/* The first error, borrowed from the image; never NULL (code 0 when there is none). */
const dtn_error *dtn_image_error(const dtn_image *img);

/*
 * Lets a caller latch its own error on the image (the spec loader reports YAML problems this
 * way). Does nothing if an error is already latched. Returns the image.
 */
dtn_image *dtn_image_fail(dtn_image *img, const dtn_error *err);

/* The Dockerfile text, borrowed from the image; "" after an error. */
const char *dtn_image_dockerfile(const dtn_image *img);

typedef enum dtn_context_kind {
	DTN_CONTEXT_FILE = 1, /* a regular file (or a link to one, for add_local_file) */
	DTN_CONTEXT_DIR = 2   /* a directory, archived whole */
} dtn_context_kind;

/* One build context: local files that the Dockerfile's COPY lines need. */
typedef struct dtn_context {
	const char *source;       /* as spelled by the step (the SDK's sourcePath) */
	const char *path;         /* the same, absolute and normalised */
	const char *archive_path; /* where the files sit in the build context */
	dtn_context_kind kind;
	const char *step;         /* the step that added it: "add_local_file", ... */
	const char *const *ignore;  /* patterns from the step, NULL-terminated; never NULL */
	const char *root;         /* absolute: the directory a relative archive path is relative
				   * to, as a build context is to `docker build` (the spec's
				   * directory, the Dockerfile's, or the context_dir) */
} dtn_context;

/* The number of contexts; 0 after an error. */
size_t dtn_image_context_count(const dtn_image *img);

/* Context i (0-based, in the order the steps added them), borrowed; NULL when out of range. */
const dtn_context *dtn_image_context(const dtn_image *img, size_t i);

/* The name of a context kind: "file" or "dir". */
const char *dtn_context_kind_name(dtn_context_kind kind);

/* Frees the image and everything borrowed from it. Accepts NULL and the nil image. */
void dtn_image_free(dtn_image *img);

/* ---- the YAML spec ------------------------------------------------------------------------ */

typedef struct dtn_spec dtn_spec;

/* A volume to mount in sandboxes created from the snapshot. */
typedef struct dtn_spec_volume {
	const char *name;
	const char *mount_path;
	const char *subpath; /* NULL when not given */
} dtn_spec_volume;

/* The snapshot: section. Unset numbers are 0, unset strings NULL. */
typedef struct dtn_spec_snapshot {
	const char *name;
	int cpu;    /* vCPUs */
	int gpu;
	int memory; /* GiB */
	int disk;   /* GiB */
	const char *region;
} dtn_spec_snapshot;

/*
 * Loads a spec file (format version 1) and builds its image through the DSL. Relative paths
 * in the spec resolve against the spec's directory. On success *out is a spec owned by the
 * caller (dtn_spec_free). On failure *out is NULL and err (may be NULL) says what and where, as
 * FILE:LINE:COLUMN. Errors: DTN_ENOTFOUND and DTN_EIO for the file itself, DTN_ESYNTAX for text
 * that is not YAML, DTN_EINVAL for a wrong key, shape or value, DTN_EUNSUPPORTED for a format
 * version other than 1, and any error of a step.
 */
int dtn_spec_load(dtn_spec **out, const char *path, dtn_error *err);

/* The same from text in memory; `name` is used in positions and to resolve relative paths
 * (its directory). `len` is the text's length. */
int dtn_spec_load_buffer(dtn_spec **out, const char *text, size_t len, const char *name,
			 dtn_error *err);

/* The spec's image, borrowed. */
const dtn_image *dtn_spec_image(const dtn_spec *spec);

/* The snapshot section, borrowed; all fields unset when the spec has none. */
const dtn_spec_snapshot *dtn_spec_snapshot_info(const dtn_spec *spec);

/* The volumes, borrowed. */
size_t dtn_spec_volume_count(const dtn_spec *spec);
const dtn_spec_volume *dtn_spec_volume_at(const dtn_spec *spec, size_t i);

void dtn_spec_free(dtn_spec *spec);

#ifdef __cplusplus
}
#endif

#endif
