/*
 * files.c - steps that take local files: add_local_file, add_local_dir and the pip steps that
 * read a requirements file or a pyproject.toml.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "image_internal.h"
#include "render.h"
#include "toml.h"

/* pyproject.toml files larger than this are refused rather than read. */
#define PYPROJECT_MAX (4u << 20)

/*
 * The archive path of a local file or directory: the path as spelled, as the SDK does, unless
 * a relative spelling climbs out of the directory it is relative to; then the absolute path,
 * which Docker resolves inside the build context just as it does for `~` paths.
 */
static char *archive_path_for(const dtn__local_path *p)
{
	char *norm;
	bool climbs;

	if (p->spelled[0] == '/')
		return dtn__strdup(p->spelled);
	if (!(norm = dtn__strdup(p->spelled)))
		return NULL;
	dtn__path_normalize(norm);
	climbs = strcmp(norm, "..") == 0 || strncmp(norm, "../", 3) == 0;
	dtn__free(norm);
	return dtn__strdup(climbs ? p->absolute : p->spelled);
}

enum want { WANT_FILE, WANT_DIR };

/* Checks that `given` names an existing file or directory, as the step requires. */
static int check_local(dtn_image *img, const dtn__local_path *p, const char *given, enum want want,
		       const char *missing_fmt, const char *wrong_fmt)
{
	struct stat st;

	if (stat(p->absolute, &st) < 0) {
		dtn__image_fail(img, DTN_ENOTFOUND, missing_fmt, given);
		return -1;
	}
	if ((want == WANT_FILE && !S_ISREG(st.st_mode)) ||
	    (want == WANT_DIR && !S_ISDIR(st.st_mode))) {
		dtn__image_fail(img, DTN_EINVAL, wrong_fmt, given);
		return -1;
	}
	return 0;
}

/* The common part of add_local_file, add_local_dir and the requirements file. */
static dtn_image *add_local(dtn_image *img, const char *step, const char *local, const char *remote,
			    enum want want, const char *const *ignore, const char *missing_fmt,
			    const char *wrong_fmt)
{
	dtn__local_path p;
	char *archive = NULL;
	int rc;

	if (dtn__image_local_path(img, &p, local) < 0)
		return dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	if (check_local(img, &p, local, want, missing_fmt, wrong_fmt) < 0)
		goto out;
	rc = DTN_ENOMEM;
	if ((archive = archive_path_for(&p)))
		rc = dtn__image_add_context(img, p.spelled, p.absolute, archive,
					    want == WANT_DIR ? DTN_CONTEXT_DIR : DTN_CONTEXT_FILE,
					    step, ignore, p.base);
	if (rc == 0) {
		dtn__image_begin_line(img);
		rc = dtn__render_copy(&img->dockerfile, archive, remote);
	}
	if (rc < 0)
		dtn__image_fail(img, rc, rc == DTN_ENOMEM ? "out of memory"
							  : "%s: a path is not valid UTF-8", step);
out:
	dtn__free(archive);
	dtn__local_path_free(&p);
	return img;
}

dtn_image *dtn_image_add_local_file(dtn_image *img, const char *local, const char *remote)
{
	size_t n;
	char *dest;

	STEP_GUARD(img);
	if (!local || !remote || !*local || !*remote)
		return dtn__image_fail(img, DTN_EINVAL, "add_local_file: needs a local and a remote path");
	n = strlen(remote);
	/* a destination ending in '/' is a directory: the file keeps its name there */
	if (remote[n - 1] == '/')
		dest = dtn__aprintf("%s%s", remote, dtn__path_basename(local));
	else
		dest = dtn__strdup(remote);
	if (!dest)
		return dtn__image_fail(img, DTN_ENOMEM, "out of memory");
	add_local(img, "add_local_file", local, dest, WANT_FILE, NULL,
		  "local file %s does not exist", "local path %s exists but is not a file");
	dtn__free(dest);
	return img;
}

dtn_image *dtn_image_add_local_dir(dtn_image *img, const char *local, const char *remote,
				   const dtn_dir_opts *opts)
{
	STEP_GUARD(img);
	if (!local || !remote || !*local || !*remote)
		return dtn__image_fail(img, DTN_EINVAL, "add_local_dir: needs a local and a remote path");
	return add_local(img, "add_local_dir", local, remote, WANT_DIR, opts ? opts->ignore : NULL,
			 "local directory %s does not exist",
			 "local path %s exists but is not a directory");
}

dtn_image *dtn_image_pip_install_from_requirements(dtn_image *img, const char *path,
						   const dtn_pip_opts *opts)
{
	STEP_GUARD(img);
	if (!path || !*path)
		return dtn__image_fail(img, DTN_EINVAL,
				       "pip_install_from_requirements: no path given");
	add_local(img, "pip_install_from_requirements", path, "/.requirements.txt", WANT_FILE, NULL,
		  "requirements file %s does not exist",
		  "requirements path %s exists but is not a file");
	if (img->status < 0)
		return img;
	dtn__buf_puts(&img->dockerfile, "RUN python -m pip install -r /.requirements.txt");
	dtn__image_pip_suffix(&img->dockerfile, opts);
	dtn__buf_putc(&img->dockerfile, '\n');
	return dtn__image_check_buf(img);
}

static const char no_dependencies[] =
	"no [project.dependencies] array in pyproject.toml file %s. See "
	"https://packaging.python.org/en/latest/guides/writing-pyproject-toml for further file "
	"format guidelines.";

/* Appends the strings of a TOML array to the list; a non-string item is an error. */
static int collect_strings(dtn_image *img, dtn__strv *list, const dtn__toml *arr,
			   const char *what, const char *shown)
{
	for (size_t i = 0; i < dtn__toml_count(arr); i++) {
		const char *s = dtn__toml_str(dtn__toml_at(arr, i));

		if (!s || dtn__toml_type_of(dtn__toml_at(arr, i)) != DTN__TOML_STRING) {
			dtn__image_fail(img, DTN_EINVAL, "%s in %s: item %zu is not a string", what,
					shown, i + 1);
			return -1;
		}
		if (dtn__strv_push(list, s) < 0) {
			dtn__image_fail(img, DTN_ENOMEM, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int collect_groups(dtn_image *img, dtn__strv *list, const dtn__toml *project,
			  const char *const *groups, const char *shown)
{
	const dtn__toml *optional = dtn__toml_get(project, "optional-dependencies");

	if (!groups || !groups[0] || !optional)
		return 0;
	if (dtn__toml_type_of(optional) != DTN__TOML_TABLE) {
		dtn__image_fail(img, DTN_EINVAL,
				"optional-dependencies must be a mapping in pyproject.toml file %s",
				shown);
		return -1;
	}
	for (size_t i = 0; groups[i]; i++) {
		const dtn__toml *group = dtn__toml_get(optional, groups[i]);

		/* the SDK skips unknown groups and groups that are not arrays */
		if (!group || dtn__toml_type_of(group) != DTN__TOML_ARRAY)
			continue;
		if (collect_strings(img, list, group, "optional-dependencies", shown) < 0)
			return -1;
	}
	return 0;
}

static int read_pyproject(dtn_image *img, dtn__toml **out, const char *path)
{
	dtn__local_path p;
	dtn_error err;
	char *text = NULL;
	size_t len;
	int rc = -1;

	*out = NULL;
	dtn_error_clear(&err);
	if (dtn__image_local_path(img, &p, path) < 0) {
		dtn__image_fail(img, DTN_ENOMEM, "out of memory");
		return -1;
	}
	if (check_local(img, &p, path, WANT_FILE, "pyproject.toml file %s does not exist",
			"pyproject.toml path %s exists but is not a file") < 0)
		goto out;
	if (dtn__read_file(&text, &len, p.absolute, path, PYPROJECT_MAX, &err) < 0) {
		dtn__image_fail_with(img, &err);
		goto out;
	}
	if (dtn__toml_parse(out, text, len, &err) < 0) {
		if (err.code != DTN_ENOMEM) {
			dtn__error_prefix(&err, "invalid pyproject.toml file: ");
			dtn__error_at(&err, path, err.line, err.column);
		}
		dtn__image_fail_with(img, &err);
		goto out;
	}
	rc = 0;
out:
	dtn__free(text);
	dtn__local_path_free(&p);
	return rc;
}

dtn_image *dtn_image_pip_install_from_pyproject(dtn_image *img, const char *path,
						const dtn_pip_opts *opts)
{
	dtn__toml *doc = NULL;
	const dtn__toml *project, *deps;
	dtn__strv list = {0};
	dtn_pip_opts pip = {0};

	STEP_GUARD(img);
	if (!path || !*path)
		return dtn__image_fail(img, DTN_EINVAL, "pip_install_from_pyproject: no path given");
	if (read_pyproject(img, &doc, path) < 0)
		return img;
	project = dtn__toml_get(doc, "project");
	deps = dtn__toml_get(project, "dependencies");
	if (!deps || dtn__toml_type_of(deps) != DTN__TOML_ARRAY) {
		dtn__image_fail(img, DTN_EINVAL, no_dependencies, path);
		goto out;
	}
	if (collect_strings(img, &list, deps, "project.dependencies", path) < 0 ||
	    collect_groups(img, &list, project, opts ? opts->optional_dependencies : NULL,
			   path) < 0)
		goto out;
	/* the groups select dependencies; they are not a pip option */
	if (opts) {
		pip = *opts;
		pip.optional_dependencies = NULL;
	}
	dtn_image_pip_install(img, (const char *const *)list.items, opts ? &pip : NULL);
out:
	dtn__strv_free(&list);
	dtn__toml_free(doc);
	return img;
}
