/*
 * tar.c - the archive of a context: a deterministic tar written through libarchive as the walk
 * goes, each file read once, written and hashed on the way.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "context_otel.h"
#include "walk.h"

/* ---- the archive ------------------------------------------------------------------------- */

static int tar_fail(dtn__walk *w)
{
	if (w->write_rc)
		return dtn__walk_fail(w, w->write_rc, "the archive's consumer stopped it");
	return dtn__walk_fail(w, DTN_EIO, "cannot write the archive: %s", archive_error_string(w->ar));
}

/* The entry name of `rel`: the prefix joined with it. */
const char *dtn__tar_entry_name(dtn__walk *w, const char *rel, dtn__buf *out)
{
	out->len = 0;
	dtn__buf_puts(out, w->prefix);
	if (*w->prefix && *rel)
		dtn__buf_putc(out, '/');
	dtn__buf_puts(out, rel);
	return out->failed ? NULL : dtn__buf_cstr(out);
}

/*
 * libarchive converts names between the locale's character set and the UTF-8 of PAX headers:
 * in a UTF-8 locale a UTF-8 name goes out as it is, in the C locale it is marked as binary,
 * and in a Latin-1 locale its bytes would be re-encoded. The archive must not depend on the
 * locale of the program dtn runs in, so libarchive always works in the C locale: names are
 * written as the bytes the file system holds.
 */
static int c_write_header(dtn__walk *w)
{
	locale_t old = uselocale(w->c_locale);
	int rc = archive_write_header(w->ar, w->ae);

	uselocale(old);
	return rc;
}

int dtn__tar_header(dtn__walk *w, const char *name, const struct stat *st, const char *target)
{
	struct archive_entry *ae = w->ae;

	archive_entry_clear(ae);
	archive_entry_copy_pathname(ae, name);
	archive_entry_set_perm(ae, st->st_mode & 07777);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, 0, 0);
	if (S_ISDIR(st->st_mode)) {
		archive_entry_set_filetype(ae, AE_IFDIR);
	} else if (S_ISLNK(st->st_mode)) {
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_copy_symlink(ae, target);
	} else {
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_size(ae, st->st_size);
	}
	if (c_write_header(w) < ARCHIVE_WARN)
		return tar_fail(w);
	return 0;
}

/* Directory headers wait until something inside them is written, or the directory ends. */
int dtn__tar_push_dir(dtn__walk *w, const char *name, const struct stat *st)
{
	if (w->npending == w->cappending) {
		size_t c = w->cappending ? w->cappending * 2 : 16;
		size_t *p = dtn__realloc(w->pending_ends, c * sizeof(*p));

		if (!p)
			return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
		w->pending_ends = p;
		w->cappending = c;
	}
	/* each pending directory: its stat, then its name and a NUL */
	dtn__buf_add(&w->pending, (const char *)st, sizeof(*st));
	dtn__buf_add(&w->pending, name, strlen(name) + 1);
	if (w->pending.failed)
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	w->pending_ends[w->npending++] = w->pending.len;
	return 0;
}

int dtn__tar_flush_dirs(dtn__walk *w)
{
	size_t start = 0;
	int rc = 0;

	for (size_t i = 0; i < w->npending && rc == 0; i++) {
		struct stat st;

		memcpy(&st, w->pending.data + start, sizeof(st));
		rc = dtn__tar_header(w, w->pending.data + start + sizeof(st), &st, NULL);
		start = w->pending_ends[i];
	}
	w->npending = 0;
	w->pending.len = 0;
	return rc;
}

/* Drops the innermost pending directory (it stays out of the archive). */
void dtn__tar_pop_dir(dtn__walk *w)
{
	w->npending--;
	w->pending.len = w->npending ? w->pending_ends[w->npending - 1] : 0;
}

static int tar_chunk(dtn__walk *w, const char *data, size_t len)
{
	if (archive_write_data(w->ar, data, len) < 0)
		return tar_fail(w);
	return 0;
}

/* archive: one file, written and hashed in one read. */
int dtn__tar_file(dtn__walk *w, int dfd, dtn__entry *en, const char *name)
{
	int fd, rc, e;
	char path[PATH_MAX];

	if (en->fetched && en->rc < 0)
		return dtn__walk_entry_error(w, en, NULL);
	if ((rc = dtn__tar_flush_dirs(w)) < 0 || (rc = dtn__tar_header(w, name, &en->st, NULL)) < 0)
		return rc;
	if (en->fetched)
		return en->st.st_size ? tar_chunk(w, en->data, (size_t)en->st.st_size) : 0;
	fd = dfd >= 0 ? dtn__walk_open_listed(dfd, en->name) : open(w->ctx->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dtn__walk_fail_errno(w, "open", NULL, errno);
	/* a file the cache knows is checked to stay the version listed, but not hashed again */
	rc = dtn__walk_read_file(w, fd, &en->st, en->cached ? NULL : w->sha, w->buf, tar_chunk,
				 en->digest, &e);
	close(fd);
	if (rc == DTN_ECHANGED)
		return dtn__walk_fail(w, DTN_ECHANGED, "%s changed while it was archived",
			    dtn__walk_shown(w, NULL, path, sizeof(path)));
	if (rc == DTN_EIO && e)
		return dtn__walk_fail_errno(w, "read", NULL, e);
	return rc < 0 ? dtn__walk_fail(w, rc, "cannot archive %s",
			     dtn__walk_shown(w, NULL, path, sizeof(path))) : 0;
}

/* ---- archive ------------------------------------------------------------------------------- */

static la_ssize_t write_cb(struct archive *ar, void *arg, const void *data, size_t len)
{
	dtn__walk *w = arg;

	(void)ar;
	if (w->write(data, len, w->payload) != 0) {
		w->write_rc = DTN_EUSER;
		archive_set_error(ar, ECANCELED, "stopped by the consumer");
		return -1;
	}
	return (la_ssize_t)len;
}

static int open_archive_c(dtn__walk *w)
{
	/* an archive written to a file inside the context must not take itself in */
	if (w->write == dtn_write_fd && fstat(*(const int *)w->payload, &w->self) == 0 &&
	    S_ISREG(w->self.st_mode))
		w->skip_self = true;
	if (!(w->ar = archive_write_new()) || !(w->ae = archive_entry_new()) ||
	    !(w->sha = dtn__sha256_new()) || !(w->buf = dtn__malloc(DTN__READ_BUF)))
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	/* the stream goes out in 64 KiB pieces; no padding after the end-of-archive blocks */
	if (archive_write_set_format_pax_restricted(w->ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->ar, 64 * 1024) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->ar, 1) != ARCHIVE_OK ||
	    archive_write_open2(w->ar, w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK)
		return tar_fail(w);
	return 0;
}

static int open_archive(dtn__walk *w)
{
	locale_t old;
	int rc;

	if (!(w->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0)))
		return dtn__walk_fail(w, DTN_ENOMEM, "out of memory");
	old = uselocale(w->c_locale);
	rc = open_archive_c(w);
	uselocale(old);
	return rc;
}

static int close_archive_c(dtn__walk *w)
{
	locale_t old = uselocale(w->c_locale);
	int rc = archive_write_close(w->ar);

	uselocale(old);
	return rc;
}

static void close_archive(dtn__walk *w)
{
	if (w->ar)
		archive_write_free(w->ar);
	archive_entry_free(w->ae);
	dtn__sha256_free(w->sha);
	dtn__free(w->buf);
	if (w->c_locale)
		freelocale(w->c_locale);
	w->c_locale = (locale_t)0;
}

/* The archive walk; its identity in `digest`. */
static int archive_walk(dtn__walk *w, unsigned char digest[DTN__SHA256_LEN])
{
	int rc;

	if ((rc = open_archive(w)) == 0 && (rc = dtn__walk_context(w, digest)) == 0 &&
	    close_archive_c(w) != ARCHIVE_OK)
		rc = tar_fail(w);
	close_archive(w);
	return rc;
}

int dtn_builder_archive(dtn_builder *b, const dtn_context *ctx, const char *hash,
			dtn_write_fn write, void *payload, dtn_error *err)
{
	dtn_context_id id = {0};
	dtn__walk w = {.b = b, .ctx = ctx, .err = err, .id = &id, .write = write, .payload = payload};
	unsigned char digest[DTN__SHA256_LEN];
	char hex[DTN__SHA256_HEX];
	dtn_span *span = dtn__context_span_start("Context.archive", ctx);
	int rc;

	dtn_error_clear(err);
	if ((rc = archive_walk(&w, digest)) == 0) {
		dtn__sha256_hex(hex, digest);
		memcpy(id.hash, hex, sizeof(id.hash));
		/* the bytes are all written by now: the caller throws them away */
		if (hash && strcmp(hex, hash) != 0)
			rc = dtn__walk_fail(&w, DTN_ECHANGED,
					    "%s changed after it was identified (%s, now %s)",
					    ctx->path, hash, hex);
	}
	dtn__context_span_end(span, &id, rc, err);
	dtn__walk_free(&w);
	return rc;
}

int dtn_builder_archive_identify(dtn_builder *b, const dtn_context *ctx, dtn_write_fn write,
				 void *payload, dtn_context_id **out, dtn_error *err)
{
	dtn__walk w = {.b = b, .ctx = ctx, .err = err, .write = write, .payload = payload,
		       .one_pass = true};
	unsigned char digest[DTN__SHA256_LEN];
	dtn_span *span = dtn__context_span_start("Context.archiveIdentify", ctx);
	int rc;

	*out = NULL;
	dtn_error_clear(err);
	if ((rc = dtn__walk_start_id(&w)) == 0 && (rc = archive_walk(&w, digest)) == 0)
		rc = dtn__walk_finish_id(&w, digest, out);
	dtn__context_span_end(span, *out, rc, err);
	dtn_context_id_free(w.id);
	dtn__walk_free(&w);
	return rc;
}
