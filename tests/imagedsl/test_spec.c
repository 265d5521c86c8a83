/*
 * test_spec.c - the YAML spec loader: every step in every argument form, the snapshot and
 * volumes model, every kind of error with its position, hostile inputs and allocation
 * failures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtn.h"

/* The preamble dtn_image_debian_slim("3.13") renders; the newest series. */
#define SLIM_313                                                                          \
	"FROM python:3.13.3-slim-bookworm\n"                                              \
	"RUN apt-get update\n"                                                            \
	"RUN apt-get install -y gcc gfortran build-essential\n"                           \
	"RUN pip install --upgrade pip\n"                                                 \
	"RUN echo 'debconf debconf/frontend select Noninteractive' | "                   \
	"debconf-set-selections\n"

/* Specs given as text claim to live in the test data directory, next to the files they
 * name. */
static char spec_name[4096];

static const char *data(const char *rel)
{
	static char buf[4][4096];
	static int next;
	char *p = buf[next++ % 4];
	const char *dir = getenv("DTN_TEST_DATA");

	snprintf(p, sizeof(buf[0]), "%s/spec/%s", dir ? dir : "tests/data", rel);
	return p;
}

static int setup(void **state)
{
	(void)state;
	snprintf(spec_name, sizeof(spec_name), "%s", data("inline.yaml"));
	return 0;
}

static dtn_spec *load_ok(const char *yaml)
{
	dtn_spec *spec = NULL;
	dtn_error err;
	char msg[4096];
	int rc = dtn_spec_load_buffer(&spec, yaml, strlen(yaml), spec_name, &err);

	if (rc != 0) {
		dtn_error_format(&err, msg, sizeof(msg));
		print_error("unexpected error %d: %s\n", rc, msg);
	}
	assert_int_equal(rc, 0);
	assert_non_null(spec);
	assert_int_equal(dtn_image_status(dtn_spec_image(spec)), 0);
	return spec;
}

static void expect_dockerfile(const char *yaml, const char *dockerfile)
{
	dtn_spec *spec = load_ok(yaml);

	assert_string_equal(dtn_image_dockerfile(dtn_spec_image(spec)), dockerfile);
	dtn_spec_free(spec);
}

/* A spec of `base: img` with the given steps (YAML list items indented by four spaces). */
static void expect_steps(const char *steps, const char *lines)
{
	char yaml[8192], dockerfile[8192];

	snprintf(yaml, sizeof(yaml), "image:\n  base: img\n  steps:\n%s", steps);
	snprintf(dockerfile, sizeof(dockerfile), "FROM img\n%s", lines);
	expect_dockerfile(yaml, dockerfile);
}

static void expect_error_named(const char *yaml, size_t len, const char *name, int code,
			       int line, int column, const char *message)
{
	dtn_spec *spec = (dtn_spec *)&spec; /* must be reset to NULL */
	dtn_error err;
	int rc = dtn_spec_load_buffer(&spec, yaml, len, name, &err);

	if (rc != code || err.line != line || err.column != column ||
	    strcmp(err.message, message) != 0)
		print_error("got %d %s:%d:%d: %s\n", rc, err.file, err.line, err.column,
			    err.message);
	assert_int_equal(rc, code);
	assert_null(spec);
	assert_int_equal(err.code, code);
	assert_string_equal(err.file, name);
	assert_int_equal(err.line, line);
	assert_int_equal(err.column, column);
	assert_string_equal(err.message, message);
}

static void expect_error(const char *yaml, int code, int line, int column, const char *message)
{
	expect_error_named(yaml, strlen(yaml), spec_name, code, line, column, message);
}

/* The same for a spec of `base: img` with the given steps; line numbers count from the
 * first step line, which is line 4. */
static void expect_step_error(const char *steps, int code, int line, int column,
			      const char *message)
{
	char yaml[8192];

	snprintf(yaml, sizeof(yaml), "image:\n  base: img\n  steps:\n%s", steps);
	expect_error(yaml, code, line, column, message);
}

/* ---- image sources ---- */

static void test_imagedsl_spec__base(void **state)
{
	(void)state;
	expect_dockerfile("image:\n  base: ubuntu:24.04\n", "FROM ubuntu:24.04\n");
	expect_dockerfile("version: 1\nimage: {base: alpine}\n", "FROM alpine\n");
}

static void test_imagedsl_spec__debian_slim(void **state)
{
	dtn_spec *spec;

	(void)state;
	spec = load_ok("image:\n  debian_slim: \"3.12\"\n");
	assert_string_equal(dtn_image_dockerfile(dtn_spec_image(spec)),
			    "FROM python:3.12.10-slim-bookworm\n"
			    "RUN apt-get update\n"
			    "RUN apt-get install -y gcc gfortran build-essential\n"
			    "RUN pip install --upgrade pip\n"
			    "RUN echo 'debconf debconf/frontend select Noninteractive' | "
			    "debconf-set-selections\n");
	dtn_spec_free(spec);
}

static void test_imagedsl_spec__debian_slim_number_text(void **state)
{
	dtn_spec *spec;

	(void)state;
	/* 3.10 unquoted is the text "3.10", not the number 3.1 */
	spec = load_ok("image:\n  debian_slim: 3.10\n");
	assert_non_null(strstr(dtn_image_dockerfile(dtn_spec_image(spec)),
			       "FROM python:3.10.17-slim-bookworm\n"));
	dtn_spec_free(spec);
}

static void test_imagedsl_spec__debian_slim_newest(void **state)
{
	(void)state;
	expect_dockerfile("image:\n  debian_slim:\n", SLIM_313);
	expect_dockerfile("image:\n  debian_slim: ~\n", SLIM_313);
	expect_dockerfile("image:\n  debian_slim: \"\"\n", SLIM_313);
	expect_dockerfile("image:\n  debianSlim: null\n", SLIM_313);
}

static void test_imagedsl_spec__debian_slim_unsupported(void **state)
{
	(void)state;
	expect_error("image:\n  debian_slim: \"3.8\"\n", DTN_EINVAL, 2, 16,
		     "unsupported Python version \"3.8\": the supported series are 3.9, 3.10, "
		     "3.11, 3.12 and 3.13");
}

static void test_imagedsl_spec__from_dockerfile(void **state)
{
	dtn_spec *spec;
	const dtn_image *img;
	const dtn_context *c;

	(void)state;
	spec = load_ok("image:\n  from_dockerfile: docker/Dockerfile\n  steps:\n"
		       "    - run_commands: echo appended\n");
	img = dtn_spec_image(spec);
	assert_string_equal(dtn_image_dockerfile(img),
			    "FROM alpine:3.20\nCOPY app.py /app/\nCMD [\"python3\", "
			    "\"/app/app.py\"]\nRUN echo appended\n");
	assert_int_equal(dtn_image_context_count(img), 1);
	c = dtn_image_context(img, 0);
	assert_string_equal(c->path, data("docker/app.py"));
	assert_string_equal(c->archive_path, "app.py");
	assert_int_equal(c->kind, DTN_CONTEXT_FILE);
	dtn_spec_free(spec);
}

static void test_imagedsl_spec__from_dockerfile_mapping(void **state)
{
	dtn_spec *spec;

	(void)state;
	spec = load_ok("image:\n  fromDockerfile:\n    path: docker/Dockerfile\n"
		       "    strict_context: true\n");
	assert_int_equal(dtn_image_context_count(dtn_spec_image(spec)), 1);
	dtn_spec_free(spec);
	expect_error("image:\n  from_dockerfile: {strict_context: true}\n", DTN_EINVAL, 2, 20,
		     "missing key \"path\" in from_dockerfile");
	expect_error("image:\n  from_dockerfile: {path: docker/Dockerfile, strict_context: 1}\n",
		     DTN_EINVAL, 2, 62,
		     "image.from_dockerfile.strict_context: expected true or false, got \"1\"");
}

static void test_imagedsl_spec__from_dockerfile_absolute(void **state)
{
	char yaml[8192];
	dtn_spec *spec;

	(void)state;
	snprintf(yaml, sizeof(yaml), "image:\n  from_dockerfile: \"%s\"\n",
		 data("docker/Dockerfile"));
	spec = load_ok(yaml);
	assert_int_equal(dtn_image_context_count(dtn_spec_image(spec)), 1);
	dtn_spec_free(spec);
}

/* An error inside the Dockerfile keeps the Dockerfile's own position. */
static void test_imagedsl_spec__from_dockerfile_error_in_dockerfile(void **state)
{
	const char *yaml = "image:\n  from_dockerfile: docker-bad/Dockerfile\n";
	dtn_spec *spec = NULL;
	dtn_error err;
	int rc;

	(void)state;
	rc = dtn_spec_load_buffer(&spec, yaml, strlen(yaml), spec_name, &err);
	assert_true(rc < 0);
	assert_null(spec);
	assert_int_equal(err.code, rc);
	assert_string_equal(err.file, data("docker-bad/Dockerfile"));
	assert_int_equal(err.line, 3);
}

static void test_imagedsl_spec__from_dockerfile_missing(void **state)
{
	dtn_error err;
	dtn_spec *spec = NULL;
	const char *yaml = "image:\n  from_dockerfile: nope/Dockerfile\n";

	(void)state;
	assert_int_equal(dtn_spec_load_buffer(&spec, yaml, strlen(yaml), spec_name, &err),
			 DTN_ENOTFOUND);
	assert_null(spec);
	assert_string_equal(err.file, spec_name);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 20);
	assert_non_null(strstr(err.message, "nope/Dockerfile"));
}

/* ---- pip steps ---- */

static void test_imagedsl_spec__pip_install_forms(void **state)
{
	(void)state;
	expect_steps("    - pip_install: requests\n", "RUN python -m pip install requests\n");
	expect_steps("    - pip_install: [requests, pytest]\n",
		     "RUN python -m pip install pytest requests\n");
	expect_steps("    - pipInstall:\n        - b\n        - [a, [c]]\n",
		     "RUN python -m pip install a b c\n");
	expect_steps("    - pip_install: []\n", "");
	expect_steps("    - pip_install: [1.5, true]\n",
		     "RUN python -m pip install 1.5 true\n");
}

static void test_imagedsl_spec__pip_install_mapping(void **state)
{
	(void)state;
	expect_steps("    - pip_install:\n"
		     "        packages: torch\n"
		     "        find_links: /wheels\n"
		     "        index_url: https://x.org/simple\n"
		     "        extra_index_urls: [https://a.org, https://b.org]\n"
		     "        pre: true\n"
		     "        extra_options: \"  --no-cache-dir  \"\n",
		     "RUN python -m pip install torch --find-links /wheels --index-url "
		     "https\\://x.org/simple --extra-index-url https\\://a.org --extra-index-url "
		     "https\\://b.org --pre --no-cache-dir\n");
	expect_steps("    - pip_install: {packages: [a], findLinks: [/w1, /w2], indexUrl: i,"
		     " extraIndexUrls: e, pre: no, extraOptions: -q}\n",
		     "RUN python -m pip install a --find-links /w1 --find-links /w2 "
		     "--index-url i --extra-index-url e -q\n");
}

static void test_imagedsl_spec__pip_install_from_requirements(void **state)
{
	dtn_spec *spec;
	const dtn_context *c;

	(void)state;
	expect_steps("    - pip_install_from_requirements: requirements.txt\n",
		     "COPY requirements.txt /.requirements.txt\n"
		     "RUN python -m pip install -r /.requirements.txt\n");
	expect_steps("    - pipInstallFromRequirements:\n"
		     "        path: requirements.txt\n"
		     "        index_url: https://x.org\n"
		     "        pre: yes\n",
		     "COPY requirements.txt /.requirements.txt\n"
		     "RUN python -m pip install -r /.requirements.txt --index-url "
		     "https\\://x.org --pre\n");
	spec = load_ok("image:\n  base: img\n  steps:\n"
		       "    - pip_install_from_requirements: requirements.txt\n");
	assert_int_equal(dtn_image_context_count(dtn_spec_image(spec)), 1);
	c = dtn_image_context(dtn_spec_image(spec), 0);
	assert_string_equal(c->source, "requirements.txt");
	assert_string_equal(c->path, data("requirements.txt"));
	assert_string_equal(c->archive_path, "requirements.txt");
	assert_int_equal(c->kind, DTN_CONTEXT_FILE);
	dtn_spec_free(spec);
}

static void test_imagedsl_spec__pip_install_from_pyproject(void **state)
{
	(void)state;
	expect_steps("    - pip_install_from_pyproject: pyproject.toml\n",
		     "RUN python -m pip install numpy pandas\\>\\=2\n");
	expect_steps("    - pipInstallFromPyproject:\n"
		     "        path: pyproject.toml\n"
		     "        optional_dependencies: dev\n"
		     "        extra_options: -U\n",
		     "RUN python -m pip install numpy pandas\\>\\=2 pytest -U\n");
	expect_steps("    - pip_install_from_pyproject: {path: pyproject.toml,"
		     " optionalDependencies: [docs, dev]}\n",
		     "RUN python -m pip install numpy pandas\\>\\=2 pytest sphinx\n");
}

/* ---- local files ---- */

static void test_imagedsl_spec__add_local_file(void **state)
{
	dtn_spec *spec;
	const dtn_context *c;

	(void)state;
	expect_steps("    - add_local_file: [files/hello.txt, /app/]\n",
		     "COPY files/hello.txt /app/hello.txt\n");
	expect_steps("    - addLocalFile: {local: files/hello.txt, remote: /app/h.txt}\n",
		     "COPY files/hello.txt /app/h.txt\n");
	spec = load_ok("image:\n  base: img\n  steps:\n"
		       "    - add_local_file: [./files/hello.txt, /app/]\n");
	assert_int_equal(dtn_image_context_count(dtn_spec_image(spec)), 1);
	c = dtn_image_context(dtn_spec_image(spec), 0);
	assert_string_equal(c->source, "./files/hello.txt");
	assert_string_equal(c->path, data("files/hello.txt"));
	assert_string_equal(c->archive_path, "./files/hello.txt");
	assert_string_equal(c->step, "add_local_file");
	assert_int_equal(c->kind, DTN_CONTEXT_FILE);
	dtn_spec_free(spec);
}

static void test_imagedsl_spec__add_local_dir(void **state)
{
	dtn_spec *spec;
	const dtn_context *c;

	(void)state;
	expect_steps("    - add_local_dir: [src, /app/src]\n", "COPY src /app/src\n");
	spec = load_ok("image:\n  base: img\n  steps:\n"
		       "    - addLocalDir: {local: src, remote: /app, ignore: [\"*.pyc\", [tmp]]}\n"
		       "    - add_local_dir: {local: src/pkg, remote: /pkg, ignore: \"*.so\"}\n");
	assert_string_equal(dtn_image_dockerfile(dtn_spec_image(spec)),
			    "FROM img\nCOPY src /app\nCOPY src/pkg /pkg\n");
	assert_int_equal(dtn_image_context_count(dtn_spec_image(spec)), 2);
	c = dtn_image_context(dtn_spec_image(spec), 0);
	assert_string_equal(c->path, data("src"));
	assert_int_equal(c->kind, DTN_CONTEXT_DIR);
	assert_string_equal(c->step, "add_local_dir");
	assert_int_equal(dtn_strv_len(c->ignore), 2);
	assert_string_equal(c->ignore[0], "*.pyc");
	assert_string_equal(c->ignore[1], "tmp");
	c = dtn_image_context(dtn_spec_image(spec), 1);
	assert_int_equal(dtn_strv_len(c->ignore), 1);
	assert_string_equal(c->ignore[0], "*.so");
	dtn_spec_free(spec);
}

/* ---- commands ---- */

static void test_imagedsl_spec__run_commands(void **state)
{
	(void)state;
	expect_steps("    - run_commands: echo one\n", "RUN echo one\n");
	expect_steps("    - runCommands:\n        - echo a\n        - [sh, -c, echo \"hi\"]\n"
		     "        - echo b\n",
		     "RUN echo a\nRUN \"sh\" \"-c\" \"echo \\\\\\\"hi\\\\\\\"\"\nRUN echo b\n");
	expect_steps("    - run_commands: []\n", "");
	expect_steps("    - run_commands: |\n        echo a\n", "RUN echo a\n\n");
}

static void test_imagedsl_spec__dockerfile_commands(void **state)
{
	dtn_spec *spec;
	const dtn_context *c;

	(void)state;
	expect_steps("    - dockerfile_commands: [\"RUN echo hi\", \"USER root\"]\n",
		     "RUN echo hi\nUSER root\n");
	expect_steps("    - dockerfile_commands: \"STOPSIGNAL SIGTERM\"\n",
		     "STOPSIGNAL SIGTERM\n");
	spec = load_ok("image:\n  base: img\n  steps:\n"
		       "    - dockerfileCommands:\n"
		       "        commands: [\"COPY app.py /srv/\"]\n"
		       "        contextDir: ctx\n"
		       "        strictContext: true\n");
	assert_string_equal(dtn_image_dockerfile(dtn_spec_image(spec)),
			    "FROM img\nCOPY app.py /srv/\n");
	assert_int_equal(dtn_image_context_count(dtn_spec_image(spec)), 1);
	c = dtn_image_context(dtn_spec_image(spec), 0);
	assert_string_equal(c->path, data("ctx/app.py"));
	assert_string_equal(c->archive_path, "app.py");
	dtn_spec_free(spec);
}

/* A DSL error on a line of the joined commands is reported at the item holding that line. */
static void test_imagedsl_spec__dockerfile_commands_error_line(void **state)
{
	dtn_spec *spec = NULL;
	dtn_error err;
	const char *yaml = "image:\n  base: img\n  steps:\n"
			   "    - dockerfile_commands:\n"
			   "        context_dir: ctx\n"
			   "        strict_context: true\n"
			   "        commands:\n"
			   "          - RUN echo one\n"
			   "          - |\n"
			   "            RUN echo two\n"
			   "            COPY ../full.yaml /x/\n"
			   "          - RUN echo three\n";

	(void)state;
	assert_int_equal(dtn_spec_load_buffer(&spec, yaml, strlen(yaml), spec_name, &err),
			 DTN_EOUTSIDE);
	assert_null(spec);
	assert_string_equal(err.file, spec_name);
	assert_int_equal(err.line, 9);
	assert_int_equal(err.column, 13);
}

/* ---- key/value steps ---- */

static void test_imagedsl_spec__env(void **state)
{
	(void)state;
	expect_steps("    - env: {PORT: 8000, NAME: a b, DEBUG: false, EMPTY: \"\"}\n",
		     "ENV PORT=8000\nENV NAME='a b'\nENV DEBUG=false\nENV EMPTY=''\n");
	/* the reference SDK's order: keys that are array indexes first, in numeric order, then
	 * the others in document order ("01" is not an index) */
	expect_steps("    - env:\n        B: 1\n        10: x\n        2: y\n        01: z\n"
		     "        A: w\n",
		     "ENV 2=y\nENV 10=x\nENV B=1\nENV 01=z\nENV A=w\n");
	expect_steps("    - env: {\"4294967295\": a, \"4294967294\": b}\n",
		     "ENV 4294967294=b\nENV 4294967295=a\n");
	expect_steps("    - env: {}\n", "");
}

static void test_imagedsl_spec__label(void **state)
{
	(void)state;
	expect_steps("    - label: {version: 1.0, maintainer: me}\n",
		     "LABEL version=\"1.0\"\nLABEL maintainer=\"me\"\n");
}

static void test_imagedsl_spec__workdir_user(void **state)
{
	(void)state;
	expect_steps("    - workdir: /home/daytona\n    - user: daytona\n",
		     "WORKDIR /home/daytona\nUSER daytona\n");
	expect_steps("    - user: 1000\n", "USER 1000\n");
}

static void test_imagedsl_spec__entrypoint_cmd(void **state)
{
	(void)state;
	expect_steps("    - entrypoint: [sleep, infinity]\n    - cmd: [\"-c\", 1]\n",
		     "ENTRYPOINT [\"sleep\", \"infinity\"]\nCMD [\"-c\", \"1\"]\n");
	expect_steps("    - cmd: []\n", "CMD []\n");
}

static void test_imagedsl_spec__apt_get(void **state)
{
	(void)state;
	expect_steps("    - apt_get: git\n",
		     "RUN apt-get update && apt-get install -y git && rm -rf "
		     "/var/lib/apt/lists/*\n");
	expect_steps("    - aptGet: [git, [curl]]\n",
		     "RUN apt-get update && apt-get install -y git curl && rm -rf "
		     "/var/lib/apt/lists/*\n");
}

static void test_imagedsl_spec__expose(void **state)
{
	(void)state;
	expect_steps("    - expose: 8080\n", "EXPOSE 8080\n");
	expect_steps("    - expose: [8080, \"53/udp\"]\n", "EXPOSE 8080 53/udp\n");
}

static void test_imagedsl_spec__volume(void **state)
{
	(void)state;
	expect_steps("    - volume: /data\n", "VOLUME [\"/data\"]\n");
	expect_steps("    - volume: [/data, /logs]\n", "VOLUME [\"/data\", \"/logs\"]\n");
}

static void test_imagedsl_spec__anchors_and_aliases(void **state)
{
	(void)state;
	expect_steps("    - pip_install: &base [b, a]\n"
		     "    - pip_install: {packages: [*base, c]}\n"
		     "    - env: &env {X: 1}\n"
		     "    - env: *env\n",
		     "RUN python -m pip install a b\nRUN python -m pip install a b c\n"
		     "ENV X=1\nENV X=1\n");
}

static void test_imagedsl_spec__no_steps(void **state)
{
	(void)state;
	expect_dockerfile("image:\n  base: a\n  steps:\n", "FROM a\n");
	expect_dockerfile("image:\n  base: a\n  steps: []\n", "FROM a\n");
}

/* ---- snapshot and volumes ---- */

static void test_imagedsl_spec__snapshot_and_volumes(void **state)
{
	dtn_spec *spec = NULL;
	dtn_error err;
	const dtn_spec_snapshot *snap;
	const dtn_spec_volume *v;

	(void)state;
	assert_int_equal(dtn_spec_load(&spec, data("full.yaml"), &err), 0);
	assert_string_equal(dtn_image_dockerfile(dtn_spec_image(spec)),
			    "FROM python:3.12-slim\n"
			    "RUN python -m pip install pytest requests\n"
			    "RUN apt-get update && apt-get install -y git && rm -rf "
			    "/var/lib/apt/lists/*\n"
			    "COPY files/hello.txt /home/daytona/hello.txt\n"
			    "ENV PORT=8000\n"
			    "WORKDIR /home/daytona\n"
			    "ENTRYPOINT [\"sleep\", \"infinity\"]\n");
	snap = dtn_spec_snapshot_info(spec);
	assert_string_equal(snap->name, "data-science");
	assert_string_equal(snap->region, "us");
	assert_int_equal(snap->cpu, 2);
	assert_int_equal(snap->gpu, 0);
	assert_int_equal(snap->memory, 4);
	assert_int_equal(snap->disk, 8);
	assert_int_equal(dtn_spec_volume_count(spec), 2);
	v = dtn_spec_volume_at(spec, 0);
	assert_string_equal(v->name, "datasets");
	assert_string_equal(v->mount_path, "/home/daytona/data");
	assert_string_equal(v->subpath, "team-a");
	v = dtn_spec_volume_at(spec, 1);
	assert_string_equal(v->name, "models");
	assert_string_equal(v->mount_path, "/models");
	assert_null(v->subpath);
	assert_null(dtn_spec_volume_at(spec, 2));
	dtn_spec_free(spec);
}

static void test_imagedsl_spec__snapshot_absent(void **state)
{
	dtn_spec *spec;
	const dtn_spec_snapshot *snap;

	(void)state;
	spec = load_ok("image: {base: a}\nsnapshot:\nvolumes:\n");
	snap = dtn_spec_snapshot_info(spec);
	assert_null(snap->name);
	assert_null(snap->region);
	assert_int_equal(snap->cpu + snap->gpu + snap->memory + snap->disk, 0);
	assert_int_equal(dtn_spec_volume_count(spec), 0);
	assert_null(dtn_spec_volume_at(spec, 0));
	dtn_spec_free(spec);
	spec = load_ok("image: {base: a}\nsnapshot: {name: n, resources: {memory: 16}}\n");
	snap = dtn_spec_snapshot_info(spec);
	assert_string_equal(snap->name, "n");
	assert_int_equal(snap->memory, 16);
	assert_int_equal(snap->cpu, 0);
	dtn_spec_free(spec);
}

/* snapshot's cmd, entrypoint and workdir come after every step, in the order written. */
static void test_imagedsl_spec__snapshot_steps_after_image(void **state)
{
	(void)state;
	expect_dockerfile("snapshot:\n  cmd: [a]\n  workdir: /w\n"
			  "image:\n  base: img\n  steps:\n    - user: u\n",
			  "FROM img\nUSER u\nCMD [\"a\"]\nWORKDIR /w\n");
}

static void test_imagedsl_spec__null_arguments(void **state)
{
	(void)state;
	assert_int_equal(dtn_spec_load(NULL, "x", NULL), DTN_EINVAL);
	assert_int_equal(dtn_spec_load_buffer(NULL, "", 0, "x", NULL), DTN_EINVAL);
	assert_null(dtn_spec_image(NULL));
	assert_int_equal(dtn_spec_volume_count(NULL), 0);
	assert_null(dtn_spec_volume_at(NULL, 0));
	assert_null(dtn_spec_snapshot_info(NULL)->name);
	dtn_spec_free(NULL);
}

/* ---- errors: keys ---- */

static void test_imagedsl_spec__unknown_step(void **state)
{
	(void)state;
	expect_step_error("    - pip_instal: [a]\n", DTN_EINVAL, 4, 7,
			  "unknown step \"pip_instal\" (did you mean \"pip_install\"?)");
	expect_step_error("    - aptget: [a]\n", DTN_EINVAL, 4, 7,
			  "unknown step \"aptget\" (did you mean \"aptGet\"?)");
	expect_step_error("    - make_coffee: [a]\n", DTN_EINVAL, 4, 7,
			  "unknown step \"make_coffee\"");
}

static void test_imagedsl_spec__unknown_key(void **state)
{
	(void)state;
	expect_step_error("    - pip_install:\n        packages: [a]\n        index_ur: x\n",
			  DTN_EINVAL, 6, 9,
			  "unknown key \"index_ur\" in pip_install (did you mean \"index_url\"?)");
	expect_step_error("    - add_local_dir: {local: src, remote: /x, exclude: [a]}\n",
			  DTN_EINVAL, 4, 47, "unknown key \"exclude\" in add_local_dir");
	expect_error("imag:\n  base: a\n", DTN_EINVAL, 1, 1,
		     "unknown key \"imag\" (did you mean \"image\"?)");
	expect_error("image:\n  base: a\n  setps: []\n", DTN_EINVAL, 3, 3,
		     "unknown key \"setps\" in image (did you mean \"steps\"?)");
	expect_error("image: {base: a}\nsnapshot: {nmae: x}\n", DTN_EINVAL, 2, 12,
		     "unknown key \"nmae\" in snapshot (did you mean \"name\"?)");
	expect_error("image: {base: a}\nsnapshot: {resources: {cpus: 1}}\n", DTN_EINVAL, 2, 24,
		     "unknown key \"cpus\" in snapshot.resources (did you mean \"cpu\"?)");
	expect_error("image: {base: a}\nvolumes:\n  - name: v\n    mount: /x\n", DTN_EINVAL, 4, 5,
		     "unknown key \"mount\" in volumes");
	expect_error("image: {base: a}\nvolumes:\n  - name: v\n    mount_pth: /x\n", DTN_EINVAL, 4,
		     5, "unknown key \"mount_pth\" in volumes (did you mean \"mount_path\"?)");
	expect_error("image: {base: a}\n[x]: 1\n", DTN_EINVAL, 2, 1,
		     "a key must be a string, got a list");
}

static void test_imagedsl_spec__duplicate_key(void **state)
{
	(void)state;
	expect_error("image: {base: a}\nimage: {base: b}\n", DTN_EINVAL, 2, 1,
		     "duplicate key \"image\"");
	expect_step_error("    - pip_install:\n        packages: [a]\n        indexUrl: x\n"
			  "        index_url: y\n",
			  DTN_EINVAL, 7, 9, "duplicate key \"index_url\" in pip_install");
	expect_step_error("    - env:\n        A: 1\n        B: 2\n        A: 3\n        B: 4\n",
			  DTN_EINVAL, 7, 9, "duplicate key \"A\" in env");
}

static void test_imagedsl_spec__missing_key(void **state)
{
	(void)state;
	expect_error("version: 1\n", DTN_EINVAL, 1, 1, "missing key \"image\"");
	expect_step_error("    - pip_install:\n        index_url: x\n", DTN_EINVAL, 5, 9,
			  "missing key \"packages\" in pip_install");
	expect_step_error("    - add_local_file: {local: a}\n", DTN_EINVAL, 4, 23,
			  "missing key \"remote\" in add_local_file");
	expect_step_error("    - dockerfile_commands: {context_dir: ctx}\n", DTN_EINVAL, 4, 28,
			  "missing key \"commands\" in dockerfile_commands");
	expect_step_error("    - pip_install_from_pyproject: {optional_dependencies: [dev]}\n",
			  DTN_EINVAL, 4, 35,
			  "missing key \"path\" in pip_install_from_pyproject");
	expect_error("image: {base: a}\nvolumes:\n  - mount_path: /x\n", DTN_EINVAL, 3, 5,
		     "missing key \"name\" in volumes");
	expect_error("image: {base: a}\nvolumes:\n  - name: x\n", DTN_EINVAL, 3, 5,
		     "missing key \"mount_path\" in volumes");
}

/* ---- errors: shapes and values ---- */

static void test_imagedsl_spec__wrong_shape(void **state)
{
	(void)state;
	expect_step_error("    - pip_install:\n", DTN_EINVAL, 4, 19,
			  "pip_install: expected a string, a list or a mapping, got null");
	expect_step_error("    - pip_install: [a, {b: c}]\n", DTN_EINVAL, 4, 24,
			  "pip_install: expected a list of strings, got a mapping in the list");
	expect_step_error("    - entrypoint: sleep\n", DTN_EINVAL, 4, 19,
			  "entrypoint: must be a list of strings, got a string");
	expect_step_error("    - cmd: [a, [b]]\n", DTN_EINVAL, 4, 16,
			  "cmd: expected a list of strings, got a list in the list");
	expect_step_error("    - env: [A=1]\n", DTN_EINVAL, 4, 12,
			  "env: expected a mapping of names to values, got a list");
	expect_step_error("    - env: {A: }\n", DTN_EINVAL, 4, 16,
			  "env.A: expected a string, got null");
	expect_step_error("    - env:\n        ? [a]\n        : b\n", DTN_EINVAL, 5, 11,
			  "env: a name must be a string, got a list");
	expect_step_error("    - label: {~: b}\n", DTN_EINVAL, 4, 15,
			  "label: a name must be a string, got null");
	expect_step_error("    - workdir: [a]\n", DTN_EINVAL, 4, 16,
			  "workdir: expected a string, got a list");
	expect_step_error("    - add_local_file: [a, b, c]\n", DTN_EINVAL, 4, 23,
			  "add_local_file: expected [local, remote], got a list of 3 items");
	expect_step_error("    - add_local_dir: src\n", DTN_EINVAL, 4, 22,
			  "add_local_dir: expected [local, remote] or a mapping, got a string");
	expect_step_error("    - pip_install_from_requirements: [a]\n", DTN_EINVAL, 4, 38,
			  "pip_install_from_requirements: expected a path or a mapping, got a "
			  "list");
	expect_step_error("    - run_commands: [{a: b}]\n", DTN_EINVAL, 4, 22,
			  "run_commands: expected a string, got a mapping");
	expect_step_error("    - run_commands: [[a, [b]]]\n", DTN_EINVAL, 4, 26,
			  "run_commands: expected a list of strings, got a list in the list");
	expect_step_error("    - apt_get: {a: b}\n", DTN_EINVAL, 4, 16,
			  "apt_get: expected a string or a list, got a mapping");
	expect_error("image: [base]\n", DTN_EINVAL, 1, 8, "image: expected a mapping, got a list");
	expect_error("image:\n  base: a\n  steps: {pip_install: a}\n", DTN_EINVAL, 3, 10,
		     "image.steps: expected a list of steps, got a mapping");
	expect_error("- image\n", DTN_EINVAL, 1, 1, "the spec must be a mapping, got a list");
	expect_error("image: {base: ~}\n", DTN_EINVAL, 1, 15, "image.base: expected a string, got null");
	expect_error("image: {base: \"a\\0b\"}\n", DTN_EINVAL, 1, 15,
		     "image.base: a string may not contain a NUL character");
}

static void test_imagedsl_spec__bad_values(void **state)
{
	(void)state;
	expect_step_error("    - pip_install: {packages: a, pre: \"true\"}\n", DTN_EINVAL, 4, 39,
			  "pip_install.pre: expected true or false, got \"true\"");
	expect_step_error("    - dockerfile_commands: {commands: [], strict_context: [true]}\n",
			  DTN_EINVAL, 4, 59,
			  "dockerfile_commands.strict_context: expected true or false, got a "
			  "list");
	expect_error("image: {base: a}\nsnapshot: {resources: {cpu: -1}}\n", DTN_EINVAL, 2, 29,
		     "snapshot.resources.cpu: expected a non-negative integer, got \"-1\"");
	expect_error("image: {base: a}\nsnapshot: {resources: {disk: 99999999999}}\n",
		     DTN_EINVAL, 2, 30, "snapshot.resources.disk: 99999999999 is too large");
	expect_error("image: {base: a}\nsnapshot: {resources: {memory: \"4\"}}\n", DTN_EINVAL, 2,
		     32, "snapshot.resources.memory: expected a non-negative integer, got \"4\"");
	expect_error("image: {base: a}\nvolumes:\n  - {name: v, mount_path: data}\n", DTN_EINVAL,
		     3, 27, "volumes.mount_path: must be an absolute path, got \"data\"");
	expect_error("image: {base: a}\nvolumes:\n  - {name: \"\", mount_path: /d}\n", DTN_EINVAL,
		     3, 12, "volumes.name: must not be empty");
	expect_error("image: {base: a}\nvolumes: {name: v}\n", DTN_EINVAL, 2, 10,
		     "volumes: expected a list, got a mapping");
	expect_error("version: 2\nimage: {base: a}\n", DTN_EUNSUPPORTED, 1, 10,
		     "unsupported spec version 2 (this version of dtn reads version 1)");
	expect_error("version: one\nimage: {base: a}\n", DTN_EINVAL, 1, 10,
		     "version: expected a version number, got \"one\"");
}

static void test_imagedsl_spec__image_source(void **state)
{
	(void)state;
	expect_error("image:\n  base: a\n  debian_slim: \"3.12\"\n", DTN_EINVAL, 3, 3,
		     "image: more than one image source (\"base\" and \"debian_slim\")");
	expect_error("image:\n  steps: []\n", DTN_EINVAL, 2, 3,
		     "image: missing the image source (one of base, debian_slim, "
		     "from_dockerfile)");
}

static void test_imagedsl_spec__step_not_one_key(void **state)
{
	(void)state;
	expect_step_error("    - pip_install: [a]\n      apt_get: [b]\n", DTN_EINVAL, 5, 7,
			  "a step must be a mapping with one key; start \"apt_get\" as a new list "
			  "item");
	expect_step_error("    - pip_install\n", DTN_EINVAL, 4, 7,
			  "a step must be a mapping with one key (step: arguments), got a string");
	expect_step_error("    - {}\n", DTN_EINVAL, 4, 7,
			  "a step must be a mapping with one key (step: arguments), got an empty "
			  "mapping");
}

/* ---- errors: the text ---- */

static void test_imagedsl_spec__malformed_yaml(void **state)
{
	(void)state;
	expect_error("image:\n  base: [a\n", DTN_ESYNTAX, 3, 1,
		     "did not find expected ',' or ']' (while parsing a flow sequence at line 2,"
		     " column 9)");
	expect_error("image:\n  base: a\n bad: b\n", DTN_ESYNTAX, 3, 2,
		     "did not find expected key (while parsing a block mapping at line 1, "
		     "column 1)");
	expect_error("image:\n\tbase: a\n", DTN_ESYNTAX, 2, 1,
		     "found character that cannot start any token (while scanning for the next "
		     "token at line 2, column 1)");
	expect_error_named("image: {base: a}\nx: \xff\n", 22, spec_name, DTN_ESYNTAX, 2, 4,
			   "invalid leading UTF-8 octet");
}

static void test_imagedsl_spec__two_documents(void **state)
{
	(void)state;
	expect_error("image: {base: a}\n---\nimage: {base: b}\n", DTN_EINVAL, 2, 1,
		     "the spec must be a single YAML document; a second one starts here");
}

static void test_imagedsl_spec__empty(void **state)
{
	(void)state;
	expect_error("", DTN_EINVAL, 1, 1, "the spec is empty");
	expect_error("# only a comment\n", DTN_EINVAL, 1, 1, "the spec is empty");
	expect_error("~\n", DTN_EINVAL, 1, 1, "the spec must be a mapping, got null");
}

/* ---- errors from the DSL ---- */

static void test_imagedsl_spec__missing_local_file(void **state)
{
	(void)state;
	expect_step_error("    - run_commands: echo\n    - add_local_file: [nope.txt, /x/]\n",
			  DTN_ENOTFOUND, 5, 23, "local file nope.txt does not exist");
	expect_step_error("    - pip_install_from_requirements:\n        path: nope.txt\n",
			  DTN_ENOTFOUND, 5, 9, "requirements file nope.txt does not exist");
}

/* The message the DSL gives for a call, so the test does not restate the DSL's wording. */
static const char *dsl_message(dtn_image *img)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf), "%s", dtn_image_error(img)->message);
	assert_true(dtn_image_status(img) < 0);
	dtn_image_free(img);
	return buf;
}

static void test_imagedsl_spec__dsl_error_position(void **state)
{
	(void)state;
	/* a value with a newline is refused by the DSL, at that value */
	expect_step_error("    - env:\n        A: ok\n        B: \"x\\ny\"\n", DTN_EINVAL, 6, 12,
			  dsl_message(dtn_image_env(dtn_image_base("a"), "B", "x\ny")));
	expect_step_error("    - expose: [80, \"99999\"]\n", DTN_EINVAL, 4, 15,
			  dsl_message(dtn_image_expose(dtn_image_base("a"),
						       DTN_STRV("80", "99999"))));
}

/* ---- files ---- */

static void test_imagedsl_spec__load_file_errors(void **state)
{
	dtn_spec *spec = (dtn_spec *)&spec;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_spec_load(&spec, data("no-such.yaml"), &err), DTN_ENOTFOUND);
	assert_null(spec);
	assert_string_equal(err.file, data("no-such.yaml"));
	assert_int_equal(err.line, 0);
	assert_string_equal(err.message, "cannot read the spec: No such file or directory");
	assert_int_equal(dtn_spec_load(&spec, data("src"), &err), DTN_EIO);
	assert_string_equal(err.file, data("src"));
	assert_string_equal(err.message, "cannot read the spec: Is a directory");
	assert_int_equal(dtn_spec_load(&spec, data("typo.yaml"), &err), DTN_EINVAL);
	assert_string_equal(err.file, data("typo.yaml"));
	assert_int_equal(err.line, 4);
	assert_int_equal(err.column, 7);
	assert_int_equal(dtn_spec_load(&spec, data("typo.yaml"), NULL), DTN_EINVAL);
}

static void test_imagedsl_spec__too_large(void **state)
{
	size_t len = ((size_t)16 << 20) + 1;
	char *big = calloc(1, len), path[] = "/tmp/dtn-spec-big-XXXXXX";
	dtn_spec *spec = NULL;
	dtn_error err;
	int fd;

	(void)state;
	assert_non_null(big);
	assert_int_equal(dtn_spec_load_buffer(&spec, big, len, "big.yaml", &err), DTN_EINVAL);
	assert_string_equal(err.file, "big.yaml");
	assert_string_equal(err.message, "the spec is larger than 16 MiB");
	free(big);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	close(fd);
	assert_int_equal(dtn_spec_load(&spec, path, &err), DTN_EINVAL);
	assert_string_equal(err.message, "the spec is larger than 16 MiB");
	assert_null(spec);
	unlink(path);
}

/* ---- hostile inputs ---- */

static void test_imagedsl_spec__alias_bomb(void **state)
{
	const char *yaml = "image:\n  base: a\n  steps:\n"
			   "    - pip_install: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "    - pip_install: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "    - pip_install: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "    - pip_install: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "    - pip_install: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "    - pip_install: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			   "    - pip_install: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
			   "    - pip_install: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
			   "    - pip_install: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	dtn_spec *spec = NULL;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_spec_load_buffer(&spec, yaml, strlen(yaml), spec_name, &err),
			 DTN_EINVAL);
	assert_null(spec);
	assert_string_equal(err.file, spec_name);
	assert_true(err.line >= 4 && err.line <= 12);
	assert_string_equal(err.message, "the spec has more than 1000000 values (counting every "
					 "use of an alias)");
}

static void test_imagedsl_spec__deep_nesting(void **state)
{
	char yaml[512];

	(void)state;
	snprintf(yaml, sizeof(yaml), "image:\n  base: a\n  steps:\n    - pip_install: %s\n",
		 "[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]");
	expect_error(yaml, DTN_EINVAL, 4, 36, "pip_install: lists nested more than 16 deep");
	/* 16 levels are fine */
	expect_steps("    - pip_install: [[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]\n",
		     "RUN python -m pip install x\n");
}

/* ---- allocation failures ---- */

static long alloc_countdown = -1; /* the call that fails; -1: none */
static long alloc_live;

static void *counting_malloc(size_t size)
{
	void *p;

	if (alloc_countdown == 0)
		return NULL;
	if (alloc_countdown > 0)
		alloc_countdown--;
	if ((p = malloc(size)))
		alloc_live++;
	return p;
}

static void *counting_realloc(void *ptr, size_t size)
{
	void *p;

	if (alloc_countdown == 0)
		return NULL;
	if (alloc_countdown > 0)
		alloc_countdown--;
	p = realloc(ptr, size);
	if (p && !ptr)
		alloc_live++;
	return p;
}

static void counting_free(void *ptr)
{
	if (ptr)
		alloc_live--;
	free(ptr);
}

static void test_imagedsl_spec__allocation_failures(void **state)
{
	const dtn_allocator a = {counting_malloc, counting_realloc, counting_free};
	long n;
	int rc = -1;

	(void)state;
	dtn_set_allocator(&a);
	for (n = 0; n < 100000 && rc != 0; n++) {
		dtn_spec *spec = (dtn_spec *)&spec;
		dtn_error err;

		alloc_live = 0;
		alloc_countdown = n;
		rc = dtn_spec_load(&spec, data("full.yaml"), &err);
		alloc_countdown = -1;
		if (rc == 0) {
			assert_non_null(spec);
			assert_int_equal(dtn_spec_volume_count(spec), 2);
		} else {
			assert_true(rc < 0);
			assert_int_equal(err.code, rc);
			assert_null(spec);
		}
		dtn_spec_free(spec);
		assert_int_equal(alloc_live, 0);
	}
	dtn_set_allocator(NULL);
	assert_int_equal(rc, 0);
	assert_true(n > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagedsl_spec__base),
		cmocka_unit_test(test_imagedsl_spec__debian_slim),
		cmocka_unit_test(test_imagedsl_spec__debian_slim_number_text),
		cmocka_unit_test(test_imagedsl_spec__debian_slim_newest),
		cmocka_unit_test(test_imagedsl_spec__debian_slim_unsupported),
		cmocka_unit_test(test_imagedsl_spec__from_dockerfile),
		cmocka_unit_test(test_imagedsl_spec__from_dockerfile_mapping),
		cmocka_unit_test(test_imagedsl_spec__from_dockerfile_absolute),
		cmocka_unit_test(test_imagedsl_spec__from_dockerfile_error_in_dockerfile),
		cmocka_unit_test(test_imagedsl_spec__from_dockerfile_missing),
		cmocka_unit_test(test_imagedsl_spec__pip_install_forms),
		cmocka_unit_test(test_imagedsl_spec__pip_install_mapping),
		cmocka_unit_test(test_imagedsl_spec__pip_install_from_requirements),
		cmocka_unit_test(test_imagedsl_spec__pip_install_from_pyproject),
		cmocka_unit_test(test_imagedsl_spec__add_local_file),
		cmocka_unit_test(test_imagedsl_spec__add_local_dir),
		cmocka_unit_test(test_imagedsl_spec__run_commands),
		cmocka_unit_test(test_imagedsl_spec__dockerfile_commands),
		cmocka_unit_test(test_imagedsl_spec__dockerfile_commands_error_line),
		cmocka_unit_test(test_imagedsl_spec__env),
		cmocka_unit_test(test_imagedsl_spec__label),
		cmocka_unit_test(test_imagedsl_spec__workdir_user),
		cmocka_unit_test(test_imagedsl_spec__entrypoint_cmd),
		cmocka_unit_test(test_imagedsl_spec__apt_get),
		cmocka_unit_test(test_imagedsl_spec__expose),
		cmocka_unit_test(test_imagedsl_spec__volume),
		cmocka_unit_test(test_imagedsl_spec__anchors_and_aliases),
		cmocka_unit_test(test_imagedsl_spec__no_steps),
		cmocka_unit_test(test_imagedsl_spec__snapshot_and_volumes),
		cmocka_unit_test(test_imagedsl_spec__snapshot_absent),
		cmocka_unit_test(test_imagedsl_spec__snapshot_steps_after_image),
		cmocka_unit_test(test_imagedsl_spec__null_arguments),
		cmocka_unit_test(test_imagedsl_spec__unknown_step),
		cmocka_unit_test(test_imagedsl_spec__unknown_key),
		cmocka_unit_test(test_imagedsl_spec__duplicate_key),
		cmocka_unit_test(test_imagedsl_spec__missing_key),
		cmocka_unit_test(test_imagedsl_spec__wrong_shape),
		cmocka_unit_test(test_imagedsl_spec__bad_values),
		cmocka_unit_test(test_imagedsl_spec__image_source),
		cmocka_unit_test(test_imagedsl_spec__step_not_one_key),
		cmocka_unit_test(test_imagedsl_spec__malformed_yaml),
		cmocka_unit_test(test_imagedsl_spec__two_documents),
		cmocka_unit_test(test_imagedsl_spec__empty),
		cmocka_unit_test(test_imagedsl_spec__missing_local_file),
		cmocka_unit_test(test_imagedsl_spec__dsl_error_position),
		cmocka_unit_test(test_imagedsl_spec__load_file_errors),
		cmocka_unit_test(test_imagedsl_spec__too_large),
		cmocka_unit_test(test_imagedsl_spec__alias_bomb),
		cmocka_unit_test(test_imagedsl_spec__deep_nesting),
		cmocka_unit_test(test_imagedsl_spec__allocation_failures),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
