/*
 * cmd_logs.c - `dtn-build logs SNAPSHOT [--follow]`: the build log of a Daytona snapshot.
 */
#include <string.h>

#include "cli.h"
#include "cli_daytona.h"

static const char usage[] =
	"usage: dtn-build logs SNAPSHOT [--follow] [--api-url URL] [--api-key KEY] [--timeout S]\n"
	"\n"
	"Print the build log of SNAPSHOT (a name or an id) on standard output. With --follow,\n"
	"a build that is still running is followed until it ends, its states printed on\n"
	"standard error; a finished build's log is printed whole either way.\n"
	"\n"
	"  --follow        follow a running build to its end\n"
	"  --api-url URL   the Daytona API (default: DAYTONA_API_URL)\n"
	"  --api-key KEY   the API key (default: DAYTONA_API_KEY)\n"
	"  --timeout S     give up after S seconds\n"
	"\n"
	"Exit codes: 0 done, 1 failed (no such snapshot, no build log: made from an image, or\n"
	"no longer on a runner), 2 usage error, 3 configuration or authentication error,\n"
	"130 interrupted.\n";

/* Output lines to stdout, states to stderr. */
static int print_line(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	(void)payload;
	if (kind != DTN_LOG_OUTPUT)
		return cli_daytona_progress(kind, line, len, stderr);
	fwrite(line, 1, len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	return 0;
}

static int run(int argc, char **argv)
{
	cli_daytona_flags flags = {0};
	const char *name = NULL, *timeout_text = NULL;
	bool follow = false;
	const cli_option options[] = {
		{.name = "--follow", .set = &follow},
		{.name = "-f", .set = &follow},
		{.name = "--api-url", .value = &flags.api_url},
		{.name = "--api-key", .value = &flags.api_key},
		{.name = "--timeout", .value = &timeout_text},
		{.name = NULL},
	};
	dtn_daytona *c;
	dtn_error err = {0};
	int code, rc;

	if (!cli_parse_args(&cli_cmd_logs, argc, argv, options, &name, 1, &code))
		return code;
	if (!cli_daytona_seconds("logs", timeout_text, &flags.timeout))
		return EXIT_USAGE;
	if (!(c = cli_daytona_client(&flags, true, &code)))
		return code;
	rc = dtn_snapshot_logs(c, name, follow, print_line, NULL, &err);
	code = rc < 0 ? cli_daytona_fail("logs", rc, &err) : EXIT_OK;
	dtn_daytona_free(c);
	return code;
}

const cli_command cli_cmd_logs = {
	"logs", "print the build log of a Daytona snapshot", usage, run,
};
