/*
 * volume.c - volumes (wire §7): list, get by name or id, create, delete, and waiting until a
 * volume is ready, which the server requires before a sandbox may mount it.
 */
#include <string.h>

#include "api.h"
#include "dtn_otel.h"
#include "dtn_volume.h"

/* A volume keeps the parsed answer: its strings point into it. */
typedef struct volume {
	dtn_volume pub;
	json_t *j;
	char *text;
} volume;

void dtn_volume_free(dtn_volume *pub)
{
	volume *v = (volume *)pub;

	if (!v)
		return;
	json_decref(v->j);
	free(v->text);
	dtn__free(v);
}

void dtn_volumes_free(dtn_volumes *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++)
		dtn_volume_free(list->items[i]);
	dtn__free(list->items);
	dtn__free(list);
}

static int fill(volume *v, dtn_error *err)
{
	dtn_volume *p = &v->pub;

	p->id = dtn__json_str(v->j, "id");
	p->name = dtn__json_str(v->j, "name");
	p->state = dtn__json_str(v->j, "state");
	if (!p->id || !p->name || !p->state)
		return dtn__error_set(err, DTN_EPROTOCOL, "the server described a volume without %s",
				      !p->id ? "an id" : !p->name ? "a name" : "a state");
	p->organization_id = dtn__json_str(v->j, "organizationId");
	p->error_reason = dtn__json_str(v->j, "errorReason");
	p->created_at = dtn__json_str(v->j, "createdAt");
	p->updated_at = dtn__json_str(v->j, "updatedAt");
	p->last_used_at = dtn__json_str(v->j, "lastUsedAt");
	if (!(v->text = json_dumps(v->j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	p->json = v->text;
	return 0;
}

static int from_json(dtn_volume **out, const json_t *j, dtn_error *err)
{
	volume *v;
	int rc;

	*out = NULL;
	if (!json_is_object(j))
		return dtn__error_set(err, DTN_EPROTOCOL, "the server's answer is not a volume");
	if (!(v = dtn__calloc(1, sizeof(*v))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	v->j = json_incref((json_t *)j);
	if ((rc = fill(v, err)) < 0) {
		dtn_volume_free(&v->pub);
		return rc;
	}
	*out = &v->pub;
	return 0;
}

/* A name fit for messages and for the server: not empty, UTF-8. */
static int check_name(const char *name, const char *what, dtn_error *err)
{
	char shown[256];

	if (!name || !name[0])
		return dtn__error_set(err, DTN_EINVAL, "the %s of the volume is empty", what);
	if (!dtn__utf8_valid(name, strlen(name)))
		return dtn__error_set(err, DTN_EINVAL, "the volume %s \"%s\" is not valid UTF-8",
				      what, dtn__printable(shown, sizeof(shown), name));
	return 0;
}

static dtn_span *op_start(const char *name, const char *volume_name)
{
	dtn_span *span = dtn_span_start_op(name, NULL);

	if (volume_name)
		dtn_span_set_str(span, "daytona.volume.name", volume_name);
	return span;
}

/* GET `fmt` with `arg` as its one path segment; `what` names the volume for a 404. */
static int get_volume(dtn_daytona *c, const char *fmt, const char *arg, const char *what,
		      dtn_volume **out, dtn_error *err)
{
	char *path = dtn__api_path(fmt, arg);
	json_t *answer = NULL;
	int rc;

	*out = NULL;
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if ((rc = dtn__api_call(c, "GET", path, NULL, what, &answer, err)) == 0)
		rc = from_json(out, answer, err);
	json_decref(answer);
	dtn__free(path);
	return rc;
}

static int get_by_name(dtn_daytona *c, const char *name, dtn_volume **out, dtn_error *err)
{
	char what[600], shown[512];

	snprintf(what, sizeof(what), "volume \"%s\"", dtn__printable(shown, sizeof(shown), name));
	return get_volume(c, "/volumes/by-name/%s", name, what, out, err);
}

static int get_by_id(dtn_daytona *c, const char *id, dtn_volume **out, dtn_error *err)
{
	char what[600], shown[512];

	snprintf(what, sizeof(what), "volume with id \"%s\"",
		 dtn__printable(shown, sizeof(shown), id));
	return get_volume(c, "/volumes/%s", id, what, out, err);
}

/* Looks up by id when the text is a UUID, then by name (as the server resolves volumeId). */
static int find(dtn_daytona *c, const char *id_or_name, dtn_volume **out, dtn_error *err)
{
	int rc;

	if (dtn__is_uuid(id_or_name) &&
	    ((rc = get_by_id(c, id_or_name, out, err)) == 0 || rc != DTN_ENOTFOUND))
		return rc;
	return get_by_name(c, id_or_name, out, err);
}

/* Runs one lookup as a VolumeService operation. */
static int traced_get(dtn_daytona *c, const char *key, const char *span_name,
		      int (*get)(dtn_daytona *, const char *, dtn_volume **, dtn_error *),
		      dtn_volume **out, dtn_error *err)
{
	dtn_span *span = op_start(span_name, key);
	int rc;

	*out = NULL;
	if ((rc = check_name(key, "name or id", err)) == 0 && (rc = get(c, key, out, err)) == 0)
		dtn_span_set_str(span, "daytona.volume.id", (*out)->id);
	dtn_span_end_op(span, rc, err);
	return rc;
}

int dtn_volume_get(dtn_daytona *c, const char *name, dtn_volume **out, dtn_error *err)
{
	return traced_get(c, name, "VolumeService.get", get_by_name, out, err);
}

int dtn_volume_get_by_id(dtn_daytona *c, const char *id, dtn_volume **out, dtn_error *err)
{
	return traced_get(c, id, "VolumeService.get", get_by_id, out, err);
}

int dtn_volume_find(dtn_daytona *c, const char *id_or_name, dtn_volume **out, dtn_error *err)
{
	return traced_get(c, id_or_name, "VolumeService.get", find, out, err);
}

/* ---- list ---- */

static int list_from_json(dtn_volumes *list, const json_t *answer, dtn_error *err)
{
	size_t i, n;
	json_t *item;
	int rc;

	if (!json_is_array(answer))
		return dtn__error_set(err, DTN_EPROTOCOL,
				      "GET /volumes: the answer is not a JSON array");
	n = json_array_size(answer);
	if (n && !(list->items = dtn__calloc(n, sizeof(*list->items))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	json_array_foreach(answer, i, item) {
		if ((rc = from_json(&list->items[i], item, err)) < 0)
			return rc;
		list->count++;
	}
	return 0;
}

int dtn_volume_list(dtn_daytona *c, dtn_volumes **out, dtn_error *err)
{
	dtn_span *span = op_start("VolumeService.list", NULL);
	dtn_volumes *list = NULL;
	json_t *answer = NULL;
	int rc;

	*out = NULL;
	if (!(list = dtn__calloc(1, sizeof(*list))))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	else if ((rc = dtn__api_request(c, "GET", "/volumes", NULL, &answer, err)) == 0)
		rc = list_from_json(list, answer, err);
	json_decref(answer);
	if (rc < 0) {
		dtn_volumes_free(list);
	} else {
		dtn_span_set_int(span, "dtn.volume.count", (int64_t)list->count);
		*out = list;
	}
	dtn_span_end_op(span, rc, err);
	return rc;
}

/* ---- create ---- */

static int create(dtn_daytona *c, const char *name, dtn_volume **out, dtn_error *err)
{
	json_t *body = json_object(), *answer = NULL;
	char shown[512];
	dtn_error e;
	int rc;

	*out = NULL;
	dtn_error_clear(&e);
	if (!body || json_object_set_new(body, "name", json_string(name)) < 0) {
		json_decref(body);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	rc = dtn__api_request(c, "POST", "/volumes", body, &answer, &e);
	/* The server says a name is taken with a 400, not a 409 (wire §7). */
	if (rc == DTN_EINVAL && strstr(e.message, "already exists"))
		rc = dtn__error_set(&e, DTN_EEXISTS, "volume \"%s\" already exists",
				    dtn__printable(shown, sizeof(shown), name));
	if (rc == 0)
		rc = from_json(out, answer, &e);
	if (rc < 0 && err)
		*err = e;
	json_decref(answer);
	json_decref(body);
	return rc;
}

int dtn_volume_create(dtn_daytona *c, const char *name, dtn_volume **out, dtn_error *err)
{
	dtn_span *span = op_start("VolumeService.create", name);
	dtn_volume *v = NULL;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = check_name(name, "name", err)) == 0 && (rc = create(c, name, &v, err)) == 0) {
		dtn_span_set_str(span, "daytona.volume.id", v->id);
		dtn_span_set_str(span, "daytona.volume.state", v->state);
	}
	dtn_span_end_op(span, rc, err);
	if (out && rc == 0)
		*out = v;
	else
		dtn_volume_free(v);
	return rc;
}

/* ---- waiting ---- */

typedef struct waiter {
	dtn_daytona *c;
	dtn_log_fn log;
	void *payload;
	dtn_span *span;
	dtn_volume *cur;     /* the last description seen (owned) */
	long polls;
} waiter;

static int report_state(waiter *w, const char *previous)
{
	char line[600], shown[512];

	if (previous)
		dtn_span_add_event(w->span, "daytona.volume.state_change",
				   (dtn_attr[]){DTN_ATTR_STR("daytona.volume.state", w->cur->state),
						DTN_ATTR_STR("daytona.volume.previous_state",
							     previous)},
				   2);
	snprintf(line, sizeof(line), "volume %s: %s",
		 dtn__printable(shown, sizeof(shown), w->cur->name), w->cur->state);
	return dtn__api_log(w->c, w->log, w->payload, DTN_LOG_STATE, line, strlen(line)) != 0
		       ? DTN_EUSER
		       : 0;
}

/* 1 when the volume is ready, 0 to go on waiting, or an error for a state it cannot leave. */
static int judge(waiter *w, dtn_error *err)
{
	const dtn_volume *v = w->cur;
	char shown[512];

	dtn__printable(shown, sizeof(shown), v->name);
	if (strcmp(v->state, "ready") == 0)
		return 1;
	if (strcmp(v->state, "error") == 0) {
		dtn_span_set_str(w->span, "error.type", "daytona.volume.error");
		return dtn__error_set(err, DTN_EBUILD, "volume \"%s\" failed: %s", shown,
				      v->error_reason && v->error_reason[0]
					      ? v->error_reason
					      : "the server gave no reason");
	}
	if (strcmp(v->state, "pending_delete") == 0 || strcmp(v->state, "deleting") == 0 ||
	    strcmp(v->state, "deleted") == 0)
		return dtn__error_set(err, DTN_ENOTFOUND, "volume \"%s\" is being deleted (%s)",
				      shown, v->state);
	return 0;
}

/* One poll: the volume by name again, which must still be the same volume. */
static int poll_once(waiter *w, dtn_error *err)
{
	char shown[512], *previous = NULL;
	dtn_volume *next = NULL;
	int rc;

	dtn__printable(shown, sizeof(shown), w->cur->name);
	w->polls++;
	if ((rc = get_by_name(w->c, w->cur->name, &next, err)) < 0) {
		if (rc == DTN_ENOTFOUND)
			dtn__error_set(err, rc, "volume \"%s\" disappeared while dtn waited for it "
				       "to be ready", shown);
		return rc;
	}
	if (strcmp(next->id, w->cur->id) != 0) {
		dtn_volume_free(next);
		return dtn__error_set(err, DTN_ENOTFOUND, "volume \"%s\" was deleted and another "
				      "one of that name created while dtn waited for it", shown);
	}
	if (strcmp(next->state, w->cur->state) != 0 && !(previous = dtn__strdup(w->cur->state))) {
		dtn_volume_free(next);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	dtn_volume_free(w->cur);
	w->cur = next;
	if (previous)
		rc = report_state(w, previous);
	dtn__free(previous);
	return rc;
}

static int wait_ready(waiter *w, dtn_error *err)
{
	int rc;

	if ((rc = report_state(w, NULL)) < 0)
		return dtn__error_set(err, rc, "stopped by the log callback");
	while ((rc = judge(w, err)) == 0) {
		if ((rc = dtn__api_sleep(w->c, w->c->poll_ms, err)) < 0 ||
		    (rc = poll_once(w, err)) < 0)
			break;
	}
	if (rc == DTN_EUSER)
		return dtn__error_set(err, rc, "stopped by the log callback");
	if (rc == DTN_ETIMEOUT && w->c->timeout_ms > 0 && dtn__api_remaining_ms(w->c) == 0) {
		char shown[512];

		return dtn__error_set(err, rc, "volume \"%s\" was not ready when the time limit "
				      "of %ld s ran out (state: %s)",
				      dtn__printable(shown, sizeof(shown), w->cur->name),
				      (w->c->timeout_ms + 999) / 1000, w->cur->state);
	}
	return rc < 0 ? rc : 0;
}

static dtn_volume *dup_volume(const dtn_volume *pub)
{
	const volume *v = (const volume *)pub;
	dtn_volume *out = NULL;
	json_t *copy;

	if (!(copy = json_deep_copy(v->j)))
		return NULL;
	from_json(&out, copy, NULL);
	json_decref(copy);
	return out;
}

int dtn_volume_wait(dtn_daytona *c, const dtn_volume *from, const dtn_volume_wait_opts *opts,
		    dtn_volume **out, dtn_error *err)
{
	static const dtn_volume_wait_opts none;
	waiter w = {.c = c};
	int rc;

	if (out)
		*out = NULL;
	if (!from)
		return dtn__error_set(err, DTN_EINVAL, "no volume to wait for");
	if (!opts)
		opts = &none;
	w.log = opts->log;
	w.payload = opts->payload;
	w.span = op_start("VolumeService.wait", from->name);
	dtn_span_set_str(w.span, "daytona.volume.id", from->id);
	if (!(w.cur = dup_volume(from)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	else
		rc = wait_ready(&w, err);
	dtn_span_set_int(w.span, "dtn.poll.count", w.polls);
	if (w.cur)
		dtn_span_set_str(w.span, "daytona.volume.state", w.cur->state);
	dtn_span_end_op(w.span, rc, err);
	if (rc == 0 && out)
		*out = w.cur;
	else
		dtn_volume_free(w.cur);
	return rc;
}

int dtn_volume_ensure(dtn_daytona *c, const char *id_or_name, const dtn_volume_wait_opts *opts,
		      dtn_volume **out, dtn_error *err)
{
	dtn_volume *v = NULL;
	dtn_error e;
	int rc;

	if (out)
		*out = NULL;
	dtn_error_clear(&e);
	rc = dtn_volume_find(c, id_or_name, &v, &e);
	/* A missing name is created; an unknown id is an error (a UUID is never a wished-for
	 * name). Someone else may create it at the same moment: then it is looked up again. */
	if (rc == DTN_ENOTFOUND && !dtn__is_uuid(id_or_name)) {
		rc = dtn_volume_create(c, id_or_name, &v, &e);
		if (rc == DTN_EEXISTS)
			rc = dtn_volume_get(c, id_or_name, &v, &e);
	}
	if (rc == 0)
		rc = dtn_volume_wait(c, v, opts, out, &e);
	dtn_volume_free(v);
	if (rc < 0 && err)
		*err = e;
	return rc;
}

/* ---- delete ---- */

/* Polls the volume by id until the server no longer shows it. */
static int wait_gone(dtn_daytona *c, const char *id, const char *shown, dtn_error *err)
{
	for (;;) {
		dtn_volume *v = NULL;
		dtn_error gerr;
		int rc;

		if ((rc = dtn__api_sleep(c, c->poll_ms, err)) < 0) {
			if (rc == DTN_ETIMEOUT)
				dtn__error_set(err, rc, "volume \"%s\" was still being deleted when "
					       "the time limit ran out", shown);
			return rc;
		}
		rc = get_by_id(c, id, &v, &gerr);
		if (rc == 0 && strcmp(v->state, "deleted") == 0)
			rc = DTN_ENOTFOUND;
		dtn_volume_free(v);
		if (rc == DTN_ENOTFOUND)
			return 0;
		if (rc < 0) {
			if (err)
				*err = gerr;
			return rc;
		}
	}
}

/* DELETE /volumes/{id}, with the server's refusals made plain. */
static int delete_id(dtn_daytona *c, const char *id, const char *shown, dtn_error *err)
{
	char *path = dtn__api_path("/volumes/%s", id), what[600], server[2048];
	dtn_error e;
	int rc;

	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	dtn_error_clear(&e);
	snprintf(what, sizeof(what), "volume \"%s\"", shown);
	rc = dtn__api_call(c, "DELETE", path, NULL, what, NULL, &e);
	dtn__free(path);
	memcpy(server, e.message, sizeof(server));
	/* 409: a sandbox mounts it; 400: its state is neither ready nor error (wire §7). */
	if (rc == DTN_EEXISTS)
		rc = dtn__error_set(&e, DTN_EBUSY, "cannot delete %s: a sandbox uses it (%s)",
				    what, server);
	else if (rc == DTN_EINVAL)
		rc = dtn__error_set(&e, DTN_EBUSY, "cannot delete %s now: only a ready volume or "
				    "one in error can be deleted (%s)", what, server);
	if (rc < 0 && err)
		*err = e;
	return rc;
}

int dtn_volume_delete(dtn_daytona *c, const char *id_or_name, bool wait, dtn_error *err)
{
	dtn_span *span = op_start("VolumeService.delete", id_or_name);
	dtn_volume *v = NULL;
	char shown[512];
	const char *id;
	int rc;

	if ((rc = check_name(id_or_name, "name or id", err)) < 0)
		goto out;
	dtn__printable(shown, sizeof(shown), id_or_name);
	/* An id is deleted at once, as the SDKs do; a name is looked up first. */
	id = id_or_name;
	rc = dtn__is_uuid(id) ? delete_id(c, id, shown, err) : DTN_ENOTFOUND;
	if (rc == DTN_ENOTFOUND) {
		if ((rc = find(c, id_or_name, &v, err)) < 0)
			goto out;
		id = v->id;
		rc = delete_id(c, id, shown, err);
	}
	dtn_span_set_str(span, "daytona.volume.id", id);
	if (rc == 0 && wait)
		rc = wait_gone(c, id, shown, err);
out:
	dtn_span_end_op(span, rc, err);
	dtn_volume_free(v);
	return rc;
}
