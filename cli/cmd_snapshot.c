/*
 * cmd_snapshot.c - `dtn-build snapshot list|get|delete|activate`: Daytona snapshots.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_daytona.h"

static const char usage[] =
	"usage: dtn-build snapshot list [--page N] [--limit N] [--name TEXT] [--json]\n"
	"       dtn-build snapshot get NAME [--json]\n"
	"       dtn-build snapshot delete NAME [--no-wait] [--json]\n"
	"       dtn-build snapshot activate NAME [--json]\n"
	"\n"
	"Manage Daytona snapshots. NAME is a snapshot's name, or its id.\n"
	"\n"
	"  list            the snapshots, every page (or only --page N, --limit per page);\n"
	"                  --name keeps those whose name contains TEXT\n"
	"  get NAME        one snapshot\n"
	"  delete NAME     deletes a snapshot and waits until it is gone (--no-wait: not)\n"
	"  activate NAME   activates an inactive snapshot\n"
	"\n"
	"  --json          print the server's description as JSON on stdout\n"
	CLI_DAYTONA_FLAGS_HELP
	"  --timeout S     give up after S seconds\n"
	"\n"
	"Configuration: DAYTONA_API_KEY (or DAYTONA_JWT_TOKEN and DAYTONA_ORGANIZATION_ID),\n"
	"DAYTONA_API_URL, DAYTONA_TARGET, from the environment or .env.local / .env in the\n"
	"current directory.\n"
	"\n"
	"Exit codes: 0 done, 1 failed (not found, refused, time limit), 2 usage error,\n"
	"3 configuration or authentication error, 130 interrupted.\n";

/* ---- printing ---- */

static void print_strv(const char *label, const char *const *v)
{
	if (!v || !v[0])
		return;
	printf("%-12s", label);
	for (size_t i = 0; v[i]; i++)
		printf("%s%s", i ? ", " : "", v[i]);
	putchar('\n');
}

static void print_snapshot(const dtn_snapshot *s)
{
	printf("%-12s%s\n%-12s%s\n%-12s%s\n", "name:", s->name, "id:", s->id, "state:", s->state);
	if (s->error_reason)
		printf("%-12s%s\n", "reason:", s->error_reason);
	if (s->image_name)
		printf("%-12s%s\n", "image:", s->image_name);
	printf("%-12s%d cpu, %d gpu, %d GiB memory, %d GiB disk\n", "resources:", s->cpu, s->gpu,
	       s->memory, s->disk);
	if (s->size >= 0)
		printf("%-12s%.2f GB\n", "size:", s->size);
	print_strv("regions:", s->region_ids);
	print_strv("entrypoint:", s->entrypoint);
	print_strv("contexts:", s->context_hashes);
	if (s->created_at)
		printf("%-12s%s\n", "created:", s->created_at);
	if (s->updated_at)
		printf("%-12s%s\n", "updated:", s->updated_at);
	if (s->dockerfile)
		printf("dockerfile:\n%s%s", s->dockerfile,
		       *s->dockerfile && s->dockerfile[strlen(s->dockerfile) - 1] != '\n' ? "\n" : "");
}

static int print_list(const dtn_snapshot_page *p, bool json)
{
	json_t *arr;

	if (!json) {
		if (p->count)
			printf("%-32s %-13s %-5s %s\n", "NAME", "STATE", "CPU", "SOURCE");
		for (size_t i = 0; i < p->count; i++) {
			const dtn_snapshot *s = p->items[i];

			printf("%-32s %-13s %-5d %s\n", s->name, s->state, s->cpu,
			       s->image_name ? s->image_name : s->dockerfile ? "(build)" : "");
		}
		printf("%zu of %ld snapshot%s\n", p->count, p->total, p->total == 1 ? "" : "s");
		return EXIT_OK;
	}
	arr = json_array();
	for (size_t i = 0; i < p->count; i++)
		cli_json_append(&arr, p->items[i]->json);
	return cli_print_json(arr, "snapshot: cannot print the list as JSON");
}

/* ---- the actions ---- */

struct snapshot_opts {
	cli_daytona_flags flags;
	const char *page_text, *limit_text, *name_filter, *timeout_text;
	bool json, no_wait;
};

static bool parse_count(const char *what, const char *text, long *out)
{
	char *end;
	long v;

	if (!text)
		return true;
	errno = 0;
	v = strtol(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end || errno || v < 1 || v > 1000000) {
		cli_error("snapshot: %s wants a positive number, not \"%s\"", what, text);
		return false;
	}
	*out = v;
	return true;
}

static int do_list(dtn_daytona *c, const struct snapshot_opts *o)
{
	dtn_snapshot_list_opts lo = {.name = o->name_filter};
	dtn_snapshot_page *p = NULL;
	dtn_error err = {0};
	int rc, code;

	if (!parse_count("--page", o->page_text, &lo.page) ||
	    !parse_count("--limit", o->limit_text, &lo.limit))
		return EXIT_USAGE;
	if ((rc = dtn_snapshot_list(c, &lo, &p, &err)) < 0)
		return cli_daytona_fail("snapshot", rc, &err);
	code = print_list(p, o->json);
	dtn_snapshot_page_free(p);
	return code;
}

static int do_one(dtn_daytona *c, const char *action, const char *name,
		  const struct snapshot_opts *o)
{
	dtn_snapshot *s = NULL;
	dtn_error err = {0};
	int rc, code = EXIT_OK;

	if (strcmp(action, "get") == 0)
		rc = dtn_snapshot_get(c, name, &s, &err);
	else if (strcmp(action, "activate") == 0)
		rc = dtn_snapshot_activate(c, name, &s, &err);
	else
		rc = dtn_snapshot_delete(c, name, !o->no_wait, &err);
	if (rc < 0)
		return cli_daytona_fail("snapshot", rc, &err);
	if (strcmp(action, "delete") == 0) {
		if (o->json)
			code = cli_print_json(json_pack("{s:b, s:s}", "deleted", 1, "name", name),
					      NULL);
		else
			printf("deleted snapshot %s\n", name);
	} else if (o->json) {
		code = cli_print_json(json_loads(s->json, 0, NULL),
				      "snapshot: cannot print the answer as JSON");
	} else if (strcmp(action, "activate") == 0) {
		printf("activated snapshot %s (%s)\n", s->name, s->state);
	} else {
		print_snapshot(s);
	}
	dtn_snapshot_free(s);
	return code;
}

static int run(int argc, char **argv)
{
	struct snapshot_opts o = {0};
	const cli_option options[] = {
		{.name = "--json", .set = &o.json},
		{.name = "--page", .value = &o.page_text},
		{.name = "--limit", .value = &o.limit_text},
		{.name = "--name", .value = &o.name_filter},
		{.name = "--no-wait", .set = &o.no_wait},
		{.name = "--api-url", .value = &o.flags.api_url},
		{.name = "--api-key", .value = &o.flags.api_key},
		{.name = "--timeout", .value = &o.timeout_text},
		{.name = NULL},
	};
	const char *pos[2] = {NULL, NULL}, *action;
	bool list;
	dtn_daytona *c;
	int code;

	if (argc < 2 || (!cli_is_help(argv[1]) && strcmp(argv[1], "list") != 0 &&
			 strcmp(argv[1], "get") != 0 && strcmp(argv[1], "delete") != 0 &&
			 strcmp(argv[1], "activate") != 0)) {
		if (argc >= 2)
			cli_error("snapshot: unknown action \"%s\" (list, get, delete, activate)",
				  argv[1]);
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	action = argv[1];
	list = strcmp(action, "list") == 0;
	if (!cli_parse_args(&cli_cmd_snapshot, argc, argv, options, pos, list ? 1 : 2, &code))
		return code;
	if (!cli_daytona_seconds("snapshot", o.timeout_text, &o.flags.timeout))
		return EXIT_USAGE;
	if (!list && (o.page_text || o.limit_text || o.name_filter)) {
		cli_error("snapshot: --page, --limit and --name are for list");
		return EXIT_USAGE;
	}
	if (!(c = cli_daytona_client(&o.flags, true, &code)))
		return code;
	code = list ? do_list(c, &o) : do_one(c, action, pos[1], &o);
	dtn_daytona_free(c);
	return code;
}

const cli_command cli_cmd_snapshot = {
	"snapshot", "list, show, delete or activate Daytona snapshots", usage, run,
};
