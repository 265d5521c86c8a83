/*
 * cache.h - the per-file content-digest cache of the context hasher. Not installed.
 *
 * Hashing a context needs the SHA-256 of every file's content. Reading 30 000 files again on
 * every run is what makes re-identifying an unchanged tree slow, so the digest of each file is
 * remembered under the file's stat signature: (device, inode), size, mtime and ctime (seconds
 * and nanoseconds), and only used when all of them are still the same. Anything that rewrites
 * a file changes its ctime, so a stale digest is never returned for a changed file.
 *
 * The digests are kept per directory, as the walk visits them: a directory's entry (its
 * "block") is found by the directory's (device, inode) and holds the digests of the files in
 * it. A walk opens the block of each directory it enters (dtn__cache_dir_open), looks its files
 * up, tells which files the directory holds and which digests it computed, and closes it
 * (dtn__cache_dir_close), which stores the directory's new block when anything changed.
 *
 * Memory does not grow with the number of files: the cache file, `digests-v2` in
 * $XDG_CACHE_HOME/dtn (or $HOME/.cache/dtn, or a directory the caller names), is read one
 * directory at a time, and blocks stored in a run are held in memory only up to a budget
 * (DTN__CACHE_SPILL_BYTES), then merged into the file, as dtn__cache_save does at the end. Every
 * part of the file is checked before use (header, index pages and each block carry a SHA-256)
 * and a damaged part is ignored and dropped by the next save, never trusted. Saving writes a
 * new file and renames it into place, merging under a lock with whatever another process saved
 * in the meantime.
 *
 * Threads: every call on one cache may come from several threads at once, each
 * dtn__cache_dir being used by one thread at a time; free must not run concurrently with any
 * other call on the same cache.
 */
#ifndef DTN_BUILDER_CACHE_H
#define DTN_BUILDER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

/* The name of the cache file inside the cache directory. */
#define DTN__CACHE_FILE "digests-v2"
/* The file of the earlier format, removed by saves. */
#define DTN__CACHE_OLD_FILE "digests-v1"
/* Files holding more entries than this are refused as oversized; also the default limit. */
#define DTN__CACHE_MAX_ENTRIES 1000000u
/* Blocks stored in a run are merged into the file once they take this much memory. */
#define DTN__CACHE_SPILL_BYTES (4u << 20)
/*
 * A new digest is not kept when the file's mtime or ctime is less than this many seconds
 * before the moment hashing started: a change made right after hashing could otherwise leave
 * the same timestamps (coarse kernel clocks, filesystems with 1 s or 2 s granularity) and a
 * stale digest.
 */
#define DTN__CACHE_RACY_SECONDS 2

typedef struct dtn__cache dtn__cache;

/* What identifies one version of one file. */
typedef struct dtn__stat_sig {
	uint64_t dev, ino, size;
	int64_t mtime_s, ctime_s;
	int32_t mtime_ns, ctime_ns;
} dtn__stat_sig;

/* One file's entry in a block (defined in cache.c). */
struct dtn__cache_rec;

/* One directory's digests while a walk is in it. Filled by dtn__cache_dir_open. */
typedef struct dtn__cache_dir {
	uint64_t dev, ino;            /* the directory's key */
	unsigned char *block;         /* the stored block: a header, then the records */
	size_t block_cap;
	const struct dtn__cache_rec *old; /* the stored records, by inode */
	size_t nold;
	struct dtn__cache_rec *fresh; /* digests this walk computed */
	size_t nfresh, capfresh;
	uint64_t *listed;             /* inodes of the files the directory holds */
	size_t nlisted, caplisted;
	uint64_t base_gen;            /* what the stored block was: its generation and sum */
	unsigned char base_sum[32];
	bool has_base;
	bool off;                     /* no cache: lookups miss, nothing is stored */
	bool failed;                  /* memory ran out on the way: nothing is stored */
} dtn__cache_dir;

/* Counters for tests and reports. */
typedef struct dtn__cache_stats {
	uint64_t hits, misses;
	uint64_t loaded;     /* entries in the file at open */
	uint64_t inserted;   /* entries added or replaced since open */
	uint64_t racy;       /* new digests not kept by the racy-timestamp rule */
	uint64_t saved;      /* entries in the file the last write produced; 0 if none did */
	uint64_t writes;     /* files written: by saves, and by merges when the budget filled */
	uint64_t evicted;    /* entries dropped by writes to stay within the limit */
	uint64_t damaged;    /* index pages and blocks found damaged and ignored */
	bool rejected;       /* a cache file was there at open but was not trusted */
	const char *reject_reason; /* why (static text), or NULL */
} dtn__cache_stats;

/* Fills *sig from a stat result. */
void dtn__stat_sig_from(dtn__stat_sig *sig, const struct stat *st);

/*
 * Opens the cache in `dir`: NULL means the default location ($XDG_CACHE_HOME/dtn when that is
 * an absolute path, else $HOME/.cache/dtn; no cache when neither is set), "" means no cache at
 * all (lookups miss, nothing is stored or saved). A missing, unreadable, damaged, truncated,
 * foreign or oversized file is treated as empty and replaced by the next save; the directory is
 * only created (mode 0700) when something is saved. *out is the new cache, freed with
 * dtn__cache_free. Errors: DTN_ENOMEM, DTN_EINVAL (out is NULL).
 */
int dtn__cache_open(dtn__cache **out, const char *dir, dtn_error *err);

/*
 * Reads the block of the directory (dev, ino) into *d: what this run stored for it, else what
 * the file holds; nothing when there is none or it is damaged. `c` may be NULL (no cache).
 * Always leaves *d ready for the calls below. Errors: DTN_ENOMEM (d then finds nothing and
 * stores nothing).
 */
int dtn__cache_dir_open(dtn__cache *c, dtn__cache_dir *d, uint64_t dev, uint64_t ino);

/*
 * Whether the block holds a digest for exactly this signature; if so it is copied to `digest`.
 * Any differing field is a miss (a file on another device than its directory always is).
 */
bool dtn__cache_dir_lookup(dtn__cache *c, const dtn__cache_dir *d, const dtn__stat_sig *sig,
			   unsigned char digest[32]);

/*
 * Says that the directory holds a regular file with this inode, whether or not it is looked
 * up or hashed (a file the ignore rules leave out too): stored digests of inodes no longer
 * listed are dropped when the block is closed. Errors: DTN_ENOMEM.
 */
int dtn__cache_dir_listed(dtn__cache_dir *d, uint64_t ino);

/* Gives the digest computed for a file of the directory. Errors: DTN_ENOMEM. */
int dtn__cache_dir_put(dtn__cache_dir *d, const dtn__stat_sig *sig, const unsigned char digest[32]);

/*
 * Stores the directory's new block when it differs from the stored one: the digests put (but
 * not those of files whose mtime or ctime is not at least DTN__CACHE_RACY_SECONDS older than
 * `hashed_at`, a wall-clock time taken before the contents were read), and the stored ones of
 * files still listed. When the blocks stored take more than the budget, they are merged into
 * the file at once; a failure to write is reported by the next dtn__cache_save. Frees what d
 * holds. Errors: DTN_ENOMEM (nothing is stored).
 */
int dtn__cache_dir_close(dtn__cache *c, dtn__cache_dir *d, time_t hashed_at);

/* Frees what d holds without storing anything. */
void dtn__cache_dir_free(dtn__cache_dir *d);

/*
 * Writes the cache file if anything was stored since open (or since the last write), or
 * damage was found in it. Under a lock on `digests-v2.lock`, the file on disk (another
 * process may have replaced it) and the stored blocks are merged, in one pass and bounded
 * memory, into a temporary file renamed over the old one. When over the limit, the directories
 * least recently used are dropped. Errors: DTN_EIO (the directory or file cannot be written;
 * the old file stays), DTN_ENOMEM.
 */
int dtn__cache_save(dtn__cache *c, dtn_error *err);

/* Frees the cache without saving. Accepts NULL. */
void dtn__cache_free(dtn__cache *c);

/* The cache file's path (borrowed), for messages; NULL for a disabled cache. */
const char *dtn__cache_path(const dtn__cache *c);

/* Copies the counters. */
void dtn__cache_stats_get(const dtn__cache *c, dtn__cache_stats *out);

/* Sets the most entries a save keeps (1 ... DTN__CACHE_MAX_ENTRIES); for tests and tuning. */
void dtn__cache_set_limit(dtn__cache *c, size_t max_entries);

/* Sets the memory stored blocks may take before they are merged into the file; for tests. */
void dtn__cache_set_budget(dtn__cache *c, size_t bytes);

#endif
