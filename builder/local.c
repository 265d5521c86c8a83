/*
 * local.c - the local backend: finds a container engine, names the image by the build's
 * identity, reuses it when asked and it exists, otherwise assembles the build directory from
 * the contexts and runs the engine's build, streaming its output as lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtn_otel.h"
#include "hash.h"
#include "local.h"

/* How each engine is spoken to. */
typedef struct engine_kind {
	const char *name;
	const char *args_env;     /* its global options from the environment */
	const char *const *exists; /* the command that succeeds when an image exists */
	const char *build;        /* its build command */
	const char *list_format;  /* "images --format" template giving repository:tag */
} engine_kind;

static const engine_kind kinds[] = {
	{"buildah", "DTN_BUILDAH_ARGS", DTN_STRV("inspect", "--type", "image"), "bud",
	 "{{.Name}}:{{.Tag}}"},
	{"podman", "DTN_PODMAN_ARGS", DTN_STRV("image", "exists"), "build",
	 "{{.Repository}}:{{.Tag}}"},
	{"docker", "DTN_DOCKER_ARGS", DTN_STRV("image", "inspect"), "build",
	 "{{.Repository}}:{{.Tag}}"},
};

static const engine_kind *kind_of(const char *name)
{
	for (size_t i = 0; i < DTN__ARRAY_LEN(kinds); i++)
		if (!strcmp(kinds[i].name, name))
			return &kinds[i];
	return NULL;
}

/* ---- finding the engine ---- */

static int engine_at(dtn_local_engine *out, const char *path, dtn_error *err)
{
	const char *base = dtn__path_basename(path);
	struct stat st;

	for (size_t i = 0; i < DTN__ARRAY_LEN(kinds); i++)
		if (!strncmp(base, kinds[i].name, strlen(kinds[i].name))) {
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0)
				return dtn__error_set(err, DTN_ENOTFOUND, "engine %s: not an "
						      "executable file", path);
			if (strlen(path) >= sizeof(out->path))
				return dtn__error_set(err, DTN_EINVAL, "engine path too long");
			snprintf(out->name, sizeof(out->name), "%s", kinds[i].name);
			snprintf(out->path, sizeof(out->path), "%s", path);
			return 0;
		}
	return dtn__error_set(err, DTN_EINVAL, "engine %s: its name does not say whether it is "
			      "buildah, podman or docker", path);
}

int dtn_local_find_engine(dtn_local_engine *out, const char *engine, dtn_error *err)
{
	dtn_error_clear(err);
	memset(out, 0, sizeof(*out));
	if (engine && strchr(engine, '/'))
		return engine_at(out, engine, err);
	if (engine && *engine && !kind_of(engine))
		return dtn__error_set(err, DTN_EINVAL, "unknown engine \"%s\" (buildah, podman or "
				      "docker, or a path to one)", engine);
	for (size_t i = 0; i < DTN__ARRAY_LEN(kinds); i++) {
		if (engine && *engine && strcmp(engine, kinds[i].name))
			continue;
		if (dtn__find_on_path(kinds[i].name, out->path, sizeof(out->path))) {
			snprintf(out->name, sizeof(out->name), "%s", kinds[i].name);
			return 0;
		}
	}
	memset(out, 0, sizeof(*out));
	if (engine && *engine)
		return dtn__error_set(err, DTN_ENOTFOUND, "%s was not found on PATH", engine);
	return dtn__error_set(err, DTN_ENOTFOUND, "no container engine found on PATH: install "
			      "buildah, podman or docker");
}

/* ---- identity and name ---- */

static int cmp_hash(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Identifies every context (hashes[i] for context i) and the build as a whole. */
static int identify_all(dtn_builder *b, const dtn_image *img, char (*hashes)[DTN__SHA256_HEX],
			char out[DTN__SHA256_HEX], dtn_error *err)
{
	size_t n = dtn_image_context_count(img);
	char(*sorted)[DTN__SHA256_HEX] = dtn__calloc(n ? n : 1, sizeof(*sorted));
	const char *df = dtn_image_dockerfile(img);
	dtn__sha256 *sha = dtn__sha256_new();
	unsigned char digest[DTN__SHA256_LEN];
	int rc = 0;

	if (!sorted || !sha) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		dtn_context_id *id = NULL;

		if ((rc = dtn_builder_identify(b, dtn_image_context(img, i), &id, err)) == 0) {
			memcpy(hashes[i], id->hash, DTN__SHA256_HEX);
			memcpy(sorted[i], id->hash, DTN__SHA256_HEX);
		}
		dtn_context_id_free(id);
	}
	if (rc < 0)
		goto out;
	qsort(sorted, n, sizeof(*sorted), cmp_hash);
	dtn__sha256_init(sha);
	dtn__sha256_update(sha, df, strlen(df));
	for (size_t i = 0; i < n; i++)
		dtn__sha256_update(sha, sorted[i], DTN__SHA256_HEX - 1);
	if (dtn__sha256_final(sha, digest) < 0) {
		rc = dtn__error_set(err, DTN_ERROR, "SHA-256 failed");
		goto out;
	}
	dtn__sha256_hex(out, digest);
out:
	dtn__sha256_free(sha);
	dtn__free(sorted);
	return rc;
}

static int check_image(const dtn_image *img, dtn_error *err)
{
	if (!img)
		return dtn__error_set(err, DTN_EINVAL, "no image");
	if (dtn_image_status(img) < 0) {
		if (err)
			*err = *dtn_image_error(img);
		return dtn_image_status(img);
	}
	return 0;
}

int dtn_local_identity(dtn_builder *b, const dtn_image *img, char out[65], dtn_error *err)
{
	char(*hashes)[DTN__SHA256_HEX];
	size_t n;
	int rc;

	dtn_error_clear(err);
	out[0] = '\0';
	if ((rc = check_image(img, err)) < 0)
		return rc;
	n = dtn_image_context_count(img);
	if (!(hashes = dtn__calloc(n ? n : 1, sizeof(*hashes))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	rc = identify_all(b, img, hashes, out, err);
	dtn__free(hashes);
	return rc;
}

static bool is_sep(char c)
{
	return c == '.' || c == '_' || c == '-';
}

int dtn_local_image_name(char **out, const char *name, const char *identity, dtn_error *err)
{
	dtn__buf buf = DTN__BUF_INIT;
	size_t len;
	char *repo;

	dtn_error_clear(err);
	*out = NULL;
	if (!name || !(repo = dtn__strdup(name)))
		return dtn__error_set(err, name ? DTN_ENOMEM : DTN_EINVAL,
				      name ? "out of memory" : "no snapshot name");
	len = 0;
	for (const char *p = name; *p; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (alnum)
			repo[len++] = c;
		else if (len && is_sep(repo[len - 1]))
			repo[len - 1] = '-'; /* a run of separators becomes one '-' */
		else if (len)
			repo[len++] = is_sep(c) ? c : '-';
	}
	while (len && is_sep(repo[len - 1]))
		len--;
	repo[len] = '\0';
	if (!len) {
		char shown[256];

		dtn__free(repo);
		return dtn__error_set(err, DTN_EINVAL, "snapshot name \"%s\" has nothing usable in "
				      "an image name", dtn__printable(shown, sizeof(shown), name));
	}
	dtn__buf_printf(&buf, "dtn/%s:%s", repo, identity);
	dtn__free(repo);
	if (buf.failed)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	*out = dtn__buf_detach(&buf);
	return 0;
}

/* ---- the build ---- */

typedef struct result_impl {
	dtn_local_result pub;
	dtn_local_engine engine;
	char *image;
	char **failed;
} result_impl;

typedef struct build {
	dtn_builder *b;
	const dtn_image *img;
	const dtn_local_opts *o;
	dtn_error *err;
	const engine_kind *kind;
	char **gargs;           /* the engine's global options */
	bool chroot;            /* buildah without an OCI runtime */
	long long deadline;
	result_impl *res;
	char (*hashes)[DTN__SHA256_HEX];
	char *dir;              /* the build directory */
	char *engine_tmp;       /* the engine's TMPDIR, removed at the end */
	bool tracked;           /* `before` holds buildah's containers from before the build */
	dtn__strv before;
	bool cleanup;           /* engine commands run after a stop: no cancel, a short deadline */
	char *ring[DTN_LOCAL_FAILED_LINES]; /* the last lines of output */
	size_t ring_next, ring_count;
	size_t lines;           /* of the engine's build output */
} build;

/* How long each engine command that cleans up after a stopped build may take. */
#define CLEANUP_MS 60000

static int vphase(build *s, const char *fmt, va_list ap) DTN__PRINTF(2, 0);

/* Writes a phase line through the log callback; its answer: non-zero asks to stop. */
static int vphase(build *s, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	return s->o->log(DTN_LOG_PHASE, line, (size_t)n, s->o->payload);
}

static int phase(build *s, const char *fmt, ...) DTN__PRINTF(2, 3);

static int phase(build *s, const char *fmt, ...)
{
	va_list ap;
	int stop;

	if (!s->o->log)
		return 0;
	va_start(ap, fmt);
	stop = vphase(s, fmt, ap);
	va_end(ap);
	if (stop != 0)
		return dtn__error_set(s->err, DTN_EUSER, "stopped by the log callback");
	return 0;
}

/* Builds argv: the engine, its global options, then `cmd`, each from a NULL-terminated list. */
static char **engine_argv(build *s, const char *const *cmd)
{
	size_t ng = dtn_strv_len((const char *const *)s->gargs), nc = dtn_strv_len(cmd);
	char **argv = dtn__calloc(ng + nc + 2, sizeof(*argv));

	if (!argv)
		return NULL;
	argv[0] = s->res->engine.path;
	for (size_t i = 0; i < ng; i++)
		argv[1 + i] = s->gargs[i];
	for (size_t i = 0; i < nc; i++)
		argv[1 + ng + i] = (char *)cmd[i];
	return argv;
}

static int run_engine(build *s, const char *const *cmd, dtn__line_fn line, void *payload,
		      int *status)
{
	char **argv = engine_argv(s, cmd);
	char *tmp = s->engine_tmp ? dtn__aprintf("TMPDIR=%s", s->engine_tmp) : NULL;
	char tp[16 + 64] = "TRACEPARENT=";
	const char *env[4] = {0};
	size_t n = 0;
	dtn__proc p = {
		.env = env,
		.cancel = s->cleanup ? NULL : s->o->cancel,
		.deadline = s->cleanup ? dtn__local_now_ms() + CLEANUP_MS : s->deadline,
		.line = line,
		.payload = payload,
	};
	int rc;

	if (!argv || (s->engine_tmp && !tmp)) {
		dtn__free(argv);
		return dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	}
	/* BuildKit writes plain lines instead of redrawing a terminal */
	if (!strcmp(s->kind->name, "docker"))
		env[n++] = "BUILDKIT_PROGRESS=plain";
	if (tmp)
		env[n++] = tmp;
	/* the engine's own spans (BuildKit's) join the trace under this phase's span */
	if (dtn_span_traceparent(NULL, tp + 12, sizeof(tp) - 12) > 0)
		env[n++] = tp;
	p.argv = (const char *const *)argv;
	rc = dtn__proc_run(&p, status, s->err);
	dtn__free(argv);
	dtn__free(tmp);
	return rc;
}

/*
 * A directory of its own for the engine's temporary files, where it would make them (TMPDIR,
 * else /var/tmp for buildah and podman), or under opts->tmp_dir: an engine that is stopped
 * (buildah, when interrupted outside a RUN step) leaves them behind, and they go with this
 * directory. Inside the build directory when the other place cannot be written.
 */
static int make_engine_tmp(build *s)
{
	const char *env = getenv("TMPDIR");
	const char *parent = s->o->tmp_dir ? s->o->tmp_dir : env && *env ? env : "/var/tmp";
	char *dir = dtn__aprintf("%s/dtn-engine.XXXXXX", parent);

	if (dir && !mkdtemp(dir)) {
		dtn__free(dir);
		if ((dir = dtn__aprintf("%s/tmp", s->dir)) && mkdir(dir, 0700) != 0) {
			int rc = dtn__error_set(s->err, DTN_EIO, "cannot make %s: %s", dir,
						strerror(errno));

			dtn__free(dir);
			return rc;
		}
	}
	if (!dir)
		return dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	s->engine_tmp = dir;
	return 0;
}

static int prepare_engine(build *s)
{
	const char *env;
	char path[4096];
	int rc;

	if ((rc = dtn_local_find_engine(&s->res->engine, s->o->engine, s->err)) < 0)
		return rc;
	s->kind = kind_of(s->res->engine.name);
	s->res->pub.engine = s->res->engine.name;
	s->res->pub.engine_path = s->res->engine.path;
	if (s->o->engine_args)
		s->gargs = dtn__strv_dup(s->o->engine_args);
	else
		s->gargs = dtn__split_blanks((env = getenv(s->kind->args_env)) ? env : "");
	if (!s->gargs)
		return dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	s->chroot = !strcmp(s->kind->name, "buildah") && !getenv("BUILDAH_ISOLATION") &&
		    !dtn__find_on_path("crun", path, sizeof(path)) &&
		    !dtn__find_on_path("runc", path, sizeof(path));
	return 0;
}

static int image_exists(build *s, bool *exists)
{
	const char *const *ex = s->kind->exists;
	const char *cmd[8] = {0};
	size_t n = 0;
	int status, rc;

	while (ex[n]) {
		cmd[n] = ex[n];
		n++;
	}
	cmd[n] = s->res->image;
	if ((rc = run_engine(s, cmd, NULL, NULL, &status)) < 0)
		return rc;
	*exists = status == 0;
	return 0;
}

static int assemble(build *s)
{
	size_t n = dtn_image_context_count(s->img);
	int rc;

	if ((rc = phase(s, "assembling the build directory from %zu %s", n,
			n == 1 ? "context" : "contexts")) < 0)
		return rc;
	if ((rc = dtn__local_dir_make(&s->dir, s->o->tmp_dir, dtn_image_dockerfile(s->img),
				      s->err)) < 0 ||
	    (rc = make_engine_tmp(s)) < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = dtn__local_dir_add(s->b, s->dir, dtn_image_context(s->img, i), s->hashes[i],
					s->err);
	return rc;
}

/* Keeps the line for failed_lines and hands it to the application. */
static int output_line(const char *line, size_t len, void *payload)
{
	build *s = payload;
	char *copy = dtn__strndup(line, len);

	s->lines++;
	if (copy) {
		dtn__free(s->ring[s->ring_next]);
		s->ring[s->ring_next] = copy;
		s->ring_next = (s->ring_next + 1) % DTN_LOCAL_FAILED_LINES;
		if (s->ring_count < DTN_LOCAL_FAILED_LINES)
			s->ring_count++;
	}
	if (s->o->log)
		return s->o->log(DTN_LOG_OUTPUT, line, len, s->o->payload);
	return 0;
}

/* Moves the kept lines, oldest first, to the result. */
static int keep_failed_lines(build *s)
{
	char **v = dtn__calloc(s->ring_count + 1, sizeof(*v));
	size_t start = (s->ring_next + DTN_LOCAL_FAILED_LINES - s->ring_count) %
		       DTN_LOCAL_FAILED_LINES;

	if (!v)
		return DTN_ENOMEM;
	for (size_t i = 0; i < s->ring_count; i++) {
		size_t k = (start + i) % DTN_LOCAL_FAILED_LINES;

		v[i] = s->ring[k];
		s->ring[k] = NULL;
	}
	dtn__strv_free_array(s->res->failed);
	s->res->failed = v;
	s->res->pub.failed_lines = (const char *const *)v;
	return 0;
}

static const char *last_line(build *s)
{
	for (size_t i = 0; i < s->ring_count; i++) {
		size_t k = (s->ring_next + 2 * DTN_LOCAL_FAILED_LINES - 1 - i) %
			   DTN_LOCAL_FAILED_LINES;

		if (s->ring[k] && s->ring[k][strspn(s->ring[k], " \t")])
			return s->ring[k];
	}
	return NULL;
}

static int run_build(build *s)
{
	char *df = dtn__aprintf("%s/Dockerfile", s->dir), *ign = dtn__aprintf("%s/ignore", s->dir),
	     *ctx = dtn__aprintf("%s/context", s->dir), *dockerignore = NULL;
	const char *cmd[16] = {0};
	size_t n = 0;
	int status = -1, rc;

	if (!df || !ign || !ctx) {
		rc = dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	cmd[n++] = s->kind->build;
	if (strcmp(s->kind->name, "docker")) {
		cmd[n++] = "--ignorefile";
		cmd[n++] = ign;
	} else if (!(dockerignore = dtn__aprintf("%s/Dockerfile.dockerignore", s->dir)) ||
		   rename(ign, dockerignore) != 0) {
		/* BuildKit takes <Dockerfile>.dockerignore over the context's .dockerignore */
		rc = dtn__error_set(s->err, DTN_EIO, "cannot write %s", s->dir);
		goto out;
	}
	if (s->chroot) {
		cmd[n++] = "--isolation";
		cmd[n++] = "chroot";
	}
	/* an image as Docker (and so Daytona) makes it: the OCI format has no HEALTHCHECK,
	 * SHELL or ONBUILD, which buildah and podman would drop */
	if (strcmp(s->kind->name, "docker") && !getenv("BUILDAH_FORMAT")) {
		cmd[n++] = "--format";
		cmd[n++] = "docker";
	}
	cmd[n++] = "-f";
	cmd[n++] = df;
	cmd[n++] = "-t";
	cmd[n++] = s->res->image;
	cmd[n++] = ctx;
	if ((rc = phase(s, "building %s with %s", s->res->image, s->kind->name)) < 0)
		goto out;
	rc = run_engine(s, cmd, output_line, s, &status);
	s->res->pub.status = status;
	if (rc == 0 && status != 0) {
		const char *last = last_line(s);
		char shown[512];

		rc = dtn__error_set(s->err, DTN_EBUILD, "the build of %s failed: %s exited with "
				    "status %d%s%s", s->res->image, s->kind->name, status,
				    last ? ": " : "", last ? dtn__printable(shown, sizeof(shown),
									     last) : "");
		if (keep_failed_lines(s) < 0)
			rc = dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	}
out:
	dtn__free(df);
	dtn__free(ign);
	dtn__free(ctx);
	dtn__free(dockerignore);
	return rc;
}

/* Whether ref ("localhost/dtn/x:tag", "docker.io/dtn/x:tag", "dtn/x:tag") is `repo` with
 * another tag than `tag`. */
static bool earlier_build(const char *ref, const char *repo, const char *tag)
{
	static const char *const registries[] = {"", "localhost/", "docker.io/"};
	size_t rlen = strlen(repo);

	for (size_t i = 0; i < DTN__ARRAY_LEN(registries); i++) {
		size_t plen = strlen(registries[i]);

		if (!strncmp(ref, registries[i], plen) && !strncmp(ref + plen, repo, rlen) &&
		    ref[plen + rlen] == ':')
			return strcmp(ref + plen + rlen + 1, tag) != 0 &&
			       strcmp(ref + plen + rlen + 1, "<none>") != 0;
	}
	return false;
}

static int collect_line(const char *line, size_t len, void *payload)
{
	(void)len;
	return dtn__strv_push(payload, line) < 0;
}

/* --replace: removes the images of earlier builds of the same name. */
static int remove_earlier(build *s)
{
	const char *list[] = {"images", "--format", s->kind->list_format, NULL};
	dtn__strv refs = {0};
	char *repo = dtn__strdup(s->res->image), *colon;
	int status, rc;

	if (!repo)
		return dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	colon = strrchr(repo, ':');
	*colon = '\0';
	if ((rc = run_engine(s, list, collect_line, &refs, &status)) == DTN_EUSER)
		rc = dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && status == 0 && i < refs.len; i++) {
		const char *rmi[] = {"rmi", refs.items[i], NULL};

		if (!earlier_build(refs.items[i], repo, colon + 1))
			continue;
		if ((rc = phase(s, "removing %s, an earlier build", refs.items[i])) < 0)
			break;
		rc = run_engine(s, rmi, output_line, s, &status);
		if (rc == 0 && status != 0)
			rc = phase(s, "warning: %s could not be removed", refs.items[i]);
		status = 0;
	}
	dtn__strv_free(&refs);
	dtn__free(repo);
	return rc;
}

static int identify_phase(build *s)
{
	size_t n = dtn_image_context_count(s->img);
	int rc;

	if (!(s->hashes = dtn__calloc(n ? n : 1, sizeof(*s->hashes))))
		return dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	if ((rc = phase(s, "identifying %zu build %s", n, n == 1 ? "context" : "contexts")) < 0 ||
	    (rc = identify_all(s->b, s->img, s->hashes, s->res->pub.identity, s->err)) < 0 ||
	    (rc = dtn_local_image_name(&s->res->image, s->o->name, s->res->pub.identity,
				       s->err)) < 0)
		return rc;
	s->res->pub.image = s->res->image;
	dtn_span_set_int(dtn_span_current(), "dtn.context.count", (int64_t)n);
	dtn_span_set_str(dtn_span_current(), "dtn.build.identity", s->res->pub.identity);
	return 0;
}

static int lookup_phase(build *s)
{
	bool exists = false;
	int rc = image_exists(s, &exists);

	dtn_span_set_str(dtn_span_current(), "dtn.image.tag", s->res->image);
	dtn_span_set_bool(dtn_span_current(), "dtn.image.exists", exists);
	if (rc == 0 && exists) {
		s->res->pub.reused = true;
		rc = phase(s, "%s is already built: reusing it", s->res->image);
	}
	return rc;
}

/* A phase line that cannot stop anything (after the build was stopped). */
static void notice(build *s, const char *fmt, ...) DTN__PRINTF(2, 3);

static void notice(build *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->o->log)
		return;
	va_start(ap, fmt);
	vphase(s, fmt, ap);
	va_end(ap);
}

/* buildah's containers, one "ID NAME" line each (the name last); 0 with *ok when listed. */
static int list_containers(build *s, dtn__strv *out, bool *ok)
{
	const char *const cmd[] = {"containers", "--notruncate", "--format",
				   "{{.ContainerID}} {{.ContainerName}}", NULL};
	int status = -1, rc = run_engine(s, cmd, collect_line, out, &status);

	if (rc == DTN_EUSER)
		rc = dtn__error_set(s->err, DTN_ENOMEM, "out of memory");
	*ok = rc == 0 && status == 0;
	return rc;
}

/* Whether a container name is one buildah gives the working container of a build:
 * "<image>-working-container", with "-<n>" when that name was taken. */
static bool working_name(const char *name)
{
	static const char tail[] = "-working-container";
	const char *p = strstr(name, tail);

	while (p && strstr(p + 1, tail))
		p = strstr(p + 1, tail);
	if (!p || p == name)
		return false;
	p += sizeof(tail) - 1;
	if (*p == '-' && p[1])
		p += 1 + strspn(p + 1, "0123456789");
	return *p == '\0';
}

static bool was_there(const build *s, const char *id, size_t len)
{
	for (size_t i = 0; i < s->before.len; i++)
		if (!strncmp(s->before.items[i], id, len) && (s->before.items[i][len] == ' ' ||
							       s->before.items[i][len] == '\t'))
			return true;
	return false;
}

/*
 * buildah stopped outside a RUN step leaves its working container behind: the working
 * containers that appeared while the build ran are removed. Errors here are only told.
 */
static void remove_leftovers(build *s)
{
	dtn_error *saved = s->err, scratch;
	dtn__strv now = {0};
	bool ok = false;

	s->err = &scratch;
	s->cleanup = true;
	if (list_containers(s, &now, &ok) < 0 || !ok)
		notice(s, "warning: the containers left by the stopped build could not be listed");
	for (size_t i = 0; ok && i < now.len; i++) {
		const char *line = now.items[i], *name = strrchr(line, ' ');
		size_t idlen = strcspn(line, " \t");
		char *id = dtn__strndup(line, idlen);
		int status = -1;

		if (id && name && working_name(name + 1) && !was_there(s, line, idlen)) {
			const char *const rm[] = {"rm", id, NULL};

			notice(s, "removing %s, the working container of the stopped build", name + 1);
			if (run_engine(s, rm, NULL, NULL, &status) < 0 || status != 0)
				notice(s, "warning: %s could not be removed", name + 1);
		}
		dtn__free(id);
	}
	dtn__strv_free(&now);
	s->cleanup = false;
	s->err = saved;
}

static int build_phase(build *s)
{
	dtn_span *span = dtn_span_current();
	int rc;

	dtn_span_set_str(span, "dtn.engine", s->kind->name);
	dtn_span_set_str(span, "dtn.image.tag", s->res->image);
	if (s->chroot && (rc = phase(s, "no OCI runtime (crun, runc) found: buildah runs the "
				     "RUN steps with chroot isolation")) < 0)
		return rc;
	if (!strcmp(s->kind->name, "buildah") &&
	    (rc = list_containers(s, &s->before, &s->tracked)) < 0)
		return rc;
	rc = run_build(s);
	if (s->tracked && (rc == DTN_EINTR || rc == DTN_ETIMEOUT || rc == DTN_EUSER))
		remove_leftovers(s);
	dtn_span_set_int(span, "process.exit.code", s->res->pub.status);
	dtn_span_set_int(span, "dtn.log.lines", (int64_t)s->lines);
	if (rc == DTN_EBUILD)
		dtn_span_set_str(span, "error.type", "dtn.build_failed");
	if (rc == 0)
		rc = phase(s, "built %s", s->res->image);
	return rc;
}

/* Runs one phase of the build in its own span, a child of LocalBuild.build. */
static int traced(build *s, const char *name, int (*fn)(build *))
{
	dtn_span *span = dtn_span_start_op(name, NULL);
	int rc = fn(s);

	dtn_span_end_op(span, rc, rc < 0 ? s->err : NULL);
	return rc;
}

/* Between phases: whether the build was cancelled meanwhile. */
static int cancelled(build *s)
{
	if (s->o->cancel && *s->o->cancel)
		return dtn__error_set(s->err, DTN_EINTR, "interrupted");
	return 0;
}

static int build_run(build *s)
{
	int rc;

	if ((rc = prepare_engine(s)) < 0 || (rc = traced(s, "LocalBuild.identify",
							  identify_phase)) < 0 ||
	    (rc = cancelled(s)) < 0)
		return rc;
	if (s->o->if_changed && (rc = traced(s, "LocalBuild.lookup", lookup_phase)) < 0)
		return rc;
	if (s->res->pub.reused)
		return 0;
	if ((rc = traced(s, "LocalBuild.assemble", assemble)) < 0 || (rc = cancelled(s)) < 0 ||
	    (rc = traced(s, "LocalBuild.engineBuild", build_phase)) < 0)
		return rc;
	return s->o->replace ? traced(s, "LocalBuild.removeEarlier", remove_earlier) : 0;
}

/* The span of the whole build: engine, image tag and whether it was reused. */
/* dtn.builds and dtn.build.duration, as the Daytona backend records them. */
static void record_outcome(const dtn_span *span, int rc)
{
	const char *outcome = rc == 0 ? "success" : rc == DTN_EINTR ? "cancelled"
						: rc == DTN_EBUILD ? "build_failed"
								   : "error";
	dtn_attr attrs[] = {DTN_ATTR_STR("dtn.command", "build"),
			    DTN_ATTR_STR("dtn.outcome", outcome)};

	dtn_counter_add("dtn.builds", "{build}", 1, attrs + 1, 1);
	dtn_histogram_record("dtn.build.duration", "s", dtn_span_elapsed(span), attrs, 2);
}

static void end_span(dtn_span *span, build *s, int rc)
{
	if (s->res && s->kind) {
		dtn_span_set_str(span, "dtn.engine", s->kind->name);
		dtn_span_set_str(span, "dtn.engine.path", s->res->engine.path);
	}
	if (s->res && s->res->image) {
		dtn_span_set_str(span, "dtn.image.tag", s->res->image);
		dtn_span_set_str(span, "dtn.build.identity", s->res->pub.identity);
		dtn_span_set_bool(span, "dtn.reused", s->res->pub.reused);
	}
	record_outcome(span, rc);
	dtn_span_end_op(span, rc, rc < 0 ? s->err : NULL);
}

int dtn_build_local(dtn_builder *b, const dtn_image *img, const dtn_local_opts *opts,
		    dtn_local_result **out, dtn_error *err)
{
	build s = {.b = b, .img = img, .o = opts, .err = err};
	dtn_span *span;
	int rc;

	*out = NULL;
	dtn_error_clear(err);
	if ((rc = check_image(img, err)) < 0)
		return rc;
	if (!opts || !opts->name || !*opts->name)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot name: the image is tagged "
				      "dtn/<name>:<identity>");
	if (!(s.res = dtn__calloc(1, sizeof(*s.res))) ||
	    !(s.res->failed = dtn__calloc(1, sizeof(char *))))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	span = dtn_span_start_op("LocalBuild.build", NULL);
	dtn_span_set_str(span, "daytona.snapshot.name", opts->name);
	if (rc == 0) {
		s.res->pub.failed_lines = (const char *const *)s.res->failed;
		s.res->pub.status = -1;
		if (opts->timeout)
			s.deadline = dtn__local_now_ms() + (long long)opts->timeout * 1000;
		rc = build_run(&s);
	}
	/* what a rootless engine leaves may belong to others: not a reason to fail the build */
	if (s.engine_tmp && dtn__rmtree(s.engine_tmp) != 0)
		notice(&s, "warning: the engine's temporary directory %s could not be removed",
		       s.engine_tmp);
	if (s.dir && dtn__rmtree(s.dir) != 0 && rc == 0)
		rc = dtn__error_set(err, DTN_EIO, "cannot remove the build directory %s", s.dir);
	end_span(span, &s, rc);
	dtn__free(s.engine_tmp);
	dtn__strv_free(&s.before);
	dtn__free(s.dir);
	dtn__free(s.hashes);
	dtn__strv_free_array(s.gargs);
	for (size_t i = 0; i < DTN_LOCAL_FAILED_LINES; i++)
		dtn__free(s.ring[i]);
	if (rc == 0 || rc == DTN_EBUILD)
		*out = &s.res->pub;
	else
		dtn_local_result_free(s.res ? &s.res->pub : NULL);
	return rc;
}

void dtn_local_result_free(dtn_local_result *res)
{
	result_impl *r = (result_impl *)res;

	if (!r)
		return;
	dtn__free(r->image);
	dtn__strv_free_array(r->failed);
	dtn__free(r);
}
