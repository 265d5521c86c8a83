/*
 * test_local.c - the local backend against a stand-in engine (a shell script named buildah that
 * records its arguments and the build context it was given): finding the engine, image names
 * and identities, the build directory, output lines, failures, cancel, timeouts and --replace.
 * The real engines are exercised by tests/e2e/test_local_build.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtn.h"
#include "testutil.h"

static char top[PATH_MAX];    /* the scratch directory of the whole file */
static char fake[PATH_MAX];   /* the stand-in engine: top/bin/buildah */
static char state[PATH_MAX];  /* where it records what it saw: top/state */
static char tmp[PATH_MAX];    /* where build directories are made; its name needs quoting */

/*
 * The stand-in engine. `inspect` (or `exists`) succeeds when state/exists is there; `images` prints
 * state/images; `rmi` records its image; `containers` prints state/containers, `rm` records its
 * container; `bud` (or `build`) records the Dockerfile, the Dockerfile's own ignore file, a
 * copy of the context and its TMPDIR, leaves files
 * there, adds two containers to state/containers when it is there, prints some lines, and fails,
 * hangs or succeeds as the Dockerfile asks.
 */
static const char fake_engine[] =
	"#!/bin/sh\n"
	"d=$FAKE_STATE\n"
	"for a in \"$@\"; do printf '[%s]' \"$a\"; done >> \"$d/calls\"\n"
	"echo >> \"$d/calls\"\n"
	"for a in \"$@\"; do\n"
	"  case \"$a\" in\n"
	"  inspect|exists) [ -e \"$d/exists\" ] && exit 0; echo 'image not known' >&2; exit 125 ;;\n"
	"  images) cat \"$d/images\"; exit 0 ;;\n"
	"  rmi) for b in \"$@\"; do last=$b; done; echo \"$last\" >> \"$d/removed\"; exit 0 ;;\n"
	"  containers) cat \"$d/containers\" 2>/dev/null; exit 0 ;;\n"
	"  rm) for b in \"$@\"; do last=$b; done; echo \"$last\" >> \"$d/rm\"; exit 0 ;;\n"
	"  bud) break ;;\n"
	"  esac\n"
	"done\n"
	"prev=; for a in \"$@\"; do\n"
	"  case \"$prev\" in -f) df=$a ;; -t) tag=$a ;; esac; prev=$a; ctx=$a\n"
	"done\n"
	"rm -rf \"$d/context\"; cp -a \"$ctx\" \"$d/context\"; cp \"$df\" \"$d/Dockerfile\"\n"
	"[ ! -e \"$df.dockerignore\" ] || cp \"$df.dockerignore\" \"$d/dfignore\"\n"
	"echo \"$TMPDIR\" > \"$d/tmpdir\"\n"
	"[ -z \"$TMPDIR\" ] || { mkdir \"$TMPDIR/engine\"; echo x > \"$TMPDIR/engine/f\"; }\n"
	"echo \"STEP 1/2: FROM base\"\n"
	"echo 'to stderr' >&2\n"
	"if [ -e \"$d/containers\" ]; then\n"
	"  printf 'ffff1111   busybox-working-container-1\\ncccc3333   mine\\n' >> \"$d/containers\"\n"
	"fi\n"
	"if grep -q HANG \"$df\"; then\n"
	"  sleep 300 & echo $! > \"$d/sleeper\"; echo 'hanging'; wait; exit 0\n"
	"fi\n"
	"if grep -q LONG \"$df\"; then head -c 20000 /dev/zero | tr '\\0' x; echo; fi\n"
	"if grep -q FAIL \"$df\"; then\n"
	"  i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo \"output $i\"; done\n"
	"  echo 'Error: building at STEP \"RUN false\": exit status 1' >&2; exit 1\n"
	"fi\n"
	"printf 'Successfully tagged %s' \"$tag\"\n";

static void path_of(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", top, rel);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	text = calloc(1, 1 << 20);
	if (text)
		len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	if (text)
		text[len] = '\0';
	return text;
}

static void assert_file_is(const char *path, const char *text)
{
	char *got = slurp(path);

	if (!got)
		fail_msg("%s is missing", path);
	assert_string_equal(got, text);
	free(got);
}

static void assert_contains(const char *text, const char *needle)
{
	if (!text || !strstr(text, needle))
		fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(null)", needle);
}

static int setup(void **st)
{
	char p[PATH_MAX];

	(void)st;
	snprintf(top, sizeof(top), "%s", tu_mkdtemp());
	path_of(fake, sizeof(fake), "bin/buildah");
	tu_write(top, "bin/buildah", fake_engine);
	chmod(fake, 0755);
	path_of(state, sizeof(state), "state");
	path_of(tmp, sizeof(tmp), "tmp dir 'q' \"$HOME\"");
	mkdir(tmp, 0755);
	setenv("FAKE_STATE", state, 1);
	unsetenv("DTN_BUILDAH_ARGS");
	setenv("BUILDAH_ISOLATION", "chroot", 1);
	unsetenv("BUILDAH_FORMAT");
	tu_write(top, "proj/app/main.sh", "#!/bin/sh\necho main\n");
	tu_write(top, "proj/app/secret.txt", "only for me\n");
	tu_write(top, "proj/app/debug.log", "noise\n");
	tu_write(top, "proj/notes.txt", "notes\n");
	tu_write(top, "proj/.dockerignore", "**/*.log\n");
	path_of(p, sizeof(p), "proj/app/main.sh");
	chmod(p, 0755);
	path_of(p, sizeof(p), "proj/app/secret.txt");
	chmod(p, 0600);
	path_of(p, sizeof(p), "proj/app/link");
	if (symlink("main.sh", p) != 0)
		return -1;
	tu_write(top, "proj/app/suid", "#!/bin/sh\n");
	path_of(p, sizeof(p), "proj/app/suid");
	chmod(p, 04755);
	tu_write(top, "proj/app/shared/f", "in a set-group-ID directory\n");
	path_of(p, sizeof(p), "proj/app/shared");
	chmod(p, 02775);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	tu_rmtree(top);
	return 0;
}

/* A fresh state directory for each test. */
static int reset(void **st)
{
	(void)st;
	tu_rmtree(state);
	mkdir(state, 0755);
	return 0;
}

/* An image on a base with the project's files and the given extra instruction. */
static dtn_image *project_image(const char *extra)
{
	char proj[PATH_MAX];
	dtn_image *img = dtn_image_base("localhost/dtn/busybox:1");

	path_of(proj, sizeof(proj), "proj");
	dtn_image_resolve_from(img, proj);
	dtn_image_add_local_dir(img, "app", "/srv/app", NULL);
	dtn_image_add_local_file(img, "notes.txt", "/srv/");
	if (extra)
		dtn_image_run_commands(img, DTN_STRV(extra));
	assert_int_equal(dtn_image_status(img), 0);
	return img;
}

static dtn_builder *new_builder(void)
{
	dtn_builder *b;

	assert_int_equal(dtn_builder_new(&b, &(dtn_builder_opts){.cache_dir = ""}, NULL), 0);
	return b;
}

/* What the log callback saw. */
typedef struct seen {
	char text[65536];
	size_t lines, phases, longest;
	int stop_at;          /* return non-zero at this line (1-based); 0: never */
	volatile int *cancel; /* set when a line says "hanging" */
} seen;

static int record(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	seen *s = payload;
	size_t used = strlen(s->text);

	assert_int_equal(strlen(line), len);
	assert_null(memchr(line, '\n', len));
	snprintf(s->text + used, sizeof(s->text) - used, "%s%.*s\n",
		 kind == DTN_LOG_PHASE ? "== " : "", len > 200 ? 200 : (int)len, line);
	if (kind == DTN_LOG_PHASE)
		s->phases++;
	else
		s->lines++;
	if (len > s->longest)
		s->longest = len;
	if (s->cancel && strstr(line, "hanging"))
		*s->cancel = 1;
	return s->stop_at && (int)s->lines == s->stop_at;
}

static int build(const dtn_image *img, dtn_local_opts o, seen *s, dtn_local_result **res,
		 dtn_error *err)
{
	dtn_builder *b = new_builder();
	int rc;

	o.engine = o.engine ? o.engine : fake;
	o.name = o.name ? o.name : "demo";
	o.tmp_dir = tmp;
	o.log = record;
	o.payload = s;
	rc = dtn_build_local(b, img, &o, res, err);
	dtn_builder_free(b);
	return rc;
}

static bool on_path(const char *name)
{
	char *path = strdup(getenv("PATH") ? getenv("PATH") : ""), *save = NULL;
	bool found = false;

	for (char *d = strtok_r(path, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/%s", d, name);
		found = access(p, X_OK) == 0;
	}
	free(path);
	return found;
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static void test_builder_local__finds_engines(void **st)
{
	dtn_local_engine e;
	dtn_error err;
	char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL, bin[PATH_MAX];

	(void)st;
	assert_int_equal(dtn_local_find_engine(&e, fake, &err), 0);
	assert_string_equal(e.name, "buildah");
	assert_string_equal(e.path, fake);
	assert_int_equal(dtn_local_find_engine(&e, "rkt", &err), DTN_EINVAL);
	assert_contains(err.message, "rkt");
	path_of(bin, sizeof(bin), "state/nothing.sh");
	tu_write(state, "nothing.sh", "#!/bin/sh\n");
	chmod(bin, 0755);
	assert_int_equal(dtn_local_find_engine(&e, bin, &err), DTN_EINVAL);
	path_of(bin, sizeof(bin), "bin");
	setenv("PATH", bin, 1);
	assert_int_equal(dtn_local_find_engine(&e, NULL, &err), 0);
	assert_string_equal(e.path, fake);
	assert_int_equal(dtn_local_find_engine(&e, "podman", &err), DTN_ENOTFOUND);
	assert_contains(err.message, "podman");
	setenv("PATH", state, 1);
	assert_int_equal(dtn_local_find_engine(&e, NULL, &err), DTN_ENOTFOUND);
	assert_contains(err.message, "buildah, podman or docker");
	if (path)
		setenv("PATH", path, 1);
	free(path);
}

static void test_builder_local__image_names(void **st)
{
	static const char *const cases[][2] = {
		{"hello", "dtn/hello:ID"},
		{"My Snapshot/1.0", "dtn/my-snapshot-1.0:ID"},
		{"-a..b__c--d-", "dtn/a-b-c-d:ID"},
		{"x_y.z", "dtn/x_y.z:ID"},
	};
	dtn_error err;
	char *name;

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(dtn_local_image_name(&name, cases[i][0], "ID", &err), 0);
		assert_string_equal(name, cases[i][1]);
		dtn_free(name);
	}
	assert_int_equal(dtn_local_image_name(&name, "--..", "ID", &err), DTN_EINVAL);
	assert_null(name);
	assert_contains(err.message, "--..");
}

static void test_builder_local__identity_follows_content(void **st)
{
	char a[65], b2[65], c[65], d[65], moved[PATH_MAX], src[PATH_MAX];
	dtn_builder *b = new_builder();
	dtn_image *img = project_image(NULL), *other = project_image("echo more"), *img2;

	(void)st;
	assert_int_equal(dtn_local_identity(b, img, a, NULL), 0);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(dtn_local_identity(b, img, b2, NULL), 0);
	assert_string_equal(a, b2);
	assert_int_equal(dtn_local_identity(b, other, c, NULL), 0);
	assert_string_not_equal(a, c);
	tu_write(top, "proj/notes.txt", "notes, changed\n");
	assert_int_equal(dtn_local_identity(b, img, d, NULL), 0);
	assert_string_not_equal(a, d);
	tu_write(top, "proj/notes.txt", "notes\n");
	/* the same tree elsewhere has the same identity */
	path_of(src, sizeof(src), "proj");
	path_of(moved, sizeof(moved), "moved");
	assert_int_equal(rename(src, moved), 0);
	img2 = dtn_image_base("localhost/dtn/busybox:1");
	dtn_image_resolve_from(img2, moved);
	dtn_image_add_local_dir(img2, "app", "/srv/app", NULL);
	dtn_image_add_local_file(img2, "notes.txt", "/srv/");
	assert_int_equal(dtn_local_identity(b, img2, d, NULL), 0);
	assert_int_equal(rename(moved, src), 0);
	assert_string_equal(a, d);
	dtn_image_free(img);
	dtn_image_free(img2);
	dtn_image_free(other);
	dtn_builder_free(b);
}

static void test_builder_local__lays_out_contexts_and_runs_engine(void **st)
{
	char p[PATH_MAX], want[PATH_MAX * 2], *calls;
	dtn_image *img = project_image(NULL);
	dtn_local_result *res = NULL;
	dtn_error err;
	struct stat sb;
	seen s = {0};

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){.engine_args = DTN_STRV("--root", "/r s")},
			       &s, &res, &err), 0);
	assert_non_null(res);
	assert_false(res->reused);
	assert_string_equal(res->engine, "buildah");
	assert_null(res->failed_lines[0]);
	snprintf(want, sizeof(want), "dtn/demo:%s", res->identity);
	assert_string_equal(res->image, want);
	/* the engine got the Dockerfile and each context's files at their archive paths */
	path_of(p, sizeof(p), "state/Dockerfile");
	assert_file_is(p, dtn_image_dockerfile(img));
	path_of(p, sizeof(p), "state/context/app/main.sh");
	assert_file_is(p, "#!/bin/sh\necho main\n");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	path_of(p, sizeof(p), "state/context/app/secret.txt");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	path_of(p, sizeof(p), "state/context/app/link");
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	/* set-user-ID and set-group-ID bits are kept, on files and directories (extraction drops
	 * them when the files are not owned as the archive says: for any user but root) */
	path_of(p, sizeof(p), "state/context/app/suid");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 04755);
	path_of(p, sizeof(p), "state/context/app/shared");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 02775);
	path_of(p, sizeof(p), "state/context/notes.txt");
	assert_file_is(p, "notes\n");
	path_of(p, sizeof(p), "state/context/app/debug.log");
	assert_int_not_equal(lstat(p, &sb), 0);
	path_of(p, sizeof(p), "state/context/Dockerfile");
	assert_int_not_equal(lstat(p, &sb), 0);
	/* argv went through untouched: the global options, then the build command */
	path_of(p, sizeof(p), "state/calls");
	calls = slurp(p);
	snprintf(want, sizeof(want), "[--root][/r s][bud][--ignorefile][%s/dtn-build.", tmp);
	assert_contains(calls, want);
	snprintf(want, sizeof(want), "[-t][dtn/demo:%s][%s/dtn-build.", res->identity, tmp);
	assert_contains(calls, want);
	assert_contains(calls, "/context]\n");
	assert_null(strstr(calls, "--isolation")); /* BUILDAH_ISOLATION is set */
	assert_contains(calls, "[--format][docker][-f]"); /* as Docker builds it */
	free(calls);
	/* output lines, both streams, the last one without a newline; phases too */
	assert_contains(s.text, "STEP 1/2: FROM base\nto stderr\n");
	assert_contains(s.text, "Successfully tagged dtn/demo:");
	assert_contains(s.text, "== identifying 2 build contexts\n");
	assert_contains(s.text, "== built dtn/demo:");
	/* the engine's temporary files went to a directory of their own, removed afterwards */
	path_of(p, sizeof(p), "state/tmpdir");
	calls = slurp(p);
	snprintf(want, sizeof(want), "%s/dtn-engine.", tmp);
	assert_int_equal(strncmp(calls, want, strlen(want)), 0);
	free(calls);
	assert_true(dir_is_empty(tmp));
	dtn_local_result_free(res);
	dtn_image_free(img);
}

/* Builds img (if changed) with the stand-in named `engine`; what it was called with. */
static char *calls_as(const char *engine, const dtn_image *img, seen *s, dtn_local_result **res)
{
	char p[PATH_MAX], rel[64];

	reset(NULL);
	snprintf(rel, sizeof(rel), "bin/%s", engine);
	path_of(p, sizeof(p), rel);
	unlink(p);
	assert_int_equal(symlink(fake, p), 0);
	assert_int_equal(build(img, (dtn_local_opts){.engine = p, .if_changed = true}, s, res, NULL),
			 0);
	assert_string_equal((*res)->engine, engine);
	path_of(p, sizeof(p), "state/calls");
	return slurp(p);
}

/*
 * docker: `docker build` with the ignore file beside the Dockerfile, where BuildKit looks for
 * it, and no buildah options; podman: buildah's options under podman's command names.
 */
static void test_builder_local__docker_build_command(void **st)
{
	char p[PATH_MAX], want[PATH_MAX + 64], *calls;
	dtn_image *img = project_image(NULL);
	dtn_local_result *res = NULL;
	seen s = {0};

	(void)st;
	calls = calls_as("docker", img, &s, &res);
	assert_contains(calls, "[image][inspect][dtn/demo:");
	snprintf(want, sizeof(want), "[build][-f][%s/dtn-build.", tmp);
	assert_contains(calls, want);
	snprintf(want, sizeof(want), "[-t][dtn/demo:%s][%s/dtn-build.", res->identity, tmp);
	assert_contains(calls, want);
	assert_null(strstr(calls, "--ignorefile"));
	assert_null(strstr(calls, "--format"));
	assert_null(strstr(calls, "--isolation"));
	free(calls);
	/* the ignore file keeps the context's own .dockerignore from being applied again */
	path_of(p, sizeof(p), "state/dfignore");
	calls = slurp(p);
	assert_non_null(calls);
	free(calls);
	assert_contains(s.text, "== building dtn/demo:");
	assert_contains(s.text, " with docker\n");
	dtn_local_result_free(res);
	/* podman: buildah's options under podman's command names */
	calls = calls_as("podman", img, &s, &res);
	assert_contains(calls, "[image][exists][dtn/demo:");
	assert_contains(calls, "[build][--ignorefile][");
	assert_contains(calls, "[--format][docker][-f]");
	free(calls);
	dtn_local_result_free(res);
	dtn_image_free(img);
}

static void test_builder_local__engine_args_from_environment(void **st)
{
	char p[PATH_MAX], *calls;
	dtn_image *img = project_image(NULL);
	dtn_local_result *res = NULL;
	seen s = {0};

	(void)st;
	setenv("DTN_BUILDAH_ARGS", "  --storage-driver vfs\t--root /x ", 1);
	unsetenv("BUILDAH_ISOLATION");
	setenv("BUILDAH_FORMAT", "oci", 1);
	assert_int_equal(build(img, (dtn_local_opts){0}, &s, &res, NULL), 0);
	unsetenv("DTN_BUILDAH_ARGS");
	unsetenv("BUILDAH_FORMAT");
	setenv("BUILDAH_ISOLATION", "chroot", 1);
	path_of(p, sizeof(p), "state/calls");
	calls = slurp(p);
	assert_contains(calls, "[--storage-driver][vfs][--root][/x][bud]");
	/* buildah without an OCI runtime is asked for chroot isolation */
	if (!on_path("crun") && !on_path("runc"))
		assert_contains(calls, "[--isolation][chroot][-f]");
	assert_null(strstr(calls, "[--format][docker]")); /* BUILDAH_FORMAT chooses */
	free(calls);
	dtn_local_result_free(res);
	dtn_image_free(img);
}

static void test_builder_local__reuses_existing_image(void **st)
{
	char p[PATH_MAX], *calls;
	dtn_image *img = project_image(NULL);
	dtn_local_result *res = NULL;
	seen s = {0};

	(void)st;
	tu_write(state, "exists", "");
	assert_int_equal(build(img, (dtn_local_opts){.if_changed = true}, &s, &res, NULL), 0);
	assert_true(res->reused);
	path_of(p, sizeof(p), "state/calls");
	calls = slurp(p);
	assert_contains(calls, "[inspect][--type][image][dtn/demo:");
	assert_null(strstr(calls, "[bud]"));
	free(calls);
	assert_contains(s.text, "is already built: reusing it");
	dtn_local_result_free(res);
	/* without --if-changed it is built again */
	assert_int_equal(build(img, (dtn_local_opts){0}, &s, &res, NULL), 0);
	assert_false(res->reused);
	dtn_local_result_free(res);
	dtn_image_free(img);
}

static void test_builder_local__failed_build_keeps_last_lines(void **st)
{
	dtn_image *img = project_image("FAIL");
	dtn_local_result *res = NULL;
	dtn_error err;
	seen s = {0};
	size_t n = 0;

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){0}, &s, &res, &err), DTN_EBUILD);
	assert_non_null(res);
	assert_int_equal(res->status, 1);
	assert_contains(err.message, "exited with status 1");
	assert_contains(err.message, "Error: building at STEP \"RUN false\"");
	while (res->failed_lines[n])
		n++;
	assert_int_equal(n, DTN_LOCAL_FAILED_LINES);
	assert_string_equal(res->failed_lines[n - 1],
			    "Error: building at STEP \"RUN false\": exit status 1");
	assert_string_equal(res->failed_lines[n - 2], "output 30");
	assert_string_equal(res->failed_lines[0], "output 12");
	assert_true(dir_is_empty(tmp));
	dtn_local_result_free(res);
	dtn_image_free(img);
}

static void test_builder_local__long_lines_come_in_pieces(void **st)
{
	dtn_image *img = project_image("LONG");
	dtn_local_result *res = NULL;
	seen s = {0};

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){0}, &s, &res, NULL), 0);
	assert_int_equal(s.longest, 8192);
	assert_contains(s.text, "to stderr\n");
	dtn_local_result_free(res);
	dtn_image_free(img);
}

/* Waits (bounded) until the process in state/sleeper is gone: the group was ended. */
static void assert_sleeper_gone(void)
{
	char p[PATH_MAX], *text;
	long pid;

	path_of(p, sizeof(p), "state/sleeper");
	text = slurp(p);
	assert_non_null(text);
	pid = strtol(text, NULL, 10);
	free(text);
	assert_true(pid > 1);
	for (int i = 0; i < 500 && kill((pid_t)pid, 0) == 0; i++) {
		char stat_path[64], *st;
		bool zombie;

		snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", pid);
		st = slurp(stat_path);
		zombie = st && strstr(st, ") Z ");
		free(st);
		if (zombie)
			return;
		usleep(20000);
	}
	if (kill((pid_t)pid, 0) == 0)
		fail_msg("process %ld of the engine's group is still running", pid);
}

static void test_builder_local__cancel_ends_the_process_group(void **st)
{
	dtn_image *img = project_image("HANG");
	dtn_local_result *res = NULL;
	volatile int cancel = 0;
	dtn_error err;
	seen s = {.cancel = &cancel};

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){.cancel = &cancel}, &s, &res, &err),
			 DTN_EINTR);
	assert_null(res);
	assert_sleeper_gone();
	assert_true(dir_is_empty(tmp));
	dtn_image_free(img);
}

/* buildah stopped outside a RUN step leaves its working container: the working containers
 * that appeared during the build go, the others stay. */
static void test_builder_local__stopped_build_removes_working_containers(void **st)
{
	dtn_image *img = project_image("HANG");
	dtn_local_result *res = NULL;
	volatile int cancel = 0;
	char p[PATH_MAX], *calls;
	dtn_error err;
	seen s = {.cancel = &cancel};

	(void)st;
	tu_write(state, "containers", "aaaa0000   busybox-working-container\n");
	assert_int_equal(build(img, (dtn_local_opts){.cancel = &cancel}, &s, &res, &err),
			 DTN_EINTR);
	assert_contains(err.message, "interrupted");
	assert_sleeper_gone();
	path_of(p, sizeof(p), "state/rm");
	assert_file_is(p, "ffff1111\n");
	assert_contains(s.text, "== removing busybox-working-container-1, the working container "
				"of the stopped build\n");
	/* the list was taken before the build started */
	path_of(p, sizeof(p), "state/calls");
	calls = slurp(p);
	assert_non_null(strstr(calls, "[containers][--notruncate]"));
	assert_true(strstr(calls, "[containers][--notruncate]") < strstr(calls, "[bud]"));
	free(calls);
	assert_true(dir_is_empty(tmp));
	/* a build that ends by itself removes nothing */
	dtn_image_free(img);
	img = project_image("FAIL");
	path_of(p, sizeof(p), "state/rm");
	unlink(p);
	tu_write(state, "containers", "aaaa0000   busybox-working-container\n");
	assert_int_equal(build(img, (dtn_local_opts){0}, &(seen){0}, &res, &err), DTN_EBUILD);
	assert_int_equal(access(p, F_OK), -1);
	dtn_local_result_free(res);
	dtn_image_free(img);
}

static void test_builder_local__cancelled_before_the_engine(void **st)
{
	dtn_image *img = project_image(NULL);
	dtn_local_result *res = NULL;
	volatile int cancel = 1;
	char p[PATH_MAX];
	struct stat sb;

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){.cancel = &cancel}, &(seen){0}, &res, NULL),
			 DTN_EINTR);
	assert_null(res);
	path_of(p, sizeof(p), "state/calls");
	assert_int_not_equal(stat(p, &sb), 0); /* the engine never ran */
	assert_true(dir_is_empty(tmp));
	dtn_image_free(img);
}

static void test_builder_local__timeout_stops_the_engine(void **st)
{
	dtn_image *img = project_image("HANG");
	dtn_local_result *res = NULL;
	dtn_error err;
	seen s = {0};

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){.timeout = 2}, &s, &res, &err), DTN_ETIMEOUT);
	assert_null(res);
	assert_sleeper_gone();
	dtn_image_free(img);
}

static void test_builder_local__callback_stops(void **st)
{
	dtn_image *img = project_image("FAIL");
	dtn_local_result *res = NULL;
	seen s = {.stop_at = 3};

	(void)st;
	assert_int_equal(build(img, (dtn_local_opts){0}, &s, &res, NULL), DTN_EUSER);
	assert_null(res);
	assert_int_equal(s.lines, 3);
	assert_true(dir_is_empty(tmp));
	dtn_image_free(img);
}

static void test_builder_local__replace_removes_earlier_builds(void **st)
{
	char p[PATH_MAX], images[4096], *removed;
	dtn_image *img = project_image(NULL);
	dtn_local_result *res = NULL;
	char id[65];
	dtn_builder *b = new_builder();

	(void)st;
	assert_int_equal(dtn_local_identity(b, img, id, NULL), 0);
	dtn_builder_free(b);
	snprintf(images, sizeof(images),
		 "localhost/dtn/demo:old1\nlocalhost/dtn/demo:%s\nlocalhost/dtn/demo2:old\n"
		 "<none>:<none>\ndocker.io/dtn/demo:old2\nlocalhost/dtn/busybox:1\n", id);
	tu_write(state, "images", images);
	assert_int_equal(build(img, (dtn_local_opts){.replace = true}, &(seen){0}, &res, NULL), 0);
	path_of(p, sizeof(p), "state/removed");
	removed = slurp(p);
	assert_non_null(removed);
	assert_string_equal(removed, "localhost/dtn/demo:old1\ndocker.io/dtn/demo:old2\n");
	free(removed);
	dtn_local_result_free(res);
	dtn_image_free(img);
}

static void test_builder_local__bad_input(void **st)
{
	dtn_image *img = project_image(NULL), *bad = dtn_image_debian_slim("2.7");
	dtn_local_result *res = (dtn_local_result *)1;
	dtn_builder *b = new_builder();
	dtn_error err;

	(void)st;
	assert_int_equal(dtn_build_local(b, img, &(dtn_local_opts){0}, &res, &err), DTN_EINVAL);
	assert_null(res);
	assert_contains(err.message, "no snapshot name");
	assert_int_equal(dtn_build_local(b, bad, &(dtn_local_opts){.name = "x"}, &res, &err),
			 DTN_EINVAL);
	assert_contains(err.message, "2.7");
	assert_int_equal(dtn_build_local(b, img, &(dtn_local_opts){.name = "x", .engine = "rkt"},
					 &res, &err), DTN_EINVAL);
	assert_null(res);
	dtn_builder_free(b);
	dtn_image_free(bad);
	dtn_image_free(img);
}

/* The file-descriptor sink writes all it is given, and fails on a descriptor it cannot use. */
static void test_builder_local__write_fd(void **st)
{
	char buf[16] = {0};
	int fds[2], bad = -1;

	(void)st;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(dtn_write_fd("hello", 5, &fds[1]), 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 5);
	assert_string_equal(buf, "hello");
	close(fds[0]);
	errno = 0;
	assert_int_equal(dtn_write_fd("x", 1, &bad), -1);
	assert_int_equal(errno, EBADF);
}

/* Every allocation of a build, made to fail in turn: an error, never a crash or a leak. */
static void test_builder_local__allocation_failures(void **st)
{
	dtn_image *img = dtn_image_base("localhost/dtn/busybox:1");
	dtn_builder *b = new_builder();
	int rc = DTN_ENOMEM;
	char p[PATH_MAX];
	long n;

	(void)st;
	/* files of a directory without a .dockerignore: the rules' own failures are the walk's */
	tu_write(state, "plain/dir/a.txt", "a\n");
	tu_write(state, "plain/b.txt", "b\n");
	path_of(p, sizeof(p), "state/plain");
	dtn_image_resolve_from(img, p);
	dtn_image_add_local_dir(img, "dir", "/srv/dir", NULL);
	dtn_image_add_local_file(img, "b.txt", "/srv/");
	dtn_image_run_commands(img, DTN_STRV("true"));
	assert_int_equal(dtn_image_status(img), 0);
	for (n = 1; n < 5000 && rc != 0; n++) {
		dtn_local_result *res = NULL;
		dtn_error err;

		tu_fail_alloc_after(n);
		rc = dtn_build_local(b, img, &(dtn_local_opts){.name = "demo", .engine = fake,
							       .tmp_dir = tmp},
				     &res, &err);
		tu_alloc_reset();
		if (rc != 0 && rc != DTN_ENOMEM)
			fail_msg("allocation %ld failing gave %d: %s", n, rc, err.message);
		assert_true(rc == 0 ? res != NULL : res == NULL);
		dtn_local_result_free(res);
		assert_true(dir_is_empty(tmp));
	}
	assert_int_equal(rc, 0);
	assert_true(n > 10);
	dtn_builder_free(b);
	dtn_image_free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_builder_local__finds_engines, reset),
		cmocka_unit_test_setup(test_builder_local__image_names, reset),
		cmocka_unit_test_setup(test_builder_local__identity_follows_content, reset),
		cmocka_unit_test_setup(test_builder_local__lays_out_contexts_and_runs_engine, reset),
		cmocka_unit_test_setup(test_builder_local__engine_args_from_environment, reset),
		cmocka_unit_test_setup(test_builder_local__docker_build_command, reset),
		cmocka_unit_test_setup(test_builder_local__reuses_existing_image, reset),
		cmocka_unit_test_setup(test_builder_local__failed_build_keeps_last_lines, reset),
		cmocka_unit_test_setup(test_builder_local__long_lines_come_in_pieces, reset),
		cmocka_unit_test_setup(test_builder_local__cancel_ends_the_process_group, reset),
		cmocka_unit_test_setup(test_builder_local__stopped_build_removes_working_containers,
				       reset),
		cmocka_unit_test_setup(test_builder_local__cancelled_before_the_engine, reset),
		cmocka_unit_test_setup(test_builder_local__timeout_stops_the_engine, reset),
		cmocka_unit_test_setup(test_builder_local__callback_stops, reset),
		cmocka_unit_test_setup(test_builder_local__replace_removes_earlier_builds, reset),
		cmocka_unit_test_setup(test_builder_local__bad_input, reset),
		cmocka_unit_test_setup(test_builder_local__write_fd, reset),
		cmocka_unit_test_setup(test_builder_local__allocation_failures, reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
