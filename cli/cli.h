/*
 * cli.h - what the files of dtn-build share: the command table, exit codes and output helpers.
 * The CLI is the only part of dtn that prints or exits.
 */
#ifndef DTN_CLI_H
#define DTN_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "dtn.h"

/* Exit codes; documented and stable. */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,    /* the operation failed */
	EXIT_USAGE = 2,     /* bad usage or a bad spec */
	EXIT_CONFIG = 3,    /* configuration or authentication */
	EXIT_INTERRUPTED = 130
};

typedef struct cli_command {
	const char *name;
	const char *summary;
	const char *usage; /* the full --help text */
	int (*run)(int argc, char **argv);
} cli_command;

extern const cli_command cli_cmd_dockerfile;
extern const cli_command cli_cmd_context;
extern const cli_command cli_cmd_build;
extern const cli_command cli_cmd_volume;
extern const cli_command cli_cmd_sandbox;

/* The values of an option that may be given several times, in order, borrowed from argv. The
 * array is the command's to free() once it is done with them. */
typedef struct cli_list {
	const char **items;
	size_t count;
} cli_list;

/* One option of a command: `--name` sets *set; `--name VALUE` or `--name=VALUE` sets *value. */
typedef struct cli_option {
	const char *name; /* with its dashes: "--json" */
	bool *set;        /* for a flag */
	const char **value; /* for an option with a value */
} cli_option;

/* An option with a value that may repeat: every `--name VALUE` appends VALUE to *list. */
typedef struct cli_list_option {
	const char *name;
	cli_list *list;
} cli_list_option;

/*
 * Reads a command's arguments: its options (a NULL-terminated table), -h/--help, and exactly
 * `npos` positional arguments into pos[]. Returns true when the command should go on; false
 * when it should stop with *exit_code (help printed: 0; a usage error reported: 2).
 */
bool cli_parse_args(const cli_command *cmd, int argc, char **argv, const cli_option *options,
		    const char **pos, int npos, int *exit_code);

/* cli_parse_args with options that may repeat (`lists`, a NULL-terminated table, may be NULL). */
bool cli_parse_args_lists(const cli_command *cmd, int argc, char **argv,
			  const cli_option *options, const cli_list_option *lists,
			  const char **pos, int npos, int *exit_code);

/* Prints "dtn-build: message" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints an error record ("dtn-build: FILE:LINE:COLUMN: message"). */
void cli_report(const dtn_error *err);

/* The exit code for a library error code met while loading or checking a spec. */
int cli_spec_exit_code(int code);

/*
 * Set by SIGINT/SIGTERM (main installs the handler). Long operations hand its address to the
 * library as their cancel flag and stop cleanly; the command then exits with EXIT_INTERRUPTED.
 */
extern volatile int cli_interrupted;

/* The exit code for a library error code met while running an operation (network, build). */
int cli_exit_code(int code);

/* Whether argv[i] asks for help. */
bool cli_is_help(const char *arg);

/* Loads the spec at path; on failure reports the error and returns NULL with *exit_code set. */
dtn_spec *cli_load_spec(const char *path, int *exit_code);

/* ---- JSON output (daytona.c) ---- */

/*
 * Prints j (a reference the function takes; NULL accepted) indented on stdout: EXIT_OK, or
 * EXIT_FAILED after reporting `failure` (when not NULL) if j is NULL or cannot be printed.
 */
int cli_print_json(json_t *j, const char *failure);

/* Prints JSON text (a server's answer) indented on stdout; EXIT_OK or EXIT_FAILED. */
int cli_print_json_text(const char *text);

/* The strings of a NULL-terminated list (NULL: none) as a JSON array; NULL when memory runs
 * out. */
json_t *cli_json_strings(const char *const *v);

/* Appends the JSON text to the array *arr; when it cannot (bad JSON, no memory), the array is
 * freed and *arr becomes NULL, which later calls leave as it is. */
void cli_json_append(json_t **arr, const char *text);

/* ---- shared by the volume, sandbox and build commands (cmd_sandbox.c) ---- */

/* "sandbox NAME (ID) is STATE, from snapshot S" and one line per mounted volume. */
void cli_print_sandbox(const dtn_sandbox *s, FILE *out);

/*
 * Starts a sandbox from `snapshot` with the spec's volumes: mounted (each created when missing
 * and waited for until ready), the sandbox waited for until started, progress printed to
 * `progress` as cli_daytona_progress prints it. Returns 0 or a library error code with *err
 * filled (err must not be NULL); *out (may be NULL) receives the started sandbox
 * (dtn_sandbox_free). For `build SPEC --sandbox`.
 */
int cli_sandbox_start(dtn_daytona *c, const char *snapshot, const dtn_spec *spec, FILE *progress,
		      dtn_sandbox **out, dtn_error *err);

/* Whether the spec's volumes would be mounted (dtn_mount_check, no two at one path); reports
 * the first problem for `cmd` when not. Checked before a build that ends in a sandbox. */
bool cli_sandbox_check(const char *cmd, const dtn_spec *spec);

#endif
