/*
 * otel_internal.h - what the files of the otel module share. Not installed.
 */
#ifndef DTN_OTEL_INTERNAL_H
#define DTN_OTEL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "dtn_otel.h"
#include "internal.h"

#define DTN__OTEL_SCOPE "dtn-build"
#define DTN__OTEL_USER_AGENT "dtn-build/" DTN_VERSION " OTel-OTLP-Exporter-C/" DTN_VERSION

/* ---- attributes as stored ---- */

/* One attribute: a node of a list, its strings packed in the same allocation. */
typedef struct dtn__oattr {
	struct dtn__oattr *next;
	const char *key;
	dtn_attr_type type;
	union {
		const char *s;
		int64_t i;
		double d;
		bool b;
		const char *const *v;
	} u;
} dtn__oattr;

/* The bytes a copy of a needs (node, key, strings). */
size_t dtn__oattr_size(const dtn_attr *a);
/* Packs a copy of a into mem (dtn__oattr_size(a) bytes, 8-aligned); returns the node. */
dtn__oattr *dtn__oattr_pack(void *mem, const dtn_attr *a);
/* A copy of a in its own allocation, or NULL. */
dtn__oattr *dtn__oattr_new(const dtn_attr *a);
/* Frees a list made of dtn__oattr_new nodes. */
void dtn__oattr_free_list(dtn__oattr *list);
/* Appends a copy of each attribute to the list at *head; returns 0 or DTN_ENOMEM. */
int dtn__oattr_append(dtn__oattr **head, const dtn_attr *attrs, size_t n);
/* The last node with this key, or NULL. */
const dtn__oattr *dtn__oattr_find(const dtn__oattr *list, const char *key);

typedef struct dtn__oevent {
	struct dtn__oevent *next;
	const char *name;
	int64_t time_ns;
	dtn__oattr *attrs;
} dtn__oevent;

/* ---- resource usage of the environment ---- */

typedef struct dtn__usage {
	int64_t wall_ns;          /* monotonic time of the sample */
	bool has_cpu;
	int64_t cpu_usec;         /* CPU time used by the cgroup (or the machine) */
	double cpu_limit;         /* cores */
	bool has_mem;
	int64_t mem_usage, mem_limit;  /* bytes */
	bool has_fs;
	int64_t fs_total, fs_available, fs_used; /* bytes */
	char fs_device[256];      /* the mount point of the working directory */
	const char *source;       /* "cgroup2", "cgroup1" or "proc" */
} dtn__usage;

/* Where the usage is read from, found once per provider. */
typedef struct dtn__usage_src {
	int version;              /* 2, 1, or 0 for /proc only */
	char cpu_dir[512];        /* v2: the cgroup directory; v1: the cpuacct directory */
	char cpu_limit_dir[512];  /* v1: the cpu controller's directory */
	char mem_dir[512];
	double cpus;              /* online CPUs */
	int64_t mem_total;        /* the machine's memory */
} dtn__usage_src;

/* Finds the cgroup of this process (v2, else v1, else none). */
void dtn__usage_src_init(dtn__usage_src *src);
/* Samples now (only the CPU time unless full); what could not be read has its has_ flag
 * false. */
void dtn__usage_sample(const dtn__usage_src *src, dtn__usage *out, bool full);
/* CPU utilisation in percent of the limit between two samples; -1 when unknown. */
double dtn__usage_cpu_percent(const dtn__usage *a, const dtn__usage *b);
/* Samples now and records the daytona.sandbox.* gauges of an operation that began at start. */
void dtn__usage_record(dtn_otel *o, const char *operation, const dtn__usage *start);

/* ---- configuration ---- */

enum { DTN__SAMPLER_ON, DTN__SAMPLER_OFF, DTN__SAMPLER_RATIO };

typedef struct dtn__otel_signal {
	bool otlp;                /* export this signal over OTLP/HTTP */
	char *url;
	dtn__strv headers;        /* "Name: value" lines */
	long timeout_ms;
	bool gzip;
} dtn__otel_signal;

typedef struct dtn__otel_config {
	bool enabled;
	dtn__otel_signal traces, metrics;
	char *trace_file;
	int sampler;              /* DTN__SAMPLER_* for roots */
	bool parent_based;
	double ratio;
	long bsp_delay_ms, bsp_export_timeout_ms;
	size_t bsp_queue, bsp_batch;
	long metric_interval_ms, metric_timeout_ms;
	long flush_timeout_ms;
	uint32_t attr_count_limit, event_count_limit;
	long attr_value_limit;    /* -1: none */
	char *service_name;
	dtn__oattr *resource_env; /* OTEL_RESOURCE_ATTRIBUTES */
	bool propagate;           /* OTEL_PROPAGATORS has tracecontext (the default) */
	bool has_remote;
	dtn_trace_context remote;
	char *remote_tracestate;
} dtn__otel_config;

typedef void (*dtn__otel_warn_fn)(void *payload, const char *fmt, ...) DTN__PRINTF(2, 3);

/*
 * Reads the configuration from opts and the environment. Problems with environment values are
 * reported through warn and replaced by defaults; bad options and an unsupported protocol fail
 * with err set.
 */
int dtn__otel_config_load(dtn__otel_config *cfg, const dtn_otel_opts *opts,
			  dtn__otel_warn_fn warn, void *payload, dtn_error *err);
void dtn__otel_config_free(dtn__otel_config *cfg);

/*
 * The URL of one signal (otel.md §7.2): signal_url when set (with "/" as its path when it has
 * none), else base (default http://localhost:4318) with "/" ensured and `path` ("v1/traces")
 * appended. Fresh memory, or NULL.
 */
char *dtn__otel_signal_url(const char *base, const char *signal_url, const char *path);

/*
 * Parses an OTEL_EXPORTER_OTLP_HEADERS value into "Name: value" lines added to out: items split
 * on ',', each on its first '=', keys trimmed and checked as HTTP tokens, values percent-decoded
 * ('+' kept) and trimmed. Bad items are skipped and counted in *bad (may be NULL). Returns 0 or
 * DTN_ENOMEM.
 */
int dtn__otel_parse_headers(dtn__strv *out, const char *value, int *bad);

/*
 * Parses OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", percent-decoded) into a list of string
 * attributes. Returns 0, DTN_EINVAL (the whole value is then discarded; *out stays NULL) or
 * DTN_ENOMEM.
 */
int dtn__otel_parse_resource(dtn__oattr **out, const char *value);

/*
 * Percent-decodes s[0..n) into fresh memory ('+' kept); NULL on a bad escape, on "%00" (a C
 * string cannot hold it, and cutting the value there would send something else) or no memory.
 */
char *dtn__otel_percent_decode(const char *s, size_t n);

/* ---- spans ---- */

#define DTN__SPAN_INLINE 288

typedef struct dtn__span_chunk {
	struct dtn__span_chunk *next;
	_Alignas(8) char mem[];
} dtn__span_chunk;

struct dtn_span {
	dtn_otel *otel;
	atomic_int refs;
	struct dtn_span *prev_current;  /* the thread's current span when this one started */
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_id[8];
	uint8_t trace_flags;            /* W3C flags: 0x01 sampled */
	bool has_parent, parent_remote, recording, ended, is_op, has_usage, status_final;
	uint8_t kind, status;
	const char *name;
	const char *status_msg;
	const char *tracestate;
	int64_t start_ns, end_ns;       /* Unix time */
	dtn__oattr *attrs, *attrs_tail;
	uint32_t nattrs, dropped_attrs;
	dtn__oevent *events, *events_tail;
	uint32_t nevents, dropped_events;
	dtn__usage *usage;              /* at the start of an operation */
	dtn__span_chunk *chunks;
	char *arena, *arena_end;
	_Alignas(8) char inline_mem[DTN__SPAN_INLINE];
};

void dtn__span_unref(dtn_span *span);
/* Unix time in ns. */
int64_t dtn__otel_now_ns(void);
/* Monotonic time in ns. */
int64_t dtn__otel_mono_ns(void);
/* n random bytes from the thread's generator (seeded from getrandom). */
void dtn__otel_random(uint8_t *out, size_t n);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void dtn__otel_hex(char *out, const uint8_t *b, size_t n);
/* Whether the sampler keeps a root span of this trace id. */
bool dtn__otel_sample_root(const dtn__otel_config *cfg, const uint8_t trace_id[16]);

/* ---- metrics ---- */

typedef struct dtn__mpoint {
	struct dtn__mpoint *next;
	char *key;                /* the attribute set, canonical */
	dtn__oattr *attrs;
	int64_t start_ns, time_ns;
	double value;             /* sums and gauges */
	uint64_t count;           /* histograms */
	double sum, min, max;
	bool negative;
	uint64_t *buckets;
} dtn__mpoint;

typedef struct dtn__metric {
	char *name, *unit, *description;
	dtn_metric_kind kind;
	bool integer;
	double *bounds;
	size_t nbounds;
	dtn__mpoint *points;
	size_t npoints;
} dtn__metric;

/* Records into o's store (o enabled). */
void dtn__metric_record(dtn_otel *o, const dtn_metric_def *def, double value,
			const dtn_attr *attrs, size_t nattrs);
void dtn__metrics_free(dtn_otel *o);

/* ---- the provider ---- */

typedef struct dtn__summary_entry {
	char *name;
	uint64_t count, errors;
	int64_t total_ns, max_ns;
} dtn__summary_entry;

struct dtn_otel {
	atomic_int refs;
	dtn__otel_config cfg;
	dtn_otel_log_fn log;
	void *log_payload;
	dtn__oattr *resource;
	int64_t start_ns;               /* Unix time the provider started (cumulative start) */
	dtn__usage_src usage_src;

	/* the span queue and the exporter thread, under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;            /* the exporter waits on it */
	pthread_cond_t done;            /* flushers and shutdown wait on it */
	dtn_span **ring;
	size_t ring_cap, ring_head, ring_count;
	bool thread_started, thread_done, stop, closed;
	pthread_t thread;
	uint64_t flush_req, flush_done;
	int64_t hard_deadline_ns;       /* monotonic; 0: none */
	volatile int abort_io;          /* stops the request in flight */
	FILE *file;
	void *http;                     /* dtn__http */
	int64_t next_metrics_ns;

	/* counters */
	atomic_uint_fast64_t n_started, n_exported, n_dropped_queue, n_dropped_export,
		n_dropped_shutdown, n_metric_exports, n_export_failures, n_retries, n_dropped_points,
		n_export_refused; /* the failures a receiver's answer ended */

	/* metrics and the summary, under mlock */
	pthread_mutex_t mlock;
	dtn__metric *metrics;
	size_t nmetrics, cap_metrics;
	dtn__summary_entry *summary;
	size_t nsummary, cap_summary;
	uint64_t mgen;                  /* bumped by every recording */
	uint64_t mgen_sent, drops_sent; /* what the last metric export covered (exporter only) */
};

/* Reports a diagnostic through the provider's log callback. */
void dtn__otel_warn(void *otel, const char *fmt, ...) DTN__PRINTF(2, 3);
void dtn__otel_ref(dtn_otel *o);
void dtn__otel_unref(dtn_otel *o);
/* The default provider when it records, else NULL. */
dtn_otel *dtn__otel_active(void);

/* Builds the resource attributes (service, host, process, CI, Daytona sandbox). */
int dtn__otel_resource_build(dtn_otel *o, const dtn_otel_opts *opts);

/* ---- export ---- */

/* Queues an ended, recording span (takes its reference). */
void dtn__export_enqueue(dtn_otel *o, dtn_span *span);
/* Starts the exporter thread; 0 or DTN_ERROR / DTN_ENOMEM. */
int dtn__export_start(dtn_otel *o, dtn_error *err);
/* Asks for a flush and waits until deadline (monotonic ns); 0 or DTN_ETIMEOUT. */
int dtn__export_flush(dtn_otel *o, int64_t deadline_ns);
/* Stops the thread within deadline; true when it ended (else it was left running). */
bool dtn__export_stop(dtn_otel *o, int64_t deadline_ns);

/* OTLP JSON bodies, in fresh memory (NULL when empty or out of memory). */
char *dtn__otlp_traces_json(dtn_otel *o, dtn_span *const *spans, size_t n);
char *dtn__otlp_metrics_json(dtn_otel *o, int64_t now_ns);

/* gzip of data into out; 0 or DTN_ENOMEM / DTN_ERROR. */
int dtn__otel_gzip(dtn__buf *out, const void *data, size_t len);

/* Seconds to wait from a Retry-After value (delta seconds or an HTTP-date); -1 if invalid. */
long dtn__otel_retry_after_ms(const char *value, int64_t now_unix_s);

/*
 * A URL fit to show or record: without query or fragment, and with any user:password@ either
 * removed or (redact) replaced by REDACTED:REDACTED@. Truncated to size.
 */
void dtn__otel_url_plain(char *buf, size_t size, bool redact, const char *url);

/* "Component.method" to "component_method" in snake case. */
void dtn__otel_snake(char *out, size_t size, const char *name);

#endif
