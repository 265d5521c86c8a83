/*
 * file.c - reading small input files (specs, Dockerfiles, pyproject.toml) whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int open_error(dtn_error *err, const char *shown)
{
	if (errno == ENOENT || errno == ENOTDIR)
		return dtn__error_set(err, DTN_ENOTFOUND, "%s does not exist", shown);
	return dtn__error_set(err, DTN_EIO, "cannot open %s: %s", shown, strerror(errno));
}

static int read_all(int fd, char *buf, size_t size, size_t *got)
{
	size_t n = 0;

	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*got = n;
	return 0;
}

int dtn__read_file(char **out, size_t *len, const char *path, const char *shown, size_t max,
		   dtn_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc = 0;

	*out = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return open_error(err, shown);
	if (fstat(fd, &st) < 0) {
		rc = dtn__error_set(err, DTN_EIO, "cannot read %s: %s", shown, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = dtn__error_set(err, DTN_EINVAL, "%s is not a regular file", shown);
		goto out;
	}
	if ((unsigned long long)st.st_size > max) {
		rc = dtn__error_set(err, DTN_EINVAL, "%s is too large (%lld bytes; the limit is %zu)",
				    shown, (long long)st.st_size, max);
		goto out;
	}
	/* one byte more than the size, to notice a file that grew while we read it */
	if (!(buf = dtn__malloc((size_t)st.st_size + 2))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory reading %s", shown);
		goto out;
	}
	if (read_all(fd, buf, (size_t)st.st_size + 1, &got) < 0) {
		rc = dtn__error_set(err, DTN_EIO, "cannot read %s: %s", shown, strerror(errno));
		goto out;
	}
	if (got > max) {
		rc = dtn__error_set(err, DTN_EINVAL, "%s is too large", shown);
		goto out;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	dtn__free(buf);
	close(fd);
	return rc;
}
