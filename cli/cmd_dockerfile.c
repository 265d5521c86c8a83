/*
 * cmd_dockerfile.c - `dtn-build dockerfile SPEC`: the Dockerfile on stdout.
 */
#include "cli.h"

static const char usage[] =
	"usage: dtn-build dockerfile SPEC\n"
	"\n"
	"Print the Dockerfile that SPEC (a dtn YAML spec) describes. Nothing is printed on\n"
	"stdout when the spec has an error; the error goes to stderr as FILE:LINE:COLUMN.\n";

static int run(int argc, char **argv)
{
	const char *path;
	dtn_spec *spec;
	int code;

	if (!cli_parse_args(&cli_cmd_dockerfile, argc, argv, NULL, &path, 1, &code))
		return code;
	if (!(spec = cli_load_spec(path, &code)))
		return code;
	fputs(dtn_image_dockerfile(dtn_spec_image(spec)), stdout);
	dtn_spec_free(spec);
	if (fflush(stdout) != 0) {
		cli_error("cannot write the Dockerfile to standard output");
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

const cli_command cli_cmd_dockerfile = {
	"dockerfile", "print the Dockerfile of a spec", usage, run,
};
