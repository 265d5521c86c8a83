/*
 * cli_otel.h - dtn-build's telemetry (telemetry.c) and the trace viewer (cmd_trace.c).
 */
#ifndef DTN_CLI_OTEL_H
#define DTN_CLI_OTEL_H

#include "cli.h"

extern const cli_command cli_cmd_trace;

/*
 * Takes the global telemetry options out of argv, wherever they are before a "--": --otel,
 * --no-otel, --trace-file PATH (or =PATH) and --otel-summary. Returns false after reporting a
 * usage error (*exit_code set).
 */
bool cli_otel_options(int *argc, char **argv, int *exit_code);

/* Starts telemetry as the options and the environment say, and the root span
 * "dtn-build COMMAND" (argv[0] is the command). A provider that cannot start is reported and
 * left off. */
void cli_otel_start(int argc, char **argv);

/*
 * Ends the root span with process.exit.code (and error.type, "cancelled" after an interrupt),
 * records dtn.build.duration and dtn.builds for `build`, prints the summary when asked and
 * flushes within the budget (DTN_OTEL_FLUSH_TIMEOUT, 2 s). Returns exit_code.
 */
int cli_otel_finish(int exit_code);

/* The root span, for a command to add attributes (daytona.api.url, dtn.dry_run, ...); NULL
 * when telemetry is off. */
dtn_span *cli_otel_root(void);

/* daytona.api.url and daytona.target of the client a command uses, on the root span. */
void cli_otel_daytona(const dtn_daytona *c);

/* Remembers the library error behind a failure (called by cli_exit_code). */
void cli_otel_note_code(int code);

/* Remembers a reported library error, code and message, for the root span (cli_report). */
void cli_otel_note_error(const dtn_error *err);

/* dtn.spec.path and dtn.spec.sha256 of the spec a command loaded, on the root span. */
void cli_otel_spec(const char *path);

#endif
