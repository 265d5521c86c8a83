/*
 * context_otel.c - the spans of the context walks: the context's path, then its identity and
 * counts as attributes, the outcome as status, and the operation's duration histogram.
 */
#include <string.h>

#include "context_otel.h"

dtn_span *dtn__context_span_start(const char *name, const dtn_context *ctx)
{
	dtn_span *caller = dtn_span_current();
	dtn_span *span = dtn_span_start_op(name, NULL);

	/*
	 * An archive is written to the caller (an upload, say): the requests its bytes set off
	 * belong to the caller's operation, which outlives them, so the archive's span does not
	 * become the current one.
	 */
	if (span && strncmp(name, "Context.archive", 15) == 0)
		dtn_span_set_current(caller);

	dtn_span_set_str(span, "dtn.context.path", ctx->path);
	dtn_span_set_str(span, "dtn.context.archive_path", ctx->archive_path);
	return span;
}

void dtn__context_span_end(dtn_span *span, const dtn_context_id *id, int rc,
			   const dtn_error *err)
{
	if (span && id && rc == 0) {
		dtn_span_set_str(span, "dtn.context.hash", id->hash);
		dtn_span_set_int(span, "dtn.context.files", (int64_t)id->files);
		dtn_span_set_int(span, "dtn.context.dirs", (int64_t)id->dirs);
		dtn_span_set_int(span, "dtn.context.bytes", (int64_t)id->bytes);
		dtn_span_set_int(span, "dtn.context.excluded", (int64_t)id->excluded);
		dtn_span_set_int(span, "dtn.context.cache_hits", (int64_t)id->cache_hits);
	}
	dtn_span_end_op(span, rc, err);
}
