/*
 * s3.h - the object storage behind Daytona's push-access: where build contexts are uploaded
 * before a snapshot is created. Internal: not installed.
 *
 * Requests are path-style (<storageUrl>/<bucket>/<key>) and signed by libcurl's AWS SigV4 with
 * the temporary credentials of push-access: the session token in x-amz-security-token and the
 * payload's SHA-256 in x-amz-content-sha256 (a signed payload, never UNSIGNED-PAYLOAD). No
 * message ever contains the secret, the session token or a signature.
 *
 *     dtn__s3 *s3;
 *     dtn__s3_new(&s3, http, &access, err);
 *     dtn__s3_exists(s3, prefix, &found, err);         // ListObjectsV2, max-keys=1
 *     dtn__s3_upload_begin(&u, s3, key, NULL, err);    // then write() the tar as it is made
 *     dtn__s3_upload_write(u, data, len, err); ...
 *     dtn__s3_upload_finish(u, err);                    // PutObject, or multipart completed
 *     dtn__s3_upload_free(u);                           // aborts what was not finished
 */
#ifndef DTN_SNAPSHOTS_S3_H
#define DTN_SNAPSHOTS_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "internal.h"

/* The answer of GET /object-storage/push-access. Strings owned; region NULL when absent. */
typedef struct dtn__push_access {
	char *access_key;
	char *secret;
	char *session_token;
	char *storage_url;
	char *organization_id;
	char *bucket;
	char *region;
} dtn__push_access;

/*
 * Parses the push-access JSON (`len` bytes of `json`). accessKey, secret, sessionToken,
 * storageUrl, organizationId and bucket must be non-empty strings; region is optional. Errors:
 * DTN_EPROTOCOL naming the missing or malformed field (never a value), DTN_ENOMEM. `out` is
 * cleared with dtn__push_access_clear in every case.
 */
int dtn__push_access_parse(dtn__push_access *out, const char *json, size_t len, dtn_error *err);
/* Frees the strings (the secret and token wiped first). */
void dtn__push_access_clear(dtn__push_access *pa);

/*
 * The region requests are signed for: push-access `region` when given; else the region of an
 * AWS endpoint (s3.<region>.amazonaws.com, s3-<region>.amazonaws.com,
 * <bucket>.s3.<region>.amazonaws.com, s3.dualstack.<region>...); else "us-east-1". Written to
 * buf (at least 64 bytes advised); returns buf.
 */
const char *dtn__s3_region(const dtn__push_access *pa, char *buf, size_t size);
/* The region in an AWS S3 endpoint URL, or "" when the URL is not one. Returns buf. */
const char *dtn__s3_region_from_url(const char *url, char *buf, size_t size);

/* "<organizationId>/<hash>/context.tar", the key a build context is stored under. NULL: ENOMEM. */
char *dtn__s3_context_key(const dtn__push_access *pa, const char *hash);
/* "<organizationId>/<hash>/", the prefix whose presence means the context is there. */
char *dtn__s3_context_prefix(const dtn__push_access *pa, const char *hash);

typedef struct dtn__s3 dtn__s3;

/*
 * A client for the push-access bucket over `http` (borrowed: it must outlive the client; its
 * timeouts, retries, observer and cancel flag apply). The credentials are copied. Errors:
 * DTN_EPROTOCOL (a region that cannot be signed for), DTN_EINVAL (no storage URL), DTN_ENOMEM.
 */
int dtn__s3_new(dtn__s3 **out, dtn__http *http, const dtn__push_access *pa, dtn_error *err);
void dtn__s3_free(dtn__s3 *s3);
/* The region the client signs for (borrowed). */
const char *dtn__s3_region_of(const dtn__s3 *s3);

/*
 * Whether at least one object's key starts with `prefix` (ListObjectsV2, max-keys=1). Errors:
 * DTN_EAUTH (403, bad or expired credentials), DTN_ENOTFOUND (no such bucket), DTN_EHTTP,
 * DTN_EPROTOCOL (an answer that is not a listing), transport errors (DTN_ECONNECT, ...).
 */
int dtn__s3_exists(dtn__s3 *s3, const char *prefix, bool *found, dtn_error *err);

/* One PutObject of `len` bytes (Content-Type application/octet-stream). Errors as exists. */
int dtn__s3_put(dtn__s3 *s3, const char *key, const void *data, size_t len, dtn_error *err);

typedef struct dtn__s3_upload_opts {
	int version;              /* 1 */
	size_t part_size;         /* 0 or less than 5 MiB (S3's minimum): 5 MiB, as the SDKs */
	int parallel;             /* parts in flight at once; 0: 4 */
	const char *content_type; /* NULL: application/octet-stream */
} dtn__s3_upload_opts;

typedef struct dtn__s3_upload dtn__s3_upload;

/*
 * A push-style upload of one object whose size is not known in advance. Bytes given to write()
 * are buffered into parts; an object that fits in one part is sent with a single PutObject by
 * finish(); a larger one becomes a multipart upload whose parts are sent as they fill, up to
 * `parallel` at once, so memory stays below (parallel + 1) * part_size. Nothing is sent before
 * the first part is full or finish() is called. `key` is copied. DTN_ENOMEM.
 */
int dtn__s3_upload_begin(dtn__s3_upload **out, dtn__s3 *s3, const char *key,
	const dtn__s3_upload_opts *opts, dtn_error *err);
/*
 * Appends bytes; may wait for a part in flight to finish. On failure the multipart upload is
 * aborted and every later call returns the same code. Errors as dtn__s3_exists, DTN_EINTR,
 * DTN_EINVAL (more than 10000 parts).
 */
int dtn__s3_upload_write(dtn__s3_upload *u, const void *data, size_t len, dtn_error *err);
/* A dtn_write_fn for dtn_builder_archive: payload is the upload; errors latch in the upload
 * (read them with dtn__s3_upload_error). Returns 0 or non-zero to stop the archive. */
int dtn__s3_upload_sink(const void *data, size_t len, void *payload);
/* The first error of the upload (code 0 when none). Borrowed. */
const dtn_error *dtn__s3_upload_error(const dtn__s3_upload *u);
/*
 * Sends what is left and completes the object: PutObject, or the last part and
 * CompleteMultipartUpload. On failure the multipart upload is aborted. Errors as write.
 */
int dtn__s3_upload_finish(dtn__s3_upload *u, dtn_error *err);
/* Stops the parts in flight and aborts the multipart upload if one was started and not
 * completed (even after an interrupt). Later calls fail with DTN_EUSER. */
void dtn__s3_upload_abort(dtn__s3_upload *u);
/* Aborts as dtn__s3_upload_abort when not finished, then frees. NULL is fine. */
void dtn__s3_upload_free(dtn__s3_upload *u);
/* Bytes written so far and the number of parts sent (0 for a single PutObject). */
int64_t dtn__s3_upload_size(const dtn__s3_upload *u);
int dtn__s3_upload_parts(const dtn__s3_upload *u);

#endif
