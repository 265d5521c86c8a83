/*
 * snapshot.c - snapshots (wire §5): the create request, waiting for a final state by id with the
 * build logs streamed beside, get, list, delete and activate.
 */
#include <string.h>

#include "api.h"
#include "dtn_otel.h"

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

static int fill(snapshot *s, dtn_error *err)
{
	dtn_snapshot *p = &s->pub;
	const json_t *bi = json_object_get(s->j, "buildInfo"), *ep, *size;

	p->id = dtn__json_str(s->j, "id");
	p->name = dtn__json_str(s->j, "name");
	p->state = dtn__json_str(s->j, "state");
	if (!p->id || !p->name || !p->state)
		return dtn__error_set(err, DTN_EPROTOCOL,
				      "the server described a snapshot without %s",
				      !p->id ? "an id" : !p->name ? "a name" : "a state");
	p->image_name = dtn__json_str(s->j, "imageName");
	p->error_reason = dtn__json_str(s->j, "errorReason");
	p->dockerfile = json_is_object(bi) ? dtn__json_str(bi, "dockerfileContent") : NULL;
	p->cpu = (int)dtn__json_int(s->j, "cpu", 0);
	p->gpu = (int)dtn__json_int(s->j, "gpu", 0);
	p->memory = (int)dtn__json_int(s->j, "mem", dtn__json_int(s->j, "memory", 0));
	p->disk = (int)dtn__json_int(s->j, "disk", 0);
	size = json_object_get(s->j, "size");
	p->size = json_is_number(size) ? json_number_value(size) : -1;
	p->created_at = dtn__json_str(s->j, "createdAt");
	p->updated_at = dtn__json_str(s->j, "updatedAt");
	ep = json_object_get(s->j, "entrypoint");
	if (!(s->context_hashes = dtn__json_to_strv(json_is_object(bi)
							   ? json_object_get(bi, "contextHashes")
							   : NULL)) ||
	    !(s->region_ids = dtn__json_to_strv(json_object_get(s->j, "regionIds"))) ||
	    (json_is_array(ep) && !(s->entrypoint = dtn__json_to_strv(ep))) ||
	    !(s->text = json_dumps(s->j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	p->context_hashes = (const char *const *)s->context_hashes;
	p->region_ids = (const char *const *)s->region_ids;
	p->entrypoint = (const char *const *)s->entrypoint;
	p->json = s->text;
	return 0;
}

int dtn__snapshot_from_json(dtn_snapshot **out, const json_t *j, dtn_error *err)
{
	snapshot *s;
	int rc;

	*out = NULL;
	if (!json_is_object(j))
		return dtn__error_set(err, DTN_EPROTOCOL, "the server's answer is not a snapshot");
	if (!(s = dtn__calloc(1, sizeof(*s))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	s->j = json_incref((json_t *)j);
	if ((rc = fill(s, err)) < 0) {
		dtn_snapshot_free(&s->pub);
		return rc;
	}
	*out = &s->pub;
	return 0;
}

dtn_snapshot *dtn_snapshot_dup(const dtn_snapshot *pub)
{
	const snapshot *s = (const snapshot *)pub;
	dtn_snapshot *out = NULL;
	json_t *copy;

	if (!s || !(copy = json_deep_copy(s->j)))
		return NULL;
	dtn__snapshot_from_json(&out, copy, NULL);
	json_decref(copy);
	return out;
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
	char *path = dtn__api_path("/snapshots/%s", id_or_name), what[600];
	json_t *answer = NULL;
	int rc;

	*out = NULL;
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "snapshot \"%s\"", id_or_name);
	rc = dtn__api_call(c, "GET", path, NULL, what, &answer, err);
	if (rc == 0)
		rc = dtn__snapshot_from_json(out, answer, err);
	json_decref(answer);
	dtn__free(path);
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

/* Polls until the server no longer knows the snapshot. */
static int wait_gone(dtn_daytona *c, const char *id, const char *shown, dtn_error *err)
{
	for (;;) {
		dtn_snapshot *s = NULL;
		dtn_error gerr = {0};
		int rc;

		if ((rc = dtn__api_sleep(c, c->poll_ms, err)) < 0) {
			if (rc == DTN_ETIMEOUT)
				dtn__error_set(err, rc, "snapshot \"%s\" was still being removed when "
					       "the time limit ran out", shown);
			return rc;
		}
		rc = get_snapshot(c, id, &s, &gerr);
		dtn_snapshot_free(s);
		if (rc == DTN_ENOTFOUND)
			return 0;
		if (rc < 0) {
			if (err)
				*err = gerr;
			return rc;
		}
	}
}

int dtn_snapshot_delete(dtn_daytona *c, const char *id_or_name, bool wait, dtn_error *err)
{
	dtn_span *span = op_start("SnapshotService.delete", id_or_name);
	char *id = NULL, *path = NULL, what[600];
	int rc;

	dtn_error_clear(err);
	if ((rc = resolve_id(c, id_or_name, &id, err)) < 0)
		goto out;
	dtn_span_set_str(span, "daytona.snapshot.id", id);
	if (!(path = dtn__api_path("/snapshots/%s", id))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(what, sizeof(what), "snapshot \"%s\"", id_or_name);
	if ((rc = dtn__api_call(c, "DELETE", path, NULL, what, NULL, err)) == 0 && wait)
		rc = wait_gone(c, id, id_or_name, err);
out:
	dtn_span_end_op(span, rc, err);
	dtn__free(path);
	dtn__free(id);
	return rc;
}

int dtn_snapshot_activate(dtn_daytona *c, const char *id_or_name, dtn_snapshot **out,
			  dtn_error *err)
{
	dtn_span *span = op_start("SnapshotService.activate", id_or_name);
	char *id = NULL, *path = NULL, what[600];
	json_t *answer = NULL;
	int rc;

	dtn_error_clear(err);
	if (out)
		*out = NULL;
	if ((rc = resolve_id(c, id_or_name, &id, err)) < 0)
		goto out;
	dtn_span_set_str(span, "daytona.snapshot.id", id);
	if (!(path = dtn__api_path("/snapshots/%s/activate", id))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(what, sizeof(what), "snapshot \"%s\"", id_or_name);
	rc = dtn__api_call(c, "POST", path, NULL, what, &answer, err);
	if (rc == 0 && out && answer)
		rc = dtn__snapshot_from_json(out, answer, err);
out:
	dtn_span_end_op(span, rc, err);
	json_decref(answer);
	dtn__free(path);
	dtn__free(id);
	return rc;
}

/* ---- waiting, with the build logs ---- */

/* The build-log URL of a snapshot (GET /snapshots/{id}/build-logs-url). */
static int logs_url(dtn_daytona *c, const dtn_snapshot *s, char **out, dtn_error *err)
{
	char *path = dtn__api_path("/snapshots/%s/build-logs-url", s->id), what[600];
	json_t *answer = NULL;
	const char *url;
	int rc;

	*out = NULL;
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	snprintf(what, sizeof(what), "build logs of snapshot \"%s\"", s->name);
	rc = dtn__api_call(c, "GET", path, NULL, what, &answer, err);
	dtn__free(path);
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

typedef struct waiter {
	dtn_daytona *c;
	dtn_log_fn log;
	void *payload;
	bool logs;           /* open the build-log stream once building */
	bool streamed;       /* a stream was opened */
	int url_tries;
	dtn__logstream *stream;
	dtn_snapshot *cur;
	dtn_span *span;
	long polls;
	int64_t state_since;
} waiter;

static int report_state(waiter *w, const char *state, const char *previous)
{
	int64_t now = dtn__now_ms();

	if (previous) {
		dtn_span_add_event(w->span, "daytona.snapshot.state_change",
				   (dtn_attr[]){DTN_ATTR_STR("daytona.snapshot.state", state),
						DTN_ATTR_STR("daytona.snapshot.previous_state",
							     previous)},
				   2);
		dtn_histogram_record("dtn.snapshot.state.duration", "s",
				     (double)(now - w->state_since) / 1000.0,
				     (dtn_attr[]){DTN_ATTR_STR("daytona.snapshot.state", previous)},
				     1);
	}
	w->state_since = now;
	if (dtn__api_log(w->c, w->log, w->payload, DTN_LOG_STATE, state, strlen(state)) != 0)
		return DTN_EUSER;
	return 0;
}

/* Opens the log stream the first time the build is seen running (not pending, not final). */
static int maybe_stream(waiter *w, dtn_error *err)
{
	const dtn_snapshot *s = w->cur;
	char *url = NULL;
	dtn_error uerr = {0};
	int rc;

	if (!w->logs || w->stream || !s->dockerfile || w->url_tries >= 3 ||
	    strcmp(s->state, "pending") == 0 || dtn_snapshot_state_is_final(s->state))
		return 0;
	w->url_tries++;
	if ((rc = logs_url(w->c, s, &url, &uerr)) < 0) {
		/* the logs are a bonus: the build goes on without them */
		if (rc == DTN_EINTR || rc == DTN_ETIMEOUT || rc == DTN_ENOMEM) {
			if (err)
				*err = uerr;
			return rc;
		}
		if (w->url_tries >= 3 || rc != DTN_ENOTFOUND)
			dtn__api_warn(w->c, "build logs: %s", uerr.message);
		if (rc != DTN_ENOTFOUND)
			w->url_tries = 3;
		return 0;
	}
	rc = dtn__logstream_start(&w->stream, w->c, url, true, w->log, w->payload, err);
	w->streamed = rc == 0;
	dtn__free(url);
	return rc;
}

/* After a final state: the stream may still bring the last lines; a quiet one is cut. */
static int drain(waiter *w, dtn_error *err)
{
	dtn_daytona *c = w->c;
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

/* Polls w->cur by id until its state is final. */
static int poll_until_final(waiter *w, dtn_error *err)
{
	int rc;

	while (!dtn_snapshot_state_is_final(w->cur->state)) {
		dtn_snapshot *next = NULL;

		if ((rc = maybe_stream(w, err)) < 0 || (rc = dtn__api_sleep(w->c, w->c->poll_ms, err)) < 0)
			return rc;
		if (w->stream && dtn__logstream_stopped(w->stream))
			return dtn__error_set(err, DTN_EUSER, "the log callback asked to stop");
		w->polls++;
		if ((rc = get_snapshot(w->c, w->cur->id, &next, err)) < 0) {
			if (rc == DTN_ENOTFOUND)
				dtn__error_set(err, rc, "snapshot \"%s\" disappeared while being "
					       "waited for (deleted?)", w->cur->name);
			return rc;
		}
		if (strcmp(next->state, w->cur->state) != 0 &&
		    (rc = report_state(w, next->state, w->cur->state)) < 0) {
			dtn_snapshot_free(next);
			return dtn__error_set(err, rc, "the log callback asked to stop");
		}
		dtn_snapshot_free(w->cur);
		w->cur = next;
	}
	return 0;
}

static int final_result(waiter *w, dtn_error *err)
{
	const dtn_snapshot *s = w->cur;
	bool failed = strcmp(s->state, "build_failed") == 0;

	if (strcmp(s->state, "active") == 0)
		return 0;
	dtn__error_set(err, DTN_EBUILD, "snapshot \"%s\" %s (%s): %s", s->name,
		       failed ? "failed to build" : "failed", s->state,
		       s->error_reason && *s->error_reason ? s->error_reason : "no reason given");
	dtn_span_set_str(w->span, "error.type",
			 failed ? "daytona.snapshot.build_failed" : "daytona.snapshot.error");
	return DTN_EBUILD;
}

static void waiter_span(waiter *w, const char *name)
{
	w->span = dtn_span_start_op(name, NULL);
	dtn_span_set_str(w->span, "daytona.snapshot.name", w->cur->name);
	dtn_span_set_str(w->span, "daytona.snapshot.id", w->cur->id);
}

/* Runs the wait loop from w->cur; the stream is always finished before returning. */
static int run_wait(waiter *w, bool initial_line, dtn_error *err)
{
	int rc = 0, src;
	dtn_error serr = {0};

	w->state_since = dtn__now_ms();
	if (initial_line && (rc = report_state(w, w->cur->state, NULL)) < 0)
		dtn__error_set(err, rc, "the log callback asked to stop");
	if (rc == 0)
		rc = poll_until_final(w, err);
	if (rc == 0)
		rc = drain(w, err);
	src = dtn__logstream_finish(w->stream, false, &serr);
	w->stream = NULL;
	if (rc == 0 && src < 0) {
		rc = src;
		if (err)
			*err = serr;
	}
	dtn_span_set_int(w->span, "dtn.poll.count", w->polls);
	dtn_span_set_str(w->span, "daytona.snapshot.state", w->cur->state);
	return rc;
}

static int read_to_end(dtn_daytona *c, dtn__logstream *s, dtn_error *err);

/*
 * A build that failed between two polls was never seen building, so its log was not streamed:
 * the failing lines are what the caller needs most, so the whole log is read once.
 */
static int failed_log(waiter *w, dtn_error *err)
{
	char *url = NULL;
	dtn_error uerr = {0};
	int rc;

	if (!w->logs || w->streamed || !w->cur->dockerfile ||
	    strcmp(w->cur->state, "build_failed") != 0)
		return 0;
	if ((rc = logs_url(w->c, w->cur, &url, &uerr)) < 0) {
		dtn__api_warn(w->c, "build logs: %s", uerr.message);
		return rc == DTN_EINTR ? dtn__error_set(err, rc, "interrupted") : 0;
	}
	rc = dtn__logstream_start(&w->stream, w->c, url, false, w->log, w->payload, err);
	dtn__free(url);
	if (rc < 0)
		return rc;
	rc = read_to_end(w->c, w->stream, err);
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
	waiter w = {.c = c, .log = o->log, .payload = o->payload, .logs = o->logs};
	int rc;

	dtn_error_clear(err);
	*out = NULL;
	if (!from)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot to wait for");
	if (!(w.cur = dtn_snapshot_dup(from)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	waiter_span(&w, "SnapshotService.wait");
	rc = run_wait(&w, true, err);
	if (rc == 0)
		rc = failed_log(&w, err);
	if (rc == 0)
		rc = final_result(&w, err);
	if (rc == DTN_ETIMEOUT)
		dtn__error_set(err, rc, "snapshot \"%s\" was still %s when the time limit of %ld s "
			       "ran out", w.cur->name, w.cur->state, (c->timeout_ms + 999) / 1000);
	dtn_span_end_op(w.span, rc, err);
	if (rc == 0 || rc == DTN_EBUILD)
		*out = w.cur;
	else
		dtn_snapshot_free(w.cur);
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
	waiter w = {.c = c, .log = log, .payload = payload};
	char *url = NULL;
	int rc, src;
	dtn_error serr = {0};

	dtn_error_clear(err);
	if (!id_or_name || !*id_or_name)
		return dtn__error_set(err, DTN_EINVAL, "no snapshot named");
	if ((rc = get_snapshot(c, id_or_name, &w.cur, err)) < 0)
		return rc;
	if (!w.cur->dockerfile) {
		rc = dtn__error_set(err, DTN_ENOTFOUND,
				    "snapshot \"%s\" was made from the image %s: it has no build logs",
				    w.cur->name, w.cur->image_name ? w.cur->image_name : "(unknown)");
		goto out;
	}
	waiter_span(&w, "SnapshotService.logs");
	if (follow && !dtn_snapshot_state_is_final(w.cur->state)) {
		/* as a build's own wait: the stream opens once it runs (a pending build has no
		 * runner, so no log yet), and a failure between polls still shows its log */
		w.logs = true;
		if ((rc = run_wait(&w, true, err)) == 0)
			rc = failed_log(&w, err);
		goto end_span;
	}
	if ((rc = logs_url(c, w.cur, &url, err)) < 0 ||
	    (rc = dtn__logstream_start(&w.stream, c, url, false, log, payload, err)) < 0)
		goto end_span;
	rc = read_to_end(c, w.stream, err);
	src = dtn__logstream_finish(w.stream, true, &serr);
	if (rc == 0 && src < 0) {
		rc = src;
		if (err)
			*err = serr;
	}
end_span:
	dtn_span_end_op(w.span, rc, err);
out:
	dtn__free(url);
	dtn_snapshot_free(w.cur);
	return rc;
}
