/*
 * cmd_context.c - `dtn-build context SPEC [--json]`: the build contexts a spec needs.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"usage: dtn-build context SPEC [--json]\n"
	"\n"
	"List the build contexts of SPEC in order: for each, the local source, where its files\n"
	"sit in the build context (archive path) and whether it is a file or a directory.\n"
	"\n"
	"  --json   print a JSON array of {source, path, archive_path, kind, step} objects\n";

static json_t *context_json(const dtn_context *c)
{
	json_t *o = json_object(), *ignore = json_array();

	if (!o || !ignore)
		goto fail;
	for (size_t i = 0; c->ignore[i]; i++)
		if (json_array_append_new(ignore, json_string(c->ignore[i])) < 0)
			goto fail;
	if (json_object_set_new(o, "source", json_string(c->source)) < 0 ||
	    json_object_set_new(o, "path", json_string(c->path)) < 0 ||
	    json_object_set_new(o, "archive_path", json_string(c->archive_path)) < 0 ||
	    json_object_set_new(o, "kind", json_string(dtn_context_kind_name(c->kind))) < 0 ||
	    json_object_set_new(o, "step", json_string(c->step)) < 0 ||
	    json_object_set_new(o, "root", json_string(c->root)) < 0 ||
	    json_object_set_new(o, "ignore", ignore) < 0)
		goto fail_obj;
	return o;
fail:
	json_decref(ignore);
fail_obj:
	json_decref(o);
	return NULL;
}

static int print_json(const dtn_image *img)
{
	json_t *arr = json_array();
	char *text = NULL;
	int rc = EXIT_FAILED;

	if (!arr)
		goto out;
	for (size_t i = 0; i < dtn_image_context_count(img); i++)
		if (json_array_append_new(arr, context_json(dtn_image_context(img, i))) < 0)
			goto out;
	if (!(text = json_dumps(arr, JSON_INDENT(2))))
		goto out;
	puts(text);
	rc = EXIT_OK;
out:
	if (rc != EXIT_OK)
		cli_error("context: cannot render JSON (a path that is not UTF-8?)");
	free(text);
	json_decref(arr);
	return rc;
}

static void print_text(const dtn_image *img)
{
	size_t n = dtn_image_context_count(img);

	if (n == 0) {
		puts("no build contexts");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const dtn_context *c = dtn_image_context(img, i);

		printf("%-4s %s -> %s  (%s)\n", dtn_context_kind_name(c->kind), c->source,
		       c->archive_path, c->step);
	}
}

static int run(int argc, char **argv)
{
	const char *path;
	bool json = false;
	const cli_option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
	dtn_spec *spec;
	int code;

	if (!cli_parse_args(&cli_cmd_context, argc, argv, options, &path, 1, &code))
		return code;
	if (!(spec = cli_load_spec(path, &code)))
		return code;
	if (json)
		code = print_json(dtn_spec_image(spec));
	else
		print_text(dtn_spec_image(spec));
	dtn_spec_free(spec);
	return code;
}

const cli_command cli_cmd_context = {
	"context", "list the build contexts of a spec", usage, run,
};
