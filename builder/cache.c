/*
 * cache.c - per-file content digests remembered under stat signatures (see cache.h).
 *
 * The cache file is written in the byte order of the machine that wrote it, since it never
 * leaves that machine; a file of the other order is refused like any foreign file:
 *
 *   header, 80 bytes: magic "dtndgst\n", version 1, byte-order tag 0x01020304, record size 88,
 *                     flags 0, entry count, generation, reserved, SHA-256 of the first 48 header
 *                     bytes followed by every record
 *   records, 88 bytes each, strictly increasing by (dev, ino): the stat signature, the content
 *                     digest, and the generation of the last save that found the entry in use
 *
 * Loading is a read of the whole file, a checksum and a pass over the keys; the records are then
 * used where they lie, so lookups are a binary search with no lock. Inserts of this run go to a
 * small hash table behind a mutex and are merged with the loaded records when saving.
 *
 * The generation counts saves. Entries found or inserted in a run get the generation of that
 * run's save, so when the file grows past its limit the entries unused for the most saves go
 * first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cache.h"
#include "hash.h"

#define MAGIC "dtndgst\n"
#define VERSION 1u
#define ORDER_TAG 0x01020304u
/*
 * A hit on an entry whose generation is this many saves old makes the next save write the file
 * even when nothing was inserted, so that entries in steady use are not evicted as unused.
 */
#define REFRESH_GENS 8
/* A temporary file older than this, found while saving, was left by a process that died. */
#define STALE_TEMP_SECONDS 3600
/* The file is read and summed in pieces of this size. */
#define READ_PIECE (256u << 10)

typedef struct rec {
	dtn__stat_sig sig;
	unsigned char digest[32];
	uint64_t gen;
} rec;

typedef struct header {
	char magic[8];
	uint32_t version, order, recsize, flags;
	uint64_t count, gen, reserved;
	unsigned char sum[32];
} header;

_Static_assert(sizeof(dtn__stat_sig) == 48, "stat signature has padding");
_Static_assert(sizeof(rec) == 88, "record has padding");
_Static_assert(sizeof(header) == 80, "header has padding");
_Static_assert(sizeof(header) % _Alignof(rec) == 0, "records after the header are misaligned");

#define SUMMED offsetof(header, sum)

/* Sorted records in one block that leaves room for the header in front, as in the file. */
typedef struct table {
	void *block;
	rec *recs;
	size_t n;
	uint64_t gen;
	unsigned char sum[32];
} table;

/* Records inserted since the last save, with an open-addressing index (slot = position + 1). */
typedef struct side {
	rec *recs;
	size_t n, cap;
	uint32_t *slots;
	size_t nslots;
} side;

struct dtn__cache {
	char *dir, *path, *lock_path;  /* all NULL when the cache is disabled */
	table t;                       /* what was loaded (or last saved); read without a lock */
	atomic_uchar *used;            /* per record of t: a lookup found it */
	pthread_mutex_t mu;            /* guards s and dirty */
	side s;
	atomic_size_t side_n;          /* s.n, so lookups skip the lock while s is empty */
	atomic_bool refresh;
	bool dirty;
	size_t limit;
	atomic_uint_least64_t hits, misses, racy;
	dtn__cache_stats st;           /* the other counters */
};

void dtn__stat_sig_from(dtn__stat_sig *sig, const struct stat *st)
{
	memset(sig, 0, sizeof(*sig));
	sig->dev = (uint64_t)st->st_dev;
	sig->ino = (uint64_t)st->st_ino;
	sig->size = (uint64_t)st->st_size;
	sig->mtime_s = (int64_t)st->st_mtim.tv_sec;
	sig->mtime_ns = (int32_t)st->st_mtim.tv_nsec;
	sig->ctime_s = (int64_t)st->st_ctim.tv_sec;
	sig->ctime_ns = (int32_t)st->st_ctim.tv_nsec;
}

static int key_cmp(const dtn__stat_sig *a, const dtn__stat_sig *b)
{
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return 0;
}

static int rec_cmp(const void *a, const void *b)
{
	return key_cmp(&((const rec *)a)->sig, &((const rec *)b)->sig);
}

static bool sig_equal(const dtn__stat_sig *a, const dtn__stat_sig *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
	       a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* The record with sig's key, or NULL; *pos is its index. */
static const rec *table_find(const table *t, const dtn__stat_sig *sig, size_t *pos)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(&t->recs[mid].sig, sig);

		if (c == 0) {
			*pos = mid;
			return &t->recs[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A table with room for n records; its records are uninitialised. */
static int table_alloc(table *t, size_t n)
{
	memset(t, 0, sizeof(*t));
	if (n > (SIZE_MAX - sizeof(header)) / sizeof(rec))
		return DTN_ENOMEM;
	if (!(t->block = dtn__malloc(sizeof(header) + n * sizeof(rec))))
		return DTN_ENOMEM;
	t->recs = (rec *)((char *)t->block + sizeof(header));
	return 0;
}

static void table_free(table *t)
{
	dtn__free(t->block);
	memset(t, 0, sizeof(*t));
}

/* ---- the side table ---- */

static size_t key_hash(const dtn__stat_sig *k)
{
	uint64_t h = k->ino * 0x9e3779b97f4a7c15u ^ (k->dev + 0x632be59bd9b4e019u) * 0xc2b2ae3d27d4eb4fu;

	return (size_t)(h ^ (h >> 29));
}

/* The slot holding k's key, or the empty slot where it would go. */
static size_t side_slot(const side *s, const dtn__stat_sig *k)
{
	size_t mask = s->nslots - 1, i = key_hash(k) & mask;

	while (s->slots[i] && key_cmp(&s->recs[s->slots[i] - 1].sig, k) != 0)
		i = (i + 1) & mask;
	return i;
}

static void side_reindex(side *s)
{
	if (!s->nslots)
		return;
	memset(s->slots, 0, s->nslots * sizeof(*s->slots));
	for (size_t i = 0; i < s->n; i++)
		s->slots[side_slot(s, &s->recs[i].sig)] = (uint32_t)(i + 1);
}

/* Makes room for one more record, keeping the index at most half full. */
static int side_reserve(side *s)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		rec *r;

		if (cap > UINT32_MAX - 1 || !(r = dtn__realloc(s->recs, cap * sizeof(*r))))
			return DTN_ENOMEM;
		s->recs = r;
		s->cap = cap;
	}
	if ((s->n + 1) * 2 > s->nslots) {
		size_t nslots = s->nslots ? s->nslots * 2 : 512;
		uint32_t *slots = dtn__calloc(nslots, sizeof(*slots));

		if (!slots)
			return DTN_ENOMEM;
		dtn__free(s->slots);
		s->slots = slots;
		s->nslots = nslots;
		side_reindex(s);
	}
	return 0;
}

static const rec *side_find(const side *s, const dtn__stat_sig *k)
{
	uint32_t slot;

	if (!s->nslots)
		return NULL;
	slot = s->slots[side_slot(s, k)];
	return slot ? &s->recs[slot - 1] : NULL;
}

/* Adds r or replaces the record with its key. */
static int side_put(side *s, const rec *r)
{
	size_t i;
	int rc;

	if ((rc = side_reserve(s)) < 0)
		return rc;
	i = side_slot(s, &r->sig);
	if (s->slots[i]) {
		s->recs[s->slots[i] - 1] = *r;
		return 0;
	}
	s->recs[s->n++] = *r;
	s->slots[i] = (uint32_t)s->n;
	return 0;
}

static void side_free(side *s)
{
	dtn__free(s->recs);
	dtn__free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ---- reading and checking the file ---- */

static ssize_t read_at(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * A SHA-256 context that has taken in the summed part of the header, or NULL. A failure of
 * libcrypto is reported as DTN_ENOMEM, which is what it amounts to in practice.
 */
static dtn__sha256 *sum_begin(const header *h)
{
	dtn__sha256 *s = dtn__sha256_new();

	if (s && (dtn__sha256_init(s) < 0 || dtn__sha256_update(s, h, SUMMED) < 0)) {
		dtn__sha256_free(s);
		return NULL;
	}
	return s;
}

static int sum_end(dtn__sha256 *s, unsigned char out[32])
{
	int rc = dtn__sha256_final(s, out);

	dtn__sha256_free(s);
	return rc < 0 ? DTN_ENOMEM : 0;
}

static int checksum(unsigned char out[32], const header *h, const rec *recs, size_t n)
{
	dtn__sha256 *s = sum_begin(h);

	if (!s || dtn__sha256_update(s, recs, n * sizeof(rec)) < 0) {
		dtn__sha256_free(s);
		return DTN_ENOMEM;
	}
	return sum_end(s, out);
}

/* Why the header of a file of `size` bytes is not to be trusted, or NULL. */
static const char *header_problem(const header *h, uint64_t size)
{
	if (memcmp(h->magic, MAGIC, sizeof(h->magic)) != 0)
		return "is not a dtn digest cache";
	if (h->order != ORDER_TAG)
		return "was written with another byte order";
	if (h->version != VERSION)
		return "has an unknown format version";
	if (h->recsize != sizeof(rec))
		return "has an unknown record size";
	if (h->count > DTN__CACHE_MAX_ENTRIES)
		return "holds too many entries";
	if (size < sizeof(header) + h->count * sizeof(rec))
		return "is truncated";
	if (size > sizeof(header) + h->count * sizeof(rec))
		return "has bytes after its last entry";
	return NULL;
}

static bool keys_increase(const table *t)
{
	for (size_t i = 1; i < t->n; i++)
		if (key_cmp(&t->recs[i - 1].sig, &t->recs[i].sig) >= 0)
			return false;
	return true;
}

/*
 * Reads the records in pieces and sums each piece while it is still in the processor's cache,
 * which halves the cost of the checksum on a large file. A short read leaves *why set.
 */
static int read_summed(int fd, const header *h, table *t, const char **why)
{
	size_t len = t->n * sizeof(rec), done = 0;
	char *dst = (char *)t->recs;
	dtn__sha256 *s = sum_begin(h);

	if (!s)
		return DTN_ENOMEM;
	while (done < len) {
		size_t piece = len - done < READ_PIECE ? len - done : READ_PIECE;

		if (read_at(fd, dst + done, piece, (off_t)(sizeof(header) + done)) != (ssize_t)piece) {
			*why = "is truncated";
			dtn__sha256_free(s);
			return 0;
		}
		if (dtn__sha256_update(s, dst + done, piece) < 0) {
			dtn__sha256_free(s);
			return DTN_ENOMEM;
		}
		done += piece;
	}
	return sum_end(s, t->sum);
}

/* Reads the records after the checked header h into a new table t. */
static int load_body(int fd, const header *h, table *t, const char **why)
{
	int rc;

	if ((rc = table_alloc(t, (size_t)h->count)) < 0)
		return rc;
	t->n = (size_t)h->count;
	t->gen = h->gen;
	memcpy(t->block, h, sizeof(*h));
	if ((rc = read_summed(fd, h, t, why)) < 0) {
		table_free(t);
		return rc;
	}
	if (!*why && memcmp(t->sum, h->sum, sizeof(t->sum)) != 0)
		*why = "fails its checksum";
	if (!*why && !keys_increase(t))
		*why = "has entries out of order";
	if (*why)
		table_free(t);
	return 0;
}

/*
 * Loads the cache file open at fd into t. A file not to be trusted leaves t empty and says why
 * in *why. When the file's checksum is `known` (the file already in memory), t is left empty and
 * *same set. Returns 0 or DTN_ENOMEM.
 */
static int load_fd(int fd, table *t, const unsigned char *known, bool *same, const char **why)
{
	struct stat st;
	header h;

	memset(t, 0, sizeof(*t));
	*same = false;
	if (fstat(fd, &st) < 0) {
		*why = "cannot be read";
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "is not a regular file";
		return 0;
	}
	if ((uint64_t)st.st_size > sizeof(header) + DTN__CACHE_MAX_ENTRIES * (uint64_t)sizeof(rec)) {
		*why = "is too large";
		return 0;
	}
	if (read_at(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		*why = st.st_size == 0 ? "is empty" : "is truncated";
		return 0;
	}
	if ((*why = header_problem(&h, (uint64_t)st.st_size)))
		return 0;
	if (known && memcmp(h.sum, known, sizeof(h.sum)) == 0) {
		*same = true;
		return 0;
	}
	return load_body(fd, &h, t, why);
}

/* Opens the cache file for reading: -1 with *why NULL when there is none. */
static int open_file(const char *path, const char **why)
{
	/* O_NONBLOCK: a FIFO put in the file's place must not hang us */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	*why = NULL;
	if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
		*why = "cannot be opened";
	return fd;
}

static int load_path(dtn__cache *c)
{
	const char *why = NULL;
	bool same;
	int fd, rc;

	if ((fd = open_file(c->path, &why)) < 0)
		goto out;
	rc = load_fd(fd, &c->t, NULL, &same, &why);
	close(fd);
	if (rc < 0)
		return rc;
	if (!(c->used = dtn__calloc(c->t.n ? c->t.n : 1, sizeof(*c->used))))
		return DTN_ENOMEM;
	c->st.loaded = c->t.n;
out:
	c->st.rejected = why != NULL;
	c->st.reject_reason = why;
	return 0;
}

/* ---- opening ---- */

/* The directory the caller named, or the default one; NULL in *out when there is none. */
static int choose_dir(char **out, const char *dir)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	size_t len;

	*out = NULL;
	if (dir)
		*out = dtn__strdup(dir);
	else if (xdg && xdg[0] == '/') /* the XDG rules ignore relative paths */
		*out = dtn__aprintf("%s/dtn", xdg);
	else if (home && home[0])
		*out = dtn__aprintf("%s/.cache/dtn", home);
	else
		return 0;
	if (!*out)
		return DTN_ENOMEM;
	len = strlen(*out);
	while (len > 1 && (*out)[len - 1] == '/')
		(*out)[--len] = '\0';
	return 0;
}

static int set_paths(dtn__cache *c, const char *dir)
{
	int rc;

	if (dir && !dir[0])
		return 0;
	if ((rc = choose_dir(&c->dir, dir)) < 0 || !c->dir)
		return rc;
	if (!(c->path = dtn__aprintf("%s/%s", strcmp(c->dir, "/") ? c->dir : "", DTN__CACHE_FILE)) ||
	    !(c->lock_path = dtn__aprintf("%s.lock", c->path)))
		return DTN_ENOMEM;
	return 0;
}

int dtn__cache_open(dtn__cache **out, const char *dir, dtn_error *err)
{
	dtn__cache *c;
	int rc;

	if (!out)
		return dtn__error_set(err, DTN_EINVAL, "no place for the digest cache handle");
	*out = NULL;
	if (!(c = dtn__calloc(1, sizeof(*c))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory opening the digest cache");
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		dtn__free(c);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory opening the digest cache");
	}
	c->limit = DTN__CACHE_MAX_ENTRIES;
	atomic_init(&c->side_n, 0);
	atomic_init(&c->refresh, false);
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	atomic_init(&c->racy, 0);
	if ((rc = set_paths(c, dir)) < 0 || (c->path && (rc = load_path(c)) < 0)) {
		dtn__cache_free(c);
		return dtn__error_set(err, rc, "out of memory opening the digest cache");
	}
	*out = c;
	return 0;
}

/* ---- lookups and inserts ---- */

static void mark_used(dtn__cache *c, size_t i)
{
	if (!atomic_load_explicit(&c->used[i], memory_order_relaxed))
		atomic_store_explicit(&c->used[i], 1, memory_order_relaxed);
	if (c->t.recs[i].gen + REFRESH_GENS < c->t.gen &&
	    !atomic_load_explicit(&c->refresh, memory_order_relaxed))
		atomic_store_explicit(&c->refresh, true, memory_order_relaxed);
}

static bool side_lookup(dtn__cache *c, const dtn__stat_sig *sig, unsigned char digest[32])
{
	const rec *r;
	bool hit = false;

	pthread_mutex_lock(&c->mu);
	if ((r = side_find(&c->s, sig)) && sig_equal(&r->sig, sig)) {
		memcpy(digest, r->digest, 32);
		hit = true;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

bool dtn__cache_lookup(dtn__cache *c, const dtn__stat_sig *sig, unsigned char digest[32])
{
	const rec *r;
	size_t i;
	bool hit = false;

	if (!c)
		return false;
	if ((r = table_find(&c->t, sig, &i)) && sig_equal(&r->sig, sig)) {
		memcpy(digest, r->digest, 32);
		mark_used(c, i);
		hit = true;
	} else if (atomic_load_explicit(&c->side_n, memory_order_acquire) > 0) {
		hit = side_lookup(c, sig, digest);
	}
	atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
	return hit;
}

/*
 * The racy-timestamp rule. A file changed again after its content was read keeps its old
 * signature if the change lands in the same timestamp tick, and the cache would then hand out
 * the old digest for new content. Only files whose mtime and ctime are safely older than the
 * moment hashing began are kept: any later change then gets a visibly later timestamp, even on
 * filesystems that round times to 2 s. ctime matters most, as it cannot be set back.
 */
static bool is_racy(const dtn__stat_sig *sig, time_t hashed_at)
{
	int64_t limit = (int64_t)hashed_at - DTN__CACHE_RACY_SECONDS;

	return sig->mtime_s >= limit || sig->ctime_s >= limit;
}

int dtn__cache_insert(dtn__cache *c, const dtn__stat_sig *sig, const unsigned char digest[32],
		      time_t hashed_at)
{
	const rec *old;
	rec r;
	size_t i;
	int rc;

	if (!c || !c->path)
		return 0;
	if (is_racy(sig, hashed_at)) {
		atomic_fetch_add_explicit(&c->racy, 1, memory_order_relaxed);
		return 0;
	}
	/* the same entry again is no change, and must not cost a save */
	if ((old = table_find(&c->t, sig, &i)) && sig_equal(&old->sig, sig) &&
	    memcmp(old->digest, digest, 32) == 0) {
		mark_used(c, i);
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.sig = *sig;
	memcpy(r.digest, digest, 32);
	pthread_mutex_lock(&c->mu);
	if ((rc = side_put(&c->s, &r)) == 0) {
		atomic_store_explicit(&c->side_n, c->s.n, memory_order_release);
		c->dirty = true;
		c->st.inserted++;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- saving ---- */

/* Whether the directory p exists now, creating it (mode 0700) when it does not. */
static bool ensure_dir(const char *p)
{
	struct stat st;
	int e;

	if (mkdir(p, 0700) == 0)
		return true;
	e = errno;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
		return true;
	errno = e;
	return false;
}

/* Creates dir and its missing parents. */
static int make_dirs(const char *dir, dtn_error *err)
{
	char *p = dtn__strdup(dir);
	int rc = 0;

	if (!p)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory saving the digest cache");
	for (char *s = p + 1;; s++) {
		char at = *s;

		if (at && at != '/')
			continue;
		*s = '\0';
		if (!ensure_dir(p)) {
			rc = dtn__error_set(err, DTN_EIO, "cannot create the cache directory %s: %s",
					    p, errno == EEXIST ? "not a directory" : strerror(errno));
			break;
		}
		*s = at;
		if (!at)
			break;
	}
	dtn__free(p);
	return rc;
}

/* An exclusive lock on the lock file, or -1 when it cannot be had (saving then goes on). */
static int take_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	while (fd >= 0 && flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	return fd;
}

/* The file as it is on disk now: *same when it is still the one in memory. */
static int reread(dtn__cache *c, table *disk, bool *same)
{
	const char *why;
	int fd, rc;

	*same = false;
	memset(disk, 0, sizeof(*disk));
	if ((fd = open_file(c->path, &why)) < 0)
		return 0;
	rc = load_fd(fd, disk, c->t.block ? c->t.sum : NULL, same, &why);
	close(fd);
	return rc;
}

/* Merges two sorted record arrays into a new table; on equal keys b's record wins. */
static int merge(table *out, const rec *a, size_t na, const rec *b, size_t nb)
{
	size_t i = 0, j = 0, k = 0;
	int rc;

	if ((rc = table_alloc(out, na + nb)) < 0)
		return rc;
	while (i < na || j < nb) {
		int cmp = i == na ? 1 : j == nb ? -1 : key_cmp(&a[i].sig, &b[j].sig);

		if (cmp < 0) {
			out->recs[k++] = a[i++];
			continue;
		}
		if (cmp == 0)
			i++;
		out->recs[k++] = b[j++];
	}
	out->n = k;
	return 0;
}

/* The loaded records that lookups found, in their sorted order. */
static int used_records(const dtn__cache *c, table *out)
{
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < c->t.n; i++)
		n += atomic_load_explicit(&c->used[i], memory_order_relaxed) != 0;
	if ((rc = table_alloc(out, n)) < 0)
		return rc;
	for (size_t i = 0; i < c->t.n; i++)
		if (atomic_load_explicit(&c->used[i], memory_order_relaxed))
			out->recs[out->n++] = c->t.recs[i];
	return 0;
}

/*
 * What to write: the records in memory (loaded and inserted, those in use stamped with the new
 * generation) over the file on disk when another process replaced it since we read it.
 */
static int combine(dtn__cache *c, const table *disk, bool same, table *out)
{
	uint64_t gen = (disk->gen > c->t.gen ? disk->gen : c->t.gen) + 1;
	table used = {0}, mine = {0};
	int rc;

	for (size_t i = 0; i < c->t.n; i++)
		if (atomic_load_explicit(&c->used[i], memory_order_relaxed))
			c->t.recs[i].gen = gen;
	for (size_t i = 0; i < c->s.n; i++)
		c->s.recs[i].gen = gen;
	if (same) {
		rc = merge(out, c->t.recs, c->t.n, c->s.recs, c->s.n);
		goto out;
	}
	if ((rc = used_records(c, &used)) < 0 ||
	    (rc = merge(&mine, used.recs, used.n, c->s.recs, c->s.n)) < 0)
		goto out;
	rc = merge(out, disk->recs, disk->n, mine.recs, mine.n);
out:
	out->gen = gen;
	table_free(&used);
	table_free(&mine);
	return rc;
}

static int gen_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Over the limit, keeps the entries of the newest generations, down to 7/8 of the limit so that
 * the next few saves do not each have to evict again. The order of what is kept is unchanged.
 */
static int evict(table *t, size_t limit, uint64_t *evicted)
{
	size_t keep = limit - limit / 8, above = 0, k = 0;
	uint64_t *gens, cut;

	if (t->n <= limit)
		return 0;
	if (!(gens = dtn__malloc(t->n * sizeof(*gens))))
		return DTN_ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		gens[i] = t->recs[i].gen;
	qsort(gens, t->n, sizeof(*gens), gen_desc);
	cut = gens[keep - 1];
	dtn__free(gens);
	for (size_t i = 0; i < t->n; i++)
		above += t->recs[i].gen > cut;
	for (size_t i = 0, ties = keep - above; i < t->n; i++) {
		if (t->recs[i].gen < cut || (t->recs[i].gen == cut && ties == 0))
			continue;
		if (t->recs[i].gen == cut)
			ties--;
		t->recs[k++] = t->recs[i];
	}
	*evicted += t->n - k;
	t->n = k;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(fd, (const char *)buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* Fills in the header in front of t's records. */
static int seal(table *t)
{
	header h;
	int rc;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MAGIC, sizeof(h.magic));
	h.version = VERSION;
	h.order = ORDER_TAG;
	h.recsize = sizeof(rec);
	h.count = t->n;
	h.gen = t->gen;
	if ((rc = checksum(h.sum, &h, t->recs, t->n)) < 0)
		return rc;
	memcpy(t->sum, h.sum, sizeof(t->sum));
	memcpy(t->block, &h, sizeof(h));
	return 0;
}

/*
 * Moves the finished temporary file over the cache file. An empty directory standing in the
 * file's place is removed; anything else there is left alone and reported.
 */
static int put_in_place(const char *tmp, const char *path)
{
	if (rename(tmp, path) == 0)
		return 0;
	if (errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST)
		return -1;
	if (rmdir(path) < 0)
		return -1;
	return rename(tmp, path);
}

/*
 * Writes the table to a new file beside the cache file and renames it into place, so that
 * readers see the old file or the new one and never a part. There is no fsync: after a crash a
 * damaged file only costs one run without the cache, since loading rejects it.
 */
static int write_file(dtn__cache *c, table *t, dtn_error *err)
{
	size_t len = sizeof(header) + t->n * sizeof(rec);
	char *tmp;
	int fd, rc = 0;

	if ((rc = seal(t)) < 0 || !(tmp = dtn__aprintf("%s.tmp-XXXXXX", c->path)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory saving the digest cache");
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = dtn__error_set(err, DTN_EIO, "cannot write the digest cache in %s: %s", c->dir,
				    strerror(errno));
		goto out;
	}
	rc = write_all(fd, t->block, len);
	if (close(fd) < 0)
		rc = -1;
	if (rc < 0 || put_in_place(tmp, c->path) < 0) {
		rc = dtn__error_set(err, DTN_EIO, "cannot write the digest cache %s: %s", c->path,
				    strerror(errno));
		unlink(tmp);
	}
out:
	dtn__free(tmp);
	return rc;
}

/* The saved table becomes the one in memory; the inserts are now part of it. */
static void adopt(dtn__cache *c, table *t, atomic_uchar *used)
{
	table_free(&c->t);
	dtn__free(c->used);
	c->t = *t;
	memset(t, 0, sizeof(*t));
	c->used = used;
	c->s.n = 0;
	side_reindex(&c->s);
	atomic_store(&c->side_n, 0);
	atomic_store(&c->refresh, false);
	c->dirty = false;
	c->st.saved = c->t.n;
}

/*
 * Removes temporary files that a process killed in the middle of a save left behind. Saves
 * write their temporary file under the lock we hold, so one that is old is nobody's; the age
 * spares a writer that could not get the lock.
 */
static void sweep_temps(const dtn__cache *c)
{
	size_t plen = strlen(DTN__CACHE_FILE ".tmp-");
	time_t now = time(NULL);
	DIR *d = opendir(c->dir);
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, DTN__CACHE_FILE ".tmp-", plen) != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < now - STALE_TEMP_SECONDS)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* Reads what is on disk, merges and writes, all under the lock. */
static int save_locked(dtn__cache *c, dtn_error *err)
{
	table disk = {0}, out = {0};
	atomic_uchar *used = NULL;
	bool same;
	int rc;

	if ((rc = reread(c, &disk, &same)) < 0 || (rc = combine(c, &disk, same, &out)) < 0 ||
	    (rc = evict(&out, c->limit, &c->st.evicted)) < 0)
		goto out;
	if (!(used = dtn__calloc(out.n ? out.n : 1, sizeof(*used)))) {
		rc = DTN_ENOMEM;
		goto out;
	}
	if ((rc = write_file(c, &out, err)) < 0)
		goto out;
	adopt(c, &out, used);
	used = NULL;
out:
	if (rc == DTN_ENOMEM)
		dtn__error_set(err, rc, "out of memory saving the digest cache");
	dtn__free(used);
	table_free(&disk);
	table_free(&out);
	return rc;
}

int dtn__cache_save(dtn__cache *c, dtn_error *err)
{
	int lock, rc;

	if (!c || !c->path || (!c->dirty && !atomic_load(&c->refresh)))
		return 0;
	if ((rc = make_dirs(c->dir, err)) < 0)
		return rc;
	/* sorted before the lock is taken, to hold it briefly; the index is rebuilt in place */
	if (c->s.n) {
		qsort(c->s.recs, c->s.n, sizeof(rec), rec_cmp);
		side_reindex(&c->s);
	}
	lock = take_lock(c->lock_path);
	rc = save_locked(c, err);
	if (lock >= 0)
		sweep_temps(c);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* ---- the rest ---- */

void dtn__cache_free(dtn__cache *c)
{
	if (!c)
		return;
	table_free(&c->t);
	side_free(&c->s);
	dtn__free(c->used);
	dtn__free(c->dir);
	dtn__free(c->path);
	dtn__free(c->lock_path);
	pthread_mutex_destroy(&c->mu);
	dtn__free(c);
}

const char *dtn__cache_path(const dtn__cache *c)
{
	return c ? c->path : NULL;
}

void dtn__cache_stats_get(const dtn__cache *c, dtn__cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	*out = c->st;
	out->hits = atomic_load((atomic_uint_least64_t *)&c->hits);
	out->misses = atomic_load((atomic_uint_least64_t *)&c->misses);
	out->racy = atomic_load((atomic_uint_least64_t *)&c->racy);
}

void dtn__cache_set_limit(dtn__cache *c, size_t max_entries)
{
	if (!c)
		return;
	if (max_entries < 1)
		max_entries = 1;
	if (max_entries > DTN__CACHE_MAX_ENTRIES)
		max_entries = DTN__CACHE_MAX_ENTRIES;
	c->limit = max_entries;
}
