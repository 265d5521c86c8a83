/*
 * dtn_local.h - building an image locally with a container engine (buildah, podman or docker),
 * without a Daytona account.
 *
 *     dtn_local_result *res;
 *     int rc = dtn_build_local(b, img, &(dtn_local_opts){.name = "hello", .if_changed = true,
 *                                                         .log = print_line}, &res, &err);
 *     // res->image is "dtn/hello:<identity>"; res->reused says whether it was built just now
 *     dtn_local_result_free(res);
 *
 * The build directory is assembled the way Daytona's runner assembles its build context: every
 * context's files at their archive path, as dtn_builder_archive writes them (the same ignore
 * rules; links stay links, as with `docker build`). The Dockerfile lies outside that directory,
 * so a context file named "Dockerfile" cannot collide with it, and the engine is told to apply
 * no ignore file of its own: what it sees is exactly what dtn selected. The directory is made
 * under the temporary directory and removed again, whatever happens. So is the engine's own
 * temporary directory (its TMPDIR; made where it would make its files: under opts->tmp_dir, else
 * $TMPDIR, else /var/tmp), as an engine that is stopped may leave files there. buildah, stopped
 * outside a RUN step, also leaves its working container behind: after a stopped build dtn
 * removes the buildah working containers ("<image>-working-container[-N]") that appeared while
 * the build ran (in the same storage, a build started meanwhile by someone else would lose its
 * own).
 *
 * The engine runs in its own process group with standard input from /dev/null; its standard
 * output and error are read through one pipe and delivered as whole lines. Nothing goes through
 * a shell. Global options for the engine (before its command) come from opts->engine_args, else
 * from the environment variable DTN_BUILDAH_ARGS, DTN_PODMAN_ARGS or DTN_DOCKER_ARGS, split at
 * blanks: for example DTN_BUILDAH_ARGS="--storage-driver vfs --root /srv/images". The engines'
 * own variables pass through unchanged (buildah honours BUILDAH_ISOLATION, BUILDAH_LAYERS and
 * CONTAINERS_STORAGE_CONF; its storage driver is chosen with --storage-driver or in
 * storage.conf, not by STORAGE_DRIVER). buildah and podman are asked for an image in Docker's
 * format, as Docker builds it (the OCI format has no HEALTHCHECK, SHELL or ONBUILD), unless
 * BUILDAH_FORMAT says otherwise. When buildah finds no OCI runtime (neither crun nor runc on PATH) and
 * BUILDAH_ISOLATION is not set, dtn asks it for chroot isolation, the only one that can run RUN
 * steps then.
 */
#ifndef DTN_LOCAL_H
#define DTN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "dtn_builder.h"
#include "dtn_core.h"
#include "dtn_image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A container engine found on this machine. */
typedef struct dtn_local_engine {
	char name[16];   /* "buildah", "podman" or "docker": how it is spoken to */
	char path[4096]; /* the executable */
} dtn_local_engine;

/*
 * Finds the engine to build with. `engine` NULL (or "") takes the first of buildah, podman and
 * docker found on PATH; "buildah", "podman" or "docker" looks for that one; a path containing
 * '/' is taken as it is, and spoken to as the engine its file name starts with
 * ("/opt/bin/podman-remote" as podman). Errors: DTN_ENOTFOUND (no engine found, or not the one
 * named), DTN_EINVAL (a name or file that is none of the three).
 */
int dtn_local_find_engine(dtn_local_engine *out, const char *engine, dtn_error *err);

/*
 * The identity of the image's build, 64 lower-case hex digits in out: the SHA-256 digest of the
 * Dockerfile text followed by the identities of its contexts (dtn_builder_identify), sorted and
 * concatenated, the formula by which the Daytona API names the images it builds. The same spec
 * with the same files has the same identity wherever it is checked out. Errors: those of
 * dtn_builder_identify, and the image's own error when it has one.
 */
int dtn_local_identity(dtn_builder *b, const dtn_image *img, char out[65], dtn_error *err);

/*
 * The image name for a snapshot name, "dtn/<name>:<identity>", in fresh memory (dtn_free). The
 * name is made fit for an image reference: lower-cased, each character other than a letter, a
 * digit, '.', '_' or '-' (and each run of separators) turned into one '-', separators trimmed
 * from the ends. Errors: DTN_EINVAL (nothing usable is left), DTN_ENOMEM.
 */
int dtn_local_image_name(char **out, const char *name, const char *identity, dtn_error *err);

typedef struct dtn_local_opts {
	unsigned version;              /* 0 or DTN_OPTS_VERSION */
	const char *name;              /* the snapshot name; required */
	const char *engine;            /* as dtn_local_find_engine; NULL: the first found */
	const char *const *engine_args; /* global options of the engine; NULL: from the
					 * environment (see above) */
	bool if_changed;               /* reuse the image when it is already built (same tag) */
	bool replace;                  /* afterwards remove the images of earlier builds of the
					* same name (dtn/<name> with another identity) */
	unsigned timeout;              /* seconds the whole build may take; 0: no limit */
	const volatile int *cancel;    /* when it becomes non-zero the engine is stopped and the
					* build fails with DTN_EINTR; may be NULL */
	const char *tmp_dir;           /* where the build directory is made; NULL: $TMPDIR, else
					* /tmp (the engine's TMPDIR: else /var/tmp) */
	dtn_log_fn log;                /* the engine's output (DTN_LOG_OUTPUT) and dtn's phases
					* (DTN_LOG_PHASE); may be NULL */
	void *payload;
} dtn_local_opts;

/* The lines of a failed build's output kept for dtn_local_result.failed_lines. */
#define DTN_LOCAL_FAILED_LINES 20

typedef struct dtn_local_result {
	const char *engine;      /* "buildah", "podman" or "docker" */
	const char *engine_path; /* the executable that ran */
	const char *image;       /* "dtn/<name>:<identity>" */
	char identity[65];
	bool reused;             /* the image already existed and was not built again */
	int status;              /* the engine's exit status (128 + N: killed by signal N) */
	const char *const *failed_lines; /* a failed build's last output lines (at most
					  * DTN_LOCAL_FAILED_LINES), NULL-terminated; never NULL,
					  * empty after a success */
} dtn_local_result;

/*
 * Builds the image with the engine and tags it dtn/<name>:<identity> (dtn_local_image_name).
 * With opts->if_changed an image already tagged so is reused without a build. Phases and the
 * engine's output go to opts->log as they come. On success, and also when the build itself
 * failed (DTN_EBUILD), *out holds the result, owned by the caller (dtn_local_result_free);
 * otherwise *out is NULL.
 *
 * Errors: DTN_EINVAL (no name, or an image with an error), DTN_ENOTFOUND (no engine), the
 * errors of dtn_builder_identify and dtn_builder_archive for the contexts, DTN_EIO (the build
 * directory, or the engine cannot be started), DTN_EBUILD (the engine failed: err says how, the
 * result has the failing lines), DTN_EINTR (cancelled), DTN_ETIMEOUT, DTN_EUSER (opts->log
 * asked to stop), DTN_ENOMEM. A stopped engine's whole process group is ended (SIGTERM, then
 * SIGKILL after a grace period).
 */
int dtn_build_local(dtn_builder *b, const dtn_image *img, const dtn_local_opts *opts,
		    dtn_local_result **out, dtn_error *err);

/* Frees a result. Accepts NULL. */
void dtn_local_result_free(dtn_local_result *res);

#ifdef __cplusplus
}
#endif

#endif
