/*
 * test_walk.c - build contexts: what identify sees, how the identity behaves, what the archive
 * holds, the ignore rules, links, odd files, the digest cache and files that change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "builder_internal.h"
#include "dtn.h"
#include "testutil.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static char top[PATH_MAX];   /* a scratch directory for the whole file */
static char cache[PATH_MAX]; /* the digest cache the tests use */

static void path_of(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", top, rel);
}

/* A small tree with nested directories, an empty one, an executable, a link and a dotfile. */
static void make_tree(const char *name)
{
	char p[PATH_MAX], t[PATH_MAX];

	snprintf(p, sizeof(p), "%s/a.txt", name);
	tu_write(top, p, "alpha\n");
	snprintf(p, sizeof(p), "%s/sub/b.txt", name);
	tu_write(top, p, "bravo\n");
	snprintf(p, sizeof(p), "%s/sub/deeper/c.txt", name);
	tu_write(top, p, "charlie\n");
	snprintf(p, sizeof(p), "%s/.hidden", name);
	tu_write(top, p, "h\n");
	snprintf(p, sizeof(p), "%s/run.sh", name);
	tu_write(top, p, "#!/bin/sh\n");
	snprintf(t, sizeof(t), "%s/%s/run.sh", top, name);
	chmod(t, 0755);
	snprintf(t, sizeof(t), "%s/%s/empty", top, name);
	mkdir(t, 0755);
	snprintf(t, sizeof(t), "%s/%s/link", top, name);
	if (symlink("a.txt", t) < 0)
		abort();
}

static int setup(void **state)
{
	(void)state;
	snprintf(top, sizeof(top), "%s", tu_mkdtemp());
	snprintf(cache, sizeof(cache), "%s/cache", top);
	make_tree("tree");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(top);
	return 0;
}

/* An image whose context i is `local` (relative to dir) copied to /app. */
static dtn_image *image_of(const char *dir, const char *local, bool is_dir)
{
	dtn_image *img = dtn_image_resolve_from(dtn_image_base("scratch"), dir);

	if (is_dir)
		dtn_image_add_local_dir(img, local, "/app", NULL);
	else
		dtn_image_add_local_file(img, local, "/app/");
	if (dtn_image_status(img) < 0)
		fail_msg("image: %s", dtn_image_error(img)->message);
	return img;
}

struct warnings {
	int count;
	char last[1024];
};

static void on_warn(const char *message, void *payload)
{
	struct warnings *w = payload;

	w->count++;
	snprintf(w->last, sizeof(w->last), "%s", message);
}

static dtn_builder *builder(struct warnings *w, bool daytona)
{
	dtn_builder *b;
	dtn_error err;

	if (dtn_builder_new(&b, &(dtn_builder_opts){.cache_dir = cache, .warn = on_warn,
						    .payload = w, .for_daytona = daytona},
			    &err) < 0)
		fail_msg("builder: %s", err.message);
	return b;
}

/* The identity of `local` under dir (a directory context), or "" with *code on failure. */
static void identify(const char *dir, const char *local, bool is_dir, char hash[65], int *code,
		     dtn_context_id **keep)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_image *img = image_of(dir, local, is_dir);
	dtn_context_id *id = NULL;
	dtn_error err;

	*code = dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err);
	hash[0] = '\0';
	if (*code == 0)
		memcpy(hash, id->hash, 65);
	if (keep)
		*keep = id;
	else
		dtn_context_id_free(id);
	if (dtn_builder_save_cache(b, &err) < 0)
		fail_msg("saving the cache: %s", err.message);
	dtn_image_free(img);
	dtn_builder_free(b);
}

static void hash_of(const char *local, char hash[65])
{
	int code;

	identify(top, local, true, hash, &code, NULL);
	assert_int_equal(code, 0);
	assert_int_equal(strlen(hash), 64);
}

static void test_builder_walk__counts(void **state)
{
	dtn_context_id *id;
	char hash[65];
	int code;

	(void)state;
	identify(top, "tree", true, hash, &code, &id);
	assert_int_equal(code, 0);
	assert_int_equal(id->files, 5);
	assert_int_equal(id->dirs, 4); /* tree, sub, deeper, empty */
	assert_int_equal(id->links, 1);
	assert_int_equal(id->bytes, 6 + 6 + 8 + 2 + 10);
	assert_int_equal(id->excluded, 0);
	assert_null(id->excluded_by[0]);
	dtn_context_id_free(id);
}

/* Runs `change` on a copy of the tree and returns whether the identity changed. */
static bool changes_identity(void (*change)(const char *dir))
{
	char base[65], after[65], dir[PATH_MAX];
	static int n;
	char name[32];

	snprintf(name, sizeof(name), "copy%d/tree", n++);
	make_tree(name);
	hash_of(name, base);
	path_of(dir, sizeof(dir), name);
	change(dir);
	hash_of(name, after);
	return strcmp(base, after) != 0;
}

static void write_at(const char *dir, const char *rel, const char *text)
{
	tu_write(dir, rel, text);
}

static void change_content(const char *dir) { write_at(dir, "a.txt", "alphA\n"); }
static void change_dotfile(const char *dir) { write_at(dir, ".hidden", "H\n"); }
static void add_file(const char *dir) { write_at(dir, "sub/new.txt", ""); }

static void rename_file(const char *dir)
{
	char a[PATH_MAX], b[PATH_MAX];

	snprintf(a, sizeof(a), "%s/sub/b.txt", dir);
	snprintf(b, sizeof(b), "%s/sub/B.txt", dir);
	assert_int_equal(rename(a, b), 0);
}

static void change_mode(const char *dir)
{
	char a[PATH_MAX];

	snprintf(a, sizeof(a), "%s/a.txt", dir);
	assert_int_equal(chmod(a, 0600), 0);
}

static void change_link(const char *dir)
{
	char a[PATH_MAX];

	snprintf(a, sizeof(a), "%s/link", dir);
	assert_int_equal(unlink(a), 0);
	assert_int_equal(symlink("run.sh", a), 0);
}

static void add_empty_dir(const char *dir)
{
	char a[PATH_MAX];

	snprintf(a, sizeof(a), "%s/sub/more", dir);
	assert_int_equal(mkdir(a, 0755), 0);
}

static void touch_times(const char *dir)
{
	char a[PATH_MAX];
	struct timespec ts[2] = {{1000000, 0}, {1000000, 0}};

	snprintf(a, sizeof(a), "%s/a.txt", dir);
	assert_int_equal(utimensat(AT_FDCWD, a, ts, 0), 0);
	snprintf(a, sizeof(a), "%s/sub", dir);
	assert_int_equal(utimensat(AT_FDCWD, a, ts, 0), 0);
}

static void change_owner(const char *dir)
{
	char a[PATH_MAX];

	snprintf(a, sizeof(a), "%s/a.txt", dir);
	/* as root this changes the owner; as anyone else chown to oneself still succeeds */
	assert_int_equal(lchown(a, getuid() == 0 ? 1234 : getuid(), getgid()), 0);
}

static void test_builder_walk__identity_changes(void **state)
{
	(void)state;
	assert_true(changes_identity(change_content));
	assert_true(changes_identity(change_dotfile));
	assert_true(changes_identity(add_file));
	assert_true(changes_identity(rename_file));
	assert_true(changes_identity(change_mode));
	assert_true(changes_identity(change_link));
	assert_true(changes_identity(add_empty_dir));
}

static void test_builder_walk__identity_stable(void **state)
{
	char a[65], b[65], c[65];

	(void)state;
	assert_false(changes_identity(touch_times));
	assert_false(changes_identity(change_owner));
	/* checkout location: the same tree elsewhere, made in another order */
	hash_of("tree", a);
	tu_write(top, "elsewhere/deep/down/tree/sub/deeper/c.txt", "charlie\n");
	tu_write(top, "elsewhere/deep/down/tree/sub/b.txt", "bravo\n");
	tu_write(top, "elsewhere/deep/down/tree/run.sh", "#!/bin/sh\n");
	tu_write(top, "elsewhere/deep/down/tree/.hidden", "h\n");
	tu_write(top, "elsewhere/deep/down/tree/a.txt", "alpha\n");
	{
		char p[PATH_MAX];

		path_of(p, sizeof(p), "elsewhere/deep/down/tree/run.sh");
		chmod(p, 0755);
		path_of(p, sizeof(p), "elsewhere/deep/down/tree/empty");
		mkdir(p, 0755);
		path_of(p, sizeof(p), "elsewhere/deep/down/tree/link");
		assert_int_equal(symlink("a.txt", p), 0);
		path_of(p, sizeof(p), "elsewhere/deep/down");
		{
			int code;

			identify(p, "tree", true, b, &code, NULL);
			assert_int_equal(code, 0);
		}
	}
	assert_string_equal(a, b);
	/* "./tree" and "tree" give the same archive, so the same identity */
	{
		int code;

		identify(top, "./tree", true, c, &code, NULL);
		assert_int_equal(code, 0);
		assert_string_equal(a, c);
		/* the same files under another archive path are another context */
		identify(top, "elsewhere/deep/down/tree", true, c, &code, NULL);
		assert_int_equal(code, 0);
		assert_string_not_equal(a, c);
	}
}

/* ---- the archive ---- */

static int collect(const void *data, size_t len, void *payload)
{
	FILE *f = payload;

	return fwrite(data, 1, len, f) == len ? 0 : -1;
}

/* Archives context 0 of img into memory (a tmpfile); returns the FILE positioned at 0. */
static FILE *archive_of(dtn_image *img, const char *hash, int *code)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	FILE *f = tmpfile();
	dtn_error err;

	*code = dtn_builder_archive(b, dtn_image_context(img, 0), hash, collect, f, &err);
	dtn_builder_free(b);
	rewind(f);
	return f;
}

static bool same_bytes(FILE *a, FILE *b);

/* Reads the archive and checks each entry against the file it came from. */
static size_t check_entries(FILE *f, const char *const *want, const char *src_dir,
			    const char *prefix)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *ae;
	size_t n = 0;

	archive_read_support_format_tar(ar);
	assert_int_equal(archive_read_open_FILE(ar, f), ARCHIVE_OK);
	while (archive_read_next_header(ar, &ae) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ae);
		char src[PATH_MAX];
		struct stat st;

		assert_non_null(want[n]);
		assert_string_equal(name, want[n]);
		assert_int_equal(archive_entry_uid(ae), 0);
		assert_int_equal(archive_entry_gid(ae), 0);
		assert_int_equal(archive_entry_mtime(ae), 0);
		assert_true(!archive_entry_uname(ae) || !*archive_entry_uname(ae));
		assert_true(!archive_entry_gname(ae) || !*archive_entry_gname(ae));
		snprintf(src, sizeof(src), "%s/%s", src_dir, name + strlen(prefix));
		assert_int_equal(lstat(src, &st), 0);
		assert_int_equal(archive_entry_perm(ae), st.st_mode & 07777);
		if (S_ISREG(st.st_mode)) {
			char *buf = malloc((size_t)st.st_size + 1), *got = malloc((size_t)st.st_size + 1);
			FILE *sf = fopen(src, "rb");

			assert_int_equal(archive_entry_size(ae), st.st_size);
			assert_int_equal(fread(buf, 1, (size_t)st.st_size, sf), (size_t)st.st_size);
			assert_int_equal(archive_read_data(ar, got, (size_t)st.st_size + 1), st.st_size);
			assert_memory_equal(buf, got, (size_t)st.st_size);
			fclose(sf);
			free(buf);
			free(got);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlink(src, target, sizeof(target) - 1);

			target[len] = '\0';
			assert_int_equal(archive_entry_filetype(ae), AE_IFLNK);
			assert_string_equal(archive_entry_symlink(ae), target);
		} else {
			assert_int_equal(archive_entry_filetype(ae), AE_IFDIR);
		}
		n++;
	}
	assert_null(want[n]);
	archive_read_free(ar);
	return n;
}

static void test_builder_walk__archive_round_trip(void **state)
{
	char hash[65], src[PATH_MAX];
	int code;
	dtn_image *img;
	FILE *f;

	(void)state;
	hash_of("tree", hash);
	img = image_of(top, "tree", true);
	f = archive_of(img, hash, &code);
	assert_int_equal(code, 0);
	path_of(src, sizeof(src), "tree");
	/* depth first, each directory's entries in byte order */
	check_entries(f,
		      DTN_STRV("tree/", "tree/.hidden", "tree/a.txt", "tree/empty/", "tree/link",
			       "tree/run.sh", "tree/sub/", "tree/sub/b.txt", "tree/sub/deeper/",
			       "tree/sub/deeper/c.txt"),
		      src, "tree/");
	fclose(f);
	dtn_image_free(img);
}

/* Two archives of the same tree are the same bytes. */
static void test_builder_walk__archive_deterministic(void **state)
{
	char hash[65];
	int code;
	dtn_image *img = image_of(top, "tree", true);
	FILE *a, *b;
	int ca, cb;

	(void)state;
	hash_of("tree", hash);
	a = archive_of(img, hash, &code);
	b = archive_of(img, NULL, &code);
	do {
		ca = fgetc(a);
		cb = fgetc(b);
		assert_int_equal(ca, cb);
	} while (ca != EOF);
	fclose(a);
	fclose(b);
	dtn_image_free(img);
}

/* One pass gives the same identity and the same bytes as identify, then archive. */
static void test_builder_walk__one_pass(void **state)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_image *img = image_of(top, "tree", true);
	dtn_context_id *id = NULL;
	dtn_error err;
	char hash[65];
	FILE *one = tmpfile(), *two;
	int code, ca, cb;

	(void)state;
	hash_of("tree", hash);
	assert_int_equal(dtn_builder_archive_identify(b, dtn_image_context(img, 0), collect, one, &id,
						      &err), 0);
	assert_string_equal(id->hash, hash);
	assert_int_equal(id->files, 5);
	assert_int_equal(id->links, 1);
	rewind(one);
	two = archive_of(img, hash, &code);
	assert_int_equal(code, 0);
	do {
		ca = fgetc(one);
		cb = fgetc(two);
		assert_int_equal(ca, cb);
	} while (ca != EOF);
	fclose(one);
	fclose(two);
	dtn_context_id_free(id);
	dtn_image_free(img);
	dtn_builder_free(b);
}

/* Many files of every size around the read-ahead limit come out whole and in order. */
static void test_builder_walk__read_ahead_sizes(void **state)
{
	static const size_t sizes[] = {0, 1, 4095, 4096, 65536, 262143, 262144, 262145, 1048577};
	char name[64], hash[65], src[PATH_MAX];
	const char *want[COUNT_OF(sizes) + 2];
	char names[COUNT_OF(sizes)][64];
	int code;
	dtn_image *img;
	FILE *f;

	(void)state;
	want[0] = "sizes/";
	for (size_t i = 0; i < COUNT_OF(sizes); i++) {
		char *text = malloc(sizes[i] + 1);

		for (size_t k = 0; k < sizes[i]; k++)
			text[k] = (char)('a' + (k * 7 + i) % 26);
		text[sizes[i]] = '\0';
		snprintf(name, sizeof(name), "sizes/f%02zu", i);
		tu_write(top, name, text);
		free(text);
		snprintf(names[i], sizeof(names[i]), "sizes/f%02zu", i);
		want[i + 1] = names[i];
	}
	want[COUNT_OF(sizes) + 1] = NULL;
	hash_of("sizes", hash);
	img = image_of(top, "sizes", true);
	f = archive_of(img, hash, &code);
	assert_int_equal(code, 0);
	path_of(src, sizeof(src), "sizes");
	check_entries(f, want, src, "sizes/");
	fclose(f);
	dtn_image_free(img);
}

static void test_builder_walk__long_names(void **state)
{
	char name[400], src[PATH_MAX], hash[65];
	int code;
	dtn_image *img;
	FILE *f;

	(void)state;
	memset(name, 'n', 200);
	snprintf(name + 200, sizeof(name) - 200, "/%s.txt", "still-a-long-name-beyond-ustar-limits");
	{
		char rel[PATH_MAX];

		snprintf(rel, sizeof(rel), "long/%s", name);
		tu_write(top, rel, "long\n");
	}
	hash_of("long", hash);
	img = image_of(top, "long", true);
	f = archive_of(img, hash, &code);
	assert_int_equal(code, 0);
	path_of(src, sizeof(src), "long");
	{
		char d[PATH_MAX], full[PATH_MAX];

		snprintf(d, sizeof(d), "long/%.200s/", name);
		snprintf(full, sizeof(full), "long/%s", name);
		check_entries(f, DTN_STRV("long/", d, full), src, "long/");
	}
	fclose(f);
	dtn_image_free(img);
}

/* A file changed after identify: the archive says so instead of mixing versions. */
static void test_builder_walk__changed_after_identify(void **state)
{
	char hash[65];
	int code;
	dtn_image *img;
	FILE *f;

	(void)state;
	tu_write(top, "moving/x.txt", "one\n");
	hash_of("moving", hash);
	tu_write(top, "moving/x.txt", "two\n");
	img = image_of(top, "moving", true);
	f = archive_of(img, hash, &code);
	assert_int_equal(code, DTN_ECHANGED);
	fclose(f);
	dtn_image_free(img);
}

/* The names of the entries of an archive file, one per line. */
static void entry_names(const char *path, dtn__buf *out)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *ae;

	archive_read_support_format_tar(ar);
	assert_int_equal(archive_read_open_filename(ar, path, 10240), ARCHIVE_OK);
	while (archive_read_next_header(ar, &ae) == ARCHIVE_OK)
		dtn__buf_printf(out, "%s\n", archive_entry_pathname(ae));
	archive_read_free(ar);
}

/*
 * An archive written with dtn_write_fd to a file inside the context it archives leaves that
 * file out, as tar does: the identity is the one identify gives without it, and the archive
 * does not hold a growing copy of itself.
 */
static void test_builder_walk__archive_inside_context(void **state)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_image *img;
	dtn_context_id *id;
	dtn_error err;
	dtn__buf names = DTN__BUF_INIT;
	char hash[65], out[PATH_MAX], big[70000];
	int fd;

	(void)state;
	memset(big, 'b', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	tu_write(top, "selfout/a.txt", "a\n");
	tu_write(top, "selfout/big.txt", big); /* enough to fill a block of the archive */
	tu_write(top, "selfout/out/keep.txt", "k\n");
	hash_of("selfout", hash);
	img = image_of(top, "selfout", true);
	path_of(out, sizeof(out), "selfout/out/ctx.tar");
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(dtn_builder_archive_identify(b, dtn_image_context(img, 0), dtn_write_fd,
						      &fd, &id, &err), 0);
	assert_int_equal(close(fd), 0);
	assert_string_equal(id->hash, hash);
	assert_int_equal(id->files, 3);
	assert_int_equal(w.count, 1);
	assert_non_null(strstr(w.last, "selfout/out/ctx.tar: the archive being written"));
	entry_names(out, &names);
	assert_string_equal(dtn__buf_cstr(&names), "selfout/\nselfout/a.txt\nselfout/big.txt\n"
						    "selfout/out/\nselfout/out/keep.txt\n");
	/* written elsewhere, the same file is archived like any other */
	dtn_context_id_free(id);
	hash_of("selfout", hash);
	{
		FILE *f = archive_of(img, hash, &fd);

		assert_int_equal(fd, 0);
		fclose(f);
	}
	dtn__buf_free(&names);
	dtn_image_free(img);
	dtn_builder_free(b);
}

/*
 * The archive's bytes do not depend on the program's locale: a name in UTF-8, one that is not
 * UTF-8 and a link to a UTF-8 name come out the same in the C locale and a UTF-8 one.
 */
#define UNICODE_NAME "\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9" ".txt"

static void test_builder_walk__archive_locale(void **state)
{
	dtn_image *img;
	char hash[65], p[PATH_MAX];
	FILE *c, *utf8;
	int code;

	(void)state;
	tu_write(top, "names/" UNICODE_NAME, "u\n");
	tu_write(top, "names/latin1-\xe9", "l\n");
	tu_write(top, "names/\xe6\x97\xa5\xe6\x9c\xac/x", "j\n");
	path_of(p, sizeof(p), "names/link");
	assert_int_equal(symlink(UNICODE_NAME, p), 0);
	hash_of("names", hash);
	img = image_of(top, "names", true);
	assert_non_null(setlocale(LC_ALL, "C"));
	c = archive_of(img, hash, &code);
	assert_int_equal(code, 0);
	if (!setlocale(LC_ALL, "C.UTF-8"))
		fail_msg("the C.UTF-8 locale is missing");
	utf8 = archive_of(img, hash, &code);
	assert_non_null(setlocale(LC_ALL, "C"));
	assert_int_equal(code, 0);
	assert_true(same_bytes(c, utf8));
	fclose(c);
	fclose(utf8);
	dtn_image_free(img);
}

/* ---- ignore rules ---- */

static void test_builder_walk__dockerignore(void **state)
{
	dtn_context_id *id;
	char hash[65], root[PATH_MAX];
	int code;

	(void)state;
	tu_write(top, "proj/.dockerignore", "# build output\n**/*.pyc\nsrc/build\n!src/build/keep.txt\n");
	tu_write(top, "proj/src/app.py", "print(1)\n");
	tu_write(top, "proj/src/app.pyc", "x");
	tu_write(top, "proj/src/pkg/mod.pyc", "x");
	tu_write(top, "proj/src/build/out.o", "x");
	tu_write(top, "proj/src/build/keep.txt", "keep\n");
	path_of(root, sizeof(root), "proj");
	identify(root, "src", true, hash, &code, &id);
	assert_int_equal(code, 0);
	/* app.py, build/keep.txt */
	assert_int_equal(id->files, 2);
	/* app.pyc, pkg/mod.pyc, build/out.o */
	assert_int_equal(id->excluded, 3);
	assert_non_null(strstr(id->excluded_by[0], ".dockerignore:2 **/*.pyc"));
	assert_non_null(strstr(id->excluded_by[1], ".dockerignore:3 src/build"));
	assert_null(id->excluded_by[2]);
	dtn_context_id_free(id);

	/* a file the rules leave out cannot be named on its own */
	identify(root, "src/app.pyc", false, hash, &code, NULL);
	assert_int_equal(code, DTN_EINVAL);
}

/* One case of the table below: .dockerignore, files made (a trailing '/' makes a directory), and
 * the entries of the archive of the directory as a context archived at ".". */
typedef struct walk_case {
	const char *rules;
	const char *const *files;
	const char *entries;
} walk_case;

/* The entry names of an archive (a FILE at its start), one per line. */
static void names_of(FILE *f, dtn__buf *out)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *ae;

	archive_read_support_format_tar(ar);
	assert_int_equal(archive_read_open_FILE(ar, f), ARCHIVE_OK);
	while (archive_read_next_header(ar, &ae) == ARCHIVE_OK)
		dtn__buf_printf(out, "%s\n", archive_entry_pathname(ae));
	archive_read_free(ar);
}

/*
 * What is archived under Docker's documented .dockerignore rules, with BuildKit's walk: a
 * directory pattern leaves out what is below it, an exception takes a file back from an
 * excluded directory (which is then sent as well), an exception before the rule it should
 * undo does nothing, an excluded directory where no exception finds anything stays out.
 */
static void test_builder_walk__dockerignore_table(void **state)
{
	const walk_case cases[] = {
		{"# comment\n*/temp*\n*/*/temp*\ntemp?\n",
		 DTN_STRV("somedir/temporary.txt", "somedir/temp/x", "somedir/subdir/temporary.txt",
			  "tempa", "temp", "tempab", "a/b/c/temp.x"),
		 ".dockerignore\na/\na/b/\na/b/c/\na/b/c/temp.x\nsomedir/\nsomedir/subdir/\n"
		 "temp\ntempab\n"},
		{"*.md\n!README*.md\nREADME-secret.md\n",
		 DTN_STRV("README.md", "README-secret.md", "README-x.md", "a.md", "d/b.md"),
		 ".dockerignore\nREADME-x.md\nREADME.md\nd/\nd/b.md\n"},
		{"*.md\nREADME-secret.md\n!README*.md\n",
		 DTN_STRV("README.md", "README-secret.md", "a.md"),
		 ".dockerignore\nREADME-secret.md\nREADME.md\n"},
		{"**/*.go\n", DTN_STRV("main.go", "cmd/x/main.go", "cmd/x/main.c"),
		 ".dockerignore\ncmd/\ncmd/x/\ncmd/x/main.c\n"},
		{"/build/\nlogs/\n.dockerignore\n",
		 DTN_STRV("build/a", "build/sub/b", "logs/x", "src/build/c", "src/logs/d"),
		 "src/\nsrc/build/\nsrc/build/c\nsrc/logs/\nsrc/logs/d\n"},
		{"dir\n!dir/keep.txt\n", DTN_STRV("dir/keep.txt", "dir/other", "dir/sub/x"),
		 ".dockerignore\ndir/\ndir/keep.txt\n"},
		{"dir\n!dir/a/b/keep\n", DTN_STRV("dir/a/b/keep", "dir/a/other", "dir/a/b/no"),
		 ".dockerignore\ndir/\ndir/a/\ndir/a/b/\ndir/a/b/keep\n"},
		{"!dir/keep.txt\ndir\n", DTN_STRV("dir/keep.txt", "dir/other"), ".dockerignore\n"},
		{"dir\n!dir/keep.txt\n", DTN_STRV("dir/other", "dir/sub/x"), ".dockerignore\n"},
		{"*\n!**/*.py\n", DTN_STRV("a.py", "b.txt", "sub/c.py", "sub/d.txt", "e/f/g.py", "h/"),
		 "a.py\ne/\ne/f/\ne/f/g.py\nsub/\nsub/c.py\n"},
		{"*\n!src\nsrc/*.tmp\n", DTN_STRV("src/a", "src/b.tmp", "src/c/d.tmp", "top"),
		 "src/\nsrc/a\nsrc/c/\nsrc/c/d.tmp\n"},
		{"# x\n #y\n./a/../b\n", DTN_STRV("x", " #y", "#y", "b", "a"),
		 " #y\n.dockerignore\na\nx\n"},
		{"\\*.txt\n[Tt]humbs.db\nfile[0-9]\n[^a]x\n",
		 DTN_STRV("*.txt", "a.txt", "Thumbs.db", "thumbs.db", "file5", "filex", "bx", "ax"),
		 ".dockerignore\na.txt\nax\nfilex\n"},
		{"a/**/b\nc/**\nd/*\n", DTN_STRV("a/b/x", "a/x/y/b", "a/x/yb", "c/x", "cc", "d/e/", "b"),
		 ".dockerignore\na/\na/x/\na/x/y/\na/x/yb\nb\nc/\ncc\nd/\n"},
	};
	dtn__buf names = DTN__BUF_INIT;

	(void)state;
	for (size_t i = 0; i < COUNT_OF(cases); i++) {
		char dir[PATH_MAX], name[PATH_MAX];
		dtn_image *img;
		FILE *f;
		int code;

		snprintf(dir, sizeof(dir), "%s/table%zu", top, i);
		tu_write(dir, ".dockerignore", cases[i].rules);
		for (const char *const *p = cases[i].files; *p; p++) {
			snprintf(name, sizeof(name), "%s/%s", dir, *p);
			if (name[strlen(name) - 1] == '/')
				for (char *c = name + strlen(dir) + 1; *c; c++) {
					if (*c != '/')
						continue;
					*c = '\0';
					assert_true(mkdir(name, 0755) == 0 || errno == EEXIST);
					*c = '/';
				}
			else
				tu_write(dir, *p, *p);
		}
		img = dtn_image_resolve_from(dtn_image_base("scratch"), dir);
		dtn_image_add_local_dir(img, ".", "/app", NULL);
		assert_int_equal(dtn_image_status(img), 0);
		f = archive_of(img, NULL, &code);
		assert_int_equal(code, 0);
		names.len = 0;
		names_of(f, &names);
		if (strcmp(dtn__buf_cstr(&names), cases[i].entries))
			fail_msg("case %zu (%s): archived\n%s\nexpected\n%s", i, cases[i].rules,
				 dtn__buf_cstr(&names), cases[i].entries);
		fclose(f);
		dtn_image_free(img);
	}
	dtn__buf_free(&names);
}

static void test_builder_walk__step_patterns(void **state)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_image *img = dtn_image_resolve_from(dtn_image_base("x"), top);
	dtn_context_id *id;
	dtn_error err;
	char *text;

	(void)state;
	dtn_image_add_local_dir(img, "tree", "/t",
				&(dtn_dir_opts){.ignore = DTN_STRV("sub", "*.sh")});
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err), 0);
	assert_int_equal(id->files, 2); /* a.txt, .hidden */
	assert_int_equal(id->excluded, 2);
	assert_string_equal(id->excluded_by[0], "ignore[0] sub");
	assert_string_equal(id->excluded_by[1], "ignore[1] *.sh");
	dtn_context_id_free(id);
	{
		char p[PATH_MAX];

		path_of(p, sizeof(p), "tree/sub/b.txt");
		assert_int_equal(dtn_builder_explain(b, dtn_image_context(img, 0), p, &text, &err), 0);
		assert_non_null(strstr(text, "left out by ignore[0] sub"));
		dtn_free(text);
		path_of(p, sizeof(p), "tree/a.txt");
		assert_int_equal(dtn_builder_explain(b, dtn_image_context(img, 0), p, &text, &err), 0);
		assert_non_null(strstr(text, "in the archive as tree/a.txt"));
		dtn_free(text);
		assert_int_equal(dtn_builder_explain(b, dtn_image_context(img, 0), "/elsewhere", &text,
						     &err), 0);
		assert_null(text);
	}
	dtn_image_free(img);
	dtn_builder_free(b);
}

/* What explain says of `rel` under top/expl, in the first context of img. */
static void expect_explain(dtn_builder *b, dtn_image *img, const char *rel, const char *words)
{
	dtn_error err;
	char p[PATH_MAX], *text = NULL;

	snprintf(p, sizeof(p), "%s/expl/%s", top, rel);
	assert_int_equal(dtn_builder_explain(b, dtn_image_context(img, 0), p, &text, &err), 0);
	assert_non_null(text);
	if (!strstr(text, words))
		fail_msg("explain %s: \"%s\" lacks \"%s\"", rel, text, words);
	dtn_free(text);
}

/*
 * explain says what the archive holds: an excluded directory that keeps entries taken back is
 * in it, one that keeps none is not; nothing below a link, no FIFO, no missing file is.
 */
static void test_builder_walk__explain_matches_archive(void **state)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_image *img;
	char p[PATH_MAX];
	int code;
	FILE *f;

	(void)state;
	tu_write(top, "expl/.dockerignore", "dir\n!dir/keep.txt\nnone\n!none/keep.txt\n");
	tu_write(top, "expl/dir/keep.txt", "k\n");
	tu_write(top, "expl/dir/other", "o\n");
	tu_write(top, "expl/none/other", "o\n");
	tu_write(top, "expl/plain/a", "a\n");
	path_of(p, sizeof(p), "expl/fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	path_of(p, sizeof(p), "expl/link");
	assert_int_equal(symlink("plain", p), 0);
	path_of(p, sizeof(p), "expl");
	img = dtn_image_resolve_from(dtn_image_base("scratch"), p);
	dtn_image_add_local_dir(img, ".", "/app", NULL);
	assert_int_equal(dtn_image_status(img), 0);

	/* the archive: dir/ with keep.txt; none/ not at all */
	f = archive_of(img, NULL, &code);
	assert_int_equal(code, 0);
	check_entries(f, DTN_STRV(".dockerignore", "dir/", "dir/keep.txt", "link", "plain/",
				  "plain/a"),
		      p, "");
	fclose(f);

	expect_explain(b, img, "dir", "in the archive as dir, for the entries inside it");
	expect_explain(b, img, "dir", "itself left out by");
	expect_explain(b, img, "dir/keep.txt", "in the archive as dir/keep.txt (taken back by");
	expect_explain(b, img, "dir/other", "left out by");
	expect_explain(b, img, "none", "left out by");
	expect_explain(b, img, "none/other", "left out by");
	expect_explain(b, img, "fifo", "not in the archive: not a file, directory or link");
	expect_explain(b, img, "link", "in the archive as link");
	expect_explain(b, img, "link/a", "expl/link is a link, archived as a link");
	expect_explain(b, img, "missing", "not in the archive: there is no such file");
	expect_explain(b, img, "plain/a/x", "there is no such file");
	expect_explain(b, img, "", "in the archive as ./");
	dtn_image_free(img);
	dtn_builder_free(b);
}

/* ---- links and odd files ---- */

static void test_builder_walk__links(void **state)
{
	struct warnings w = {0};
	dtn_builder *b = builder(&w, true);
	dtn_image *img = image_of(top, "tree", true);
	dtn_context_id *id;
	dtn_error err;
	char p[PATH_MAX], hash[65];
	int code;
	FILE *f;

	(void)state;
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err), 0);
	assert_int_equal(w.count, 1);
	assert_non_null(strstr(w.last, "tree/link: a symbolic link"));
	assert_null(strstr(w.last, "link/link"));
	assert_non_null(strstr(w.last, "empty files"));
	dtn_context_id_free(id);
	/* archiving what identify already warned about says nothing more; one pass says it once */
	f = tmpfile();
	assert_int_equal(dtn_builder_archive(b, dtn_image_context(img, 0), NULL, collect, f, &err), 0);
	assert_int_equal(w.count, 1);
	rewind(f);
	assert_int_equal(dtn_builder_archive_identify(b, dtn_image_context(img, 0), collect, f, &id,
						      &err), 0);
	assert_int_equal(w.count, 2);
	assert_non_null(strstr(w.last, "tree/link: a symbolic link"));
	fclose(f);
	dtn_context_id_free(id);
	dtn_image_free(img);
	dtn_builder_free(b);

	/* a file named by a step that is a link: followed inside the root, refused outside */
	tu_write(top, "links/real.txt", "real\n");
	path_of(p, sizeof(p), "links/inside.txt");
	assert_int_equal(symlink("real.txt", p), 0);
	path_of(p, sizeof(p), "links/outside.txt");
	assert_int_equal(symlink("/etc/hostname", p), 0);
	path_of(p, sizeof(p), "links");
	identify(p, "inside.txt", false, hash, &code, NULL);
	assert_int_equal(code, 0);
	identify(p, "outside.txt", false, hash, &code, NULL);
	assert_int_equal(code, DTN_EOUTSIDE);
}

static void test_builder_walk__socket_skipped(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_image *img;
	dtn_context_id *id;
	dtn_error err;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	(void)state;
	tu_write(top, "sock/a.txt", "a");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock/s", top);
	if (strlen(sa.sun_path) >= sizeof(sa.sun_path) - 1)
		skip(); /* the scratch path is too long for a socket name */
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	img = image_of(top, "sock", true);
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err), 0);
	assert_int_equal(id->skipped, 1);
	assert_int_equal(id->files, 1);
	assert_non_null(strstr(w.last, "sock/s: skipped"));
	dtn_context_id_free(id);
	dtn_image_free(img);
	dtn_builder_free(b);
	close(fd);
}

/* ---- the digest cache ---- */

/* Once a tree is old enough to be cached, identify reads no file. */
static void test_builder_walk__cache_hits(void **state)
{
	dtn_context_id *id;
	char hash1[65], hash2[65];
	int code;

	(void)state;
	tu_write(top, "cached/one.txt", "1\n");
	tu_write(top, "cached/two/three.txt", "3\n");
	/* the cache refuses files changed in the last two seconds */
	tu_wait_older(top, "cached/one.txt", DTN__CACHE_RACY_SECONDS);
	tu_wait_older(top, "cached/two/three.txt", DTN__CACHE_RACY_SECONDS);
	identify(top, "cached", true, hash1, &code, &id);
	assert_int_equal(code, 0);
	assert_int_equal(id->cache_hits, 0);
	dtn_context_id_free(id);
	identify(top, "cached", true, hash2, &code, &id);
	assert_int_equal(id->cache_hits, 2);
	assert_string_equal(hash1, hash2);
	dtn_context_id_free(id);
	/* a changed file is read again */
	tu_write(top, "cached/one.txt", "one\n");
	identify(top, "cached", true, hash2, &code, &id);
	assert_int_equal(id->cache_hits, 1);
	assert_string_not_equal(hash1, hash2);
	dtn_context_id_free(id);
}

/* Whether two archives (tmpfiles) hold the same bytes. */
static bool same_bytes(FILE *a, FILE *b)
{
	int ca, cb;

	rewind(a);
	rewind(b);
	do {
		ca = fgetc(a);
		cb = fgetc(b);
	} while (ca == cb && ca != EOF);
	return ca == cb;
}

/* A builder on `dir` whose cache holds at most `budget` bytes of new digests in memory. */
static dtn_builder *budget_builder(const char *dir, size_t budget)
{
	dtn_builder *b;
	dtn_error err;

	if (dtn_builder_new(&b, &(dtn_builder_opts){.cache_dir = dir}, &err) < 0)
		fail_msg("builder: %s", err.message);
	dtn__cache_set_budget(b->cache, budget);
	return b;
}

/*
 * A tree with far more digests than the cache may hold in memory: they go to the file as they
 * come, and the next runs find every one. The archive then reads every file but hashes none
 * the cache knows, and is still byte for byte the archive made without a cache; a file
 * changed since is hashed and changes the identity.
 */
static void test_builder_walk__cache_beyond_budget(void **state)
{
	char dir[PATH_MAX], name[64], text[64];
	dtn_image *img = NULL;
	dtn_context_id *id0, *id1, *id2;
	dtn__cache_stats st;
	dtn_builder *b0, *b;
	dtn_error err;
	FILE *plain = tmpfile(), *cached = tmpfile();

	(void)state;
	snprintf(dir, sizeof(dir), "%s/budget-cache", top);
	for (int d = 0; d < 40; d++)
		for (int f = 0; f < 12; f++) {
			snprintf(name, sizeof(name), "big/d%02d/f%02d.txt", d, f);
			snprintf(text, sizeof(text), "file %d of directory %d\n", f, d);
			tu_write(top, name, text);
		}
	tu_write(top, "big/top.txt", "top\n");
	tu_write(top, "single.txt", "one file\n");
	/* the cache refuses files changed in the last two seconds; single.txt was written last */
	tu_wait_older(top, "single.txt", DTN__CACHE_RACY_SECONDS);
	img = image_of(top, "big", true);
	dtn_image_add_local_file(img, "single.txt", "/one.txt");

	/* the reference: no cache */
	assert_int_equal(dtn_builder_new(&b0, &(dtn_builder_opts){.cache_dir = ""}, &err), 0);
	assert_int_equal(dtn_builder_identify(b0, dtn_image_context(img, 0), &id0, &err), 0);
	assert_int_equal(id0->files, 481);
	assert_int_equal(dtn_builder_archive(b0, dtn_image_context(img, 0), id0->hash, collect, plain,
					     &err), 0);

	/* the first run fills the cache, writing it out many times on the way */
	b = budget_builder(dir, 2048);
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id1, &err), 0);
	assert_int_equal(id1->cache_hits, 0);
	assert_string_equal(id1->hash, id0->hash);
	dtn__cache_stats_get(b->cache, &st);
	assert_true(st.writes >= 10);
	assert_int_equal(dtn_builder_save_cache(b, &err), 0);
	dtn_context_id_free(id1);
	dtn_builder_free(b);

	/* the next finds every digest, and the archive hashes none of the files again */
	b = budget_builder(dir, 2048);
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id1, &err), 0);
	assert_int_equal(id1->cache_hits, 481);
	assert_string_equal(id1->hash, id0->hash);
	assert_int_equal(dtn_builder_archive(b, dtn_image_context(img, 0), id1->hash, collect,
					     cached, &err), 0);
	assert_true(same_bytes(plain, cached));
	rewind(cached);
	assert_int_equal(dtn_builder_archive_identify(b, dtn_image_context(img, 0), collect, cached,
						      &id2, &err), 0);
	assert_int_equal(id2->cache_hits, 481);
	assert_string_equal(id2->hash, id0->hash);
	dtn_context_id_free(id2);
	dtn_builder_free(b);

	/* a context that is one file has its digest cached too */
	b = budget_builder(dir, 2048);
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 1), &id2, &err), 0);
	assert_int_equal(id2->cache_hits, 0);
	dtn_context_id_free(id2);
	assert_int_equal(dtn_builder_save_cache(b, &err), 0);
	dtn_builder_free(b);
	b = budget_builder(dir, 2048);
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 1), &id2, &err), 0);
	assert_int_equal(id2->cache_hits, 1);
	dtn_context_id_free(id2);

	/* a changed file is read again: another identity, and the old one no longer archives */
	tu_write(top, "big/d07/f03.txt", "changed\n");
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id2, &err), 0);
	assert_int_equal(id2->cache_hits, 480);
	assert_string_not_equal(id2->hash, id0->hash);
	rewind(cached);
	assert_int_equal(dtn_builder_archive(b, dtn_image_context(img, 0), id0->hash, collect, cached,
					     &err), DTN_ECHANGED);
	assert_non_null(strstr(err.message, "changed after it was identified"));
	assert_int_equal(dtn_builder_archive(b, dtn_image_context(img, 0), id2->hash, collect, cached,
					     &err), 0);
	dtn_context_id_free(id2);
	dtn_builder_free(b);

	dtn_context_id_free(id1);
	dtn_context_id_free(id0);
	dtn_builder_free(b0);
	dtn_image_free(img);
	fclose(plain);
	fclose(cached);
}

static void test_builder_walk__missing_source(void **state)
{
	dtn_image *img = image_of(top, "tree", true);
	struct warnings w = {0};
	dtn_builder *b = builder(&w, false);
	dtn_context_id *id;
	dtn_error err;
	char from[PATH_MAX], to[PATH_MAX];

	(void)state;
	path_of(from, sizeof(from), "tree");
	path_of(to, sizeof(to), "tree-moved");
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err),
			 DTN_ENOTFOUND);
	assert_non_null(strstr(err.message, "tree"));
	assert_int_equal(rename(to, from), 0);
	dtn_image_free(img);
	dtn_builder_free(b);
}

static void test_builder_walk__allocation_failures(void **state)
{
	dtn_image *img = image_of(top, "tree", true);
	long n;

	(void)state;
	for (n = 1;; n++) {
		dtn_builder *b = NULL;
		dtn_context_id *id = NULL;
		dtn_error err;
		FILE *f = tmpfile();
		int rc;

		tu_fail_alloc_after(n);
		rc = dtn_builder_new(&b, &(dtn_builder_opts){.cache_dir = ""}, &err);
		if (rc == 0)
			rc = dtn_builder_identify(b, dtn_image_context(img, 0), &id, &err);
		if (rc == 0)
			rc = dtn_builder_archive(b, dtn_image_context(img, 0), id->hash, collect, f,
						 &err);
		tu_alloc_reset();
		dtn_context_id_free(id);
		dtn_builder_free(b);
		fclose(f);
		if (rc == 0)
			break;
		assert_int_equal(rc, DTN_ENOMEM);
		assert_true(n < 100000);
	}
	assert_true(n > 10);
	dtn_image_free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_walk__counts),
		cmocka_unit_test(test_builder_walk__identity_changes),
		cmocka_unit_test(test_builder_walk__identity_stable),
		cmocka_unit_test(test_builder_walk__archive_round_trip),
		cmocka_unit_test(test_builder_walk__archive_deterministic),
		cmocka_unit_test(test_builder_walk__one_pass),
		cmocka_unit_test(test_builder_walk__read_ahead_sizes),
		cmocka_unit_test(test_builder_walk__long_names),
		cmocka_unit_test(test_builder_walk__changed_after_identify),
		cmocka_unit_test(test_builder_walk__archive_inside_context),
		cmocka_unit_test(test_builder_walk__archive_locale),
		cmocka_unit_test(test_builder_walk__dockerignore),
		cmocka_unit_test(test_builder_walk__dockerignore_table),
		cmocka_unit_test(test_builder_walk__step_patterns),
		cmocka_unit_test(test_builder_walk__explain_matches_archive),
		cmocka_unit_test(test_builder_walk__links),
		cmocka_unit_test(test_builder_walk__socket_skipped),
		cmocka_unit_test(test_builder_walk__cache_hits),
		cmocka_unit_test(test_builder_walk__cache_beyond_budget),
		cmocka_unit_test(test_builder_walk__missing_source),
		cmocka_unit_test(test_builder_walk__allocation_failures),
	};

	return cmocka_run_group_tests_name("builder/walk", tests, setup, teardown);
}
