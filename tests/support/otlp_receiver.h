/*
 * otlp_receiver.h - a loopback OTLP/HTTP receiver for the tests, with faults on demand.
 *
 *     tu_otlp *r = tu_otlp_start("503:1,429:1,drop,hang");
 *     setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tu_otlp_url(r), 1);
 *     ...
 *     tu_otlp_wait(r, 2, 5000);
 *     const tu_otlp_request *q = tu_otlp_get(r, 0);
 *     tu_otlp_stop(r);
 *
 * The script answers the requests in order, one entry each; after it, every request gets
 * 200 "{}". Entries: a status code ("503"), a status with a Retry-After in seconds ("429:1"),
 * "drop" (the connection is closed without an answer), "hang" (no answer until the receiver
 * stops), "partial" (200 with a partialSuccess). Only 127.0.0.1 is used.
 */
#ifndef DTN_OTLP_RECEIVER_H
#define DTN_OTLP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tu_otlp tu_otlp;

typedef struct tu_otlp_request {
	char *method;
	char *path;
	char *headers;       /* the header lines as received, "\r\n"-separated */
	char *body;          /* NUL-terminated; gunzipped when the request was gzip */
	size_t body_len;
	bool gzip;
	int answered;        /* the status sent, 0 for drop and hang */
	long long at_ms;     /* when it arrived, monotonic */
} tu_otlp_request;

/* Starts the receiver; aborts the test when it cannot listen. */
tu_otlp *tu_otlp_start(const char *script);
/* "http://127.0.0.1:PORT", borrowed. */
const char *tu_otlp_url(const tu_otlp *r);
/* Waits until at least n requests arrived or timeout_ms passed; returns how many arrived. */
size_t tu_otlp_wait(tu_otlp *r, size_t n, long timeout_ms);
size_t tu_otlp_count(tu_otlp *r);
/* Request i (0-based), borrowed until tu_otlp_stop; NULL past the end. */
const tu_otlp_request *tu_otlp_get(tu_otlp *r, size_t i);
/* The value of a request header (case-insensitive name), in static storage; NULL if absent. */
const char *tu_otlp_header(const tu_otlp_request *q, const char *name);
/* Stops, closes every connection (hung ones too) and frees everything. */
void tu_otlp_stop(tu_otlp *r);

#endif
