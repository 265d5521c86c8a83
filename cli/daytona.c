/*
 * daytona.c - what the Daytona commands of dtn-build share: the client made from their flags,
 * failure reports, progress lines and the server's answers printed as JSON.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_daytona.h"
#include "cli_otel.h"

/* ---- the client ---- */

static void warn(const char *message, void *payload)
{
	(void)payload;
	cli_error("warning: %s", message);
}

bool cli_daytona_seconds(const char *cmd, const char *text, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!text)
		return true;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end || errno || !v || v > 100000000UL) {
		cli_error("%s: --timeout wants a number of seconds, not \"%s\"", cmd, text);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

dtn_daytona *cli_daytona_client(const cli_daytona_flags *f, bool need_credentials,
				int *exit_code)
{
	dtn_daytona *c = NULL;
	dtn_error err = {0};
	int rc;

	dtn_error_clear(&err);
	rc = dtn_daytona_new(&c,
			     &(dtn_daytona_opts){.api_url = f->api_url,
						 .api_key = f->api_key,
						 .target = f->region,
						 .no_credentials = !need_credentials,
						 .timeout_ms = (long)f->timeout * 1000,
						 .cancel = &cli_interrupted,
						 .warn = warn},
			     &err);
	if (rc < 0) {
		cli_report(&err);
		*exit_code = cli_exit_code(rc);
		return NULL;
	}
	cli_otel_daytona(c);
	*exit_code = EXIT_OK;
	return c;
}

int cli_daytona_fail(const char *cmd, int rc, const dtn_error *err)
{
	if (rc == DTN_EINTR || cli_interrupted) {
		cli_error("%s: interrupted", cmd);
		return EXIT_INTERRUPTED;
	}
	cli_report(err);
	return cli_exit_code(rc);
}

/* ---- output ---- */

/* Whether to colour what goes to `out`: a terminal, and NO_COLOR not set (no-color.org). */
static bool use_color(FILE *out)
{
	const char *no = getenv("NO_COLOR");

	return isatty(fileno(out)) && !(no && *no);
}

int cli_daytona_progress(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	FILE *out = payload ? payload : stderr;
	bool color = kind != DTN_LOG_OUTPUT && use_color(out);

	if (kind == DTN_LOG_PHASE)
		fputs(color ? "\033[1m== " : "== ", out);
	else if (kind == DTN_LOG_STATE)
		fputs(color ? "\033[36m-- state: " : "-- state: ", out);
	fwrite(line, 1, len, out);
	fputs(color ? "\033[0m\n" : "\n", out);
	fflush(out);
	return 0;
}

int cli_print_json(json_t *j, const char *failure)
{
	char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	json_decref(j);
	if (!text) {
		if (failure)
			cli_error("%s", failure);
		return EXIT_FAILED;
	}
	puts(text);
	free(text);
	return EXIT_OK;
}

int cli_print_json_text(const char *text)
{
	return cli_print_json(json_loads(text, 0, NULL), "cannot print the server's answer as JSON");
}

json_t *cli_json_strings(const char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

void cli_json_append(json_t **arr, const char *text)
{
	if (*arr && json_array_append_new(*arr, json_loads(text, 0, NULL)) < 0) {
		json_decref(*arr);
		*arr = NULL;
	}
}
