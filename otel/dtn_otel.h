/*
 * dtn_otel.h - traces and metrics (OpenTelemetry) for libdtn and the applications embedding it.
 *
 * A telemetry provider (dtn_otel) holds the configuration (the standard OTEL_* environment
 * variables, overridable by options), the resource describing the process, the sampler, the
 * span queue and the metric store, and a background thread that exports both as OTLP/HTTP JSON
 * and/or to a file. One provider may be installed as the process-wide default; library code
 * then instruments itself without passing handles around:
 *
 *     dtn_span *s = dtn_span_start("SnapshotService.create", DTN_SPAN_INTERNAL, NULL);
 *     dtn_span_set_str(s, "daytona.snapshot.name", name);
 *     ...
 *     dtn_span_end(s);
 *
 * Every span and metric function accepts a NULL span and does nothing when no provider is
 * installed or telemetry is off: dtn_span_start then returns NULL after one atomic load, so
 * instrumentation costs next to nothing when unused. The calls never fail in a way the caller
 * must handle; memory exhaustion makes a span or a data point disappear, never the operation.
 *
 * Threads: the functions are thread-safe, except that one span is used (attributes, events,
 * end) by one thread at a time. Each thread has a current span: a span started with a NULL
 * parent becomes the child of the calling thread's current span, and every span started by
 * dtn_span_start becomes the current span of its thread until it ends. Spans ended on the
 * caller's thread are only queued; serialisation and network I/O happen on the exporter thread.
 */
#ifndef DTN_OTEL_H
#define DTN_OTEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- attributes ---- */

typedef enum dtn_attr_type {
	DTN_ATTR_TYPE_STRING = 1,
	DTN_ATTR_TYPE_INT = 2,    /* int64_t */
	DTN_ATTR_TYPE_DOUBLE = 3,
	DTN_ATTR_TYPE_BOOL = 4,
	DTN_ATTR_TYPE_STRV = 5    /* a NULL-terminated list of strings */
} dtn_attr_type;

/* One key/value pair, borrowed: every function taking attributes copies what it keeps. */
typedef struct dtn_attr {
	const char *key;
	dtn_attr_type type;
	union {
		const char *s;
		int64_t i;
		double d;
		bool b;
		const char *const *v;
	} value;
} dtn_attr;

/* Attribute literals:  (dtn_attr[]){ DTN_ATTR_STR("k", v), DTN_ATTR_INT("n", 3) }  */
#define DTN_ATTR_STR(k, x) ((dtn_attr){ .key = (k), .type = DTN_ATTR_TYPE_STRING, .value.s = (x) })
#define DTN_ATTR_INT(k, x) ((dtn_attr){ .key = (k), .type = DTN_ATTR_TYPE_INT, .value.i = (x) })
#define DTN_ATTR_DOUBLE(k, x) \
	((dtn_attr){ .key = (k), .type = DTN_ATTR_TYPE_DOUBLE, .value.d = (x) })
#define DTN_ATTR_BOOL(k, x) ((dtn_attr){ .key = (k), .type = DTN_ATTR_TYPE_BOOL, .value.b = (x) })
#define DTN_ATTR_STRV(k, x) ((dtn_attr){ .key = (k), .type = DTN_ATTR_TYPE_STRV, .value.v = (x) })

/* ---- the provider ---- */

typedef struct dtn_otel dtn_otel;

/* A diagnostic of the telemetry itself (a bad variable, a failed export): one line, no newline.
 * Never carries header values or other credentials. Called from any thread. */
typedef void (*dtn_otel_log_fn)(const char *line, void *payload);

typedef struct dtn_otel_opts {
	int version;                  /* 1 */
	/*
	 * Whether telemetry is on: 1 on, -1 off, 0 decided by the environment: on when
	 * DAYTONA_OTEL_ENABLED or DAYTONA_EXPERIMENTAL_OTEL_ENABLED is "true", or an
	 * OTEL_EXPORTER_OTLP_*ENDPOINT variable is set, or trace_file is given, unless
	 * OTEL_SDK_DISABLED is "true". A provider that is off is still a valid handle.
	 *
	 * OTLP/HTTP export happens when telemetry is on and an endpoint is configured, or
	 * DAYTONA_OTEL_ENABLED is "true", or enabled is 1 (then the default endpoint
	 * http://localhost:4318 is used); a trace_file alone writes the file only.
	 */
	int enabled;
	/* NULL: "dtn-build". OTEL_SERVICE_NAME wins over it, as the specification wants. */
	const char *service_name;
	const char *service_version;  /* NULL: DTN_VERSION */
	/* Extra resource attributes; they win over OTEL_RESOURCE_ATTRIBUTES. May be NULL. */
	const dtn_attr *resource;
	size_t nresource;
	/* The OTLP base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT (which it overrides); NULL: env.
	 * The empty string "" disables OTLP export even when the environment sets an endpoint. */
	const char *endpoint;
	/* Also (or only) write OTLP JSON bodies, one per line, to this file (truncated). */
	const char *trace_file;
	/* The time dtn_otel_shutdown may take by default, in ms; 0: DTN_OTEL_FLUSH_TIMEOUT from the
	 * environment, else 2000. */
	long flush_timeout_ms;
	/* A W3C traceparent (and tracestate) to continue; NULL: the TRACEPARENT / TRACESTATE
	 * environment variables. Invalid values are ignored (with a diagnostic). */
	const char *traceparent;
	const char *tracestate;
	bool ignore_env;              /* read no environment variable at all */
	dtn_otel_log_fn log;          /* diagnostics; NULL: dropped */
	void *log_payload;
} dtn_otel_opts;

/*
 * Creates a provider from opts (NULL: all defaults, decided by the environment) and starts its
 * exporter thread when telemetry is on. Bad environment values are reported through opts->log
 * and replaced by defaults; they do not fail. Returns 0 with *out set (free it with
 * dtn_otel_shutdown), DTN_EUNSUPPORTED (OTEL_EXPORTER_OTLP_PROTOCOL asks for something other
 * than http/json: err says so), DTN_EIO (trace_file cannot be opened), DTN_EINVAL (a bad
 * option), DTN_ENOMEM.
 */
int dtn_otel_new(dtn_otel **out, const dtn_otel_opts *opts, dtn_error *err);

/* Whether the provider records anything. Accepts NULL (false). */
bool dtn_otel_is_enabled(const dtn_otel *otel);

/*
 * Installs otel as the process-wide default used by dtn_span_start and the metric functions
 * (NULL uninstalls). The provider stays owned by the caller.
 */
void dtn_otel_set_default(dtn_otel *otel);

/* The process-wide default provider, borrowed; NULL when none is installed. */
dtn_otel *dtn_otel_default(void);

/*
 * Exports everything ended so far, and the metrics, waiting at most timeout_ms (negative: the
 * provider's flush timeout). Returns 0, or DTN_ETIMEOUT when the time ran out first (what was
 * not sent stays queued or is counted as dropped). Accepts NULL.
 */
int dtn_otel_flush(dtn_otel *otel, long timeout_ms);

/*
 * Flushes within timeout_ms (negative: the provider's flush timeout), stops the exporter thread
 * and frees the provider, uninstalling it first if it is the default. Never blocks for longer
 * than the timeout, whatever the receiver does. Spans still open are not exported; ending one
 * later is safe. Call it once the other threads no longer record metrics through it. Returns 0;
 * DTN_ETIMEOUT when the time ran out with data unsent; DTN_EHTTP when a receiver refused data
 * for good during the shutdown (the exporter's warnings say why). Accepts NULL.
 */
int dtn_otel_shutdown(dtn_otel *otel, long timeout_ms);

/* The provider's flush timeout in ms (the default budget of dtn_otel_shutdown); 0 for NULL. */
long dtn_otel_flush_timeout(const dtn_otel *otel);

/* Counters of the provider's own work, for summaries and tests. */
typedef struct dtn_otel_stats {
	uint64_t spans_started;
	uint64_t spans_exported;     /* accepted by every destination */
	uint64_t spans_dropped;      /* queue full, export failed, shut down */
	uint64_t metric_exports;
	uint64_t export_failures;    /* requests that failed for good */
	uint64_t export_retries;
} dtn_otel_stats;

void dtn_otel_get_stats(const dtn_otel *otel, dtn_otel_stats *out);

/*
 * Writes a short human summary of the run (spans by name with their durations, export results)
 * one line at a time, through fn (on the caller's thread); used by `dtn-build --otel-summary`.
 */
void dtn_otel_summary(dtn_otel *otel, void (*fn)(const char *line, void *payload),
		      void *payload);

/* ---- spans ---- */

typedef struct dtn_span dtn_span;

typedef enum dtn_span_kind {
	DTN_SPAN_INTERNAL = 1,
	DTN_SPAN_SERVER = 2,
	DTN_SPAN_CLIENT = 3,
	DTN_SPAN_PRODUCER = 4,
	DTN_SPAN_CONSUMER = 5
} dtn_span_kind;

typedef enum dtn_span_status {
	DTN_SPAN_UNSET = 0,
	DTN_SPAN_OK = 1,
	DTN_SPAN_ERROR = 2
} dtn_span_status;

/*
 * Starts a span in the default provider. `parent` NULL means the calling thread's current span,
 * or, when the thread has none, the remote parent the provider was given (TRACEPARENT), or none
 * (a new trace). The span becomes the thread's current span until it ends. Returns NULL when
 * telemetry is off (every dtn_span_* function accepts NULL) or memory ran out. A span the
 * sampler drops is still returned: it carries the trace context but records nothing. `name` is
 * copied.
 */
dtn_span *dtn_span_start(const char *name, dtn_span_kind kind, dtn_span *parent);

typedef struct dtn_span_opts {
	int version;                 /* 1 */
	dtn_otel *otel;              /* NULL: the default provider */
	dtn_span *parent;            /* NULL: as dtn_span_start */
	/* A remote parent as a W3C traceparent value; used when parent is NULL. An invalid value
	 * is ignored. */
	const char *traceparent;
	const char *tracestate;
	bool root;                   /* a new trace: ignore the current span and the remote parent */
	bool not_current;            /* do not become the thread's current span */
	int64_t start_unix_nano;     /* 0: now */
	const dtn_attr *attrs;       /* set at start, where the sampler could see them */
	size_t nattrs;
} dtn_span_opts;

/* Starts a span with options (opts may be NULL). Same contract as dtn_span_start. */
dtn_span *dtn_span_start_ex(const char *name, dtn_span_kind kind, const dtn_span_opts *opts);

/* Attributes; a key set twice keeps the last value. Strings are copied. */
void dtn_span_set_str(dtn_span *span, const char *key, const char *value);
void dtn_span_set_int(dtn_span *span, const char *key, int64_t value);
void dtn_span_set_double(dtn_span *span, const char *key, double value);
void dtn_span_set_bool(dtn_span *span, const char *key, bool value);
void dtn_span_set_strv(dtn_span *span, const char *key, const char *const *values);
void dtn_span_set_attrs(dtn_span *span, const dtn_attr *attrs, size_t nattrs);

/* A timestamped event with attributes (attrs may be NULL with nattrs 0). */
void dtn_span_add_event(dtn_span *span, const char *name, const dtn_attr *attrs,
			size_t nattrs);

/* The status; the message is kept for DTN_SPAN_ERROR only. OK is final: later calls ignored. */
void dtn_span_set_status(dtn_span *span, dtn_span_status status, const char *message);

/*
 * Records a failure the semantic-convention way: status ERROR with `message`, the attribute
 * error.type (`error_type`, or a short name derived from `code` when NULL, e.g. "timeout"), and
 * an "exception" event with exception.type (the code's name, e.g. "DTN_ETIMEOUT") and
 * exception.message. A code of DTN_EINTR records error.type "cancelled" without an ERROR status.
 */
void dtn_span_record_error(dtn_span *span, int code, const char *error_type,
			   const char *message);

/* Ends the span (now) and queues it for export; the handle is invalid afterwards. If it is the
 * thread's current span, its parent becomes current again. Accepts NULL. */
void dtn_span_end(dtn_span *span);

/* Ends the span at the given time (Unix ns); 0 means now. */
void dtn_span_end_at(dtn_span *span, int64_t end_unix_nano);

/* The calling thread's current span, borrowed; NULL when there is none. */
dtn_span *dtn_span_current(void);

/*
 * Makes span the calling thread's current span (NULL: none) and returns the previous one, to be
 * restored with another call. For work handed to other threads: pass the span as `parent`
 * explicitly instead when possible.
 */
dtn_span *dtn_span_set_current(dtn_span *span);

/* Seconds since the span started (0 for NULL), for metrics measured with it. */
double dtn_span_elapsed(const dtn_span *span);

/* Whether the span records (not NULL and sampled). */
bool dtn_span_is_recording(const dtn_span *span);

/*
 * Writes the W3C traceparent of span (NULL: the current span, else the remote parent) into buf
 * (at least 56 bytes), for child processes (TRACEPARENT) or requests. Returns the length (55),
 * or 0 when there is no trace context or OTEL_PROPAGATORS leaves out tracecontext (buf is
 * then "").
 */
size_t dtn_span_traceparent(const dtn_span *span, char *buf, size_t size);

/* The 32 and 16 lowercase hex digits of the span's ids into buf (33 / 17 bytes); "" for NULL. */
void dtn_span_trace_id(const dtn_span *span, char buf[33]);
void dtn_span_span_id(const dtn_span *span, char buf[17]);

/*
 * An operation in the Daytona SDKs' style: `name` is "Component.method" (e.g.
 * "SnapshotService.create"); the span gets the attributes component and method, is INTERNAL,
 * a child of `parent` (NULL: the current span), and the resource usage of the environment is
 * sampled at its start.
 */
dtn_span *dtn_span_start_op(const char *name, dtn_span *parent);

/*
 * Ends an operation started by dtn_span_start_op: rc 0 sets status OK; DTN_EINTR sets
 * error.type "cancelled"; another negative rc records the error as dtn_span_record_error does
 * (message from err when given, else dtn_strerror(rc)), keeping an error.type the span already
 * has. Records the histogram <snake(name)>_duration (ms; component, method,
 * status=success|error) and the resource usage gauges with the operation as attribute. Then
 * ends the span. Accepts NULL.
 */
void dtn_span_end_op(dtn_span *span, int rc, const dtn_error *err);

/* ---- metrics ---- */

typedef enum dtn_metric_kind {
	DTN_METRIC_COUNTER = 1,       /* monotonic sum */
	DTN_METRIC_UPDOWN = 2,        /* non-monotonic sum */
	DTN_METRIC_HISTOGRAM = 3,     /* explicit buckets */
	DTN_METRIC_GAUGE = 4          /* last value */
} dtn_metric_kind;

/* What a metric is. A name has one definition per process: the first one recorded wins. */
typedef struct dtn_metric_def {
	const char *name;
	const char *unit;             /* UCUM: "ms", "s", "By", "{build}", ... */
	const char *description;      /* may be NULL */
	dtn_metric_kind kind;
	bool integer;                 /* exported as integers (asInt) rather than doubles */
	/* Histogram bucket upper bounds, strictly increasing; NULL: the defaults for the unit
	 * (the semantic-convention bounds for "s", OpenTelemetry's default bounds otherwise). */
	const double *bounds;
	size_t nbounds;
} dtn_metric_def;

/* Records a value (an increment for sums) with attributes in the default provider. */
void dtn_metric_record(const dtn_metric_def *def, double value, const dtn_attr *attrs,
		       size_t nattrs);

/* Shortcuts by name, with default bounds: */
void dtn_counter_add(const char *name, const char *unit, int64_t value, const dtn_attr *attrs,
		     size_t nattrs);
void dtn_histogram_record(const char *name, const char *unit, double value,
			  const dtn_attr *attrs, size_t nattrs);
void dtn_gauge_set(const char *name, const char *unit, double value, const dtn_attr *attrs,
		   size_t nattrs);

/* ---- W3C trace context ---- */

/* A parsed traceparent. */
typedef struct dtn_trace_context {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags;                /* bit 0x01: sampled */
} dtn_trace_context;

/*
 * Parses a traceparent header value (W3C Trace Context level 2, any version but ff). Returns 0,
 * or DTN_EINVAL for an invalid value (all-zero ids, wrong lengths, upper-case hex, ...).
 */
int dtn_trace_context_parse(dtn_trace_context *out, const char *traceparent);

/* Formats "00-<trace>-<span>-<flags>" into buf (at least 56 bytes); returns 55. */
size_t dtn_trace_context_format(const dtn_trace_context *ctx, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
