/*
 * otlp_check.h - the OTLP/JSON rules, checked by the test suite itself: only the lowerCamelCase
 * fields of the official messages (ExportTraceServiceRequest, ExportMetricsServiceRequest),
 * trace and span ids as hex of the right length and not all zero, 64-bit integers as decimal
 * strings, enums as integers in range, required fields present, unique attribute keys, one
 * value per AnyValue and per data point, histograms whose buckets add up.
 */
#ifndef DTN_OTLP_CHECK_H
#define DTN_OTLP_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Checks one request body. Returns 0 when it follows the rules, else -1 with the first problem
 * written to why (with its JSON path). `signal` is "traces", "metrics" or NULL (either).
 */
int tu_otlp_check(const char *body, const char *signal, char *why, size_t size);

/* Checks every non-empty line of text (a trace file); the number of lines, or -1 with why. */
int tu_otlp_check_lines(const char *text, char *why, size_t size);

/*
 * Every span ("spans") or metric ("metrics") in the bodies of text (one per line, or one body),
 * as a new JSON array of borrowed-then-increfed objects (json_decref it). Each span gets an
 * extra member "_service" with its resource's service.name, each metric "_resource" with its
 * resource's attributes.
 */
json_t *tu_otlp_collect(const char *text, const char *what);
/* The first item of the array whose "name" is name, borrowed; NULL if none. */
json_t *tu_otlp_find(json_t *items, const char *name);
/* How many items are called name. */
size_t tu_otlp_count_named(json_t *items, const char *name);
/* The AnyValue of attribute key in item["attributes"] (or a KeyValue list), borrowed. */
json_t *tu_otlp_attr(json_t *item, const char *key);
/* Its stringValue (NULL if absent) and intValue (LLONG_MIN if absent). */
const char *tu_otlp_attr_str(json_t *item, const char *key);
long long tu_otlp_attr_int(json_t *item, const char *key);

/* Unsets the variables telemetry reads (OTEL_*, DAYTONA_*OTEL*, TRACEPARENT, ...). */
void tu_otel_clear_env(void);

#endif
