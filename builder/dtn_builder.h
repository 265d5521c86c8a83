/*
 * dtn_builder.h - build contexts: the files a context holds (after the ignore rules), their
 * identity, and their archive.
 *
 *     dtn_builder *b;
 *     dtn_context_id *id;
 *     dtn_builder_new(&b, NULL, &err);
 *     dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err);   // id->hash
 *     dtn_builder_archive(b, dtn_image_context(img, 0), id->hash, write, payload, &err);
 *
 * A context's files are walked depth first, each directory's entries in byte order of their
 * names. Links are recorded as links and never followed, except a context whose source is
 * itself a link (a file named by a step), which is followed if it stays inside the context's
 * root. Sockets, FIFOs and devices are skipped with a warning. Which files are left out is
 * decided by the `.dockerignore` file in the context's root (paths relative to the root) and by
 * the step's own ignore patterns (paths relative to the context's source), with the rules of
 * `docker build`.
 *
 * The identity is a SHA-256 Merkle digest: every file is summarised by its type, permission
 * bits, size and the digest of its content (a link by its target), every directory by the
 * digest of its sorted entries' summaries, and the context by its archive path and the summary
 * of its top. Modification times, owners and where the tree is checked out do not change it;
 * content, names, permission bits and link targets do. Content digests are cached by stat
 * signature, so an unchanged tree is identified again without reading its files; the cache is
 * read and written one directory at a time, so its memory does not grow with the tree.
 *
 * The archive is a deterministic tar: entries named by archive path in walk order, owner 0:0
 * without names, modification time 0, permission bits kept, PAX headers where names are long.
 * It is streamed through a callback and never held in memory whole.
 */
#ifndef DTN_BUILDER_H
#define DTN_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtn_core.h"
#include "dtn_image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dtn_builder dtn_builder;

/* Receives one warning (one line, no newline). */
typedef void (*dtn_warn_fn)(const char *message, void *payload);

typedef struct dtn_builder_opts {
	unsigned version;      /* 0 or DTN_OPTS_VERSION */
	const char *cache_dir; /* NULL: $XDG_CACHE_HOME/dtn, else ~/.cache/dtn; "": no cache */
	unsigned threads;      /* threads that hash files; 0: one per online CPU */
	bool for_daytona;      /* warn about links: Daytona's runner turns them into empty files */
	dtn_warn_fn warn;      /* may be NULL */
	void *payload;
} dtn_builder_opts;

/*
 * A new builder; `opts` may be NULL. A damaged or foreign cache file is ignored, not an error.
 * Errors: DTN_ENOMEM, DTN_EIO (the cache directory cannot be made).
 */
int dtn_builder_new(dtn_builder **out, const dtn_builder_opts *opts, dtn_error *err);

/* Writes the digest cache if it changed. Errors: DTN_EIO, DTN_ENOMEM. */
int dtn_builder_save_cache(dtn_builder *b, dtn_error *err);

/* Frees the builder (without saving the cache). Accepts NULL. */
void dtn_builder_free(dtn_builder *b);

/* What identify found. */
typedef struct dtn_context_id {
	char hash[65];          /* the identity: 64 lower-case hex digits */
	uint64_t files;         /* regular files */
	uint64_t dirs;          /* directories, the top one included */
	uint64_t links;         /* symbolic links */
	uint64_t bytes;         /* bytes of file content */
	uint64_t excluded;      /* paths the ignore rules left out (an excluded directory is one) */
	uint64_t skipped;       /* sockets, FIFOs and devices left out */
	uint64_t cache_hits;    /* files whose digest came from the cache */
	const char *const *excluded_by; /* "SOURCE:LINE PATTERN" of each rule that left something
					 * out, NULL-terminated; never NULL */
} dtn_context_id;

/*
 * Walks the context and computes its identity. On success *out belongs to the caller
 * (dtn_context_id_free). Errors: DTN_ENOTFOUND (the source vanished), DTN_EOUTSIDE (the source
 * is a link leading outside the root), DTN_EINVAL (a malformed ignore pattern, or a file the
 * ignore rules exclude named on its own), DTN_EIO, DTN_ENOMEM; err names the path.
 */
int dtn_builder_identify(dtn_builder *b, const dtn_context *ctx, dtn_context_id **out,
			 dtn_error *err);

void dtn_context_id_free(dtn_context_id *id);

/* Receives archive bytes; returns 0 to go on, non-zero to stop (DTN_EUSER). */
typedef int (*dtn_write_fn)(const void *data, size_t len, void *payload);

/*
 * A dtn_write_fn that writes all `len` bytes to the file descriptor *(int *)payload, again
 * after a signal interrupts; -1 with errno set when a write fails (so an archive written with
 * it stops with DTN_EUSER, and errno says why).
 */
int dtn_write_fd(const void *data, size_t len, void *payload);

/*
 * Streams the context's tar archive to `write`. Every file is read whole and checked to be
 * the version listed, before and after, and hashed on the way unless the digest cache holds
 * its digest for that very version: a file that changes while it is read, or content that no
 * longer has the identity `hash` (NULL: not checked), fails with DTN_ECHANGED naming the file
 * or the context — the bytes written so far must then be thrown away. Other errors as
 * dtn_builder_identify, and DTN_EUSER.
 */
int dtn_builder_archive(dtn_builder *b, const dtn_context *ctx, const char *hash,
			dtn_write_fn write, void *payload, dtn_error *err);

/*
 * Archives the context and identifies it in the same walk, each file read once: for archives
 * that are named by their identity once written (write them somewhere temporary, then name
 * them by (*out)->hash). *out as dtn_builder_identify; errors as dtn_builder_archive.
 */
int dtn_builder_archive_identify(dtn_builder *b, const dtn_context *ctx, dtn_write_fn write,
				 void *payload, dtn_context_id **out, dtn_error *err);

/*
 * Says whether `path` (absolute, or relative to the current directory) would be in the
 * context's archive and which rule decided, as one line in fresh memory (*out, freed with
 * dtn_free). When the path is not inside the context's source, returns 0 with *out NULL.
 * Errors: DTN_EINVAL (a malformed ignore pattern), DTN_ENOMEM.
 */
int dtn_builder_explain(dtn_builder *b, const dtn_context *ctx, const char *path, char **out,
			dtn_error *err);

#ifdef __cplusplus
}
#endif

#endif
