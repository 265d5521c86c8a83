/*
 * cmd_sandbox.c - `dtn-build sandbox create`: a sandbox from a snapshot with volumes mounted;
 * also the sandbox helpers `volume` and `build --sandbox` use.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_daytona.h"

static const char usage[] =
	"usage: dtn-build sandbox create --snapshot S [--volume NAME:PATH[:SUBPATH]]...\n"
	"                                [--name N] [--env K=V]... [--label K=V]... [--json]\n"
	"                                [--timeout S] [--api-url URL] [--api-key KEY]\n"
	"\n"
	"Create a Daytona sandbox from snapshot S and wait until it is started. Each --volume\n"
	"mounts the volume NAME (a name or an id) at PATH inside the sandbox; SUBPATH, when\n"
	"given, mounts only that prefix of the volume. Volumes that do not exist are created,\n"
	"and every volume is waited for until it is ready. Mount paths are checked as the\n"
	"server checks them before anything is sent: absolute, not \"/\", no \".\", \"..\" or\n"
	"\"//\", not /proc, /sys, /dev, /boot, /etc, /bin, /sbin, /lib, /lib64 or below; a\n"
	"subpath must not start with '/' or contain \"..\" or \"//\".\n"
	"\n"
	"  --snapshot S    the snapshot (name or id) to start from\n"
	"  --volume V      NAME:PATH[:SUBPATH], as often as needed\n"
	"  --name N        the sandbox name (default: its id)\n"
	"  --env K=V       an environment variable of the sandbox, as often as needed\n"
	"  --label K=V     a label, as often as needed (code-toolbox-language=python is set\n"
	"                  unless given, as the Daytona SDKs do)\n"
	"  --json          print the sandbox as JSON on stdout (progress goes to stderr)\n"
	"  --timeout S     give up after S seconds (default 300) for the volumes and the start\n"
	CLI_DAYTONA_FLAGS_HELP
	"\n"
	"Configuration: DAYTONA_API_KEY (or DAYTONA_JWT_TOKEN and DAYTONA_ORGANIZATION_ID),\n"
	"DAYTONA_API_URL, DAYTONA_TARGET, from the environment or .env.local / .env.\n"
	"\n"
	"Exit codes: 0 started, 1 failed (the server's reason is shown), 2 usage error or a bad\n"
	"mount, 3 configuration or authentication error, 130 interrupted.\n";

/* ---- shared with volume and build ---- */

void cli_print_sandbox(const dtn_sandbox *s, FILE *out)
{
	fprintf(out, "sandbox %s (%s) is %s", s->name ? s->name : s->id, s->id, s->state);
	if (s->snapshot)
		fprintf(out, ", from snapshot %s", s->snapshot);
	fputc('\n', out);
	for (size_t i = 0; i < s->nvolumes; i++) {
		const dtn_sandbox_volume *v = &s->volumes[i];

		fprintf(out, "  volume %s at %s", v->volume_id, v->mount_path);
		if (v->subpath)
			fprintf(out, " (subpath %s)", v->subpath);
		fputc('\n', out);
	}
}

/* The spec's volumes as mounts (borrowed strings), in fresh memory; NULL when there are none
 * or memory ran out (then *n is 0). */
static dtn_mount *spec_mounts(const dtn_spec *spec, size_t *n)
{
	dtn_mount *mounts;

	*n = dtn_spec_volume_count(spec);
	if (!*n || !(mounts = calloc(*n, sizeof(*mounts)))) {
		*n = 0;
		return NULL;
	}
	for (size_t i = 0; i < *n; i++) {
		const dtn_spec_volume *v = dtn_spec_volume_at(spec, i);

		mounts[i] = (dtn_mount){v->name, v->mount_path, v->subpath};
	}
	return mounts;
}

bool cli_sandbox_check(const char *cmd, const dtn_spec *spec)
{
	size_t n;
	dtn_mount *mounts = spec_mounts(spec, &n);
	char *body = NULL;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	rc = dtn_sandbox_create_body(NULL,
				     &(dtn_sandbox_params){.version = 1,
							   .snapshot = "-",
							   .mounts = mounts,
							   .nmounts = n},
				     &body, &err);
	if (rc < 0)
		cli_error("%s: the spec's volumes: %s", cmd, err.message);
	dtn_free(body);
	free(mounts);
	return rc == 0;
}

int cli_sandbox_start(dtn_daytona *c, const char *snapshot, const dtn_spec *spec, FILE *progress,
		      dtn_sandbox **out, dtn_error *err)
{
	size_t n;
	dtn_mount *mounts = spec_mounts(spec, &n);
	int rc;

	dtn_error_clear(err);
	if (n != dtn_spec_volume_count(spec)) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return err->code = DTN_ENOMEM;
	}
	rc = dtn_sandbox_create(c,
				&(dtn_sandbox_params){.version = 1,
						      .snapshot = snapshot,
						      .mounts = mounts,
						      .nmounts = n},
				&(dtn_sandbox_opts){.version = 1,
						    .log = cli_daytona_progress,
						    .payload = progress},
				out, err);
	free(mounts);
	return rc;
}

/* ---- sandbox create ---- */

struct create_opts {
	const char *snapshot, *name, *timeout_text;
	cli_list volumes, env, labels;
	bool json;
	cli_daytona_flags flags;
};

/* The --volume values as mounts; *parsed holds what to free. */
static int parse_mounts(const struct create_opts *o, dtn_mount **parsed)
{
	for (size_t i = 0; i < o->volumes.count; i++) {
		dtn_mount *m = NULL;
		dtn_error err;

		dtn_error_clear(&err);
		if (dtn_mount_parse(o->volumes.items[i], &m, &err) < 0) {
			cli_error("sandbox: --volume: %s", err.message);
			return err.code == DTN_ENOMEM ? EXIT_FAILED : EXIT_USAGE;
		}
		parsed[i] = m;
	}
	return EXIT_OK;
}

/* A NULL-terminated copy of a list (the library's string-list form). */
static const char **strv(const cli_list *l)
{
	const char **v = calloc(l->count + 1, sizeof(*v));

	if (v && l->count)
		memcpy(v, l->items, l->count * sizeof(*v));
	return v;
}

static int create(struct create_opts *o, dtn_mount **parsed)
{
	dtn_mount *mounts = calloc(o->volumes.count + 1, sizeof(*mounts));
	const char **env = strv(&o->env), **labels = strv(&o->labels);
	dtn_sandbox *s = NULL;
	dtn_daytona *c = NULL;
	dtn_error err;
	int code, rc;

	if (!mounts || !env || !labels) {
		cli_error("out of memory");
		code = EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < o->volumes.count; i++)
		mounts[i] = *parsed[i];
	if (!(c = cli_daytona_client(&o->flags, true, &code)))
		goto out;
	dtn_error_clear(&err);
	rc = dtn_sandbox_create(c,
				&(dtn_sandbox_params){.version = 1,
						      .snapshot = o->snapshot,
						      .name = o->name,
						      .mounts = mounts,
						      .nmounts = o->volumes.count,
						      .env = env,
						      .labels = labels},
				&(dtn_sandbox_opts){.version = 1, .log = cli_daytona_progress},
				&s, &err);
	if (rc < 0) {
		code = cli_daytona_fail("sandbox", rc, &err);
	} else if (o->json) {
		code = cli_print_json_text(s->json);
	} else {
		cli_print_sandbox(s, stdout);
		code = EXIT_OK;
	}
out:
	dtn_sandbox_free(s);
	dtn_daytona_free(c);
	free(mounts);
	free(env);
	free(labels);
	return code;
}

static int run_create(int argc, char **argv)
{
	struct create_opts o = {.flags.timeout = 300};
	const cli_option options[] = {
		{"--snapshot", NULL, &o.snapshot},
		{"--name", NULL, &o.name},
		{"--json", &o.json, NULL},
		{"--timeout", NULL, &o.timeout_text},
		{"--api-url", NULL, &o.flags.api_url},
		{"--api-key", NULL, &o.flags.api_key},
		{NULL, NULL, NULL},
	};
	const cli_list_option lists[] = {
		{"--volume", &o.volumes},
		{"--env", &o.env},
		{"--label", &o.labels},
		{NULL, NULL},
	};
	dtn_mount **parsed = NULL;
	int code;

	if (!cli_parse_args_lists(&cli_cmd_sandbox, argc, argv, options, lists, NULL, 0, &code))
		goto out;
	code = EXIT_USAGE;
	if (!o.snapshot || !o.snapshot[0]) {
		cli_error("sandbox: create needs --snapshot S (see dtn-build sandbox --help)");
		goto out;
	}
	if (!cli_daytona_seconds("sandbox", o.timeout_text, &o.flags.timeout))
		goto out;
	if (!(parsed = calloc(o.volumes.count + 1, sizeof(*parsed)))) {
		cli_error("out of memory");
		code = EXIT_FAILED;
		goto out;
	}
	if ((code = parse_mounts(&o, parsed)) == EXIT_OK)
		code = create(&o, parsed);
out:
	for (size_t i = 0; parsed && i < o.volumes.count; i++)
		dtn_free(parsed[i]);
	free(parsed);
	free(o.volumes.items);
	free(o.env.items);
	free(o.labels.items);
	return code;
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (cli_is_help(argv[1])) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "create") == 0)
		return run_create(argc - 1, argv + 1);
	cli_error("sandbox: unknown action \"%s\" (expected create; see dtn-build sandbox --help)",
		  argv[1]);
	return EXIT_USAGE;
}

const cli_command cli_cmd_sandbox = {
	"sandbox", "create a sandbox from a snapshot with volumes mounted", usage, run,
};
