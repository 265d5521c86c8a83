/*
 * test_local_build.c - dtn-build builds real images with buildah, and the images are looked
 * into: files at their paths with their bytes and permission bits, ENV, WORKDIR, USER,
 * ENTRYPOINT, CMD, LABEL, EXPOSE and VOLUME as the spec says; the parity corrections (COPY of
 * paths with blanks, quotes and '$'; ENTRYPOINT/CMD items with quotes and backslashes) build as
 * intended; a failing RUN fails with exit code 1 showing its lines; --if-changed reuses;
 * Ctrl-C stops cleanly.
 *
 * Everything happens in a storage of its own (vfs driver, chroot isolation) under
 * $DTN_TEST_TMP (else $TMPDIR), removed at the end. The images are tiny: the busybox base of
 * scripts/base-image, and on it a stand-in for python:3.12.10-slim-bookworm whose pip, python,
 * apt-get and debconf-set-selections only record their arguments, so the debian_slim and pip
 * steps run without a network. buildah is run directly, never under valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_ARGS 32

static char buildah[PATH_MAX];    /* the engine; "" when there is none */
static char store[PATH_MAX];      /* its storage: store/root and store/run */
static char top[PATH_MAX];        /* specs and their files */
static char engine_args[PATH_MAX * 3];

static const char weird_name[] = "a b 'q' \"d\" $x.txt";
static const char weird_dir[] = "/opt/dir with 'space' $y";
static const unsigned char binary[] = {0, 1, 2, 0xff, 0xfe, '\n', 0, 'z'};

/* ---- running things ---- */

static tu_run run_argv(const char *const *argv, const char *cwd)
{
	return tu_run_cmd((char *const *)argv, cwd);
}

/* buildah with the test storage and the given arguments (NULL-terminated). */
static tu_run bah(const char *first, ...)
{
	const char *argv[MAX_ARGS] = {buildah, "--root", NULL, "--runroot", NULL,
				      "--storage-driver", "vfs"};
	char root[PATH_MAX], run[PATH_MAX];
	size_t n = 7;
	va_list ap;

	snprintf(root, sizeof(root), "%s/root", store);
	snprintf(run, sizeof(run), "%s/run", store);
	argv[2] = root;
	argv[4] = run;
	va_start(ap, first);
	for (const char *a = first; a && n < MAX_ARGS - 1; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	return run_argv(argv, NULL);
}

/* dtn-build build SPEC with more arguments (NULL-terminated), in the spec's directory. */
static tu_run dtn_build(const char *spec, ...)
{
	const char *argv[MAX_ARGS] = {tu_dtn_build(), "build"};
	char path[PATH_MAX];
	size_t n = 3;
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", top, spec);
	argv[2] = path;
	va_start(ap, spec);
	for (const char *a = va_arg(ap, const char *); a && n < MAX_ARGS - 1;
	     a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	return run_argv(argv, top);
}

static void assert_ok(tu_run *r, const char *what)
{
	if (r->status != 0)
		fail_msg("%s: status %d\nstdout: %s\nstderr: %s", what, r->status, r->out, r->err);
}

static void assert_contains(const char *text, const char *needle)
{
	if (!text || !strstr(text, needle))
		fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(null)", needle);
}

/* ---- files ---- */

static void write_file(const char *rel, const void *data, size_t len, mode_t mode)
{
	char path[PATH_MAX];
	FILE *f;

	tu_write(top, rel, "");
	snprintf(path, sizeof(path), "%s/%s", top, rel);
	if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		fail_msg("cannot write %s", path);
	chmod(path, mode);
}

static void write_text(const char *rel, const char *text)
{
	write_file(rel, text, strlen(text), 0644);
}

/* Checks a regular file inside the image's root: bytes, permission bits and owner. */
static void check_file(const char *root, const char *path, const void *data, size_t len,
		       mode_t mode)
{
	char full[PATH_MAX * 2], *got;
	struct stat st;
	FILE *f;

	snprintf(full, sizeof(full), "%s%s", root, path);
	if (lstat(full, &st) != 0)
		fail_msg("%s is not in the image", path);
	if (!S_ISREG(st.st_mode))
		fail_msg("%s is not a regular file", path);
	if ((st.st_mode & 07777) != mode)
		fail_msg("%s has mode %o, not %o", path, (unsigned)(st.st_mode & 07777),
			 (unsigned)mode);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal((size_t)st.st_size, len);
	got = malloc(len + 1);
	assert_non_null(got);
	assert_non_null(f = fopen(full, "rb"));
	assert_int_equal(fread(got, 1, len, f), len);
	fclose(f);
	assert_memory_equal(got, data, len);
	free(got);
}

static void check_text(const char *root, const char *path, const char *text)
{
	check_file(root, path, text, strlen(text), 0644);
}

static void check_absent(const char *root, const char *path)
{
	char full[PATH_MAX * 2];
	struct stat st;

	snprintf(full, sizeof(full), "%s%s", root, path);
	if (lstat(full, &st) == 0)
		fail_msg("%s should not be in the image", path);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = calloc(1, 65536);

	assert_non_null(text);
	if (f) {
		size_t n = fread(text, 1, 65535, f);

		text[n] = '\0';
		fclose(f);
	}
	return text;
}

/* ---- images ---- */

/* The image of a `build --json` run. */
static json_t *result_of(tu_run *r)
{
	json_error_t je;
	json_t *j = json_loads(r->out, 0, &je);

	if (!j)
		fail_msg("not JSON (%s): %s\nstderr: %s", je.text, r->out, r->err);
	return j;
}

/* buildah inspect's OCIv1.config (or Docker.config) of an image. */
static json_t *config_of(const char *image, const char *format)
{
	tu_run r = bah("inspect", "--type", "image", image, NULL);
	json_t *j, *config;

	assert_ok(&r, "buildah inspect");
	assert_non_null(j = json_loads(r.out, 0, NULL));
	config = json_object_get(json_object_get(j, format), "config");
	assert_non_null(config);
	json_incref(config);
	json_decref(j);
	tu_run_free(&r);
	return config;
}

static json_t *image_config(const char *image)
{
	return config_of(image, "OCIv1");
}

static void assert_strv(json_t *arr, const char *const *want)
{
	size_t n = 0;

	assert_true(json_is_array(arr));
	for (; want[n]; n++) {
		const char *got = json_string_value(json_array_get(arr, n));

		if (!got || strcmp(got, want[n]))
			fail_msg("item %zu is \"%s\", not \"%s\"", n, got ? got : "(none)", want[n]);
	}
	assert_int_equal(json_array_size(arr), n);
}

static bool env_has(json_t *env, const char *pair)
{
	size_t i;
	json_t *v;

	json_array_foreach(env, i, v)
		if (!strcmp(json_string_value(v), pair))
			return true;
	return false;
}

/* A working container of the image, mounted; its root path in root. */
static void mount_image(const char *image, char *ctr, size_t csize, char *root, size_t rsize)
{
	tu_run r = bah("from", "--pull=never", "-q", image, NULL), m;

	assert_ok(&r, "buildah from");
	snprintf(ctr, csize, "%.*s", (int)strcspn(r.out, "\n"), r.out);
	tu_run_free(&r);
	m = bah("mount", ctr, NULL);
	assert_ok(&m, "buildah mount");
	snprintf(root, rsize, "%.*s", (int)strcspn(m.out, "\n"), m.out);
	tu_run_free(&m);
}

static void unmount_image(const char *ctr)
{
	tu_run r = bah("umount", ctr, NULL), rm;

	tu_run_free(&r);
	rm = bah("rm", ctr, NULL);
	assert_ok(&rm, "buildah rm");
	tu_run_free(&rm);
}

static bool image_exists(const char *image)
{
	tu_run r = bah("inspect", "--type", "image", image, NULL);
	bool ok = r.status == 0;

	tu_run_free(&r);
	return ok;
}

/* ---- the fixture ---- */

static bool find_buildah(void)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : ""), *save = NULL;
	bool found = false;

	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		snprintf(buildah, sizeof(buildah), "%s/buildah", d);
		found = access(buildah, X_OK) == 0;
	}
	free(copy);
	if (!found)
		buildah[0] = '\0';
	return found;
}

/* The stand-in python image: busybox plus tools that record how they were called. */
static void make_python_stub(void)
{
	static const char *const tools[] = {"pip", "python", "apt-get"};
	char dir[PATH_MAX], rel[64];
	tu_run r;

	for (size_t i = 0; i < 3; i++) {
		char text[256];

		snprintf(rel, sizeof(rel), "stub/tools/%s", tools[i]);
		snprintf(text, sizeof(text), "#!/bin/sh\nmkdir -p /var/log\n"
					     "echo \"%s $*\" >> /var/log/stub.log\n", tools[i]);
		write_file(rel, text, strlen(text), 0755);
	}
	static const char debconf[] =
		"#!/bin/sh\nmkdir -p /var/log\n"
		"echo \"debconf-set-selections: $(cat)\" >> /var/log/stub.log\n";
	write_file("stub/tools/debconf-set-selections", debconf, strlen(debconf), 0755);
	write_text("stub/Dockerfile", "FROM localhost/dtn/busybox:1\nCOPY tools/ /usr/local/bin/\n");
	snprintf(dir, sizeof(dir), "%s/stub", top);
	r = bah("bud", "-q", "-t", "docker.io/library/python:3.12.10-slim-bookworm", dir, NULL);
	assert_ok(&r, "building the python stand-in");
	tu_run_free(&r);
}

static void make_base(void)
{
	char script[PATH_MAX];
	const char *argv[] = {script, NULL};
	tu_run r;

	snprintf(script, sizeof(script), "%s/../../scripts/base-image", tu_data_dir());
	r = run_argv(argv, NULL);
	assert_ok(&r, "scripts/base-image");
	assert_contains(r.out, "localhost/dtn/busybox:1 ready");
	tu_run_free(&r);
	assert_true(image_exists("localhost/dtn/busybox:1"));
}

static const char all_spec[] =
	"version: 1\n"
	"image:\n"
	"  debian_slim: \"3.12\"\n"
	"  steps:\n"
	"    - pip_install: [requests, \"pytest>=8\"]\n"
	"    - pip_install:\n"
	"        packages: [torch]\n"
	"        index_url: https://download.pytorch.org/whl/cpu\n"
	"        extra_index_urls: [https://example.org/simple]\n"
	"        find_links: [/wheels]\n"
	"        pre: true\n"
	"        extra_options: --no-cache-dir\n"
	"    - pip_install_from_requirements: requirements.txt\n"
	"    - pip_install_from_pyproject: {path: pyproject.toml, optional_dependencies: [dev]}\n"
	"    - apt_get: [git, curl]\n"
	"    - add_local_file: {local: files/run.sh, remote: /opt/app/run.sh}\n"
	"    - add_local_file: [files/data.bin, /opt/app/]\n"
	"    - add_local_dir: {local: tree, remote: /opt/tree, ignore: [\"**/*.tmp\"]}\n"
	"    - add_local_file: {local: \"odd/a b 'q' \\\"d\\\" $x.txt\", remote: /opt/odd/}\n"
	"    - add_local_dir: {local: \"dir with space\", remote: \"/opt/dir with 'space' $y\"}\n"
	"    - run_commands: [\"echo one > /opt/one.txt\",\n"
	"                     [sh, -c, \"echo two words > /opt/two.txt\"]]\n"
	"    - dockerfile_commands:\n"
	"        commands: [\"COPY extra.txt /opt/extra.txt\", \"RUN touch /opt/df-ran\"]\n"
	"        context_dir: ctx\n"
	"    - env: {APP_HOME: /opt/app, PORT: 8000, QUOTED: \"it's \\\"q\\\" $HOME \\\\n\"}\n"
	"    - label: {org.example.title: \"all \\\"steps\\\"\", version: 1}\n"
	"    - workdir: /opt/app\n"
	"    - expose: [8000, 9000/udp]\n"
	"    - volume: [/data]\n"
	"    - user: daytona\n"
	"    - entrypoint: [/bin/sh, -c, \"echo \\\"$0\\\" 'a\\\\b'\"]\n"
	"    - cmd: [run, \"x\\\"y\", \"back\\\\slash\"]\n"
	"snapshot:\n"
	"  name: e2e-all\n";

static void write_all_spec(void)
{
	char link[PATH_MAX], odd[64];

	write_text("all/dtn.yaml", all_spec);
	write_text("all/.dockerignore", "**/*.log\n");
	write_text("all/requirements.txt", "requests==2.32.3\n");
	write_text("all/pyproject.toml", "[project]\nname = \"p\"\n"
					  "dependencies = [\"flask>=3\", \"click\"]\n"
					  "[project.optional-dependencies]\ndev = [\"pytest\"]\n");
	write_file("all/files/run.sh", "#!/bin/sh\necho run\n", 19, 0755);
	write_file("all/files/data.bin", binary, sizeof(binary), 0640);
	write_text("all/tree/a.txt", "alpha\n");
	write_file("all/tree/sub/b.txt", "bravo\n", 6, 0600);
	write_text("all/tree/sub/skip.tmp", "left out by the step\n");
	write_text("all/tree/debug.log", "left out by .dockerignore\n");
	snprintf(link, sizeof(link), "%s/all/tree/link", top);
	assert_int_equal(symlink("a.txt", link), 0);
	snprintf(odd, sizeof(odd), "all/odd/%s", weird_name);
	write_text(odd, "odd bytes\n");
	write_text("all/dir with space/f", "in a spaced dir\n");
	write_text("all/ctx/extra.txt", "extra\n");
}

static const char from_dockerfile_spec[] =
	"version: 1\n"
	"image:\n"
	"  from_dockerfile: docker/Dockerfile\n"
	"  steps:\n"
	"    - env: {AFTER: \"the Dockerfile\"}\n"
	"snapshot:\n"
	"  name: e2e-dockerfile\n";

static int setup(void **st)
{
	const char *base = getenv("DTN_TEST_TMP");
	char dir[PATH_MAX];

	(void)st;
	if (!find_buildah())
		return 0;
	if (!base || !*base)
		base = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s", base && *base ? base : "/tmp");
	mkdir(dir, 0755);
	snprintf(store, sizeof(store), "%s/e2e-store-XXXXXX", dir);
	/* the storage is named in DTN_BUILDAH_ARGS, which is split at blanks */
	if (!mkdtemp(store) || strpbrk(store, " \t\n")) {
		fprintf(stderr, "cannot make the buildah storage under %s\n", dir);
		return -1;
	}
	snprintf(top, sizeof(top), "%s", tu_mkdtemp());
	snprintf(engine_args, sizeof(engine_args),
		 "--root %s/root --runroot %s/run --storage-driver vfs", store, store);
	setenv("DTN_BUILDAH_ARGS", engine_args, 1);
	setenv("BUILDAH_ISOLATION", "chroot", 1);
	unsetenv("STORAGE_DRIVER");
	unsetenv("DAYTONA_API_KEY");
	unsetenv("DAYTONA_JWT_TOKEN");
	make_base();
	make_python_stub();
	write_all_spec();
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	if (!buildah[0])
		return 0;
	tu_run r = bah("rm", "--all", NULL);
	tu_run_free(&r);
	r = bah("rmi", "--all", "--force", NULL);
	tu_run_free(&r);
	tu_rmtree(store);
	tu_rmtree(top);
	return 0;
}

static void need_buildah(void)
{
	if (!buildah[0]) {
		print_message("buildah is not installed (scripts/deps installs it): "
			      "local builds are not tested\n");
		skip();
	}
}

/* ---- the tests ---- */

static void check_all_files(const char *root)
{
	char path[PATH_MAX], target[64] = {0};
	ssize_t n;

	check_file(root, "/opt/app/run.sh", "#!/bin/sh\necho run\n", 19, 0755);
	check_file(root, "/opt/app/data.bin", binary, sizeof(binary), 0640);
	check_text(root, "/opt/tree/a.txt", "alpha\n");
	check_file(root, "/opt/tree/sub/b.txt", "bravo\n", 6, 0600);
	check_absent(root, "/opt/tree/sub/skip.tmp");
	check_absent(root, "/opt/tree/debug.log");
	snprintf(path, sizeof(path), "%s/opt/tree/link", root);
	n = readlink(path, target, sizeof(target) - 1);
	assert_true(n > 0);
	assert_string_equal(target, "a.txt");
	snprintf(path, sizeof(path), "/opt/odd/%s", weird_name);
	check_text(root, path, "odd bytes\n");
	snprintf(path, sizeof(path), "%s/f", weird_dir);
	check_text(root, path, "in a spaced dir\n");
	check_text(root, "/.requirements.txt", "requests==2.32.3\n");
	check_text(root, "/opt/extra.txt", "extra\n");
	check_text(root, "/opt/one.txt", "one\n");
	check_text(root, "/opt/two.txt", "two words\n");
	check_file(root, "/opt/df-ran", "", 0, 0644);
}

/* What the stand-in tools were asked to do, in order. */
static void check_tool_calls(const char *root)
{
	char path[PATH_MAX];
	char *log;

	snprintf(path, sizeof(path), "%s/var/log/stub.log", root);
	log = read_all(path);
	assert_string_equal(log,
			    "apt-get update\n"
			    "apt-get install -y gcc gfortran build-essential\n"
			    "pip install --upgrade pip\n"
			    "debconf-set-selections: debconf debconf/frontend select Noninteractive\n"
			    "python -m pip install pytest>=8 requests\n"
			    "python -m pip install torch --find-links /wheels --index-url "
			    "https://download.pytorch.org/whl/cpu --extra-index-url "
			    "https://example.org/simple --pre --no-cache-dir\n"
			    "python -m pip install -r /.requirements.txt\n"
			    "python -m pip install click flask>=3 pytest\n"
			    "apt-get update\n"
			    "apt-get install -y git curl\n");
	free(log);
}

static void check_all_config(const char *image)
{
	json_t *c = image_config(image), *env = json_object_get(c, "Env");
	json_t *labels = json_object_get(c, "Labels"), *ports = json_object_get(c, "ExposedPorts");

	assert_true(env_has(env, "APP_HOME=/opt/app"));
	assert_true(env_has(env, "PORT=8000"));
	assert_true(env_has(env, "QUOTED=it's \"q\" $HOME \\n"));
	assert_string_equal(json_string_value(json_object_get(c, "WorkingDir")), "/opt/app");
	assert_string_equal(json_string_value(json_object_get(c, "User")), "daytona");
	assert_strv(json_object_get(c, "Entrypoint"),
		    DTN_STRV("/bin/sh", "-c", "echo \"$0\" 'a\\b'"));
	assert_strv(json_object_get(c, "Cmd"), DTN_STRV("run", "x\"y", "back\\slash"));
	assert_string_equal(json_string_value(json_object_get(labels, "org.example.title")),
			    "all \"steps\"");
	assert_string_equal(json_string_value(json_object_get(labels, "version")), "1");
	assert_int_equal(json_object_size(ports), 2);
	assert_non_null(json_object_get(ports, "8000/tcp"));
	assert_non_null(json_object_get(ports, "9000/udp"));
	assert_non_null(json_object_get(json_object_get(c, "Volumes"), "/data"));
	json_decref(c);
}

static void test_e2e_local_build__every_step_kind(void **st)
{
	char ctr[256], root[PATH_MAX];
	const char *image;
	json_t *res;
	tu_run r;

	(void)st;
	need_buildah();
	r = dtn_build("all/dtn.yaml", "--local", "--json", NULL);
	assert_ok(&r, "build all/dtn.yaml");
	res = result_of(&r);
	assert_string_equal(json_string_value(json_object_get(res, "backend")), "local");
	assert_string_equal(json_string_value(json_object_get(res, "engine")), "buildah");
	assert_false(json_is_true(json_object_get(res, "reused")));
	image = json_string_value(json_object_get(res, "image"));
	assert_non_null(image);
	assert_int_equal(strncmp(image, "dtn/e2e-all:", 12), 0);
	assert_string_equal(image + 12, json_string_value(json_object_get(res, "identity")));
	assert_contains(r.err, ": CMD [\"run\", \"x\\\"y\", \"back\\\\slash\"]\n");
	check_all_config(image);
	mount_image(image, ctr, sizeof(ctr), root, sizeof(root));
	check_all_files(root);
	check_tool_calls(root);
	unmount_image(ctr);
	json_decref(res);
	tu_run_free(&r);
}

static void test_e2e_local_build__from_dockerfile(void **st)
{
	char ctr[256], root[PATH_MAX];
	json_t *res, *c;
	tu_run r;

	(void)st;
	need_buildah();
	write_text("df/dtn.yaml", from_dockerfile_spec);
	write_text("df/docker/Dockerfile",
		   "FROM localhost/dtn/busybox:1\n"
		   "COPY src/ /app/src/\n"
		   "ADD notes.txt /app/\n"
		   "COPY [\"with space.txt\", \"/app/with space.txt\"]\n"
		   "RUN cat /app/src/main.sh > /app/copied\n"
		   "HEALTHCHECK --interval=7s CMD test -f /app/copied\n"
		   "ENTRYPOINT [\"/bin/sh\", \"/app/src/main.sh\"]");
	write_file("df/docker/src/main.sh", "echo main\n", 10, 0755);
	write_text("df/docker/notes.txt", "notes\n");
	write_text("df/docker/with space.txt", "spaced\n");
	write_text("df/docker/unused.txt", "not copied\n");
	r = dtn_build("df/dtn.yaml", "--local", "--json", NULL);
	assert_ok(&r, "build df/dtn.yaml");
	res = result_of(&r);
	c = image_config(json_string_value(json_object_get(res, "image")));
	assert_true(env_has(json_object_get(c, "Env"), "AFTER=the Dockerfile"));
	assert_strv(json_object_get(c, "Entrypoint"), DTN_STRV("/bin/sh", "/app/src/main.sh"));
	json_decref(c);
	/* built as Docker builds it: the health check is kept */
	c = config_of(json_string_value(json_object_get(res, "image")), "Docker");
	assert_strv(json_object_get(json_object_get(c, "Healthcheck"), "Test"),
		    DTN_STRV("CMD-SHELL", "test -f /app/copied"));
	mount_image(json_string_value(json_object_get(res, "image")), ctr, sizeof(ctr), root,
		    sizeof(root));
	check_file(root, "/app/src/main.sh", "echo main\n", 10, 0755);
	check_text(root, "/app/notes.txt", "notes\n");
	check_text(root, "/app/with space.txt", "spaced\n");
	check_text(root, "/app/copied", "echo main\n");
	check_absent(root, "/app/unused.txt");
	unmount_image(ctr);
	json_decref(c);
	json_decref(res);
	tu_run_free(&r);
}

static void test_e2e_local_build__failing_run_exits_1(void **st)
{
	tu_run r, c;

	(void)st;
	need_buildah();
	write_text("fail/dtn.yaml",
		   "version: 1\nimage:\n  base: localhost/dtn/busybox:1\n  steps:\n"
		   "    - run_commands:\n"
		   "        - echo all is well\n"
		   "        - echo failing-line-XYZ >&2; exit 7\n"
		   "        - echo never reached\n"
		   "snapshot: {name: e2e-fail}\n");
	r = dtn_build("fail/dtn.yaml", "--local", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.out, "all is well");
	assert_null(strstr(r.out, "never reached"));
	/* the failure names the image and shows the failing lines again, on stderr */
	assert_contains(r.err, "the build of dtn/e2e-fail:");
	assert_contains(r.err, "the last lines of the build output:");
	assert_contains(r.err, "  | failing-line-XYZ");
	assert_contains(r.err, "exit status 7");
	tu_run_free(&r);
	c = bah("images", "--noheading", "--format", "{{.Name}}", NULL);
	assert_ok(&c, "buildah images");
	assert_null(strstr(c.out, "e2e-fail"));
	tu_run_free(&c);
	c = bah("containers", "--quiet", NULL);
	assert_string_equal(c.out, "");
	tu_run_free(&c);
}

static char *image_id(const char *image)
{
	tu_run r = bah("inspect", "--type", "image", "--format", "{{.FromImageID}}", image, NULL);
	char *id;

	assert_ok(&r, "buildah inspect --format");
	id = strdup(r.out);
	tu_run_free(&r);
	return id;
}

static void test_e2e_local_build__if_changed_reuses(void **st)
{
	json_t *first, *second, *third;
	char *id1, *id2, old[512];
	tu_run r;

	(void)st;
	need_buildah();
	write_text("again/dtn.yaml",
		   "version: 1\nimage:\n  base: localhost/dtn/busybox:1\n  steps:\n"
		   "    - add_local_file: [data.txt, /data.txt]\n"
		   "snapshot: {name: e2e-again}\n");
	write_text("again/data.txt", "first\n");
	/* no backend named and no Daytona credentials: local, and it says so */
	r = dtn_build("again/dtn.yaml", "--if-changed", "--json", NULL);
	assert_ok(&r, "first build");
	assert_contains(r.err, "no Daytona credentials: building locally with buildah");
	first = result_of(&r);
	assert_false(json_is_true(json_object_get(first, "reused")));
	tu_run_free(&r);
	snprintf(old, sizeof(old), "%s", json_string_value(json_object_get(first, "image")));
	id1 = image_id(old);

	r = dtn_build("again/dtn.yaml", "--local", "--if-changed", "--json", NULL);
	assert_ok(&r, "second build");
	second = result_of(&r);
	assert_true(json_is_true(json_object_get(second, "reused")));
	assert_string_equal(json_string_value(json_object_get(second, "image")), old);
	assert_contains(r.err, "is already built: reusing it");
	assert_null(strstr(r.err, "STEP 1/"));
	tu_run_free(&r);
	id2 = image_id(old);
	assert_string_equal(id1, id2);

	/* a changed file is a new identity; --replace removes the earlier build */
	write_text("again/data.txt", "second\n");
	r = dtn_build("again/dtn.yaml", "--local", "--if-changed", "--replace", "--json", NULL);
	assert_ok(&r, "third build");
	third = result_of(&r);
	assert_false(json_is_true(json_object_get(third, "reused")));
	assert_string_not_equal(json_string_value(json_object_get(third, "identity")),
				json_string_value(json_object_get(first, "identity")));
	assert_true(image_exists(json_string_value(json_object_get(third, "image"))));
	assert_false(image_exists(old));
	tu_run_free(&r);
	free(id1);
	free(id2);
	json_decref(first);
	json_decref(second);
	json_decref(third);
}

/* Starts dtn-build with its output in `log` (and TMPDIR `tmp` when not NULL); returns its pid. */
static pid_t start_build(const char *spec, const char *log, const char *tmp)
{
	char path[PATH_MAX];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", top, spec);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		if (tmp)
			setenv("TMPDIR", tmp, 1);
		execl(tu_dtn_build(), tu_dtn_build(), "build", path, "--local", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/*
 * Once the build's log (at most two minutes on) holds `marker`, interrupts it and checks that it
 * exits 130; the log then, to free.
 */
static char *interrupt_at(pid_t pid, const char *log, const char *marker)
{
	char *text = NULL;
	int status = 0;

	for (int i = 0; i < 12000; i++) {
		free(text);
		text = read_all(log);
		if (strstr(text, marker) || waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	assert_contains(text, marker);
	free(text);
	kill(pid, SIGINT);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	text = read_all(log);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 130)
		fail_msg("dtn-build ended with status %d, not exit code 130:\n%s", status, text);
	return text;
}

static void test_e2e_local_build__interrupt_stops_cleanly(void **st)
{
	char log[PATH_MAX], tmp[PATH_MAX], *text = NULL;
	pid_t pid;
	tu_run c;

	(void)st;
	need_buildah();
	write_text("hang/dtn.yaml",
		   "version: 1\nimage:\n  base: localhost/dtn/busybox:1\n  steps:\n"
		   "    - run_commands: [\"echo started-sleeping; sleep 300\"]\n"
		   "snapshot: {name: e2e-hang}\n");
	snprintf(log, sizeof(log), "%s/hang.log", top);
	snprintf(tmp, sizeof(tmp), "%s/hang-tmp", top);
	mkdir(tmp, 0755);
	pid = start_build("hang/dtn.yaml", log, tmp);
	text = interrupt_at(pid, log, "started-sleeping\n");
	assert_contains(text, "interrupted");
	free(text);
	c = bah("containers", "--quiet", NULL);
	assert_string_equal(c.out, "");
	tu_run_free(&c);
	c = bah("images", "--noheading", "--format", "{{.Name}}", NULL);
	assert_null(strstr(c.out, "e2e-hang"));
	tu_run_free(&c);
	/* the build directory is gone */
	{
		tu_run ls = run_argv(DTN_STRV("/bin/ls", "-A", tmp), NULL);

		assert_string_equal(ls.out, "");
		tu_run_free(&ls);
	}
}

/* Interrupted outside a RUN step (here while copying a file), buildah leaves its working
 * container and its temporary files: dtn-build removes both, and nothing else. */
static void test_e2e_local_build__interrupt_during_copy_leaves_nothing(void **st)
{
	char log[PATH_MAX], tmp[PATH_MAX], big[PATH_MAX], other[128], *text = NULL;
	pid_t pid;
	tu_run r;

	(void)st;
	need_buildah();
	write_text("copy/dtn.yaml",
		   "version: 1\nimage:\n  base: localhost/dtn/busybox:1\n  steps:\n"
		   "    - add_local_file: [big.bin, /big.bin]\n"
		   "    - run_commands: [\"echo started-sleeping; sleep 300\"]\n"
		   "snapshot: {name: e2e-copy}\n");
	write_text("copy/big.bin", "");
	snprintf(big, sizeof(big), "%s/copy/big.bin", top);
	assert_int_equal(truncate(big, 32 << 20), 0);
	/* a working container that was there before: it stays */
	r = bah("from", "--pull=never", "-q", "localhost/dtn/busybox:1", NULL);
	assert_ok(&r, "buildah from");
	snprintf(other, sizeof(other), "%.*s", (int)strcspn(r.out, "\n"), r.out);
	tu_run_free(&r);
	snprintf(log, sizeof(log), "%s/copy.log", top);
	snprintf(tmp, sizeof(tmp), "%s/copy-tmp", top);
	mkdir(tmp, 0755);
	pid = start_build("copy/dtn.yaml", log, tmp);
	text = interrupt_at(pid, log, "STEP 2/3: COPY");
	free(text);
	r = bah("containers", "--format", "{{.ContainerName}}", NULL);
	assert_ok(&r, "buildah containers");
	assert_string_equal(r.out, "busybox-working-container\n");
	tu_run_free(&r);
	r = bah("rm", other, NULL);
	tu_run_free(&r);
	r = run_argv(DTN_STRV("/bin/ls", "-A", tmp), NULL);
	assert_string_equal(r.out, "");
	tu_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e2e_local_build__every_step_kind),
		cmocka_unit_test(test_e2e_local_build__from_dockerfile),
		cmocka_unit_test(test_e2e_local_build__failing_run_exits_1),
		cmocka_unit_test(test_e2e_local_build__if_changed_reuses),
		cmocka_unit_test(test_e2e_local_build__interrupt_stops_cleanly),
		cmocka_unit_test(test_e2e_local_build__interrupt_during_copy_leaves_nothing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
