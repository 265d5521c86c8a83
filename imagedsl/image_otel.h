/*
 * image_otel.h - telemetry of the image DSL: what the spans of Spec.load and Image.dockerfile
 * say about a Dockerfile. Internal to libdtn.
 */
#ifndef DTN_IMAGEDSL_IMAGE_OTEL_H
#define DTN_IMAGEDSL_IMAGE_OTEL_H

#include "dtn_otel.h"

/* dtn.image.base (the first FROM's image), dtn.dockerfile.sha256 and dtn.dockerfile.bytes. */
void dtn__image_otel_dockerfile(dtn_span *span, const char *dockerfile);

/* The instructions that make layers (RUN, COPY, ADD) in a Dockerfile. */
int64_t dtn__image_otel_layers(const char *dockerfile);

#endif
