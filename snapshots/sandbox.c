/*
 * sandbox.c - sandboxes from a snapshot with volumes mounted (wire §8): mounts checked by the
 * server's rules before anything is sent, volumes made ready, POST /sandbox, then polling by id
 * until the sandbox is started.
 */
#include <limits.h>
#include <string.h>

#include "api.h"
#include "dtn_otel.h"
#include "dtn_volume.h"
#include "model.h"
#include "poller.h"

/* The server holds POST /sandbox up to 30 s while the sandbox starts (wire §3, §10.11). */
#define CREATE_TIMEOUT_MS 45000

/* ---- mounts: the server's rules ---- */

/* Directories the server refuses to mount over, with everything below them. */
static const char *const system_dirs[] = {
	"/proc", "/sys", "/dev", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib64",
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Why the server would refuse a mount path, or NULL. */
static const char *mount_path_problem(const char *p)
{
	if (p[0] != '/')
		return "must be an absolute path";
	if (strcmp(p, "/") == 0 || strcmp(p, "//") == 0)
		return "is the root directory";
	if (strstr(p, "/../") || strstr(p, "/./") || ends_with(p, "/..") || ends_with(p, "/."))
		return "must not contain \".\" or \"..\" components";
	if (strstr(p, "//"))
		return "must not contain \"//\"";
	for (size_t i = 0; i < DTN__ARRAY_LEN(system_dirs); i++) {
		size_t n = strlen(system_dirs[i]);

		if (strncmp(p, system_dirs[i], n) == 0 && (p[n] == '\0' || p[n] == '/'))
			return "is a system directory (nothing can be mounted on or below /proc, "
			       "/sys, /dev, /boot, /etc, /bin, /sbin, /lib or /lib64)";
	}
	return NULL;
}

/* Why the server would refuse a subpath (a key prefix inside the volume), or NULL. */
static const char *subpath_problem(const char *s)
{
	if (s[0] == '/')
		return "must not start with '/' (it is a prefix inside the volume)";
	if (strstr(s, ".."))
		return "must not contain \"..\"";
	if (strstr(s, "//"))
		return "must not contain \"//\"";
	return NULL;
}

/* Text that can go into a JSON body and a one-line message. */
static bool clean_text(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return dtn__utf8_valid(s, strlen(s));
}

static int mount_fail(const dtn_mount *m, const char *what, const char *value,
		      const char *problem, dtn_error *err)
{
	char vol[256], shown[1024];

	return dtn__error_set(err, DTN_EINVAL, "volume %s: %s \"%s\" %s",
			      dtn__printable(vol, sizeof(vol), m->volume), what,
			      dtn__printable(shown, sizeof(shown), value), problem);
}

int dtn_mount_check(const dtn_mount *m, dtn_error *err)
{
	const char *problem;

	if (!m || !m->volume || !m->volume[0])
		return dtn__error_set(err, DTN_EINVAL, "a volume mount names no volume");
	if (!clean_text(m->volume))
		return mount_fail(m, "name", m->volume, "is not printable UTF-8 text", err);
	if (!m->mount_path || !m->mount_path[0])
		return mount_fail(m, "mount path", "", "is empty", err);
	if (!clean_text(m->mount_path))
		return mount_fail(m, "mount path", m->mount_path, "is not printable UTF-8 text",
				  err);
	if ((problem = mount_path_problem(m->mount_path)))
		return mount_fail(m, "mount path", m->mount_path, problem, err);
	if (!m->subpath || !m->subpath[0])
		return 0;
	if (!clean_text(m->subpath))
		return mount_fail(m, "subpath", m->subpath, "is not printable UTF-8 text", err);
	if ((problem = subpath_problem(m->subpath)))
		return mount_fail(m, "subpath", m->subpath, problem, err);
	return 0;
}

static int parse_fail(const char *text, const char *problem, dtn_error *err)
{
	char shown[1024];

	return dtn__error_set(err, DTN_EINVAL, "volume mount \"%s\": %s",
			      dtn__printable(shown, sizeof(shown), text), problem);
}

int dtn_mount_parse(const char *text, dtn_mount **out, dtn_error *err)
{
	const char *c1, *c2;
	dtn_mount *m;
	size_t len;
	char *s;
	int rc;

	*out = NULL;
	if (!text || !(c1 = strchr(text, ':')))
		return parse_fail(text, "expected NAME:PATH[:SUBPATH]", err);
	if (c1 == text)
		return parse_fail(text, "the volume name before the first ':' is empty", err);
	if (!c1[1] || c1[1] == ':')
		return parse_fail(text, "the mount path after the first ':' is empty", err);
	c2 = strchr(c1 + 1, ':');
	if (c2 && !c2[1])
		return parse_fail(text, "the subpath after the second ':' is empty (leave the "
					"':' out to mount the whole volume)", err);
	/* One block: the struct, then a copy of the text cut at its colons. */
	len = strlen(text);
	if (!(m = dtn__calloc(1, sizeof(*m) + len + 1)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	s = (char *)(m + 1);
	memcpy(s, text, len + 1);
	s[c1 - text] = '\0';
	m->volume = s;
	m->mount_path = s + (c1 - text) + 1;
	if (c2) {
		s[c2 - text] = '\0';
		m->subpath = s + (c2 - text) + 1;
	}
	if ((rc = dtn_mount_check(m, err)) < 0) {
		dtn__free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ---- the sandbox model ---- */

/* A sandbox keeps the parsed answer: its strings point into it. */
typedef struct sandbox {
	dtn_sandbox pub;
	json_t *j;
	dtn_sandbox_volume *volumes;
	char *text;
} sandbox;

void dtn_sandbox_free(dtn_sandbox *pub)
{
	sandbox *s = (sandbox *)pub;

	if (!s)
		return;
	json_decref(s->j);
	dtn__free(s->volumes);
	free(s->text);
	dtn__free(s);
}

static int fill_volumes(sandbox *s)
{
	const json_t *vols = json_object_get(s->j, "volumes"), *item;
	size_t i, n = json_is_array(vols) ? json_array_size(vols) : 0;

	if (!n)
		return 0;
	if (!(s->volumes = dtn__calloc(n, sizeof(*s->volumes))))
		return DTN_ENOMEM;
	json_array_foreach(vols, i, item) {
		dtn_sandbox_volume *v = &s->volumes[s->pub.nvolumes];

		v->volume_id = dtn__json_str(item, "volumeId");
		v->mount_path = dtn__json_str(item, "mountPath");
		v->subpath = dtn__json_str(item, "subpath");
		if (v->volume_id && v->mount_path)
			s->pub.nvolumes++;
	}
	s->pub.volumes = s->volumes;
	return 0;
}

static int fill(void *obj, const json_t *j, dtn_error *err)
{
	sandbox *s = obj;
	dtn_sandbox *p = &s->pub;

	s->j = json_incref((json_t *)j);
	p->id = dtn__json_str(j, "id");
	p->state = dtn__json_str(j, "state");
	p->name = dtn__json_str(j, "name");
	p->error_reason = dtn__json_str(j, "errorReason");
	p->snapshot = dtn__json_str(j, "snapshot");
	p->target = dtn__json_str(j, "target");
	p->toolbox_proxy_url = dtn__json_str(j, "toolboxProxyUrl");
	p->cpu = (int)dtn__json_int(j, "cpu", 0);
	p->gpu = (int)dtn__json_int(j, "gpu", 0);
	p->memory = (int)dtn__json_int(j, "memory", 0);
	p->disk = (int)dtn__json_int(j, "disk", 0);
	if (fill_volumes(s) < 0 || !(s->text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	p->json = s->text;
	return 0;
}

static void free_sandbox(void *obj)
{
	dtn_sandbox_free(obj);
}

static const dtn__model model = {
	.size = sizeof(sandbox),
	.noun = "sandbox",
	.required = (const char *const[]){"id", "state", NULL},
	.fill = fill,
	.free = free_sandbox,
};

static int from_json(dtn_sandbox **out, const json_t *j, dtn_error *err)
{
	void *s;
	int rc = dtn__model_from_json(&model, j, &s, err);

	*out = s;
	return rc;
}

/* GET /sandbox/{id_or_name}; `what` names the sandbox for a 404. */
static int get_sandbox(dtn_daytona *c, const char *id_or_name, const char *what,
		       dtn_sandbox **out, dtn_error *err)
{
	void *s;
	int rc = dtn__model_get(c, &model, "/sandbox/%s", id_or_name, what, &s, err);

	*out = s;
	return rc;
}

/* The name a message shows for a sandbox: its name, and its id when that differs. */
static void sandbox_label(const dtn_sandbox *s, char *buf, size_t size)
{
	char name[256];

	if (s->name && strcmp(s->name, s->id) != 0)
		snprintf(buf, size, "sandbox \"%s\" (%s)", dtn__printable(name, sizeof(name), s->name),
			 s->id);
	else
		snprintf(buf, size, "sandbox %s", s->id);
}

/* ---- the create body ---- */

/* "KEY=VALUE" items into an object (which may hold defaults that an item replaces). */
static int add_pairs(json_t *o, const char *const *items, const char *what, dtn_error *err)
{
	char shown[512];

	for (size_t i = 0; items && items[i]; i++) {
		const char *eq = strchr(items[i], '=');
		char *key;
		int rc;

		if (!eq || eq == items[i] || !dtn__utf8_valid(items[i], strlen(items[i])))
			return dtn__error_set(err, DTN_EINVAL,
					      "%s \"%s\": expected KEY=VALUE in UTF-8", what,
					      dtn__printable(shown, sizeof(shown), items[i]));
		if (!(key = dtn__strndup(items[i], (size_t)(eq - items[i]))))
			return dtn__error_set(err, DTN_ENOMEM, "out of memory");
		rc = json_object_set_new(o, key, json_string(eq + 1));
		dtn__free(key);
		if (rc < 0)
			return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	return 0;
}

static int check_params(const dtn_sandbox_params *p, dtn_error *err)
{
	char shown[512];
	int rc;

	if (!p || !p->snapshot || !p->snapshot[0])
		return dtn__error_set(err, DTN_EINVAL, "a sandbox needs a snapshot to start from");
	if (!clean_text(p->snapshot))
		return dtn__error_set(err, DTN_EINVAL, "snapshot \"%s\" is not printable UTF-8 text",
				      dtn__printable(shown, sizeof(shown), p->snapshot));
	if (p->name && (!p->name[0] || !clean_text(p->name)))
		return dtn__error_set(err, DTN_EINVAL, "sandbox name \"%s\" is %s",
				      dtn__printable(shown, sizeof(shown), p->name),
				      p->name[0] ? "not printable UTF-8 text" : "empty");
	if (p->nmounts && !p->mounts)
		return dtn__error_set(err, DTN_EINVAL, "%zu volume mounts announced, none given",
				      p->nmounts);
	for (size_t i = 0; i < p->nmounts; i++) {
		if ((rc = dtn_mount_check(&p->mounts[i], err)) < 0)
			return rc;
		/* the server refuses two volumes at one path */
		for (size_t k = 0; k < i; k++)
			if (strcmp(p->mounts[k].mount_path, p->mounts[i].mount_path) == 0)
				return dtn__error_set(err, DTN_EINVAL,
						      "volumes %s and %s are both mounted at %s",
						      p->mounts[k].volume, p->mounts[i].volume,
						      p->mounts[i].mount_path);
	}
	return 0;
}

static int set_new(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *volumes_json(const dtn_sandbox_params *p, const char *const *ids)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < p->nmounts; i++) {
		const dtn_mount *m = &p->mounts[i];
		json_t *o = json_object();

		if (!o || set_new(o, "volumeId", json_string(ids ? ids[i] : m->volume)) < 0 ||
		    set_new(o, "mountPath", json_string(m->mount_path)) < 0 ||
		    (m->subpath && m->subpath[0] &&
		     set_new(o, "subpath", json_string(m->subpath)) < 0) ||
		    json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/*
 * The body in the SDKs' order (wire §9): name, snapshot, env, labels, target, volumes. `ids`
 * are the resolved volume ids (NULL: the mounts' volumes as given).
 */
static int create_json(const dtn_daytona *c, const dtn_sandbox_params *p, const char *const *ids,
		       json_t **out, dtn_error *err)
{
	json_t *o = json_object(), *env = json_object(), *labels = json_object();
	const char *target = c ? dtn_daytona_target(c) : NULL;
	int rc;

	*out = NULL;
	if (!o || !env || !labels ||
	    json_object_set_new(labels, "code-toolbox-language", json_string("python")) < 0) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = add_pairs(env, p->env, "environment variable", err)) < 0 ||
	    (rc = add_pairs(labels, p->labels, "label", err)) < 0)
		goto fail;
	if ((p->name && set_new(o, "name", json_string(p->name)) < 0) ||
	    set_new(o, "snapshot", json_string(p->snapshot)) < 0 ||
	    json_object_set(o, "env", env) < 0 || json_object_set(o, "labels", labels) < 0 ||
	    (target && set_new(o, "target", json_string(target)) < 0) ||
	    (p->nmounts && set_new(o, "volumes", volumes_json(p, ids)) < 0)) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto fail;
	}
	json_decref(env);
	json_decref(labels);
	*out = o;
	return 0;
fail:
	json_decref(o);
	json_decref(env);
	json_decref(labels);
	return rc;
}

int dtn_sandbox_create_body(const dtn_daytona *c, const dtn_sandbox_params *p, char **out,
			    dtn_error *err)
{
	json_t *o;
	char *text;
	int rc;

	*out = NULL;
	if ((rc = check_params(p, err)) < 0 || (rc = create_json(c, p, NULL, &o, err)) < 0)
		return rc;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text || !(*out = dtn__strdup(text)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	free(text);
	return rc;
}

/* ---- waiting until started ---- */

static const char *sandbox_state(const void *s)
{
	return ((const dtn_sandbox *)s)->state;
}

static const char *state_line(const void *obj, char *buf, size_t size)
{
	const dtn_sandbox *s = obj;
	char label[600];

	sandbox_label(s, label, sizeof(label));
	snprintf(buf, size, "%s: %s", label, s->state);
	return buf;
}

/* 1 when started, 0 to go on, or an error for a state the sandbox will not start from. */
static int judge(dtn__poll *p, dtn_error *err)
{
	const dtn_sandbox *s = p->cur;
	const char *st = s->state, *reason = s->error_reason;
	char label[600];

	sandbox_label(s, label, sizeof(label));
	if (strcmp(st, "started") == 0)
		return 1;
	if (strcmp(st, "error") == 0 || strcmp(st, "build_failed") == 0) {
		dtn_span_set_str(p->span, "error.type", strcmp(st, "error") == 0
								? "daytona.sandbox.error"
								: "daytona.sandbox.build_failed");
		return dtn__error_set(err, DTN_EBUILD, "%s failed to start (state %s): %s", label,
				      st, reason && reason[0] ? reason : "the server gave no reason");
	}
	if (strcmp(st, "destroyed") == 0 || strcmp(st, "destroying") == 0)
		return dtn__error_set(err, DTN_ENOTFOUND, "%s was deleted before it started (%s)",
				      label, st);
	return 0;
}

static int fetch(dtn__poll *p, void **out, dtn_error *err)
{
	const dtn_sandbox *cur = p->cur;
	dtn_sandbox *next = NULL;
	char label[600];
	int rc;

	sandbox_label(cur, label, sizeof(label));
	rc = get_sandbox(p->c, cur->id, label, &next, err);
	*out = next;
	return rc;
}

static int out_of_time(dtn__poll *p, long seconds, dtn_error *err)
{
	const dtn_sandbox *s = p->cur;
	char label[600];

	sandbox_label(s, label, sizeof(label));
	return dtn__error_set(err, DTN_ETIMEOUT, "%s had not started when the time limit of %ld s "
			      "ran out (state: %s)", label, seconds, s->state);
}

/* Polls at once (the SDKs do), then every poll interval. */
static const dtn__poll_kind until_started = {
	.model = &model,
	.event = "daytona.sandbox.state_change",
	.state_attr = "daytona.sandbox.state",
	.previous_attr = "daytona.sandbox.previous_state",
	.stopped = "stopped by the log callback",
	.poll_at_once = true,
	.state = sandbox_state,
	.line = state_line,
	.judge = judge,
	.fetch = fetch,
	.late = out_of_time,
};

int dtn_sandbox_wait(dtn_daytona *c, const dtn_sandbox *from, const dtn_sandbox_opts *opts,
		     dtn_sandbox **out, dtn_error *err)
{
	dtn__poll p = {.kind = &until_started, .c = c};
	void *s;
	int rc;

	if (out)
		*out = NULL;
	if (!from)
		return dtn__error_set(err, DTN_EINVAL, "no sandbox to wait for");
	if (opts) {
		p.log = opts->log;
		p.payload = opts->payload;
	}
	p.span = dtn_span_start_op("Sandbox.waitUntilStarted", NULL);
	dtn_span_set_str(p.span, "daytona.sandbox.id", from->id);
	rc = dtn__poll_wait(&p, ((const sandbox *)from)->j, &s, err);
	if (out)
		*out = s;
	else
		dtn_sandbox_free(s);
	return rc;
}

/* ---- create ---- */

/* A phase line: `fmt` with one %s, the (printable) `arg`. */
static int phase(dtn_daytona *c, const dtn_sandbox_opts *o, const char *fmt, const char *arg)
{
	char line[1200], shown[512];

	snprintf(line, sizeof(line), fmt, dtn__printable(shown, sizeof(shown), arg));
	return dtn__api_log(c, o->log, o->payload, DTN_LOG_PHASE, line, strlen(line)) != 0
		       ? DTN_EUSER
		       : 0;
}

/* Each volume made ready; ids[i] receives the id of mount i's volume. */
static int ensure_volumes(dtn_daytona *c, const dtn_sandbox_params *p, const dtn_sandbox_opts *o,
			  dtn__strv *ids, dtn_error *err)
{
	dtn_volume_wait_opts wo = {.version = 1, .log = o->log, .payload = o->payload};

	for (size_t i = 0; i < p->nmounts; i++) {
		const dtn_mount *m = &p->mounts[i];
		dtn_volume *v = NULL;
		int rc;

		if (phase(c, o, "volume %s: making sure it exists and is ready", m->volume) < 0)
			return dtn__error_set(err, DTN_EUSER, "stopped by the log callback");
		if ((rc = dtn_volume_ensure(c, m->volume, &wo, &v, err)) < 0)
			return rc;
		rc = dtn__strv_push(ids, v->id);
		dtn_volume_free(v);
		if (rc < 0)
			return dtn__error_set(err, rc, "out of memory");
	}
	return 0;
}

/* POST /sandbox, under a request timeout longer than the server's own wait. */
static int post(dtn_daytona *c, json_t *body, dtn_sandbox **out, dtn_error *err)
{
	long saved = c->request_timeout_ms;
	char server[2048];
	json_t *answer = NULL;
	dtn_error e;
	int rc;

	dtn_error_clear(&e);
	if (c->request_timeout_ms < CREATE_TIMEOUT_MS)
		c->request_timeout_ms = CREATE_TIMEOUT_MS;
	rc = dtn__api_request(c, "POST", "/sandbox", body, &answer, &e);
	c->request_timeout_ms = saved;
	memcpy(server, e.message, sizeof(server));
	/* The server answers 400 when the sandbox errs while it waits for it to start. */
	if (rc == DTN_EINVAL && strstr(server, "failed to start"))
		rc = dtn__error_set(&e, DTN_EBUILD, "the sandbox failed to start (%s)", server);
	if (rc == 0)
		rc = from_json(out, answer, &e);
	json_decref(answer);
	if (rc < 0 && err)
		*err = e;
	return rc;
}

static int create(dtn_daytona *c, const dtn_sandbox_params *p, const dtn_sandbox_opts *o,
		  dtn_span *span, dtn_sandbox **out, dtn_error *err)
{
	dtn__strv ids = {NULL, 0, 0};
	dtn_sandbox *s = NULL;
	json_t *body = NULL;
	int rc;

	if ((rc = check_params(p, err)) < 0 || (rc = ensure_volumes(c, p, o, &ids, err)) < 0 ||
	    (rc = create_json(c, p, (const char *const *)ids.items, &body, err)) < 0)
		goto out;
	if ((rc = phase(c, o, "creating a sandbox from snapshot %s", p->snapshot)) < 0) {
		rc = dtn__error_set(err, rc, "stopped by the log callback");
		goto out;
	}
	if ((rc = post(c, body, &s, err)) < 0)
		goto out;
	dtn_span_set_str(span, "daytona.sandbox.id", s->id);
	if (!o->no_wait)
		rc = dtn_sandbox_wait(c, s, o, out, err);
	else if (out)
		*out = s, s = NULL;
out:
	dtn_sandbox_free(s);
	json_decref(body);
	dtn__strv_free(&ids);
	return rc;
}

int dtn_sandbox_create(dtn_daytona *c, const dtn_sandbox_params *p, const dtn_sandbox_opts *opts,
		       dtn_sandbox **out, dtn_error *err)
{
	static const dtn_sandbox_opts none;
	dtn_sandbox *s = NULL;
	dtn_span *span = dtn_span_start_op("Daytona.create", NULL);
	int rc;

	if (out)
		*out = NULL;
	if (p) {
		dtn_span_set_str(span, "daytona.snapshot.name", p->snapshot);
		dtn_span_set_int(span, "dtn.volume.count", (int64_t)p->nmounts);
		if (p->name)
			dtn_span_set_str(span, "daytona.sandbox.name", p->name);
	}
	rc = create(c, p, opts ? opts : &none, span, &s, err);
	if (s)
		dtn_span_set_str(span, "daytona.sandbox.state", s->state);
	dtn_span_end_op(span, rc, err);
	if (rc == 0 && out)
		*out = s;
	else
		dtn_sandbox_free(s);
	return rc;
}

/* ---- get and delete ---- */

int dtn_sandbox_get(dtn_daytona *c, const char *id_or_name, dtn_sandbox **out, dtn_error *err)
{
	dtn_span *span = dtn_span_start_op("Daytona.get", NULL);
	char what[600], shown[512];
	int rc;

	*out = NULL;
	if (!id_or_name || !id_or_name[0]) {
		rc = dtn__error_set(err, DTN_EINVAL, "no sandbox named");
	} else {
		snprintf(what, sizeof(what), "sandbox \"%s\"",
			 dtn__printable(shown, sizeof(shown), id_or_name));
		if ((rc = get_sandbox(c, id_or_name, what, out, err)) == 0)
			dtn_span_set_str(span, "daytona.sandbox.id", (*out)->id);
	}
	dtn_span_end_op(span, rc, err);
	return rc;
}

int dtn_sandbox_delete(dtn_daytona *c, const char *id_or_name, dtn_error *err)
{
	dtn_span *span = dtn_span_start_op("Sandbox.delete", NULL);
	char what[600], shown[512];
	int rc;

	if (!id_or_name || !id_or_name[0]) {
		rc = dtn__error_set(err, DTN_EINVAL, "no sandbox named");
	} else {
		dtn_span_set_str(span, "daytona.sandbox.id", id_or_name);
		snprintf(what, sizeof(what), "sandbox \"%s\"",
			 dtn__printable(shown, sizeof(shown), id_or_name));
		rc = dtn__model_call(c, "DELETE", "/sandbox/%s", id_or_name, what, NULL, err);
	}
	dtn_span_end_op(span, rc, err);
	return rc;
}
