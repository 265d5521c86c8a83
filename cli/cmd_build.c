/*
 * cmd_build.c - `dtn-build build SPEC`: builds the spec's snapshot, with Daytona when
 * credentials are configured (or --daytona), otherwise locally with a container engine.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_daytona.h"

static const char usage[] =
	"usage: dtn-build build SPEC [--local | --daytona] [--engine E] [--name N] [--dry-run]\n"
	"                  [--timeout S] [--if-changed] [--replace] [--json] [--sandbox]\n"
	"                  [--region R] [--no-cache] [--api-url URL] [--api-key KEY]\n"
	"\n"
	"Build the snapshot that SPEC describes. With Daytona credentials configured\n"
	"(DAYTONA_API_KEY, or DAYTONA_JWT_TOKEN, in the environment or in .env.local / .env)\n"
	"the build runs on Daytona; without them it runs locally with the first container\n"
	"engine found (buildah, podman, docker), and a line says so.\n"
	"\n"
	"  --local         build locally with a container engine\n"
	"  --daytona       build on Daytona\n"
	"  --engine E      buildah, podman or docker, or the path of one (local builds)\n"
	"  --name N        the snapshot name (default: snapshot.name of the spec)\n"
	"  --dry-run       show the Dockerfile and the contexts that would be built; build nothing\n"
	"  --timeout S     give up after S seconds\n"
	"  --if-changed    reuse an existing build of the same definition and files\n"
	"  --replace       replace an existing snapshot of the same name (locally: remove the\n"
	"                  images of earlier builds of the name once the new one is built)\n"
	"  --json          print the result as JSON on stdout, a failure's error and last lines\n"
	"                  too (progress goes to stderr)\n"
	"  --sandbox       start a sandbox from the snapshot (Daytona only)\n"
	"  --region R      the region to build in (Daytona only)\n"
	"  --no-cache      do not use or update the digest cache\n"
	"  --api-url URL   the Daytona API (default: DAYTONA_API_URL)\n"
	"  --api-key KEY   the Daytona API key (default: DAYTONA_API_KEY)\n"
	"\n"
	"A local build is tagged dtn/<name>:<identity>, the identity being a SHA-256 digest of\n"
	"the Dockerfile and the contexts' identities. The engine's global options come from\n"
	"DTN_BUILDAH_ARGS, DTN_PODMAN_ARGS or DTN_DOCKER_ARGS (split at blanks), e.g.\n"
	"DTN_BUILDAH_ARGS=\"--storage-driver vfs\"; buildah also honours BUILDAH_ISOLATION and\n"
	"CONTAINERS_STORAGE_CONF (but not STORAGE_DRIVER).\n"
	"\n"
	"Exit codes: 0 built (or reused), 1 the build failed (its last lines are shown), 2 usage\n"
	"or spec error, 3 configuration error (no engine, bad credentials), 130 interrupted.\n";

struct build_opts {
	const char *spec_path;
	const char *engine, *name, *timeout_text, *region;
	const char *api_url, *api_key; /* Daytona only */
	bool local, daytona, dry_run, if_changed, replace, json, sandbox, no_cache;
	unsigned timeout;
	FILE *progress; /* where phases and build output go */
};

/* ---- the Daytona backend ---- */

static void daytona_warn(const char *message, void *payload)
{
	(void)payload;
	cli_error("warning: %s", message);
}

static void daytona_print_contexts(const dtn_build_result *res)
{
	if (!res->ncontexts)
		puts("no build contexts");
	for (size_t i = 0; i < res->ncontexts; i++) {
		const dtn_build_context *bc = &res->contexts[i];

		printf("%s -> %s\n  sha256:%s  %llu %s, %llu bytes", bc->source, bc->archive_path,
		       bc->hash, (unsigned long long)bc->files, bc->files == 1 ? "file" : "files",
		       (unsigned long long)bc->bytes);
		if (bc->links)
			printf(", %llu %s (Daytona makes them empty files)",
			       (unsigned long long)bc->links, bc->links == 1 ? "link" : "links");
		putchar('\n');
	}
}

static json_t *daytona_contexts_json(const dtn_build_result *res)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < res->ncontexts; i++) {
		const dtn_build_context *bc = &res->contexts[i];

		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:b}",
						     "source", bc->source, "archive_path",
						     bc->archive_path, "hash", bc->hash, "files",
						     (json_int_t)bc->files, "bytes",
						     (json_int_t)bc->bytes, "links",
						     (json_int_t)bc->links, "present", bc->present,
						     "uploaded", bc->uploaded));
	}
	return arr;
}

/* --dry-run: the Dockerfile, the contexts and the exact request; nothing was sent. */
static int daytona_dry_run(const struct build_opts *o, dtn_daytona *c,
			   const dtn_build_result *res)
{
	if (o->json)
		return cli_print_json(json_pack(
			"{s:s, s:b, s:s, s:s, s:s, s:o, s:o}", "backend", "daytona", "dry_run", 1,
			"name", o->name, "api_url", dtn_daytona_api_url(c), "dockerfile",
			res->dockerfile, "contexts", daytona_contexts_json(res), "request",
			json_loads(res->request, 0, NULL)), NULL);
	printf("backend: daytona (%s)\nsnapshot: %s\n== Dockerfile\n%s== build contexts (uploaded "
	       "unless already stored)\n",
	       dtn_daytona_api_url(c), o->name, res->dockerfile);
	daytona_print_contexts(res);
	printf("== request\nPOST %s/snapshots\n%s\n(dry run: nothing was sent)\n",
	       dtn_daytona_api_url(c), res->request);
	return EXIT_OK;
}

/* A failed build's last output lines, when there are any, on stderr. */
static void print_last_lines(const char *const *lines)
{
	if (!lines[0])
		return;
	cli_error("the last lines of the build output:");
	for (size_t i = 0; lines[i]; i++)
		fprintf(stderr, "  | %s\n", lines[i]);
}

static int daytona_report(const struct build_opts *o, int rc, const dtn_error *err,
			  const dtn_build_result *res)
{
	int code = cli_daytona_fail("build", rc, err);

	if (rc == DTN_EEXISTS)
		cli_error("use --replace to build it again, or --if-changed to reuse it when "
			  "unchanged");
	if (res && !o->json)
		print_last_lines(res->failed_lines);
	/* --json: stdout says how it ended, however early it failed */
	if (o->json)
		cli_print_json(json_pack("{s:s, s:o, s:o}", "error", err->message, "failed_lines",
					 res ? cli_json_strings(res->failed_lines) : json_array(),
					 "snapshot", res && res->snapshot
							     ? json_loads(res->snapshot->json, 0, NULL)
							     : json_null()),
			       NULL);
	return code;
}

/* --sandbox: a sandbox from the fresh snapshot with the spec's volumes mounted. */
static int daytona_sandbox(const struct build_opts *o, const dtn_spec *spec, dtn_daytona *c,
			   const dtn_snapshot *snap)
{
	dtn_sandbox *sb = NULL;
	dtn_error err = {0};
	int rc, code = EXIT_OK;

	if (!o->json)
		printf("built snapshot %s (%s, id %s)\n", snap->name, snap->state, snap->id);
	rc = cli_sandbox_start(c, snap->name, spec, o->progress, &sb, &err);
	if (rc < 0)
		code = cli_daytona_fail("build", rc, &err);
	else if (o->json)
		code = cli_print_json(json_pack("{s:o, s:o}", "snapshot",
						json_loads(snap->json, 0, NULL), "sandbox",
						json_loads(sb->json, 0, NULL)),
				      NULL);
	else
		cli_print_sandbox(sb, stdout);
	dtn_sandbox_free(sb);
	return code;
}

static int daytona_build(const struct build_opts *o, const dtn_spec *spec, dtn_daytona *c,
			 dtn_builder *b)
{
	const dtn_spec_snapshot *si = dtn_spec_snapshot_info(spec);
	dtn_build_result *res = NULL;
	dtn_error err = {0};
	int rc, code = EXIT_OK;

	rc = dtn_build_daytona(c, b, dtn_spec_image(spec),
			       &(dtn_build_opts){.name = o->name,
						 .cpu = si->cpu,
						 .gpu = si->gpu,
						 .memory = si->memory,
						 .disk = si->disk,
						 .region = o->region ? o->region : si->region,
						 .dry_run = o->dry_run,
						 .if_changed = o->if_changed,
						 .replace = o->replace,
						 .log = cli_daytona_progress,
						 .payload = o->progress},
			       &res, &err);
	if (rc < 0)
		code = daytona_report(o, rc, &err, res);
	else if (o->dry_run)
		code = daytona_dry_run(o, c, res);
	else if (o->sandbox)
		code = daytona_sandbox(o, spec, c, res->snapshot);
	else if (o->json)
		code = cli_print_json(json_loads(res->snapshot->json, 0, NULL), NULL);
	else
		printf("%s snapshot %s (%s, id %s)\n", res->reused ? "reused" : "built",
		       res->snapshot->name, res->snapshot->state, res->snapshot->id);
	dtn_build_result_free(res);
	return code;
}

static int run_daytona(const struct build_opts *o, const dtn_spec *spec)
{
	cli_daytona_flags f = {.api_url = o->api_url, .api_key = o->api_key,
			       .timeout = o->timeout};
	dtn_daytona *c;
	dtn_builder *b = NULL;
	dtn_error err = {0};
	int code;

	if (!o->name || !*o->name) {
		cli_error("build: no snapshot name: set snapshot.name in the spec or give --name");
		return EXIT_USAGE;
	}
	if (o->sandbox && !cli_sandbox_check("build", spec))
		return EXIT_USAGE;
	/* a dry run sends nothing, so it needs no credentials */
	if (!(c = cli_daytona_client(&f, !o->dry_run, &code)))
		return code;
	if (dtn_builder_new(&b, &(dtn_builder_opts){.cache_dir = o->no_cache ? "" :
						       getenv("DTN_CACHE_DIR"),
						       .warn = daytona_warn, .for_daytona = true},
			    &err) < 0) {
		cli_report(&err);
		dtn_daytona_free(c);
		return EXIT_FAILED;
	}
	code = daytona_build(o, spec, c, b);
	if (dtn_builder_save_cache(b, &err) < 0)
		cli_error("warning: the digest cache was not saved: %s", err.message);
	dtn_builder_free(b);
	dtn_daytona_free(c);
	return code;
}

/* Whether Daytona credentials are configured, the way the Daytona client reads them. */
static bool daytona_configured(void)
{
	dtn_daytona *c = NULL;
	dtn_error err;
	bool has = false;

	if (dtn_daytona_new(&c, &(dtn_daytona_opts){.no_credentials = true}, &err) == 0)
		has = dtn_daytona_has_credentials(c);
	else
		cli_error("warning: the Daytona configuration cannot be read: %s", err.message);
	dtn_daytona_free(c);
	return has;
}

/* ---- the local backend ---- */

static void warn(const char *message, void *payload)
{
	(void)payload;
	cli_error("warning: %s", message);
}

static int new_builder(const struct build_opts *o, dtn_builder **b)
{
	dtn_error err;

	if (dtn_builder_new(b, &(dtn_builder_opts){.cache_dir = o->no_cache ? "" :
						      getenv("DTN_CACHE_DIR"),
						      .warn = warn},
			    &err) < 0) {
		cli_report(&err);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* Phases and engine output, printed as they come. */
static int print_line(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	const struct build_opts *o = payload;

	if (kind == DTN_LOG_PHASE)
		fputs("== ", o->progress);
	fwrite(line, 1, len, o->progress);
	fputc('\n', o->progress);
	fflush(o->progress);
	return 0;
}

/* The exit code of a failure of the local build. */
static int local_exit_code(int rc)
{
	switch (rc) {
	case DTN_ENOTFOUND:
		return EXIT_CONFIG;
	case DTN_EINVAL:
	case DTN_EOUTSIDE:
		return EXIT_USAGE;
	default:
		return cli_exit_code(rc);
	}
}

static void report_failure(const struct build_opts *o, const dtn_error *err,
			   const dtn_local_result *res)
{
	if (err->code == DTN_EINTR) {
		cli_error("build: interrupted; the engine was stopped");
		return;
	}
	cli_report(err);
	if (res && !o->json)
		print_last_lines(res->failed_lines);
}

static json_t *result_json(const struct build_opts *o, const dtn_local_result *res,
			   const dtn_error *err)
{
	json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "backend", "local", "name",
				o->name, "engine", res->engine, "image", res->image, "identity",
				res->identity, "reused", res->reused);

	if (obj && err) {
		json_object_set_new(obj, "error", json_string(err->message));
		json_object_set_new(obj, "failed_lines", cli_json_strings(res->failed_lines));
	}
	return obj;
}

static void print_context(size_t i, const dtn_context *c, const dtn_context_id *id)
{
	printf("%s %s -> %s  (%s)\n", dtn_context_kind_name(c->kind), c->source, c->archive_path,
	       c->step);
	printf("  %zu: sha256:%s  %llu %s, %llu bytes\n", i + 1, id->hash,
	       (unsigned long long)id->files, id->files == 1 ? "file" : "files",
	       (unsigned long long)id->bytes);
}

/* Identifies the contexts, printing each (text) or adding it to arr (JSON). */
static int dry_run_contexts(const dtn_image *img, dtn_builder *b, json_t *arr)
{
	for (size_t i = 0; i < dtn_image_context_count(img); i++) {
		const dtn_context *c = dtn_image_context(img, i);
		dtn_context_id *id = NULL;
		dtn_error err;
		int rc = dtn_builder_identify(b, c, &id, &err);

		if (rc < 0) {
			cli_report(&err);
			return local_exit_code(rc);
		}
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}",
							     "source", c->source, "archive_path",
							     c->archive_path, "kind",
							     dtn_context_kind_name(c->kind), "hash",
							     id->hash, "files", (json_int_t)id->files,
							     "bytes", (json_int_t)id->bytes));
		else
			print_context(i, c, id);
		dtn_context_id_free(id);
	}
	return EXIT_OK;
}

/* --dry-run: what would be built, with which engine, under which tag. */
static int dry_run(const struct build_opts *o, const dtn_image *img, dtn_builder *b)
{
	dtn_local_engine eng;
	char identity[65], *image = NULL;
	bool have_engine = dtn_local_find_engine(&eng, o->engine, NULL) == 0;
	json_t *arr = o->json ? json_array() : NULL;
	dtn_error err;
	int rc, code;

	if ((rc = dtn_local_identity(b, img, identity, &err)) < 0 ||
	    (rc = dtn_local_image_name(&image, o->name, identity, &err)) < 0) {
		cli_report(&err);
		json_decref(arr);
		return local_exit_code(rc);
	}
	if (!o->json) {
		printf("backend: local, engine: %s\nimage: %s\n== Dockerfile\n%s== build contexts\n",
		       have_engine ? eng.path : "none found", image, dtn_image_dockerfile(img));
		if (!dtn_image_context_count(img))
			puts("no build contexts");
	}
	code = dry_run_contexts(img, b, arr);
	if (code == EXIT_OK && o->json)
		code = cli_print_json(
			json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:b}", "backend", "local",
				  "name", o->name, "engine",
				  have_engine ? json_string(eng.name) : json_null(), "image", image,
				  "identity", identity, "dockerfile", dtn_image_dockerfile(img),
				  "contexts", json_incref(arr), "dry_run", 1),
			NULL);
	json_decref(arr);
	dtn_free(image);
	return code;
}

static int build_local(const struct build_opts *o, const dtn_image *img, dtn_builder *b)
{
	dtn_local_result *res = NULL;
	dtn_error err;
	int rc = dtn_build_local(b, img, &(dtn_local_opts){
		.name = o->name,
		.engine = o->engine,
		.if_changed = o->if_changed,
		.replace = o->replace,
		.timeout = o->timeout,
		.cancel = &cli_interrupted,
		.log = print_line,
		.payload = (void *)o,
	}, &res, &err);

	if (rc < 0)
		report_failure(o, &err, res);
	if (res && o->json)
		cli_print_json(result_json(o, res, rc < 0 ? &err : NULL), NULL);
	else if (o->json && rc < 0) /* failed before a result: no engine, a bad context, ... */
		cli_print_json(json_pack("{s:s, s:s, s:s, s:o}", "backend", "local", "name", o->name,
					 "error", err.message, "failed_lines", json_array()),
			       NULL);
	else if (rc == 0)
		printf("%s %s with %s\n", res->reused ? "reused" : "built", res->image, res->engine);
	dtn_local_result_free(res);
	return rc < 0 ? local_exit_code(rc) : EXIT_OK;
}

static int run_local(const struct build_opts *o, const dtn_spec *spec)
{
	dtn_builder *b = NULL;
	dtn_error err;
	int code;

	if ((code = new_builder(o, &b)) != EXIT_OK)
		return code;
	if (o->dry_run)
		code = dry_run(o, dtn_spec_image(spec), b);
	else
		code = build_local(o, dtn_spec_image(spec), b);
	if (dtn_builder_save_cache(b, &err) < 0)
		cli_error("warning: the digest cache was not saved: %s", err.message);
	dtn_builder_free(b);
	return code;
}

/* ---- options and the choice of backend ---- */

static bool parse_timeout(struct build_opts *o)
{
	char *end;
	unsigned long v;

	if (!o->timeout_text)
		return true;
	errno = 0;
	v = strtoul(o->timeout_text, &end, 10);
	if (o->timeout_text[0] < '0' || o->timeout_text[0] > '9' || *end || errno || !v ||
	    v > 100000000UL) {
		cli_error("build: --timeout wants a number of seconds, not \"%s\"", o->timeout_text);
		return false;
	}
	o->timeout = (unsigned)v;
	return true;
}

static bool check_options(struct build_opts *o)
{
	if (o->local && o->daytona) {
		cli_error("build: --local and --daytona exclude each other");
		return false;
	}
	if (o->engine && o->daytona) {
		cli_error("build: --engine is for local builds, not with --daytona");
		return false;
	}
	return parse_timeout(o);
}

/* Picks the backend; says so when the local one is chosen for want of credentials. */
static bool choose_local(const struct build_opts *o)
{
	dtn_local_engine eng;

	if (o->local || o->engine)
		return true;
	if (o->daytona || o->api_key || daytona_configured())
		return false;
	if (dtn_local_find_engine(&eng, NULL, NULL) == 0)
		cli_error("no Daytona credentials: building locally with %s", eng.name);
	else
		cli_error("no Daytona credentials: building locally, but no container engine "
			  "(buildah, podman, docker) is installed");
	return true;
}

/* What a local build cannot do. */
static bool local_limits(const struct build_opts *o)
{
	if (o->sandbox) {
		cli_error("build: --sandbox needs the Daytona backend: a sandbox cannot be started "
			  "from a local image");
		return false;
	}
	if (o->region) {
		cli_error("build: --region applies to Daytona builds only");
		return false;
	}
	if (!o->name || !*o->name) {
		cli_error("build: no snapshot name: set snapshot.name in the spec or give --name");
		return false;
	}
	return true;
}

static int run(int argc, char **argv)
{
	struct build_opts o = {.progress = stdout};
	const cli_option options[] = {
		{"--local", &o.local, NULL},
		{"--daytona", &o.daytona, NULL},
		{"--engine", NULL, &o.engine},
		{"--name", NULL, &o.name},
		{"--dry-run", &o.dry_run, NULL},
		{"--timeout", NULL, &o.timeout_text},
		{"--if-changed", &o.if_changed, NULL},
		{"--replace", &o.replace, NULL},
		{"--json", &o.json, NULL},
		{"--sandbox", &o.sandbox, NULL},
		{"--region", NULL, &o.region},
		{"--no-cache", &o.no_cache, NULL},
		{.name = "--api-url", .value = &o.api_url},
		{.name = "--api-key", .value = &o.api_key},
		{NULL, NULL, NULL},
	};
	dtn_spec *spec;
	int code;

	if (!cli_parse_args(&cli_cmd_build, argc, argv, options, &o.spec_path, 1, &code))
		return code;
	if (!check_options(&o))
		return EXIT_USAGE;
	if (o.json)
		o.progress = stderr;
	if (!(spec = cli_load_spec(o.spec_path, &code)))
		return code;
	if (!o.name)
		o.name = dtn_spec_snapshot_info(spec)->name;
	if (!choose_local(&o))
		code = run_daytona(&o, spec);
	else if (!local_limits(&o))
		code = EXIT_USAGE;
	else
		code = run_local(&o, spec);
	dtn_spec_free(spec);
	if (cli_interrupted && code != EXIT_OK)
		code = EXIT_INTERRUPTED;
	return code;
}

const cli_command cli_cmd_build = {
	"build", "build the snapshot of a spec (on Daytona, or locally)", usage, run,
};
