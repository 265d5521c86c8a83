/*
 * dtn_build.h - building an image into a Daytona snapshot: its build contexts identified and
 * uploaded to the organization's object storage (unless already there), the snapshot created
 * from the Dockerfile and the contexts' hashes, its build followed with the logs streamed, and
 * the result.
 *
 *     dtn_build_result *res;
 *     int rc = dtn_build_daytona(c, b, img, &(dtn_build_opts){.name = "data-science",
 *                                                             .log = print_line}, &res, &err);
 *     // res->snapshot->state is "active"; on DTN_EBUILD res->failed_lines says why
 *     dtn_build_result_free(res);
 *
 * Every context is identified (dtn_builder_identify) and stored under
 * <organizationId>/<hash>/context.tar; one that is already there is not sent again, and the
 * archive is streamed into the upload as it is made (a file that changes meanwhile aborts the
 * upload). The builder should be made with `for_daytona` set, so that links in a context, which
 * Daytona's runner turns into empty files, are warned about.
 *
 * A snapshot name that already exists is an error (DTN_EEXISTS) unless `if_changed` (reuse it
 * when it is active with the same Dockerfile and context hashes; otherwise replace it) or
 * `replace` (delete it, wait until it is gone, build again) is set.
 */
#ifndef DTN_BUILD_H
#define DTN_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtn_builder.h"
#include "dtn_core.h"
#include "dtn_daytona.h"
#include "dtn_image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dtn_build_opts {
	unsigned version;       /* 0 or 1 */
	const char *name;       /* the snapshot name; required */
	int cpu, gpu, memory, disk; /* 0: the server's defaults */
	const char *region;     /* NULL: the client's target */
	bool dry_run;           /* identify the contexts and make the request; send nothing */
	bool if_changed;        /* reuse an identical active snapshot of that name */
	bool replace;           /* delete an existing snapshot of that name first */
	/* Phases (DTN_LOG_PHASE), states (DTN_LOG_STATE) and the build's output
	 * (DTN_LOG_OUTPUT), as they come. May be NULL. */
	dtn_log_fn log;
	void *payload;
} dtn_build_opts;

/* One build context as the build handled it. */
typedef struct dtn_build_context {
	const char *source;       /* as the step spelled it */
	const char *archive_path;
	char hash[65];
	uint64_t files, bytes, links;
	bool present;             /* it was already in object storage */
	bool uploaded;            /* it was sent by this build */
} dtn_build_context;

/* The last output lines a failed build keeps. */
#define DTN_BUILD_FAILED_LINES 20

typedef struct dtn_build_result {
	const dtn_snapshot *snapshot;  /* the final description; NULL in a dry run */
	bool reused;                   /* an identical snapshot existed and was kept */
	bool replaced;                 /* an existing snapshot of the name was deleted first */
	const char *dockerfile;        /* the Dockerfile sent */
	const char *request;           /* the JSON body of POST /snapshots (sent, or that would be) */
	const dtn_build_context *contexts;
	size_t ncontexts;
	const char *const *failed_lines; /* a failed build's last output lines, NULL-terminated;
					  * never NULL, empty after a success */
} dtn_build_result;

/*
 * Builds `img` into the snapshot opts->name with the client `c` and the builder `b`. On
 * success, and when the build itself failed (DTN_EBUILD), *out is the result, owned by the
 * caller (dtn_build_result_free); otherwise NULL. Errors: DTN_EINVAL (no name, an image with an
 * error), DTN_EEXISTS (the name is taken and neither if_changed nor replace is set), the errors
 * of dtn_builder_identify and dtn_builder_archive (DTN_ECHANGED: a file changed while it was
 * uploaded), object-storage and request errors, DTN_EBUILD (build_failed or error: the message
 * has the server's reason), DTN_ETIMEOUT (the client's deadline), DTN_EINTR, DTN_EUSER.
 */
int dtn_build_daytona(dtn_daytona *c, dtn_builder *b, const dtn_image *img,
		      const dtn_build_opts *opts, dtn_build_result **out, dtn_error *err);

/* Frees a result. Accepts NULL. */
void dtn_build_result_free(dtn_build_result *res);

#ifdef __cplusplus
}
#endif

#endif
