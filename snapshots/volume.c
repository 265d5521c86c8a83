/*
 * volume.c - volumes (wire §7): list, get by name or id, create, delete, and waiting until a
 * volume is ready, which the server requires before a sandbox may mount it.
 */
#include <string.h>

#include "api.h"
#include "dtn_otel.h"
#include "dtn_volume.h"
#include "model.h"
#include "poller.h"

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

static int fill(void *obj, const json_t *j, dtn_error *err)
{
	volume *v = obj;
	dtn_volume *p = &v->pub;

	v->j = json_incref((json_t *)j);
	p->id = dtn__json_str(j, "id");
	p->name = dtn__json_str(j, "name");
	p->state = dtn__json_str(j, "state");
	p->organization_id = dtn__json_str(j, "organizationId");
	p->error_reason = dtn__json_str(j, "errorReason");
	p->created_at = dtn__json_str(j, "createdAt");
	p->updated_at = dtn__json_str(j, "updatedAt");
	p->last_used_at = dtn__json_str(j, "lastUsedAt");
	if (!(v->text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	p->json = v->text;
	return 0;
}

static void free_volume(void *obj)
{
	dtn_volume_free(obj);
}

static const dtn__model model = {
	.size = sizeof(volume),
	.noun = "volume",
	.required = (const char *const[]){"id", "name", "state", NULL},
	.fill = fill,
	.free = free_volume,
};

static int from_json(dtn_volume **out, const json_t *j, dtn_error *err)
{
	void *v;
	int rc = dtn__model_from_json(&model, j, &v, err);

	*out = v;
	return rc;
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
	void *v;
	int rc = dtn__model_get(c, &model, fmt, arg, what, &v, err);

	*out = v;
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

static const char *volume_state(const void *v)
{
	return ((const dtn_volume *)v)->state;
}

static const char *state_line(const void *obj, char *buf, size_t size)
{
	const dtn_volume *v = obj;
	char shown[512];

	snprintf(buf, size, "volume %s: %s", dtn__printable(shown, sizeof(shown), v->name),
		 v->state);
	return buf;
}

/* 1 when the volume is ready, 0 to go on waiting, or an error for a state it cannot leave. */
static int judge(dtn__poll *p, dtn_error *err)
{
	const dtn_volume *v = p->cur;
	char shown[512];

	dtn__printable(shown, sizeof(shown), v->name);
	if (strcmp(v->state, "ready") == 0)
		return 1;
	if (strcmp(v->state, "error") == 0) {
		dtn_span_set_str(p->span, "error.type", "daytona.volume.error");
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
static int fetch(dtn__poll *p, void **out, dtn_error *err)
{
	const dtn_volume *cur = p->cur;
	dtn_volume *next = NULL;
	char shown[512];
	int rc;

	dtn__printable(shown, sizeof(shown), cur->name);
	if ((rc = get_by_name(p->c, cur->name, &next, err)) < 0) {
		if (rc == DTN_ENOTFOUND)
			dtn__error_set(err, rc, "volume \"%s\" disappeared while dtn waited for it "
				       "to be ready", shown);
		return rc;
	}
	if (strcmp(next->id, cur->id) != 0) {
		dtn_volume_free(next);
		return dtn__error_set(err, DTN_ENOTFOUND, "volume \"%s\" was deleted and another "
				      "one of that name created while dtn waited for it", shown);
	}
	*out = next;
	return 0;
}

static int out_of_time(dtn__poll *p, long seconds, dtn_error *err)
{
	const dtn_volume *v = p->cur;
	char shown[512];

	return dtn__error_set(err, DTN_ETIMEOUT, "volume \"%s\" was not ready when the time limit "
			      "of %ld s ran out (state: %s)",
			      dtn__printable(shown, sizeof(shown), v->name), seconds, v->state);
}

static const dtn__poll_kind until_ready = {
	.model = &model,
	.event = "daytona.volume.state_change",
	.state_attr = "daytona.volume.state",
	.previous_attr = "daytona.volume.previous_state",
	.stopped = "stopped by the log callback",
	.state = volume_state,
	.line = state_line,
	.judge = judge,
	.fetch = fetch,
	.late = out_of_time,
};

int dtn_volume_wait(dtn_daytona *c, const dtn_volume *from, const dtn_volume_wait_opts *opts,
		    dtn_volume **out, dtn_error *err)
{
	static const dtn_volume_wait_opts none;
	dtn__poll p = {.kind = &until_ready, .c = c};
	void *v;
	int rc;

	if (out)
		*out = NULL;
	if (!from)
		return dtn__error_set(err, DTN_EINVAL, "no volume to wait for");
	if (!opts)
		opts = &none;
	p.log = opts->log;
	p.payload = opts->payload;
	p.span = op_start("VolumeService.wait", from->name);
	dtn_span_set_str(p.span, "daytona.volume.id", from->id);
	rc = dtn__poll_wait(&p, ((const volume *)from)->j, &v, err);
	if (out)
		*out = v;
	else
		dtn_volume_free(v);
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

/* Gone: unknown, or shown as deleted. */
static int gone(dtn_daytona *c, const char *id, dtn_error *err)
{
	dtn_volume *v = NULL;
	int rc = get_by_id(c, id, &v, err);

	if (rc == 0 && strcmp(v->state, "deleted") == 0)
		rc = DTN_ENOTFOUND;
	dtn_volume_free(v);
	return rc == DTN_ENOTFOUND ? 1 : rc;
}

/* DELETE /volumes/{id}, with the server's refusals made plain. */
static int delete_id(dtn_daytona *c, const char *id, const char *shown, dtn_error *err)
{
	char what[600], server[2048];
	dtn_error e;
	int rc;

	dtn_error_clear(&e);
	snprintf(what, sizeof(what), "volume \"%s\"", shown);
	rc = dtn__model_call(c, "DELETE", "/volumes/%s", id, what, NULL, &e);
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
		rc = dtn__poll_until_gone(c, id, gone, "volume \"%s\" was still being deleted "
					  "when the time limit ran out", shown, err);
out:
	dtn_span_end_op(span, rc, err);
	dtn_volume_free(v);
	return rc;
}
