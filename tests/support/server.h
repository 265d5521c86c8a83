/*
 * server.h - starts the Daytona-compatible test server (tests/server/daytona_server.py) and talks
 * to its control API.
 *
 * The server runs three listeners on 127.0.0.1: the REST API (api_url, ending in /api), S3
 * (s3_url) and the build-log proxy (proxy_url). It is killed by tu_server_stop, at exit, and by
 * the kernel when the test process dies (it never outlives the test binary).
 */
#ifndef DTN_TESTSERVER_H
#define DTN_TESTSERVER_H

#include <jansson.h>
#include <sys/types.h>

typedef struct tu_server {
	pid_t pid;
	int stdin_fd;           /* the server exits when this pipe closes */
	int api_port, s3_port, proxy_port;
	char base_url[64];      /* http://127.0.0.1:P (the control API lives under /_control/) */
	char api_url[64];       /* http://127.0.0.1:P/api */
	char s3_url[64];        /* http://127.0.0.1:P */
	char proxy_url[64];     /* http://127.0.0.1:P */
	char api_key[64];       /* a valid API key */
	char jwt[64];           /* a valid JWT (with org_id in X-Daytona-Organization-ID) */
	char org_id[64];
	char bucket[64];
	char region[32];        /* the S3 region signatures must use */
} tu_server;

/*
 * Starts a server: /usr/bin/python3 with $DTN_TEST_SERVER, else the daytona_server.py in the
 * server/ directory next to the test data directory (tu_data_dir()/../server). Returns 0, or -1
 * with a message on stderr when the server cannot be started.
 */
int tu_server_start(tu_server *out);

/* Kills the server and waits for it. Safe to call twice. */
void tu_server_stop(tu_server *srv);

/*
 * One request to the server's API port (path starts with "/", e.g. "/_control/reset").
 * json_body may be NULL. *response (may be NULL) receives the body, NUL-terminated, to free().
 * Returns the HTTP status, or -1 when the request could not be made.
 */
int tu_server_control(const tu_server *srv, const char *method, const char *path,
	const char *json_body, char **response);

/* POST /_control/reset; POST /_control/scenario with json; POST /_control/faults with json.
 * Each aborts the test when the server does not answer 200. */
void tu_server_reset(const tu_server *srv);
void tu_server_scenario(const tu_server *srv, const char *json);
void tu_server_fault(const tu_server *srv, const char *json);

/* The request log (GET /_control/requests[?server=...]; server may be NULL = all) as a JSON
 * array, or NULL. The caller owns the result (json_decref). */
json_t *tu_server_requests(const tu_server *srv, const char *server);

/* How many logged requests match server ("api", "s3", "proxy"), method and a path prefix; NULL
 * matches anything. Returns -1 when the log cannot be read. */
int tu_server_count(const tu_server *srv, const char *server, const char *method,
	const char *path_prefix);

/* A stored object's bytes (malloc'd, *len set), or NULL when there is none. */
unsigned char *tu_server_object(const tu_server *srv, const char *key, size_t *len);

/* Sets DAYTONA_API_URL, DAYTONA_API_KEY and DAYTONA_TARGET=us for the server and unsets
 * DAYTONA_JWT_TOKEN, DAYTONA_ORGANIZATION_ID and DAYTONA_SERVER_URL. */
void tu_server_setenv(const tu_server *srv);

#endif
