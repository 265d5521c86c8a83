/*
 * spec_steps.c - the steps of a spec's image, one function per step, registered in a table
 * under their snake_case names (and the SDK's camelCase spelling). Each function reads its
 * arguments from the step's value node and makes the same DSL call a C caller would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec_internal.h"

typedef int (*step_fn)(dtn__spec_loader *L, const char *name, yaml_node_t *value);

struct step_def {
	const char *name;
	const char *alias;
	step_fn fn;
};

/* The ways of giving a value, for shape errors. */
#define SHAPE_ANY "a string, a list or a mapping"

static int shape(dtn__spec_loader *L, const char *name, yaml_node_t *value, const char *want)
{
	return dtn__spec_fail(L, value, DTN_EINVAL, "%s: expected %s, got %s", name, want,
			      dtn__spec_kind(value));
}

static bool is_kind(const yaml_node_t *n, yaml_node_type_t type)
{
	return n && n->type == type && !dtn__spec_is_null(n);
}

/* "step.key", naming one option of a step in messages. */
static const char *sub(char *buf, size_t size, const char *name, const char *key)
{
	snprintf(buf, size, "%s.%s", name, key);
	return buf;
}

#define SUB(key) sub(subj, sizeof(subj), name, key)

/* The list's strings; an empty list is still a list (the DSL decides what it means). */
static const char *const *items_of(const dtn__spec_list *l)
{
	static const char *const empty[] = {NULL};

	return l->items ? l->items : empty;
}

/* ---- pip ---- */

/* The keys of the pip steps' mapping form. Slot MAIN is packages or path; OPTIONAL is only
 * used by pip_install_from_pyproject. */
enum {
	PIP_MAIN,
	PIP_OPTIONAL,
	PIP_FIND_LINKS,
	PIP_INDEX_URL,
	PIP_EXTRA_INDEX_URLS,
	PIP_PRE,
	PIP_EXTRA_OPTIONS,
	PIP_NKEYS
};

#define PIP_OPTION_KEYS                                                                          \
	{"find_links", "findLinks"}, {"index_url", "indexUrl"},                                  \
		{"extra_index_urls", "extraIndexUrls"}, {"pre", NULL},                           \
		{"extra_options", "extraOptions"}

static const dtn__spec_key pip_install_keys[PIP_NKEYS] = {
	{"packages", NULL}, {NULL, NULL}, PIP_OPTION_KEYS};
static const dtn__spec_key requirements_keys[PIP_NKEYS] = {
	{"path", NULL}, {NULL, NULL}, PIP_OPTION_KEYS};
static const dtn__spec_key pyproject_keys[PIP_NKEYS] = {
	{"path", NULL}, {"optional_dependencies", "optionalDependencies"}, PIP_OPTION_KEYS};

struct pip_args {
	yaml_node_t *vals[PIP_NKEYS];
	dtn__spec_list find_links;
	dtn__spec_list extra_index_urls;
	dtn__spec_list optional;
	dtn_pip_opts opts;
};

static void pip_args_free(struct pip_args *a)
{
	dtn__spec_list_free(&a->find_links);
	dtn__spec_list_free(&a->extra_index_urls);
	dtn__spec_list_free(&a->optional);
}

/* Reads the mapping form's options (everything but the MAIN slot) into a->opts. */
static int pip_options(dtn__spec_loader *L, const char *name, yaml_node_t *map,
		       const dtn__spec_key *keys, struct pip_args *a)
{
	char subj[128];
	yaml_node_t **v = a->vals;
	int rc;

	if ((rc = dtn__spec_keys(L, map, name, keys, PIP_NKEYS, v)) < 0)
		return rc;
	if (!v[PIP_MAIN])
		return dtn__spec_missing(L, map, name, keys[PIP_MAIN].name);
	a->opts.version = DTN_OPTS_VERSION;
	if (v[PIP_FIND_LINKS] && (rc = dtn__spec_strings(L, v[PIP_FIND_LINKS],
							 SUB("find_links"), DTN__SPEC_FLATTEN,
							 &a->find_links)) < 0)
		return rc;
	if (v[PIP_INDEX_URL] &&
	    (rc = dtn__spec_string(L, v[PIP_INDEX_URL], SUB("index_url"), &a->opts.index_url)) < 0)
		return rc;
	if (v[PIP_EXTRA_INDEX_URLS] &&
	    (rc = dtn__spec_strings(L, v[PIP_EXTRA_INDEX_URLS], SUB("extra_index_urls"),
				    DTN__SPEC_FLATTEN, &a->extra_index_urls)) < 0)
		return rc;
	if (v[PIP_PRE] && (rc = dtn__spec_bool(L, v[PIP_PRE], SUB("pre"), &a->opts.pre)) < 0)
		return rc;
	if (v[PIP_EXTRA_OPTIONS] && (rc = dtn__spec_string(L, v[PIP_EXTRA_OPTIONS],
							   SUB("extra_options"),
							   &a->opts.extra_options)) < 0)
		return rc;
	if (v[PIP_OPTIONAL] && (rc = dtn__spec_strings(L, v[PIP_OPTIONAL],
						       SUB("optional_dependencies"),
						       DTN__SPEC_FLATTEN, &a->optional)) < 0)
		return rc;
	a->opts.find_links = a->find_links.items;
	a->opts.extra_index_urls = a->extra_index_urls.items;
	a->opts.optional_dependencies = a->optional.items;
	return 0;
}

static int step_pip_install(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	char subj[128];
	struct pip_args a = {0};
	dtn__spec_list packages = DTN__SPEC_LIST_INIT;
	yaml_node_t *list = value;
	int rc;

	if (is_kind(value, YAML_MAPPING_NODE)) {
		if ((rc = pip_options(L, name, value, pip_install_keys, &a)) < 0)
			goto out;
		list = a.vals[PIP_MAIN];
	} else if (!is_kind(value, YAML_SCALAR_NODE) && !is_kind(value, YAML_SEQUENCE_NODE)) {
		rc = shape(L, name, value, SHAPE_ANY);
		goto out;
	}
	if ((rc = dtn__spec_strings(L, list, list == value ? name : SUB("packages"),
				    DTN__SPEC_FLATTEN, &packages)) < 0)
		goto out;
	dtn_image_pip_install(L->img, items_of(&packages), list == value ? NULL : &a.opts);
	rc = dtn__spec_check(L, value);
out:
	dtn__spec_list_free(&packages);
	pip_args_free(&a);
	return rc;
}

/* The two pip steps that take a file: a path, or a mapping with path and options. */
static int pip_from_file(dtn__spec_loader *L, const char *name, yaml_node_t *value,
			 const dtn__spec_key *keys, bool pyproject)
{
	char subj[128];
	struct pip_args a = {0};
	const char *path;
	const dtn_pip_opts *opts = NULL;
	int rc;

	if (is_kind(value, YAML_MAPPING_NODE)) {
		if ((rc = pip_options(L, name, value, keys, &a)) < 0 ||
		    (rc = dtn__spec_string(L, a.vals[PIP_MAIN], SUB("path"), &path)) < 0)
			goto out;
		opts = &a.opts;
	} else if (is_kind(value, YAML_SCALAR_NODE)) {
		if ((rc = dtn__spec_string(L, value, name, &path)) < 0)
			goto out;
	} else {
		rc = shape(L, name, value, "a path or a mapping");
		goto out;
	}
	if (pyproject)
		dtn_image_pip_install_from_pyproject(L->img, path, opts);
	else
		dtn_image_pip_install_from_requirements(L->img, path, opts);
	rc = dtn__spec_check(L, value);
out:
	pip_args_free(&a);
	return rc;
}

static int step_requirements(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return pip_from_file(L, name, value, requirements_keys, false);
}

static int step_pyproject(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return pip_from_file(L, name, value, pyproject_keys, true);
}

/* ---- local files ---- */

enum { LOCAL_LOCAL, LOCAL_REMOTE, LOCAL_IGNORE, LOCAL_NKEYS };

static const dtn__spec_key local_file_keys[LOCAL_NKEYS] = {
	{"local", NULL}, {"remote", NULL}, {NULL, NULL}};
static const dtn__spec_key local_dir_keys[LOCAL_NKEYS] = {
	{"local", NULL}, {"remote", NULL}, {"ignore", NULL}};

/* Reads [local, remote] or {local, remote, ...} into v[LOCAL_LOCAL] and v[LOCAL_REMOTE]. */
static int local_pair(dtn__spec_loader *L, const char *name, yaml_node_t *value,
		      const dtn__spec_key *keys, yaml_node_t **v)
{
	int rc;

	if (is_kind(value, YAML_SEQUENCE_NODE)) {
		size_t n = (size_t)(value->data.sequence.items.top -
				    value->data.sequence.items.start);

		if (n != 2)
			return dtn__spec_fail(L, value, DTN_EINVAL,
					      "%s: expected [local, remote], got a list of %zu "
					      "item%s",
					      name, n, n == 1 ? "" : "s");
		v[LOCAL_LOCAL] = dtn__spec_node(L, value->data.sequence.items.start[0]);
		v[LOCAL_REMOTE] = dtn__spec_node(L, value->data.sequence.items.start[1]);
		v[LOCAL_IGNORE] = NULL;
		return 0;
	}
	if (!is_kind(value, YAML_MAPPING_NODE))
		return shape(L, name, value, "[local, remote] or a mapping");
	if ((rc = dtn__spec_keys(L, value, name, keys, LOCAL_NKEYS, v)) < 0)
		return rc;
	if (!v[LOCAL_LOCAL])
		return dtn__spec_missing(L, value, name, "local");
	if (!v[LOCAL_REMOTE])
		return dtn__spec_missing(L, value, name, "remote");
	return 0;
}

static int step_add_local_file(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	char subj[128];
	yaml_node_t *v[LOCAL_NKEYS];
	const char *local, *remote;
	int rc;

	if ((rc = local_pair(L, name, value, local_file_keys, v)) < 0 ||
	    (rc = dtn__spec_string(L, v[LOCAL_LOCAL], SUB("local"), &local)) < 0 ||
	    (rc = dtn__spec_string(L, v[LOCAL_REMOTE], SUB("remote"), &remote)) < 0)
		return rc;
	dtn_image_add_local_file(L->img, local, remote);
	return dtn__spec_check(L, value);
}

static int step_add_local_dir(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	char subj[128];
	yaml_node_t *v[LOCAL_NKEYS];
	dtn__spec_list ignore = DTN__SPEC_LIST_INIT;
	dtn_dir_opts opts = {.version = DTN_OPTS_VERSION};
	const char *local, *remote;
	int rc;

	if ((rc = local_pair(L, name, value, local_dir_keys, v)) < 0 ||
	    (rc = dtn__spec_string(L, v[LOCAL_LOCAL], SUB("local"), &local)) < 0 ||
	    (rc = dtn__spec_string(L, v[LOCAL_REMOTE], SUB("remote"), &remote)) < 0)
		goto out;
	if (v[LOCAL_IGNORE] && (rc = dtn__spec_strings(L, v[LOCAL_IGNORE], SUB("ignore"),
						       DTN__SPEC_FLATTEN, &ignore)) < 0)
		goto out;
	opts.ignore = items_of(&ignore);
	dtn_image_add_local_dir(L->img, local, remote, v[LOCAL_IGNORE] ? &opts : NULL);
	rc = dtn__spec_check(L, value);
out:
	dtn__spec_list_free(&ignore);
	return rc;
}

/* ---- commands ---- */

/* One item of run_commands: a command, or a list of words for the quoted-words form. */
static int run_item(dtn__spec_loader *L, const char *name, yaml_node_t *item)
{
	dtn__spec_list words = DTN__SPEC_LIST_INIT;
	const char *cmd;
	int rc;

	if (is_kind(item, YAML_SEQUENCE_NODE)) {
		if ((rc = dtn__spec_strings(L, item, name, DTN__SPEC_LIST, &words)) < 0)
			goto out;
		dtn_image_run_words(L->img, items_of(&words));
	} else {
		if ((rc = dtn__spec_string(L, item, name, &cmd)) < 0)
			goto out;
		dtn_image_run_commands(L->img, DTN_STRV(cmd));
	}
	rc = dtn__spec_check(L, item);
out:
	dtn__spec_list_free(&words);
	return rc;
}

static int step_run_commands(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	int rc;

	if (!is_kind(value, YAML_SEQUENCE_NODE))
		return run_item(L, name, value);
	for (yaml_node_item_t *it = value->data.sequence.items.start;
	     it < value->data.sequence.items.top; it++) {
		yaml_node_t *item = dtn__spec_node(L, *it);

		if ((rc = dtn__spec_visit(L, item)) < 0 || (rc = run_item(L, name, item)) < 0)
			return rc;
	}
	return 0;
}

enum { DF_COMMANDS, DF_CONTEXT_DIR, DF_STRICT, DF_NKEYS };

static const dtn__spec_key dockerfile_keys[DF_NKEYS] = {
	{"commands", NULL}, {"context_dir", "contextDir"}, {"strict_context", "strictContext"}};

/* The item whose text holds line `line` (1-based) of the commands joined with newlines. */
static yaml_node_t *item_of_line(const dtn__spec_list *cmds, int line)
{
	int first = 1;

	for (size_t i = 0; i < cmds->len; i++) {
		int last = first;

		for (const char *s = cmds->items[i]; *s; s++)
			last += *s == '\n';
		if (line <= last)
			return cmds->nodes[i];
		first = last + 1;
	}
	return NULL;
}

/* Places a DSL error of dockerfile_commands: a line of the joined text is its item's. */
static int dockerfile_check(dtn__spec_loader *L, yaml_node_t *value, const dtn__spec_list *cmds)
{
	const dtn_error *e = dtn_image_error(L->img);
	yaml_node_t *at = NULL;

	if (dtn_image_status(L->img) < 0 && !e->file[0] && e->line > 0)
		at = item_of_line(cmds, e->line);
	return dtn__spec_check(L, at ? at : value);
}

static int step_dockerfile_commands(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	char subj[128];
	yaml_node_t *v[DF_NKEYS] = {NULL, NULL, NULL};
	dtn__spec_list cmds = DTN__SPEC_LIST_INIT;
	dtn_dockerfile_opts opts = {.version = DTN_OPTS_VERSION};
	yaml_node_t *list = value;
	int rc;

	if (is_kind(value, YAML_MAPPING_NODE)) {
		if ((rc = dtn__spec_keys(L, value, name, dockerfile_keys, DF_NKEYS, v)) < 0)
			goto out;
		if (!(list = v[DF_COMMANDS])) {
			rc = dtn__spec_missing(L, value, name, "commands");
			goto out;
		}
		if ((v[DF_CONTEXT_DIR] && (rc = dtn__spec_string(L, v[DF_CONTEXT_DIR],
								 SUB("context_dir"),
								 &opts.context_dir)) < 0) ||
		    (v[DF_STRICT] && (rc = dtn__spec_bool(L, v[DF_STRICT], SUB("strict_context"),
							  &opts.strict_context)) < 0))
			goto out;
	}
	if ((rc = dtn__spec_strings(L, list, list == value ? name : SUB("commands"),
				    DTN__SPEC_FLATTEN, &cmds)) < 0)
		goto out;
	dtn_image_dockerfile_commands(L->img, items_of(&cmds), list == value ? NULL : &opts);
	rc = dockerfile_check(L, value, &cmds);
out:
	dtn__spec_list_free(&cmds);
	return rc;
}

/* ---- key/value steps ---- */

struct pair {
	const char *key;
	yaml_node_t *node;
	size_t index;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Finds a repeated key of an env or label mapping and reports it at its second use (the
 * earliest such use in the document). Sorting keeps this fast for huge mappings.
 */
static int pairs_unique(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	yaml_node_pair_t *p = value->data.mapping.pairs.start;
	size_t n = (size_t)(value->data.mapping.pairs.top - p), dup = SIZE_MAX;
	struct pair *v = dtn__calloc(n ? n : 1, sizeof(*v));
	yaml_node_t *at = NULL;
	char shown[96];
	int rc;

	if (!v)
		return dtn__spec_fail(L, NULL, DTN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i].node = dtn__spec_node(L, p[i].key);
		v[i].index = i;
		if ((rc = dtn__spec_visit(L, v[i].node)) < 0)
			goto out;
		if (!is_kind(v[i].node, YAML_SCALAR_NODE)) {
			rc = dtn__spec_fail(L, v[i].node, DTN_EINVAL,
					    "%s: a name must be a string, got %s", name,
					    dtn__spec_kind(v[i].node));
			goto out;
		}
		if ((rc = dtn__spec_string(L, v[i].node, name, &v[i].key)) < 0)
			goto out;
	}
	qsort(v, n, sizeof(*v), pair_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(v[i - 1].key, v[i].key) == 0 && v[i].index < dup &&
		    (i < 2 || strcmp(v[i - 2].key, v[i].key) != 0)) {
			dup = v[i].index;
			at = v[i].node;
		}
	}
	rc = 0;
	if (at)
		rc = dtn__spec_fail(L, at, DTN_EINVAL, "duplicate key \"%s\" in %s",
				    dtn__spec_show(dtn__spec_text(at), shown, sizeof(shown)), name);
out:
	dtn__free(v);
	return rc;
}

/*
 * The value of a key that JavaScript treats as an array index ("0", "7", "10", up to
 * 2^32 - 2), or -1. JavaScript objects list such keys first, in numeric order.
 */
static long long array_index(const char *key)
{
	long long n = 0;

	if (!*key || (key[0] == '0' && key[1]) || strlen(key) > 10)
		return -1;
	for (; *key; key++) {
		if (*key < '0' || *key > '9')
			return -1;
		n = n * 10 + (*key - '0');
	}
	return n <= 4294967294LL ? n : -1;
}

struct env_order {
	yaml_node_pair_t *pair;
	long long index; /* array index, or -1 */
	size_t at;       /* position in the document */
};

static int env_order_cmp(const void *a, const void *b)
{
	const struct env_order *x = a, *y = b;

	if ((x->index < 0) != (y->index < 0))
		return x->index < 0 ? 1 : -1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * The pairs in the order the calls are made: for env, the order of the reference SDK, whose
 * variables are a JavaScript object (array-index keys first, in numeric order, then the others
 * in document order); for label, document order.
 */
static struct env_order *pairs_in_order(dtn__spec_loader *L, yaml_node_t *value, bool env)
{
	yaml_node_pair_t *p = value->data.mapping.pairs.start;
	size_t n = (size_t)(value->data.mapping.pairs.top - p);
	struct env_order *v = dtn__calloc(n + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *key = dtn__spec_text(dtn__spec_node(L, p[i].key));

		v[i] = (struct env_order){&p[i], env ? array_index(key) : -1, i};
	}
	qsort(v, n, sizeof(*v), env_order_cmp);
	return v;
}

/* One env or label call. */
static int one_pair(dtn__spec_loader *L, const char *name, yaml_node_pair_t *p, bool env)
{
	yaml_node_t *v = dtn__spec_node(L, p->value);
	const char *key = dtn__spec_text(dtn__spec_node(L, p->key)), *val;
	char subject[128], shown[96];
	int rc;

	snprintf(subject, sizeof(subject), "%s.%s", name, dtn__spec_show(key, shown, sizeof(shown)));
	if ((rc = dtn__spec_string(L, v, subject, &val)) < 0)
		return rc;
	if (env)
		dtn_image_env(L->img, key, val);
	else
		dtn_image_label(L->img, key, val);
	return dtn__spec_check(L, v);
}

/* One env or label call per pair; a value's errors point at it. */
static int step_pairs(dtn__spec_loader *L, const char *name, yaml_node_t *value, bool env)
{
	struct env_order *order;
	size_t n;
	int rc = 0;

	if (!is_kind(value, YAML_MAPPING_NODE))
		return shape(L, name, value, "a mapping of names to values");
	if ((rc = pairs_unique(L, name, value)) < 0)
		return rc;
	if (!(order = pairs_in_order(L, value, env)))
		return dtn__spec_fail(L, NULL, DTN_ENOMEM, "out of memory");
	n = (size_t)(value->data.mapping.pairs.top - value->data.mapping.pairs.start);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = one_pair(L, name, order[i].pair, env);
	dtn__free(order);
	return rc;
}

static int step_env(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return step_pairs(L, name, value, true);
}

static int step_label(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return step_pairs(L, name, value, false);
}

/* ---- single strings ---- */

static int step_workdir(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	const char *s;
	int rc;

	if ((rc = dtn__spec_string(L, value, name, &s)) < 0)
		return rc;
	dtn_image_workdir(L->img, s);
	return dtn__spec_check(L, value);
}

static int step_user(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	const char *s;
	int rc;

	if ((rc = dtn__spec_string(L, value, name, &s)) < 0)
		return rc;
	dtn_image_user(L->img, s);
	return dtn__spec_check(L, value);
}

/* ---- string lists ---- */

typedef dtn_image *(*list_call)(dtn_image *img, const char *const *items);

static int list_step(dtn__spec_loader *L, const char *name, yaml_node_t *value, int flags,
		     list_call call)
{
	dtn__spec_list items = DTN__SPEC_LIST_INIT;
	int rc;

	if ((rc = dtn__spec_strings(L, value, name, flags, &items)) < 0)
		goto out;
	call(L->img, items_of(&items));
	rc = dtn__spec_check(L, value);
out:
	dtn__spec_list_free(&items);
	return rc;
}

static int step_entrypoint(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return list_step(L, name, value, DTN__SPEC_LIST, dtn_image_entrypoint);
}

static int step_cmd(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return list_step(L, name, value, DTN__SPEC_LIST, dtn_image_cmd);
}

static int step_apt_get(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return list_step(L, name, value, DTN__SPEC_FLATTEN, dtn_image_apt_get);
}

static int step_expose(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return list_step(L, name, value, DTN__SPEC_FLATTEN, dtn_image_expose);
}

static int step_volume(dtn__spec_loader *L, const char *name, yaml_node_t *value)
{
	return list_step(L, name, value, DTN__SPEC_FLATTEN, dtn_image_volume);
}

/* ---- the table ---- */

static const struct step_def step_defs[] = {
	{"pip_install", "pipInstall", step_pip_install},
	{"pip_install_from_requirements", "pipInstallFromRequirements", step_requirements},
	{"pip_install_from_pyproject", "pipInstallFromPyproject", step_pyproject},
	{"add_local_file", "addLocalFile", step_add_local_file},
	{"add_local_dir", "addLocalDir", step_add_local_dir},
	{"run_commands", "runCommands", step_run_commands},
	{"env", NULL, step_env},
	{"label", NULL, step_label},
	{"workdir", NULL, step_workdir},
	{"user", NULL, step_user},
	{"entrypoint", NULL, step_entrypoint},
	{"cmd", NULL, step_cmd},
	{"apt_get", "aptGet", step_apt_get},
	{"expose", NULL, step_expose},
	{"volume", NULL, step_volume},
	{"dockerfile_commands", "dockerfileCommands", step_dockerfile_commands},
};

static const char *const step_names[] = {
	"pip_install", "pip_install_from_requirements", "pip_install_from_pyproject",
	"add_local_file", "add_local_dir", "run_commands", "env", "label", "workdir", "user",
	"entrypoint", "cmd", "apt_get", "expose", "volume", "dockerfile_commands",
	"pipInstall", "pipInstallFromRequirements", "pipInstallFromPyproject", "addLocalFile",
	"addLocalDir", "runCommands", "aptGet", "dockerfileCommands", NULL};

int dtn__spec_step(dtn__spec_loader *L, yaml_node_t *key, yaml_node_t *value)
{
	const char *name;
	int rc;

	if ((rc = dtn__spec_string(L, key, "a step's name", &name)) < 0)
		return rc;
	for (size_t i = 0; i < DTN__ARRAY_LEN(step_defs); i++) {
		const struct step_def *d = &step_defs[i];

		if (strcmp(d->name, name) == 0 || (d->alias && strcmp(d->alias, name) == 0))
			return d->fn(L, name, value);
	}
	return dtn__spec_unknown(L, key, "step", name, NULL, step_names);
}

/* One item of the steps list: a mapping with exactly one key, the step's name. */
static int step_item(dtn__spec_loader *L, yaml_node_t *item)
{
	yaml_node_pair_t *p;
	size_t n;
	char shown[96];

	if (!is_kind(item, YAML_MAPPING_NODE))
		return dtn__spec_fail(L, item, DTN_EINVAL,
				      "a step must be a mapping with one key (step: arguments), "
				      "got %s",
				      dtn__spec_kind(item));
	p = item->data.mapping.pairs.start;
	n = (size_t)(item->data.mapping.pairs.top - p);
	if (n == 0)
		return dtn__spec_fail(L, item, DTN_EINVAL,
				      "a step must be a mapping with one key (step: arguments), "
				      "got an empty mapping");
	if (n > 1) {
		yaml_node_t *second = dtn__spec_node(L, p[1].key);

		return dtn__spec_fail(L, second, DTN_EINVAL,
				      "a step must be a mapping with one key; start \"%s\" as a "
				      "new list item",
				      dtn__spec_show(dtn__spec_text(second), shown, sizeof(shown)));
	}
	return dtn__spec_step(L, dtn__spec_node(L, p->key), dtn__spec_node(L, p->value));
}

int dtn__spec_steps(dtn__spec_loader *L, yaml_node_t *steps)
{
	int rc;

	if (!steps || dtn__spec_is_null(steps))
		return 0;
	if (steps->type != YAML_SEQUENCE_NODE)
		return dtn__spec_fail(L, steps, DTN_EINVAL,
				      "image.steps: expected a list of steps, got %s",
				      dtn__spec_kind(steps));
	for (yaml_node_item_t *it = steps->data.sequence.items.start;
	     it < steps->data.sequence.items.top; it++) {
		yaml_node_t *item = dtn__spec_node(L, *it);

		if ((rc = dtn__spec_visit(L, item)) < 0 || (rc = step_item(L, item)) < 0)
			return rc;
	}
	return 0;
}
