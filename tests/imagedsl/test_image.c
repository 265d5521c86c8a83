/*
 * test_image.c - the image DSL: every step's rendering, the corrections to the reference SDK,
 * contexts, sticky errors and allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtn.h"
#include "testutil.h"

static char tree[PATH_MAX];

/* A small tree of local files, the current directory while the tests run. */
static int setup(void **state)
{
	(void)state;
	snprintf(tree, sizeof(tree), "%s", tu_mkdtemp());
	tu_write(tree, "files/hello.txt", "hello\n");
	tu_write(tree, "files/with space.txt", "space\n");
	tu_write(tree, "files/run.sh", "#!/bin/sh\n");
	tu_write(tree, "tree/sub/a.txt", "a\n");
	tu_write(tree, "requirements.txt", "requests\n");
	tu_write(tree, "py/basic/pyproject.toml",
		 "[project]\nname = \"demo\"\ndependencies = [\"requests>=2.0\", \"numpy\"]\n"
		 "[project.optional-dependencies]\ndev = [\"pytest>=7\", \"black\"]\n");
	tu_write(tree, "py/badopt/pyproject.toml",
		 "[project]\ndependencies = [\"attrs\"]\noptional-dependencies = [\"dev\"]\n");
	tu_write(tree, "py/nodeps/pyproject.toml", "[project]\nname = \"x\"\n");
	tu_write(tree, "py/broken/pyproject.toml", "[project]\ndependencies = [\"a\",\n");
	tu_write(tree, "py/nonstring/pyproject.toml", "[project]\ndependencies = [\"a\", 5]\n");
	tu_write(tree, "docker/Dockerfile", "FROM busybox\nCOPY app.py /app/\nCOPY conf/ /conf/\n");
	tu_write(tree, "docker/app.py", "print(1)\n");
	tu_write(tree, "docker/conf/a.conf", "a\n");
	tu_write(tree, "docker/nonl/Dockerfile", "FROM busybox\nCMD [\"true\"]");
	tu_write(tree, "docker/missing/Dockerfile", "FROM busybox\n\nCOPY nope.txt /x\n");
	tu_write(tree, "ctx/app.py", "print(2)\n");
	tu_write(tree, "ctx/ctxnotes.txt", "n\n");
	if (chdir(tree) < 0)
		return -1;
	setenv("HOME", tree, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (chdir("/") < 0)
		return -1;
	tu_rmtree(tree);
	return 0;
}

static void assert_df(dtn_image *img, const char *want)
{
	if (dtn_image_status(img) < 0)
		fail_msg("unexpected error: %s", dtn_image_error(img)->message);
	assert_string_equal(dtn_image_dockerfile(img), want);
	dtn_image_free(img);
}

static void assert_fails(dtn_image *img, int code, const char *needle)
{
	const dtn_error *err = dtn_image_error(img);

	assert_int_equal(dtn_image_status(img), code);
	assert_int_equal(err->code, code);
	if (!strstr(err->message, needle))
		fail_msg("message \"%s\" does not name \"%s\"", err->message, needle);
	assert_string_equal(dtn_image_dockerfile(img), "");
	assert_int_equal(dtn_image_context_count(img), 0);
	dtn_image_free(img);
}

#define SLIM_3_12 "FROM python:3.12.10-slim-bookworm\n" SLIM_TAIL
#define SLIM_TAIL                                                                          \
	"RUN apt-get update\n"                                                             \
	"RUN apt-get install -y gcc gfortran build-essential\n"                            \
	"RUN pip install --upgrade pip\n"                                                  \
	"RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections\n"

static void test_imagedsl_image__constructors(void **state)
{
	(void)state;
	assert_df(dtn_image_base("python:3.12"), "FROM python:3.12\n");
	assert_df(dtn_image_debian_slim("3.12"), SLIM_3_12);
	assert_df(dtn_image_debian_slim(NULL), "FROM python:3.13.3-slim-bookworm\n" SLIM_TAIL);
	assert_fails(dtn_image_debian_slim("3.8"), DTN_EINVAL, "\"3.8\"");
	assert_fails(dtn_image_debian_slim("3.12.1"), DTN_EINVAL, "3.12.1");
}

static void test_imagedsl_image__pip(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("p");
	dtn_image_pip_install(img, DTN_STRV("requests", "flask", "numpy>=1.26,<2", "Zed"), NULL);
	dtn_image_pip_install(img, (const char *const[]){NULL},
			      &(dtn_pip_opts){.index_url = "https://x", .pre = true});
	dtn_image_pip_install(img, DTN_STRV("m"), &(dtn_pip_opts){
		.extra_options = " --no-cache-dir --upgrade ", .pre = true,
		.extra_index_urls = DTN_STRV("https://e1/simple", "https://e2/simple"),
		.index_url = "https://pypi.example.com/simple",
		.find_links = DTN_STRV("/wheels", "https://example.com/wheels/")});
	/* blank extra options add nothing (the SDK leaves a trailing space) */
	dtn_image_pip_install(img, DTN_STRV("b"), &(dtn_pip_opts){.extra_options = "  \t "});
	assert_df(img, "FROM p\n"
		       "RUN python -m pip install Zed flask numpy\\>\\=1.26\\,\\<2 requests\n"
		       "RUN python -m pip install m --find-links /wheels --find-links "
		       "https\\://example.com/wheels/ --index-url https\\://pypi.example.com/simple "
		       "--extra-index-url https\\://e1/simple --extra-index-url https\\://e2/simple "
		       "--pre --no-cache-dir --upgrade\n"
		       "RUN python -m pip install b\n");
}

static void test_imagedsl_image__run_env_workdir(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("u");
	dtn_image_run_commands(img, DTN_STRV("mkdir -p /app", "echo \"done\""));
	dtn_image_run_commands(img, (const char *const[]){NULL});
	dtn_image_run_words(img, DTN_STRV("sh", "-c", "echo \"q\" it's"));
	dtn_image_env(img, "PATH", "/usr/local/bin:$PATH");
	dtn_image_env(img, "GREETING", "hello world");
	dtn_image_env(img, "BOTH", "it's \"both\"");
	dtn_image_workdir(img, "/opt/my app");
	assert_df(img, "FROM u\nRUN mkdir -p /app\nRUN echo \"done\"\n"
		       "RUN \"sh\" \"-c\" \"echo \\\\\\\"q\\\\\\\" it\\'s\"\n"
		       "ENV PATH=/usr/local/bin:\\$PATH\nENV GREETING='hello world'\n"
		       "ENV BOTH=\"it's \\\"both\\\"\"\nWORKDIR '/opt/my app'\n");
	assert_fails(dtn_image_env(dtn_image_base("u"), "K", "two\nlines"), DTN_EINVAL, "K");
	assert_fails(dtn_image_env(dtn_image_base("u"), "A B", "v"), DTN_EINVAL, "A B");
	assert_fails(dtn_image_env(dtn_image_base("u"), "", "v"), DTN_EINVAL, "valid");
	/* user text in a message stays on one line */
	assert_fails(dtn_image_env(dtn_image_base("u"), "A\nB", "v"), DTN_EINVAL, "\"A\\nB\"");
}

/* Correction 2: ENTRYPOINT and CMD items are JSON strings; plain items render as the SDK's. */
static void test_imagedsl_image__exec_forms(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("b");
	dtn_image_entrypoint(img, DTN_STRV("python"));
	dtn_image_cmd(img, DTN_STRV("-m", "app"));
	dtn_image_cmd(img, (const char *const[]){NULL});
	dtn_image_entrypoint(img, DTN_STRV("sh", "-c", "echo \"hi\" \\ there"));
	assert_df(img, "FROM b\nENTRYPOINT [\"python\"]\nCMD [\"-m\", \"app\"]\nCMD []\n"
		       "ENTRYPOINT [\"sh\", \"-c\", \"echo \\\"hi\\\" \\\\ there\"]\n");
}

static void test_imagedsl_image__go_steps(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("debian");
	dtn_image_apt_get(img, DTN_STRV("git", "curl"));
	dtn_image_apt_get(img, (const char *const[]){NULL});
	dtn_image_label(img, "org.opencontainers.image.title", "say \"hi\" $x");
	dtn_image_label(img, "my key", "v");
	dtn_image_expose(img, DTN_STRV("8080", "53/udp", "8000-8010", "6000-6000/sctp"));
	dtn_image_user(img, "daytona");
	dtn_image_volume(img, DTN_STRV("/data", "/logs"));
	assert_df(img, "FROM debian\n"
		       "RUN apt-get update && apt-get install -y git curl && rm -rf "
		       "/var/lib/apt/lists/*\n"
		       "LABEL org.opencontainers.image.title=\"say \\\"hi\\\" \\$x\"\n"
		       "LABEL \"my key\"=\"v\"\n"
		       "EXPOSE 8080 53/udp 8000-8010 6000-6000/sctp\nUSER daytona\nVOLUME [\"/data\", \"/logs\"]\n");
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("80", "70000")), DTN_EINVAL,
		     "70000");
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("80/xyz")), DTN_EINVAL,
		     "80/xyz");
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("0")), DTN_EINVAL, "\"0\"");
	/* a range runs upwards, between two ports */
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("90-80")), DTN_EINVAL, "90-80");
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("80-")), DTN_EINVAL, "80-");
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("80-70000")), DTN_EINVAL,
		     "80-70000");
	assert_fails(dtn_image_expose(dtn_image_base("d"), DTN_STRV("80-90-100")), DTN_EINVAL,
		     "80-90-100");
	assert_fails(dtn_image_user(dtn_image_base("d"), "a b"), DTN_EINVAL, "a b");
	assert_fails(dtn_image_label(dtn_image_base("d"), "k", "a\nb"), DTN_EINVAL, "k");
}

static void assert_context(const dtn_image *img, size_t i, const char *source,
			   const char *archive, dtn_context_kind kind, const char *step)
{
	const dtn_context *c = dtn_image_context(img, i);

	assert_non_null(c);
	assert_string_equal(c->source, source);
	assert_string_equal(c->archive_path, archive);
	assert_int_equal(c->kind, kind);
	assert_string_equal(c->step, step);
	assert_true(c->path[0] == '/');
}

static void test_imagedsl_image__local_files(void **state)
{
	dtn_image *img;
	char want[PATH_MAX * 2];

	(void)state;
	img = dtn_image_base("p");
	dtn_image_add_local_file(img, "files/hello.txt", "/app/");
	dtn_image_add_local_file(img, "./files/run.sh", "/bin/run");
	dtn_image_add_local_dir(img, "tree/", "/t/", &(dtn_dir_opts){.ignore = DTN_STRV("*.pyc")});
	dtn_image_add_local_file(img, "files/with space.txt", "/app/");
	dtn_image_add_local_file(img, "~/files/hello.txt", "/h");
	assert_int_equal(dtn_image_status(img), 0);
	assert_int_equal(dtn_image_context_count(img), 5);
	assert_context(img, 0, "files/hello.txt", "files/hello.txt", DTN_CONTEXT_FILE,
		       "add_local_file");
	assert_context(img, 1, "./files/run.sh", "./files/run.sh", DTN_CONTEXT_FILE,
		       "add_local_file");
	assert_context(img, 2, "tree/", "tree/", DTN_CONTEXT_DIR, "add_local_dir");
	assert_string_equal(dtn_image_context(img, 2)->ignore[0], "*.pyc");
	assert_string_equal(dtn_image_context(img, 2)->root, tree);
	assert_null(dtn_image_context(img, 0)->ignore[0]);
	assert_null(dtn_image_context(img, 5));
	snprintf(want, sizeof(want),
		 "FROM p\nCOPY files/hello.txt /app/hello.txt\nCOPY ./files/run.sh /bin/run\n"
		 "COPY tree/ /t/\n"
		 "COPY [\"files/with space.txt\", \"/app/with space.txt\"]\n"
		 "COPY %s/files/hello.txt /h\n", tree);
	assert_df(img, want);
	assert_fails(dtn_image_add_local_file(dtn_image_base("p"), "files/nope.txt", "/a/"),
		     DTN_ENOTFOUND, "files/nope.txt");
	assert_fails(dtn_image_add_local_file(dtn_image_base("p"), "tree", "/a/"), DTN_EINVAL,
		     "tree");
	assert_fails(dtn_image_add_local_dir(dtn_image_base("p"), "files/hello.txt", "/a", NULL),
		     DTN_EINVAL, "files/hello.txt");
	assert_fails(dtn_image_add_local_dir(dtn_image_base("p"), "no/dir", "/a", NULL), DTN_ENOTFOUND,
		     "no/dir");
}

/* A relative path that climbs out of its directory gets an absolute archive path. */
static void test_imagedsl_image__climbing_path(void **state)
{
	dtn_image *img;
	char want[PATH_MAX * 2];

	(void)state;
	img = dtn_image_resolve_from(dtn_image_base("p"), "tree");
	dtn_image_add_local_file(img, "../files/hello.txt", "/h");
	assert_int_equal(dtn_image_status(img), 0);
	snprintf(want, sizeof(want), "%s/files/hello.txt", tree);
	assert_context(img, 0, "../files/hello.txt", want, DTN_CONTEXT_FILE, "add_local_file");
	assert_string_equal(dtn_image_context(img, 0)->path, want);
	dtn_image_free(img);
	assert_fails(dtn_image_resolve_from(dtn_image_base("p"), "nowhere"), DTN_ENOTFOUND,
		     "nowhere");
}

static void test_imagedsl_image__requirements(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("p");
	dtn_image_pip_install_from_requirements(img, "requirements.txt",
						&(dtn_pip_opts){.pre = true});
	assert_context(img, 0, "requirements.txt", "requirements.txt", DTN_CONTEXT_FILE,
		       "pip_install_from_requirements");
	assert_df(img, "FROM p\nCOPY requirements.txt /.requirements.txt\n"
		       "RUN python -m pip install -r /.requirements.txt --pre\n");
	assert_fails(dtn_image_pip_install_from_requirements(dtn_image_base("p"), "nope.txt", NULL),
		     DTN_ENOTFOUND, "nope.txt");
	assert_fails(dtn_image_pip_install_from_requirements(dtn_image_base("p"), "tree", NULL),
		     DTN_EINVAL, "tree");
}

static void test_imagedsl_image__pyproject(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("p");
	dtn_image_pip_install_from_pyproject(img, "py/basic/pyproject.toml", NULL);
	dtn_image_pip_install_from_pyproject(img, "py/basic/pyproject.toml", &(dtn_pip_opts){
		.optional_dependencies = DTN_STRV("dev", "unknown"), .pre = true});
	assert_int_equal(dtn_image_context_count(img), 0);
	assert_df(img, "FROM p\nRUN python -m pip install numpy requests\\>\\=2.0\n"
		       "RUN python -m pip install black numpy pytest\\>\\=7 requests\\>\\=2.0 --pre\n");
	/* a malformed optional-dependencies is only an error when groups are asked for */
	assert_df(dtn_image_pip_install_from_pyproject(dtn_image_base("p"),
						      "py/badopt/pyproject.toml", NULL),
		  "FROM p\nRUN python -m pip install attrs\n");
	assert_fails(dtn_image_pip_install_from_pyproject(
			     dtn_image_base("p"), "py/badopt/pyproject.toml",
			     &(dtn_pip_opts){.optional_dependencies = DTN_STRV("dev")}),
		     DTN_EINVAL, "optional-dependencies must be a mapping");
	assert_fails(dtn_image_pip_install_from_pyproject(dtn_image_base("p"),
							 "py/nodeps/pyproject.toml", NULL),
		     DTN_EINVAL, "[project.dependencies]");
	assert_fails(dtn_image_pip_install_from_pyproject(dtn_image_base("p"),
							 "py/nonstring/pyproject.toml", NULL),
		     DTN_EINVAL, "item 2");
	assert_fails(dtn_image_pip_install_from_pyproject(dtn_image_base("p"),
							 "py/none/pyproject.toml", NULL),
		     DTN_ENOTFOUND, "py/none/pyproject.toml");
}

static void test_imagedsl_image__pyproject_syntax_error(void **state)
{
	dtn_image *img;
	const dtn_error *err;

	(void)state;
	img = dtn_image_pip_install_from_pyproject(dtn_image_base("p"), "py/broken/pyproject.toml",
						   NULL);
	err = dtn_image_error(img);
	assert_int_equal(err->code, DTN_ESYNTAX);
	assert_string_equal(err->file, "py/broken/pyproject.toml");
	assert_true(err->line >= 2);
	assert_non_null(strstr(err->message, "invalid pyproject.toml file"));
	dtn_image_free(img);
}

static void test_imagedsl_image__from_dockerfile(void **state)
{
	dtn_image *img;
	const dtn_error *err;
	char src[PATH_MAX + 32];

	(void)state;
	img = dtn_image_from_dockerfile("docker/Dockerfile", NULL);
	dtn_image_env(img, "A", "b");
	assert_int_equal(dtn_image_status(img), 0);
	assert_int_equal(dtn_image_context_count(img), 2);
	snprintf(src, sizeof(src), "%s/docker/app.py", tree);
	assert_context(img, 0, src, "app.py", DTN_CONTEXT_FILE, "from_dockerfile");
	snprintf(src, sizeof(src), "%s/docker/conf/", tree);
	assert_context(img, 1, src, "conf/", DTN_CONTEXT_DIR, "from_dockerfile");
	snprintf(src, sizeof(src), "%s/docker", tree);
	assert_string_equal(dtn_image_context(img, 1)->root, src);
	assert_df(img, "FROM busybox\nCOPY app.py /app/\nCOPY conf/ /conf/\nENV A=b\n");

	/* correction 3: a newline before anything appended; none when nothing is */
	assert_df(dtn_image_from_dockerfile("docker/nonl/Dockerfile", NULL),
		  "FROM busybox\nCMD [\"true\"]");
	img = dtn_image_from_dockerfile("docker/nonl/Dockerfile", NULL);
	assert_df(dtn_image_run_commands(img, DTN_STRV("echo appended")),
		  "FROM busybox\nCMD [\"true\"]\nRUN echo appended\n");

	/* correction 6: a COPY source that does not exist names the Dockerfile's line */
	img = dtn_image_from_dockerfile("docker/missing/Dockerfile", NULL);
	err = dtn_image_error(img);
	assert_int_equal(err->code, DTN_ENOTFOUND);
	assert_string_equal(err->file, "docker/missing/Dockerfile");
	assert_int_equal(err->line, 3);
	assert_non_null(strstr(err->message, "nope.txt"));
	dtn_image_free(img);
	assert_fails(dtn_image_from_dockerfile("docker/none/Dockerfile", NULL), DTN_ENOTFOUND,
		     "docker/none/Dockerfile");
	assert_fails(dtn_image_from_dockerfile("docker", NULL), DTN_EINVAL, "docker");

	/* base_dir: the path is relative to it, and so are later steps' paths */
	img = dtn_image_from_dockerfile("Dockerfile", &(dtn_dockerfile_opts){.base_dir = "docker"});
	dtn_image_add_local_file(img, "app.py", "/again.py");
	assert_int_equal(dtn_image_context_count(img), 3);
	assert_string_equal(dtn_image_context(img, 2)->archive_path, "app.py");
	dtn_image_free(img);
	assert_fails(dtn_image_from_dockerfile("nope/Dockerfile",
					       &(dtn_dockerfile_opts){.base_dir = "docker"}),
		     DTN_ENOTFOUND, "Dockerfile nope/Dockerfile does not exist");
}

static void test_imagedsl_image__dockerfile_commands(void **state)
{
	char want_root[PATH_MAX + 8];
	dtn_image *img;
	const dtn_error *err;

	(void)state;
	img = dtn_image_base("p");
	dtn_image_dockerfile_commands(img, DTN_STRV("COPY app.py /app/", "COPY ctxnotes.txt /n"),
				      &(dtn_dockerfile_opts){.context_dir = "./ctx"});
	dtn_image_dockerfile_commands(img, DTN_STRV("COPY files/hello.txt /h"), NULL);
	dtn_image_dockerfile_commands(img, (const char *const[]){NULL}, NULL);
	/* the SDK cuts "./ctx" by characters ("pp.py") and keeps "ctx/ctxnotes.txt" */
	assert_context(img, 0, "ctx/app.py", "app.py", DTN_CONTEXT_FILE, "dockerfile_commands");
	assert_context(img, 1, "ctx/ctxnotes.txt", "ctxnotes.txt", DTN_CONTEXT_FILE,
		       "dockerfile_commands");
	assert_context(img, 2, "files/hello.txt", "files/hello.txt", DTN_CONTEXT_FILE,
		       "dockerfile_commands");
	snprintf(want_root, sizeof(want_root), "%s/ctx", tree);
	assert_string_equal(dtn_image_context(img, 0)->root, want_root);
	assert_string_equal(dtn_image_context(img, 2)->root, tree);
	assert_df(img, "FROM p\nCOPY app.py /app/\nCOPY ctxnotes.txt /n\nCOPY files/hello.txt /h\n\n");

	assert_fails(dtn_image_dockerfile_commands(dtn_image_base("p"), DTN_STRV("COPY a /b"),
						   &(dtn_dockerfile_opts){.strict_context = true}),
		     DTN_EINVAL, "context_dir");
	assert_fails(dtn_image_dockerfile_commands(dtn_image_base("p"), DTN_STRV("COPY a /b"),
						   &(dtn_dockerfile_opts){.context_dir = "nodir"}),
		     DTN_ENOTFOUND, "nodir");
	img = dtn_image_dockerfile_commands(dtn_image_base("p"),
					    DTN_STRV("RUN true", "COPY ../files/hello.txt /x"),
					    &(dtn_dockerfile_opts){.context_dir = "ctx"});
	err = dtn_image_error(img);
	assert_int_equal(err->code, DTN_EOUTSIDE);
	assert_int_equal(err->line, 2);
	assert_string_equal(err->file, "");
	dtn_image_free(img);
}

/* After the first error, later calls do nothing and the first error is kept. */
static void test_imagedsl_image__sticky_error(void **state)
{
	dtn_image *img;

	(void)state;
	img = dtn_image_base("p");
	dtn_image_env(img, "BAD KEY", "v");
	dtn_image_add_local_file(img, "files/nope.txt", "/x");
	dtn_image_run_commands(img, DTN_STRV("true"));
	assert_int_equal(dtn_image_status(img), DTN_EINVAL);
	assert_non_null(strstr(dtn_image_error(img)->message, "BAD KEY"));
	assert_string_equal(dtn_image_dockerfile(img), "");
	dtn_image_free(img);
	assert_int_equal(dtn_image_status(NULL), DTN_EINVAL);
	assert_null(dtn_image_env(NULL, "A", "b"));
	dtn_image_free(NULL);
}

/* A whole chain with the Nth allocation failing, for every N: no crash, no leak. */
static dtn_image *chain(void)
{
	dtn_image *img = dtn_image_debian_slim("3.12");

	dtn_image_resolve_from(img, ".");
	dtn_image_pip_install(img, DTN_STRV("b", "a"), &(dtn_pip_opts){.index_url = "https://x",
									  .extra_options = " -q "});
	dtn_image_pip_install_from_pyproject(img, "py/basic/pyproject.toml",
					     &(dtn_pip_opts){.optional_dependencies = DTN_STRV("dev")});
	dtn_image_pip_install_from_requirements(img, "requirements.txt", NULL);
	dtn_image_add_local_file(img, "files/with space.txt", "/app/");
	dtn_image_add_local_dir(img, "tree", "/t", &(dtn_dir_opts){.ignore = DTN_STRV("x")});
	dtn_image_env(img, "A", "it's");
	dtn_image_entrypoint(img, DTN_STRV("sh"));
	dtn_image_label(img, "k", "v");
	dtn_image_dockerfile_commands(img, DTN_STRV("COPY app.py /a"),
				      &(dtn_dockerfile_opts){.context_dir = "ctx"});
	return img;
}

static void test_imagedsl_image__allocation_failures(void **state)
{
	dtn_image *img;
	long n;
	int rc;

	(void)state;
	for (n = 1;; n++) {
		tu_fail_alloc_after(n);
		img = chain();
		rc = dtn_image_status(img);
		tu_alloc_reset();
		if (rc == 0) {
			assert_int_equal(dtn_image_context_count(img), 4);
			dtn_image_free(img);
			break;
		}
		assert_int_equal(rc, DTN_ENOMEM);
		dtn_image_free(img);
		assert_true(n < 100000);
	}
	/* the chain needs some allocations, so the loop really did fail some of them */
	assert_true(n > 10);
	tu_fail_alloc_after(1);
	img = dtn_image_base("x");
	assert_int_equal(dtn_image_status(img), DTN_ENOMEM);
	dtn_image_env(img, "A", "b");
	dtn_image_free(img);
	tu_alloc_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagedsl_image__constructors),
		cmocka_unit_test(test_imagedsl_image__pip),
		cmocka_unit_test(test_imagedsl_image__run_env_workdir),
		cmocka_unit_test(test_imagedsl_image__exec_forms),
		cmocka_unit_test(test_imagedsl_image__go_steps),
		cmocka_unit_test(test_imagedsl_image__local_files),
		cmocka_unit_test(test_imagedsl_image__climbing_path),
		cmocka_unit_test(test_imagedsl_image__requirements),
		cmocka_unit_test(test_imagedsl_image__pyproject),
		cmocka_unit_test(test_imagedsl_image__pyproject_syntax_error),
		cmocka_unit_test(test_imagedsl_image__from_dockerfile),
		cmocka_unit_test(test_imagedsl_image__dockerfile_commands),
		cmocka_unit_test(test_imagedsl_image__sticky_error),
		cmocka_unit_test(test_imagedsl_image__allocation_failures),
	};

	return cmocka_run_group_tests_name("imagedsl/image", tests, setup, teardown);
}
