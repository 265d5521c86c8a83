/*
 * path.c - path spelling: `~` expansion, joining and normalisation. These functions never
 * touch the file system except dtn__path_cwd.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

char *dtn__path_cwd(void)
{
	char buf[PATH_MAX];

	return getcwd(buf, sizeof(buf)) ? dtn__strdup(buf) : NULL;
}

char *dtn__path_expand_tilde(const char *path, const char *cwd)
{
	const char *home, *rest;

	if (path[0] != '~')
		return dtn__strdup(path);
	rest = path + 1;
	if (rest[0] == '+' && (rest[1] == '\0' || rest[1] == '/')) {
		home = cwd;
		rest++;
	} else {
		home = getenv("HOME");
	}
	if (!home || !home[0])
		return dtn__strdup(path);
	if (rest[0] == '/')
		rest++;
	if (!rest[0])
		return dtn__strdup(home);
	return dtn__path_join(home, rest);
}

/* Removes the last component of the normalised prefix out[0..*len). */
static bool pop_component(char *out, size_t *len, size_t root)
{
	size_t n = *len;

	if (n <= root)
		return false;
	while (n > root && out[n - 1] != '/')
		n--;
	/* a relative path whose remaining head is ".." cannot pop it */
	if (strncmp(out + n, "..", 2) == 0 && (out[n + 2] == '/' || n + 2 == *len))
		return false;
	if (n > root)
		n--; /* drop the separator too */
	*len = n;
	return true;
}

void dtn__path_normalize(char *path)
{
	bool abs = path[0] == '/';
	size_t len = strlen(path), in = 0, out = 0, root = abs ? 1 : 0;
	bool trailing = len > 1 && path[len - 1] == '/';

	if (abs)
		out = 1;
	while (in < len) {
		size_t start, n;

		while (path[in] == '/')
			in++;
		if (in >= len)
			break;
		start = in;
		while (in < len && path[in] != '/')
			in++;
		n = in - start;
		if (n == 1 && path[start] == '.')
			continue;
		if (n == 2 && path[start] == '.' && path[start + 1] == '.') {
			if (pop_component(path, &out, root))
				continue;
			if (abs)
				continue; /* "/.." is "/" */
		}
		if (out > root)
			path[out++] = '/';
		memmove(path + out, path + start, n);
		out += n;
	}
	if (out == 0 && len > 0)
		path[out++] = '.'; /* "a/.." is "."; "" stays "" (there is no room) */
	else if (trailing && out > root)
		path[out++] = '/';
	path[out] = '\0';
}

char *dtn__path_join(const char *dir, const char *rel)
{
	char *p;

	if (rel[0] == '/' || !dir || !dir[0])
		p = dtn__strdup(rel);
	else
		p = dtn__aprintf("%s/%s", dir, rel);
	if (p)
		dtn__path_normalize(p);
	return p;
}

const char *dtn__path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

char *dtn__path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return dtn__strdup(".");
	if (slash == path)
		return dtn__strdup("/");
	return dtn__strndup(path, (size_t)(slash - path));
}
