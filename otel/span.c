/*
 * span.c - spans on the caller's thread: ids, sampling, the per-thread current span, attributes
 * and events kept in a small arena inside the span, and the hand-over to the export queue.
 *
 * The hot path (start, a few attributes, end) makes one allocation, reads the clock twice and
 * takes the queue's lock once for a pointer store; serialisation happens on the exporter thread.
 * Spans are reference-counted because three parties may hold one: its owner until it ends, the
 * export queue until it is serialised, and a thread's chain of current spans.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "otel_internal.h"

static _Thread_local dtn_span *tls_current;

/* ---- clocks and ids ---- */

int64_t dtn__otel_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t dtn__otel_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static _Thread_local uint64_t rng[2];

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* xorshift128+, seeded per thread from getrandom (the clock and the thread as a fallback). */
static uint64_t next_random(void)
{
	uint64_t s1, s0;

	if (!rng[0] && !rng[1]) {
		uint64_t seed[2] = {0, 0};
		if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
			seed[0] = (uint64_t)dtn__otel_mono_ns() ^ (uint64_t)(uintptr_t)&rng;
			seed[1] = (uint64_t)dtn__otel_now_ns() ^ (uint64_t)getpid() << 32;
		}
		rng[0] = splitmix(&seed[0]);
		rng[1] = splitmix(&seed[1]) | 1;
	}
	s1 = rng[0];
	s0 = rng[1];
	rng[0] = s0;
	s1 ^= s1 << 23;
	rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return rng[1] + s0;
}

void dtn__otel_random(uint8_t *out, size_t n)
{
	while (n) {
		uint64_t r = next_random();
		size_t k = n < 8 ? n : 8;

		memcpy(out, &r, k);
		out += k;
		n -= k;
	}
}

static bool zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void new_id(uint8_t *out, size_t n)
{
	do
		dtn__otel_random(out, n);
	while (zero(out, n));
}

bool dtn__otel_sample_root(const dtn__otel_config *cfg, const uint8_t trace_id[16])
{
	uint64_t low = 0, threshold;

	switch (cfg->sampler) {
	case DTN__SAMPLER_ON:
		return true;
	case DTN__SAMPLER_OFF:
		return false;
	default:
		break;
	}
	if (cfg->ratio >= 1.0)
		return true;
	if (cfg->ratio <= 0.0)
		return false;
	/* W3C level 2 / OpenTelemetry: the low 56 bits of the trace id against a threshold. */
	for (int i = 9; i < 16; i++)
		low = low << 8 | trace_id[i];
	threshold = (uint64_t)((1.0 - cfg->ratio) * 72057594037927936.0 + 0.5);
	return low >= threshold;
}

/* ---- stored attributes ---- */

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

size_t dtn__oattr_size(const dtn_attr *a)
{
	size_t n = ALIGN8(sizeof(dtn__oattr)) + strlen(a->key) + 1;

	if (a->type == DTN_ATTR_TYPE_STRING) {
		n += strlen(a->value.s ? a->value.s : "") + 1;
	} else if (a->type == DTN_ATTR_TYPE_STRV) {
		size_t count = dtn_strv_len(a->value.v);
		n += (count + 1) * sizeof(char *);
		for (size_t i = 0; i < count; i++)
			n += strlen(a->value.v[i]) + 1;
	}
	return ALIGN8(n);
}

dtn__oattr *dtn__oattr_pack(void *mem, const dtn_attr *a)
{
	dtn__oattr *node = mem;
	char *p = (char *)mem + ALIGN8(sizeof(dtn__oattr));
	size_t len;

	node->next = NULL;
	node->type = a->type;
	node->u.i = 0;
	if (a->type == DTN_ATTR_TYPE_STRV) {
		size_t count = dtn_strv_len(a->value.v);
		const char **v = (const char **)(void *)p;

		p += (count + 1) * sizeof(char *);
		for (size_t i = 0; i < count; i++) {
			len = strlen(a->value.v[i]) + 1;
			memcpy(p, a->value.v[i], len);
			v[i] = p;
			p += len;
		}
		v[count] = NULL;
		node->u.v = v;
	} else if (a->type == DTN_ATTR_TYPE_STRING) {
		const char *s = a->value.s ? a->value.s : "";
		len = strlen(s) + 1;
		memcpy(p, s, len);
		node->u.s = p;
		p += len;
	} else if (a->type == DTN_ATTR_TYPE_INT) {
		node->u.i = a->value.i;
	} else if (a->type == DTN_ATTR_TYPE_DOUBLE) {
		node->u.d = a->value.d;
	} else {
		node->u.b = a->value.b;
	}
	len = strlen(a->key) + 1;
	memcpy(p, a->key, len);
	node->key = p;
	return node;
}

static bool attr_ok(const dtn_attr *a)
{
	if (!a || !a->key || !*a->key)
		return false;
	if (a->type == DTN_ATTR_TYPE_STRING)
		return a->value.s != NULL;
	if (a->type == DTN_ATTR_TYPE_STRV)
		return a->value.v != NULL;
	return a->type >= DTN_ATTR_TYPE_INT && a->type <= DTN_ATTR_TYPE_BOOL;
}

dtn__oattr *dtn__oattr_new(const dtn_attr *a)
{
	void *mem;

	if (!attr_ok(a) || !(mem = dtn__malloc(dtn__oattr_size(a))))
		return NULL;
	return dtn__oattr_pack(mem, a);
}

void dtn__oattr_free_list(dtn__oattr *list)
{
	while (list) {
		dtn__oattr *next = list->next;
		dtn__free(list);
		list = next;
	}
}

int dtn__oattr_append(dtn__oattr **head, const dtn_attr *attrs, size_t n)
{
	while (*head)
		head = &(*head)->next;
	for (size_t i = 0; i < n; i++) {
		if (!attr_ok(&attrs[i]))
			continue;
		if (!(*head = dtn__oattr_new(&attrs[i])))
			return DTN_ENOMEM;
		head = &(*head)->next;
	}
	return 0;
}

const dtn__oattr *dtn__oattr_find(const dtn__oattr *list, const char *key)
{
	const dtn__oattr *found = NULL;

	for (; list; list = list->next)
		if (strcmp(list->key, key) == 0)
			found = list;
	return found;
}

/* ---- the span's arena ---- */

static void *span_alloc(dtn_span *s, size_t n)
{
	void *p;

	n = ALIGN8(n);
	if ((size_t)(s->arena_end - s->arena) < n) {
		size_t size = n > 1024 ? n : 1024;
		dtn__span_chunk *c = dtn__malloc(sizeof(*c) + size);

		if (!c)
			return NULL;
		c->next = s->chunks;
		s->chunks = c;
		s->arena = c->mem;
		s->arena_end = c->mem + size;
	}
	p = s->arena;
	s->arena += n;
	return p;
}

static const char *span_strdup(dtn_span *s, const char *str)
{
	size_t len = strlen(str) + 1;
	char *p = span_alloc(s, len);

	if (p)
		memcpy(p, str, len);
	return p;
}

/* ---- recycling ---- */

/*
 * Spans are mostly ended on one thread and freed on the exporter's, which costs the allocator
 * dearly (memory moving between arenas, fresh pages for every burst). Freed spans wait in a
 * small pool instead and the next dtn_span_start takes one from there.
 */
#define POOL_MAX 1024

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static dtn_span *pool;
static size_t pool_len;

static dtn_span *span_alloc_struct(void)
{
	dtn_span *s;

	pthread_mutex_lock(&pool_lock);
	if ((s = pool)) {
		pool = s->prev_current;
		pool_len--;
	}
	pthread_mutex_unlock(&pool_lock);
	return s ? s : dtn__malloc(sizeof(*s));
}

static void span_release_struct(dtn_span *s)
{
	pthread_mutex_lock(&pool_lock);
	if (pool_len < POOL_MAX) {
		s->prev_current = pool;
		pool = s;
		pool_len++;
		s = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	dtn__free(s);
}

/* ---- reference counts ---- */

static void span_free(dtn_span *s)
{
	dtn_span *prev = s->prev_current;
	dtn_otel *o = s->otel;
	dtn__span_chunk *c = s->chunks;

	while (c) {
		dtn__span_chunk *next = c->next;
		dtn__free(c);
		c = next;
	}
	span_release_struct(s);
	if (prev)
		dtn__span_unref(prev);
	dtn__otel_unref(o);
}

void dtn__span_unref(dtn_span *span)
{
	if (atomic_fetch_sub_explicit(&span->refs, 1, memory_order_acq_rel) == 1)
		span_free(span);
}

static void span_ref(dtn_span *span)
{
	atomic_fetch_add_explicit(&span->refs, 1, memory_order_relaxed);
}

/* ---- start ---- */

/* Takes trace id, parent and sampling from a local parent, a remote one, or none. */
static void span_parent(dtn_span *s, dtn_otel *o, const dtn_span_opts *opts)
{
	const dtn_span *parent = opts ? opts->parent : NULL;
	const dtn_trace_context *remote = NULL;
	dtn_trace_context rctx;
	const char *ts = NULL;
	bool parent_sampled = false, sampled;

	if (!parent && opts && opts->traceparent &&
	    dtn_trace_context_parse(&rctx, opts->traceparent) == 0) {
		remote = &rctx;
		ts = opts->tracestate;
	}
	if (!parent && !remote && !(opts && opts->root)) {
		parent = tls_current;
		if (!parent && o->cfg.has_remote) {
			remote = &o->cfg.remote;
			ts = o->cfg.remote_tracestate;
		}
	}
	if (parent) {
		memcpy(s->trace_id, parent->trace_id, 16);
		memcpy(s->parent_id, parent->span_id, 8);
		parent_sampled = parent->trace_flags & 1;
		ts = parent->tracestate;
		s->has_parent = true;
	} else if (remote) {
		memcpy(s->trace_id, remote->trace_id, 16);
		memcpy(s->parent_id, remote->span_id, 8);
		parent_sampled = remote->flags & 1;
		s->has_parent = s->parent_remote = true;
	} else {
		new_id(s->trace_id, 16);
	}
	new_id(s->span_id, 8);
	if (s->has_parent && o->cfg.parent_based)
		sampled = parent_sampled;
	else
		sampled = dtn__otel_sample_root(&o->cfg, s->trace_id);
	s->trace_flags = sampled ? 1 : 0;
	s->recording = sampled;
	if (ts && *ts)
		s->tracestate = span_strdup(s, ts);
}

dtn_span *dtn_span_start_ex(const char *name, dtn_span_kind kind, const dtn_span_opts *opts)
{
	dtn_otel *o = opts && opts->otel ? opts->otel : dtn_otel_default();
	dtn_span *s;

	if (!o || !o->cfg.enabled || !name)
		return NULL;
	if (!(s = span_alloc_struct()))
		return NULL;
	memset(s, 0, offsetof(dtn_span, inline_mem));
	atomic_init(&s->refs, 1);
	s->otel = o;
	dtn__otel_ref(o);
	s->arena = s->inline_mem;
	s->arena_end = s->inline_mem + sizeof(s->inline_mem);
	s->kind = kind >= DTN_SPAN_INTERNAL && kind <= DTN_SPAN_CONSUMER ? (uint8_t)kind
									 : DTN_SPAN_INTERNAL;
	span_parent(s, o, opts);
	s->start_ns = opts && opts->start_unix_nano > 0 ? opts->start_unix_nano
							: dtn__otel_now_ns();
	if (!(s->name = span_strdup(s, name)))
		s->name = "span";
	if (opts && opts->attrs)
		dtn_span_set_attrs(s, opts->attrs, opts->nattrs);
	if (!(opts && opts->not_current)) {
		s->prev_current = tls_current; /* the thread's reference moves here */
		span_ref(s);
		tls_current = s;
	}
	atomic_fetch_add_explicit(&o->n_started, 1, memory_order_relaxed);
	return s;
}

dtn_span *dtn_span_start(const char *name, dtn_span_kind kind, dtn_span *parent)
{
	dtn_span_opts opts = {.version = 1, .parent = parent};

	if (!dtn_otel_default())
		return NULL;
	return dtn_span_start_ex(name, kind, &opts);
}

/* ---- attributes, events, status ---- */

static bool writable(const dtn_span *s)
{
	return s && s->recording && !s->ended;
}

static void add_attr(dtn_span *s, const dtn_attr *a)
{
	void *mem;
	dtn__oattr *node;

	if (!writable(s) || !attr_ok(a))
		return;
	if (s->nattrs >= s->otel->cfg.attr_count_limit ||
	    !(mem = span_alloc(s, dtn__oattr_size(a)))) {
		s->dropped_attrs++;
		return;
	}
	node = dtn__oattr_pack(mem, a);
	if (s->attrs_tail)
		s->attrs_tail->next = node;
	else
		s->attrs = node;
	s->attrs_tail = node;
	s->nattrs++;
}

void dtn_span_set_str(dtn_span *span, const char *key, const char *value)
{
	add_attr(span, &DTN_ATTR_STR(key, value));
}

void dtn_span_set_int(dtn_span *span, const char *key, int64_t value)
{
	add_attr(span, &DTN_ATTR_INT(key, value));
}

void dtn_span_set_double(dtn_span *span, const char *key, double value)
{
	add_attr(span, &DTN_ATTR_DOUBLE(key, value));
}

void dtn_span_set_bool(dtn_span *span, const char *key, bool value)
{
	add_attr(span, &DTN_ATTR_BOOL(key, value));
}

void dtn_span_set_strv(dtn_span *span, const char *key, const char *const *values)
{
	add_attr(span, &DTN_ATTR_STRV(key, values));
}

void dtn_span_set_attrs(dtn_span *span, const dtn_attr *attrs, size_t nattrs)
{
	for (size_t i = 0; attrs && i < nattrs; i++)
		add_attr(span, &attrs[i]);
}

void dtn_span_add_event(dtn_span *span, const char *name, const dtn_attr *attrs, size_t nattrs)
{
	dtn__oevent *ev;
	dtn__oattr **tail;

	if (!writable(span) || !name)
		return;
	if (span->nevents >= span->otel->cfg.event_count_limit ||
	    !(ev = span_alloc(span, sizeof(*ev))) || !(ev->name = span_strdup(span, name))) {
		span->dropped_events++;
		return;
	}
	ev->next = NULL;
	ev->time_ns = dtn__otel_now_ns();
	ev->attrs = NULL;
	tail = &ev->attrs;
	for (size_t i = 0; attrs && i < nattrs; i++) {
		void *mem;
		if (!attr_ok(&attrs[i]) || !(mem = span_alloc(span, dtn__oattr_size(&attrs[i]))))
			continue;
		*tail = dtn__oattr_pack(mem, &attrs[i]);
		tail = &(*tail)->next;
	}
	if (span->events_tail)
		span->events_tail->next = ev;
	else
		span->events = ev;
	span->events_tail = ev;
	span->nevents++;
}

void dtn_span_set_status(dtn_span *span, dtn_span_status status, const char *message)
{
	if (!writable(span) || span->status_final || status == DTN_SPAN_UNSET)
		return;
	span->status = (uint8_t)status;
	span->status_msg = NULL;
	if (status == DTN_SPAN_OK)
		span->status_final = true;
	else if (message && *message)
		span->status_msg = span_strdup(span, message);
}

static const char *const code_names[] = {
	"DTN_OK", "DTN_ERROR", "DTN_ENOMEM", "DTN_EINVAL", "DTN_ENOTFOUND", "DTN_EIO",
	"DTN_ESYNTAX", "DTN_EUSER", "DTN_EOUTSIDE", "DTN_EUNSUPPORTED", "DTN_ECHANGED",
	"DTN_ECONNECT", "DTN_ETIMEOUT", "DTN_EINTR", "DTN_EAUTH", "DTN_ECONFIG", "DTN_EEXISTS",
	"DTN_EHTTP", "DTN_ERATELIMIT", "DTN_EBUILD", "DTN_EPROTOCOL",
};

/* Low-cardinality error.type values by code. */
static const char *const code_types[] = {
	"_OTHER", "_OTHER", "out_of_memory", "invalid_argument", "not_found", "io_error",
	"syntax_error", "aborted", "outside_context", "unsupported", "changed",
	"connect_error", "timeout", "cancelled", "auth_error", "config_error", "already_exists",
	"http_error", "rate_limited", "build_failed", "protocol_error",
};

static const char *code_name(int code)
{
	return code <= 0 && (size_t)-code < DTN__ARRAY_LEN(code_names) ? code_names[-code]
									 : "DTN_ERROR";
}

static const char *code_type(int code)
{
	return code <= 0 && (size_t)-code < DTN__ARRAY_LEN(code_types) ? code_types[-code]
									 : "_OTHER";
}

/* The "exception" event and status ERROR of a failure whose error.type is set. */
static void record_exception(dtn_span *span, int code, const char *message)
{
	if (!message || !*message)
		message = dtn_strerror(code);
	dtn_span_add_event(span, "exception", (dtn_attr[]){
		DTN_ATTR_STR("exception.type", code_name(code)),
		DTN_ATTR_STR("exception.message", message),
	}, 2);
	span->status_final = false; /* an error after OK still counts */
	dtn_span_set_status(span, DTN_SPAN_ERROR, message);
}

void dtn_span_record_error(dtn_span *span, int code, const char *error_type,
			   const char *message)
{
	if (!writable(span))
		return;
	if (code == DTN_EINTR && !error_type) {
		dtn_span_set_str(span, "error.type", "cancelled");
		return;
	}
	dtn_span_set_str(span, "error.type", error_type ? error_type : code_type(code));
	record_exception(span, code, message);
}

/* ---- end ---- */

/* The span ends on the thread where it is current: its parent chain becomes current again,
 * skipping spans that ended out of order. */
static void pop_current(dtn_span *s)
{
	dtn_span *p = s->prev_current;

	s->prev_current = NULL;
	while (p && p->ended) {
		dtn_span *q = p->prev_current;
		p->prev_current = NULL;
		dtn__span_unref(p);
		p = q;
	}
	tls_current = p;
	dtn__span_unref(s);
}

void dtn_span_end_at(dtn_span *span, int64_t end_unix_nano)
{
	if (!span || span->ended)
		return;
	span->end_ns = end_unix_nano > 0 ? end_unix_nano : dtn__otel_now_ns();
	if (span->end_ns < span->start_ns)
		span->end_ns = span->start_ns;
	span->ended = true;
	if (tls_current == span)
		pop_current(span);
	if (span->recording)
		dtn__export_enqueue(span->otel, span);
	else
		dtn__span_unref(span);
}

void dtn_span_end(dtn_span *span)
{
	dtn_span_end_at(span, 0);
}

/* ---- context ---- */

dtn_span *dtn_span_current(void)
{
	return tls_current;
}

dtn_span *dtn_span_set_current(dtn_span *span)
{
	dtn_span *old = tls_current;

	if (span)
		span_ref(span);
	tls_current = span;
	if (old)
		dtn__span_unref(old);
	return old;
}

double dtn_span_elapsed(const dtn_span *span)
{
	return span ? (double)(dtn__otel_now_ns() - span->start_ns) / 1e9 : 0;
}

bool dtn_span_is_recording(const dtn_span *span)
{
	return span && span->recording;
}

size_t dtn_span_traceparent(const dtn_span *span, char *buf, size_t size)
{
	dtn_trace_context ctx;
	dtn_otel *o;

	if (!span)
		span = tls_current;
	/* OTEL_PROPAGATORS without tracecontext: nothing is handed on (nor was anything read) */
	if (span && span->otel->cfg.propagate) {
		memcpy(ctx.trace_id, span->trace_id, 16);
		memcpy(ctx.span_id, span->span_id, 8);
		ctx.flags = span->trace_flags;
	} else if (!span && (o = dtn_otel_default()) && o->cfg.has_remote) {
		ctx = o->cfg.remote;
	} else {
		if (buf && size)
			buf[0] = '\0';
		return 0;
	}
	return dtn_trace_context_format(&ctx, buf, size);
}

void dtn_span_trace_id(const dtn_span *span, char buf[33])
{
	if (span)
		dtn__otel_hex(buf, span->trace_id, 16);
	else
		buf[0] = '\0';
}

void dtn_span_span_id(const dtn_span *span, char buf[17])
{
	if (span)
		dtn__otel_hex(buf, span->span_id, 8);
	else
		buf[0] = '\0';
}

/* ---- operations ---- */

void dtn__otel_snake(char *out, size_t size, const char *name)
{
	size_t n = 0;
	char prev = 0;

	if (!size)
		return;
	for (const char *p = name; *p && n + 2 < size; p++) {
		char c = *p;
		if (c == '.' || c == '-' || c == ' ') {
			c = '_';
		} else if (c >= 'A' && c <= 'Z') {
			if ((prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9'))
				out[n++] = '_';
			c = (char)(c - 'A' + 'a');
		}
		out[n++] = c;
		prev = *p;
	}
	out[n] = '\0';
}

/* "Component.method" split: the component into buf, the method returned. */
static const char *op_parts(const char *name, char *component, size_t size)
{
	const char *dot = strchr(name, '.');

	snprintf(component, size, "%.*s", dot ? (int)(dot - name) : (int)strlen(name), name);
	return dot ? dot + 1 : name;
}

dtn_span *dtn_span_start_op(const char *name, dtn_span *parent)
{
	dtn_span_opts opts = {.version = 1, .parent = parent};
	const char *method;
	char component[128];
	dtn_span *s;

	if (!dtn_otel_default() || !name)
		return NULL;
	if (!(s = dtn_span_start_ex(name, DTN_SPAN_INTERNAL, &opts)))
		return s;
	/* A span the sampler dropped still measures its operation: metrics do not depend on
	 * trace sampling. */
	s->is_op = true;
	if (s->recording) {
		method = op_parts(name, component, sizeof(component));
		dtn_span_set_str(s, "component", component);
		dtn_span_set_str(s, "method", method);
	}
	if ((s->usage = span_alloc(s, sizeof(*s->usage))))
		dtn__usage_sample(&s->otel->usage_src, s->usage, false);
	return s;
}

/* The status and error attributes of an operation's outcome. */
static void op_outcome(dtn_span *span, int rc, const dtn_error *err)
{
	char message[2200];

	if (rc == 0) {
		dtn_span_set_status(span, DTN_SPAN_OK, NULL);
	} else if (rc == DTN_EINTR) {
		if (!dtn__oattr_find(span->attrs, "error.type"))
			dtn_span_set_str(span, "error.type", "cancelled");
	} else {
		if (err && err->message[0])
			dtn_error_format(err, message, sizeof(message));
		else
			snprintf(message, sizeof(message), "%s", dtn_strerror(rc));
		/* an error.type set by the operation (more precise than the code's) is kept */
		if (!dtn__oattr_find(span->attrs, "error.type"))
			dtn_span_record_error(span, rc, NULL, message);
		else if (span->status != DTN_SPAN_ERROR)
			record_exception(span, rc, message);
	}
}

void dtn_span_end_op(dtn_span *span, int rc, const dtn_error *err)
{
	char snake[200], metric[256], component[128];
	const char *method;
	dtn_metric_def def = {.unit = "ms", .kind = DTN_METRIC_HISTOGRAM};
	int64_t end;

	if (!span)
		return;
	if (span->ended || !span->is_op) {
		dtn_span_end(span);
		return;
	}
	if (writable(span))
		op_outcome(span, rc, err);
	end = dtn__otel_now_ns();
	method = op_parts(span->name, component, sizeof(component));
	dtn__otel_snake(snake, sizeof(snake), span->name);
	snprintf(metric, sizeof(metric), "%s_duration", snake);
	def.name = metric;
	dtn__metric_record(span->otel, &def, (double)(end - span->start_ns) / 1e6, (dtn_attr[]){
		DTN_ATTR_STR("component", component),
		DTN_ATTR_STR("method", method),
		DTN_ATTR_STR("status", rc == 0 ? "success" : "error"),
	}, 3);
	if (span->usage)
		dtn__usage_record(span->otel, span->name, span->usage);
	dtn_span_end_at(span, end);
}
