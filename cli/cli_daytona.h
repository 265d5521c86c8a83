/*
 * cli_daytona.h - what the Daytona commands of dtn-build (snapshot, logs, build, volume,
 * sandbox) share (daytona.c): the client made from their flags, failure reports and progress
 * lines.
 */
#ifndef DTN_CLI_DAYTONA_H
#define DTN_CLI_DAYTONA_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"

extern const cli_command cli_cmd_snapshot;
extern const cli_command cli_cmd_logs;

/* The --api-url and --api-key lines of a Daytona command's --help. */
#define CLI_DAYTONA_FLAGS_HELP \
	"  --api-url URL   the Daytona API (default: DAYTONA_API_URL, else\n" \
	"                  https://app.daytona.io/api)\n" \
	"  --api-key KEY   the API key (default: DAYTONA_API_KEY); prefer the variable, as\n" \
	"                  other users of this machine may see command lines\n"

/* The flags every Daytona command takes. NULL strings: from the environment / .env files. */
typedef struct cli_daytona_flags {
	const char *api_url;   /* --api-url */
	const char *api_key;   /* --api-key (never printed) */
	const char *region;    /* the target, when a command has --region */
	unsigned timeout;      /* --timeout in seconds; 0: none */
} cli_daytona_flags;

/* Reads --timeout's value into *out (NULL text: leaves it); false after reporting a bad one. */
bool cli_daytona_seconds(const char *cmd, const char *text, unsigned *out);

/*
 * A Daytona client from the flags, the environment and .env.local / .env, with cli_interrupted
 * as its cancel flag and warnings on stderr. NULL after reporting why, with *exit_code set (3
 * for missing or contradictory credentials).
 */
dtn_daytona *cli_daytona_client(const cli_daytona_flags *f, bool need_credentials,
				int *exit_code);

/* Reports a failed operation of `cmd` and returns its exit code (130 when interrupted). */
int cli_daytona_fail(const char *cmd, int rc, const dtn_error *err);

/*
 * A dtn_log_fn printing build progress to a FILE * (payload): output lines as they are, states
 * and phases marked ("== phase", "-- state"), in colour on a terminal unless NO_COLOR is set.
 */
int cli_daytona_progress(dtn_log_kind kind, const char *line, size_t len, void *payload);

#endif
