/*
 * walk.c - walking a context: which files it holds, their Merkle identity, and their archive.
 *
 * identify and archive share one walk so that they cannot disagree: the same entries, in the
 * same order, summarised the same way. In each directory both first look its files up in the
 * digest cache (one block per directory) and give it the digests they computed when they
 * leave. identify hashes the misses of a directory on all threads; archive reads every file
 * once, writing it to the tar, checking that it stays the version listed, and hashing it on
 * the way unless the cache knew that version's digest, and checks at the end that the tree
 * still has the identity identify computed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "context_otel.h"
#include "walk.h"

/* ---- errors ------------------------------------------------------------------------------ */

int dtn__walk_fail(dtn__walk *w, int code, const char *fmt, ...)
{
	va_list ap;

	if (w->err && w->err->code < 0)
		return w->err->code; /* the first error stays */
	va_start(ap, fmt);
	dtn__error_setv(w->err, code, fmt, ap);
	va_end(ap);
	return code;
}

/* The current path for messages: the source joined with the relative path. */
const char *dtn__walk_shown(dtn__walk *w, const char *name, char *buf, size_t size)
{
	const char *rel = dtn__buf_cstr(&w->rel);

	snprintf(buf, size, "%s%s%s%s%s", w->ctx->path, *rel ? "/" : "", rel,
		 name && *name ? "/" : "", name ? name : "");
	return buf;
}

int dtn__walk_fail_errno(dtn__walk *w, const char *what, const char *name, int e)
{
	char path[PATH_MAX];

	dtn__walk_shown(w, name, path, sizeof(path));
	if (e == ENOENT)
		return dtn__walk_fail(w, DTN_ENOTFOUND, "%s vanished while it was read", path);
	if (e == ENOMEM)
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	return dtn__walk_fail(w, DTN_EIO, "cannot %s %s: %s", what, path, strerror(e));
}

/* ---- ignore rules ------------------------------------------------------------------------ */

/* The path relative to the root of `rel` (relative to the top), in w->match. */
const char *dtn__walk_root_path(dtn__walk *w, const char *rel)
{
	dtn__buf *m = &w->match;

	m->len = 0;
	dtn__buf_puts(m, w->root_rel);
	if (*w->root_rel && *rel)
		dtn__buf_putc(m, '/');
	dtn__buf_puts(m, rel);
	return m->failed ? NULL : dtn__buf_cstr(m);
}

int dtn__walk_excluded(dtn__walk *w, const char *rel, bool is_dir, bool *reinclude)
{
	int rule = -1, m = 0;
	const char *rp;

	*reinclude = false;
	if (w->step_rules && *rel) {
		if ((m = dtn__ignore_match(w->step_rules, rel, strlen(rel), is_dir, &rule)) < 0)
			return m;
		if (m == 1) {
			w->step_used[rule] = true;
			*reinclude = is_dir &&
				     dtn__ignore_may_reinclude(w->step_rules, rel, strlen(rel));
			return 1;
		}
	}
	if (!w->root_rules || !w->root_rel)
		return 0;
	if (!(rp = dtn__walk_root_path(w, rel)))
		return DTN_ENOMEM;
	if (!*rp || (m = dtn__ignore_match(w->root_rules, rp, strlen(rp), is_dir, &rule)) != 1)
		return m;
	w->root_used[rule] = true;
	*reinclude = is_dir && dtn__ignore_may_reinclude(w->root_rules, rp, strlen(rp));
	return 1;
}

/* ---- directory listing ------------------------------------------------------------------- */

static void entries_free(dtn__entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dtn__free(v[i].name);
		dtn__free(v[i].data);
	}
	dtn__free(v);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const dtn__entry *)a)->name, ((const dtn__entry *)b)->name);
}

static int push_entry(dtn__entry **v, size_t *n, size_t *cap, const char *name, const struct stat *st,
		      char kind)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		dtn__entry *p = dtn__realloc(*v, c * sizeof(*p));

		if (!p)
			return DTN_ENOMEM;
		*v = p;
		*cap = c;
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	if (!((*v)[*n].name = dtn__strdup(name)))
		return DTN_ENOMEM;
	(*v)[*n].st = *st;
	(*v)[*n].kind = kind;
	(*n)++;
	return 0;
}

static char kind_of(mode_t mode)
{
	if (S_ISREG(mode))
		return 'f';
	if (S_ISDIR(mode))
		return 'd';
	if (S_ISLNK(mode))
		return 'l';
	return 0;
}

/* Whether a listed entry is the file the archive is being written to. */
static bool is_the_archive(const dtn__walk *w, const struct stat *st)
{
	return w->skip_self && st->st_dev == w->self.st_dev && st->st_ino == w->self.st_ino;
}

/* Lists a directory: its entries with their lstat, sorted by name; others are skipped. */
struct stat_batch {
	int dfd;
	dtn__entry *v;
};

/* The lstat of one listed name; on a pool thread. */
static void stat_one(size_t i, unsigned worker, void *arg)
{
	struct stat_batch *sb = arg;
	dtn__entry *en = &sb->v[i];

	(void)worker;
	if (fstatat(sb->dfd, en->name, &en->st, AT_SYMLINK_NOFOLLOW) < 0)
		en->err_errno = errno ? errno : EIO;
	else
		en->kind = kind_of(en->st.st_mode);
}

/* Reads a directory's names (into *v, without their stat yet). */
static int read_names(dtn__walk *w, int dfd, dtn__entry **v, size_t *n)
{
	size_t cap = 0;
	int fd = dup(dfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return dtn__walk_fail_errno(w, "list", NULL, errno);
	}
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (push_entry(v, n, &cap, de->d_name, &(struct stat){0}, 0) < 0)
			rc = dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	}
	if (rc == 0 && errno)
		rc = dtn__walk_fail_errno(w, "list", NULL, errno);
	closedir(d);
	return rc;
}

/*
 * Lists a directory: its entries with their lstat (taken on all threads: on a tree of small
 * files the stat calls are much of the work), sorted by name; anything that is not a file,
 * directory or link is skipped with a warning.
 */
static int list_dir(dtn__walk *w, int dfd, dtn__entry **out, size_t *count)
{
	dtn__entry *v = NULL;
	size_t n = 0, kept = 0;
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	*count = 0;
	if ((rc = read_names(w, dfd, &v, &n)) < 0) {
		entries_free(v, n);
		return rc;
	}
	dtn__pool_run(w->b->pool, n, stat_one, &(struct stat_batch){dfd, v});
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && v[i].err_errno)
			rc = dtn__walk_fail_errno(w, "read", v[i].name, v[i].err_errno);
		if (rc == 0 && v[i].kind && !is_the_archive(w, &v[i].st)) {
			v[kept++] = v[i];
			continue;
		}
		if (rc == 0 && v[i].kind) {
			/* as tar does: the archive growing inside the context is not put in itself */
			dtn__builder_warn(w->b, "%s: the archive being written; left out",
					  dtn__walk_shown(w, v[i].name, path, sizeof(path)));
		} else if (rc == 0) {
			w->id->skipped++;
			dtn__builder_warn(w->b, "%s: skipped (not a file, directory or link)",
					  dtn__walk_shown(w, v[i].name, path, sizeof(path)));
		}
		dtn__free(v[i].name);
	}
	if (rc < 0) {
		entries_free(v, kept);
		return rc;
	}
	if (kept > 1)
		qsort(v, kept, sizeof(*v), entry_cmp);
	*out = v;
	*count = kept;
	return 0;
}

/* ---- hashing files ------------------------------------------------------------------------ */

static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec && a->st_ino == b->st_ino;
}

/*
 * Reads the open file fd to its end, hashing it (unless sha is NULL) and passing each chunk to
 * `sink` when not NULL. The file must still be the version listed (`listed`) before and after.
 * Returns 0, DTN_ECHANGED, or a negative errno-style failure in *e.
 */
int dtn__walk_read_file(dtn__walk *w, int fd, const struct stat *listed, dtn__sha256 *sha,
			char *buf, dtn__chunk_fn sink, unsigned char digest[DTN__SHA256_LEN], int *e)
{
	unsigned long long size = (unsigned long long)listed->st_size, total = 0;
	struct stat st;
	int rc;

	*e = 0;
	if (sha && dtn__sha256_init(sha) < 0)
		return DTN_ERROR;
	/*
	 * Exactly the listed size is read: a file that shrank ends early, and one that grew or
	 * was rewritten or replaced shows in the fstat afterwards. That one check, against the
	 * listing, also covers a file swapped before it was opened.
	 */
	while (total < size) {
		size_t want = size - total < DTN__READ_BUF ? (size_t)(size - total) : DTN__READ_BUF;
		ssize_t r = read(fd, buf, want);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return *e = errno, DTN_EIO;
		if (r == 0)
			return DTN_ECHANGED;
		total += (unsigned long long)r;
		if (sha && dtn__sha256_update(sha, buf, (size_t)r) < 0)
			return DTN_ERROR;
		if (sink && (rc = sink(w, buf, (size_t)r)) < 0)
			return rc;
	}
	if (fstat(fd, &st) < 0)
		return *e = errno, DTN_EIO;
	if (!same_version(&st, listed))
		return DTN_ECHANGED;
	return sha ? dtn__sha256_final(sha, digest) : 0;
}

/* Opens a listed file without following a link put in its place. */
int dtn__walk_open_listed(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
}

struct batch {
	dtn__walk *w;
	int dfd;
	dtn__entry **todo;
};

static void hash_one(size_t i, unsigned worker, void *arg)
{
	struct batch *bt = arg;
	dtn__entry *en = bt->todo[i];
	dtn__hasher *h = &bt->w->b->hashers[worker];
	int fd = dtn__walk_open_listed(bt->dfd, en->name);

	if (fd < 0) {
		en->rc = DTN_EIO;
		en->err_errno = errno;
		return;
	}
	en->rc = dtn__walk_read_file(bt->w, fd, &en->st, h->sha, h->buf, NULL, en->digest, &en->err_errno);
	close(fd);
}

int dtn__walk_entry_error(dtn__walk *w, const dtn__entry *en, const char *name)
{
	char path[PATH_MAX];

	if (en->rc == DTN_ECHANGED)
		return dtn__walk_fail(w, DTN_ECHANGED, "%s changed while it was read",
			    dtn__walk_shown(w, name, path, sizeof(path)));
	if (en->rc == DTN_EIO)
		return dtn__walk_fail_errno(w, "read", name, en->err_errno);
	return dtn__walk_fail(w, en->rc, "cannot hash %s", dtn__walk_shown(w, name, path, sizeof(path)));
}

/* ---- the digest cache ------------------------------------------------------------------- */

/*
 * Opens the cache's block of the directory dfd and says which regular files it holds (all of
 * them, before the ignore rules: digests of files that are only left out stay). A cache that
 * fails here only costs reading files again.
 */
static void cache_begin(dtn__walk *w, int dfd, const dtn__entry *v, size_t n, dtn__cache_dir *cd)
{
	struct stat st;

	if (fstat(dfd, &st) < 0) {
		dtn__cache_dir_open(NULL, cd, 0, 0);
		return;
	}
	dtn__cache_dir_open(w->b->cache, cd, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	for (size_t i = 0; i < n && !cd->off; i++)
		if (v[i].kind == 'f')
			dtn__cache_dir_listed(cd, (uint64_t)v[i].st.st_ino);
}

/* The digests the cache has for the listed files' signatures. */
static void cache_lookups(dtn__walk *w, dtn__cache_dir *cd, dtn__entry *v, size_t n)
{
	for (size_t i = 0; i < n && !cd->off; i++) {
		dtn__stat_sig sig;

		if (v[i].kind != 'f')
			continue;
		dtn__stat_sig_from(&sig, &v[i].st);
		if ((v[i].cached = dtn__cache_dir_lookup(w->b->cache, cd, &sig, v[i].digest)))
			w->id->cache_hits++;
	}
}

/* Gives the cache the digests read in this directory, and stores its block. */
static void cache_end(dtn__walk *w, dtn__cache_dir *cd, const dtn__entry *v, size_t n)
{
	for (size_t i = 0; i < n && !cd->off; i++) {
		dtn__stat_sig sig;

		if (v[i].kind != 'f' || v[i].cached || v[i].rc < 0)
			continue;
		dtn__stat_sig_from(&sig, &v[i].st);
		dtn__cache_dir_put(cd, &sig, v[i].digest);
	}
	dtn__cache_dir_close(w->b->cache, cd, w->started);
}

/* identify: digests of the directory's files the cache did not give, read on all threads. */
static int hash_files(dtn__walk *w, int dfd, dtn__entry *v, size_t n)
{
	dtn__entry **todo = dtn__calloc(n ? n : 1, sizeof(*todo));
	size_t ntodo = 0;
	int rc = 0;

	if (!todo)
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (v[i].kind == 'f' && !v[i].cached)
			todo[ntodo++] = &v[i];
	dtn__pool_run(w->b->pool, ntodo, hash_one, &(struct batch){w, dfd, todo});
	for (size_t i = 0; i < ntodo && rc == 0; i++)
		if (todo[i]->rc < 0)
			rc = dtn__walk_entry_error(w, todo[i], todo[i]->name);
	dtn__free(todo);
	return rc;
}

/* ---- reading ahead while archiving -------------------------------------------------------- */

/* Files read ahead at once take at most this much memory. */
#define READ_AHEAD_BUDGET (4u * 1024u * 1024u)

/* Reads a small file whole into en->data and hashes it, unless its digest is known; on a pool
 * thread. */
static void fetch_one(size_t i, unsigned worker, void *arg)
{
	struct batch *bt = arg;
	dtn__entry *en = bt->todo[i];
	dtn__hasher *h = &bt->w->b->hashers[worker];
	size_t size = (size_t)en->st.st_size, got = 0;
	struct stat st;
	int fd;

	en->fetched = true;
	if ((fd = dtn__walk_open_listed(bt->dfd, en->name)) < 0) {
		en->rc = DTN_EIO;
		en->err_errno = errno;
		return;
	}
	en->rc = (size && !(en->data = dtn__malloc(size))) ? DTN_ENOMEM : 0;
	while (en->rc == 0 && got < size) {
		ssize_t r = read(fd, en->data + got, size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			en->rc = DTN_EIO, en->err_errno = errno;
		else if (r == 0)
			en->rc = DTN_ECHANGED;
		else
			got += (size_t)r;
	}
	if (en->rc == 0 && fstat(fd, &st) < 0)
		en->rc = DTN_EIO, en->err_errno = errno;
	else if (en->rc == 0 && !same_version(&st, &en->st))
		en->rc = DTN_ECHANGED;
	close(fd);
	/*
	 * A file the cache knows was just read in full and is still the version listed, whose
	 * signature the cache's digest belongs to: hashing it again would only repeat that digest.
	 */
	if (en->rc == 0 && !en->cached &&
	    (dtn__sha256_init(h->sha) < 0 ||
	     dtn__sha256_update(h->sha, en->data ? en->data : "", size) < 0 ||
	     dtn__sha256_final(h->sha, en->digest) < 0))
		en->rc = DTN_ERROR;
}

/*
 * archive: reads the small files from entry `from` on ahead, on all threads, within the
 * memory budget, so that the opening and reading of many small files is shared between the
 * cores while this thread writes the archive.
 */
static int read_ahead(dtn__walk *w, int dfd, dtn__entry *v, size_t n, size_t from)
{
	dtn__entry **todo;
	size_t ntodo = 0, budget = 0, cap = n - from;
	int rc = 0;

	if (!(todo = dtn__calloc(cap, sizeof(*todo))))
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	for (size_t i = from; i < n && budget < READ_AHEAD_BUDGET; i++) {
		if (v[i].kind != 'f' || v[i].fetched ||
		    (unsigned long long)v[i].st.st_size > DTN__READ_AHEAD_FILE)
			continue;
		todo[ntodo++] = &v[i];
		budget += (size_t)v[i].st.st_size;
	}
	dtn__pool_run(w->b->pool, ntodo, fetch_one, &(struct batch){w, dfd, todo});
	dtn__free(todo);
	return rc;
}

/* ---- the Merkle summary -------------------------------------------------------------------- */

/* Adds one entry's record to a directory's digest. */
static int add_record(dtn__sha256 *sha, char kind, const struct stat *st, unsigned long long size,
		      const unsigned char digest[DTN__SHA256_LEN], const char *name)
{
	char hex[DTN__SHA256_HEX], head[160];
	size_t len = strlen(name);
	int n;

	dtn__sha256_hex(hex, digest);
	n = snprintf(head, sizeof(head), "%c %04o %llu %s %zu:", kind,
		     (unsigned)(st->st_mode & 07777), size, hex, len);
	if (dtn__sha256_update(sha, head, (size_t)n) < 0 || dtn__sha256_update(sha, name, len) < 0 ||
	    dtn__sha256_update(sha, "\n", 1) < 0)
		return DTN_ERROR;
	return 0;
}

/* ---- walking ------------------------------------------------------------------------------- */

static int walk_dir(dtn__walk *w, int dfd, bool reinclude_only, unsigned char digest[DTN__SHA256_LEN],
		    bool *empty);

/* Enters child `en` of the directory dfd: w->rel gets its name for the time of `fn`. */
static size_t rel_push(dtn__walk *w, const char *name)
{
	size_t old = w->rel.len;

	if (old)
		dtn__buf_putc(&w->rel, '/');
	dtn__buf_puts(&w->rel, name);
	return old;
}

static void rel_pop(dtn__walk *w, size_t old)
{
	w->rel.len = old;
	if (w->rel.data)
		w->rel.data[old] = '\0';
}

/* A link: its target, hashed; written to the archive when archiving. */
static int visit_link(dtn__walk *w, int dfd, dtn__entry *en, const char *name)
{
	char target[PATH_MAX + 1], path[PATH_MAX];
	ssize_t n = readlinkat(dfd, en->name, target, sizeof(target) - 1);
	int rc;

	if (n < 0)
		return dtn__walk_fail_errno(w, "read the link", NULL, errno);
	target[n] = '\0';
	en->st.st_size = n;
	if (dtn__sha256_once(en->digest, target, (size_t)n) < 0)
		return dtn__walk_fail(w, DTN_ERROR, "cannot hash a link");
	w->id->links++;
	/* said once: by identify, or by the one pass that both identifies and archives */
	if (w->b->opts.for_daytona && (!w->ar || w->one_pass))
		dtn__builder_warn(w->b, "%s: a symbolic link; Daytona's runner turns links into "
					"empty files", dtn__walk_shown(w, NULL, path, sizeof(path)));
	if (w->ar && ((rc = dtn__tar_flush_dirs(w)) < 0 || (rc = dtn__tar_header(w, name, &en->st, target)) < 0))
		return rc;
	return 0;
}

static int visit_dir(dtn__walk *w, int dfd, dtn__entry *en, const char *name, bool *keep)
{
	int fd = openat(dfd, en->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	bool empty;
	int rc;

	if (fd < 0)
		return dtn__walk_fail_errno(w, "open", NULL, errno);
	if (w->ar && (rc = dtn__tar_push_dir(w, name, &en->st)) < 0) {
		close(fd);
		return rc;
	}
	rc = walk_dir(w, fd, en->reinclude_only, en->digest, &empty);
	close(fd);
	/* a directory walked only for exceptions, with none found, stays out */
	*keep = !(en->reinclude_only && empty);
	if (rc == 0 && w->ar) {
		if (*keep)
			rc = dtn__tar_flush_dirs(w);
		else
			dtn__tar_pop_dir(w);
	}
	if (rc == 0 && *keep)
		w->id->dirs++;
	if (rc == 0 && !*keep)
		w->id->excluded++;
	return rc;
}

static int visit(dtn__walk *w, int dfd, dtn__entry *en, dtn__sha256 *sha, bool *any)
{
	dtn__buf name = DTN__BUF_INIT;
	const char *ename = NULL;
	bool keep = true;
	int rc = 0;

	if (w->ar && !(ename = dtn__tar_entry_name(w, dtn__buf_cstr(&w->rel), &name)))
		rc = dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	else if (en->kind == 'd')
		rc = visit_dir(w, dfd, en, ename, &keep);
	else if (en->kind == 'l')
		rc = visit_link(w, dfd, en, ename);
	else if (w->ar)
		rc = dtn__tar_file(w, dfd, en, ename);
	if (rc == 0 && en->kind == 'f') {
		w->id->files++;
		w->id->bytes += (unsigned long long)en->st.st_size;
	}
	if (rc == 0 && keep) {
		*any = true;
		if (add_record(sha, en->kind, &en->st,
			       en->kind == 'd' ? 0 : (unsigned long long)en->st.st_size, en->digest,
			       en->name) < 0)
			rc = dtn__walk_fail(w, DTN_ERROR, "cannot hash a directory");
	}
	dtn__buf_free(&name);
	return rc;
}

/* Decides which entries stay; excluded ones are freed and counted. */
static int filter(dtn__walk *w, dtn__entry *v, size_t *n)
{
	size_t kept = 0;
	int rc = 0;

	for (size_t i = 0; i < *n; i++) {
		size_t old = rel_push(w, v[i].name);
		bool reinclude = false;
		int ex = w->rel.failed ? DTN_ENOMEM
				       : dtn__walk_excluded(w, dtn__buf_cstr(&w->rel), v[i].kind == 'd',
							    &reinclude);

		rel_pop(w, old);
		if (ex < 0 && rc == 0)
			rc = dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
		if (ex == 1 && !reinclude) {
			w->id->excluded++;
			dtn__free(v[i].name);
			continue;
		}
		v[i].reinclude_only = ex == 1;
		v[kept++] = v[i];
	}
	*n = kept;
	return rc;
}

static int walk_dir(dtn__walk *w, int dfd, bool reinclude_only, unsigned char digest[DTN__SHA256_LEN],
		    bool *empty)
{
	dtn__sha256 *sha = dtn__sha256_new();
	dtn__entry *v = NULL;
	dtn__cache_dir cd;
	size_t n = 0;
	bool any = false, cache_open = false;
	int rc;

	(void)reinclude_only; /* the rules themselves say what inside is taken back */
	if (!sha)
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	if ((rc = list_dir(w, dfd, &v, &n)) < 0)
		goto out;
	cache_begin(w, dfd, v, n, &cd);
	cache_open = true;
	if ((rc = filter(w, v, &n)) < 0)
		goto out;
	cache_lookups(w, &cd, v, n);
	if (!w->ar) {
		if ((rc = hash_files(w, dfd, v, n)) < 0)
			goto out;
		cache_end(w, &cd, v, n);
		cache_open = false;
	}
	if (dtn__sha256_init(sha) < 0 || dtn__sha256_update(sha, "dtn-tree-v1\n", 12) < 0) {
		rc = dtn__walk_fail(w, DTN_ERROR, "cannot hash a directory");
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t old;

		if (w->ar && v[i].kind == 'f' && !v[i].fetched &&
		    (unsigned long long)v[i].st.st_size <= DTN__READ_AHEAD_FILE &&
		    (rc = read_ahead(w, dfd, v, n, i)) < 0)
			break;
		old = rel_push(w, v[i].name);
		rc = w->rel.failed ? dtn__walk_fail(w, DTN_ENOMEM, "out of memory")
				   : visit(w, dfd, &v[i], sha, &any);
		rel_pop(w, old);
		dtn__free(v[i].data);
		v[i].data = NULL;
	}
	if (rc == 0 && dtn__sha256_final(sha, digest) < 0)
		rc = dtn__walk_fail(w, DTN_ERROR, "cannot hash a directory");
	*empty = !any;
	if (rc == 0 && cache_open) {
		/* archive: every file was read (and hashed where the cache did not know it) */
		cache_end(w, &cd, v, n);
		cache_open = false;
	}
out:
	if (cache_open)
		dtn__cache_dir_free(&cd);
	entries_free(v, n);
	dtn__sha256_free(sha);
	return rc;
}

/* Where rule i comes from: "SOURCE:LINE" for a file's line, "SOURCE" for a step's pattern. */
const char *dtn__walk_rule_where(const dtn__ignore *rules, int i, char *buf, size_t size)
{
	int line = dtn__ignore_rule_line(rules, i);

	if (line > 0)
		snprintf(buf, size, "%s:%d", dtn__ignore_rule_source(rules, i), line);
	else
		snprintf(buf, size, "%s", dtn__ignore_rule_source(rules, i));
	return buf;
}

/* ---- the top of a context ------------------------------------------------------------------ */

/* `path` relative to `root` when it lies inside it ("" for the root itself), else NULL. */
char *dtn__walk_relative_to(const char *root, const char *path, bool *oom)
{
	size_t n = strlen(root);
	char *rel;

	*oom = false;
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(path, root, n) != 0 || (path[n] && path[n] != '/' && n > 1))
		return NULL;
	rel = dtn__strdup(path + n + (path[n] == '/'));
	if (!rel) {
		*oom = true;
		return NULL;
	}
	n = strlen(rel);
	while (n && rel[n - 1] == '/')
		rel[--n] = '\0';
	return rel;
}

/* The entry-name prefix of an archive path: normalised, without a leading '/' or "./". */
char *dtn__walk_entry_prefix(const char *archive_path)
{
	char *p = dtn__strdup(archive_path), *s;
	size_t n;

	if (!p)
		return NULL;
	dtn__path_normalize(p);
	s = p + strspn(p, "/");
	if (!strcmp(s, "."))
		s = p + strlen(p);
	memmove(p, s, strlen(s) + 1);
	n = strlen(p);
	while (n && p[n - 1] == '/')
		p[--n] = '\0';
	return p;
}

int dtn__walk_load_rules(dtn__walk *w)
{
	const dtn__ignore *rules = NULL;
	bool oom;
	int rc;

	if ((rc = dtn__builder_root_rules(w->b, w->ctx->root, &rules, w->err)) < 0)
		return rc;
	w->root_rules = rules;
	w->root_rel = dtn__walk_relative_to(w->ctx->root, w->ctx->path, &oom);
	if (oom)
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	if (w->ctx->ignore[0]) {
		if ((rc = dtn__ignore_new(&w->step_rules)) < 0)
			return dtn__walk_fail(w, rc, "out of memory");
		if ((rc = dtn__ignore_add_patterns(w->step_rules, w->ctx->ignore, "ignore",
						   w->err)) < 0)
			return rc;
	}
	if (rules && !(w->root_used = dtn__calloc(dtn__ignore_count(rules) + 1, 1)))
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	if (w->step_rules &&
	    !(w->step_used = dtn__calloc(dtn__ignore_count(w->step_rules) + 1, 1)))
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	return 0;
}

/*
 * The top of the context: its lstat, following it when it is itself a link that stays inside
 * the root (a file named by a step, as `docker build` follows a COPY source).
 */
static int open_top(dtn__walk *w, struct stat *st, char **real)
{
	char *rpath = NULL, *rroot = NULL;
	bool inside;

	*real = NULL;
	if (lstat(w->ctx->path, st) < 0)
		return errno == ENOENT ? dtn__walk_fail(w, DTN_ENOTFOUND, "%s does not exist", w->ctx->path)
				       : dtn__walk_fail_errno(w, "read", NULL, errno);
	if (!S_ISLNK(st->st_mode))
		return 0;
	rpath = realpath(w->ctx->path, NULL);
	rroot = realpath(w->ctx->root, NULL);
	inside = rpath && rroot && (!strncmp(rpath, rroot, strlen(rroot)) &&
				    (rpath[strlen(rroot)] == '/' || !strcmp(rroot, "/")));
	if (!rpath) {
		free(rroot);
		return dtn__walk_fail(w, DTN_ENOTFOUND, "%s is a link to nothing", w->ctx->path);
	}
	if (!inside || stat(rpath, st) < 0) {
		free(rpath);
		free(rroot);
		return dtn__walk_fail(w, DTN_EOUTSIDE, "%s is a link leading outside %s", w->ctx->path,
			    w->ctx->root);
	}
	free(rroot);
	*real = dtn__strdup(rpath);
	free(rpath);
	return *real ? 0 : dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
}

/* Refuses a top that the root's rules leave out, unless exceptions may take entries back. */
static int check_top(dtn__walk *w, const struct stat *st, bool *reinclude)
{
	char where[PATH_MAX + 32];
	const char *rp;
	int rule = -1;

	*reinclude = false;
	if (!w->root_rules || !w->root_rel || !*w->root_rel)
		return 0;
	rp = w->root_rel;
	if (dtn__ignore_match(w->root_rules, rp, strlen(rp), S_ISDIR(st->st_mode), &rule) != 1)
		return 0;
	if (S_ISDIR(st->st_mode) && dtn__ignore_may_reinclude(w->root_rules, rp, strlen(rp))) {
		*reinclude = true;
		return 0;
	}
	return dtn__walk_fail(w, DTN_EINVAL, "%s is left out by %s %s, so it cannot be copied",
		    w->ctx->path, dtn__walk_rule_where(w->root_rules, rule, where, sizeof(where)),
		    dtn__ignore_rule_text(w->root_rules, rule));
}

/* The top's own record, and so the identity. */
static int finish_identity(dtn__walk *w, char kind, const struct stat *st,
			   const unsigned char digest[DTN__SHA256_LEN], unsigned char out[32])
{
	dtn__sha256 *sha = dtn__sha256_new();
	char head[64];
	int n, rc = 0;

	if (!sha)
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	n = snprintf(head, sizeof(head), "dtn-context-v1\n%zu:", strlen(w->prefix));
	if (dtn__sha256_init(sha) < 0 || dtn__sha256_update(sha, head, (size_t)n) < 0 ||
	    dtn__sha256_update(sha, w->prefix, strlen(w->prefix)) < 0 ||
	    dtn__sha256_update(sha, "\n", 1) < 0 ||
	    add_record(sha, kind, st, kind == 'd' ? 0 : (unsigned long long)st->st_size, digest,
		       "") < 0 ||
	    dtn__sha256_final(sha, out) < 0)
		rc = dtn__walk_fail(w, DTN_ERROR, "cannot hash the context");
	dtn__sha256_free(sha);
	return rc;
}

static int walk_top_dir(dtn__walk *w, const char *path, const struct stat *st, bool reinclude,
			unsigned char digest[32])
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool empty;
	int rc;

	if (fd < 0)
		return dtn__walk_fail_errno(w, "open", NULL, errno);
	if (w->ar && *w->prefix && (rc = dtn__tar_push_dir(w, w->prefix, st)) < 0) {
		close(fd);
		return rc;
	}
	rc = walk_dir(w, fd, reinclude, digest, &empty);
	close(fd);
	if (rc == 0 && w->ar && *w->prefix)
		rc = dtn__tar_flush_dirs(w);
	w->id->dirs++;
	return rc;
}

/* The digest of a context that is one file, from the cache or read (and archived). */
static int top_file_digest(dtn__walk *w, const char *path, dtn__entry *en)
{
	int fd, e = 0, rc;

	if (w->ar)
		return dtn__tar_file(w, -1, en, w->prefix);
	if (en->cached)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return dtn__walk_fail_errno(w, "open", NULL, errno);
	rc = dtn__walk_read_file(w, fd, &en->st, w->b->hashers[0].sha, w->b->hashers[0].buf, NULL,
				 en->digest, &e);
	close(fd);
	if (rc == 0)
		return 0;
	if (rc == DTN_ECHANGED)
		return dtn__walk_fail(w, rc, "%s changed while it was read", w->ctx->path);
	return e ? dtn__walk_fail_errno(w, "read", NULL, e) : dtn__walk_fail(w, rc, "cannot hash %s", w->ctx->path);
}

static int walk_top_file(dtn__walk *w, const char *path, struct stat *st, unsigned char digest[32])
{
	dtn__entry en = {.st = *st, .kind = 'f'};
	dtn__cache_dir cd;
	int rc;

	w->id->files = 1;
	w->id->bytes = (unsigned long long)st->st_size;
	/* a file on its own has a block of its own, keyed by the file itself */
	dtn__cache_dir_open(w->b->cache, &cd, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
	dtn__cache_dir_listed(&cd, (uint64_t)st->st_ino);
	cache_lookups(w, &cd, &en, 1);
	if ((rc = top_file_digest(w, path, &en)) < 0) {
		dtn__cache_dir_free(&cd);
		return rc;
	}
	memcpy(digest, en.digest, DTN__SHA256_LEN);
	cache_end(w, &cd, &en, 1);
	return 0;
}

/* The walk of a whole context; the identity in `out`. */
int dtn__walk_context(dtn__walk *w, unsigned char out[32])
{
	struct stat st;
	char *real = NULL;
	unsigned char digest[DTN__SHA256_LEN];
	bool reinclude = false;
	int rc;

	w->started = time(NULL);
	if (!(w->prefix = dtn__walk_entry_prefix(w->ctx->archive_path)))
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	if ((rc = dtn__walk_load_rules(w)) < 0 || (rc = open_top(w, &st, &real)) < 0 ||
	    (rc = check_top(w, &st, &reinclude)) < 0)
		goto out;
	if (S_ISDIR(st.st_mode))
		rc = walk_top_dir(w, real ? real : w->ctx->path, &st, reinclude, digest);
	else if (S_ISREG(st.st_mode))
		rc = walk_top_file(w, real ? real : w->ctx->path, &st, digest);
	else
		rc = dtn__walk_fail(w, DTN_EINVAL, "%s is not a file or a directory", w->ctx->path);
	if (rc == 0)
		rc = finish_identity(w, S_ISDIR(st.st_mode) ? 'd' : 'f', &st, digest, out);
out:
	dtn__free(real);
	return rc;
}

/* The rules that left something out, as "SOURCE:LINE PATTERN" lines. */
static int collect_used(dtn__walk *w, const dtn__ignore *rules, const bool *used, dtn__strv *v)
{
	char where[PATH_MAX + 32];

	for (size_t i = 0; rules && i < dtn__ignore_count(rules); i++) {
		char *s;

		if (!used[i])
			continue;
		s = dtn__aprintf("%s %s", dtn__walk_rule_where(rules, (int)i, where, sizeof(where)),
				 dtn__ignore_rule_text(rules, (int)i));
		if (dtn__strv_push_owned(v, s) < 0)
			return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	}
	return 0;
}

void dtn__walk_free(dtn__walk *w)
{
	dtn__ignore_free(w->step_rules);
	dtn__free(w->root_used);
	dtn__free(w->step_used);
	dtn__free(w->root_rel);
	dtn__free(w->prefix);
	dtn__buf_free(&w->rel);
	dtn__buf_free(&w->match);
	dtn__buf_free(&w->pending);
	dtn__free(w->pending_ends);
}

static const char *const no_rules[] = {NULL};

void dtn_context_id_free(dtn_context_id *id)
{
	if (!id)
		return;
	if (id->excluded_by != no_rules)
		dtn__strv_free_array((char **)id->excluded_by);
	dtn__free(id);
}

int dtn__walk_start_id(dtn__walk *w)
{
	if (!(w->id = dtn__calloc(1, sizeof(*w->id))))
		return dtn__error_set(w->err, DTN_ENOMEM, "out of memory");
	w->id->excluded_by = no_rules;
	return 0;
}

int dtn__walk_finish_id(dtn__walk *w, const unsigned char digest[DTN__SHA256_LEN],
			dtn_context_id **out)
{
	dtn__strv used = {0};
	int rc;

	if ((rc = collect_used(w, w->root_rules, w->root_used, &used)) == 0 &&
	    (rc = collect_used(w, w->step_rules, w->step_used, &used)) == 0) {
		dtn__sha256_hex(w->id->hash, digest);
		if (used.len) {
			w->id->excluded_by = (const char *const *)used.items;
			used = (dtn__strv){0};
		}
		*out = w->id;
		w->id = NULL;
	}
	dtn__strv_free(&used);
	return rc;
}

int dtn_builder_identify(dtn_builder *b, const dtn_context *ctx, dtn_context_id **out,
			 dtn_error *err)
{
	dtn__walk w = {.b = b, .ctx = ctx, .err = err};
	unsigned char digest[DTN__SHA256_LEN];
	dtn_span *span = dtn__context_span_start("Context.identify", ctx);
	int rc;

	*out = NULL;
	dtn_error_clear(err);
	if ((rc = dtn__walk_start_id(&w)) == 0 && (rc = dtn__walk_context(&w, digest)) == 0)
		rc = dtn__walk_finish_id(&w, digest, out);
	dtn__context_span_end(span, *out, rc, err);
	dtn_context_id_free(w.id);
	dtn__walk_free(&w);
	return rc;
}
