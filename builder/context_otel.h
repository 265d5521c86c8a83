/*
 * context_otel.h - the spans of the context walks (Context.identify, Context.archive,
 * Context.archiveIdentify). Internal to libdtn.
 */
#ifndef DTN_BUILDER_CONTEXT_OTEL_H
#define DTN_BUILDER_CONTEXT_OTEL_H

#include "dtn_builder.h"
#include "dtn_otel.h"

/* The span of a walk of ctx, with the context's path; NULL when telemetry is off. An archive's
 * span (Context.archive*) is not made the thread's current span. */
dtn_span *dtn__context_span_start(const char *name, const dtn_context *ctx);
/* Ends it with what the walk found (id may be NULL) and the outcome. */
void dtn__context_span_end(dtn_span *span, const dtn_context_id *id, int rc,
			   const dtn_error *err);

#endif
