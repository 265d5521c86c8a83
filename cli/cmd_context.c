/*
 * cmd_context.c - `dtn-build context SPEC`: the build contexts a spec needs, their identity and
 * what the ignore rules leave out; their archives with -o; one path's fate with --explain.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
	"usage: dtn-build context SPEC [--json] [-o DIR] [--explain PATH] [--no-cache]\n"
	"\n"
	"List the build contexts of SPEC in order: for each, the local source, where its files\n"
	"sit in the build context (archive path), its identity (a SHA-256 digest of its files),\n"
	"how many files and bytes it holds, and what the ignore rules (.dockerignore in the\n"
	"context's root, the step's ignore patterns) leave out.\n"
	"\n"
	"  --json          print a JSON array, one object per context\n"
	"  -o, --output DIR  write each context's archive to DIR/<hash>.tar\n"
	"  --explain PATH  say whether PATH is in a context and which rule decided\n"
	"  --no-cache      do not use or update the digest cache\n"
	"\n"
	"The digest cache lives in $XDG_CACHE_HOME/dtn (else ~/.cache/dtn); DTN_CACHE_DIR\n"
	"names another directory.\n";

struct context_opts {
	const char *out_dir;
	const char *explain;
	bool json, no_cache;
};

static void warn(const char *message, void *payload)
{
	(void)payload;
	cli_error("warning: %s", message);
}

static int new_builder(const struct context_opts *o, dtn_builder **b)
{
	dtn_error err;
	const char *dir = getenv("DTN_CACHE_DIR");
	int rc;

	/* what `context` lists is what would be sent to Daytona, whose runner empties links */
	rc = dtn_builder_new(b, &(dtn_builder_opts){.cache_dir = o->no_cache ? "" : dir,
						     .warn = warn, .for_daytona = true},
			     &err);
	if (rc < 0) {
		cli_report(&err);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* The exit code of a failure while walking or archiving a context. */
static int walk_exit_code(int code)
{
	return code == DTN_EINVAL || code == DTN_EOUTSIDE ? EXIT_USAGE : EXIT_FAILED;
}

static json_t *context_json(const dtn_context *c, const dtn_context_id *id)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:I, s:I, "
			      "s:o, s:I}",
			      "source", c->source, "path", c->path, "archive_path", c->archive_path,
			      "kind", dtn_context_kind_name(c->kind), "step", c->step, "root",
			      c->root, "ignore", cli_json_strings(c->ignore), "hash", id->hash, "files",
			      (json_int_t)id->files, "dirs", (json_int_t)id->dirs, "links",
			      (json_int_t)id->links, "bytes", (json_int_t)id->bytes, "excluded",
			      (json_int_t)id->excluded, "excluded_by", cli_json_strings(id->excluded_by),
			      "cache_hits", (json_int_t)id->cache_hits);

	return o;
}

static void print_text(size_t i, const dtn_context *c, const dtn_context_id *id)
{
	printf("%s %s -> %s  (%s)\n", dtn_context_kind_name(c->kind), c->source, c->archive_path,
	       c->step);
	printf("  %zu: sha256:%s  %llu %s, %llu bytes", i + 1, id->hash,
	       (unsigned long long)id->files, id->files == 1 ? "file" : "files",
	       (unsigned long long)id->bytes);
	if (id->links)
		printf(", %llu %s", (unsigned long long)id->links, id->links == 1 ? "link" : "links");
	printf(", %llu left out\n", (unsigned long long)id->excluded);
	for (size_t k = 0; id->excluded_by[k]; k++)
		printf("    left out by %s\n", id->excluded_by[k]);
}

static mode_t current_umask(void)
{
	mode_t m = umask(0);

	umask(m);
	return m;
}

/*
 * Archives and identifies a context in one pass into a temporary file in DIR, then names it
 * DIR/<hash>.tar, so a failure leaves nothing half-written. *out gets the identity.
 */
static int write_archive(dtn_builder *b, const dtn_context *c, const char *dir,
			 dtn_context_id **out)
{
	char tmp[PATH_MAX], final[PATH_MAX];
	dtn_error err;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s/.dtn-context.tar.XXXXXX", dir);
	if ((fd = mkstemp(tmp)) < 0) {
		cli_error("context: cannot write in %s: %s", dir, strerror(errno));
		return EXIT_FAILED;
	}
	fchmod(fd, 0666 & ~current_umask());
	rc = dtn_builder_archive_identify(b, c, dtn_write_fd, &fd, out, &err);
	if (rc == DTN_EUSER)
		cli_error("context: cannot write %s: %s", tmp, strerror(errno));
	else if (rc < 0)
		cli_report(&err);
	if (close(fd) != 0 && rc == 0) {
		cli_error("context: cannot write %s: %s", tmp, strerror(errno));
		rc = DTN_EIO;
	}
	if (rc == 0) {
		snprintf(final, sizeof(final), "%s/%s.tar", dir, (*out)->hash);
		if (rename(tmp, final) != 0) {
			cli_error("context: cannot write %s: %s", final, strerror(errno));
			rc = DTN_EIO;
		}
	}
	if (rc < 0) {
		unlink(tmp);
		dtn_context_id_free(*out);
		*out = NULL;
		return rc == DTN_EUSER ? EXIT_FAILED : walk_exit_code(rc);
	}
	return EXIT_OK;
}

static int make_dir(const char *dir)
{
	if (mkdir(dir, 0777) == 0 || errno == EEXIST)
		return EXIT_OK;
	cli_error("context: cannot create %s: %s", dir, strerror(errno));
	return EXIT_FAILED;
}

/* Identifies every context, printing each, and writes the archives when asked. */
static int list_contexts(const struct context_opts *o, const dtn_image *img, dtn_builder *b)
{
	json_t *arr = o->json ? json_array() : NULL;
	int code = EXIT_OK;

	if (o->out_dir && (code = make_dir(o->out_dir)) != EXIT_OK)
		return code;
	if (!o->json && !dtn_image_context_count(img))
		puts("no build contexts");
	for (size_t i = 0; i < dtn_image_context_count(img) && code == EXIT_OK; i++) {
		const dtn_context *c = dtn_image_context(img, i);
		dtn_context_id *id = NULL;
		dtn_error err;
		int rc;

		if (o->out_dir) {
			if ((code = write_archive(b, c, o->out_dir, &id)) != EXIT_OK)
				break;
		} else if ((rc = dtn_builder_identify(b, c, &id, &err)) < 0) {
			cli_report(&err);
			code = walk_exit_code(rc);
			break;
		}
		if (arr)
			json_array_append_new(arr, context_json(c, id));
		else
			print_text(i, c, id);
		dtn_context_id_free(id);
	}
	if (arr && code == EXIT_OK) {
		char *text = json_dumps(arr, JSON_INDENT(2));

		if (text)
			puts(text);
		else
			code = EXIT_FAILED;
		free(text);
	}
	json_decref(arr);
	return code;
}

/* Says, for every context that holds PATH, whether it is in the archive and why. */
static int explain(const char *path, const dtn_image *img, dtn_builder *b)
{
	bool found = false;

	for (size_t i = 0; i < dtn_image_context_count(img); i++) {
		const dtn_context *c = dtn_image_context(img, i);
		dtn_error err;
		char *text;
		int rc = dtn_builder_explain(b, c, path, &text, &err);

		if (rc < 0) {
			cli_report(&err);
			return walk_exit_code(rc);
		}
		if (!text)
			continue;
		printf("context %zu (%s): %s\n", i + 1, c->source, text);
		dtn_free(text);
		found = true;
	}
	if (!found) {
		printf("%s: in no build context\n", path);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int run(int argc, char **argv)
{
	struct context_opts o = {0};
	const cli_option options[] = {
		{"--json", &o.json, NULL},       {"-o", NULL, &o.out_dir},
		{"--output", NULL, &o.out_dir},  {"--explain", NULL, &o.explain},
		{"--no-cache", &o.no_cache, NULL}, {NULL, NULL, NULL},
	};
	const char *path;
	dtn_builder *b = NULL;
	dtn_spec *spec;
	dtn_error err;
	int code;

	if (!cli_parse_args(&cli_cmd_context, argc, argv, options, &path, 1, &code))
		return code;
	if (!(spec = cli_load_spec(path, &code)))
		return code;
	if ((code = new_builder(&o, &b)) == EXIT_OK) {
		if (o.explain)
			code = explain(o.explain, dtn_spec_image(spec), b);
		else
			code = list_contexts(&o, dtn_spec_image(spec), b);
		if (dtn_builder_save_cache(b, &err) < 0)
			cli_error("warning: the digest cache was not saved: %s", err.message);
	}
	dtn_builder_free(b);
	dtn_spec_free(spec);
	return code;
}

const cli_command cli_cmd_context = {
	"context", "list the build contexts of a spec, their identity and archives", usage, run,
};
