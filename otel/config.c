/*
 * config.c - the telemetry configuration: options, then the standard OTEL_* variables and
 * Daytona's switches, by the parsing rules of the OpenTelemetry specification (an empty value
 * is unset; a bad value is reported and replaced by its default).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otel_internal.h"

typedef struct loader {
	const dtn_otel_opts *opts;
	dtn__otel_warn_fn warn;
	void *payload;
	bool warned_port;
} loader;

static const char *env(const loader *l, const char *name)
{
	const char *v;

	if (l->opts && l->opts->ignore_env)
		return NULL;
	v = getenv(name);
	return v && *v ? v : NULL;
}

/* The per-signal variable when set, else the general one. */
static const char *env2(const loader *l, const char *signal_name, const char *general,
			const char **which)
{
	const char *v = env(l, signal_name);

	*which = signal_name;
	if (!v) {
		v = env(l, general);
		*which = general;
	}
	return v;
}

static bool env_bool(const loader *l, const char *name)
{
	const char *v = env(l, name);

	if (!v)
		return false;
	if (strcasecmp(v, "true") == 0)
		return true;
	if (strcasecmp(v, "false") != 0)
		l->warn(l->payload, "%s: \"%s\" is not true or false; taken as false", name, v);
	return false;
}

/* Daytona's switches take the exact lower-case "true" only, like the SDKs. */
static bool env_daytona(const loader *l, const char *name)
{
	const char *v = env(l, name);

	return v && strcmp(v, "true") == 0;
}

static bool parse_int(const char *v, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 0 || n > INT_MAX)
		return false;
	*out = n;
	return true;
}

static long env_int(const loader *l, const char *name, long def)
{
	const char *v = env(l, name);
	long n;

	if (!v)
		return def;
	if (!parse_int(v, &n)) {
		l->warn(l->payload, "%s: \"%s\" is not a number from 0 to %d; using %ld", name, v,
			INT_MAX, def);
		return def;
	}
	return n;
}

/* ---- URLs ---- */

/* Where the path starts in an http(s) URL (at its end when there is none); NULL if not one. */
static const char *url_path(const char *url)
{
	const char *p;

	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return NULL;
	if (!*p || *p == '/' || *p == '?' || *p == '#')
		return NULL; /* no host */
	return p + strcspn(p, "/?#");
}

char *dtn__otel_signal_url(const char *base, const char *signal_url, const char *path)
{
	const char *p;

	if (signal_url) {
		if (!(p = url_path(signal_url)))
			return NULL;
		if (*p == '/')
			return dtn__strdup(signal_url);
		/* No path: "/" goes before any query. */
		return dtn__aprintf("%.*s/%s", (int)(p - signal_url), signal_url, p);
	}
	if (!base)
		base = "http://localhost:4318";
	if (!url_path(base))
		return NULL;
	return dtn__aprintf("%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", path);
}

/* ---- percent-decoding and the headers variable ---- */

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *dtn__otel_percent_decode(const char *s, size_t n)
{
	char *out = dtn__malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= n) {
			dtn__free(out);
			return NULL;
		}
		int hi = hexdigit(s[i + 1]), lo = hexdigit(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			dtn__free(out);
			return NULL;
		}
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return out;
}

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* One "key=value" item of the headers variable; returns 0, 1 (skipped) or DTN_ENOMEM. */
static int header_item(dtn__strv *out, const char *item, size_t len)
{
	const char *eq = memchr(item, '=', len), *key = item, *val;
	size_t klen, vlen;
	char *value, *line;

	if (!eq)
		return 1;
	klen = (size_t)(eq - item);
	trim(&key, &klen);
	if (!klen)
		return 1;
	for (size_t i = 0; i < klen; i++)
		if (!is_tchar((unsigned char)key[i]))
			return 1;
	val = eq + 1;
	vlen = len - (size_t)(val - item);
	if (!(value = dtn__otel_percent_decode(val, vlen)))
		return 1; /* a bad escape (or no memory: the item is lost either way) */
	val = value;
	vlen = strlen(value);
	trim(&val, &vlen);
	/* a field value holds no control character but the tab (RFC 9110 §5.5) */
	for (size_t i = 0; i < vlen; i++)
		if (((unsigned char)val[i] < 0x20 && val[i] != '\t') || val[i] == 0x7f) {
			dtn__free(value);
			return 1;
		}
	line = dtn__aprintf("%.*s: %.*s", (int)klen, key, (int)vlen, val);
	dtn__free(value);
	if (!line)
		return DTN_ENOMEM;
	return dtn__strv_push_owned(out, line);
}

int dtn__otel_parse_headers(dtn__strv *out, const char *value, int *bad)
{
	int nbad = 0, rc;

	while (value && *value) {
		size_t len = strcspn(value, ",");
		const char *item = value;
		size_t ilen = len;

		trim(&item, &ilen);
		if (ilen) {
			if ((rc = header_item(out, item, ilen)) < 0)
				return rc;
			nbad += rc;
		}
		value += len;
		if (*value == ',')
			value++;
	}
	if (bad)
		*bad = nbad;
	return 0;
}

/* ---- OTEL_RESOURCE_ATTRIBUTES ---- */

int dtn__otel_parse_resource(dtn__oattr **out, const char *value)
{
	dtn__oattr *list = NULL;
	int rc = 0;

	*out = NULL;
	while (value && *value) {
		size_t len = strcspn(value, ",");
		const char *item = value, *eq, *key, *val;
		size_t ilen = len, klen, vlen;
		char *k = NULL, *v = NULL;

		trim(&item, &ilen);
		value += len;
		if (*value == ',')
			value++;
		if (!ilen)
			continue;
		if (!(eq = memchr(item, '=', ilen))) {
			rc = DTN_EINVAL;
			break;
		}
		key = item;
		klen = (size_t)(eq - item);
		trim(&key, &klen);
		val = eq + 1;
		vlen = ilen - (size_t)(val - item);
		trim(&val, &vlen);
		k = dtn__otel_percent_decode(key, klen);
		v = dtn__otel_percent_decode(val, vlen);
		/* A bad escape and an empty key spoil the whole value (memory too: rare). */
		if (!k || !v || !*k)
			rc = DTN_EINVAL;
		else
			rc = dtn__oattr_append(&list, &DTN_ATTR_STR(k, v), 1);
		dtn__free(k);
		dtn__free(v);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		dtn__oattr_free_list(list);
		return rc;
	}
	*out = list;
	return 0;
}

/* ---- the whole configuration ---- */

static int protocol_check(const loader *l, const char *signal_var, dtn_error *err)
{
	const char *which, *v = env2(l, signal_var, "OTEL_EXPORTER_OTLP_PROTOCOL", &which);

	if (!v || strcasecmp(v, "http/json") == 0)
		return 0;
	if (strcasecmp(v, "http/protobuf") == 0 || strcasecmp(v, "grpc") == 0)
		return dtn__error_set(err, DTN_EUNSUPPORTED,
			"%s=%s is not supported: OTLP is exported as http/json only "
			"(set %s=http/json, or unset it)", which, v, which);
	l->warn(l->payload, "%s: unknown protocol \"%s\"; using http/json", which, v);
	return 0;
}

typedef struct signal_names {
	const char *endpoint, *headers, *timeout, *compression, *protocol, *exporter, *path;
} signal_names;

static const signal_names trace_names = {
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_EXPORTER", "v1/traces"
};

static const signal_names metric_names = {
	"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
	"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
	"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_METRICS_EXPORTER", "v1/metrics"
};

static int load_signal(loader *l, dtn__otel_signal *sig, const signal_names *nm,
		       bool otlp, dtn_error *err)
{
	const char *which, *v, *base = NULL, *own = NULL;
	long n;
	int bad = 0, rc;

	sig->timeout_ms = 10000;
	if (!otlp)
		return 0;
	if ((v = env(l, nm->exporter)) && strcasecmp(v, "otlp") != 0) {
		if (strcasecmp(v, "none") != 0)
			l->warn(l->payload, "%s: exporter \"%s\" is not supported; only otlp and "
				"none are", nm->exporter, v);
		return 0;
	}
	if ((rc = protocol_check(l, nm->protocol, err)) < 0)
		return rc;
	if (l->opts && l->opts->endpoint) {
		base = l->opts->endpoint;
	} else {
		own = env(l, nm->endpoint);
		base = env(l, "OTEL_EXPORTER_OTLP_ENDPOINT");
	}
	if (!(sig->url = dtn__otel_signal_url(base, own, nm->path))) {
		l->warn(l->payload, "%s: \"%s\" is not an http:// or https:// URL; not exporting",
			own ? nm->endpoint : "OTEL_EXPORTER_OTLP_ENDPOINT", own ? own : base);
		return 0;
	}
	sig->otlp = true;
	/* 4317 is the OTLP/gRPC port: likely a mistake, but the URL is used as it is */
	if (!l->warned_port && strstr(sig->url, ":4317/")) {
		l->warned_port = true;
		l->warn(l->payload, "%s: port 4317 usually serves OTLP/gRPC; dtn-build sends "
			"OTLP/HTTP (usually port 4318)", own ? nm->endpoint : "the OTLP endpoint");
	}
	if ((v = env2(l, nm->headers, "OTEL_EXPORTER_OTLP_HEADERS", &which))) {
		if ((rc = dtn__otel_parse_headers(&sig->headers, v, &bad)) < 0)
			return dtn__error_set(err, rc, "out of memory");
		if (bad)
			l->warn(l->payload, "%s: %d malformed item%s skipped", which, bad,
				bad == 1 ? "" : "s");
	}
	if ((v = env2(l, nm->timeout, "OTEL_EXPORTER_OTLP_TIMEOUT", &which))) {
		if (parse_int(v, &n))
			sig->timeout_ms = n;
		else
			l->warn(l->payload, "%s: \"%s\" is not a number of milliseconds; using 10000",
				which, v);
	}
	if ((v = env2(l, nm->compression, "OTEL_EXPORTER_OTLP_COMPRESSION", &which))) {
		if (strcasecmp(v, "gzip") == 0)
			sig->gzip = true;
		else if (strcasecmp(v, "none") != 0)
			l->warn(l->payload, "%s: unknown compression \"%s\"; sending uncompressed",
				which, v);
	}
	return 0;
}

static void load_sampler(const loader *l, dtn__otel_config *cfg)
{
	static const struct {
		const char *name;
		int sampler;
		bool parent;
	} samplers[] = {
		{"always_on", DTN__SAMPLER_ON, false},
		{"always_off", DTN__SAMPLER_OFF, false},
		{"traceidratio", DTN__SAMPLER_RATIO, false},
		{"parentbased_always_on", DTN__SAMPLER_ON, true},
		{"parentbased_always_off", DTN__SAMPLER_OFF, true},
		{"parentbased_traceidratio", DTN__SAMPLER_RATIO, true},
	};
	const char *v = env(l, "OTEL_TRACES_SAMPLER"), *arg;
	char *end;
	double r;

	cfg->sampler = DTN__SAMPLER_ON;
	cfg->parent_based = true;
	cfg->ratio = 1.0;
	if (!v)
		return;
	for (size_t i = 0; i < DTN__ARRAY_LEN(samplers); i++)
		if (strcasecmp(v, samplers[i].name) == 0) {
			cfg->sampler = samplers[i].sampler;
			cfg->parent_based = samplers[i].parent;
			goto found;
		}
	l->warn(l->payload, "OTEL_TRACES_SAMPLER: unknown sampler \"%s\"; using "
		"parentbased_always_on", v);
	return;
found:
	if (cfg->sampler != DTN__SAMPLER_RATIO || !(arg = env(l, "OTEL_TRACES_SAMPLER_ARG")))
		return;
	errno = 0;
	r = strtod(arg, &end);
	if (errno || end == arg || *end || !(r >= 0.0 && r <= 1.0)) {
		l->warn(l->payload, "OTEL_TRACES_SAMPLER_ARG: \"%s\" is not a probability from 0 "
			"to 1; using 1.0", arg);
		return;
	}
	cfg->ratio = r;
}

static void load_batching(const loader *l, dtn__otel_config *cfg)
{
	long q, b, limit;

	cfg->bsp_delay_ms = env_int(l, "OTEL_BSP_SCHEDULE_DELAY", 5000);
	cfg->bsp_export_timeout_ms = env_int(l, "OTEL_BSP_EXPORT_TIMEOUT", 30000);
	q = env_int(l, "OTEL_BSP_MAX_QUEUE_SIZE", 2048);
	b = env_int(l, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512);
	if (q < 1) {
		l->warn(l->payload, "OTEL_BSP_MAX_QUEUE_SIZE: must be at least 1; using 2048");
		q = 2048;
	}
	if (b < 1 || b > q) {
		if (b < 1 || env(l, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"))
			l->warn(l->payload, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be from 1 to the "
				"queue size (%ld); using %ld", q, q < 512 ? q : 512);
		b = q < 512 ? q : 512;
	}
	cfg->bsp_queue = (size_t)q;
	cfg->bsp_batch = (size_t)b;
	cfg->metric_interval_ms = env_int(l, "OTEL_METRIC_EXPORT_INTERVAL", 60000);
	if (cfg->metric_interval_ms < 1)
		cfg->metric_interval_ms = 60000;
	cfg->metric_timeout_ms = env_int(l, "OTEL_METRIC_EXPORT_TIMEOUT", 30000);
	limit = env_int(l, "OTEL_ATTRIBUTE_COUNT_LIMIT", 128);
	cfg->attr_count_limit = (uint32_t)env_int(l, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", limit);
	cfg->event_count_limit = (uint32_t)env_int(l, "OTEL_SPAN_EVENT_COUNT_LIMIT", 128);
	limit = env_int(l, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", -1);
	cfg->attr_value_limit = env_int(l, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", limit);
}

/*
 * OTEL_PROPAGATORS: W3C trace context ("tracecontext") is the one dtn speaks; without it in the
 * list ("none", say) no traceparent is read from the environment or handed on. "baggage" is
 * accepted and has nothing to carry; other propagators are reported.
 */
static void load_propagators(const loader *l, dtn__otel_config *cfg)
{
	const char *v = env(l, "OTEL_PROPAGATORS");

	cfg->propagate = true;
	if (!v)
		return;
	cfg->propagate = false;
	while (*v) {
		size_t len = strcspn(v, ",");
		const char *item = v;
		size_t n = len;

		trim(&item, &n);
		if (n == 12 && strncasecmp(item, "tracecontext", n) == 0)
			cfg->propagate = true;
		else if (n && !(n == 4 && strncasecmp(item, "none", n) == 0) &&
			 !(n == 7 && strncasecmp(item, "baggage", n) == 0))
			l->warn(l->payload, "OTEL_PROPAGATORS: \"%.*s\" is not supported; only "
				"tracecontext (and baggage) are", (int)n, item);
		v += len;
		if (*v == ',')
			v++;
	}
}

/* Metrics are cumulative only: another preference is reported, not silently ignored. */
static void check_temporality(const loader *l)
{
	const char *v = env(l, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");

	if (v && strcasecmp(v, "cumulative") != 0)
		l->warn(l->payload, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: \"%s\" is "
			"not supported; metrics are exported cumulative", v);
}

/* A tracestate worth forwarding: printable ASCII, at most 512 characters. */
static bool tracestate_ok(const char *ts)
{
	size_t n = strlen(ts);

	if (n > 512)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ts[i] < 0x20 || ts[i] > 0x7e)
			return false;
	return true;
}

static int load_remote(const loader *l, dtn__otel_config *cfg)
{
	const char *tp = l->opts && l->opts->traceparent ? l->opts->traceparent
							  : env(l, "TRACEPARENT");
	const char *ts = l->opts && l->opts->traceparent ? l->opts->tracestate
							  : env(l, "TRACESTATE");

	if (!tp || !cfg->propagate)
		return 0;
	if (dtn_trace_context_parse(&cfg->remote, tp) < 0) {
		l->warn(l->payload, "TRACEPARENT: \"%.64s\" is not a valid W3C traceparent; "
			"starting a new trace", tp);
		return 0;
	}
	cfg->has_remote = true;
	if (ts && *ts && tracestate_ok(ts) && !(cfg->remote_tracestate = dtn__strdup(ts)))
		return DTN_ENOMEM;
	return 0;
}

static bool decide_enabled(const loader *l, bool *otlp)
{
	const dtn_otel_opts *o = l->opts;
	int mode = o ? o->enabled : 0;
	bool daytona = env_daytona(l, "DAYTONA_OTEL_ENABLED") ||
		       env_daytona(l, "DAYTONA_EXPERIMENTAL_OTEL_ENABLED");
	bool endpoint = o && o->endpoint ? *o->endpoint != '\0' :
		env(l, "OTEL_EXPORTER_OTLP_ENDPOINT") ||
		env(l, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ||
		env(l, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	bool disabled = env_bool(l, "OTEL_SDK_DISABLED");
	bool file = o && o->trace_file;
	bool on;

	if (mode < 0)
		on = false;
	else if (mode > 0)
		on = true;
	else
		on = !disabled && (daytona || endpoint || file);
	*otlp = on && (endpoint || daytona || mode > 0) && !(o && o->endpoint && !*o->endpoint);
	return on;
}

int dtn__otel_config_load(dtn__otel_config *cfg, const dtn_otel_opts *opts,
			  dtn__otel_warn_fn warn, void *payload, dtn_error *err)
{
	loader l = {opts, warn, payload, false};
	const char *v;
	dtn__oattr *res = NULL;
	bool otlp;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (opts && opts->version != 1)
		return dtn__error_set(err, DTN_EINVAL, "dtn_otel_opts: version %d is not 1",
				      opts->version);
	cfg->enabled = decide_enabled(&l, &otlp);
	load_sampler(&l, cfg);
	load_batching(&l, cfg);
	cfg->flush_timeout_ms = opts && opts->flush_timeout_ms > 0 ? opts->flush_timeout_ms :
				env_int(&l, "DTN_OTEL_FLUSH_TIMEOUT", 2000);
	load_propagators(&l, cfg);
	if ((rc = load_remote(&l, cfg)) < 0)
		goto nomem;
	if ((v = env(&l, "OTEL_SERVICE_NAME")) || (opts && (v = opts->service_name)))
		if (!(cfg->service_name = dtn__strdup(v)))
			goto nomem;
	if ((v = env(&l, "OTEL_RESOURCE_ATTRIBUTES"))) {
		if ((rc = dtn__otel_parse_resource(&res, v)) == DTN_ENOMEM)
			goto nomem;
		if (rc < 0)
			warn(payload, "OTEL_RESOURCE_ATTRIBUTES: malformed (items are key=value with "
			     "%%-encoded ',' and '='); ignored");
		cfg->resource_env = res;
	}
	if (!cfg->enabled)
		return 0;
	check_temporality(&l);
	if (opts && opts->trace_file && !(cfg->trace_file = dtn__strdup(opts->trace_file)))
		goto nomem;
	if ((rc = load_signal(&l, &cfg->traces, &trace_names, otlp, err)) < 0 ||
	    (rc = load_signal(&l, &cfg->metrics, &metric_names, otlp, err)) < 0) {
		dtn__otel_config_free(cfg);
		return rc;
	}
	return 0;
nomem:
	dtn__otel_config_free(cfg);
	return dtn__error_set(err, DTN_ENOMEM, "out of memory");
}

static void signal_free(dtn__otel_signal *s)
{
	dtn__free(s->url);
	dtn__strv_free(&s->headers);
}

void dtn__otel_config_free(dtn__otel_config *cfg)
{
	signal_free(&cfg->traces);
	signal_free(&cfg->metrics);
	dtn__free(cfg->trace_file);
	dtn__free(cfg->service_name);
	dtn__free(cfg->remote_tracestate);
	dtn__oattr_free_list(cfg->resource_env);
	memset(cfg, 0, sizeof(*cfg));
}
