/*
 * explain.c - which rule decides whether a path is in a context's archive.
 */
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

	if (rule < 0)
		return dtn__aprintf("%s: in the archive as %s (no rule leaves it out)", path, name);
	dtn__walk_rule_where(rules, rule, where, sizeof(where));
	if (out == 1)
		return dtn__aprintf("%s: left out by %s %s", path, where,
				    dtn__ignore_rule_text(rules, rule));
	return dtn__aprintf("%s: in the archive as %s (taken back by %s %s)", path, name, where,
			    dtn__ignore_rule_text(rules, rule));
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
	bool oom, is_dir;
	int rc, step_rule, root_rule, step_out, root_out = 0;

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
	is_dir = lstat(abs, &st) == 0 && S_ISDIR(st.st_mode);
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
		*out = describe(w.step_rules, step_rule, step_out, path, ename);
	else
		*out = describe(w.root_rules, w.root_rel ? root_rule : -1, root_out, path, ename);
	rc = *out ? 0 : dtn__walk_fail(&w, DTN_ENOMEM, "out of memory");
out:
	dtn__buf_free(&name);
	dtn__free(rel);
	dtn__free(abs);
	dtn__walk_free(&w);
	return rc;
}
