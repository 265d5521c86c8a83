/*
 * walk.h - the walk of a context, shared by identify (walk.c), archive (tar.c) and explain
 * (explain.c), so that the three see the same entries in the same order. Internal.
 */
#ifndef DTN_BUILDER_WALK_H
#define DTN_BUILDER_WALK_H

#include <locale.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "builder_internal.h"

struct archive;
struct archive_entry;

/* One entry of the directory being walked. */
typedef struct dtn__entry {
	char *name;
	struct stat st;
	char kind;            /* 'f' file, 'd' directory, 'l' link */
	bool reinclude_only;  /* an excluded directory walked for entries included again */
	bool cached;          /* a file whose digest the cache gave for its listed signature */
	unsigned char digest[DTN__SHA256_LEN];
	int rc;               /* of hashing the file */
	int err_errno;
	bool fetched;         /* archive: read ahead by a pool thread (into data, or failed) */
	char *data;           /* archive: the content read ahead */
} dtn__entry;

typedef struct dtn__walk {
	dtn_builder *b;
	const dtn_context *ctx;
	dtn_context_id *id;
	dtn_error *err;
	const dtn__ignore *root_rules; /* the root's .dockerignore, borrowed; may be NULL */
	dtn__ignore *step_rules;       /* the step's patterns; may be NULL */
	bool *root_used, *step_used;   /* rules that left something out */
	char *root_rel;     /* the context's top relative to its root; NULL: outside the root */
	char *prefix;       /* entry names start with it ("" for the root itself) */
	dtn__buf rel;       /* the current path relative to the top */
	dtn__buf match;     /* scratch for the path relative to the root */
	time_t started;     /* before any file was read, for the cache's racy-time rule */
	/* archive only */
	struct archive *ar;
	struct archive_entry *ae;
	dtn_write_fn write;
	void *payload;
	int write_rc;       /* why the write callback failed */
	dtn__sha256 *sha;
	char *buf;
	dtn__buf pending;   /* directories whose header waits for a first entry inside */
	size_t *pending_ends;
	size_t npending, cappending;
	bool one_pass;      /* archive and identify at once: the warnings of identify too */
	locale_t c_locale;  /* libarchive runs in it, whatever the program's locale */
	bool skip_self;     /* the archive goes to a file: that file is never archived */
	struct stat self;   /* ... its stat (device and inode) */
} dtn__walk;

/* ---- the walk (walk.c) ---- */

/* Latches the walk's first error in w->err and returns its code. */
int dtn__walk_fail(dtn__walk *w, int code, const char *fmt, ...) DTN__PRINTF(3, 4);
/* The same for a failed system call on `name` in the current directory (NULL: the directory). */
int dtn__walk_fail_errno(dtn__walk *w, const char *what, const char *name, int e);
/* The local path of `name` in the current directory, for messages. */
const char *dtn__walk_shown(dtn__walk *w, const char *name, char *buf, size_t size);

/* A function that receives each chunk of a file as it is read. */
typedef int (*dtn__chunk_fn)(dtn__walk *w, const char *data, size_t len);
/*
 * Reads the listed size of the open file fd, hashing it into `digest` (unless sha is NULL: a
 * file whose digest is known) and passing each chunk to `sink` when not NULL. The file must
 * still be the version listed once read. Returns 0, DTN_ECHANGED, DTN_EIO with the errno in
 * *e, or what `sink` returned.
 */
int dtn__walk_read_file(dtn__walk *w, int fd, const struct stat *listed, dtn__sha256 *sha,
			char *buf, dtn__chunk_fn sink, unsigned char digest[DTN__SHA256_LEN], int *e);
/* Opens a listed file without following a link put in its place. */
int dtn__walk_open_listed(int dfd, const char *name);

/*
 * Whether the rules leave out `rel` (relative to the top): 1, 0, or DTN_ENOMEM. *reinclude
 * says whether an excluded directory may still hold entries an exception takes back, so that
 * it must be walked.
 */
int dtn__walk_excluded(dtn__walk *w, const char *rel, bool is_dir, bool *reinclude);
/* `rel` (relative to the top) relative to the root, in w->match; NULL when memory runs out. */
const char *dtn__walk_root_path(dtn__walk *w, const char *rel);
/* Where rule i comes from: "SOURCE:LINE" for a file's line, "SOURCE" for a step's pattern. */
const char *dtn__walk_rule_where(const dtn__ignore *rules, int i, char *buf, size_t size);
/* `path` relative to `root` when it lies inside it ("" for the root itself), else NULL. */
char *dtn__walk_relative_to(const char *root, const char *path, bool *oom);
/* The entry-name prefix of an archive path: normalised, without a leading '/' or "./". */
char *dtn__walk_entry_prefix(const char *archive_path);
/* Reads the context's rules: the root's .dockerignore and the step's patterns. */
int dtn__walk_load_rules(dtn__walk *w);
/* Walks the whole context; its identity in `out`. */
int dtn__walk_context(dtn__walk *w, unsigned char out[DTN__SHA256_LEN]);
void dtn__walk_free(dtn__walk *w);
/* A fresh w->id for the walk's counters. */
int dtn__walk_start_id(dtn__walk *w);
/* Hands w->id to *out with the identity and the rules that left something out. */
int dtn__walk_finish_id(dtn__walk *w, const unsigned char digest[DTN__SHA256_LEN],
			dtn_context_id **out);

/* ---- the archive (tar.c), used by the walk when w->ar is set ---- */

/* The entry name of `rel`: the prefix joined with it, in `out`. */
const char *dtn__tar_entry_name(dtn__walk *w, const char *rel, dtn__buf *out);
int dtn__tar_header(dtn__walk *w, const char *name, const struct stat *st, const char *target);
/* Directory headers wait until something inside them is written, or the directory ends. */
int dtn__tar_push_dir(dtn__walk *w, const char *name, const struct stat *st);
int dtn__tar_flush_dirs(dtn__walk *w);
/* Drops the innermost waiting directory: it stays out of the archive. */
void dtn__tar_pop_dir(dtn__walk *w);
/*
 * The error of a file that could not be read ahead or hashed. `name` is the entry's name when
 * w->rel is still its directory, NULL once w->rel names the entry itself (as while visiting).
 */
int dtn__walk_entry_error(dtn__walk *w, const dtn__entry *en, const char *name);
/* The biggest file that is read ahead whole while archiving. */
#define DTN__READ_AHEAD_FILE (256u * 1024u)

/* One file, written and hashed in one read (or from what was read ahead); dfd < 0: the
 * context's top itself. */
int dtn__tar_file(dtn__walk *w, int dfd, dtn__entry *en, const char *name);

#endif
