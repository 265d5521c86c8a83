/*
 * daytona.c - a build on Daytona: contexts identified and uploaded unless already stored, the
 * snapshot created and followed with its logs, the result kept for the caller.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "builder_internal.h"
#include "dtn_build.h"
#include "dtn_otel.h"
#include "s3.h"

typedef struct result {
	dtn_build_result pub;
	dtn_snapshot *snapshot;
	char *dockerfile;
	char *request;
	dtn_build_context *contexts;
	dtn__strv strings;        /* the contexts' sources and archive paths */
	char **failed_lines;
} result;

typedef struct build {
	dtn_daytona *c;
	dtn_builder *b;
	const dtn_image *img;
	const dtn_build_opts *o;
	result *res;
	char *ring[DTN_BUILD_FAILED_LINES]; /* the last output lines */
	size_t ring_next, ring_count;
	bool ring_failed;
	int64_t started;
} build;

void dtn_build_result_free(dtn_build_result *pub)
{
	result *r = (result *)pub;

	if (!r)
		return;
	dtn_snapshot_free(r->snapshot);
	dtn__free(r->dockerfile);
	dtn__free(r->request);
	dtn__free(r->contexts);
	dtn__strv_free(&r->strings);
	dtn__strv_free_array(r->failed_lines);
	dtn__free(r);
}

/* ---- output ---- */

static int phase(build *s, const char *fmt, ...) DTN__PRINTF(2, 3);

static int phase(build *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return dtn__api_log(s->c, s->o->log, s->o->payload, DTN_LOG_PHASE, line, strlen(line));
}

/* Forwards the wait's lines and keeps the last output lines for a failure report. Runs under
 * the client's callback lock. */
static int on_line(dtn_log_kind kind, const char *line, size_t len, void *payload)
{
	build *s = payload;

	if (kind == DTN_LOG_OUTPUT) {
		char *copy = dtn__strndup(line, len);

		if (!copy)
			s->ring_failed = true;
		dtn__free(s->ring[s->ring_next]);
		s->ring[s->ring_next] = copy;
		s->ring_next = (s->ring_next + 1) % DTN_BUILD_FAILED_LINES;
		if (s->ring_count < DTN_BUILD_FAILED_LINES)
			s->ring_count++;
	}
	return s->o->log ? s->o->log(kind, line, len, s->o->payload) : 0;
}

static int keep_failed_lines(build *s)
{
	dtn__strv v = {NULL, 0, 0};
	size_t first = (s->ring_next + DTN_BUILD_FAILED_LINES - s->ring_count) %
		       DTN_BUILD_FAILED_LINES;

	for (size_t i = 0; i < s->ring_count; i++) {
		const char *line = s->ring[(first + i) % DTN_BUILD_FAILED_LINES];

		if (line && dtn__strv_push(&v, line) < 0) {
			dtn__strv_free(&v);
			return DTN_ENOMEM;
		}
	}
	dtn__strv_free_array(s->res->failed_lines);
	s->res->failed_lines = v.items ? v.items : dtn__calloc(1, sizeof(char *));
	s->res->pub.failed_lines = (const char *const *)s->res->failed_lines;
	return s->res->failed_lines ? 0 : DTN_ENOMEM;
}

/* ---- contexts ---- */

static const char *keep(result *r, const char *text)
{
	if (dtn__strv_push(&r->strings, text) < 0)
		return NULL;
	return r->strings.items[r->strings.len - 1];
}

static int identify(build *s, dtn_error *err)
{
	result *r = s->res;
	size_t n = dtn_image_context_count(s->img);
	int rc;

	if (n && !(r->contexts = dtn__calloc(n, sizeof(*r->contexts))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	r->pub.contexts = r->contexts;
	for (size_t i = 0; i < n; i++) {
		const dtn_context *ctx = dtn_image_context(s->img, i);
		dtn_build_context *bc = &r->contexts[i];
		dtn_context_id *id = NULL;

		if ((rc = dtn_builder_identify(s->b, ctx, &id, err)) < 0)
			return rc;
		memcpy(bc->hash, id->hash, sizeof(bc->hash));
		bc->files = id->files;
		bc->bytes = id->bytes;
		bc->links = id->links;
		dtn_context_id_free(id);
		if (!(bc->source = keep(r, ctx->source)) ||
		    !(bc->archive_path = keep(r, ctx->archive_path)))
			return dtn__error_set(err, DTN_ENOMEM, "out of memory");
		r->pub.ncontexts = i + 1;
		/* a builder made for Daytona has named each link already */
		if (bc->links && !s->b->opts.for_daytona)
			dtn__api_warn(s->c, "%s: %llu symbolic link%s; Daytona's runner turns links "
				      "into empty files", ctx->source,
				      (unsigned long long)bc->links, bc->links == 1 ? "" : "s");
	}
	return 0;
}

/* The create request's parameters: the build's options, the Dockerfile and the contexts'
 * hashes, which *hashes receives (dtn__strv_free). 0 or DTN_ENOMEM. */
static int snapshot_params(build *s, const char *dockerfile, dtn__strv *hashes,
			   dtn_snapshot_params *out)
{
	static const char *const none[] = {NULL};
	int rc = 0;

	for (size_t i = 0; i < s->res->pub.ncontexts && rc == 0; i++)
		rc = dtn__strv_push(hashes, s->res->contexts[i].hash);
	*out = (dtn_snapshot_params){
		.name = s->o->name,
		.dockerfile = dockerfile,
		.context_hashes = hashes->items ? (const char *const *)hashes->items : none,
		.cpu = s->o->cpu,
		.gpu = s->o->gpu,
		.memory = s->o->memory,
		.disk = s->o->disk,
		.region = s->o->region,
	};
	return rc;
}

static int make_request(build *s, dtn_error *err)
{
	result *r = s->res;
	dtn__strv hashes = {NULL, 0, 0};
	dtn_snapshot_params p;
	int rc;

	if (!(r->dockerfile = dtn__strdup(dtn_image_dockerfile(s->img))) ||
	    snapshot_params(s, r->dockerfile, &hashes, &p) < 0) {
		dtn__strv_free(&hashes);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	r->pub.dockerfile = r->dockerfile;
	rc = dtn_snapshot_create_body(&r->request, s->c, &p, err);
	r->pub.request = r->request;
	dtn__strv_free(&hashes);
	return rc;
}

/* ---- object storage ---- */

static int push_access(build *s, dtn__push_access *pa, dtn_error *err)
{
	json_t *answer = NULL;
	char *text;
	int rc;

	if ((rc = dtn__api_request(s->c, "GET", "/object-storage/push-access", NULL, &answer, err)) <
	    0)
		return rc;
	text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
	json_decref(answer);
	if (!text)
		return dtn__error_set(err, DTN_EPROTOCOL, "push-access: the answer is empty");
	rc = dtn__push_access_parse(pa, text, strlen(text), err);
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

/* Streams one context's archive into a new object. */
static int send_context(build *s, dtn__s3 *s3, const dtn__push_access *pa, size_t i,
			dtn_error *err)
{
	const dtn_build_context *bc = &s->res->contexts[i];
	dtn__s3_upload *u = NULL;
	char *key = dtn__s3_context_key(pa, bc->hash);
	int rc;

	if (!key)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if ((rc = dtn__s3_upload_begin(&u, s3, key, NULL, err)) == 0) {
		rc = dtn_builder_archive(s->b, dtn_image_context(s->img, i), bc->hash,
					 dtn__s3_upload_sink, u, err);
		if (rc == DTN_EUSER && dtn__s3_upload_error(u)->code < 0) {
			if (err)
				*err = *dtn__s3_upload_error(u);
			rc = dtn__s3_upload_error(u)->code;
		}
		if (rc == 0)
			rc = dtn__s3_upload_finish(u, err);
		else
			dtn__s3_upload_abort(u);
	}
	dtn__s3_upload_free(u);
	dtn__free(key);
	return rc;
}

static bool seen_before(const result *r, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (strcmp(r->contexts[k].hash, r->contexts[i].hash) == 0)
			return true;
	return false;
}

static int upload_one(build *s, dtn__s3 *s3, const dtn__push_access *pa, size_t i,
		      dtn_error *err)
{
	dtn_build_context *bc = &s->res->contexts[i];
	dtn_span *span = dtn_span_start_op("ObjectStorage.upload", NULL);
	char *prefix = NULL;
	bool found = false;
	int rc = 0;

	dtn_span_set_str(span, "dtn.context.path", bc->archive_path);
	dtn_span_set_str(span, "dtn.context.hash", bc->hash);
	dtn_span_set_int(span, "dtn.context.files", (int64_t)bc->files);
	if (seen_before(s->res, i)) {
		found = true;
	} else if (!(prefix = dtn__s3_context_prefix(pa, bc->hash))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	} else if ((rc = dtn__s3_exists(s3, prefix, &found, err)) == 0 && !found) {
		phase(s, "uploading %s (%llu %s, %llu bytes)", bc->source,
		      (unsigned long long)bc->files, bc->files == 1 ? "file" : "files",
		      (unsigned long long)bc->bytes);
		if ((rc = send_context(s, s3, pa, i, err)) == 0)
			bc->uploaded = true;
	}
	if (rc == 0 && found) {
		bc->present = true;
		phase(s, "%s is already uploaded", bc->source);
	}
	dtn_span_set_bool(span, "dtn.context.cache_hit", found);
	dtn_span_set_int(span, "dtn.context.bytes", (int64_t)bc->bytes);
	if (rc == 0)
		dtn_histogram_record("dtn.context.upload.size", "By",
				     found ? 0.0 : (double)bc->bytes,
				     (dtn_attr[]){DTN_ATTR_BOOL("dtn.context.cache_hit", found)}, 1);
	dtn_span_end_op(span, rc, err);
	dtn__free(prefix);
	return rc;
}

static int upload(build *s, dtn_error *err)
{
	dtn__push_access pa;
	dtn__s3 *s3 = NULL;
	dtn_span *span;
	int rc;

	memset(&pa, 0, sizeof(pa));
	if (!s->res->pub.ncontexts)
		return 0;
	span = dtn_span_start_op("SnapshotService.processImageContext", NULL);
	dtn_span_set_int(span, "dtn.context.count", (int64_t)s->res->pub.ncontexts);
	if ((rc = push_access(s, &pa, err)) == 0 && (rc = dtn__s3_new(&s3, s->c->http, &pa, err)) == 0)
		for (size_t i = 0; i < s->res->pub.ncontexts && rc == 0; i++)
			rc = upload_one(s, s3, &pa, i, err);
	dtn__s3_free(s3);
	dtn__push_access_clear(&pa);
	dtn_span_end_op(span, rc, err);
	return rc;
}

/* ---- an existing snapshot of the same name ---- */

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether two hash lists hold the same hashes (the server sorts them for its build key). */
static bool same_hashes(const char *const *a, const dtn_build_context *b, size_t n)
{
	const char **x, **y;
	bool same = true;

	if (dtn_strv_len(a) != n)
		return false;
	if (!n)
		return true;
	x = dtn__calloc(n, sizeof(*x));
	y = dtn__calloc(n, sizeof(*y));
	if (!x || !y) {
		same = false;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		x[i] = a[i];
		y[i] = b[i].hash;
	}
	qsort(x, n, sizeof(*x), compare_strings);
	qsort(y, n, sizeof(*y), compare_strings);
	for (size_t i = 0; i < n && same; i++)
		same = strcmp(x[i], y[i]) == 0;
out:
	dtn__free(x);
	dtn__free(y);
	return same;
}

static bool same_build(const build *s, const dtn_snapshot *old)
{
	return old->dockerfile && strcmp(old->dockerfile, s->res->dockerfile) == 0 &&
	       same_hashes(old->context_hashes, s->res->contexts, s->res->pub.ncontexts);
}

enum { GO_BUILD, GO_DONE, GO_WAIT };

/*
 * Decides what to do about a snapshot of the same name: nothing there (build), the same build
 * to reuse (done, or wait for it while it is still being built), or one to delete first.
 */
static int existing(build *s, dtn_snapshot **old, int *next, dtn_error *err)
{
	const char *name = s->o->name;
	int rc;

	*next = GO_BUILD;
	if ((rc = dtn__snapshot_lookup(s->c, name, old, err)) == DTN_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if (s->o->if_changed && same_build(s, *old) && strcmp((*old)->state, "error") != 0 &&
	    strcmp((*old)->state, "build_failed") != 0) {
		s->res->pub.reused = true;
		*next = strcmp((*old)->state, "active") == 0 ? GO_DONE : GO_WAIT;
		phase(s, "snapshot %s is unchanged (%s): reusing it", name, (*old)->state);
		return 0;
	}
	if (!s->o->if_changed && !s->o->replace)
		return dtn__error_set(err, DTN_EEXISTS,
				      "snapshot \"%s\" already exists (%s); replace it, or reuse it "
				      "when unchanged",
				      name, (*old)->state);
	phase(s, "deleting the existing snapshot %s (%s)", name,
	      s->o->if_changed ? "changed" : "replace");
	if ((rc = dtn_snapshot_delete(s->c, (*old)->id, true, err)) == 0)
		s->res->pub.replaced = true;
	dtn_snapshot_free(*old);
	*old = NULL;
	return rc;
}

/* ---- the build ---- */

/*
 * The creation request went out but its answer was lost (the connection broke, or it timed
 * out): the server may have created the snapshot all the same, and would go on building it
 * unseen, its name then taken. The name was free just before, so a snapshot of that name with
 * this very build is this one: it is followed as if the answer had come. Otherwise rc stands.
 */
static int created_anyway(build *s, int rc, dtn_snapshot **out, dtn_error *err)
{
	dtn_snapshot *found = NULL;
	dtn_error lookup;

	if (dtn__snapshot_lookup(s->c, s->o->name, &found, &lookup) < 0)
		return rc;
	if (!same_build(s, found)) {
		dtn_snapshot_free(found);
		return rc;
	}
	phase(s, "the answer to the creation was lost (%s), but the server created snapshot %s: "
	      "following it", err->message, found->name);
	dtn_error_clear(err);
	*out = found;
	return 0;
}

static int create_and_wait(build *s, dtn_snapshot *from, dtn_error *err)
{
	dtn_snapshot *created = from, *done = NULL;
	dtn__strv hashes = {NULL, 0, 0};
	dtn_snapshot_params p;
	int rc;

	if (!created) {
		if (snapshot_params(s, s->res->dockerfile, &hashes, &p) < 0) {
			dtn__strv_free(&hashes);
			return dtn__error_set(err, DTN_ENOMEM, "out of memory");
		}
		phase(s, "creating snapshot %s", s->o->name);
		rc = dtn_snapshot_create(s->c, &p, &created, err);
		dtn__strv_free(&hashes);
		if (rc == DTN_ECONNECT || rc == DTN_ETIMEOUT)
			rc = created_anyway(s, rc, &created, err);
		if (rc < 0)
			return rc;
	}
	dtn_span_set_str(dtn_span_current(), "daytona.snapshot.id", created->id);
	rc = dtn_snapshot_wait(s->c, created,
			       &(dtn_snapshot_wait_opts){.log = on_line, .payload = s, .logs = true},
			       &done, err);
	if (created != from)
		dtn_snapshot_free(created);
	s->res->snapshot = done;
	s->res->pub.snapshot = done;
	if (done)
		dtn_span_set_str(dtn_span_current(), "daytona.snapshot.state", done->state);
	return rc;
}

static void create_span_attrs(build *s, dtn_span *span)
{
	const char *region = s->o->region ? s->o->region : dtn_daytona_target(s->c);

	dtn_span_set_str(span, "daytona.snapshot.name", s->o->name);
	dtn_span_set_bool(span, "dtn.build_info", true);
	if (s->o->cpu)
		dtn_span_set_int(span, "daytona.snapshot.cpu", s->o->cpu);
	if (s->o->gpu)
		dtn_span_set_int(span, "daytona.snapshot.gpu", s->o->gpu);
	if (s->o->memory)
		dtn_span_set_int(span, "daytona.snapshot.memory", s->o->memory);
	if (s->o->disk)
		dtn_span_set_int(span, "daytona.snapshot.disk", s->o->disk);
	if (region)
		dtn_span_set_str(span, "daytona.region.id", region);
}

/* Everything after the request is known: the name checked, contexts uploaded, the build. */
static int run(build *s, dtn_error *err)
{
	dtn_span *span = dtn_span_start_op("SnapshotService.create", NULL);
	dtn_snapshot *old = NULL;
	int next, rc;

	create_span_attrs(s, span);
	if ((rc = existing(s, &old, &next, err)) == 0) {
		if (next == GO_DONE) {
			s->res->snapshot = old;
			s->res->pub.snapshot = old;
			old = NULL;
		} else if (next == GO_WAIT) {
			rc = create_and_wait(s, old, err);
		} else if ((rc = upload(s, err)) == 0) {
			rc = create_and_wait(s, NULL, err);
		}
	}
	dtn_snapshot_free(old);
	if (rc == DTN_EBUILD)
		dtn_span_set_str(span, "error.type", s->res->snapshot &&
					      strcmp(s->res->snapshot->state, "build_failed") == 0
					      ? "daytona.snapshot.build_failed"
					      : "daytona.snapshot.error");
	dtn_span_end_op(span, rc, err);
	return rc;
}

static void record_outcome(build *s, int rc)
{
	const char *outcome = rc == 0 ? "success" : rc == DTN_EINTR ? "cancelled"
						: rc == DTN_EBUILD ? "build_failed"
								   : "error";
	dtn_attr attrs[] = {DTN_ATTR_STR("dtn.command", "build"),
			    DTN_ATTR_STR("dtn.outcome", outcome)};

	dtn_counter_add("dtn.builds", "{build}", 1, attrs + 1, 1);
	dtn_histogram_record("dtn.build.duration", "s",
			     (double)(dtn__now_ms() - s->started) / 1000.0, attrs, 2);
}

static int check_opts(const dtn_image *img, const dtn_build_opts *o, dtn_error *err)
{
	int rc;

	if (!o || !o->name || !*o->name)
		return dtn__error_set(err, DTN_EINVAL, "a snapshot build needs a name");
	if ((rc = dtn_image_status(img)) < 0) {
		if (err && img)
			*err = *dtn_image_error(img);
		return img ? rc : dtn__error_set(err, DTN_EINVAL, "no image to build");
	}
	if (o->if_changed && o->replace)
		return dtn__error_set(err, DTN_EINVAL,
				      "reusing an unchanged snapshot and always replacing it "
				      "exclude each other");
	return 0;
}

int dtn_build_daytona(dtn_daytona *c, dtn_builder *b, const dtn_image *img,
		      const dtn_build_opts *opts, dtn_build_result **out, dtn_error *err)
{
	build s = {.c = c, .b = b, .img = img, .o = opts, .started = dtn__now_ms()};
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if ((rc = check_opts(img, opts, err)) < 0)
		return rc;
	if (!(s.res = dtn__calloc(1, sizeof(*s.res))) || keep_failed_lines(&s) < 0) {
		dtn__free(s.res);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	if ((rc = phase(&s, "identifying %zu build context%s", dtn_image_context_count(img),
			dtn_image_context_count(img) == 1 ? "" : "s")) != 0)
		rc = dtn__error_set(err, DTN_EUSER, "the log callback asked to stop");
	if (rc == 0 && (rc = identify(&s, err)) == 0 && (rc = make_request(&s, err)) == 0 &&
	    !opts->dry_run)
		rc = run(&s, err);
	if (rc == DTN_EBUILD && keep_failed_lines(&s) < 0)
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	for (size_t i = 0; i < DTN_BUILD_FAILED_LINES; i++)
		dtn__free(s.ring[i]);
	if (!opts->dry_run)
		record_outcome(&s, rc);
	if (rc == 0 || rc == DTN_EBUILD)
		*out = &s.res->pub;
	else
		dtn_build_result_free(&s.res->pub);
	return rc;
}
