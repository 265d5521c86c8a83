/*
 * transcript.h - the recorded Daytona SDK session (tests/data/vectors/daytona-sdk-transcript.json)
 * and the test server's request log, both reduced to comparable text.
 *
 * A call is one line "METHOD PATH BODY" (BODY the request body as sent, empty when none).
 * Repeated identical calls in a row (state polls) count as one, since how often a client polls
 * depends on timing, not on the protocol.
 */
#ifndef DTN_TRANSCRIPT_H
#define DTN_TRANSCRIPT_H

#include "server.h"

/*
 * The calls a scenario of the recording made to `server` ("api", "proxy", "s3"), WebSocket
 * upgrades left out, one per line, in fresh memory (free()). Aborts the test when the file or
 * the scenario is missing.
 */
char *tu_transcript_calls(const char *scenario, const char *server);

/* The calls in the test server's log for `server`, the same way. */
char *tu_server_calls(const tu_server *srv, const char *server);

/* text with every `from` replaced by `to`, in fresh memory (free()). */
char *tu_replace(const char *text, const char *from, const char *to);

#endif
