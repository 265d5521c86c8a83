/*
 * bench_context.c - how fast build contexts are identified and archived, measured in the same
 * run against `tar -cf - DIR | sha256sum` on the same trees.
 *
 *     bench_context [-n RUNS] [-t TREES] WORKDIR
 *
 * Four synthetic trees are made under WORKDIR/trees (once; a marker beside each tree says it
 * is complete): A, 30 000 small files in nested directories; B, 8 files of 64 MiB; C, a mix of
 * small files, large files, links and long names; D, 250 000 tiny files, to show that memory
 * does not grow with the number of files. Their content comes from a seeded generator, so every
 * run measures the same bytes. -t picks some of the trees by name (-t A, -t BC).
 *
 * Every measurement runs in its own child process, so that its peak RSS (ru_maxrss from wait4,
 * which covers the child and everything it waited for) is its own, and each is repeated RUNS
 * times; the median and the minimum are shown. The files are read once before each tree's
 * series so that all tools work on cached files.
 *
 * The exit status is 0 when every target holds, 1 when one fails, 2 when the bench itself
 * could not run.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dtn.h"

#define MIB (1024.0 * 1024.0)
#define MAX_RUNS 15

/* The targets of the design. */
#define WARM_LIMIT_S 0.15
#define RSS_LIMIT_MIB 32.0

/*
 * The digest cache keeps no digest of a file whose ctime, in whole seconds, is within 2 s of
 * the moment hashing began. With whole seconds on both sides that takes up to 3 s of waiting
 * after the last write; a little more keeps the warm series clear of that rule.
 */
#define SETTLE_S 3.2

/* Bumped whenever the trees' shape or content changes, so that old trees are made again. */
#define TREE_FORMAT 1

/* ---- the trees ----------------------------------------------------------------------------- */

typedef struct tree_spec {
	const char *name;
	const char *label;
	unsigned small;      /* small files, 0 to small_max bytes each */
	unsigned small_max;
	unsigned top, sub;   /* directories at the top, and inside each of those */
	unsigned big;        /* large files at the top */
	uint64_t big_size;
	unsigned links;      /* links to small files, in links/ */
	bool long_names;     /* some names longer than plain tar headers hold */
	bool gate_cold;      /* dtn cold must be no slower than the baseline here */
	bool gate_warm;      /* warm identify must stay under WARM_LIMIT_S here */
	unsigned max_runs;   /* at most this many runs of each measurement (0: -n decides) */
} tree_spec;

static const tree_spec specs[] = {
	{"A", "30000 small files", 30000, 8192, 20, 40, 0, 0, 0, false, true, true, 0},
	{"B", "8 x 64 MiB", 0, 0, 0, 0, 8, 64u << 20, 0, false, true, false, 0},
	{"C", "mix", 10000, 8192, 10, 25, 4, 32u << 20, 200, true, false, false, 0},
	/* larger than the digest cache keeps in memory: its memory must not grow with the files */
	{"D", "250000 tiny files", 250000, 1024, 50, 50, 0, 0, 0, false, false, false, 3},
};
#define NTREES (sizeof(specs) / sizeof(specs[0]))

/* What a walk of the generated tree found: the ground truth the tools are checked against. */
typedef struct tree_count {
	uint64_t files, dirs, links, bytes;
	struct timespec newest_ctime;
} tree_count;

typedef struct tree {
	const tree_spec *spec;
	char dir[PATH_MAX];    /* absolute */
	char parent[PATH_MAX]; /* the context's root */
	dtn_context ctx;
	tree_count count;
} tree;

static const char *const no_patterns[] = {NULL};

/* ---- small utilities ---------------------------------------------------------------------- */

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* snprintf that refuses to truncate: every path here must fit. */
static void fmt(char *out, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, size, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		die("path too long: %s", out);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* Reads up to len bytes; fewer only at end of file. */
static size_t read_full(int fd, void *data, size_t len)
{
	char *p = data;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	fmt(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			die("mkdir %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		die("mkdir %s: %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0 && errno == ENOENT)
		return;
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
		die("cannot remove %s: %s", path, strerror(errno));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double s[MAX_RUNS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double min_of(const double *v, unsigned n)
{
	double m = v[0];

	for (unsigned i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double max_of(const double *v, unsigned n)
{
	double m = v[0];

	for (unsigned i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* ---- generating the trees ----------------------------------------------------------------- */

/* splitmix64: fast, and the same bytes on every machine. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void fill_random(unsigned char *buf, size_t len, uint64_t *state)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = next_random(state);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

#define GEN_BUF (1u << 20)

static void write_file(const char *path, uint64_t size, mode_t mode, uint64_t *rng,
		       unsigned char *buf)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("create %s: %s", path, strerror(errno));
	while (size) {
		size_t n = size < GEN_BUF ? (size_t)size : GEN_BUF;

		fill_random(buf, n, rng);
		write_all(fd, buf, n);
		size -= n;
	}
	/* set after writing, so that the umask does not decide the permission bits */
	if (fchmod(fd, mode) < 0 || close(fd) < 0)
		die("close %s: %s", path, strerror(errno));
}

/* The path of small file i, relative to the tree: spread over the leaf directories. */
static void small_name(const tree_spec *s, unsigned i, char *out, size_t size)
{
	static const char pad[] = "-a-name-long-enough-that-a-plain-tar-header-cannot-hold-it"
				  "-so-the-archive-needs-a-pax-extended-header-for-this-entry";
	unsigned leaf = i % (s->top * s->sub);
	bool long_name = s->long_names && i % 997 == 3;

	fmt(out, size, "d%02u/s%02u/f%05u%s.dat", leaf / s->sub, leaf % s->sub, i,
	    long_name ? pad : "");
}

static void make_dirs(const tree *t)
{
	const tree_spec *s = t->spec;
	char path[PATH_MAX];

	mkdir_p(t->dir);
	for (unsigned d = 0; d < s->top; d++)
		for (unsigned e = 0; e < s->sub; e++) {
			fmt(path, sizeof(path), "%s/d%02u/s%02u", t->dir, d, e);
			mkdir_p(path);
		}
	if (s->links) {
		fmt(path, sizeof(path), "%s/links", t->dir);
		mkdir_p(path);
	}
}

static void make_links(const tree *t)
{
	char path[PATH_MAX], name[PATH_MAX], target[PATH_MAX];

	for (unsigned i = 0; i < t->spec->links; i++) {
		small_name(t->spec, (i * 37u) % t->spec->small, name, sizeof(name));
		fmt(target, sizeof(target), "../%s", name);
		fmt(path, sizeof(path), "%s/links/l%04u", t->dir, i);
		if (symlink(target, path) < 0)
			die("symlink %s: %s", path, strerror(errno));
	}
}

static void make_files(const tree *t, uint64_t *rng, unsigned char *buf)
{
	const tree_spec *s = t->spec;
	char path[PATH_MAX], name[PATH_MAX];

	for (unsigned i = 0; i < s->small; i++) {
		uint64_t size = next_random(rng) % (s->small_max + 1);

		small_name(s, i, name, sizeof(name));
		fmt(path, sizeof(path), "%s/%s", t->dir, name);
		write_file(path, size, i % 7 == 0 ? 0755 : 0644, rng, buf);
	}
	for (unsigned i = 0; i < s->big; i++) {
		fmt(path, sizeof(path), "%s/big%u.bin", t->dir, i);
		write_file(path, s->big_size, 0644, rng, buf);
	}
}

static void marker_text(const tree_spec *s, char *out, size_t size)
{
	fmt(out, size, "format %d small %u max %u top %u sub %u big %u size %" PRIu64
	    " links %u long %d\n", TREE_FORMAT, s->small, s->small_max, s->top, s->sub, s->big,
	    s->big_size, s->links, s->long_names);
}

/* Whether the tree was completed earlier with the same shape. */
static bool tree_ready(const tree *t, const char *marker)
{
	char want[256], have[256] = "";
	int fd = open(marker, O_RDONLY | O_CLOEXEC);
	size_t n;

	if (fd < 0)
		return false;
	n = read_full(fd, have, sizeof(have) - 1);
	close(fd);
	have[n] = '\0';
	marker_text(t->spec, want, sizeof(want));
	return strcmp(want, have) == 0;
}

static void generate(const tree *t)
{
	char marker[PATH_MAX], text[256];
	uint64_t rng = 0x64746e0000000000u ^ (uint64_t)(unsigned char)t->spec->name[0];
	unsigned char *buf;
	double t0 = now();
	int fd;

	fmt(marker, sizeof(marker), "%s.done", t->dir);
	if (tree_ready(t, marker))
		return;
	printf("generating tree %s (%s) in %s ...\n", t->spec->name, t->spec->label, t->dir);
	fflush(stdout);
	unlink(marker);
	rm_rf(t->dir);
	if (!(buf = malloc(GEN_BUF)))
		die("out of memory");
	make_dirs(t);
	make_files(t, &rng, buf);
	make_links(t);
	free(buf);
	marker_text(t->spec, text, sizeof(text));
	if ((fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		die("create %s: %s", marker, strerror(errno));
	write_all(fd, text, strlen(text));
	close(fd);
	printf("  done in %.1f s\n", now() - t0);
}

/* ---- counting what was generated ---------------------------------------------------------- */

static tree_count *counting;

static int count_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		counting->files++;
		counting->bytes += (uint64_t)st->st_size;
	} else if (flag == FTW_D) {
		counting->dirs++;
	} else if (flag == FTW_SL) {
		counting->links++;
	} else {
		return -1;
	}
	if (st->st_ctim.tv_sec > counting->newest_ctime.tv_sec ||
	    (st->st_ctim.tv_sec == counting->newest_ctime.tv_sec &&
	     st->st_ctim.tv_nsec > counting->newest_ctime.tv_nsec))
		counting->newest_ctime = st->st_ctim;
	return 0;
}

static void count_tree(tree *t)
{
	memset(&t->count, 0, sizeof(t->count));
	counting = &t->count;
	if (nftw(t->dir, count_one, 32, FTW_PHYS) != 0)
		die("cannot walk %s", t->dir);
	counting = NULL;
}

/* Waits until every file is old enough for the digest cache to keep its digest. */
static void settle(const tree *trees, size_t n)
{
	struct timespec newest = {0, 0}, wall;
	double wait;

	for (size_t i = 0; i < n; i++)
		if (trees[i].count.newest_ctime.tv_sec > newest.tv_sec)
			newest = trees[i].count.newest_ctime;
	clock_gettime(CLOCK_REALTIME, &wall);
	wait = (double)newest.tv_sec + SETTLE_S -
	       ((double)wall.tv_sec + (double)wall.tv_nsec / 1e9);
	if (wait <= 0)
		return;
	printf("waiting %.1f s until the new files are older than the cache's racy window\n", wait);
	fflush(stdout);
	usleep((useconds_t)(wait * 1e6));
}

/* ---- running children --------------------------------------------------------------------- */

/* What a child reports back through a pipe. */
typedef struct result {
	int rc;        /* 0, or a negative dtn error code (-1000: the child died) */
	double secs;   /* measured inside the child */
	double id_secs; /* cold: the part identify took */
	uint64_t archive_bytes;
	uint64_t files, dirs, links, bytes, hits;
	char hash[65];
	char tar_sha[65];
	char msg[512];
} result;

typedef void (*child_fn)(const void *arg, result *out);

/* Runs fn in a child process; its peak RSS in MiB goes to *rss. */
static void run_child(child_fn fn, const void *arg, result *res, double *rss)
{
	struct rusage ru;
	int fds[2], status;
	pid_t pid;

	if (pipe(fds) < 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	if ((pid = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		result r;

		close(fds[0]);
		memset(&r, 0, sizeof(r));
		fn(arg, &r);
		write_all(fds[1], &r, sizeof(r));
		_exit(0);
	}
	close(fds[1]);
	if (read_full(fds[0], res, sizeof(*res)) != sizeof(*res)) {
		memset(res, 0, sizeof(*res));
		res->rc = -1000;
		fmt(res->msg, sizeof(res->msg), "the child process died");
	}
	close(fds[0]);
	if (wait4(pid, &status, 0, &ru) < 0)
		die("wait4: %s", strerror(errno));
	if (res->rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		res->rc = -1000;
		fmt(res->msg, sizeof(res->msg), "the child process failed");
	}
	*rss = (double)ru.ru_maxrss / 1024.0;
}

/* Runs a shell command in `dir`; returns its wall time, its peak RSS (sh, tar, sha256sum). */
static double run_shell(const char *dir, const char *cmd, double *rss)
{
	struct rusage ru;
	double t0;
	int status;
	pid_t pid;

	fflush(stdout);
	t0 = now();
	if ((pid = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (chdir(dir) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		die("wait4: %s", strerror(errno));
	t0 = now() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("`%s` failed in %s", cmd, dir);
	*rss = (double)ru.ru_maxrss / 1024.0;
	return t0;
}

static void child_fail(result *r, int rc, const dtn_error *err, const char *what)
{
	r->rc = rc;
	fmt(r->msg, sizeof(r->msg), "%s: %s: %s", what, dtn_strerror(rc), err->message);
}

/* ---- the archive's consumer --------------------------------------------------------------- */

/*
 * The archive's bytes are counted and, when asked, SHA-256'd on a thread of their own, as
 * `| sha256sum` hashes the baseline's tar in a process of its own. A few slots of a fixed size
 * pass the bytes over, like a pipe's buffer.
 */
#define SLOTS 4
#define SLOT_SIZE (256u * 1024u)

typedef struct sink {
	bool hash;
	uint64_t bytes;
	unsigned char *slot[SLOTS];
	size_t len[SLOTS];
	unsigned head, tail, queued; /* the writer fills slot[head]; the hasher takes slot[tail] */
	size_t fill;
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t filled, emptied;
	pthread_t thread;
	EVP_MD_CTX *md;
} sink;

static void *sink_hasher(void *arg)
{
	sink *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		unsigned i;

		while (!s->queued && !s->done)
			pthread_cond_wait(&s->filled, &s->mu);
		if (!s->queued)
			break;
		i = s->tail;
		pthread_mutex_unlock(&s->mu);
		EVP_DigestUpdate(s->md, s->slot[i], s->len[i]);
		pthread_mutex_lock(&s->mu);
		s->tail = (s->tail + 1) % SLOTS;
		s->queued--;
		pthread_cond_signal(&s->emptied);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int sink_start(sink *s, bool hash)
{
	memset(s, 0, sizeof(*s));
	s->hash = hash;
	if (!hash)
		return 0;
	for (unsigned i = 0; i < SLOTS; i++)
		if (!(s->slot[i] = malloc(SLOT_SIZE)))
			return -1;
	if (!(s->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
		return -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->filled, NULL);
	pthread_cond_init(&s->emptied, NULL);
	return pthread_create(&s->thread, NULL, sink_hasher, s) ? -1 : 0;
}

/* Hands the slot being filled to the hasher and waits for a free one. */
static void sink_queue(sink *s)
{
	pthread_mutex_lock(&s->mu);
	s->len[s->head] = s->fill;
	s->head = (s->head + 1) % SLOTS;
	s->queued++;
	pthread_cond_signal(&s->filled);
	while (s->queued == SLOTS)
		pthread_cond_wait(&s->emptied, &s->mu);
	pthread_mutex_unlock(&s->mu);
	s->fill = 0;
}

static int sink_write(const void *data, size_t len, void *payload)
{
	sink *s = payload;
	const unsigned char *p = data;

	s->bytes += len;
	while (s->hash && len) {
		size_t n = SLOT_SIZE - s->fill < len ? SLOT_SIZE - s->fill : len;

		memcpy(s->slot[s->head] + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->fill == SLOT_SIZE)
			sink_queue(s);
	}
	return 0;
}

/* Waits for the hasher and writes the tar's digest in hex to out (when hashing). */
static void sink_finish(sink *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	out[0] = '\0';
	if (!s->hash)
		return;
	if (s->fill)
		sink_queue(s);
	pthread_mutex_lock(&s->mu);
	s->done = true;
	pthread_cond_signal(&s->filled);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	EVP_DigestFinal_ex(s->md, md, &mdlen);
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		fmt(out + 2 * i, 3, "%02x", md[i]);
}

static void sink_free(sink *s)
{
	for (unsigned i = 0; i < SLOTS; i++)
		free(s->slot[i]);
	EVP_MD_CTX_free(s->md);
}

/* ---- the dtn measurements ----------------------------------------------------------------- */

typedef struct job {
	const tree *t;
	const char *cache_dir;
	bool hash_tar; /* cold: archive and identify in one pass, and SHA-256 the archive */
	bool save;     /* warm fill: save the cache after identify */
	int fd;        /* verify: where the archive goes / comes from */
} job;

static void copy_id(result *r, const dtn_context_id *id)
{
	r->files = id->files;
	r->dirs = id->dirs;
	r->links = id->links;
	r->bytes = id->bytes;
	r->hits = id->cache_hits;
	memcpy(r->hash, id->hash, sizeof(r->hash));
}

/* identify + archive with an empty cache, timed from the builder's creation. */
static void cold_child(const void *arg, result *r)
{
	const job *j = arg;
	dtn_builder_opts o = {.version = DTN_OPTS_VERSION, .cache_dir = j->cache_dir};
	dtn_builder *b = NULL;
	dtn_context_id *id = NULL;
	dtn_error err;
	double t0 = now();
	sink s;
	int rc;

	if (sink_start(&s, j->hash_tar) < 0) {
		r->rc = DTN_ENOMEM;
		fmt(r->msg, sizeof(r->msg), "cannot start the archive's consumer");
		goto out;
	}
	if ((rc = dtn_builder_new(&b, &o, &err)) < 0) {
		child_fail(r, rc, &err, "cold");
		goto out;
	}
	if (j->hash_tar) {
		/* one pass, as `dtn-build context -o` and an upload of a new context do */
		if ((rc = dtn_builder_archive_identify(b, &j->t->ctx, sink_write, &s, &id, &err)) <
		    0) {
			child_fail(r, rc, &err, "cold");
			goto out;
		}
	} else {
		/* identify, then archive against that identity */
		if ((rc = dtn_builder_identify(b, &j->t->ctx, &id, &err)) < 0) {
			child_fail(r, rc, &err, "cold");
			goto out;
		}
		r->id_secs = now() - t0;
		if ((rc = dtn_builder_archive(b, &j->t->ctx, id->hash, sink_write, &s, &err)) < 0) {
			child_fail(r, rc, &err, "cold");
			goto out;
		}
	}
	sink_finish(&s, r->tar_sha);
	r->secs = now() - t0;
	r->archive_bytes = s.bytes;
	copy_id(r, id);
out:
	sink_free(&s);
	dtn_context_id_free(id);
	dtn_builder_free(b);
}

/* identify on a cache dir (and save it when filling), timed from the builder's creation. */
static void warm_child(const void *arg, result *r)
{
	const job *j = arg;
	dtn_builder_opts o = {.version = DTN_OPTS_VERSION, .cache_dir = j->cache_dir};
	dtn_builder *b = NULL;
	dtn_context_id *id = NULL;
	dtn_error err;
	double t0 = now();
	int rc;

	if ((rc = dtn_builder_new(&b, &o, &err)) < 0 ||
	    (rc = dtn_builder_identify(b, &j->t->ctx, &id, &err)) < 0 ||
	    (j->save && (rc = dtn_builder_save_cache(b, &err)) < 0)) {
		child_fail(r, rc, &err, j->save ? "cache fill" : "warm");
		goto out;
	}
	r->secs = now() - t0;
	copy_id(r, id);
out:
	dtn_context_id_free(id);
	dtn_builder_free(b);
}

/* ---- checking the archive ----------------------------------------------------------------- */

static int fd_write(const void *data, size_t len, void *payload)
{
	write_all(*(const int *)payload, data, len);
	return 0;
}

/* Writes the tree's archive to j->fd, without a cache. */
static void archive_to_fd(const tree *t, int fd)
{
	dtn_builder_opts o = {.version = DTN_OPTS_VERSION, .cache_dir = ""};
	dtn_builder *b = NULL;
	dtn_error err;
	int rc;

	if ((rc = dtn_builder_new(&b, &o, &err)) == 0)
		rc = dtn_builder_archive(b, &t->ctx, NULL, fd_write, &fd, &err);
	dtn_builder_free(b);
	if (rc < 0) {
		fprintf(stderr, "bench: archive of %s: %s\n", t->dir, err.message);
		_exit(1);
	}
	_exit(0);
}

/* Whether an entry's name lies under the tree's archive path. */
static bool under_prefix(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(name, prefix, n) && (name[n] == '\0' || name[n] == '/');
}

/* Reads a tar from j->fd with libarchive and counts its entries and content bytes. */
static void read_archive(const void *arg, result *r)
{
	const job *j = arg;
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	static char buf[64 * 1024];
	la_ssize_t n;
	int rc;

	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, j->fd, sizeof(buf)) != ARCHIVE_OK)
		goto bad;
	while ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		mode_t type = archive_entry_filetype(ae);

		if (!under_prefix(archive_entry_pathname(ae), j->t->ctx.archive_path)) {
			fmt(r->msg, sizeof(r->msg), "entry %s outside %s", archive_entry_pathname(ae),
			    j->t->ctx.archive_path);
			r->rc = -1;
			break;
		}
		r->files += type == AE_IFREG;
		r->dirs += type == AE_IFDIR;
		r->links += type == AE_IFLNK;
		while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
			r->bytes += (uint64_t)n;
		if (n < 0)
			goto bad;
	}
	if (r->rc == 0 && rc != ARCHIVE_EOF)
		goto bad;
	archive_read_free(a);
	return;
bad:
	r->rc = -1;
	fmt(r->msg, sizeof(r->msg), "unreadable archive: %s", archive_error_string(a));
	archive_read_free(a);
}

/* Streams the archive into a reader and checks that it holds exactly what was generated. */
static void verify_archive(const tree *t)
{
	const tree_count *c = &t->count;
	job j = {.t = t};
	result r;
	double rss;
	int fds[2], status;
	pid_t writer;

	if (pipe(fds) < 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	if ((writer = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (writer == 0) {
		close(fds[0]);
		archive_to_fd(t, fds[1]);
	}
	close(fds[1]);
	j.fd = fds[0];
	run_child(read_archive, &j, &r, &rss);
	close(fds[0]);
	if (waitpid(writer, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("tree %s: writing the archive failed", t->spec->name);
	if (r.rc < 0)
		die("tree %s: %s", t->spec->name, r.msg);
	if (r.files != c->files || r.dirs != c->dirs || r.links != c->links || r.bytes != c->bytes)
		die("tree %s: the archive holds %" PRIu64 " files, %" PRIu64 " dirs, %" PRIu64
		    " links, %" PRIu64 " bytes; the tree has %" PRIu64 ", %" PRIu64 ", %" PRIu64
		    ", %" PRIu64, t->spec->name, r.files, r.dirs, r.links, r.bytes, c->files, c->dirs,
		    c->links, c->bytes);
	printf("  archive checked: %" PRIu64 " files, %" PRIu64 " dirs, %" PRIu64
	       " links, %.1f MiB of content, as generated\n",
	       r.files, r.dirs, r.links, (double)r.bytes / MIB);
}

/* ---- one tree's series -------------------------------------------------------------------- */

typedef struct series {
	double secs[MAX_RUNS];
	double rss[MAX_RUNS];
	unsigned n;
} series;

typedef struct tree_result {
	series base, cold, cold_sha, warm;
	series cold_id; /* the identify part of the cold runs without sha256 */
	double fill_secs, fill_rss;
	uint64_t archive_bytes, warm_hits;
	char hash[65];
} tree_result;

static void add(series *s, double secs, double rss)
{
	s->secs[s->n] = secs;
	s->rss[s->n] = rss;
	s->n++;
}

static void print_series(const char *what, const series *s, const series *base)
{
	printf("  %-34s median %7.3f s  min %7.3f s  peak RSS %6.1f MiB", what,
	       median(s->secs, s->n), min_of(s->secs, s->n), max_of(s->rss, s->n));
	if (base)
		printf("  baseline/dtn %.2fx", median(base->secs, base->n) / median(s->secs, s->n));
	putchar('\n');
}

/* Reads the whole tree once, so that every tool works on cached files. */
static void warm_page_cache(const tree *t)
{
	char cmd[PATH_MAX + 64];
	double rss;

	/* through cat: GNU tar reads nothing when it sees its output is /dev/null */
	fmt(cmd, sizeof(cmd), "tar -cf - '%s' | cat >/dev/null", t->ctx.archive_path);
	run_shell(t->parent, cmd, &rss);
}

/* Every dtn run of a tree must give the same identity. */
static void check_result(const tree *t, tree_result *tr, const result *r, const char *what)
{
	if (r->rc < 0)
		die("tree %s, %s: %s", t->spec->name, what, r->msg);
	if (r->files != t->count.files || r->links != t->count.links ||
	    r->bytes != t->count.bytes)
		die("tree %s, %s: dtn counted %" PRIu64 " files, %" PRIu64 " links, %" PRIu64
		    " bytes; the tree has %" PRIu64 ", %" PRIu64 ", %" PRIu64,
		    t->spec->name, what, r->files, r->links, r->bytes, t->count.files,
		    t->count.links, t->count.bytes);
	if (!tr->hash[0])
		memcpy(tr->hash, r->hash, sizeof(tr->hash));
	else if (strcmp(tr->hash, r->hash))
		die("tree %s, %s: identity %s differs from %s", t->spec->name, what, r->hash,
		    tr->hash);
}

static void cold_run(const tree *t, const char *work, bool hash_tar, series *s,
		     tree_result *tr)
{
	char cache[PATH_MAX];
	job j = {.t = t, .hash_tar = hash_tar};
	result r;
	double rss;

	fmt(cache, sizeof(cache), "%s/caches/cold-XXXXXX", work);
	if (!mkdtemp(cache))
		die("mkdtemp %s: %s", cache, strerror(errno));
	j.cache_dir = cache;
	run_child(cold_child, &j, &r, &rss);
	rm_rf(cache);
	check_result(t, tr, &r, hash_tar ? "cold with sha256" : "cold");
	tr->archive_bytes = r.archive_bytes;
	add(s, r.secs, rss);
	if (!hash_tar)
		add(&tr->cold_id, r.id_secs, rss);
}

static void measure_cold(const tree *t, const char *work, unsigned runs, tree_result *tr)
{
	char cmd[PATH_MAX + 64];
	double rss, secs;

	fmt(cmd, sizeof(cmd), "tar -cf - '%s' | sha256sum >/dev/null", t->ctx.archive_path);
	warm_page_cache(t);
	/* interleaved, so that a slow moment of the machine hits every tool alike */
	for (unsigned i = 0; i < runs; i++) {
		secs = run_shell(t->parent, cmd, &rss);
		add(&tr->base, secs, rss);
		cold_run(t, work, false, &tr->cold, tr);
		cold_run(t, work, true, &tr->cold_sha, tr);
	}
	print_series("tar -cf - DIR | sha256sum", &tr->base, NULL);
	print_series("dtn identify, then archive", &tr->cold, &tr->base);
	printf("  %-34s median %7.3f s (identify), %.3f s (archive)\n", "  of which",
	       median(tr->cold_id.secs, tr->cold_id.n),
	       median(tr->cold.secs, tr->cold.n) - median(tr->cold_id.secs, tr->cold_id.n));
	print_series("dtn one pass+sha256(tar)", &tr->cold_sha, &tr->base);
}

static void measure_warm(const tree *t, const char *work, unsigned runs, tree_result *tr)
{
	char cache[PATH_MAX];
	job j = {.t = t, .save = true};
	result r;
	double rss;

	fmt(cache, sizeof(cache), "%s/caches/warm-%s", work, t->spec->name);
	rm_rf(cache);
	j.cache_dir = cache;
	warm_page_cache(t);
	run_child(warm_child, &j, &r, &rss);
	check_result(t, tr, &r, "cache fill");
	tr->fill_secs = r.secs;
	tr->fill_rss = rss;
	printf("  %-34s        %7.3f s                  peak RSS %6.1f MiB\n",
	       "dtn identify+save cache (fill)", r.secs, rss);
	j.save = false;
	for (unsigned i = 0; i < runs; i++) {
		run_child(warm_child, &j, &r, &rss);
		check_result(t, tr, &r, "warm");
		tr->warm_hits = i ? (r.hits < tr->warm_hits ? r.hits : tr->warm_hits) : r.hits;
		add(&tr->warm, r.secs, rss);
	}
	print_series("dtn warm identify", &tr->warm, NULL);
	printf("  %-34s %" PRIu64 " of %" PRIu64 " files\n", "digests from the cache",
	       tr->warm_hits, t->count.files);
	rm_rf(cache);
}

/* ---- the report --------------------------------------------------------------------------- */

static int failures;

static void target(bool ok, const char *fmt_, ...)
{
	va_list ap;

	printf("  %s  ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt_);
	vprintf(fmt_, ap);
	va_end(ap);
	putchar('\n');
	failures += !ok;
}

/* The largest peak RSS of the runs that hashed files: both cold series and the cache fill. */
static double cold_rss(const tree_result *tr)
{
	double v[3] = {max_of(tr->cold.rss, tr->cold.n), max_of(tr->cold_sha.rss, tr->cold_sha.n),
		       tr->fill_rss};

	return max_of(v, 3);
}

static void print_table(const tree *trees, const tree_result *res, size_t n)
{
	printf("\n%-4s %6s %8s | %-16s | %-23s | %-23s | %-16s\n", "tree", "files", "MiB",
	       "tar|sha256sum", "dtn one pass+sha256", "dtn id, then archive", "dtn warm identify");
	printf("%-4s %6s %8s | %7s %8s | %7s %8s %6s | %7s %8s %6s | %7s %8s\n", "", "", "",
	       "s", "RSS MiB", "s", "RSS MiB", "ratio", "s", "RSS MiB", "ratio", "s", "RSS MiB");
	for (size_t i = 0; i < n; i++) {
		const tree_result *r = &res[i];
		double base = median(r->base.secs, r->base.n);
		double cs = median(r->cold_sha.secs, r->cold_sha.n);
		double c = median(r->cold.secs, r->cold.n);

		printf("%-4s %6" PRIu64 " %8.1f | %7.3f %8.1f | %7.3f %8.1f %5.2fx | %7.3f %8.1f "
		       "%5.2fx | %7.3f %8.1f\n",
		       trees[i].spec->name, trees[i].count.files,
		       (double)trees[i].count.bytes / MIB, base, max_of(r->base.rss, r->base.n), cs,
		       max_of(r->cold_sha.rss, r->cold_sha.n), base / cs, c,
		       max_of(r->cold.rss, r->cold.n), base / c, median(r->warm.secs, r->warm.n),
		       max_of(r->warm.rss, r->warm.n));
	}
	printf("(median seconds of the runs; RSS: the largest peak of the runs; ratio: baseline time"
	       " / dtn time, above 1 means dtn is faster)\n");
}

static void check_targets(const tree *trees, const tree_result *res, size_t n)
{
	printf("\ntargets:\n");
	for (size_t i = 0; i < n; i++) {
		const tree_result *r = &res[i];
		const char *name = trees[i].spec->name;
		double base = median(r->base.secs, r->base.n);
		double cs = median(r->cold_sha.secs, r->cold_sha.n);
		double warm = median(r->warm.secs, r->warm.n);

		if (trees[i].spec->gate_cold)
			target(cs <= base, "%s: dtn one pass (hash + archive) + sha256 %.3f s <= tar|sha256sum "
			       "%.3f s", name, cs, base);
		if (trees[i].spec->gate_warm)
			target(warm < WARM_LIMIT_S, "%s: warm identify %.3f s < %.2f s", name,
			       warm, WARM_LIMIT_S);
		target(cold_rss(r) < RSS_LIMIT_MIB, "%s: peak RSS of the cold runs and the cache fill "
		       "%.1f MiB < %.0f MiB", name, cold_rss(r), RSS_LIMIT_MIB);
		target(max_of(r->warm.rss, r->warm.n) < RSS_LIMIT_MIB,
		       "%s: peak RSS of warm identify %.1f MiB < %.0f MiB", name,
		       max_of(r->warm.rss, r->warm.n), RSS_LIMIT_MIB);
	}
}

/* The peak RSS a child shows when it does nothing: what it inherits from this process. */
static void noop_child(const void *arg, result *r)
{
	(void)arg;
	(void)r;
}

/* ---- main --------------------------------------------------------------------------------- */

static void setup_tree(tree *t, const tree_spec *s, const char *work)
{
	memset(t, 0, sizeof(*t));
	t->spec = s;
	fmt(t->parent, sizeof(t->parent), "%s/trees", work);
	fmt(t->dir, sizeof(t->dir), "%s/%s", t->parent, s->name);
	t->ctx = (dtn_context){
		.source = t->dir,
		.path = t->dir,
		.archive_path = s->name,
		.kind = DTN_CONTEXT_DIR,
		.step = "bench",
		.ignore = no_patterns,
		.root = t->parent,
	};
}

#define USAGE "usage: bench_context [-n RUNS] [-t TREES] WORKDIR"

typedef struct options {
	unsigned runs;
	const char *only; /* names of the trees to run; NULL: all */
	char work[PATH_MAX];
} options;

static void parse_args(int argc, char **argv, options *o)
{
	unsigned long runs;
	char *end;
	int opt;

	o->runs = 5;
	o->only = NULL;
	while ((opt = getopt(argc, argv, "n:t:")) != -1) {
		if (opt == 't') {
			o->only = optarg;
			continue;
		}
		if (opt != 'n')
			die(USAGE);
		errno = 0;
		runs = strtoul(optarg, &end, 10);
		if (errno || *end || runs < 1 || runs > MAX_RUNS)
			die("-n: a number of runs from 1 to %d", MAX_RUNS);
		o->runs = (unsigned)runs;
	}
	if (optind + 1 != argc)
		die(USAGE);
	mkdir_p(argv[optind]);
	if (!realpath(argv[optind], o->work))
		die("%s: %s", argv[optind], strerror(errno));
}

/* Sets up the chosen trees, making them when needed; returns how many. */
static size_t prepare_trees(tree *trees, const options *o)
{
	size_t n = 0;

	for (size_t i = 0; i < NTREES; i++) {
		if (o->only && !strchr(o->only, specs[i].name[0]))
			continue;
		setup_tree(&trees[n], &specs[i], o->work);
		generate(&trees[n]);
		count_tree(&trees[n]);
		n++;
	}
	if (!n)
		die("-t %s: no such tree (the trees are A, B, C and D)", o->only);
	return n;
}

static void bench_tree(const tree *t, const options *o, tree_result *tr)
{
	const tree_count *c = &t->count;
	unsigned runs = t->spec->max_runs && t->spec->max_runs < o->runs ? t->spec->max_runs : o->runs;

	printf("\ntree %s (%s): %" PRIu64 " files, %" PRIu64 " dirs, %" PRIu64 " links, %.1f MiB"
	       "%s\n", t->spec->name, t->spec->label, c->files, c->dirs, c->links,
	       (double)c->bytes / MIB, runs < o->runs ? " (fewer runs: a large tree)" : "");
	verify_archive(t);
	measure_cold(t, o->work, runs, tr);
	measure_warm(t, o->work, runs, tr);
	printf("  identity %s, archive %.1f MiB\n", tr->hash, (double)tr->archive_bytes / MIB);
}

int main(int argc, char **argv)
{
	static tree trees[NTREES];
	static tree_result res[NTREES];
	static options o;
	char caches[PATH_MAX + 16];
	double floor_rss, t0 = now();
	size_t n;
	result r;

	parse_args(argc, argv, &o);
	fmt(caches, sizeof(caches), "%s/caches", o.work);
	rm_rf(caches);
	mkdir_p(caches);
	n = prepare_trees(trees, &o);
	settle(trees, n);
	run_child(noop_child, NULL, &r, &floor_rss);
	printf("dtn %s, nproc %ld, %u runs of each measurement; a child of this process starts "
	       "at %.1f MiB RSS\n", DTN_VERSION, sysconf(_SC_NPROCESSORS_ONLN), o.runs, floor_rss);
	for (size_t i = 0; i < n; i++)
		bench_tree(&trees[i], &o, &res[i]);
	print_table(trees, res, n);
	check_targets(trees, res, n);
	rm_rf(caches);
	printf("\n%s (%.0f s)\n", failures ? "bench: some targets FAILED" : "bench: all targets met",
	       now() - t0);
	return failures ? 1 : 0;
}
