/*
 * cache.h - the per-file content-digest cache of the context hasher. Not installed.
 *
 * Hashing a context needs the SHA-256 of every file's content. Reading 30 000 files again on
 * every run is what makes re-identifying an unchanged tree slow, so the digest of each file is
 * remembered under the file's stat signature: the key is (device, inode), and the entry is only
 * used when size, mtime and ctime (seconds and nanoseconds) are all still the same. Anything that
 * rewrites a file changes its ctime, so a stale digest is never returned for a changed file.
 *
 * The entries live in one binary file, `digests-v1`, in $XDG_CACHE_HOME/dtn (or
 * $HOME/.cache/dtn, or a directory the caller names). The file is loaded whole at open, checked
 * (magic, version, byte order, size, SHA-256 checksum, key order) and ignored when anything is
 * wrong; saving writes a new file and renames it into place, merging under a lock with whatever
 * another process saved in the meantime.
 *
 * Threads: lookups and inserts may run from several threads at once. Open, save and free must
 * not run concurrently with any other call on the same cache.
 */
#ifndef DTN_BUILDER_CACHE_H
#define DTN_BUILDER_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

/* The name of the cache file inside the cache directory. */
#define DTN__CACHE_FILE "digests-v1"
/* Files holding more entries than this are refused as oversized; also the default limit. */
#define DTN__CACHE_MAX_ENTRIES 1000000u
/*
 * An insert is dropped when the file's mtime or ctime is less than this many seconds before the
 * moment hashing started: a change made right after hashing could otherwise leave the same
 * timestamps (coarse kernel clocks, filesystems with 1 s or 2 s granularity) and a stale digest.
 */
#define DTN__CACHE_RACY_SECONDS 2

typedef struct dtn__cache dtn__cache;

/* What identifies one version of one file. */
typedef struct dtn__stat_sig {
	uint64_t dev, ino, size;
	int64_t mtime_s, ctime_s;
	int32_t mtime_ns, ctime_ns;
} dtn__stat_sig;

/* Counters for tests and reports. */
typedef struct dtn__cache_stats {
	uint64_t hits, misses;
	uint64_t loaded;     /* entries read from the file at open */
	uint64_t inserted;   /* entries added or replaced since open */
	uint64_t racy;       /* inserts dropped by the racy-timestamp rule */
	uint64_t saved;      /* entries written by the last save that wrote; 0 if none did */
	uint64_t evicted;    /* entries dropped by saves to stay within the limit */
	bool rejected;       /* a cache file was there at open but was not trusted */
	const char *reject_reason; /* why (static text), or NULL */
} dtn__cache_stats;

/* Fills *sig from a stat result. */
void dtn__stat_sig_from(dtn__stat_sig *sig, const struct stat *st);

/*
 * Opens the cache in `dir`: NULL means the default location ($XDG_CACHE_HOME/dtn when that is
 * an absolute path, else $HOME/.cache/dtn; no cache when neither is set), "" means no cache at
 * all (lookups miss, inserts and saves do nothing). A missing, unreadable, damaged, truncated,
 * foreign or oversized file is treated as empty and replaced by the next save; the directory is
 * only created (mode 0700) when something is saved. *out is the new cache, freed with
 * dtn__cache_free. Errors: DTN_ENOMEM, DTN_EINVAL (out is NULL).
 */
int dtn__cache_open(dtn__cache **out, const char *dir, dtn_error *err);

/*
 * Whether the cache holds a digest for exactly this signature; if so it is copied to `digest`.
 * Any differing field is a miss. Safe from several threads at once; NULL c is a miss.
 */
bool dtn__cache_lookup(dtn__cache *c, const dtn__stat_sig *sig, unsigned char digest[32]);

/*
 * Remembers `digest` for `sig`, replacing an entry for the same file. `hashed_at` is a wall-clock
 * time taken before the content was read (taking it before the stat is fine too); the entry is
 * dropped, and 0 returned, when mtime or ctime is not at least DTN__CACHE_RACY_SECONDS older
 * than that. Safe from several threads at once. Does nothing for a disabled cache.
 * Errors: DTN_ENOMEM (the cache is left as it was).
 */
int dtn__cache_insert(dtn__cache *c, const dtn__stat_sig *sig, const unsigned char digest[32],
		      time_t hashed_at);

/*
 * Writes the cache file if anything changed since open (or since the last save): entries
 * inserted, or entries in use that the file marks as long unused. Under a lock on
 * `digests-v1.lock`, the file on disk is read again if another process replaced it and the two
 * are merged; the result is written to a temporary file and renamed over the old one. When over
 * the limit, the entries least recently used are dropped. Errors: DTN_EIO (the directory or file
 * cannot be written; the old file stays), DTN_ENOMEM.
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

#endif
