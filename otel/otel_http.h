/*
 * otel_http.h - the telemetry side of core/http.h. Internal: not installed.
 *
 *     dtn__http_opts opts = { .version = 1, .observer = dtn__otel_http_observer() };
 *
 * The observer makes one CLIENT span per HTTP attempt (a child of the calling thread's current
 * span) with the stable HTTP semantic conventions, injects its W3C traceparent into the
 * request, and records http.client.request.duration and dtn.http.retries. It is a static object
 * (never NULL) and costs one atomic load per attempt while telemetry is off; it then still
 * forwards a TRACEPARENT the process was given.
 */
#ifndef DTN_OTEL_HTTP_H
#define DTN_OTEL_HTTP_H

#include "http.h"

const dtn__http_observer *dtn__otel_http_observer(void);

#endif
