/*
 * local_dir.c - the build directory of a local build: the Dockerfile beside a context directory
 * that holds every context's files at their archive paths, as Daytona's runner lays them out.
 * The files come from the builder's own archive, so the ignore rules, links and permission bits
 * are exactly those of what would be uploaded.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

int dtn_write_fd(const void *data, size_t len, void *payload)
{
	int fd = *(int *)payload;
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_text(const char *path, const char *text, dtn_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && dtn_write_fd(text, strlen(text), &fd) == 0;

	if (fd >= 0 && close(fd) != 0)
		ok = false;
	if (!ok)
		return dtn__error_set(err, DTN_EIO, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

int dtn__local_dir_make(char **out, const char *tmp_dir, const char *dockerfile, dtn_error *err)
{
	const char *tmp = tmp_dir ? tmp_dir : getenv("TMPDIR");
	char *templ, *dir = NULL, *path = NULL, real[PATH_MAX];
	int rc = 0;

	*out = NULL;
	if (!(templ = dtn__aprintf("%s/dtn-build.XXXXXX", tmp && *tmp ? tmp : "/tmp")))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if (!mkdtemp(templ)) {
		rc = dtn__error_set(err, DTN_EIO, "cannot make a build directory in %s: %s",
				    tmp && *tmp ? tmp : "/tmp", strerror(errno));
		dtn__free(templ);
		return rc;
	}
	/* extraction refuses to go through links: the directory is named without any */
	if (!realpath(templ, real) || !(dir = dtn__strdup(real))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		dtn__rmtree(templ);
		dtn__free(templ);
		return rc;
	}
	dtn__free(templ);
	if (!(path = dtn__aprintf("%s/Dockerfile", dir)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if (rc == 0)
		rc = write_text(path, dockerfile, err);
	dtn__free(path);
	if (rc == 0 && !(path = dtn__aprintf("%s/ignore", dir)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if (rc == 0)
		rc = write_text(path, "", err);
	dtn__free(path);
	path = NULL;
	if (rc == 0 && !(path = dtn__aprintf("%s/context", dir)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if (rc == 0 && mkdir(path, 0755) != 0)
		rc = dtn__error_set(err, DTN_EIO, "cannot make %s: %s", path, strerror(errno));
	dtn__free(path);
	if (rc < 0) {
		dtn__rmtree(dir);
		dtn__free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

/* The builder writes archive names without a leading '/' and without "..": checked anyway. */
static bool safe_name(const char *name)
{
	const char *p = name;

	if (!*name || *name == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		p += *p == '/';
	}
	return true;
}

/* Re-roots an entry name (and a hard link's target) under `top`. */
static int reroot(struct archive_entry *ae, const char *top, dtn_error *err)
{
	const char *name = archive_entry_pathname(ae), *hard = archive_entry_hardlink(ae);
	char *path;

	if (!name || !safe_name(name) || (hard && !safe_name(hard)))
		return dtn__error_set(err, DTN_EOUTSIDE, "archive entry \"%s\" leaves the build "
				      "context", name ? name : "");
	if (!(path = dtn__aprintf("%s/%s", top, name)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	archive_entry_copy_pathname(ae, path);
	dtn__free(path);
	if (hard) {
		if (!(path = dtn__aprintf("%s/%s", top, hard)))
			return dtn__error_set(err, DTN_ENOMEM, "out of memory");
		archive_entry_copy_hardlink(ae, path);
		dtn__free(path);
	}
	return 0;
}

static int copy_data(struct archive *in, struct archive *out)
{
	const void *block;
	size_t size;
	la_int64_t offset;
	int r;

	while ((r = archive_read_data_block(in, &block, &size, &offset)) == ARCHIVE_OK)
		if (archive_write_data_block(out, block, size, offset) < ARCHIVE_OK)
			return ARCHIVE_FATAL;
	return r == ARCHIVE_EOF ? ARCHIVE_OK : r;
}

/*
 * Notes an entry whose set-user-ID or set-group-ID bit is set: libarchive drops these bits when
 * it does not restore owners, and sets a directory's mode only when the archive is closed. The
 * note is the mode in octal followed by the (absolute) path.
 */
static int note_special(dtn__strv *special, struct archive_entry *ae)
{
	mode_t mode = archive_entry_mode(ae);

	if (!(mode & (S_ISUID | S_ISGID)) || (!S_ISREG(mode) && !S_ISDIR(mode)))
		return 0;
	return dtn__strv_push_owned(special, dtn__aprintf("%o%s", (unsigned)(mode & 07777),
							  archive_entry_pathname(ae)));
}

/* Gives the noted entries their whole mode back, once extraction is over. */
static int restore_special(const dtn__strv *special, const dtn_context *ctx, dtn_error *err)
{
	for (size_t i = 0; i < special->len; i++) {
		char *path;
		mode_t mode = (mode_t)strtoul(special->items[i], &path, 8);

		if (chmod(path, mode) != 0)
			return dtn__error_set(err, DTN_EIO, "cannot lay out context %s in the build "
					      "directory: cannot set the mode of %s: %s",
					      ctx->source, path, strerror(errno));
	}
	return 0;
}

static int extract(const char *tar, const char *top, const dtn_context *ctx, dtn_error *err)
{
	struct archive *in = archive_read_new(), *out = archive_write_disk_new();
	struct archive_entry *ae;
	int r = ARCHIVE_OK, rc = 0;
	struct archive *failed = NULL;
	dtn__strv special = {0};

	if (!in || !out) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto done;
	}
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						    ARCHIVE_EXTRACT_SECURE_NODOTDOT);
	if (archive_read_open_filename(in, tar, 65536) != ARCHIVE_OK) {
		failed = in;
		goto done;
	}
	while ((r = archive_read_next_header(in, &ae)) == ARCHIVE_OK) {
		if ((rc = reroot(ae, top, err)) < 0)
			goto done;
		if (note_special(&special, ae) < 0) {
			rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
			goto done;
		}
		if (archive_write_header(out, ae) < ARCHIVE_OK ||
		    copy_data(in, out) < ARCHIVE_OK || archive_write_finish_entry(out) < ARCHIVE_OK) {
			failed = (archive_errno(out) || archive_error_string(out)) ? out : in;
			goto done;
		}
	}
	if (r != ARCHIVE_EOF)
		failed = in;
	else if (archive_write_close(out) != ARCHIVE_OK)
		failed = out;
	else
		rc = restore_special(&special, ctx, err);
done:
	if (failed)
		rc = dtn__error_set(err, DTN_EIO, "cannot lay out context %s in the build directory: "
				    "%s", ctx->source, archive_error_string(failed) ?
				    archive_error_string(failed) : "unknown error");
	archive_read_free(in);
	archive_write_free(out);
	dtn__strv_free(&special);
	return rc;
}

int dtn__local_dir_add(dtn_builder *b, const char *dir, const dtn_context *ctx, const char *hash,
		       dtn_error *err)
{
	char *tar = dtn__aprintf("%s/context.tar", dir), *top = dtn__aprintf("%s/context", dir);
	int fd = -1, rc = 0;

	if (!tar || !top) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	if ((fd = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		rc = dtn__error_set(err, DTN_EIO, "cannot write %s: %s", tar, strerror(errno));
		goto out;
	}
	rc = dtn_builder_archive(b, ctx, hash, dtn_write_fd, &fd, err);
	if (rc == DTN_EUSER)
		rc = dtn__error_set(err, DTN_EIO, "cannot write %s: %s", tar, strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = dtn__error_set(err, DTN_EIO, "cannot write %s: %s", tar, strerror(errno));
	if (rc == 0)
		rc = extract(tar, top, ctx, err);
	unlink(tar);
out:
	dtn__free(tar);
	dtn__free(top);
	return rc;
}

/* Removes what is inside the open directory dfd; its entries first given write permission. */
static int empty_dir(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub;

			fchmodat(dirfd(d), de->d_name, 0700, 0);
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || empty_dir(sub) != 0 ||
			    unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
				rc = -1;
		} else if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int dtn__rmtree(const char *path)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	chmod(path, 0700);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (empty_dir(fd) != 0)
		return -1;
	return rmdir(path);
}
