/*
 * fuzz_trace.c - feeds arbitrary trace files to `dtn-build trace show FILE` (cli/cmd_trace.c,
 * compiled into this target): the reader of OTLP/JSON lines and the waterfall drawn from them.
 *
 * The first byte picks the options (a bar width, or none so the terminal's is looked up, and
 * --no-color); the rest is the file, held in memory and opened by its /proc/self/fd path. The
 * drawing goes to /dev/null. The command must end with 0 or 1 (some line was bad), never a
 * usage error, whatever the file holds.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "cli_otel.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What cli/main.c provides to the commands, reduced to what `trace show` needs. */
void cli_error(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
}

bool cli_parse_args(const cli_command *cmd, int argc, char **argv, const cli_option *options,
		    const char **pos, int npos, int *exit_code)
{
	int got = 0;

	(void)cmd;
	*exit_code = EXIT_USAGE;
	for (int i = 1; i < argc; i++) {
		const cli_option *o = options;

		if (argv[i][0] != '-' || !argv[i][1]) {
			if (got == npos)
				return false;
			pos[got++] = argv[i];
			continue;
		}
		while (o->name && strcmp(o->name, argv[i]) != 0)
			o++;
		if (!o->name || (o->value && i + 1 >= argc))
			return false;
		if (o->set)
			*o->set = true;
		else
			*o->value = argv[++i];
	}
	if (got < npos)
		return false;
	*exit_code = EXIT_OK;
	return true;
}

static int file_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_WRONLY);

	(void)argc;
	(void)argv;
	if (null < 0 || dup2(null, STDOUT_FILENO) < 0 ||
	    (file_fd = memfd_create("trace", 0)) < 0)
		abort();
	close(null);
	setenv("COLUMNS", "132", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], width[16];
	char *argv[8] = {(char *)"trace", (char *)"show", path};
	int argc = 3, code;

	if (size < 1)
		return 0;
	if (ftruncate(file_fd, 0) < 0 ||
	    pwrite(file_fd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file_fd);
	if (data[0] & 1)
		argv[argc++] = (char *)"--no-color";
	if (data[0] & 2) {
		snprintf(width, sizeof(width), "%d", 10 + (data[0] >> 2) * 6);
		argv[argc++] = (char *)"--width";
		argv[argc++] = width;
	}
	argv[argc] = NULL;
	code = cli_cmd_trace.run(argc, argv);
	fflush(stdout);
	if (code != EXIT_OK && code != EXIT_FAILED)
		__builtin_trap();
	return 0;
}
