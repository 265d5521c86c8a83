/*
 * test_cache.c - the per-file digest cache: hits and misses, persistence, its location, damage
 * to each part of the file, truncation, foreign files, concurrent processes and threads, the
 * racy-timestamp rule, pruning, eviction, more stored than the memory budget holds, and
 * allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "hash.h"
#include "testutil.h"

/* The file format as the tests see it. */
#define HDR 128
#define BLK 64
#define REC 72
#define IDX 32
#define FENCE 48
#define PAGE 128
#define OFF_VERSION 8
#define OFF_ORDER 12
#define OFF_RECSIZE 16
#define OFF_PAGE 20
#define OFF_NBLOCKS 24
#define OFF_NRECS 32
#define OFF_INDEX 48
#define OFF_FENCES 56
#define OFF_SUM 96
#define BLK_SUM 32

/* ---- helpers ---- */

static char *fresh_dir(void)
{
	char *d = strdup(tu_mkdtemp());

	assert_non_null(d);
	return d;
}

static char *file_in(const char *dir)
{
	char *p = malloc(PATH_MAX);

	assert_non_null(p);
	snprintf(p, PATH_MAX, "%s/%s", dir, DTN__CACHE_FILE);
	return p;
}

/* A made-up signature of a file last changed long ago. */
static dtn__stat_sig sig_of(uint64_t dev, uint64_t ino)
{
	dtn__stat_sig s = {
		.dev = dev,
		.ino = ino,
		.size = ino * 3 + 1,
		.mtime_s = 1500000000 + (int64_t)ino,
		.mtime_ns = (int32_t)(ino % 1000000000),
		.ctime_s = 1600000000 + (int64_t)ino,
		.ctime_ns = (int32_t)((ino * 7) % 1000000000),
	};

	return s;
}

static void digest_of(const dtn__stat_sig *s, unsigned char d[32])
{
	for (int i = 0; i < 32; i++)
		d[i] = (unsigned char)(s->dev * 31 + s->ino * 131 + s->size + (uint64_t)i * 7);
}

/*
 * A walk of directory (dev, dino) holding files first..last: all listed, the digests of
 * put_first..last given (0: none), then closed.
 */
static void walk_dir(dtn__cache *c, uint64_t dev, uint64_t dino, uint64_t first, uint64_t last,
		     uint64_t put_first)
{
	dtn__cache_dir d;

	assert_int_equal(dtn__cache_dir_open(c, &d, dev, dino), 0);
	for (uint64_t i = first; i <= last; i++)
		assert_int_equal(dtn__cache_dir_listed(&d, i), 0);
	for (uint64_t i = put_first; put_first && i <= last; i++) {
		dtn__stat_sig s = sig_of(dev, i);
		unsigned char dg[32];

		digest_of(&s, dg);
		assert_int_equal(dtn__cache_dir_put(&d, &s, dg), 0);
	}
	assert_int_equal(dtn__cache_dir_close(c, &d, time(NULL)), 0);
}

/* Stores digests for files first..last of directory (dev, dino), which holds just those. */
static void store(dtn__cache *c, uint64_t dev, uint64_t dino, uint64_t first, uint64_t last)
{
	walk_dir(c, dev, dino, first, last, first);
}

/*
 * How many of files first..last directory (dev, dino) gives the digests of, in one opening of
 * the directory; a hit must carry the right digest unless `any` (a file made up by a test).
 */
static uint64_t hits_in(dtn__cache *c, uint64_t dev, uint64_t dino, uint64_t first, uint64_t last,
			bool any)
{
	dtn__cache_dir d;
	uint64_t n = 0;

	dtn__cache_dir_open(c, &d, dev, dino);
	for (uint64_t i = first; i <= last; i++) {
		dtn__stat_sig s = sig_of(dev, i);
		unsigned char want[32], got[32];

		if (!dtn__cache_dir_lookup(c, &d, &s, got))
			continue;
		digest_of(&s, want);
		if (!any)
			assert_memory_equal(got, want, 32);
		n++;
	}
	dtn__cache_dir_free(&d);
	return n;
}

/* Whether directory (dev, dino) gives file ino's digest; a hit must carry the right one. */
static bool has(dtn__cache *c, uint64_t dev, uint64_t dino, uint64_t ino)
{
	return hits_in(c, dev, dino, ino, ino, false) == 1;
}

/* Whether files first..last of the directory are all there. */
static bool has_all(dtn__cache *c, uint64_t dev, uint64_t dino, uint64_t first, uint64_t last)
{
	return hits_in(c, dev, dino, first, last, false) == last - first + 1;
}

static dtn__cache *open_ok(const char *dir)
{
	dtn__cache *c = NULL;
	dtn_error err;

	assert_int_equal(dtn__cache_open(&c, dir, &err), 0);
	assert_non_null(c);
	return c;
}

static void save_ok(dtn__cache *c)
{
	dtn_error err;

	dtn_error_clear(&err);
	if (dtn__cache_save(c, &err) != 0)
		fail_msg("save failed: %s", err.message);
}

static dtn__cache_stats stats_of(const dtn__cache *c)
{
	dtn__cache_stats st;

	dtn__cache_stats_get(c, &st);
	return st;
}

/* The directories of the standard test cache: k = 0 .. ndirs-1, key (1, 1000 + k). */
#define DINO(k) (1000u + (uint64_t)(k))
#define FIRST(k, per) ((uint64_t)(k) * 100u + 1u)
#define LAST(k, per) ((uint64_t)(k) * 100u + (uint64_t)(per))

/* A cache in dir holding ndirs directories of per files each (per <= 99). */
static void make_cache(const char *dir, unsigned ndirs, unsigned per)
{
	dtn__cache *c = open_ok(dir);

	for (unsigned k = 0; k < ndirs; k++)
		store(c, 1, DINO(k), FIRST(k, per), LAST(k, per));
	save_ok(c);
	dtn__cache_free(c);
}

/* How many directories of the standard cache are there whole, asserting none is partial. */
static unsigned dirs_present(dtn__cache *c, unsigned ndirs, unsigned per, bool *which)
{
	unsigned n = 0;

	for (unsigned k = 0; k < ndirs; k++) {
		unsigned hits = (unsigned)hits_in(c, 1, DINO(k), FIRST(k, per), LAST(k, per), false);

		if (hits && hits != per)
			fail_msg("directory %u is partly there (%u of %u)", k, hits, per);
		if (which)
			which[k] = hits != 0;
		n += hits != 0;
	}
	return n;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/*
 * Writes data as the whole content of path, in place: emptying the file first makes some
 * filesystems flush it on close, and the damage tests write thousands of versions.
 */
static void spit(const char *path, const unsigned char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	assert_int_equal(close(fd), 0);
}

static uint64_t u64_at(const unsigned char *data, size_t off)
{
	uint64_t v;

	memcpy(&v, data + off, sizeof(v));
	return v;
}

static void sum_of(unsigned char out[32], const void *a, size_t alen, const void *b, size_t blen)
{
	dtn__sha256 *h = dtn__sha256_new();

	assert_non_null(h);
	assert_int_equal(dtn__sha256_init(h), 0);
	assert_int_equal(dtn__sha256_update(h, a, alen), 0);
	assert_int_equal(dtn__sha256_update(h, b, blen), 0);
	assert_int_equal(dtn__sha256_final(h, out), 0);
	dtn__sha256_free(h);
}

/* Recomputes the header's checksum, as a writer that meant the header would. */
static void reseal_header(unsigned char *data, size_t len)
{
	uint64_t fences = u64_at(data, OFF_FENCES);

	assert_true(fences <= len);
	sum_of(data + OFF_SUM, data, OFF_SUM, data + fences, len - fences);
}

/* Recomputes the sum of block i of the standard cache (per files each). */
static void reseal_block(unsigned char *data, unsigned i, unsigned per)
{
	unsigned char *b = data + HDR + (size_t)i * (BLK + (size_t)per * REC);

	sum_of(b + BLK_SUM, b, BLK_SUM, b + BLK, (size_t)per * REC);
}

/* Recomputes the sum of index page p in its fence, then the header's. */
static void reseal_page(unsigned char *data, size_t len, unsigned p)
{
	uint64_t index = u64_at(data, OFF_INDEX), fences = u64_at(data, OFF_FENCES);
	uint64_t nblocks = u64_at(data, OFF_NBLOCKS), first = (uint64_t)p * PAGE;
	uint64_t n = nblocks - first < PAGE ? nblocks - first : PAGE;

	sum_of(data + fences + (size_t)p * FENCE + 16, data + index + first * IDX, (size_t)(n * IDX),
	       "", 0);
	reseal_header(data, len);
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/*
 * Opens the damaged file in dir: it must be rejected (unless `may_accept`), then a save must
 * replace it with a valid file.
 */
static void expect_rebuilt(const char *dir, bool may_accept)
{
	dtn__cache *c = open_ok(dir);
	dtn__cache_stats st = stats_of(c);

	if (!may_accept) {
		assert_true(st.rejected);
		assert_non_null(st.reject_reason);
		assert_int_equal(st.loaded, 0);
		assert_false(has(c, 1, DINO(0), 1));
	}
	for (unsigned k = 0; k < 8; k++)
		has(c, 1, DINO(k), FIRST(k, 3));
	store(c, 9, 9, 1, 2);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	st = stats_of(c);
	assert_false(st.rejected);
	assert_true(st.loaded >= 2);
	assert_true(has(c, 9, 9, 1) && has(c, 9, 9, 2));
	assert_int_equal(stats_of(c).damaged, 0);
	dtn__cache_free(c);
}

/* ---- hits and misses ---- */

static void test_builder_cache__hit(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	dtn__cache *c = open_ok(dir);
	dtn__cache_stats st;

	(void)state;
	assert_false(has(c, 1, 7, 5));
	store(c, 1, 7, 5, 5);
	assert_true(has(c, 1, 7, 5));
	assert_false(has(c, 1, 7, 6));
	assert_false(has(c, 1, 8, 5)); /* another directory */
	assert_false(has(c, 2, 7, 5)); /* another device */
	st = stats_of(c);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 4);
	assert_int_equal(st.inserted, 1);
	assert_false(st.rejected);
	assert_string_equal(dtn__cache_path(c), path);
	/* nothing is written before a save (the budget is far away) */
	assert_int_equal(access(path, F_OK), -1);
	save_ok(c);
	assert_int_equal(access(path, F_OK), 0);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Each field of the signature, changed alone, makes a lookup miss. */
static void assert_every_field_matters(dtn__cache *c, uint64_t dev, uint64_t dino, uint64_t ino)
{
	dtn__stat_sig base = sig_of(dev, ino), s;
	unsigned char d[32];
	dtn__cache_dir cd;

	dtn__cache_dir_open(c, &cd, dev, dino);
	for (int field = 0; field < 7; field++) {
		s = base;
		switch (field) {
		case 0: s.dev++; break;
		case 1: s.ino++; break;
		case 2: s.size++; break;
		case 3: s.mtime_s++; break;
		case 4: s.mtime_ns++; break;
		case 5: s.ctime_s--; break;
		default: s.ctime_ns++; break;
		}
		if (dtn__cache_dir_lookup(c, &cd, &s, d))
			fail_msg("field %d changed, still a hit", field);
	}
	assert_true(dtn__cache_dir_lookup(c, &cd, &base, d));
	dtn__cache_dir_free(&cd);
}

static void test_builder_cache__miss_on_any_changed_field(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *c = open_ok(dir);

	(void)state;
	store(c, 3, 3, 40, 40);
	/* from what this run stored ... */
	assert_every_field_matters(c, 3, 3, 40);
	save_ok(c);
	/* ... from the file this cache wrote ... */
	assert_every_field_matters(c, 3, 3, 40);
	dtn__cache_free(c);
	/* ... and from the file opened anew */
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 1);
	assert_every_field_matters(c, 3, 3, 40);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

static void test_builder_cache__persists(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	dtn__cache *c;
	ino_t ino;

	(void)state;
	make_cache(dir, 50, 10);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 500);
	assert_int_equal(dirs_present(c, 50, 10, NULL), 50);
	assert_false(has(c, 1, DINO(0), LAST(0, 10) + 1));
	/* nothing changed, so nothing is written */
	ino = inode_of(path);
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	assert_int_equal(stats_of(c).saved, 0);
	/* a walk that finds what is stored, and puts the same digests again, is no change either */
	walk_dir(c, 1, DINO(3), FIRST(3, 10), LAST(3, 10), 0);
	store(c, 1, DINO(4), FIRST(4, 10), LAST(4, 10));
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	assert_int_equal(stats_of(c).inserted, 0);
	/* a new directory is */
	store(c, 2, 1, 1, 3);
	save_ok(c);
	assert_true(inode_of(path) != ino);
	assert_int_equal(stats_of(c).saved, 503);
	assert_int_equal(stats_of(c).writes, 1);
	/* the saved state serves lookups at once, and a second save is again a no-op */
	assert_true(has_all(c, 2, 1, 1, 3));
	assert_true(has(c, 1, DINO(0), 1));
	ino = inode_of(path);
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 503);
	assert_true(has_all(c, 2, 1, 1, 3));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* A new signature for a file replaces its entry; files no longer listed are dropped. */
static void test_builder_cache__replaces_and_prunes(void **state)
{
	char *dir = fresh_dir();
	dtn__stat_sig s = sig_of(1, 3);
	unsigned char d[32], got[32];
	dtn__cache_dir cd;
	dtn__cache *c;

	(void)state;
	c = open_ok(dir);
	store(c, 1, 50, 1, 5);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	/* file 3 rewritten, file 5 deleted, file 6 new; file 4 listed but not hashed this time */
	s.size = 12345;
	s.ctime_s += 100;
	memset(d, 0xab, sizeof(d));
	assert_int_equal(dtn__cache_dir_open(c, &cd, 1, 50), 0);
	for (uint64_t i = 1; i <= 6; i++)
		if (i != 5)
			dtn__cache_dir_listed(&cd, i);
	assert_false(dtn__cache_dir_lookup(c, &cd, &s, got));
	assert_int_equal(dtn__cache_dir_put(&cd, &s, d), 0);
	{
		dtn__stat_sig s6 = sig_of(1, 6);
		unsigned char d6[32];

		digest_of(&s6, d6);
		assert_int_equal(dtn__cache_dir_put(&cd, &s6, d6), 0);
	}
	assert_int_equal(dtn__cache_dir_close(c, &cd, time(NULL)), 0);
	assert_int_equal(stats_of(c).inserted, 2);
	/* what was stored answers at once */
	dtn__cache_dir_open(c, &cd, 1, 50);
	assert_true(dtn__cache_dir_lookup(c, &cd, &s, got));
	assert_memory_equal(got, d, 32);
	dtn__cache_dir_free(&cd);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 5); /* 1, 2, 3 (new), 4, 6 */
	assert_false(has(c, 1, 50, 3));
	dtn__cache_dir_open(c, &cd, 1, 50);
	assert_true(dtn__cache_dir_lookup(c, &cd, &s, got));
	assert_memory_equal(got, d, 32);
	dtn__cache_dir_free(&cd);
	assert_true(has(c, 1, 50, 4) && has(c, 1, 50, 6));
	assert_false(has(c, 1, 50, 5));
	/* a directory whose files are all gone disappears */
	walk_dir(c, 1, 50, 1, 0, 0);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 0);
	dtn__cache_free(c);
	/* a file on another device than its directory is never stored */
	c = open_ok(dir);
	dtn__cache_dir_open(c, &cd, 1, 60);
	dtn__cache_dir_listed(&cd, 7);
	s = sig_of(2, 7);
	digest_of(&s, d);
	dtn__cache_dir_put(&cd, &s, d);
	dtn__cache_dir_close(c, &cd, time(NULL));
	assert_int_equal(stats_of(c).inserted, 0);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* Two different digests put for one file in one walk: neither is kept. */
static void test_builder_cache__conflicting_puts(void **state)
{
	char *dir = fresh_dir();
	dtn__stat_sig s = sig_of(1, 8);
	unsigned char a[32], b[32];
	dtn__cache_dir cd;
	dtn__cache *c = open_ok(dir);

	(void)state;
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	dtn__cache_dir_open(c, &cd, 1, 70);
	dtn__cache_dir_listed(&cd, 8);
	dtn__cache_dir_put(&cd, &s, a);
	dtn__cache_dir_put(&cd, &s, b);
	dtn__cache_dir_close(c, &cd, time(NULL));
	assert_false(has(c, 1, 70, 8));
	/* the same one twice is fine */
	dtn__cache_dir_open(c, &cd, 1, 70);
	dtn__cache_dir_listed(&cd, 8);
	digest_of(&s, a);
	dtn__cache_dir_put(&cd, &s, a);
	dtn__cache_dir_put(&cd, &s, a);
	dtn__cache_dir_close(c, &cd, time(NULL));
	assert_true(has(c, 1, 70, 8));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* ---- where the cache lives ---- */

static void restore_env(const char *name, char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
	free(value);
}

static char *saved_env(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

static void assert_mode_0700(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_builder_cache__default_location(void **state)
{
	char *home = saved_env("HOME"), *xdg = saved_env("XDG_CACHE_HOME");
	char *dir = fresh_dir(), want[PATH_MAX];
	dtn__cache *c;

	(void)state;
	/* $XDG_CACHE_HOME/dtn */
	snprintf(want, sizeof(want), "%s/xdg", dir);
	setenv("XDG_CACHE_HOME", want, 1);
	setenv("HOME", "/nonexistent-home", 1);
	c = open_ok(NULL);
	snprintf(want, sizeof(want), "%s/xdg/dtn/%s", dir, DTN__CACHE_FILE);
	assert_string_equal(dtn__cache_path(c), want);
	store(c, 1, 1, 1, 1);
	save_ok(c);
	dtn__cache_free(c);
	assert_int_equal(access(want, R_OK), 0);
	snprintf(want, sizeof(want), "%s/xdg/dtn", dir);
	assert_mode_0700(want);

	/* $HOME/.cache/dtn, also when XDG_CACHE_HOME is relative or empty */
	setenv("HOME", dir, 1);
	for (int i = 0; i < 3; i++) {
		if (i == 0)
			unsetenv("XDG_CACHE_HOME");
		else
			setenv("XDG_CACHE_HOME", i == 1 ? "relative/cache" : "", 1);
		c = open_ok(NULL);
		snprintf(want, sizeof(want), "%s/.cache/dtn/%s", dir, DTN__CACHE_FILE);
		assert_string_equal(dtn__cache_path(c), want);
		store(c, 1, (uint64_t)i + 1, 1, 1);
		save_ok(c);
		dtn__cache_free(c);
	}
	c = open_ok(NULL);
	assert_int_equal(stats_of(c).loaded, 3);
	dtn__cache_free(c);
	snprintf(want, sizeof(want), "%s/.cache", dir);
	assert_mode_0700(want);
	snprintf(want, sizeof(want), "%s/.cache/dtn", dir);
	assert_mode_0700(want);

	/* neither: no cache */
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	c = open_ok(NULL);
	assert_null(dtn__cache_path(c));
	dtn__cache_free(c);

	/* a directory the caller names wins over both, trailing '/' or not */
	setenv("HOME", dir, 1);
	snprintf(want, sizeof(want), "%s/mine/", dir);
	c = open_ok(want);
	snprintf(want, sizeof(want), "%s/mine/%s", dir, DTN__CACHE_FILE);
	assert_string_equal(dtn__cache_path(c), want);
	dtn__cache_free(c);

	restore_env("HOME", home);
	restore_env("XDG_CACHE_HOME", xdg);
	tu_rmtree(dir);
	free(dir);
}

static void test_builder_cache__disabled(void **state)
{
	char *home = saved_env("HOME"), *xdg = saved_env("XDG_CACHE_HOME");
	char *dir = fresh_dir(), cwd[PATH_MAX];
	dtn__cache_dir cd;
	dtn__cache *c;

	(void)state;
	setenv("HOME", dir, 1);
	setenv("XDG_CACHE_HOME", dir, 1);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	c = open_ok("");
	assert_null(dtn__cache_path(c));
	dtn__cache_set_budget(c, 1);
	store(c, 1, 1, 1, 1);
	assert_false(has(c, 1, 1, 1));
	save_ok(c);
	assert_int_equal(stats_of(c).misses, 1);
	assert_int_equal(stats_of(c).inserted, 0);
	dtn__cache_free(c);
	/* nothing was written anywhere */
	assert_int_equal(count_entries(dir), 0);
	assert_int_equal(chdir(cwd), 0);
	restore_env("HOME", home);
	restore_env("XDG_CACHE_HOME", xdg);

	assert_int_equal(dtn__cache_open(NULL, "", NULL), DTN_EINVAL);
	/* no cache at all: every call works and finds nothing */
	assert_int_equal(dtn__cache_dir_open(NULL, &cd, 1, 1), 0);
	assert_int_equal(dtn__cache_dir_listed(&cd, 1), 0);
	assert_false(dtn__cache_dir_lookup(NULL, &cd, &(dtn__stat_sig){.dev = 1}, (unsigned char[32]){0}));
	assert_int_equal(dtn__cache_dir_put(&cd, &(dtn__stat_sig){.dev = 1}, (unsigned char[32]){0}), 0);
	assert_int_equal(dtn__cache_dir_close(NULL, &cd, 0), 0);
	assert_int_equal(dtn__cache_save(NULL, NULL), 0);
	assert_null(dtn__cache_path(NULL));
	dtn__cache_free(NULL);
	tu_rmtree(dir);
	free(dir);
}

/* ---- damaged, truncated and foreign files ---- */

/* The standard small cache for damage tests: 6 directories of 3 files, one index page. */
#define DN 6
#define DPER 3

/* Which part of the standard small file a byte is in. */
enum part { P_HEADER, P_BLOCK, P_INDEX, P_FENCE };

static enum part part_of(size_t pos, size_t *block)
{
	size_t blocks_end = HDR + (size_t)DN * (BLK + DPER * REC);

	if (pos < HDR)
		return P_HEADER;
	if (pos < blocks_end) {
		*block = (pos - HDR) / (BLK + DPER * REC);
		return P_BLOCK;
	}
	if (pos < blocks_end + (size_t)DN * IDX)
		return P_INDEX;
	return P_FENCE;
}

/*
 * Every single flipped bit, anywhere in the file, is noticed: in the header or the fences the
 * file is refused at open; in an index page every directory of that page misses; in a block
 * that directory misses and the others are found. A hit never carries a wrong digest.
 */
static void test_builder_cache__flipped_bits(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good, *bad;
	size_t len, block = 0;
	bool which[DN];

	(void)state;
	make_cache(dir, DN, DPER);
	good = slurp(path, &len);
	assert_int_equal(len, HDR + DN * (BLK + DPER * REC) + DN * IDX + FENCE);
	bad = malloc(len);
	for (size_t pos = 0; pos < len; pos++) {
		enum part part = part_of(pos, &block);
		dtn__cache *c;
		unsigned n;

		memcpy(bad, good, len);
		bad[pos] ^= (unsigned char)(1u << (pos % 8));
		spit(path, bad, len);
		c = open_ok(dir);
		if (part == P_HEADER || part == P_FENCE) {
			if (!stats_of(c).rejected)
				fail_msg("a flip at byte %zu (header or fences) went unnoticed", pos);
			assert_int_equal(dirs_present(c, DN, DPER, NULL), 0);
			dtn__cache_free(c);
			continue;
		}
		assert_false(stats_of(c).rejected);
		n = dirs_present(c, DN, DPER, which);
		if (part == P_INDEX && n != 0)
			fail_msg("a flip at byte %zu (index) left %u directories in use", pos, n);
		if (part == P_BLOCK && (n != DN - 1 || which[block]))
			fail_msg("a flip at byte %zu (block %zu) left %u directories in use", pos, block,
				 n);
		assert_true(stats_of(c).damaged >= 1);
		dtn__cache_free(c);
	}
	/* and the last damaged one is replaced by a good file on save */
	expect_rebuilt(dir, false);
	free(bad);
	free(good);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Damage found by lookups, or only while merging, is dropped by the next save. */
static void test_builder_cache__damage_dropped_on_save(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good;
	size_t len, blen = BLK + DPER * REC;
	dtn__cache *c;
	bool which[DN];

	(void)state;
	make_cache(dir, DN, DPER);
	good = slurp(path, &len);

	/* found by a lookup: the save writes even with nothing stored */
	good[HDR + 2 * blen + BLK + 5] ^= 0x10; /* a record of directory 2 */
	spit(path, good, len);
	c = open_ok(dir);
	assert_false(has(c, 1, DINO(2), FIRST(2, DPER)));
	assert_int_equal(stats_of(c).damaged, 1);
	save_ok(c);
	assert_int_equal(stats_of(c).saved, (DN - 1) * DPER);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(dirs_present(c, DN, DPER, which), DN - 1);
	assert_false(which[2]);
	assert_int_equal(stats_of(c).damaged, 0);
	dtn__cache_free(c);

	/* not looked up: the merge checks every block it copies */
	free(good);
	good = slurp(path, &len);
	good[HDR + 0 * blen + 9] ^= 0x01; /* the key of directory 0's block */
	spit(path, good, len);
	c = open_ok(dir);
	store(c, 4, 4, 1, 1);
	save_ok(c);
	assert_int_equal(stats_of(c).damaged, 1);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(dirs_present(c, DN, DPER, which), DN - 2);
	assert_false(which[0] || which[2]);
	assert_true(has(c, 4, 4, 1));
	dtn__cache_free(c);
	free(good);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* A file cut anywhere, or with bytes added, is refused at open. */
static void test_builder_cache__truncated(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good, *big;
	size_t len;

	(void)state;
	make_cache(dir, 140, 2); /* two index pages */
	good = slurp(path, &len);
	for (size_t n = 0; n < len; n += n < 2 * HDR || len - n < 2 * HDR ? 1 : 7) {
		dtn__cache *c;

		spit(path, good, n);
		c = open_ok(dir);
		if (!stats_of(c).rejected)
			fail_msg("a file cut to %zu of %zu bytes was used", n, len);
		assert_false(has(c, 1, DINO(0), 1));
		dtn__cache_free(c);
	}
	spit(path, good, 0);
	expect_rebuilt(dir, false);
	spit(path, good, len / 2);
	expect_rebuilt(dir, false);
	/* trailing bytes after the last fence */
	big = calloc(1, len + 8);
	memcpy(big, good, len);
	spit(path, big, len + 8);
	{
		dtn__cache *c = open_ok(dir);

		assert_true(stats_of(c).rejected);
		assert_non_null(strstr(stats_of(c).reject_reason, "after its end"));
		dtn__cache_free(c);
	}
	expect_rebuilt(dir, false);
	free(big);
	free(good);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Writes a changed copy of `good` (resealed when asked) and expects it to be refused. */
static void expect_ignored(const char *dir, const unsigned char *good, size_t len, size_t off,
			   const void *bytes, size_t n, bool seal, const char *reason)
{
	char path[PATH_MAX];
	unsigned char *bad = malloc(len);
	dtn__cache *c;

	snprintf(path, sizeof(path), "%s/%s", dir, DTN__CACHE_FILE);
	memcpy(bad, good, len);
	memcpy(bad + off, bytes, n);
	if (seal)
		reseal_header(bad, len);
	spit(path, bad, len);
	c = open_ok(dir);
	assert_true(stats_of(c).rejected);
	if (!strstr(stats_of(c).reject_reason, reason))
		fail_msg("reason \"%s\", expected \"%s\"", stats_of(c).reject_reason, reason);
	dtn__cache_free(c);
	expect_rebuilt(dir, false);
	free(bad);
}

/* Writes a changed copy, made consistent by `fix`, and expects directory k to be refused. */
static void expect_dir_refused(const char *dir, const unsigned char *good, size_t len,
			       void (*change)(unsigned char *, size_t), unsigned k)
{
	char path[PATH_MAX];
	unsigned char *bad = malloc(len);
	bool which[DN];
	dtn__cache *c;

	snprintf(path, sizeof(path), "%s/%s", dir, DTN__CACHE_FILE);
	memcpy(bad, good, len);
	change(bad, len);
	spit(path, bad, len);
	c = open_ok(dir);
	assert_false(stats_of(c).rejected);
	dirs_present(c, DN, DPER, which);
	assert_false(which[k]);
	assert_true(stats_of(c).damaged >= 1);
	dtn__cache_free(c);
	spit(path, good, len);
	free(bad);
}

static size_t blk_at(unsigned k)
{
	return HDR + (size_t)k * (BLK + DPER * REC);
}

/* Records out of order inside a block, resealed. */
static void swap_records(unsigned char *b, size_t len)
{
	unsigned char tmp[REC];
	unsigned char *r = b + blk_at(1) + BLK;

	(void)len;
	memcpy(tmp, r, REC);
	memcpy(r, r + REC, REC);
	memcpy(r + REC, tmp, REC);
	reseal_block(b, 1, DPER);
}

/* A block whose key is not its index entry's, resealed. */
static void wrong_block_key(unsigned char *b, size_t len)
{
	(void)len;
	b[blk_at(3) + 8] ^= 0x40;
	reseal_block(b, 3, DPER);
}

static size_t idx_at(unsigned k)
{
	return HDR + (size_t)DN * (BLK + DPER * REC) + (size_t)k * IDX;
}

/* An index entry pointing past the blocks, resealed. */
static void offset_out_of_range(unsigned char *b, size_t len)
{
	uint64_t off = u64_at(b, OFF_INDEX);

	memcpy(b + idx_at(4) + 16, &off, sizeof(off));
	reseal_page(b, len, 0);
}

/* Index entries out of order, resealed: the whole page is refused (directory 0 with it). */
static void index_out_of_order(unsigned char *b, size_t len)
{
	unsigned char tmp[IDX];

	memcpy(tmp, b + idx_at(0), IDX);
	memcpy(b + idx_at(0), b + idx_at(1), IDX);
	memcpy(b + idx_at(1), tmp, IDX);
	/* the fence names the page's first key */
	memcpy(b + u64_at(b, OFF_FENCES), b + idx_at(0), 16);
	reseal_page(b, len, 0);
}

static void test_builder_cache__foreign_files(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good;
	uint32_t u32;
	uint64_t u64;
	size_t len;

	(void)state;
	make_cache(dir, DN, DPER);
	good = slurp(path, &len);
	expect_ignored(dir, good, len, 0, "PK\3\4", 4, true, "not a dtn digest cache");
	u32 = 1;
	expect_ignored(dir, good, len, OFF_VERSION, &u32, 4, true, "version");
	u32 = 0x04030201;
	expect_ignored(dir, good, len, OFF_ORDER, &u32, 4, true, "byte order");
	u32 = 88;
	expect_ignored(dir, good, len, OFF_RECSIZE, &u32, 4, true, "record size");
	u32 = 64;
	expect_ignored(dir, good, len, OFF_PAGE, &u32, 4, true, "record size");
	u64 = UINT64_C(1) << 60;
	expect_ignored(dir, good, len, OFF_NBLOCKS, &u64, 8, true, "too many");
	u64 = DTN__CACHE_MAX_ENTRIES + 1;
	expect_ignored(dir, good, len, OFF_NRECS, &u64, 8, true, "too many");
	u64 = DN * DPER + 1;
	expect_ignored(dir, good, len, OFF_NRECS, &u64, 8, true, "inconsistent");
	u64 = DN - 1;
	expect_ignored(dir, good, len, OFF_NBLOCKS, &u64, 8, true, "inconsistent");
	/* an older format's file of the same name */
	{
		unsigned char v1[80 + 88] = "dtndgst\n\1\0\0\0";

		spit(path, v1, sizeof(v1));
		expect_rebuilt(dir, false);
		spit(path, good, len);
	}
	/* resealed damage inside a block or the index refuses the directories it touches */
	expect_dir_refused(dir, good, len, swap_records, 1);
	expect_dir_refused(dir, good, len, wrong_block_key, 3);
	expect_dir_refused(dir, good, len, offset_out_of_range, 4);
	expect_dir_refused(dir, good, len, index_out_of_order, 0);
	/* a resealed change to a digest is a valid file, and is used as such */
	{
		unsigned char *copy = malloc(len);
		dtn__cache *c;

		memcpy(copy, good, len);
		copy[blk_at(2) + BLK + REC + 50] ^= 1; /* the digest of its second file */
		reseal_block(copy, 2, DPER);
		spit(path, copy, len);
		c = open_ok(dir);
		assert_false(stats_of(c).rejected);
		assert_true(has(c, 1, DINO(1), FIRST(1, DPER)));
		dtn__cache_free(c);
		expect_rebuilt(dir, true);
		free(copy);
	}
	free(good);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

static void test_builder_cache__not_a_file(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir), sub[PATH_MAX];
	dtn__cache *c;
	dtn_error err;

	(void)state;
	/* an empty directory in the file's place is replaced */
	assert_int_equal(mkdir(path, 0700), 0);
	expect_rebuilt(dir, false);
	/* a FIFO neither hangs the open nor survives the save */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_rebuilt(dir, false);
	/* a directory with something in it is left alone, and the save says so */
	assert_int_equal(unlink(path), 0);
	snprintf(sub, sizeof(sub), "%s/keep", path);
	tu_write(path, "keep", "x");
	c = open_ok(dir);
	assert_true(stats_of(c).rejected);
	store(c, 1, 1, 1, 1);
	assert_int_equal(dtn__cache_save(c, &err), DTN_EIO);
	assert_non_null(strstr(err.message, DTN__CACHE_FILE));
	dtn__cache_free(c);
	assert_int_equal(access(sub, F_OK), 0);
	/* no temporary file is left behind: the lock file and the directory only */
	assert_int_equal(count_entries(dir), 2);
	/* a cache directory that is a file cannot be saved to, and the open still works */
	snprintf(sub, sizeof(sub), "%s/plain", dir);
	tu_write(dir, "plain", "x");
	c = open_ok(sub);
	assert_false(stats_of(c).rejected);
	store(c, 1, 1, 1, 1);
	assert_int_equal(dtn__cache_save(c, &err), DTN_EIO);
	assert_non_null(strstr(err.message, "plain"));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Random damage, over and over: never a crash, never a wrong digest, always replaceable. */
static void test_builder_cache__random_damage(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good, *bad;
	size_t len;
	unsigned seed = 12345;

	(void)state;
	make_cache(dir, DN, DPER);
	good = slurp(path, &len);
	bad = malloc(len);
	for (int round = 0; round < 400; round++) {
		size_t n = len;
		int edits = 1 + rand_r(&seed) % 8;
		int seal = round % 20 == 0 ? 0 : rand_r(&seed) % 3;
		dtn__cache *c;

		memcpy(bad, good, len);
		for (int e = 0; e < edits; e++)
			bad[(size_t)rand_r(&seed) % len] = (unsigned char)rand_r(&seed);
		if (rand_r(&seed) % 4 == 0)
			n = (size_t)rand_r(&seed) % len;
		/* sometimes as a writer that meant it: every sum made right */
		if (seal && n == len) {
			for (unsigned k = 0; k < DN; k++)
				reseal_block(bad, k, DPER);
			if (u64_at(bad, OFF_INDEX) == u64_at(good, OFF_INDEX) &&
			    u64_at(bad, OFF_FENCES) == u64_at(good, OFF_FENCES) &&
			    u64_at(bad, OFF_NBLOCKS) == u64_at(good, OFF_NBLOCKS))
				reseal_page(bad, len, 0);
		}
		spit(path, bad, n);
		c = open_ok(dir);
		/* whatever was accepted must answer lookups of any key; unsealed, none is wrong */
		for (unsigned k = 0; k < DN + 1; k++)
			hits_in(c, 1, DINO(k), FIRST(k, DPER), LAST(k, DPER), seal != 0);
		if (seal == 0 && (n != len || memcmp(bad, good, len) != 0)) {
			dtn__cache_stats st = stats_of(c);

			assert_true(st.rejected || st.damaged > 0 || dirs_present(c, DN, DPER, NULL) == DN);
		}
		dtn__cache_free(c);
		if (round % 20 == 0)
			expect_rebuilt(dir, true);
	}
	free(bad);
	free(good);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* ---- several writers ---- */

/* Two caches over one file save in turn: each keeps the other's directories. */
static void test_builder_cache__merges_on_save(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *a, *b, *c;

	(void)state;
	make_cache(dir, 3, 2);
	a = open_ok(dir);
	b = open_ok(dir);
	store(a, 5, 1, 1, 1);
	store(b, 6, 1, 1, 1);
	save_ok(a);
	save_ok(b);
	store(a, 5, 2, 1, 1);
	save_ok(a);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 9);
	assert_int_equal(dirs_present(c, 3, 2, NULL), 3);
	assert_true(has(c, 5, 1, 1) && has(c, 5, 2, 1) && has(c, 6, 1, 1));
	/* and what a reads after its save is the merged state too */
	assert_true(has(a, 6, 1, 1));
	dtn__cache_free(a);
	dtn__cache_free(b);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/*
 * One directory changed by two caches at once: the second save unites both versions rather
 * than dropping the first one's files; a cache that changed the version it read replaces it.
 */
static void test_builder_cache__same_directory_united(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *a, *b, *c;

	(void)state;
	c = open_ok(dir);
	store(c, 1, 77, 1, 2);
	save_ok(c);
	dtn__cache_free(c);
	a = open_ok(dir);
	b = open_ok(dir);
	/* both list files 1..4: a hashed 3, b hashed 4 */
	walk_dir(a, 1, 77, 1, 4, 3);
	{
		dtn__cache_dir d;
		dtn__stat_sig s = sig_of(1, 4);
		unsigned char dg[32];

		dtn__cache_dir_open(b, &d, 1, 77);
		for (uint64_t i = 1; i <= 4; i++)
			dtn__cache_dir_listed(&d, i);
		digest_of(&s, dg);
		dtn__cache_dir_put(&d, &s, dg);
		dtn__cache_dir_close(b, &d, time(NULL));
	}
	save_ok(a);
	save_ok(b);
	c = open_ok(dir);
	assert_true(has_all(c, 1, 77, 1, 4));
	dtn__cache_free(c);
	/* a still reads what it wrote, which b changed since: a's drop of file 1 is united away */
	walk_dir(a, 1, 77, 2, 4, 0);
	save_ok(a);
	c = open_ok(dir);
	assert_true(has_all(c, 1, 77, 1, 4));
	/* a cache that read the latest version drops file 1 (deleted): nobody came between */
	walk_dir(c, 1, 77, 2, 4, 0);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_false(has(c, 1, 77, 1));
	assert_true(has_all(c, 1, 77, 2, 4));
	dtn__cache_free(c);
	dtn__cache_free(a);
	dtn__cache_free(b);
	tu_rmtree(dir);
	free(dir);
}

#define WRITERS 4
#define ROUNDS 10
#define DIRS_PER_ROUND 8
#define FILES_PER_DIR 5

/*
 * One writer process: ROUNDS saves of DIRS_PER_ROUND new directories on device `dev`, and
 * each round a file of its own in the directory all writers share (device 99). Odd writers keep
 * their cache open across saves, even ones reopen it; one writer has a budget small enough to
 * write in the middle of its rounds.
 */
static void writer(const char *dir, uint64_t dev)
{
	bool keep = dev % 2;
	dtn__cache *c = NULL;

	for (int r = 0; r < ROUNDS; r++) {
		if (!c && dtn__cache_open(&c, dir, NULL) < 0)
			_exit(2);
		if (dev == 1)
			dtn__cache_set_budget(c, 2000);
		for (uint64_t k = 0; k < DIRS_PER_ROUND; k++) {
			uint64_t dino = (uint64_t)r * DIRS_PER_ROUND + k + 1;
			dtn__cache_dir d;

			if (dtn__cache_dir_open(c, &d, dev, dino) < 0)
				_exit(3);
			for (uint64_t i = 1; i <= FILES_PER_DIR; i++) {
				dtn__stat_sig s = sig_of(dev, dino * 100 + i);
				unsigned char dg[32];

				digest_of(&s, dg);
				if (dtn__cache_dir_listed(&d, s.ino) < 0 || dtn__cache_dir_put(&d, &s, dg) < 0)
					_exit(3);
			}
			if (dtn__cache_dir_close(c, &d, time(NULL)) < 0)
				_exit(3);
		}
		{
			/* the shared directory holds every writer's files */
			dtn__cache_dir d;
			dtn__stat_sig s = sig_of(99, dev * 1000 + (uint64_t)r + 1);
			unsigned char dg[32];

			dtn__cache_dir_open(c, &d, 99, 1);
			for (uint64_t w = 1; w <= WRITERS; w++)
				for (uint64_t i = 1; i <= ROUNDS; i++)
					dtn__cache_dir_listed(&d, w * 1000 + i);
			digest_of(&s, dg);
			dtn__cache_dir_put(&d, &s, dg);
			if (dtn__cache_dir_close(c, &d, time(NULL)) < 0)
				_exit(3);
		}
		if (dtn__cache_save(c, NULL) < 0)
			_exit(4);
		if (!keep) {
			dtn__cache_free(c);
			c = NULL;
		}
	}
	dtn__cache_free(c);
	_exit(0);
}

static void check_writers(dtn__cache *c)
{
	for (uint64_t w = 1; w <= WRITERS; w++) {
		for (uint64_t dino = 1; dino <= ROUNDS * DIRS_PER_ROUND; dino++)
			for (uint64_t i = 1; i <= FILES_PER_DIR; i++)
				if (!has(c, w, dino, dino * 100 + i))
					fail_msg("file %llu of directory %llu of writer %llu was lost",
						 (unsigned long long)i, (unsigned long long)dino,
						 (unsigned long long)w);
		for (uint64_t r = 1; r <= ROUNDS; r++)
			if (!has(c, 99, 1, w * 1000 + r))
				fail_msg("writer %llu's shared file %llu was lost",
					 (unsigned long long)w, (unsigned long long)r);
	}
}

/* Several processes save at once; readers only ever see whole files, and nothing is lost. */
static void test_builder_cache__concurrent_processes(void **state)
{
	/* on the stack: the writers end with _exit and must not leave heap memory behind */
	char dir[PATH_MAX];
	pid_t pids[WRITERS];
	int running = WRITERS, reads = 0, st;
	dtn__cache *c;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0)
			writer(dir, (uint64_t)w + 1);
	}
	while (running > 0) {
		c = open_ok(dir);
		if (stats_of(c).rejected)
			fail_msg("a reader saw a damaged file: %s", stats_of(c).reject_reason);
		/* whatever is there is whole */
		has(c, 1, 1, 101);
		has(c, 99, 1, 1001);
		if (stats_of(c).damaged)
			fail_msg("a reader saw a damaged part");
		dtn__cache_free(c);
		reads++;
		for (int w = 0; w < WRITERS; w++) {
			if (pids[w] > 0 && waitpid(pids[w], &st, WNOHANG) == pids[w]) {
				assert_true(WIFEXITED(st));
				assert_int_equal(WEXITSTATUS(st), 0);
				pids[w] = 0;
				running--;
			}
		}
	}
	assert_true(reads > 0);
	c = open_ok(dir);
	assert_false(stats_of(c).rejected);
	assert_int_equal(stats_of(c).loaded,
			 WRITERS * (ROUNDS * DIRS_PER_ROUND * FILES_PER_DIR + ROUNDS));
	check_writers(c);
	dtn__cache_free(c);
	/* no temporary files are left: the cache file and its lock only */
	assert_int_equal(count_entries(dir), 2);
	tu_rmtree(dir);
}

/* Two processes that stored their directories save at the same moment. */
static void test_builder_cache__two_saves_at_once(void **state)
{
	char dir[PATH_MAX];
	int go[2], ready[2], st;
	pid_t pids[2];
	dtn__cache *c;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	make_cache(dir, 4, 3);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			char b;
			dtn__cache *mine = NULL;

			if (dtn__cache_open(&mine, dir, NULL) < 0)
				_exit(2);
			/* each its own directories, and one more file in directory 0 */
			for (uint64_t k = 0; k < 50; k++) {
				dtn__cache_dir d;

				dtn__cache_dir_open(mine, &d, 10 + (uint64_t)p, k + 1);
				for (uint64_t i = 1; i <= 4; i++) {
					dtn__stat_sig s = sig_of(10 + (uint64_t)p, k * 10 + i);
					unsigned char dg[32];

					digest_of(&s, dg);
					dtn__cache_dir_listed(&d, s.ino);
					dtn__cache_dir_put(&d, &s, dg);
				}
				dtn__cache_dir_close(mine, &d, time(NULL));
			}
			{
				/* both see files 1..5 in directory 0; 4 is new to one, 5 to the other */
				dtn__cache_dir d;
				dtn__stat_sig s = sig_of(1, LAST(0, 3) + 1 + (uint64_t)p);
				unsigned char dg[32];

				dtn__cache_dir_open(mine, &d, 1, DINO(0));
				for (uint64_t i = FIRST(0, 3); i <= LAST(0, 3) + 2; i++)
					dtn__cache_dir_listed(&d, i);
				digest_of(&s, dg);
				dtn__cache_dir_put(&d, &s, dg);
				dtn__cache_dir_close(mine, &d, time(NULL));
			}
			if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
				_exit(3);
			_exit(dtn__cache_save(mine, NULL) < 0 ? 4 : 0);
		}
	}
	for (int p = 0; p < 2; p++) {
		char b;

		assert_int_equal(read(ready[0], &b, 1), 1);
	}
	assert_int_equal(write(go[1], "gg", 2), 2);
	for (int p = 0; p < 2; p++) {
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	c = open_ok(dir);
	assert_false(stats_of(c).rejected);
	for (uint64_t p = 0; p < 2; p++)
		for (uint64_t k = 0; k < 50; k++)
			assert_true(has_all(c, 10 + p, k + 1, k * 10 + 1, k * 10 + 4));
	assert_true(dirs_present(c, 4, 3, NULL) == 4);
	/* the second to save found the first one's version of directory 0, and united them */
	assert_true(has_all(c, 1, DINO(0), FIRST(0, 3), LAST(0, 3) + 2));
	assert_int_equal(count_entries(dir), 2);
	dtn__cache_free(c);
	tu_rmtree(dir);
}

#define THREADS 4
#define DIRS_PER_THREAD 150

typedef struct job {
	dtn__cache *c;
	uint64_t dev;
	int bad;
} job;

static void *thread_main(void *arg)
{
	job *j = arg;

	for (uint64_t k = 1; k <= DIRS_PER_THREAD; k++) {
		dtn__cache_dir d;

		if (dtn__cache_dir_open(j->c, &d, j->dev, k) < 0)
			j->bad++;
		for (uint64_t i = 1; i <= 6; i++) {
			dtn__stat_sig s = sig_of(j->dev, k * 10 + i);
			unsigned char dg[32];

			digest_of(&s, dg);
			if (dtn__cache_dir_listed(&d, s.ino) < 0 || dtn__cache_dir_put(&d, &s, dg) < 0)
				j->bad++;
		}
		if (dtn__cache_dir_close(j->c, &d, time(NULL)) < 0)
			j->bad++;
		/* this thread's directory, just stored, and one of the loaded ones */
		if (!has(j->c, j->dev, k, k * 10 + 3) ||
		    !has(j->c, 1, DINO(k % 40), FIRST(k % 40, 4)))
			j->bad++;
		/* another thread's directory: a hit must carry the right digest (has() checks) */
		has(j->c, j->dev % THREADS + 10, k, k * 10 + 1);
	}
	return NULL;
}

/* Threads store and look up at once, with the budget forcing writes in the middle. */
static void test_builder_cache__threads(void **state)
{
	char *dir = fresh_dir();
	pthread_t t[THREADS];
	job jobs[THREADS];
	dtn__cache *c;

	(void)state;
	make_cache(dir, 40, 4);
	c = open_ok(dir);
	dtn__cache_set_budget(c, 16 * 1024);
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (job){c, (uint64_t)i + 10, 0};
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(jobs[i].bad, 0);
	}
	assert_int_equal(stats_of(c).inserted, THREADS * DIRS_PER_THREAD * 6);
	assert_true(stats_of(c).writes > 1);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 40 * 4 + THREADS * DIRS_PER_THREAD * 6);
	for (uint64_t d = 10; d < 10 + THREADS; d++)
		for (uint64_t k = 1; k <= DIRS_PER_THREAD; k++)
			assert_true(has_all(c, d, k, k * 10 + 1, k * 10 + 6));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* ---- more than memory holds ---- */

/*
 * Far more is stored than the budget lets the cache hold in memory: the stored blocks are
 * merged into the file as they fill it, every digest stays findable throughout, and the file
 * ends whole. Directories span several index pages, more than are kept at once, and one block
 * is larger than the buffers a write reads through.
 */
static void test_builder_cache__beyond_the_budget(void **state)
{
	char *dir = fresh_dir();
	unsigned const ndirs = 700, per = 9;
	dtn__cache *c = open_ok(dir);
	uint64_t writes;

	(void)state;
	dtn__cache_set_budget(c, 8 * 1024);
	for (unsigned k = 0; k < ndirs; k++) {
		store(c, 1, DINO(k), FIRST(k, per), LAST(k, per));
		/* what was stored just before, and long before, is found now */
		assert_true(has(c, 1, DINO(k), FIRST(k, per)));
		assert_true(has(c, 1, DINO(k / 2), LAST(k / 2, per)));
	}
	/* one large directory: 5000 files, a block of over 350 KB */
	store(c, 2, 1, 1, 5000);
	writes = stats_of(c).writes;
	/* each write took the budget's worth (8 KiB: 11 or 12 directories) */
	assert_true(writes >= ndirs / 12 && writes <= ndirs / 11 + 2);
	assert_int_equal(dirs_present(c, ndirs, per, NULL), ndirs);
	assert_true(has_all(c, 2, 1, 1, 5000));
	/* a directory stored again replaces its block, in memory or in the file */
	walk_dir(c, 1, DINO(5), FIRST(5, per) + 1, LAST(5, per), 0);
	assert_false(has(c, 1, DINO(5), FIRST(5, per)));
	save_ok(c);
	assert_int_equal(stats_of(c).saved, ndirs * per - 1 + 5000);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_false(stats_of(c).rejected);
	assert_int_equal(stats_of(c).loaded, ndirs * per - 1 + 5000);
	assert_false(has(c, 1, DINO(5), FIRST(5, per)));
	assert_true(has_all(c, 1, DINO(5), FIRST(5, per) + 1, LAST(5, per)));
	/* lookups in an order that keeps replacing the index pages kept */
	for (unsigned k = 0; k < ndirs; k += 37)
		assert_true(has(c, 1, DINO((k * 131) % ndirs), LAST((k * 131) % ndirs, per)));
	assert_true(has_all(c, 2, 1, 1, 5000));
	/* the large block is copied whole by a merge */
	store(c, 3, 1, 1, 1);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_true(has_all(c, 2, 1, 4990, 5000));
	assert_int_equal(stats_of(c).damaged, 0);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* A write forced by the budget that fails is reported by the next save. */
static void test_builder_cache__failed_budget_write(void **state)
{
	char *dir = fresh_dir(), sub[PATH_MAX];
	dtn__cache *c;
	dtn_error err;

	(void)state;
	tu_write(dir, "plain", "x");
	snprintf(sub, sizeof(sub), "%s/plain/cache", dir);
	c = open_ok(sub);
	dtn__cache_set_budget(c, 1024);
	for (unsigned k = 0; k < 20; k++)
		store(c, 1, DINO(k), FIRST(k, 5), LAST(k, 5));
	assert_true(stats_of(c).writes == 0);
	/* the way is clear again: the save writes what is left, and says what was lost */
	snprintf(sub, sizeof(sub), "%s/plain", dir);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(dtn__cache_save(c, &err), DTN_EIO);
	assert_non_null(strstr(err.message, "plain"));
	assert_int_equal(stats_of(c).writes, 1);
	assert_true(has(c, 1, DINO(19), FIRST(19, 5)));
	assert_false(has(c, 1, DINO(0), FIRST(0, 5)));
	/* reported once */
	assert_int_equal(dtn__cache_save(c, &err), 0);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* ---- time and age ---- */

static bool found_in(dtn__cache *c, const dtn__stat_sig *s, unsigned char got[32])
{
	dtn__cache_dir cd;
	bool hit;

	dtn__cache_dir_open(c, &cd, s->dev, 1);
	hit = dtn__cache_dir_lookup(c, &cd, s, got);
	dtn__cache_dir_free(&cd);
	return hit;
}

/* Files changed within DTN__CACHE_RACY_SECONDS of hashing are not remembered. */
static void test_builder_cache__racy_timestamps(void **state)
{
	char *dir = fresh_dir(), file[PATH_MAX];
	dtn__cache *c = open_ok(dir);
	dtn__stat_sig s, real;
	unsigned char d[32] = {1, 2, 3}, got[32];
	dtn__cache_dir cd;
	struct stat st;
	time_t now = time(NULL);

	(void)state;
#define PUT_AND_CLOSE(sig, at)                                        \
	do {                                                          \
		dtn__cache_dir_open(c, &cd, (sig).dev, 1);            \
		dtn__cache_dir_listed(&cd, (sig).ino);                \
		dtn__cache_dir_put(&cd, &(sig), d);                   \
		assert_int_equal(dtn__cache_dir_close(c, &cd, at), 0); \
	} while (0)
#define FOUND(sig) found_in(c, &(sig), got)

	/* a file written just now, hashed just now */
	tu_write(dir, "fresh.txt", "content");
	snprintf(file, sizeof(file), "%s/fresh.txt", dir);
	assert_int_equal(stat(file, &st), 0);
	dtn__stat_sig_from(&real, &st);
	assert_int_equal(real.ino, (uint64_t)st.st_ino);
	assert_int_equal(real.ctime_ns, (int32_t)st.st_ctim.tv_nsec);
	PUT_AND_CLOSE(real, now);
	assert_false(FOUND(real));
	assert_int_equal(stats_of(c).racy, 1);

	/* the boundary: mtime and ctime must be more than the margin older */
	s = sig_of(4, 4);
	s.mtime_s = s.ctime_s = 1000;
	PUT_AND_CLOSE(s, 1000 + DTN__CACHE_RACY_SECONDS);
	assert_false(FOUND(s));
	PUT_AND_CLOSE(s, 1001 + DTN__CACHE_RACY_SECONDS);
	assert_true(FOUND(s));
	/* either timestamp alone being recent is enough to drop the entry */
	s = sig_of(5, 5);
	s.mtime_s = now + 100;
	PUT_AND_CLOSE(s, now);
	assert_false(FOUND(s));
	s = sig_of(6, 6);
	s.ctime_s = now;
	PUT_AND_CLOSE(s, now);
	assert_false(FOUND(s));
	assert_int_equal(stats_of(c).racy, 4);
	assert_int_equal(stats_of(c).inserted, 1);
	/* a racy new digest also drops what was stored for the file */
	s = sig_of(4, 4);
	s.mtime_s = s.ctime_s = 1000;
	{
		dtn__stat_sig newer = s;

		newer.ctime_s = now;
		PUT_AND_CLOSE(newer, now);
	}
	assert_false(FOUND(s));

	/* the same real file, hashed well after its last change, is kept */
	PUT_AND_CLOSE(real, st.st_ctim.tv_sec + DTN__CACHE_RACY_SECONDS + 1);
	assert_true(FOUND(real));
#undef PUT_AND_CLOSE
#undef FOUND
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* Over the limit, the directories unused for the most writes go first. */
static void test_builder_cache__evicts_least_used(void **state)
{
	char *dir = fresh_dir();
	bool which[8];
	dtn__cache *c;

	(void)state;
	make_cache(dir, 8, 2);                 /* 16 entries, all of the first generation */
	c = open_ok(dir);
	dtn__cache_set_limit(c, 24);
	for (unsigned k = 0; k < 3; k++)       /* in use now: stored again, as a later */
		store(c, 1, DINO(k), FIRST(k, 2), LAST(k, 2) + 1); /* version with one more file */
	for (uint64_t k = 1; k <= 4; k++)
		store(c, 2, k, 1, 2);
	save_ok(c);                            /* 9 + 10 + 8 = 27 > 24: keep 24 - 24/8 = 21 */
	assert_int_equal(stats_of(c).evicted, 6);
	assert_int_equal(stats_of(c).saved, 21);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 21);
	for (unsigned k = 0; k < 3; k++)
		assert_true(has_all(c, 1, DINO(k), FIRST(k, 2), LAST(k, 2) + 1));
	for (uint64_t k = 1; k <= 4; k++)
		assert_true(has_all(c, 2, k, 1, 2));
	/* of the unused ones, the first in key order fill the room left */
	for (unsigned k = 3; k < 8; k++)
		which[k] = has(c, 1, DINO(k), FIRST(k, 2));
	assert_true(which[3] && which[4] && !which[5] && !which[6] && !which[7]);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* A directory used after many writes is worth a write of its own; a fresh one is not. */
static void test_builder_cache__refreshes_old_entries(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	dtn__cache *c;
	ino_t ino;

	(void)state;
	make_cache(dir, 1, 2);
	c = open_ok(dir);
	for (uint64_t i = 1; i <= 12; i++) {
		store(c, 3, i, 1, 1);
		save_ok(c);
	}
	dtn__cache_free(c);
	c = open_ok(dir);
	ino = inode_of(path);
	walk_dir(c, 3, 12, 1, 1, 0);           /* fresh */
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	walk_dir(c, 1, DINO(0), FIRST(0, 2), LAST(0, 2), 0); /* 12 writes old */
	save_ok(c);
	assert_true(inode_of(path) != ino);
	dtn__cache_free(c);
	/* now it is fresh again */
	c = open_ok(dir);
	ino = inode_of(path);
	walk_dir(c, 1, DINO(0), FIRST(0, 2), LAST(0, 2), 0);
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* A save removes temporary files that dead writers left long ago, and the old format's file. */
static void test_builder_cache__sweeps_stale_temps(void **state)
{
	char *dir = fresh_dir(), old[PATH_MAX], young[PATH_MAX], other[PATH_MAX], v1[PATH_MAX];
	struct timespec past[2] = {{time(NULL) - 2 * 3600, 0}, {time(NULL) - 2 * 3600, 0}};
	dtn__cache *c;

	(void)state;
	tu_write(dir, DTN__CACHE_FILE ".tmp-aaaaaa", "left over");
	tu_write(dir, DTN__CACHE_FILE ".tmp-bbbbbb", "being written");
	tu_write(dir, "unrelated.tmp-cccccc", "not ours");
	tu_write(dir, DTN__CACHE_OLD_FILE, "an old format");
	snprintf(old, sizeof(old), "%s/%s.tmp-aaaaaa", dir, DTN__CACHE_FILE);
	snprintf(young, sizeof(young), "%s/%s.tmp-bbbbbb", dir, DTN__CACHE_FILE);
	snprintf(other, sizeof(other), "%s/unrelated.tmp-cccccc", dir);
	snprintf(v1, sizeof(v1), "%s/%s", dir, DTN__CACHE_OLD_FILE);
	assert_int_equal(utimensat(AT_FDCWD, old, past, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, other, past, 0), 0);
	c = open_ok(dir);
	store(c, 1, 1, 1, 1);
	save_ok(c);
	dtn__cache_free(c);
	assert_int_equal(access(old, F_OK), -1);
	assert_int_equal(access(v1, F_OK), -1);
	assert_int_equal(access(young, F_OK), 0);
	assert_int_equal(access(other, F_OK), 0);
	tu_rmtree(dir);
	free(dir);
}

/* ---- allocation failures ---- */

/* One run with the Nth allocation failing: returns its result code. */
static int run_failing(const char *dir, long n)
{
	dtn__cache *c = NULL;
	int rc;

	tu_fail_alloc_after(n);
	if ((rc = dtn__cache_open(&c, dir, NULL)) < 0)
		goto out;
	dtn__cache_set_budget(c, 4096);
	has(c, 1, DINO(0), 1);
	for (uint64_t k = 1; k <= 30 && rc == 0; k++) {
		dtn__cache_dir d;

		rc = dtn__cache_dir_open(c, &d, 7, k);
		for (uint64_t i = 1; i <= 20 && rc == 0; i++) {
			dtn__stat_sig s = sig_of(7, k * 100 + i);
			unsigned char dg[32];

			digest_of(&s, dg);
			if ((rc = dtn__cache_dir_listed(&d, s.ino)) == 0)
				rc = dtn__cache_dir_put(&d, &s, dg);
		}
		if (rc == 0)
			rc = dtn__cache_dir_close(c, &d, time(NULL));
		else
			dtn__cache_dir_free(&d);
	}
	if (rc == 0)
		rc = dtn__cache_save(c, NULL);
out:
	tu_alloc_reset();
	dtn__cache_free(c);
	return rc;
}

static void test_builder_cache__allocation_failures(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *c;
	long n;
	int rc;

	(void)state;
	make_cache(dir, 5, 10);
	for (n = 1;; n++) {
		rc = run_failing(dir, n);
		/* whatever failed, the file on disk is a whole one, old or new */
		c = open_ok(dir);
		assert_false(stats_of(c).rejected);
		assert_int_equal(dirs_present(c, 5, 10, NULL), 5);
		dtn__cache_free(c);
		if (rc == 0)
			break;
		assert_int_equal(rc, DTN_ENOMEM);
		assert_true(n < 5000);
	}
	assert_true(n > 5);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 50 + 30 * 20);
	assert_true(has_all(c, 7, 30, 3001, 3020));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_cache__hit),
		cmocka_unit_test(test_builder_cache__miss_on_any_changed_field),
		cmocka_unit_test(test_builder_cache__persists),
		cmocka_unit_test(test_builder_cache__replaces_and_prunes),
		cmocka_unit_test(test_builder_cache__conflicting_puts),
		cmocka_unit_test(test_builder_cache__default_location),
		cmocka_unit_test(test_builder_cache__disabled),
		cmocka_unit_test(test_builder_cache__flipped_bits),
		cmocka_unit_test(test_builder_cache__damage_dropped_on_save),
		cmocka_unit_test(test_builder_cache__truncated),
		cmocka_unit_test(test_builder_cache__foreign_files),
		cmocka_unit_test(test_builder_cache__not_a_file),
		cmocka_unit_test(test_builder_cache__random_damage),
		cmocka_unit_test(test_builder_cache__merges_on_save),
		cmocka_unit_test(test_builder_cache__same_directory_united),
		cmocka_unit_test(test_builder_cache__concurrent_processes),
		cmocka_unit_test(test_builder_cache__two_saves_at_once),
		cmocka_unit_test(test_builder_cache__threads),
		cmocka_unit_test(test_builder_cache__beyond_the_budget),
		cmocka_unit_test(test_builder_cache__failed_budget_write),
		cmocka_unit_test(test_builder_cache__racy_timestamps),
		cmocka_unit_test(test_builder_cache__evicts_least_used),
		cmocka_unit_test(test_builder_cache__refreshes_old_entries),
		cmocka_unit_test(test_builder_cache__sweeps_stale_temps),
		cmocka_unit_test(test_builder_cache__allocation_failures),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("builder/cache", tests, NULL, NULL);
}
