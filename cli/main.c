/*
 * main.c - dtn-build: finds the subcommand in the table and runs it.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_otel.h"
#include "cli_daytona.h"

static const cli_command *const commands[] = {
	&cli_cmd_dockerfile,
	&cli_cmd_context,
	&cli_cmd_build,
	&cli_cmd_snapshot,
	&cli_cmd_logs,
	&cli_cmd_volume,
	&cli_cmd_sandbox,
	&cli_cmd_trace,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fputs("usage: dtn-build COMMAND [OPTIONS] [ARGS]\n"
	      "\n"
	      "Turn an environment defined in YAML into a Dockerfile and build contexts.\n"
	      "\n"
	      "Commands:\n", out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "Options:\n"
	      "  -h, --help     show this help (or a command's, after its name)\n"
	      "  --version      show the version\n"
	      "  --otel         export traces and metrics over OTLP/HTTP (OTEL_EXPORTER_OTLP_*;\n"
	      "                 default endpoint http://localhost:4318)\n"
	      "  --no-otel      no telemetry, whatever the environment says\n"
	      "  --trace-file PATH  write the traces and metrics to PATH as OTLP/JSON lines\n"
	      "                 (see `dtn-build trace show PATH`)\n"
	      "  --otel-summary print a telemetry summary on stderr at the end\n"
	      "\n"
	      "Exit codes: 0 success, 1 the operation failed, 2 usage or spec error,\n"
	      "3 configuration or authentication error, 130 interrupted.\n", out);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("dtn-build: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_report(const dtn_error *err)
{
	char buf[4096];

	dtn_error_format(err, buf, sizeof(buf));
	cli_error("%s", buf);
	cli_otel_note_error(err);
}

volatile int cli_interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

/* A second Ctrl-C while the first is being honoured ends the process at once. */
static void install_interrupt_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cli_exit_code(int code)
{
	cli_otel_note_code(code);
	switch (code) {
	case DTN_OK:
		return EXIT_OK;
	case DTN_EINTR:
		return EXIT_INTERRUPTED;
	case DTN_EAUTH:
	case DTN_ECONFIG:
		return EXIT_CONFIG;
	case DTN_EINVAL:
	case DTN_ESYNTAX:
	case DTN_EOUTSIDE:
		return EXIT_USAGE;
	default:
		return EXIT_FAILED;
	}
}

int cli_spec_exit_code(int code)
{
	return code == DTN_ENOMEM || code == DTN_EIO ? EXIT_FAILED : EXIT_USAGE;
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static const cli_option *find_option(const cli_option *options, const char *arg, size_t len)
{
	for (; options && options->name; options++)
		if (strlen(options->name) == len && strncmp(options->name, arg, len) == 0)
			return options;
	return NULL;
}

static bool list_push(cli_list *l, const char *value)
{
	const char **items = realloc(l->items, (l->count + 1) * sizeof(*items));

	if (!items) {
		cli_error("out of memory");
		return false;
	}
	items[l->count++] = value;
	l->items = items;
	return true;
}

/* A repeatable option's value at argv[*i]; returns false after reporting a usage error. */
static bool parse_list_option(const cli_command *cmd, const cli_list_option *l, int argc,
			      char **argv, int *i)
{
	const char *eq = strchr(argv[*i], '=');

	if (!eq && *i + 1 >= argc) {
		cli_error("%s: %s needs a value", cmd->name, l->name);
		return false;
	}
	return list_push(l->list, eq ? eq + 1 : argv[++*i]);
}

/* One option at argv[*i]; returns false after reporting a usage error. */
static bool parse_option(const cli_command *cmd, const cli_option *options,
			 const cli_list_option *lists, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const cli_option *o = find_option(options, arg, len);

	for (; !o && lists && lists->name; lists++)
		if (strlen(lists->name) == len && strncmp(lists->name, arg, len) == 0)
			return parse_list_option(cmd, lists, argc, argv, i);
	if (!o) {
		cli_error("%s: unknown option \"%s\" (see dtn-build %s --help)", cmd->name, arg,
			  cmd->name);
		return false;
	}
	if (o->set && !eq) {
		*o->set = true;
		return true;
	}
	if (!o->value) {
		cli_error("%s: %s takes no value", cmd->name, o->name);
		return false;
	}
	if (!eq && *i + 1 >= argc) {
		cli_error("%s: %s needs a value", cmd->name, o->name);
		return false;
	}
	*o->value = eq ? eq + 1 : argv[++*i];
	return true;
}

bool cli_parse_args_lists(const cli_command *cmd, int argc, char **argv,
			  const cli_option *options, const cli_list_option *lists,
			  const char **pos, int npos, int *exit_code)
{
	int got = 0;

	*exit_code = EXIT_USAGE;
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(cmd->usage, stdout);
			*exit_code = EXIT_OK;
			return false;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			if (!parse_option(cmd, options, lists, argc, argv, &i))
				return false;
		} else if (got == npos) {
			cli_error("%s: unexpected argument \"%s\"", cmd->name, argv[i]);
			return false;
		} else {
			pos[got++] = argv[i];
		}
	}
	if (got < npos) {
		fputs(cmd->usage, stderr);
		return false;
	}
	*exit_code = EXIT_OK;
	return true;
}

bool cli_parse_args(const cli_command *cmd, int argc, char **argv, const cli_option *options,
		    const char **pos, int npos, int *exit_code)
{
	return cli_parse_args_lists(cmd, argc, argv, options, NULL, pos, npos, exit_code);
}

dtn_spec *cli_load_spec(const char *path, int *exit_code)
{
	dtn_spec *spec = NULL;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	if ((rc = dtn_spec_load(&spec, path, &err)) < 0) {
		cli_report(&err);
		*exit_code = cli_spec_exit_code(rc);
		return NULL;
	}
	cli_otel_spec(path);
	*exit_code = EXIT_OK;
	return spec;
}

int main(int argc, char **argv)
{
	int code;

	if (!cli_otel_options(&argc, argv, &code))
		return code;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		if (argc > 2)
			for (size_t i = 0; i < NCOMMANDS; i++)
				if (strcmp(argv[2], commands[i]->name) == 0) {
					fputs(commands[i]->usage, stdout);
					return EXIT_OK;
				}
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("dtn-build %s\n", DTN_VERSION);
		return EXIT_OK;
	}
	install_interrupt_handlers();
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i]->name) == 0) {
			cli_otel_start(argc - 1, argv + 1);
			return cli_otel_finish(commands[i]->run(argc - 1, argv + 1));
		}
	cli_error("unknown command \"%s\" (see dtn-build --help)", argv[1]);
	return EXIT_USAGE;
}
