/*
 * dtn.h - the whole libdtn API.
 */
#ifndef DTN_H
#define DTN_H

#include "dtn_core.h"
#include "dtn_otel.h"
#include "dtn_image.h"
#include "dtn_daytona.h"
#include "dtn_volume.h"
#include "dtn_builder.h"
#include "dtn_local.h"
#include "dtn_build.h"

#endif
