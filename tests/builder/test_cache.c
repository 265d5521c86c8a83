/*
 * test_cache.c - the per-file digest cache: hits and misses, persistence, its location, damaged
 * files, concurrent processes and threads, the racy-timestamp rule, eviction and allocation
 * failures.
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
#define HDR 80
#define REC 88
#define OFF_VERSION 8
#define OFF_ORDER 12
#define OFF_RECSIZE 16
#define OFF_COUNT 24
#define OFF_SUM 48

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

static void insert(dtn__cache *c, uint64_t dev, uint64_t ino)
{
	dtn__stat_sig s = sig_of(dev, ino);
	unsigned char d[32];

	digest_of(&s, d);
	assert_int_equal(dtn__cache_insert(c, &s, d, time(NULL)), 0);
}

static bool has(dtn__cache *c, uint64_t dev, uint64_t ino)
{
	dtn__stat_sig s = sig_of(dev, ino);
	unsigned char want[32], got[32];

	digest_of(&s, want);
	if (!dtn__cache_lookup(c, &s, got))
		return false;
	assert_memory_equal(got, want, 32);
	return true;
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

/* A cache in dir holding inodes 1..n of device 1. */
static void make_cache(const char *dir, uint64_t n)
{
	dtn__cache *c = open_ok(dir);

	for (uint64_t i = 1; i <= n; i++)
		insert(c, 1, i);
	save_ok(c);
	dtn__cache_free(c);
}

static dtn__cache_stats stats_of(const dtn__cache *c)
{
	dtn__cache_stats st;

	dtn__cache_stats_get(c, &st);
	return st;
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

static void spit(const char *path, const unsigned char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Recomputes the checksum of a cache file image, as a writer that meant it would. */
static void reseal(unsigned char *data, size_t len)
{
	dtn__sha256 *h = dtn__sha256_new();

	assert_non_null(h);
	assert_int_equal(dtn__sha256_init(h), 0);
	assert_int_equal(dtn__sha256_update(h, data, OFF_SUM), 0);
	assert_int_equal(dtn__sha256_update(h, data + HDR, len - HDR), 0);
	assert_int_equal(dtn__sha256_final(h, data + OFF_SUM), 0);
	dtn__sha256_free(h);
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
 * Opens the damaged file image in dir: it must be ignored (or, when `may_accept`, possibly
 * accepted), then a save must replace it with a valid file.
 */
static void expect_rebuilt(const char *dir, bool may_accept)
{
	dtn__cache *c = open_ok(dir);
	dtn__cache_stats st = stats_of(c);
	dtn__stat_sig s = sig_of(9, 9);
	unsigned char d[32];

	if (!may_accept) {
		assert_true(st.rejected);
		assert_non_null(st.reject_reason);
		assert_int_equal(st.loaded, 0);
		assert_false(has(c, 1, 1));
	}
	for (uint64_t i = 1; i < 40; i += 13)
		dtn__cache_lookup(c, &(dtn__stat_sig){.dev = 1, .ino = i}, d);
	digest_of(&s, d);
	assert_int_equal(dtn__cache_insert(c, &s, d, time(NULL)), 0);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	st = stats_of(c);
	assert_false(st.rejected);
	assert_true(st.loaded >= 1);
	assert_true(has(c, 9, 9));
	dtn__cache_free(c);
}

/* ---- the tests ---- */

static void test_builder_cache__hit(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	dtn__cache *c = open_ok(dir);
	dtn__cache_stats st;

	(void)state;
	assert_false(has(c, 1, 5));
	insert(c, 1, 5);
	assert_true(has(c, 1, 5));
	assert_false(has(c, 1, 6));
	assert_false(has(c, 2, 5));
	st = stats_of(c);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.inserted, 1);
	assert_false(st.rejected);
	assert_string_equal(dtn__cache_path(c), path);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Each field of the signature, changed alone, makes a lookup miss. */
static void assert_every_field_matters(dtn__cache *c, uint64_t dev, uint64_t ino)
{
	dtn__stat_sig base = sig_of(dev, ino), s;
	unsigned char d[32];

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
		if (dtn__cache_lookup(c, &s, d))
			fail_msg("field %d changed, still a hit", field);
	}
	assert_true(dtn__cache_lookup(c, &base, d));
}

static void test_builder_cache__miss_on_any_changed_field(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *c = open_ok(dir);

	(void)state;
	insert(c, 3, 40);
	/* from the table of this run's inserts ... */
	assert_every_field_matters(c, 3, 40);
	save_ok(c);
	dtn__cache_free(c);
	/* ... and from the loaded file */
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 1);
	assert_every_field_matters(c, 3, 40);
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
	make_cache(dir, 500);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 500);
	for (uint64_t i = 1; i <= 500; i++)
		assert_true(has(c, 1, i));
	assert_false(has(c, 1, 501));
	/* nothing changed, so nothing is written */
	ino = inode_of(path);
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	assert_int_equal(stats_of(c).saved, 0);
	/* inserting what is already there is no change either */
	insert(c, 1, 7);
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	/* a new entry is */
	insert(c, 2, 1);
	save_ok(c);
	assert_true(inode_of(path) != ino);
	assert_int_equal(stats_of(c).saved, 501);
	/* the saved state serves lookups at once, and a second save is again a no-op */
	assert_true(has(c, 2, 1));
	assert_true(has(c, 1, 1));
	ino = inode_of(path);
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 501);
	assert_true(has(c, 2, 1));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* A new signature for the same file replaces its entry. */
static void test_builder_cache__replaces(void **state)
{
	char *dir = fresh_dir();
	dtn__stat_sig s = sig_of(1, 3);
	unsigned char d[32], got[32];
	dtn__cache *c;

	(void)state;
	make_cache(dir, 5);
	c = open_ok(dir);
	s.size = 12345;
	s.ctime_s += 100;
	memset(d, 0xab, sizeof(d));
	assert_int_equal(dtn__cache_insert(c, &s, d, time(NULL)), 0);
	assert_true(dtn__cache_lookup(c, &s, got));
	assert_memory_equal(got, d, 32);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 5);
	assert_false(has(c, 1, 3));
	assert_true(dtn__cache_lookup(c, &s, got));
	assert_memory_equal(got, d, 32);
	assert_true(has(c, 1, 4));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

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
	insert(c, 1, 1);
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
		insert(c, 1, (uint64_t)i + 1);
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
	dtn__cache *c;

	(void)state;
	setenv("HOME", dir, 1);
	setenv("XDG_CACHE_HOME", dir, 1);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	c = open_ok("");
	assert_null(dtn__cache_path(c));
	insert(c, 1, 1);
	assert_false(has(c, 1, 1));
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
	assert_false(dtn__cache_lookup(NULL, &(dtn__stat_sig){0}, (unsigned char[32]){0}));
	assert_int_equal(dtn__cache_insert(NULL, &(dtn__stat_sig){0}, (unsigned char[32]){0}, 0), 0);
	assert_int_equal(dtn__cache_save(NULL, NULL), 0);
	assert_null(dtn__cache_path(NULL));
	dtn__cache_free(NULL);
	tu_rmtree(dir);
	free(dir);
}

/* Every single flipped bit, anywhere in the file, gets the file ignored. */
static void test_builder_cache__flipped_bytes(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good, *bad;
	size_t len;

	(void)state;
	make_cache(dir, 40);
	good = slurp(path, &len);
	assert_int_equal(len, HDR + 40 * REC);
	bad = malloc(len);
	for (size_t pos = 0; pos < len; pos++) {
		memcpy(bad, good, len);
		bad[pos] ^= (unsigned char)(1u << (pos % 8));
		spit(path, bad, len);
		dtn__cache *c = open_ok(dir);

		if (!stats_of(c).rejected)
			fail_msg("a flip at byte %zu went unnoticed", pos);
		assert_int_equal(stats_of(c).loaded, 0);
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

static void test_builder_cache__truncated(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good;
	size_t len;

	(void)state;
	make_cache(dir, 30);
	good = slurp(path, &len);
	for (size_t n = 0; n < len; n++) {
		spit(path, good, n);
		dtn__cache *c = open_ok(dir);

		if (!stats_of(c).rejected)
			fail_msg("a file cut to %zu bytes was used", n);
		dtn__cache_free(c);
	}
	spit(path, good, 0);
	expect_rebuilt(dir, false);
	spit(path, good, len / 2);
	expect_rebuilt(dir, false);
	free(good);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Writes a changed copy of `good` (resealed when asked) and expects it to be ignored. */
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
		reseal(bad, len);
	spit(path, bad, len);
	c = open_ok(dir);
	assert_true(stats_of(c).rejected);
	if (!strstr(stats_of(c).reject_reason, reason))
		fail_msg("reason \"%s\", expected \"%s\"", stats_of(c).reject_reason, reason);
	dtn__cache_free(c);
	expect_rebuilt(dir, false);
	free(bad);
}

static void test_builder_cache__foreign_files(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good, *big;
	uint32_t u32;
	uint64_t u64;
	size_t len;

	(void)state;
	make_cache(dir, 20);
	good = slurp(path, &len);
	expect_ignored(dir, good, len, 0, "PK\3\4", 4, true, "not a dtn digest cache");
	u32 = 2;
	expect_ignored(dir, good, len, OFF_VERSION, &u32, 4, true, "version");
	u32 = 0x04030201;
	expect_ignored(dir, good, len, OFF_ORDER, &u32, 4, true, "byte order");
	u32 = 96;
	expect_ignored(dir, good, len, OFF_RECSIZE, &u32, 4, true, "record size");
	u64 = UINT64_C(1) << 60;
	expect_ignored(dir, good, len, OFF_COUNT, &u64, 8, true, "too many");
	u64 = DTN__CACHE_MAX_ENTRIES + 1;
	expect_ignored(dir, good, len, OFF_COUNT, &u64, 8, true, "too many");
	u64 = 21;
	expect_ignored(dir, good, len, OFF_COUNT, &u64, 8, true, "truncated");
	u64 = 19;
	expect_ignored(dir, good, len, OFF_COUNT, &u64, 8, true, "after its last");
	/* records swapped: the checksum is right but the order is not */
	{
		unsigned char rec[2 * REC];

		memcpy(rec, good + HDR + 5 * REC, REC);
		memcpy(rec + REC, good + HDR + 4 * REC, REC);
		expect_ignored(dir, good, len, HDR + 4 * REC, rec, sizeof(rec), true, "order");
		/* the same record twice */
		memcpy(rec, good + HDR + 4 * REC, REC);
		expect_ignored(dir, good, len, HDR + 5 * REC, rec, REC, true, "order");
	}
	/* a resealed change inside a record is a valid file, and is used as such */
	{
		unsigned char *copy = malloc(len);

		memcpy(copy, good, len);
		copy[HDR + 2 * REC + 50] ^= 1;
		reseal(copy, len);
		spit(path, copy, len);
		expect_rebuilt(dir, true);
		free(copy);
	}
	/* trailing garbage after the last record */
	big = calloc(1, len + 7);
	memcpy(big, good, len);
	spit(path, big, len + 7);
	expect_rebuilt(dir, false);
	/* a file larger than any cache may be is refused without being read */
	spit(path, good, len);
	assert_int_equal(truncate(path, (off_t)HDR + (off_t)(DTN__CACHE_MAX_ENTRIES + 1) * REC), 0);
	expect_rebuilt(dir, false);
	free(big);
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
	insert(c, 1, 1);
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
	insert(c, 1, 1);
	assert_int_equal(dtn__cache_save(c, &err), DTN_EIO);
	assert_non_null(strstr(err.message, "plain"));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* Random damage, over and over: never a crash, never a file that cannot be replaced. */
static void test_builder_cache__random_damage(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	unsigned char *good, *bad;
	size_t len;
	unsigned seed = 12345;

	(void)state;
	make_cache(dir, 25);
	good = slurp(path, &len);
	bad = malloc(len);
	for (int round = 0; round < 400; round++) {
		size_t n = len;
		int edits = 1 + rand_r(&seed) % 8;
		bool sealed = rand_r(&seed) % 2;
		dtn__cache *c;
		unsigned char d[32];

		memcpy(bad, good, len);
		for (int e = 0; e < edits; e++)
			bad[(size_t)rand_r(&seed) % len] = (unsigned char)rand_r(&seed);
		if (rand_r(&seed) % 4 == 0)
			n = (size_t)rand_r(&seed) % len;
		if (sealed && n >= HDR)
			reseal(bad, n);
		spit(path, bad, n);
		c = open_ok(dir);
		/* whatever was accepted must at least answer lookups of any key */
		for (uint64_t i = 0; i < 30; i++)
			dtn__cache_lookup(c, &(dtn__stat_sig){.dev = 1, .ino = i}, d);
		if (!sealed && (n != len || memcmp(bad, good, len) != 0))
			assert_true(stats_of(c).rejected);
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

/* Two caches over one file save in turn: the second keeps the first one's entries. */
static void test_builder_cache__merges_on_save(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *a, *b, *c;

	(void)state;
	make_cache(dir, 3);
	a = open_ok(dir);
	b = open_ok(dir);
	insert(a, 5, 1);
	insert(b, 6, 1);
	save_ok(a);
	save_ok(b);
	insert(a, 5, 2);
	save_ok(a);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 6);
	assert_true(has(c, 1, 1) && has(c, 1, 3));
	assert_true(has(c, 5, 1) && has(c, 5, 2) && has(c, 6, 1));
	/* and what a has in memory after its save is the merged state too */
	assert_true(has(a, 6, 1));
	dtn__cache_free(a);
	dtn__cache_free(b);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

#define WRITERS 4
#define ROUNDS 12
#define PER_ROUND 40

/* One writer process: ROUNDS saves of PER_ROUND new entries each, all on device `dev`. */
static void writer(const char *dir, uint64_t dev)
{
	/* odd writers keep their cache open across saves, even ones reopen it each time */
	bool keep = dev % 2;
	dtn__cache *c = NULL;

	for (int r = 0; r < ROUNDS; r++) {
		if (!c && dtn__cache_open(&c, dir, NULL) < 0)
			_exit(2);
		for (uint64_t i = 0; i < PER_ROUND; i++) {
			dtn__stat_sig s = sig_of(dev, (uint64_t)r * PER_ROUND + i + 1);
			unsigned char d[32];

			digest_of(&s, d);
			if (dtn__cache_insert(c, &s, d, time(NULL)) < 0)
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
	assert_int_equal(stats_of(c).loaded, WRITERS * ROUNDS * PER_ROUND);
	for (uint64_t w = 1; w <= WRITERS; w++)
		for (uint64_t i = 1; i <= ROUNDS * PER_ROUND; i++)
			if (!has(c, w, i))
				fail_msg("entry %llu of writer %llu was lost", (unsigned long long)i,
					 (unsigned long long)w);
	dtn__cache_free(c);
	/* no temporary files are left: the cache file and its lock only */
	assert_int_equal(count_entries(dir), 2);
	tu_rmtree(dir);
}

#define THREADS 4
#define PER_THREAD 3000
#define LOADED 2000

typedef struct job {
	dtn__cache *c;
	uint64_t dev;
	int bad;
} job;

static void *thread_main(void *arg)
{
	job *j = arg;

	for (uint64_t i = 1; i <= PER_THREAD; i++) {
		dtn__stat_sig s = sig_of(j->dev, i);
		dtn__stat_sig old = sig_of(1, 1 + (i * 7) % LOADED);
		unsigned char d[32], want[32], got[32];

		digest_of(&s, d);
		if (dtn__cache_insert(j->c, &s, d, time(NULL)) < 0)
			j->bad++;
		if (!dtn__cache_lookup(j->c, &s, got) || memcmp(got, d, 32) != 0)
			j->bad++;
		digest_of(&old, want);
		if (!dtn__cache_lookup(j->c, &old, got) || memcmp(got, want, 32) != 0)
			j->bad++;
		/* another thread's entries: a hit must carry the right digest */
		s = sig_of(j->dev % THREADS + 10, i);
		digest_of(&s, want);
		if (dtn__cache_lookup(j->c, &s, got) && memcmp(got, want, 32) != 0)
			j->bad++;
	}
	return NULL;
}

static void test_builder_cache__threads(void **state)
{
	char *dir = fresh_dir();
	pthread_t t[THREADS];
	job jobs[THREADS];
	dtn__cache *c;

	(void)state;
	make_cache(dir, LOADED);
	c = open_ok(dir);
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (job){c, (uint64_t)i + 10, 0};
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(jobs[i].bad, 0);
	}
	assert_int_equal(stats_of(c).inserted, THREADS * PER_THREAD);
	save_ok(c);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, LOADED + THREADS * PER_THREAD);
	for (uint64_t d = 10; d < 10 + THREADS; d++)
		assert_true(has(c, d, 1) && has(c, d, PER_THREAD));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* Files changed within DTN__CACHE_RACY_SECONDS of hashing are not remembered. */
static void test_builder_cache__racy_timestamps(void **state)
{
	char *dir = fresh_dir(), file[PATH_MAX];
	dtn__cache *c = open_ok(dir);
	dtn__stat_sig s;
	unsigned char d[32] = {1, 2, 3}, got[32];
	struct stat st;
	time_t now = time(NULL);

	(void)state;
	/* a file written just now, hashed just now */
	tu_write(dir, "fresh.txt", "content");
	snprintf(file, sizeof(file), "%s/fresh.txt", dir);
	assert_int_equal(stat(file, &st), 0);
	dtn__stat_sig_from(&s, &st);
	assert_int_equal(s.ino, (uint64_t)st.st_ino);
	assert_int_equal(s.ctime_ns, (int32_t)st.st_ctim.tv_nsec);
	assert_int_equal(dtn__cache_insert(c, &s, d, now), 0);
	assert_false(dtn__cache_lookup(c, &s, got));
	assert_int_equal(stats_of(c).racy, 1);

	/* the boundary: mtime and ctime must be more than the margin older */
	s = sig_of(4, 4);
	s.mtime_s = s.ctime_s = 1000;
	assert_int_equal(dtn__cache_insert(c, &s, d, 1000 + DTN__CACHE_RACY_SECONDS), 0);
	assert_false(dtn__cache_lookup(c, &s, got));
	assert_int_equal(dtn__cache_insert(c, &s, d, 1001 + DTN__CACHE_RACY_SECONDS), 0);
	assert_true(dtn__cache_lookup(c, &s, got));
	/* either timestamp alone being recent is enough to drop the entry */
	s = sig_of(4, 5);
	s.mtime_s = now + 100;
	assert_int_equal(dtn__cache_insert(c, &s, d, now), 0);
	assert_false(dtn__cache_lookup(c, &s, got));
	s = sig_of(4, 6);
	s.ctime_s = now;
	assert_int_equal(dtn__cache_insert(c, &s, d, now), 0);
	assert_false(dtn__cache_lookup(c, &s, got));
	assert_int_equal(stats_of(c).racy, 4);
	assert_int_equal(stats_of(c).inserted, 1);

	/* the same real file, hashed well after its last change, is kept */
	dtn__stat_sig_from(&s, &st);
	assert_int_equal(dtn__cache_insert(c, &s, d, st.st_ctim.tv_sec + DTN__CACHE_RACY_SECONDS + 1),
			 0);
	assert_true(dtn__cache_lookup(c, &s, got));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* Over the limit, the entries unused for the most saves go first. */
static void test_builder_cache__evicts_least_used(void **state)
{
	char *dir = fresh_dir();
	dtn__cache *c;

	(void)state;
	make_cache(dir, 8);                    /* 1..8, all of the first generation */
	c = open_ok(dir);
	dtn__cache_set_limit(c, 10);
	for (uint64_t i = 1; i <= 3; i++)
		assert_true(has(c, 1, i));     /* in use now */
	for (uint64_t i = 1; i <= 5; i++)
		insert(c, 2, i);
	save_ok(c);                            /* 13 > 10: keep 10 - 10/8 = 9 */
	assert_int_equal(stats_of(c).evicted, 4);
	assert_int_equal(stats_of(c).saved, 9);
	dtn__cache_free(c);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 9);
	for (uint64_t i = 1; i <= 3; i++)
		assert_true(has(c, 1, i));
	for (uint64_t i = 1; i <= 5; i++)
		assert_true(has(c, 2, i));
	/* one of the unused ones fills the last place, the first in key order */
	assert_true(has(c, 1, 4));
	for (uint64_t i = 5; i <= 8; i++)
		assert_false(has(c, 1, i));
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(dir);
}

/* A hit on an entry unused for many saves is worth a save of its own; a fresh one is not. */
static void test_builder_cache__refreshes_old_entries(void **state)
{
	char *dir = fresh_dir(), *path = file_in(dir);
	dtn__cache *c;
	ino_t ino;

	(void)state;
	make_cache(dir, 1);
	c = open_ok(dir);
	for (uint64_t i = 1; i <= 12; i++) {
		insert(c, 3, i);
		save_ok(c);
	}
	dtn__cache_free(c);
	c = open_ok(dir);
	ino = inode_of(path);
	assert_true(has(c, 3, 12));
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	assert_true(has(c, 1, 1));
	save_ok(c);
	assert_true(inode_of(path) != ino);
	dtn__cache_free(c);
	/* now it is fresh again */
	c = open_ok(dir);
	ino = inode_of(path);
	assert_true(has(c, 1, 1));
	save_ok(c);
	assert_int_equal(inode_of(path), ino);
	dtn__cache_free(c);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* A save removes temporary files that dead writers left behind long ago, and only those. */
static void test_builder_cache__sweeps_stale_temps(void **state)
{
	char *dir = fresh_dir(), old[PATH_MAX], young[PATH_MAX], other[PATH_MAX];
	struct timespec past[2] = {{time(NULL) - 2 * 3600, 0}, {time(NULL) - 2 * 3600, 0}};
	dtn__cache *c;

	(void)state;
	tu_write(dir, DTN__CACHE_FILE ".tmp-aaaaaa", "left over");
	tu_write(dir, DTN__CACHE_FILE ".tmp-bbbbbb", "being written");
	tu_write(dir, "unrelated.tmp-cccccc", "not ours");
	snprintf(old, sizeof(old), "%s/%s.tmp-aaaaaa", dir, DTN__CACHE_FILE);
	snprintf(young, sizeof(young), "%s/%s.tmp-bbbbbb", dir, DTN__CACHE_FILE);
	snprintf(other, sizeof(other), "%s/unrelated.tmp-cccccc", dir);
	assert_int_equal(utimensat(AT_FDCWD, old, past, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, other, past, 0), 0);
	c = open_ok(dir);
	insert(c, 1, 1);
	save_ok(c);
	dtn__cache_free(c);
	assert_int_equal(access(old, F_OK), -1);
	assert_int_equal(access(young, F_OK), 0);
	assert_int_equal(access(other, F_OK), 0);
	tu_rmtree(dir);
	free(dir);
}

/* One run with the Nth allocation failing: returns its result code. */
static int run_failing(const char *dir, long n)
{
	dtn__cache *c = NULL;
	int rc;

	tu_fail_alloc_after(n);
	if ((rc = dtn__cache_open(&c, dir, NULL)) < 0)
		goto out;
	has(c, 1, 1);
	for (uint64_t i = 1; i <= 600 && rc == 0; i++) {
		dtn__stat_sig s = sig_of(7, i);
		unsigned char d[32];

		digest_of(&s, d);
		rc = dtn__cache_insert(c, &s, d, time(NULL));
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
	make_cache(dir, 50);
	for (n = 1;; n++) {
		rc = run_failing(dir, n);
		/* whatever failed, the file on disk is a whole one, old or new */
		c = open_ok(dir);
		assert_false(stats_of(c).rejected);
		assert_true(has(c, 1, 1) && has(c, 1, 50));
		dtn__cache_free(c);
		if (rc == 0)
			break;
		assert_int_equal(rc, DTN_ENOMEM);
		assert_true(n < 1000);
	}
	assert_true(n > 5);
	c = open_ok(dir);
	assert_int_equal(stats_of(c).loaded, 650);
	assert_true(has(c, 7, 600));
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
		cmocka_unit_test(test_builder_cache__replaces),
		cmocka_unit_test(test_builder_cache__default_location),
		cmocka_unit_test(test_builder_cache__disabled),
		cmocka_unit_test(test_builder_cache__flipped_bytes),
		cmocka_unit_test(test_builder_cache__truncated),
		cmocka_unit_test(test_builder_cache__foreign_files),
		cmocka_unit_test(test_builder_cache__not_a_file),
		cmocka_unit_test(test_builder_cache__random_damage),
		cmocka_unit_test(test_builder_cache__merges_on_save),
		cmocka_unit_test(test_builder_cache__concurrent_processes),
		cmocka_unit_test(test_builder_cache__threads),
		cmocka_unit_test(test_builder_cache__racy_timestamps),
		cmocka_unit_test(test_builder_cache__evicts_least_used),
		cmocka_unit_test(test_builder_cache__refreshes_old_entries),
		cmocka_unit_test(test_builder_cache__sweeps_stale_temps),
		cmocka_unit_test(test_builder_cache__allocation_failures),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("builder/cache", tests, NULL, NULL);
}
