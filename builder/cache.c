/*
 * cache.c - per-file content digests remembered under stat signatures (see cache.h).
 *
 * The cache file is written in the byte order of the machine that wrote it, since it never
 * leaves that machine; a file of the other order is refused like any foreign file. All offsets
 * and sizes are multiples of 8, so every part is aligned where it lies:
 *
 *   header   128 bytes: magic "dtndgst\n", version 2, byte-order tag 0x01020304, record size
 *            72, index entries per page 128, block count, record count, generation, offsets of
 *            the index and of the fences, file size, reserved, and the SHA-256 of the first 96
 *            header bytes followed by all the fences
 *   blocks   one per directory, by increasing (device, inode) of the directory: 64 bytes of
 *            head (device, inode, generation, record count, flags, SHA-256 of the first 32
 *            head bytes followed by the records), then the records, 72 bytes each by
 *            increasing inode: inode, size, mtime and ctime (seconds, then nanoseconds), the
 *            content digest
 *   index    32 bytes per block, in the same order: device, inode, offset, record count
 *   fences   48 bytes per page of 128 index entries: the page's first key and its SHA-256
 *
 * Opening reads the header and the fences (a few hundred KiB at most) and checks them. Finding
 * a directory is a binary search of the fences, one read of its index page (the last few are
 * kept, and neighbouring directories usually share one) and one read of its block; each page
 * and block is checked against its sum and its place before use, so a damaged part is only
 * ever a miss.
 *
 * Blocks stored in a run wait in memory (the "spill", found by key through a hash index) until
 * they take more than the budget or the cache is saved; then the file on disk and the spill,
 * both in key order, are merged into a new file in one pass, with fixed buffers. A stored block
 * remembers the sum of the block it was made from: if the file on disk still holds that block,
 * the new one replaces it; if another process changed it in the meantime, the two are united.
 *
 * The generation counts writes. Blocks written from the spill get the new file's generation,
 * so when the file grows past its limit the directories unused for the most writes go first.
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
#define VERSION 2u
#define ORDER_TAG 0x01020304u
/* Index entries per index page: 4 KiB. */
#define PAGE 128u
/* Index pages kept after a lookup read them. */
#define PAGES_KEPT 4
/*
 * A directory whose block is this many writes old is stored again when it is used, even
 * unchanged, so that directories in steady use are not evicted as unused.
 */
#define REFRESH_GENS 8
/* A temporary file older than this, found while saving, was left by a process that died. */
#define STALE_TEMP_SECONDS 3600
/* The buffers a write reads and writes through. */
#define IO_BUF (256u << 10)
/* Index entries buffered before they go to their temporary file. */
#define INDEX_BUF (64u << 10)
/* Eviction counts entries by the age of their block, in generations; older ones are lumped. */
#define AGES 64
/* Block flags: the stored block was made from an earlier one, whose sum it carries. */
#define FLAG_BASED 1u

struct dtn__cache_rec {
	uint64_t ino, size;
	int64_t mtime_s, ctime_s;
	int32_t mtime_ns, ctime_ns;
	unsigned char digest[32];
};
typedef struct dtn__cache_rec rec;

typedef struct blk {
	uint64_t dev, ino, gen;
	uint32_t nrec, flags;
	unsigned char sum[32];
} blk;

typedef struct ient {
	uint64_t dev, ino, off;
	uint32_t nrec, flags;
} ient;

typedef struct fence {
	uint64_t dev, ino;
	unsigned char sum[32];
} fence;

typedef struct header {
	char magic[8];
	uint32_t version, order, recsize, page;
	uint64_t nblocks, nrecs, gen, index_off, fence_off, size;
	uint64_t reserved[3];
	unsigned char sum[32];
} header;

_Static_assert(sizeof(rec) == 72, "record has padding");
_Static_assert(sizeof(blk) == 64, "block head has padding");
_Static_assert(sizeof(ient) == 32, "index entry has padding");
_Static_assert(sizeof(fence) == 48, "fence has padding");
_Static_assert(sizeof(header) == 128, "header has padding");

#define HDR_SUMMED offsetof(header, sum)
#define BLK_SUMMED offsetof(blk, sum)

static uint64_t block_len(uint64_t nrec)
{
	return sizeof(blk) + nrec * sizeof(rec);
}

static uint64_t pages_of(uint64_t nblocks)
{
	return (nblocks + PAGE - 1) / PAGE;
}

static int key_cmp(uint64_t adev, uint64_t aino, uint64_t bdev, uint64_t bino)
{
	if (adev != bdev)
		return adev < bdev ? -1 : 1;
	if (aino != bino)
		return aino < bino ? -1 : 1;
	return 0;
}

/* ---- the file lookups read ---- */

typedef struct ipage {
	uint64_t no;
	size_t n;
	unsigned long used; /* when it last served a lookup: the oldest is replaced */
	bool valid, ok;
	ient e[PAGE];
} ipage;

typedef struct cfile {
	int fd; /* -1: no file */
	header h;
	fence *fences;
	size_t nfences;
	ipage *pages; /* PAGES_KEPT of them, allocated on first use */
	unsigned long clock;
} cfile;

/* Stored blocks not yet in the file, in the file's layout, found through slots (offset + 1). */
typedef struct spill {
	unsigned char *buf;
	size_t len, cap;
	uint64_t *slots;
	size_t nslots, nkeys;
} spill;

struct dtn__cache {
	char *dir, *path, *lock_path; /* all NULL when the cache is disabled */
	pthread_mutex_t mu;  /* guards everything but the atomic counters */
	cfile f;
	spill s;
	dtn__sha256 *sha;
	size_t limit, budget;
	bool damaged;        /* damage was found: the next save rewrites the file */
	int flush_rc;        /* a write forced by the budget failed: the next save says so */
	dtn_error flush_err;
	atomic_uint_least64_t hits, misses;
	dtn__cache_stats st; /* the other counters */
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

static ssize_t read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));

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

/* ---- sums ---- */

/* The sum of a block's head and records; the head's own sum field is not part of it. */
static int block_sum(dtn__sha256 *sha, const unsigned char *b, uint64_t nrec,
		     unsigned char out[32])
{
	if (dtn__sha256_init(sha) < 0 || dtn__sha256_update(sha, b, BLK_SUMMED) < 0 ||
	    dtn__sha256_update(sha, b + sizeof(blk), (size_t)(nrec * sizeof(rec))) < 0 ||
	    dtn__sha256_final(sha, out) < 0)
		return DTN_ENOMEM;
	return 0;
}

static int header_sum(dtn__sha256 *sha, const header *h, const fence *fences, size_t n,
		      unsigned char out[32])
{
	if (dtn__sha256_init(sha) < 0 || dtn__sha256_update(sha, h, HDR_SUMMED) < 0 ||
	    dtn__sha256_update(sha, fences, n * sizeof(*fences)) < 0 ||
	    dtn__sha256_final(sha, out) < 0)
		return DTN_ENOMEM;
	return 0;
}

/* ---- opening and checking a file ---- */

/* Why the header of a file of `size` bytes is not to be trusted, or NULL. */
static const char *header_problem(const header *h, uint64_t size)
{
	uint64_t index_off, fence_off, end;

	if (memcmp(h->magic, MAGIC, sizeof(h->magic)) != 0)
		return "is not a dtn digest cache";
	if (h->order != ORDER_TAG)
		return "was written with another byte order";
	if (h->version != VERSION)
		return "has an unknown format version";
	if (h->recsize != sizeof(rec) || h->page != PAGE)
		return "has an unknown record size";
	if (h->nrecs > DTN__CACHE_MAX_ENTRIES || h->nblocks > DTN__CACHE_MAX_ENTRIES)
		return "holds too many entries";
	index_off = sizeof(header) + h->nblocks * sizeof(blk) + h->nrecs * sizeof(rec);
	fence_off = index_off + h->nblocks * sizeof(ient);
	end = fence_off + pages_of(h->nblocks) * sizeof(fence);
	if (h->nblocks > h->nrecs || h->index_off != index_off || h->fence_off != fence_off ||
	    h->size != end)
		return "has inconsistent sizes";
	if (size < end)
		return "is truncated";
	if (size > end)
		return "has bytes after its end";
	return NULL;
}

static void file_close(cfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	dtn__free(f->fences);
	dtn__free(f->pages);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

/*
 * Opens the cache file at path and checks its header and fences. A file not to be trusted
 * leaves f without one (fd -1) and says why in *why; a missing one says nothing. Returns 0 or
 * DTN_ENOMEM.
 */
static int file_open(cfile *f, const char *path, dtn__sha256 *sha, const char **why)
{
	unsigned char sum[32];
	struct stat st;
	size_t len;
	header h;
	/* O_NONBLOCK: a FIFO put in the file's place must not hang us */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), rc = 0;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	*why = NULL;
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			*why = "cannot be opened";
		return 0;
	}
	if (fstat(fd, &st) < 0)
		*why = "cannot be read";
	else if (!S_ISREG(st.st_mode))
		*why = "is not a regular file";
	else if (read_at(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		*why = st.st_size == 0 ? "is empty" : "is truncated";
	else
		*why = header_problem(&h, (uint64_t)st.st_size);
	if (*why)
		goto fail;
	f->nfences = (size_t)pages_of(h.nblocks);
	len = f->nfences * sizeof(fence);
	if (!(f->fences = dtn__malloc(len ? len : 1))) {
		rc = DTN_ENOMEM;
		goto fail;
	}
	if (read_at(fd, f->fences, len, h.fence_off) != (ssize_t)len) {
		*why = "is truncated";
		goto fail;
	}
	if ((rc = header_sum(sha, &h, f->fences, f->nfences, sum)) < 0)
		goto fail;
	if (memcmp(sum, h.sum, sizeof(sum)) != 0) {
		*why = "is damaged (its checksum does not match)";
		goto fail;
	}
	for (size_t i = 1; i < f->nfences; i++)
		if (key_cmp(f->fences[i - 1].dev, f->fences[i - 1].ino, f->fences[i].dev,
			    f->fences[i].ino) >= 0) {
			*why = "has its entries out of order";
			goto fail;
		}
	f->h = h;
	f->fd = fd;
	return 0;
fail:
	close(fd);
	file_close(f);
	return rc;
}

/*
 * Reads index page `no` of f into e (*n entries) and checks it: its sum, its keys in order
 * and within its fences, and every block inside the blocks region. Returns whether it is sound.
 */
static bool page_load(const cfile *f, dtn__sha256 *sha, uint64_t no, ient *e, size_t *n)
{
	uint64_t first = no * PAGE, left = f->h.nblocks - first;
	size_t len;
	unsigned char sum[32];

	*n = left < PAGE ? (size_t)left : PAGE;
	len = *n * sizeof(ient);
	if (read_at(f->fd, e, len, f->h.index_off + first * sizeof(ient)) != (ssize_t)len ||
	    dtn__sha256_init(sha) < 0 || dtn__sha256_update(sha, e, len) < 0 ||
	    dtn__sha256_final(sha, sum) < 0 || memcmp(sum, f->fences[no].sum, sizeof(sum)) != 0)
		return false;
	if (*n == 0 || e[0].dev != f->fences[no].dev || e[0].ino != f->fences[no].ino)
		return false;
	if (no + 1 < f->nfences && key_cmp(e[*n - 1].dev, e[*n - 1].ino, f->fences[no + 1].dev,
					   f->fences[no + 1].ino) >= 0)
		return false;
	for (size_t i = 0; i < *n; i++) {
		if (i && key_cmp(e[i - 1].dev, e[i - 1].ino, e[i].dev, e[i].ino) >= 0)
			return false;
		if (e[i].nrec == 0 || e[i].nrec > DTN__CACHE_MAX_ENTRIES || e[i].off < sizeof(header) ||
		    e[i].off % 8 || e[i].off > f->h.index_off ||
		    block_len(e[i].nrec) > f->h.index_off - e[i].off)
			return false;
	}
	return true;
}

/* Checks the block at b against its index entry: its key, its size, its sum, its order. */
static bool block_ok(dtn__sha256 *sha, const unsigned char *b, const ient *e)
{
	unsigned char sum[32];
	const rec *r = (const rec *)(b + sizeof(blk));
	blk h;

	memcpy(&h, b, sizeof(h));
	if (h.dev != e->dev || h.ino != e->ino || h.nrec != e->nrec || h.nrec == 0 ||
	    block_sum(sha, b, h.nrec, sum) < 0 || memcmp(sum, h.sum, sizeof(sum)) != 0)
		return false;
	for (uint32_t i = 1; i < h.nrec; i++)
		if (r[i - 1].ino >= r[i].ino)
			return false;
	return true;
}

/* ---- finding a directory ---- */

/* Index page `no` of the cache's file, read or kept; NULL when it is damaged. Under c->mu. */
static const ipage *page_get(dtn__cache *c, uint64_t no)
{
	cfile *f = &c->f;
	ipage *p = NULL;

	if (!f->pages && !(f->pages = dtn__calloc(PAGES_KEPT, sizeof(*f->pages))))
		return NULL;
	for (int i = 0; i < PAGES_KEPT; i++) {
		ipage *q = &f->pages[i];

		if (q->valid && q->no == no) {
			q->used = ++f->clock;
			return q->ok ? q : NULL;
		}
		if (!p || !q->valid || (p->valid && q->used < p->used))
			p = q;
	}
	p->no = no;
	p->valid = true;
	p->used = ++f->clock;
	p->ok = page_load(f, c->sha, no, p->e, &p->n);
	if (!p->ok) {
		c->damaged = true;
		c->st.damaged++;
	}
	return p->ok ? p : NULL;
}

/* The index entry of directory (dev, ino) in the cache's file. Under c->mu. */
static bool file_find(dtn__cache *c, uint64_t dev, uint64_t ino, ient *out)
{
	const cfile *f = &c->f;
	size_t lo = 0, hi = f->nfences;
	const ipage *p;

	if (f->fd < 0)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (key_cmp(f->fences[mid].dev, f->fences[mid].ino, dev, ino) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || !(p = page_get(c, lo - 1)))
		return false;
	lo = 0;
	hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = key_cmp(p->e[mid].dev, p->e[mid].ino, dev, ino);

		if (cmp == 0) {
			*out = p->e[mid];
			return true;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* ---- the spill ---- */

static size_t key_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15u ^ (dev + 0x632be59bd9b4e019u) * 0xc2b2ae3d27d4eb4fu;

	return (size_t)(h ^ (h >> 29));
}

static blk spill_head(const spill *s, uint64_t off)
{
	blk h;

	memcpy(&h, s->buf + off, sizeof(h));
	return h;
}

/* The slot holding (dev, ino), or the empty slot where it would go. */
static size_t spill_slot(const spill *s, uint64_t dev, uint64_t ino)
{
	size_t mask = s->nslots - 1, i = key_hash(dev, ino) & mask;

	while (s->slots[i]) {
		blk h = spill_head(s, s->slots[i] - 1);

		if (h.dev == dev && h.ino == ino)
			break;
		i = (i + 1) & mask;
	}
	return i;
}

/* The offset of the stored block of (dev, ino), or -1. */
static int64_t spill_find(const spill *s, uint64_t dev, uint64_t ino)
{
	size_t i;

	if (!s->nkeys)
		return -1;
	i = spill_slot(s, dev, ino);
	return s->slots[i] ? (int64_t)(s->slots[i] - 1) : -1;
}

/* Room for one more key, keeping the slots at most half full. */
static int spill_reserve_slot(spill *s)
{
	size_t n;
	uint64_t *old = s->slots, oldn = s->nslots;

	if ((s->nkeys + 1) * 2 <= s->nslots)
		return 0;
	n = s->nslots ? s->nslots * 2 : 1024;
	if (!(s->slots = dtn__calloc(n, sizeof(*s->slots)))) {
		s->slots = old;
		return DTN_ENOMEM;
	}
	s->nslots = n;
	for (size_t i = 0; i < oldn; i++)
		if (old[i]) {
			blk h = spill_head(s, old[i] - 1);

			s->slots[spill_slot(s, h.dev, h.ino)] = old[i];
		}
	dtn__free(old);
	return 0;
}

/* Appends a block (its head, with the base's sum, then n records) and points its key at it. */
static int spill_put(dtn__cache *c, const dtn__cache_dir *d, const rec *recs, size_t n)
{
	spill *s = &c->s;
	size_t need = (size_t)block_len(n), slot;
	blk h;

	if (s->len + need > s->cap) {
		size_t cap = s->len + need > c->budget ? s->len + need : c->budget;
		unsigned char *b = dtn__realloc(s->buf, cap);

		if (!b)
			return DTN_ENOMEM;
		s->buf = b;
		s->cap = cap;
	}
	if (spill_reserve_slot(s) < 0)
		return DTN_ENOMEM;
	memset(&h, 0, sizeof(h));
	h.dev = d->dev;
	h.ino = d->ino;
	h.gen = d->base_gen;
	h.nrec = (uint32_t)n;
	h.flags = d->has_base ? FLAG_BASED : 0;
	memcpy(h.sum, d->base_sum, sizeof(h.sum));
	memcpy(s->buf + s->len, &h, sizeof(h));
	if (n)
		memcpy(s->buf + s->len + sizeof(h), recs, n * sizeof(rec));
	slot = spill_slot(s, d->dev, d->ino);
	if (!s->slots[slot])
		s->nkeys++;
	s->slots[slot] = s->len + 1;
	s->len += need;
	return 0;
}

static void spill_clear(spill *s, size_t budget)
{
	s->len = 0;
	s->nkeys = 0;
	if (s->slots)
		memset(s->slots, 0, s->nslots * sizeof(*s->slots));
	/* grown past the budget for one large directory: that memory is not kept */
	if (s->cap > budget) {
		dtn__free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
}

static void spill_free(spill *s)
{
	dtn__free(s->buf);
	dtn__free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ---- writing a file: reading the old one in order ---- */

/* The blocks of a file in key order, each checked; damaged pages and blocks are skipped. */
typedef struct reader {
	const cfile *f;
	dtn__sha256 *sha;
	uint64_t page;         /* the next page to read */
	ient e[PAGE];
	size_t n, pos;
	unsigned char *win;    /* a window of the blocks region, IO_BUF bytes */
	uint64_t win_off;
	size_t win_len;
	unsigned char *big;    /* a block larger than the window */
	size_t bigcap;
	uint64_t damaged;
} reader;

static bool reader_next(reader *r, ient *e)
{
	if (!r->f || r->f->fd < 0)
		return false;
	while (r->pos == r->n) {
		if (r->page >= r->f->nfences)
			return false;
		r->pos = 0;
		if (!page_load(r->f, r->sha, r->page, r->e, &r->n)) {
			r->n = 0;
			r->damaged++;
		}
		r->page++;
	}
	*e = r->e[r->pos++];
	return true;
}

/* The block of e, checked; NULL when it is damaged or memory ran out (*oom). */
static const unsigned char *reader_block(reader *r, const ient *e, bool *oom)
{
	size_t len = (size_t)block_len(e->nrec);
	const unsigned char *b;

	*oom = false;
	if (len > IO_BUF) {
		if (len > r->bigcap) {
			unsigned char *p = dtn__realloc(r->big, len);

			if (!p) {
				*oom = true;
				return NULL;
			}
			r->big = p;
			r->bigcap = len;
		}
		b = read_at(r->f->fd, r->big, len, e->off) == (ssize_t)len ? r->big : NULL;
	} else {
		if (e->off < r->win_off || e->off + len > r->win_off + r->win_len) {
			uint64_t avail = r->f->h.index_off - e->off;
			ssize_t got = read_at(r->f->fd, r->win, avail < IO_BUF ? (size_t)avail : IO_BUF,
					      e->off);

			r->win_off = e->off;
			r->win_len = got > 0 ? (size_t)got : 0;
		}
		b = e->off + len <= r->win_off + r->win_len ? r->win + (e->off - r->win_off) : NULL;
	}
	if (b && !block_ok(r->sha, b, e))
		b = NULL;
	if (!b)
		r->damaged++;
	return b;
}

/* ---- writing a file: the writer ---- */

/* Blocks older than `cut` generations are dropped; of age `cut`, kept while `room` lasts. */
typedef struct keep_rule {
	bool on;
	unsigned cut;
	uint64_t room;
	uint64_t dropped;
} keep_rule;

typedef struct writer {
	int fd, ifd;            /* the new file, and its index entries until the blocks end */
	char *tmp;              /* the new file's name until it is renamed */
	unsigned char *buf;     /* blocks waiting to be written */
	size_t len;
	unsigned char *ibuf;    /* index entries waiting to be written */
	size_t ilen;
	unsigned char *scratch; /* a block being made */
	size_t scratchcap;
	uint64_t off;           /* where the next block goes */
	fence *fences;
	size_t nfences, capfences;
	dtn__sha256 *psha;      /* the sum of the index page being written */
	size_t in_page;
	uint64_t nblocks, nrecs, gen;
	uint64_t ages[AGES];    /* entries by the age of their block */
	keep_rule *keep;
	int e;                  /* errno of a failed write */
	int rc;                 /* the first failure */
} writer;

static int writer_fail(writer *w, int rc)
{
	if (!w->rc) {
		w->rc = rc;
		if (rc == DTN_EIO && !w->e)
			w->e = errno ? errno : EIO;
	}
	return w->rc;
}

static int writer_flush(writer *w)
{
	if (w->len && write_all(w->fd, w->buf, w->len) < 0)
		return writer_fail(w, DTN_EIO);
	w->len = 0;
	return 0;
}

static int index_flush(writer *w)
{
	if (w->ilen && write_all(w->ifd, w->ibuf, w->ilen) < 0)
		return writer_fail(w, DTN_EIO);
	w->ilen = 0;
	return 0;
}

/* Ends the index page being summed: its fence gets the sum. */
static int page_end(writer *w)
{
	if (!w->in_page)
		return 0;
	if (dtn__sha256_final(w->psha, w->fences[w->nfences - 1].sum) < 0)
		return writer_fail(w, DTN_ENOMEM);
	w->in_page = 0;
	return 0;
}

static int add_index(writer *w, const ient *e)
{
	if (w->in_page == 0) {
		if (w->nfences == w->capfences) {
			size_t cap = w->capfences ? w->capfences * 2 : 64;
			fence *p = dtn__realloc(w->fences, cap * sizeof(*p));

			if (!p)
				return writer_fail(w, DTN_ENOMEM);
			w->fences = p;
			w->capfences = cap;
		}
		memset(&w->fences[w->nfences], 0, sizeof(fence));
		w->fences[w->nfences].dev = e->dev;
		w->fences[w->nfences].ino = e->ino;
		w->nfences++;
		if (dtn__sha256_init(w->psha) < 0)
			return writer_fail(w, DTN_ENOMEM);
	}
	if (dtn__sha256_update(w->psha, e, sizeof(*e)) < 0)
		return writer_fail(w, DTN_ENOMEM);
	if (++w->in_page == PAGE && page_end(w) < 0)
		return w->rc;
	if (w->ilen + sizeof(*e) > INDEX_BUF && index_flush(w) < 0)
		return w->rc;
	memcpy(w->ibuf + w->ilen, e, sizeof(*e));
	w->ilen += sizeof(*e);
	return 0;
}

/*
 * Writes one finished block (head and records, its generation and sum final), unless the keep
 * rule drops it.
 */
static int write_block(writer *w, const unsigned char *b)
{
	blk h;
	ient e;
	size_t len;
	unsigned age;

	memcpy(&h, b, sizeof(h));
	len = (size_t)block_len(h.nrec);
	age = h.gen >= w->gen ? 0 : w->gen - h.gen >= AGES ? AGES - 1 : (unsigned)(w->gen - h.gen);
	if (w->keep && w->keep->on) {
		if (age > w->keep->cut || (age == w->keep->cut && h.nrec > w->keep->room)) {
			w->keep->dropped += h.nrec;
			return 0;
		}
		if (age == w->keep->cut)
			w->keep->room -= h.nrec;
	}
	memset(&e, 0, sizeof(e));
	e.dev = h.dev;
	e.ino = h.ino;
	e.off = w->off;
	e.nrec = h.nrec;
	if (add_index(w, &e) < 0)
		return w->rc;
	if (w->len + len > IO_BUF && writer_flush(w) < 0)
		return w->rc;
	if (len > IO_BUF) {
		if (write_all(w->fd, b, len) < 0)
			return writer_fail(w, DTN_EIO);
	} else {
		memcpy(w->buf + w->len, b, len);
		w->len += len;
	}
	w->off += len;
	w->nblocks++;
	w->nrecs += h.nrec;
	w->ages[age] += h.nrec;
	return 0;
}

static unsigned char *scratch(writer *w, size_t len)
{
	if (len > w->scratchcap) {
		unsigned char *p = dtn__realloc(w->scratch, len);

		if (!p) {
			writer_fail(w, DTN_ENOMEM);
			return NULL;
		}
		w->scratch = p;
		w->scratchcap = len;
	}
	return w->scratch;
}

/* Gives the block made in scratch the new generation and its sum, and writes it. */
static int seal_and_write(writer *w, dtn__sha256 *sha, unsigned char *b)
{
	blk h;

	memcpy(&h, b, sizeof(h));
	if (h.nrec == 0) /* a directory whose files are all gone */
		return 0;
	h.gen = w->gen;
	h.flags = 0;
	memcpy(b, &h, sizeof(h));
	if (block_sum(sha, b, h.nrec, h.sum) < 0)
		return writer_fail(w, DTN_ENOMEM);
	memcpy(b, &h, sizeof(h));
	return write_block(w, b);
}

/* A block of this run, as it is. */
static int write_spilled(writer *w, dtn__sha256 *sha, const unsigned char *sb)
{
	blk h;
	size_t len;
	unsigned char *b;

	memcpy(&h, sb, sizeof(h));
	len = (size_t)block_len(h.nrec);
	if (!(b = scratch(w, len)))
		return w->rc;
	memcpy(b, sb, len);
	return seal_and_write(w, sha, b);
}

/* A block of this run united with the one another process wrote: ours wins per file. */
static int write_united(writer *w, dtn__sha256 *sha, const unsigned char *disk,
			const unsigned char *sb)
{
	blk dh, sh;
	const rec *a, *b;
	rec *out;
	size_t i = 0, j = 0, k = 0;
	unsigned char *m;

	memcpy(&dh, disk, sizeof(dh));
	memcpy(&sh, sb, sizeof(sh));
	if (!(m = scratch(w, (size_t)block_len((uint64_t)dh.nrec + sh.nrec))))
		return w->rc;
	a = (const rec *)(disk + sizeof(blk));
	b = (const rec *)(sb + sizeof(blk));
	out = (rec *)(m + sizeof(blk));
	while (i < dh.nrec || j < sh.nrec) {
		if (j == sh.nrec || (i < dh.nrec && a[i].ino < b[j].ino)) {
			out[k++] = a[i++];
			continue;
		}
		if (i < dh.nrec && a[i].ino == b[j].ino)
			i++;
		out[k++] = b[j++];
	}
	sh.nrec = (uint32_t)k;
	memcpy(m, &sh, sizeof(sh));
	return seal_and_write(w, sha, m);
}

static int writer_start(writer *w, const char *path, uint64_t gen, keep_rule *keep)
{
	memset(w, 0, sizeof(*w));
	w->fd = w->ifd = -1;
	w->gen = gen;
	w->keep = keep;
	w->off = sizeof(header);
	if (!(w->buf = dtn__calloc(1, IO_BUF)) || !(w->ibuf = dtn__malloc(INDEX_BUF)) ||
	    !(w->psha = dtn__sha256_new()) || !(w->tmp = dtn__aprintf("%s.tmp-XXXXXX", path)))
		return writer_fail(w, DTN_ENOMEM);
	/* the header's place, filled in at the end */
	w->len = sizeof(header);
	if ((w->fd = mkostemp(w->tmp, O_CLOEXEC)) < 0) {
		w->e = errno;
		dtn__free(w->tmp);
		w->tmp = NULL;
		return writer_fail(w, DTN_EIO);
	}
	/* the index entries wait in a file of their own, gone once closed */
	{
		char *itmp = dtn__aprintf("%s.tmp-XXXXXX", path);

		if (!itmp)
			return writer_fail(w, DTN_ENOMEM);
		w->ifd = mkostemp(itmp, O_CLOEXEC);
		w->e = w->ifd < 0 ? errno : 0;
		if (w->ifd >= 0)
			unlink(itmp);
		dtn__free(itmp);
		if (w->ifd < 0)
			return writer_fail(w, DTN_EIO);
	}
	return 0;
}

/* Writes the index and the fences after the blocks, then the header in front. */
static int writer_finish(writer *w, dtn__sha256 *sha)
{
	header h;
	off_t pos = 0;

	if (w->rc || writer_flush(w) < 0 || page_end(w) < 0 || index_flush(w) < 0)
		return w->rc;
	for (;;) {
		ssize_t n = pread(w->ifd, w->buf, IO_BUF, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return writer_fail(w, DTN_EIO);
		if (n == 0)
			break;
		if (write_all(w->fd, w->buf, (size_t)n) < 0)
			return writer_fail(w, DTN_EIO);
		pos += n;
	}
	if ((uint64_t)pos != w->nblocks * sizeof(ient))
		return writer_fail(w, DTN_EIO);
	if (w->nfences && write_all(w->fd, w->fences, w->nfences * sizeof(fence)) < 0)
		return writer_fail(w, DTN_EIO);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MAGIC, sizeof(h.magic));
	h.version = VERSION;
	h.order = ORDER_TAG;
	h.recsize = sizeof(rec);
	h.page = PAGE;
	h.nblocks = w->nblocks;
	h.nrecs = w->nrecs;
	h.gen = w->gen;
	h.index_off = w->off;
	h.fence_off = w->off + w->nblocks * sizeof(ient);
	h.size = h.fence_off + w->nfences * sizeof(fence);
	if (header_sum(sha, &h, w->fences, w->nfences, h.sum) < 0)
		return writer_fail(w, DTN_ENOMEM);
	if (pwrite(w->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return writer_fail(w, DTN_EIO);
	if (close(w->fd) < 0) {
		w->fd = -1;
		return writer_fail(w, DTN_EIO);
	}
	w->fd = -1;
	return 0;
}

/* Frees the writer; its file is removed unless it was renamed (tmp NULL). */
static void writer_free(writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->tmp)
		unlink(w->tmp);
	dtn__free(w->tmp);
	dtn__free(w->buf);
	dtn__free(w->ibuf);
	dtn__free(w->scratch);
	dtn__free(w->fences);
	dtn__sha256_free(w->psha);
	memset(w, 0, sizeof(*w));
	w->fd = w->ifd = -1;
}

/* ---- writing a file: the merge ---- */

/* A block of the spill, by key. */
typedef struct okey {
	uint64_t dev, ino, off;
} okey;

/*
 * Writes the blocks of `disk` (may have no file) and of the spill (order[]: offsets of its
 * blocks, by key; may be empty) into w, in key order.
 */
static int merge(dtn__cache *c, const cfile *disk, const okey *order, size_t nspill, writer *w,
		 uint64_t *damaged)
{
	reader r;
	ient e;
	bool have, oom = false;
	size_t j = 0;

	memset(&r, 0, sizeof(r));
	r.f = disk;
	r.sha = c->sha;
	r.win_off = UINT64_MAX;
	if (disk->fd >= 0 && !(r.win = dtn__malloc(IO_BUF)))
		return writer_fail(w, DTN_ENOMEM);
	have = reader_next(&r, &e);
	while (w->rc == 0 && !oom && (have || j < nspill)) {
		const unsigned char *sb = j < nspill ? c->s.buf + order[j].off : NULL, *db;
		int cmp = 1;
		blk sh;

		if (sb)
			memcpy(&sh, sb, sizeof(sh));
		if (have && sb)
			cmp = key_cmp(e.dev, e.ino, sh.dev, sh.ino);
		else if (have)
			cmp = -1;
		if (cmp > 0) {
			write_spilled(w, c->sha, sb);
			j++;
			continue;
		}
		db = reader_block(&r, &e, &oom);
		if (cmp < 0) {
			if (db)
				write_block(w, db);
		} else if (!db || ((sh.flags & FLAG_BASED) && !memcmp(db + BLK_SUMMED, sh.sum, 32))) {
			/* what we started from, or nothing usable: ours replaces it */
			write_spilled(w, c->sha, sb);
			j++;
		} else {
			write_united(w, c->sha, db, sb);
			j++;
		}
		have = reader_next(&r, &e);
	}
	if (oom)
		writer_fail(w, DTN_ENOMEM);
	*damaged += r.damaged;
	dtn__free(r.win);
	dtn__free(r.big);
	return w->rc;
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
 * Removes temporary files that a process killed in the middle of a save left behind, and the
 * file of the earlier format. Saves write their temporary file under the lock we hold, so one
 * that is old is nobody's; the age spares a writer that could not get the lock.
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
		if (!strcmp(e->d_name, DTN__CACHE_OLD_FILE)) {
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (strncmp(e->d_name, DTN__CACHE_FILE ".tmp-", plen) != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < now - STALE_TEMP_SECONDS)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static int okey_cmp(const void *a, const void *b)
{
	const okey *x = a, *y = b;

	return key_cmp(x->dev, x->ino, y->dev, y->ino);
}

/* The spill's live blocks, by key. */
static int spill_order(const spill *s, okey **out)
{
	okey *o = dtn__malloc((s->nkeys ? s->nkeys : 1) * sizeof(*o));
	size_t n = 0;

	*out = o;
	if (!o)
		return DTN_ENOMEM;
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i]) {
			blk h = spill_head(s, s->slots[i] - 1);

			o[n++] = (okey){h.dev, h.ino, s->slots[i] - 1};
		}
	qsort(o, n, sizeof(*o), okey_cmp);
	return 0;
}

/* The age below which blocks are kept, so that at most keep entries stay. */
static void plan_eviction(const uint64_t ages[AGES], uint64_t keep, keep_rule *k)
{
	uint64_t sum = 0;

	memset(k, 0, sizeof(*k));
	k->on = true;
	for (unsigned a = 0; a < AGES; a++) {
		if (sum + ages[a] > keep) {
			k->cut = a;
			k->room = keep - sum;
			return;
		}
		sum += ages[a];
	}
	k->cut = AGES;
}

static int io_error(dtn__cache *c, const writer *w, dtn_error *err)
{
	if (w->rc == DTN_ENOMEM)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory saving the digest cache");
	return dtn__error_set(err, DTN_EIO, "cannot write the digest cache %s: %s", c->path,
			      strerror(w->e ? w->e : EIO));
}

/*
 * Writes the merge of the file on disk and the spill to a temporary file; when that is over
 * the limit, writes it again without the least used directories. *w ends holding the file to
 * rename. Under the lock.
 */
static int write_merged(dtn__cache *c, const okey *order, writer *w, dtn_error *err)
{
	cfile disk, again;
	const char *why;
	keep_rule k;
	writer w2;
	uint64_t gen;
	int rc;

	if ((rc = file_open(&disk, c->path, c->sha, &why)) < 0)
		return dtn__error_set(err, rc, "out of memory saving the digest cache");
	gen = (disk.fd >= 0 && disk.h.gen > c->f.h.gen ? disk.h.gen : c->f.h.gen) + 1;
	if (writer_start(w, c->path, gen, NULL) == 0 &&
	    merge(c, &disk, order, c->s.nkeys, w, &c->st.damaged) == 0)
		writer_finish(w, c->sha);
	file_close(&disk);
	if (w->rc)
		return io_error(c, w, err);
	if (w->nrecs <= c->limit)
		return 0;
	/* over the limit: the oldest directories go, down to 7/8 of it */
	plan_eviction(w->ages, c->limit - c->limit / 8, &k);
	if ((rc = file_open(&again, w->tmp, c->sha, &why)) < 0 || again.fd < 0) {
		file_close(&again);
		return dtn__error_set(err, rc < 0 ? rc : DTN_EIO, "cannot read back the digest "
				      "cache written to %s", w->tmp);
	}
	if (writer_start(&w2, c->path, gen, &k) == 0 && merge(c, &again, NULL, 0, &w2, &c->st.damaged) == 0)
		writer_finish(&w2, c->sha);
	file_close(&again);
	if (w2.rc) {
		rc = io_error(c, &w2, err);
		writer_free(&w2);
		return rc;
	}
	c->st.evicted += k.dropped;
	writer_free(w);
	*w = w2;
	return 0;
}

/* Merges the spill into the file on disk, under the lock; then lookups read the new file. */
static int write_out(dtn__cache *c, dtn_error *err)
{
	okey *order = NULL;
	const char *why;
	uint64_t written = 0;
	writer w;
	int lock, rc;

	memset(&w, 0, sizeof(w));
	w.fd = w.ifd = -1;
	if ((rc = make_dirs(c->dir, err)) < 0)
		return rc;
	if (spill_order(&c->s, &order) < 0)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory saving the digest cache");
	lock = take_lock(c->lock_path);
	if ((rc = write_merged(c, order, &w, err)) == 0) {
		if (put_in_place(w.tmp, c->path) < 0) {
			rc = dtn__error_set(err, DTN_EIO, "cannot write the digest cache %s: %s",
					    c->path, strerror(errno));
		} else {
			dtn__free(w.tmp);
			w.tmp = NULL;
			written = w.nrecs;
		}
	}
	if (lock >= 0)
		sweep_temps(c);
	writer_free(&w);
	dtn__free(order);
	if (rc == 0) {
		/* this run's blocks are in the file now: lookups read it */
		c->st.saved = written;
		c->st.writes++;
		spill_clear(&c->s, c->budget);
		c->damaged = false;
		file_close(&c->f);
		if (file_open(&c->f, c->path, c->sha, &why) < 0)
			file_close(&c->f);
	}
	if (lock >= 0)
		close(lock);
	return rc;
}

int dtn__cache_save(dtn__cache *c, dtn_error *err)
{
	int rc = 0;

	if (!c || !c->path)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->s.len || c->damaged)
		rc = write_out(c, err);
	if (rc == 0 && c->flush_rc) {
		/* an earlier write, forced by the budget, failed and dropped what it held */
		rc = c->flush_rc;
		if (err)
			*err = c->flush_err;
	}
	c->flush_rc = 0;
	pthread_mutex_unlock(&c->mu);
	return rc;
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
	const char *base;
	int rc;

	if (dir && !dir[0])
		return 0;
	if ((rc = choose_dir(&c->dir, dir)) < 0 || !c->dir)
		return rc;
	base = strcmp(c->dir, "/") ? c->dir : "";
	if (!(c->path = dtn__aprintf("%s/%s", base, DTN__CACHE_FILE)) ||
	    !(c->lock_path = dtn__aprintf("%s.lock", c->path)))
		return DTN_ENOMEM;
	return 0;
}

int dtn__cache_open(dtn__cache **out, const char *dir, dtn_error *err)
{
	const char *why = NULL;
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
	c->f.fd = -1;
	c->limit = DTN__CACHE_MAX_ENTRIES;
	c->budget = DTN__CACHE_SPILL_BYTES;
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	if ((rc = set_paths(c, dir)) < 0 || (c->path && !(c->sha = dtn__sha256_new())) ||
	    (c->path && (rc = file_open(&c->f, c->path, c->sha, &why)) < 0)) {
		dtn__cache_free(c);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory opening the digest cache");
	}
	c->st.loaded = c->f.fd >= 0 ? c->f.h.nrecs : 0;
	c->st.rejected = why != NULL;
	c->st.reject_reason = why;
	*out = c;
	return 0;
}

/* ---- directories ---- */

static int block_room(dtn__cache_dir *d, size_t len)
{
	unsigned char *p;

	if (len <= d->block_cap)
		return 0;
	if (!(p = dtn__realloc(d->block, len)))
		return DTN_ENOMEM;
	d->block = p;
	d->block_cap = len;
	return 0;
}

/* d's block from what the spill holds at offset off. Under c->mu. */
static int dir_from_spill(dtn__cache *c, dtn__cache_dir *d, uint64_t off)
{
	blk h = spill_head(&c->s, off);
	size_t len = (size_t)block_len(h.nrec);

	if (block_room(d, len) < 0)
		return DTN_ENOMEM;
	memcpy(d->block, c->s.buf + off, len);
	d->nold = h.nrec;
	/* a block stored again keeps the base it was first made from */
	d->has_base = (h.flags & FLAG_BASED) != 0;
	d->base_gen = h.gen;
	memcpy(d->base_sum, h.sum, sizeof(d->base_sum));
	return 0;
}

/* d's block from the file. Under c->mu. */
static int dir_from_file(dtn__cache *c, dtn__cache_dir *d)
{
	size_t len;
	ient e;
	blk h;

	if (!file_find(c, d->dev, d->ino, &e))
		return 0;
	len = (size_t)block_len(e.nrec);
	if (block_room(d, len) < 0)
		return DTN_ENOMEM;
	if (read_at(c->f.fd, d->block, len, e.off) != (ssize_t)len || !block_ok(c->sha, d->block, &e)) {
		c->damaged = true;
		c->st.damaged++;
		return 0;
	}
	memcpy(&h, d->block, sizeof(h));
	d->nold = h.nrec;
	d->has_base = true;
	d->base_gen = h.gen;
	memcpy(d->base_sum, h.sum, sizeof(d->base_sum));
	return 0;
}

int dtn__cache_dir_open(dtn__cache *c, dtn__cache_dir *d, uint64_t dev, uint64_t ino)
{
	int64_t off;
	int rc;

	memset(d, 0, sizeof(*d));
	d->dev = dev;
	d->ino = ino;
	if (!c || !c->path) {
		d->off = true;
		return 0;
	}
	pthread_mutex_lock(&c->mu);
	if ((off = spill_find(&c->s, dev, ino)) >= 0)
		rc = dir_from_spill(c, d, (uint64_t)off);
	else
		rc = dir_from_file(c, d);
	pthread_mutex_unlock(&c->mu);
	if (rc < 0) {
		d->nold = 0;
		d->failed = true;
	}
	d->old = d->nold ? (const rec *)(d->block + sizeof(blk)) : NULL;
	return rc;
}

static bool rec_matches(const rec *r, const dtn__stat_sig *s)
{
	return r->ino == s->ino && r->size == s->size && r->mtime_s == s->mtime_s &&
	       r->mtime_ns == s->mtime_ns && r->ctime_s == s->ctime_s && r->ctime_ns == s->ctime_ns;
}

bool dtn__cache_dir_lookup(dtn__cache *c, const dtn__cache_dir *d, const dtn__stat_sig *sig,
			   unsigned char digest[32])
{
	size_t lo = 0, hi = d->nold;
	bool hit = false;

	while (sig->dev == d->dev && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->old[mid].ino == sig->ino) {
			if ((hit = rec_matches(&d->old[mid], sig)))
				memcpy(digest, d->old[mid].digest, 32);
			break;
		}
		if (d->old[mid].ino < sig->ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (c)
		atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
	return hit;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *q;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 64;
	if (!(q = dtn__realloc(*p, c * size)))
		return DTN_ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

int dtn__cache_dir_listed(dtn__cache_dir *d, uint64_t ino)
{
	if (d->off || d->failed)
		return 0;
	if (grow((void **)&d->listed, &d->caplisted, d->nlisted, sizeof(*d->listed)) < 0) {
		d->failed = true;
		return DTN_ENOMEM;
	}
	d->listed[d->nlisted++] = ino;
	return 0;
}

int dtn__cache_dir_put(dtn__cache_dir *d, const dtn__stat_sig *sig, const unsigned char digest[32])
{
	rec *r;

	if (d->off || d->failed || sig->dev != d->dev)
		return 0;
	if (grow((void **)&d->fresh, &d->capfresh, d->nfresh, sizeof(*d->fresh)) < 0) {
		d->failed = true;
		return DTN_ENOMEM;
	}
	r = &d->fresh[d->nfresh++];
	memset(r, 0, sizeof(*r));
	r->ino = sig->ino;
	r->size = sig->size;
	r->mtime_s = sig->mtime_s;
	r->mtime_ns = sig->mtime_ns;
	r->ctime_s = sig->ctime_s;
	r->ctime_ns = sig->ctime_ns;
	memcpy(r->digest, digest, 32);
	return 0;
}

void dtn__cache_dir_free(dtn__cache_dir *d)
{
	dtn__free(d->block);
	dtn__free(d->fresh);
	dtn__free(d->listed);
	memset(d, 0, sizeof(*d));
}

static int ino_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int rec_cmp(const void *a, const void *b)
{
	const rec *x = a, *y = b;
	int c = ino_cmp(&x->ino, &y->ino);

	return c ? c : memcmp(x, y, sizeof(*x));
}

static bool is_listed(const dtn__cache_dir *d, uint64_t ino)
{
	return d->nlisted && bsearch(&ino, d->listed, d->nlisted, sizeof(*d->listed), ino_cmp);
}

/*
 * The racy-timestamp rule. A file changed again after its content was read keeps its old
 * signature if the change lands in the same timestamp tick, and the cache would then hand out
 * the old digest for new content. Only files whose mtime and ctime are safely older than the
 * moment hashing began are kept: any later change then gets a visibly later timestamp, even on
 * filesystems that round times to 2 s. ctime matters most, as it cannot be set back.
 */
static bool is_racy(const rec *r, time_t hashed_at)
{
	int64_t limit = (int64_t)hashed_at - DTN__CACHE_RACY_SECONDS;

	return r->mtime_s >= limit || r->ctime_s >= limit;
}

/*
 * The directory's new records, by inode: the digests put (two different ones for one inode,
 * or a racy one, keep nothing for it), and the stored ones of files still listed. *inserted
 * counts the records that are new or replaced.
 */
static size_t new_records(const dtn__cache_dir *d, rec *out, time_t hashed_at, uint64_t *racy,
			  uint64_t *inserted)
{
	size_t i = 0, j = 0, k = 0;

	while (i < d->nold || j < d->nfresh) {
		const rec *o = i < d->nold ? &d->old[i] : NULL, *f = j < d->nfresh ? &d->fresh[j] : NULL;
		bool conflict = false, racy_one;
		size_t next;

		if (f && (!o || f->ino <= o->ino)) {
			for (next = j + 1; next < d->nfresh && d->fresh[next].ino == f->ino; next++)
				conflict |= memcmp(&d->fresh[next], f, sizeof(*f)) != 0;
			j = next;
			if (o && o->ino == f->ino)
				i++;
			racy_one = is_racy(f, hashed_at);
			*racy += racy_one;
			if (conflict || racy_one)
				continue;
			if (!o || o->ino != f->ino || memcmp(o, f, sizeof(*f)) != 0)
				(*inserted)++;
			out[k++] = *f;
			continue;
		}
		i++;
		if (is_listed(d, o->ino))
			out[k++] = *o;
	}
	return k;
}

int dtn__cache_dir_close(dtn__cache *c, dtn__cache_dir *d, time_t hashed_at)
{
	uint64_t racy = 0, inserted = 0;
	rec *recs = NULL;
	size_t n;
	bool changed, refresh;
	int rc = 0;

	if (!c || !c->path || d->off || d->failed) {
		rc = d->failed && !d->off ? DTN_ENOMEM : 0;
		goto out;
	}
	if (d->nfresh > 1)
		qsort(d->fresh, d->nfresh, sizeof(*d->fresh), rec_cmp);
	if (d->nlisted > 1)
		qsort(d->listed, d->nlisted, sizeof(*d->listed), ino_cmp);
	if (!(recs = dtn__malloc((d->nold + d->nfresh ? d->nold + d->nfresh : 1) * sizeof(*recs)))) {
		rc = DTN_ENOMEM;
		goto out;
	}
	n = new_records(d, recs, hashed_at, &racy, &inserted);
	changed = n != d->nold || (n && memcmp(recs, d->old, n * sizeof(*recs)) != 0);
	pthread_mutex_lock(&c->mu);
	c->st.racy += racy;
	refresh = !changed && n && d->has_base && d->base_gen + REFRESH_GENS < c->f.h.gen;
	if (changed || refresh) {
		if ((rc = spill_put(c, d, recs, n)) == 0)
			c->st.inserted += inserted;
		if (rc == 0 && c->s.len >= c->budget) {
			dtn_error e;
			int wrc;

			dtn_error_clear(&e);
			if ((wrc = write_out(c, &e)) < 0) {
				/* what was stored is lost; the next save says why */
				spill_clear(&c->s, c->budget);
				if (!c->flush_rc) {
					c->flush_rc = wrc;
					c->flush_err = e;
				}
			}
		}
	}
	pthread_mutex_unlock(&c->mu);
out:
	dtn__free(recs);
	dtn__cache_dir_free(d);
	return rc;
}

/* ---- the rest ---- */

void dtn__cache_free(dtn__cache *c)
{
	if (!c)
		return;
	file_close(&c->f);
	spill_free(&c->s);
	dtn__sha256_free(c->sha);
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
	pthread_mutex_lock((pthread_mutex_t *)&c->mu);
	*out = c->st;
	pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
	out->hits = atomic_load((atomic_uint_least64_t *)&c->hits);
	out->misses = atomic_load((atomic_uint_least64_t *)&c->misses);
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

void dtn__cache_set_budget(dtn__cache *c, size_t bytes)
{
	if (!c)
		return;
	c->budget = bytes < sizeof(blk) ? sizeof(blk) : bytes;
}
