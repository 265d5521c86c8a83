/*
 * explain.c - which rule decides whether a path is in a context's archive.
 */
#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "walk.h"

/* ---- explain ------------------------------------------------------------------------------- */

/* What one rule set says of `path`: 1 left out, 0 kept; *rule the deciding rule or -1. */
static int decide(const dtn__ignore *rules, const char *path, bool is_dir, int *rule)
{
	*rule = -1;
	if (!rules || !*path)
		return 0;
	return dtn__ignore_match(rules, path, strlen(path), is_dir, rule);
}

static char *describe(const dtn__ignore *rules, int rule, int out, const char *path,
		      const char *name)
{
	char where[PATH_MAX + 32];

	if (!*name)
		name = "./"; /* the top of a context archived at "." */
	if (rule < 0)
		return dtn__aprintf("%s: in the archive as %s (no rule leaves it out)", path, name);
	dtn__walk_rule_where(rules, rule, where, sizeof(where));
	if (out == 1)
		return dtn__aprintf("%s: left out by %s %s", path, where,
				    dtn__ignore_rule_text(rules, rule));
	return dtn__aprintf("%s: in the archive as %s (taken back by %s %s)", path, name, where,
			    dtn__ignore_rule_text(rules, rule));
}

/* The local path of `rel` (relative to the top of the context). */
static char *local_path(const dtn__walk *w, const char *rel)
{
	return *rel ? dtn__aprintf("%s/%s", w->ctx->path, rel) : dtn__strdup(w->ctx->path);
}

static bool walked_kind(mode_t mode)
{
	return S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode);
}

/*
 * What the walk finds at `rel`, whatever the rules say: its lstat in *st, or in *why the
 * reason it cannot be in the archive (a link above it, which the walk does not follow;
 * nothing there; a kind of file the walk skips). Returns 0 or DTN_ENOMEM.
 */
static int find_entry(const dtn__walk *w, const char *path, const char *rel, struct stat *st,
		      char **why)
{
	bool missing, skipped;
	char *p;

	*why = NULL;
	for (const char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
		bool link;

		if (!(p = dtn__aprintf("%s/%.*s", w->ctx->path, (int)(s - rel), rel)))
			return DTN_ENOMEM;
		link = lstat(p, st) == 0 && S_ISLNK(st->st_mode);
		if (link)
			*why = dtn__aprintf("%s: not in the archive: %s is a link, archived as a "
					    "link, and nothing below it is", path, p);
		dtn__free(p);
		if (link)
			return *why ? 0 : DTN_ENOMEM;
	}
	if (!(p = local_path(w, rel)))
		return DTN_ENOMEM;
	missing = lstat(p, st) < 0;
	skipped = !missing && *rel && !walked_kind(st->st_mode);
	dtn__free(p);
	if (missing)
		*why = dtn__aprintf("%s: not in the archive: there is no such file", path);
	else if (skipped)
		*why = dtn__aprintf("%s: not in the archive: not a file, directory or link, so "
				    "skipped", path);
	return (missing || skipped) && !*why ? DTN_ENOMEM : 0;
}

/*
 * Whether the walk keeps something inside the excluded directory `rel`, which exceptions may
 * take entries back from: an entry the rules include, or a directory keeping one. The walk
 * then archives the directory too. Returns 1, 0 or DTN_ENOMEM.
 */
static int keeps_inside(dtn__walk *w, const char *rel)
{
	char *dir = local_path(w, rel);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	int found = dir ? 0 : DTN_ENOMEM;

	while (d && found == 0 && (de = readdir(d))) {
		char *child, *p;
		struct stat st;
		bool reinclude;
		int ex;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		child = dtn__aprintf("%s/%s", rel, de->d_name);
		p = child ? dtn__aprintf("%s/%s", dir, de->d_name) : NULL;
		if (!p) {
			found = DTN_ENOMEM;
		} else if (lstat(p, &st) == 0 && walked_kind(st.st_mode)) {
			ex = dtn__walk_excluded(w, child, S_ISDIR(st.st_mode), &reinclude);
			if (ex <= 0)
				found = ex == 0 ? 1 : ex;
			else if (reinclude && S_ISDIR(st.st_mode))
				found = keeps_inside(w, child);
		}
		dtn__free(child);
		dtn__free(p);
	}
	if (d)
		closedir(d);
	dtn__free(dir);
	return found;
}

/* `path` made absolute against the current directory and normalised. */
static char *absolute(const char *path)
{
	char *cwd = path[0] == '/' ? NULL : dtn__path_cwd(), *abs;

	if (path[0] != '/' && !cwd)
		return NULL;
	abs = dtn__path_join(cwd, path);
	dtn__free(cwd);
	return abs;
}

int dtn_builder_explain(dtn_builder *b, const dtn_context *ctx, const char *path, char **out,
			dtn_error *err)
{
	dtn__walk w = {.b = b, .ctx = ctx, .err = err};
	dtn_context_id id = {0};
	dtn__buf name = DTN__BUF_INIT;
	struct stat st;
	char *rel = NULL, *abs = NULL;
	const char *rp = "", *ename;
	const dtn__ignore *rules;
	char where[PATH_MAX + 32];
	bool oom, is_dir, reinclude = false;
	int rc, step_rule, root_rule = -1, step_out, root_out = 0, rule, left_out, ex = 0, kept = 0;

	*out = NULL;
	dtn_error_clear(err);
	w.id = &id;
	rc = 0;
	if (!(abs = absolute(path)) || !(rel = dtn__walk_relative_to(ctx->path, abs, &oom))) {
		if (!abs || oom)
			rc = dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
		goto out;
	}
	if (!(w.prefix = dtn__walk_entry_prefix(ctx->archive_path)) || (rc = dtn__walk_load_rules(&w)) < 0) {
		rc = w.prefix ? rc : dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = find_entry(&w, path, rel, &st, out)) < 0 || *out) {
		rc = rc < 0 ? dtn__walk_fail(&w, DTN_ENOMEM, "out of memory") : 0;
		goto out;
	}
	is_dir = S_ISDIR(st.st_mode);
	step_out = decide(w.step_rules, rel, is_dir, &step_rule);
	if (w.root_rel && !(rp = dtn__walk_root_path(&w, rel))) {
		rc = dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
		goto out;
	}
	if (step_out != 1 && w.root_rel)
		root_out = decide(w.root_rules, rp, is_dir, &root_rule);
	if (!(ename = dtn__tar_entry_name(&w, rel, &name))) {
		rc = dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
		goto out;
	}
	if (step_out == 1 || (step_rule >= 0 && (!w.root_rel || root_rule < 0)))
		rules = w.step_rules, rule = step_rule, left_out = step_out;
	else
		rules = w.root_rules, rule = w.root_rel ? root_rule : -1, left_out = root_out;
	/* an excluded directory holding entries taken back is archived with them */
	if (left_out == 1 && is_dir && (ex = dtn__walk_excluded(&w, rel, true, &reinclude)) >= 0)
		kept = ex == 1 && reinclude ? keeps_inside(&w, rel) : 0;
	if (ex < 0 || kept < 0) {
		rc = dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
		goto out;
	}
	if (kept)
		*out = dtn__aprintf("%s: in the archive as %s, for the entries inside it that "
				    "exceptions take back (itself left out by %s %s)", path, ename,
				    dtn__walk_rule_where(rules, rule, where, sizeof(where)),
				    dtn__ignore_rule_text(rules, rule));
	else
		*out = describe(rules, rule, left_out, path, ename);
	rc = *out ? 0 : dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
out:
	dtn__buf_free(&name);
	dtn__free(rel);
	dtn__free(abs);
	dtn__walk_free(&w);
	return rc;
}
