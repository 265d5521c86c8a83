/*
 * cmd_volume.c - `dtn-build volume list|get|create|delete`: Daytona volumes.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_daytona.h"

static const char usage[] =
	"usage: dtn-build volume list [--json]\n"
	"       dtn-build volume get NAME [--json]\n"
	"       dtn-build volume create NAME [--wait] [--json]\n"
	"       dtn-build volume delete NAME [--wait]\n"
	"\n"
	"Manage Daytona volumes: persistent storage that sandboxes mount (see dtn-build\n"
	"sandbox --help). NAME is a volume's name, or its id.\n"
	"\n"
	"  list            every volume: name, state, id\n"
	"  get NAME        one volume\n"
	"  create NAME     a new volume; it starts in state pending_create, and --wait waits\n"
	"                  until it is ready (a volume in state error fails with its reason)\n"
	"  delete NAME     deletes a volume that is ready or in error and that no sandbox\n"
	"                  uses; --wait waits until it is gone\n"
	"\n"
	"  --json          print the server's description as JSON on stdout\n"
	"  --wait          wait for the operation to finish\n"
	"  --timeout S     give up after S seconds (default 300)\n"
	CLI_DAYTONA_FLAGS_HELP
	"\n"
	"Configuration: DAYTONA_API_KEY (or DAYTONA_JWT_TOKEN and DAYTONA_ORGANIZATION_ID),\n"
	"DAYTONA_API_URL, from the environment or .env.local / .env.\n"
	"\n"
	"Exit codes: 0 done, 1 failed (not found, already exists, in use, error state, time\n"
	"limit), 2 usage error, 3 configuration or authentication error, 130 interrupted.\n";

struct volume_opts {
	const char *name, *timeout_text;
	bool json, wait;
	cli_daytona_flags flags;
};

static int fail(int rc, const dtn_error *err)
{
	return cli_daytona_fail("volume", rc, err);
}

static void print_volume(const dtn_volume *v)
{
	printf("name:       %s\nid:         %s\nstate:      %s\n", v->name, v->id, v->state);
	if (v->error_reason)
		printf("reason:     %s\n", v->error_reason);
	if (v->created_at)
		printf("created:    %s\n", v->created_at);
	if (v->updated_at)
		printf("updated:    %s\n", v->updated_at);
	if (v->last_used_at)
		printf("last used:  %s\n", v->last_used_at);
}

/* The objects as the server sent them, in one array. */
static int print_list_json(const dtn_volumes *vs)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < vs->count; i++)
		cli_json_append(&arr, vs->items[i]->json);
	return cli_print_json(arr, "volume: cannot print the volumes as JSON");
}

static int list(dtn_daytona *c, const struct volume_opts *o)
{
	dtn_volumes *vs = NULL;
	dtn_error err;
	int rc, code = EXIT_OK;

	dtn_error_clear(&err);
	rc = dtn_volume_list(c, &vs, &err);

	if (rc < 0)
		return fail(rc, &err);
	if (o->json) {
		code = print_list_json(vs);
	} else if (!vs->count) {
		puts("no volumes");
	} else {
		printf("%-32s %-15s %s\n", "NAME", "STATE", "ID");
		for (size_t i = 0; i < vs->count; i++)
			printf("%-32s %-15s %s\n", vs->items[i]->name, vs->items[i]->state,
			       vs->items[i]->id);
	}
	dtn_volumes_free(vs);
	return code;
}

static int show(const struct volume_opts *o, const dtn_volume *v)
{
	if (o->json)
		return cli_print_json_text(v->json);
	print_volume(v);
	return EXIT_OK;
}

static int get(dtn_daytona *c, const struct volume_opts *o)
{
	dtn_volume *v = NULL;
	dtn_error err;
	int rc, code;

	dtn_error_clear(&err);
	rc = dtn_volume_find(c, o->name, &v, &err);
	if (rc < 0)
		return fail(rc, &err);
	code = show(o, v);
	dtn_volume_free(v);
	return code;
}

static int create(dtn_daytona *c, const struct volume_opts *o)
{
	dtn_volume *v = NULL, *ready = NULL;
	dtn_error err;
	int rc, code;

	dtn_error_clear(&err);
	if ((rc = dtn_volume_create(c, o->name, &v, &err)) == 0 && o->wait)
		rc = dtn_volume_wait(c, v, &(dtn_volume_wait_opts){.version = 1,
								   .log = cli_daytona_progress},
				     &ready, &err);
	if (rc < 0) {
		dtn_volume_free(v);
		return fail(rc, &err);
	}
	if (ready) {
		dtn_volume_free(v);
		v = ready;
	}
	code = EXIT_OK;
	if (o->json)
		code = cli_print_json_text(v->json);
	else
		printf("volume %s (%s) is %s\n", v->name, v->id, v->state);
	dtn_volume_free(v);
	return code;
}

static int delete(dtn_daytona *c, const struct volume_opts *o)
{
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	rc = dtn_volume_delete(c, o->name, o->wait, &err);
	if (rc < 0)
		return fail(rc, &err);
	printf(o->wait ? "volume %s is deleted\n" : "volume %s is being deleted\n", o->name);
	return EXIT_OK;
}

static const struct action {
	const char *name;
	int npos;
	int (*run)(dtn_daytona *c, const struct volume_opts *o);
} actions[] = {
	{"list", 0, list},
	{"get", 1, get},
	{"create", 1, create},
	{"delete", 1, delete},
};

static int run(int argc, char **argv)
{
	struct volume_opts o = {.flags.timeout = 300};
	const cli_option options[] = {
		{"--json", &o.json, NULL},
		{"--wait", &o.wait, NULL},
		{"--timeout", NULL, &o.timeout_text},
		{"--api-url", NULL, &o.flags.api_url},
		{"--api-key", NULL, &o.flags.api_key},
		{NULL, NULL, NULL},
	};
	const struct action *a = NULL;
	dtn_daytona *c;
	int code;

	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(argv[1], actions[i].name) == 0)
			a = &actions[i];
	if (!a) {
		cli_error("volume: unknown action \"%s\" (expected list, get, create or delete)",
			  argv[1]);
		return EXIT_USAGE;
	}
	if (!cli_parse_args(&cli_cmd_volume, argc - 1, argv + 1, options, &o.name, a->npos,
			    &code))
		return code;
	if (!cli_daytona_seconds("volume", o.timeout_text, &o.flags.timeout))
		return EXIT_USAGE;
	if (o.wait && a->run != create && a->run != delete) {
		cli_error("volume: --wait goes with create and delete");
		return EXIT_USAGE;
	}
	if (!(c = cli_daytona_client(&o.flags, true, &code)))
		return code;
	code = a->run(c, &o);
	dtn_daytona_free(c);
	return code;
}

const cli_command cli_cmd_volume = {
	"volume", "list, show, create and delete Daytona volumes", usage, run,
};
