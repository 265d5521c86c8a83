/*
 * snapshot.c - snapshots (wire §5): the create request, waiting for a final state by id with the
 * build logs streamed beside, get, list, delete and activate.
 */
#include <string.h>

#include "api.h"
#include "dtn_otel.h"
#include "model.h"
#include "poller.h"

/* A snapshot keeps the parsed answer: its strings point into it. */
typedef struct snapshot {
	dtn_snapshot pub;
	json_t *j;
	char **context_hashes, **region_ids, **entrypoint;
	char *text;
} snapshot;

void dtn_snapshot_free(dtn_snapshot *pub)
{
	snapshot *s = (snapshot *)pub;

	if (!s)
		return;
	json_decref(s->j);
	dtn__strv_free_array(s->context_hashes);
	dtn__strv_free_array(s->region_ids);
	dtn__strv_free_array(s->entrypoint);
	free(s->text);
	dtn__free(s);
}

bool dtn_snapshot_state_is_final(const char *state)
{
	return state && (strcmp(state, "active") == 0 || strcmp(state, "error") == 0 ||
			 strcmp(state, "build_failed") == 0);
}

static int fill(void *obj, const json_t *j, dtn_error *err)
{
	snapshot *s = obj;
	dtn_snapshot *p = &s->pub;
	const json_t *bi = json_object_get(j, "buildInfo"), *ep, *size;

	s->j = json_incref((json_t *)j);
	p->id = dtn__json_str(j, "id");
	p->name = dtn__json_str(j, "name");
	p->state = dtn__json_str(j, "state");
	p->image_name = dtn__json_str(j, "imageName");
	p->error_reason = dtn__json_str(j, "errorReason");
	p->dockerfile = json_is_object(bi) ? dtn__json_str(bi, "dockerfileContent") : NULL;
	p->cpu = (int)dtn__json_int(j, "cpu", 0);
	p->gpu = (int)dtn__json_int(j, "gpu", 0);
	p->memory = (int)dtn__json_int(j, "mem", dtn__json_int(j, "memory", 0));
	p->disk = (int)dtn__json_int(j, "disk", 0);
	size = json_object_get(j, "size");
	p->size = json_is_number(size) ? json_number_value(size) : -1;
	p->created_at = dtn__json_str(j, "createdAt");
	p->updated_at = dtn__json_str(j, "updatedAt");
	ep = json_object_get(j, "entrypoint");
	if (!(s->context_hashes = dtn__json_to_strv(json_is_object(bi)
							   ? json_object_get(bi, "contextHashes")
							   : NULL)) ||
	    !(s->region_ids = dtn__json_to_strv(json_object_get(j, "regionIds"))) ||
	    (json_is_array(ep) && !(s->entrypoint = dtn__json_to_strv(ep))) ||
	    !(s->text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	p->context_hashes = (const char *const *)s->context_hashes;
	p->region_ids = (const char *const *)s->region_ids;
	p->entrypoint = (const char *const *)s->entrypoint;
	p->json = s->text;
	return 0;
}

static void free_snapshot(void *obj)
{
	dtn_snapshot_free(obj);
}

static const dtn__model model = {
	.size = sizeof(snapshot),
	.noun = "snapshot",
	.required = (const char *const[]){"id", "name", "state", NULL},
	.fill = fill,
	.free = free_snapshot,
};

int dtn__snapshot_from_json(dtn_snapshot **out, const json_t *j, dtn_error *err)
{
	void *s;
	int rc = dtn__model_from_json(&model, j, &s, err);

	*out = s;
	return rc;
}

dtn_snapshot *dtn_snapshot_dup(const dtn_snapshot *pub)
{
	return pub ? dtn__model_dup(&model, ((const snapshot *)pub)->j) : NULL;
}

/* ---- create ---- */

/* Whether an image reference names a tag or digest, as the server requires (not ":latest"). */
static bool image_has_tag(const char *ref, bool *latest)
{
	const char *last = strrchr(ref, '/'), *colon;

	last = last ? last + 1 : ref;
	*latest = false;
	if (strchr(last, '@'))
		return true;
	if (!(colon = strchr(last, ':')) || !colon[1])
		return false;
	*latest = strcmp(colon + 1, "latest") == 0;
	return true;
}

static int check_params(const dtn_snapshot_params *p, dtn_error *err)
{
	bool latest;

	if (!p || !p->name || !*p->name)
		return dtn__error_set(err, DTN_EINVAL, "a snapshot needs a name");
	if (!p->dockerfile == !p->image_name)
		return dtn__error_set(err, DTN_EINVAL,
				      "snapshot \"%s\": give either a Dockerfile or an image name",
				      p->name);
	if (p->image_name && !image_has_tag(p->image_name, &latest))
		return dtn__error_set(err, DTN_EINVAL,
				      "snapshot \"%s\": the image \"%s\" needs a tag or a digest "
				      "(e.g. %s:1.0)", p->name, p->image_name, p->image_name);
	if (p->image_name && latest)
		return dtn__error_set(err, DTN_EINVAL,
				      "snapshot \"%s\": the image \"%s\" uses the tag \"latest\", "
				      "which Daytona refuses: name a version", p->name, p->image_name);
	if (p->cpu < 0 || p->gpu < 0 || p->memory < 0 || p->disk < 0)
		return dtn__error_set(err, DTN_EINVAL,
				      "snapshot \"%s\": cpu, gpu, memory and disk cannot be negative",
				      p->name);
	for (size_t i = 0; p->context_hashes && p->context_hashes[i]; i++)
		if (!*p->context_hashes[i])
			return dtn__error_set(err, DTN_EINVAL, "snapshot \"%s\": an empty context "
					      "hash", p->name);
	return 0;
}

/* The Dockerfile with the entrypoint appended as an ENTRYPOINT line, as the SDKs do. */
static char *with_entrypoint(const char *dockerfile, const char *const *entrypoint)
{
	dtn__buf b = DTN__BUF_INIT;
	json_t *arr = dtn__json_strv(entrypoint);
	char *text = arr ? json_dumps(arr, JSON_ENCODE_ANY) : NULL;
	size_t len = strlen(dockerfile);

	dtn__buf_puts(&b, dockerfile);
	if (len && dockerfile[len - 1] != '\n')
		dtn__buf_putc(&b, '\n');
	dtn__buf_printf(&b, "ENTRYPOINT %s\n", text ? text : "");
	free(text);
	json_decref(arr);
	if (!text || b.failed) {
		dtn__buf_free(&b);
		return NULL;
	}
	return dtn__buf_detach(&b);
}

static int set_new(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *build_info(const dtn_snapshot_params *p)
{
	json_t *bi = json_object();
	char *df = p->entrypoint ? with_entrypoint(p->dockerfile, p->entrypoint) : NULL;
	int bad = !bi || (p->entrypoint && !df);

	if (!bad)
		bad = set_new(bi, "contextHashes", dtn__json_strv(p->context_hashes)) < 0 ||
		      set_new(bi, "dockerfileContent", json_string(df ? df : p->dockerfile)) < 0;
	dtn__free(df);
	if (bad) {
		json_decref(bi);
		return NULL;
	}
	return bi;
}

/* The CreateSnapshot body in the SDK's field order. */
static json_t *create_json(const dtn_daytona *c, const dtn_snapshot_params *p)
{
	json_t *o = json_object();
	const char *region = p->region && *p->region ? p->region : c ? c->cfg.target : NULL;
	int bad = !o || set_new(o, "name", json_string(p->name)) < 0;

	if (!bad && p->dockerfile)
		bad = set_new(o, "buildInfo", build_info(p)) < 0;
	if (!bad && p->image_name) {
		bad = set_new(o, "imageName", json_string(p->image_name)) < 0;
		if (!bad && p->entrypoint)
			bad = set_new(o, "entrypoint", dtn__json_strv(p->entrypoint)) < 0;
	}
	if (!bad && p->cpu)
		bad = set_new(o, "cpu", json_integer(p->cpu)) < 0;
	if (!bad && p->gpu)
		bad = set_new(o, "gpu", json_integer(p->gpu)) < 0;
	if (!bad && p->memory)
		bad = set_new(o, "memory", json_integer(p->memory)) < 0;
	if (!bad && p->disk)
		bad = set_new(o, "disk", json_integer(p->disk)) < 0;
	if (!bad && region)
		bad = set_new(o, "regionId", json_string(region)) < 0;
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int dtn_snapshot_create_body(char **out, const dtn_daytona *c, const dtn_snapshot_params *p,
			     dtn_error *err)
{
	json_t *o;
	char *text, *copy;
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if ((rc = check_params(p, err)) < 0)
		return rc;
	if (!(o = create_json(c, p)) ||
	    !(text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		json_decref(o);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	json_decref(o);
	copy = dtn__strdup(text);
	free(text);
	if (!copy)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	*out = copy;
	return 0;
}

int dtn_snapshot_create(dtn_daytona *c, const dtn_snapshot_params *p, dtn_snapshot **out,
			dtn_error *err)
{
	json_t *o, *answer = NULL;
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if ((rc = check_params(p, err)) < 0)
		return rc;
	if (!(o = create_json(c, p)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	rc = dtn__api_request(c, "POST", "/snapshots", o, &answer, err);
	json_decref(o);
	if (rc == DTN_EEXISTS)
		dtn__error_prefix(err, "a snapshot with this name already exists: ");
	if (rc == 0)
		rc = dtn__snapshot_from_json(out, answer, err);
	json_decref(answer);
	return rc;
}

/* ---- get ---- */

static int get_snapshot(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out,
			dtn_error *err)
{
	char what[600];
	void *s;
	int rc;

	snprintf(what, sizeof(what), "snapshot \"%s\"", id_or_name);
	rc = dtn__model_get(c, &model, "/snapshots/%s", id_or_name, what, &s, err);
	*out = s;
	return rc;
}

int dtn__snapshot_lookup(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out,
			 dtn_error *err)
{
	return get_snapshot(c, id_or_name, out, err);
}

static dtn_span *op_start(const char *name, const char *snapshot_name)
{
	dtn_span *span = dtn_span_start_op(name, NULL);

	if (snapshot_name)
		dtn_span_set_str(span, "daytona.snapshot.name", snapshot_name);
	return span;
}

int dtn_snapshot_get(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out, dtn_error *err)
{
	dtn_span *span;
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if (!id_or_name || !*id_or_name)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot named");
	span = op_start("SnapshotService.get", id_or_name);
	rc = get_snapshot(c, id_or_name, out, err);
	if (rc == 0)
		dtn_span_set_str(span, "daytona.snapshot.id", (*out)->id);
	dtn_span_end_op(span, rc, err);
	return rc;
}

/* The id of a snapshot: a UUID as it is, a name looked up (delete and activate need the id). */
static int resolve_id(dtn_daytona *c, const char *id_or_name, char **id, dtn_error *err)
{
	dtn_snapshot *s;
	int rc;

	*id = NULL;
	if (!id_or_name || !*id_or_name)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot named");
	if (dtn__is_uuid(id_or_name))
		rc = (*id = dtn__strdup(id_or_name)) ? 0 : DTN_ENOMEM;
	else if ((rc = get_snapshot(c, id_or_name, &s, err)) == 0) {
		rc = (*id = dtn__strdup(s->id)) ? 0 : DTN_ENOMEM;
		dtn_snapshot_free(s);
	}
	if (rc == DTN_ENOMEM)
		dtn__error_set(err, rc, "out of memory");
	return rc;
}

/* ---- list ---- */

void dtn_snapshot_page_free(dtn_snapshot_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->count; i++)
		dtn_snapshot_free(p->items[i]);
	dtn__free(p->items);
	dtn__free(p);
}

static int page_add(dtn_snapshot_page *p, size_t *cap, const json_t *item, dtn_error *err)
{
	dtn_snapshot *s;
	int rc;

	if (p->count == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		dtn_snapshot **items = dtn__realloc(p->items, n * sizeof(*items));

		if (!items)
			return dtn__error_set(err, DTN_ENOMEM, "out of memory");
		p->items = items;
		*cap = n;
	}
	if ((rc = dtn__snapshot_from_json(&s, item, err)) < 0)
		return rc;
	p->items[p->count++] = s;
	return 0;
}

static int list_page(dtn_daytona *c, const dtn_snapshot_list_opts *o, long page, long limit,
		     dtn_snapshot_page *p, size_t *cap, dtn_error *err)
{
	char *name = o->name && *o->name ? dtn__http_escape(o->name) : NULL, *path;
	json_t *answer = NULL, *items, *item;
	size_t i;
	int rc;

	path = dtn__aprintf("/snapshots?page=%ld&limit=%ld%s%s", page, limit, name ? "&name=" : "",
			    name ? name : "");
	dtn__free(name);
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	rc = dtn__api_request(c, "GET", path, NULL, &answer, err);
	dtn__free(path);
	if (rc < 0)
		return rc;
	items = json_object_get(answer, "items");
	if (!json_is_array(items)) {
		json_decref(answer);
		return dtn__error_set(err, DTN_EPROTOCOL,
				      "GET %s/snapshots: the answer has no list of items",
				      c->cfg.api_url);
	}
	json_array_foreach(items, i, item) if ((rc = page_add(p, cap, item, err)) < 0) break;
	p->total = dtn__json_int(answer, "total", (long)p->count);
	p->page = dtn__json_int(answer, "page", page);
	p->total_pages = dtn__json_int(answer, "totalPages", page);
	if (rc == 0 && json_array_size(items) == 0)
		rc = 1; /* nothing more */
	json_decref(answer);
	return rc;
}

int dtn_snapshot_list(dtn_daytona *c, const dtn_snapshot_list_opts *opts,
		      dtn_snapshot_page **out, dtn_error *err)
{
	static const dtn_snapshot_list_opts none;
	const dtn_snapshot_list_opts *o = opts ? opts : &none;
	long limit = o->limit ? o->limit : o->page ? 10 : 100;
	dtn_snapshot_page *p;
	dtn_span *span;
	size_t cap = 0;
	int rc = 0;

	dtn_error_clear(err);
	*out = NULL;
	if (o->page < 0 || o->limit < 0)
		return dtn__error_set(err, DTN_EINVAL, "a page or limit cannot be negative");
	if (!(p = dtn__calloc(1, sizeof(*p))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	span = op_start("SnapshotService.list", NULL);
	if (o->page) {
		rc = list_page(c, o, o->page, limit, p, &cap, err);
	} else {
		/* every page, bounded in case a server keeps announcing more */
		for (long page = 1; page <= 100000; page++) {
			if ((rc = list_page(c, o, page, limit, p, &cap, err)) != 0 ||
			    p->page >= p->total_pages)
				break;
		}
	}
	if (rc > 0)
		rc = 0;
	dtn_span_set_int(span, "dtn.snapshot.count", (int64_t)p->count);
	dtn_span_end_op(span, rc, err);
	if (rc < 0) {
		dtn_snapshot_page_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* ---- delete and activate ---- */

/* Gone: the server no longer knows it. */
static int gone(dtn_daytona *c, const char *id, dtn_error *err)
{
	dtn_snapshot *s = NULL;
	int rc = get_snapshot(c, id, &s, err);

	dtn_snapshot_free(s);
	return rc == DTN_ENOTFOUND ? 1 : rc;
}

int dtn_snapshot_delete(dtn_daytona *c, const char *id_or_name, bool wait, dtn_error *err)
{
	dtn_span *span = op_start("SnapshotService.delete", id_or_name);
	char *id = NULL, what[600];
	int rc;

	dtn_error_clear(err);
	if ((rc = resolve_id(c, id_or_name, &id, err)) < 0)
		goto out;
	dtn_span_set_str(span, "daytona.snapshot.id", id);
	snprintf(what, sizeof(what), "snapshot \"%s\"", id_or_name);
	if ((rc = dtn__model_call(c, "DELETE", "/snapshots/%s", id, what, NULL, err)) == 0 && wait)
		rc = dtn__poll_until_gone(c, id, gone, "snapshot \"%s\" was still being removed "
					  "when the time limit ran out", id_or_name, err);
out:
	dtn_span_end_op(span, rc, err);
	dtn__free(id);
	return rc;
}

int dtn_snapshot_activate(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out,
			  dtn_error *err)
{
	dtn_span *span = op_start("SnapshotService.activate", id_or_name);
	char *id = NULL, what[600];
	json_t *answer = NULL;
	int rc;

	dtn_error_clear(err);
	if (out)
		*out = NULL;
	if ((rc = resolve_id(c, id_or_name, &id, err)) < 0)
		goto out;
	dtn_span_set_str(span, "daytona.snapshot.id", id);
	snprintf(what, sizeof(what), "snapshot \"%s\"", id_or_name);
	rc = dtn__model_call(c, "POST", "/snapshots/%s/activate", id, what, &answer, err);
	if (rc == 0 && out && answer)
		rc = dtn__snapshot_from_json(out, answer, err);
out:
	dtn_span_end_op(span, rc, err);
	json_decref(answer);
	dtn__free(id);
	return rc;
}

/* ---- waiting, with the build logs ---- */

/* The build-log URL of a snapshot (GET /snapshots/{id}/build-logs-url). */
static int logs_url(dtn_daytona *c, const dtn_snapshot *s, char **out, dtn_error *err)
{
	char what[600];
	json_t *answer = NULL;
	const char *url;
	int rc;

	*out = NULL;
	snprintf(what, sizeof(what), "build logs of snapshot \"%s\"", s->name);
	rc = dtn__model_call(c, "GET", "/snapshots/%s/build-logs-url", s->id, what, &answer, err);
	if (rc == 0 && !(url = dtn__json_str(answer, "url")))
		rc = dtn__error_set(err, DTN_EPROTOCOL,
				    "the build-log address of snapshot \"%s\" is missing", s->name);
	if (rc == 0 && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		rc = dtn__error_set(err, DTN_EPROTOCOL,
				    "the build-log address of snapshot \"%s\" is not an http(s) URL",
				    s->name);
	if (rc == 0 && !(*out = dtn__strdup(url)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	json_decref(answer);
	return rc;
}

/* A wait for a build: the poll loop, and the build-log stream beside it. */
typedef struct waiter {
	dtn__poll p;         /* first: the loop's callbacks get a waiter through it */
	bool logs;           /* open the build-log stream once building */
	bool streamed;       /* a stream was opened */
	int url_tries;
	dtn__logstream *stream;
	dtn_span *stream_parent; /* of the stream's span (NULL: the wait's); borrowed */
} waiter;

static dtn_snapshot *cur(const waiter *w)
{
	return w->p.cur;
}

static const char *snapshot_state(const void *s)
{
	return ((const dtn_snapshot *)s)->state;
}

/* A snapshot's state lines are the state alone. */
static const char *state_line(const void *s, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return snapshot_state(s);
}

/* Opens the log stream the first time the build is seen running (not pending, not final). */
static int maybe_stream(waiter *w, dtn_error *err)
{
	const dtn_snapshot *s = cur(w);
	dtn_daytona *c = w->p.c;
	char *url = NULL;
	dtn_error uerr = {0};
	int rc;

	if (!w->logs || w->stream || !s->dockerfile || w->url_tries >= 3 ||
	    strcmp(s->state, "pending") == 0 || dtn_snapshot_state_is_final(s->state))
		return 0;
	w->url_tries++;
	if ((rc = logs_url(c, s, &url, &uerr)) < 0) {
		/* the logs are a bonus: the build goes on without them */
		if (rc == DTN_EINTR || rc == DTN_ETIMEOUT || rc == DTN_ENOMEM) {
			if (err)
				*err = uerr;
			return rc;
		}
		if (w->url_tries >= 3 || rc != DTN_ENOTFOUND)
			dtn__api_warn(c, "build logs: %s", uerr.message);
		if (rc != DTN_ENOTFOUND)
			w->url_tries = 3;
		return 0;
	}
	rc = dtn__logstream_start(&w->stream, c, url, true, w->stream_parent, w->p.log,
				  w->p.payload, err);
	w->streamed = rc == 0;
	dtn__free(url);
	return rc;
}

/* After a final state: the stream may still bring the last lines; a quiet one is cut. */
static int drain(waiter *w, dtn_error *err)
{
	dtn_daytona *c = w->p.c;
	int64_t final_at = dtn__now_ms();
	int rc = 0;

	if (!w->stream)
		return 0;
	dtn__logstream_set_final(w->stream);
	while (!dtn__logstream_done(w->stream) && !dtn__logstream_stopped(w->stream)) {
		int64_t last = dtn__logstream_last_data(w->stream);

		if (last < final_at)
			last = final_at;
		if (dtn__now_ms() - last >= c->grace_ms)
			break;
		if (c->cancel && *c->cancel) {
			rc = dtn__error_set(err, DTN_EINTR, "interrupted");
			break;
		}
		{
			struct timespec ts = {0, 20 * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
	return rc;
}

/*
 * A stream that did not come to its end before the final state (cut after the grace period, as
 * a failed build's always is, or dropped, or stalled) may have missed lines, the failing ones
 * the most likely: the log is read once more, and what was not delivered yet is delivered. A
 * read that brings nothing for a while is given up.
 */
static int reread(waiter *w, dtn_error *err)
{
	dtn_daytona *c = w->p.c;

	if (!w->stream || !dtn_snapshot_state_is_final(cur(w)->state) ||
	    dtn__logstream_reread(w->stream) <= 0)
		return 0;
	while (!dtn__logstream_done(w->stream) && !dtn__logstream_stopped(w->stream) &&
	       dtn__now_ms() - dtn__logstream_last_data(w->stream) < 5 * c->grace_ms) {
		struct timespec ts = {0, 20 * 1000000L};

		if (c->cancel && *c->cancel)
			return dtn__error_set(err, DTN_EINTR, "interrupted");
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* Done once the state is final; until then, the stream opens as soon as the build runs. */
static int judge(dtn__poll *p, dtn_error *err)
{
	if (dtn_snapshot_state_is_final(snapshot_state(p->cur)))
		return 1;
	return maybe_stream((waiter *)p, err);
}

static int awake(dtn__poll *p, dtn_error *err)
{
	waiter *w = (waiter *)p;

	if (w->stream && dtn__logstream_stopped(w->stream))
		return dtn__error_set(err, DTN_EUSER, "the log callback asked to stop");
	return 0;
}

/* One poll: the snapshot by id. */
static int fetch(dtn__poll *p, void **out, dtn_error *err)
{
	const dtn_snapshot *s = p->cur;
	dtn_snapshot *next = NULL;
	int rc;

	if ((rc = get_snapshot(p->c, s->id, &next, err)) == DTN_ENOTFOUND)
		dtn__error_set(err, rc, "snapshot \"%s\" disappeared while being waited for "
			       "(deleted?)", s->name);
	*out = next;
	return rc;
}

/* Until final, with the time spent in each state recorded. */
static const dtn__poll_kind until_final = {
	.model = &model,
	.event = "daytona.snapshot.state_change",
	.state_attr = "daytona.snapshot.state",
	.previous_attr = "daytona.snapshot.previous_state",
	.state_duration = "dtn.snapshot.state.duration",
	.stopped = "the log callback asked to stop",
	.state = snapshot_state,
	.line = state_line,
	.judge = judge,
	.awake = awake,
	.fetch = fetch,
};

static int final_result(waiter *w, dtn_error *err)
{
	const dtn_snapshot *s = cur(w);
	bool failed = strcmp(s->state, "build_failed") == 0;

	if (strcmp(s->state, "active") == 0)
		return 0;
	dtn__error_set(err, DTN_EBUILD, "snapshot \"%s\" %s (%s): %s", s->name,
		       failed ? "failed to build" : "failed", s->state,
		       s->error_reason && *s->error_reason ? s->error_reason : "no reason given");
	dtn_span_set_str(w->p.span, "error.type",
			 failed ? "daytona.snapshot.build_failed" : "daytona.snapshot.error");
	return DTN_EBUILD;
}

/* A waiter for snapshot s (owned from now on) with its operation's span (taken). */
static void waiter_start(waiter *w, dtn_daytona *c, dtn_snapshot *s, dtn_span *span,
			 dtn_log_fn log, void *payload)
{
	w->p = (dtn__poll){.kind = &until_final, .c = c, .log = log, .payload = payload, .cur = s};
	w->p.span = span;
	dtn_span_set_str(w->p.span, "daytona.snapshot.name", s->name);
	dtn_span_set_str(w->p.span, "daytona.snapshot.id", s->id);
}

/* Runs the wait loop from the current snapshot; the stream is always finished before returning. */
static int run_wait(waiter *w, dtn_error *err)
{
	int rc, src;
	dtn_error serr = {0};

	rc = dtn__poll_run(&w->p, err);
	if (rc == 0)
		rc = drain(w, err);
	if (rc == 0)
		rc = reread(w, err);
	src = dtn__logstream_finish(w->stream, false, &serr);
	w->stream = NULL;
	if (rc == 0 && src < 0) {
		rc = src;
		if (err)
			*err = serr;
	}
	dtn__poll_record(&w->p);
	return rc;
}

static int read_to_end(dtn_daytona *c, dtn__logstream *s, dtn_error *err);

/*
 * A build that failed between two polls was never seen building, so its log was not streamed:
 * the failing lines are what the caller needs most, so the whole log is read once.
 */
static int failed_log(waiter *w, dtn_error *err)
{
	const dtn_snapshot *s = cur(w);
	dtn_daytona *c = w->p.c;
	char *url = NULL;
	dtn_error uerr = {0};
	int rc;

	if (!w->logs || w->streamed || !s->dockerfile || strcmp(s->state, "build_failed") != 0)
		return 0;
	if ((rc = logs_url(c, s, &url, &uerr)) < 0) {
		dtn__api_warn(c, "build logs: %s", uerr.message);
		return rc == DTN_EINTR ? dtn__error_set(err, rc, "interrupted") : 0;
	}
	rc = dtn__logstream_start(&w->stream, c, url, false, w->stream_parent, w->p.log,
				  w->p.payload, err);
	dtn__free(url);
	if (rc < 0)
		return rc;
	rc = read_to_end(c, w->stream, err);
	if ((uerr.code = dtn__logstream_finish(w->stream, false, &uerr)) < 0 && rc == 0) {
		rc = uerr.code;
		if (err)
			*err = uerr;
	}
	w->stream = NULL;
	return rc;
}

int dtn_snapshot_wait(dtn_daytona *c, const dtn_snapshot *from, const dtn_snapshot_wait_opts *opts,
		      dtn_snapshot **out, dtn_error *err)
{
	static const dtn_snapshot_wait_opts none;
	const dtn_snapshot_wait_opts *o = opts ? opts : &none;
	waiter w = {.logs = o->logs};
	dtn_snapshot *s;
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if (!from)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot to wait for");
	if (!(s = dtn_snapshot_dup(from)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	/* The build log is streamed beside the wait, under the operation that waits (the
	 * snapshot's creation, otel.md §12.2). */
	w.stream_parent = dtn_span_current();
	waiter_start(&w, c, s, dtn_span_start_op("SnapshotService.wait", NULL), o->log, o->payload);
	rc = run_wait(&w, err);
	if (rc == 0)
		rc = failed_log(&w, err);
	if (rc == 0)
		rc = final_result(&w, err);
	s = cur(&w);
	if (rc == DTN_ETIMEOUT)
		dtn__error_set(err, rc, "snapshot \"%s\" was still %s when the time limit of %ld s "
			       "ran out", s->name, s->state, (c->timeout_ms + 999) / 1000);
	dtn_span_end_op(w.p.span, rc, err);
	if (rc == 0 || rc == DTN_EBUILD)
		*out = s;
	else
		dtn_snapshot_free(s);
	return rc;
}

/* ---- logs of a past or running build ---- */

/* Reads a whole (not followed) log to its end. */
static int read_to_end(dtn_daytona *c, dtn__logstream *s, dtn_error *err)
{
	int rc = 0;

	while (!dtn__logstream_done(s) && (rc = dtn__api_sleep(c, 20, err)) == 0)
		;
	return rc;
}

int dtn_snapshot_logs(dtn_daytona *c, const char *id_or_name, bool follow, dtn_log_fn log,
		      void *payload, dtn_error *err)
{
	waiter w = {0};
	dtn_snapshot *s = NULL;
	dtn_span *span;
	char *url = NULL;
	int rc, src;
	dtn_error serr = {0};

	dtn_error_clear(err);
	if (!id_or_name || !*id_or_name)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot named");
	/* the lookup is part of the operation: its request goes under the span */
	span = op_start("SnapshotService.logs", id_or_name);
	if ((rc = get_snapshot(c, id_or_name, &s, err)) < 0) {
		dtn_span_end_op(span, rc, err);
		return rc;
	}
	if (!s->dockerfile) {
		rc = dtn__error_set(err, DTN_ENOTFOUND,
				    "snapshot \"%s\" was made from the image %s: it has no build logs",
				    s->name, s->image_name ? s->image_name : "(unknown)");
		dtn_span_end_op(span, rc, err);
		dtn_snapshot_free(s);
		return rc;
	}
	waiter_start(&w, c, s, span, log, payload);
	if (follow && !dtn_snapshot_state_is_final(s->state)) {
		/* as a build's own wait: the stream opens once it runs (a pending build has no
		 * runner, so no log yet), and a failure between polls still shows its log */
		w.logs = true;
		if ((rc = run_wait(&w, err)) == 0)
			rc = failed_log(&w, err);
		goto out;
	}
	if ((rc = logs_url(c, cur(&w), &url, err)) < 0 ||
	    (rc = dtn__logstream_start(&w.stream, c, url, false, NULL, log, payload, err)) < 0)
		goto out;
	rc = read_to_end(c, w.stream, err);
	src = dtn__logstream_finish(w.stream, true, &serr);
	if (rc == 0 && src < 0) {
		rc = src;
		if (err)
			*err = serr;
	}
out:
	dtn_span_end_op(w.p.span, rc, err);
	dtn__free(url);
	dtn_snapshot_free(cur(&w));
	return rc;
}
