/*
 * fuzz_spec.c - feeds arbitrary bytes to the YAML spec loader. The spec claims to live in a
 * temporary directory made once at start-up, holding a few small files so that relative paths
 * in the input can name something real; nothing is written while inputs run. A spec that loads
 * is read through every accessor; a rejected one must leave no spec behind and come with its
 * code and a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char name[512];

static const struct {
	const char *path;
	const char *text;
} files[] = {
	{"requirements.txt", "requests\n"},
	{"pyproject.toml", "[project]\ndependencies = [\"a\"]\n"
			   "[project.optional-dependencies]\ndev = [\"b\"]\n"},
	{"hello.txt", "hello\n"},
	{"src/main.py", "print(1)\n"},
	{"Dockerfile", "FROM alpine\nCOPY hello.txt /x/\n"},
};

static void remove_files(void)
{
	char path[1024];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].path);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/src", dir);
	rmdir(path);
	rmdir(dir);
}

static void make_files(void)
{
	char path[1024];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/dtn-fuzz-spec-XXXXXX");
	if (!mkdtemp(dir))
		__builtin_trap();
	snprintf(path, sizeof(path), "%s/src", dir);
	mkdir(path, 0755);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].path);
		if (!(f = fopen(path, "w")))
			__builtin_trap();
		fputs(files[i].text, f);
		fclose(f);
	}
	snprintf(name, sizeof(name), "%s/dtn.yaml", dir);
	atexit(remove_files);
}

static void check_loaded(const dtn_spec *spec)
{
	const dtn_image *img = dtn_spec_image(spec);
	const dtn_spec_snapshot *snap = dtn_spec_snapshot_info(spec);
	size_t n = dtn_image_context_count(img);

	if (dtn_image_status(img) != 0 || !dtn_image_dockerfile(img) || !snap)
		__builtin_trap();
	if (snap->cpu < 0 || snap->gpu < 0 || snap->memory < 0 || snap->disk < 0)
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		const dtn_context *c = dtn_image_context(img, i);

		if (!c || !c->source || !c->path || !c->archive_path || !c->ignore)
			__builtin_trap();
	}
	for (size_t i = 0; i < dtn_spec_volume_count(spec); i++) {
		const dtn_spec_volume *v = dtn_spec_volume_at(spec, i);

		if (!v || !v->name || !v->mount_path || v->mount_path[0] != '/')
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dtn_spec *spec = NULL;
	dtn_error err;
	char line[4096];
	int rc;

	if (!name[0])
		make_files();
	rc = dtn_spec_load_buffer(&spec, (const char *)data, size, name, &err);
	if (rc == 0) {
		check_loaded(spec);
	} else {
		if (rc > 0 || spec || err.code != rc || !err.message[0] || !err.file[0] ||
		    err.line < 0 || err.column < 0)
			__builtin_trap();
		dtn_error_format(&err, line, sizeof(line));
	}
	dtn_spec_free(spec);
	return 0;
}
