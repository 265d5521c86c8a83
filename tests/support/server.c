/*
 * server.c - spawning the Python test server and driving its control API over libcurl.
 */
#include "server.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_SERVERS 8
#define READY_TIMEOUT_MS 20000

/* Servers still running, killed by the atexit handler if a test never stopped them. */
static pid_t live[MAX_SERVERS];
static int atexit_done;

static void kill_live(void)
{
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	}
}

static void track(pid_t pid, pid_t replace)
{
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (live[i] == replace) {
			live[i] = pid;
			return;
		}
	}
}

static void script_path(char *buf, size_t len)
{
	const char *env = getenv("DTN_TEST_SERVER");
	const char *data = tu_data_dir();

	if (env && *env)
		snprintf(buf, len, "%s", env);
	else
		snprintf(buf, len, "%s/../server/daytona_server.py", data);
}

/* The child: stdin from the pipe, stdout to the pipe; dies with its parent. */
static void exec_child(int in_fd, int out_fd, const char *script, pid_t parent)
{
	static char python[] = "/usr/bin/python3", flag[] = "--exit-on-stdin-eof";
	char *argv[] = {python, (char *)script, flag, NULL};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	dup2(in_fd, 0);
	dup2(out_fd, 1);
	close(in_fd);
	close(out_fd);
	execv(argv[0], argv);
	_exit(127);
}

/* Reads one line from fd with an overall deadline. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n + 1 < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long spent;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= timeout_ms)
			return -1;
		if (poll(&p, 1, (int)(timeout_ms - spent)) <= 0)
			continue;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

static int parse_ready(tu_server *s, const char *line)
{
	if (sscanf(line, "READY api=%d s3=%d proxy=%d", &s->api_port, &s->s3_port,
		    &s->proxy_port) != 3)
		return -1;
	snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", s->api_port);
	snprintf(s->api_url, sizeof(s->api_url), "http://127.0.0.1:%d/api", s->api_port);
	snprintf(s->s3_url, sizeof(s->s3_url), "http://127.0.0.1:%d", s->s3_port);
	snprintf(s->proxy_url, sizeof(s->proxy_url), "http://127.0.0.1:%d", s->proxy_port);
	return 0;
}

static void copy_field(json_t *cfg, const char *name, char *dst, size_t len)
{
	const char *v = json_string_value(json_object_get(cfg, name));

	snprintf(dst, len, "%s", v ? v : "");
}

static int load_config(tu_server *s)
{
	char *text = NULL;
	json_t *cfg;

	if (tu_server_control(s, "GET", "/_control/config", NULL, &text) != 200) {
		free(text);
		return -1;
	}
	cfg = json_loads(text, 0, NULL);
	free(text);
	if (!cfg)
		return -1;
	copy_field(cfg, "api_key", s->api_key, sizeof(s->api_key));
	copy_field(cfg, "jwt", s->jwt, sizeof(s->jwt));
	copy_field(cfg, "organization_id", s->org_id, sizeof(s->org_id));
	copy_field(cfg, "bucket", s->bucket, sizeof(s->bucket));
	copy_field(cfg, "region", s->region, sizeof(s->region));
	json_decref(cfg);
	return 0;
}

int tu_server_start(tu_server *out)
{
	char script[PATH_MAX], line[256];
	int in[2], outp[2];
	pid_t parent = getpid(), pid;

	memset(out, 0, sizeof(*out));
	out->stdin_fd = -1;
	script_path(script, sizeof(script));
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "test server: %s: %s\n", script, strerror(errno));
		return -1;
	}
	if (!atexit_done) {
		atexit(kill_live);
		atexit_done = 1;
	}
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0)
		exec_child(in[0], outp[1], script, parent);
	close(in[0]);
	close(outp[1]);
	out->pid = pid;
	out->stdin_fd = in[1];
	track(pid, 0);
	if (read_line(outp[0], line, sizeof(line), READY_TIMEOUT_MS) != 0 ||
	    parse_ready(out, line) != 0 || load_config(out) != 0) {
		close(outp[0]);
		fprintf(stderr, "test server: %s did not start\n", script);
		tu_server_stop(out);
		return -1;
	}
	close(outp[0]);
	return 0;
}

void tu_server_stop(tu_server *srv)
{
	if (srv->pid > 0) {
		kill(srv->pid, SIGKILL);
		waitpid(srv->pid, NULL, 0);
		track(0, srv->pid);
		srv->pid = 0;
	}
	if (srv->stdin_fd >= 0) {
		close(srv->stdin_fd);
		srv->stdin_fd = -1;
	}
}

typedef struct growbuf {
	char *data;
	size_t len;
	size_t cap;
} growbuf;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *payload)
{
	growbuf *g = payload;
	size_t n = size * nmemb;

	/* Doubling keeps fetching a large stored object linear. */
	if (g->len + n + 1 > g->cap) {
		size_t cap = g->cap ? g->cap : 4096;
		char *p;

		while (cap < g->len + n + 1)
			cap *= 2;
		p = realloc(g->data, cap);
		if (!p)
			return 0;
		g->data = p;
		g->cap = cap;
	}
	memcpy(g->data + g->len, ptr, n);
	g->len += n;
	g->data[g->len] = '\0';
	return n;
}

static int request(const tu_server *srv, const char *method, const char *path,
	const char *body, size_t body_len, const char *ctype, growbuf *g)
{
	char url[1024];
	struct curl_slist *hdrs = NULL;
	long status = -1;
	CURL *c = curl_easy_init();
	CURLcode rc;

	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", srv->base_url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		char h[128];

		snprintf(h, sizeof(h), "Content-Type: %s", ctype);
		hdrs = curl_slist_append(hdrs, h);
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? (int)status : -1;
}

int tu_server_control(const tu_server *srv, const char *method, const char *path,
	const char *json_body, char **response)
{
	growbuf g = {0};
	int status = request(srv, method, path, json_body, json_body ? strlen(json_body) : 0,
		"application/json", &g);

	if (response)
		*response = g.data ? g.data : strdup("");
	else
		free(g.data);
	return status;
}

static void control_ok(const tu_server *srv, const char *path, const char *json)
{
	char *resp = NULL;
	int status = tu_server_control(srv, "POST", path, json, &resp);

	if (status != 200) {
		fprintf(stderr, "test server: POST %s -> %d %s\n", path, status, resp ? resp : "");
		free(resp);
		abort();
	}
	free(resp);
}

void tu_server_reset(const tu_server *srv)
{
	control_ok(srv, "/_control/reset", "{}");
}

void tu_server_scenario(const tu_server *srv, const char *json)
{
	control_ok(srv, "/_control/scenario", json);
}

void tu_server_fault(const tu_server *srv, const char *json)
{
	control_ok(srv, "/_control/faults", json);
}

json_t *tu_server_requests(const tu_server *srv, const char *server)
{
	char path[128], *text = NULL;
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/_control/requests%s%s", server ? "?server=" : "",
		server ? server : "");
	if (tu_server_control(srv, "GET", path, NULL, &text) == 200)
		j = json_loads(text, JSON_ALLOW_NUL, NULL);
	free(text);
	return j;
}

int tu_server_count(const tu_server *srv, const char *server, const char *method,
	const char *path_prefix)
{
	json_t *log = tu_server_requests(srv, server);
	int n = 0;

	if (!log)
		return -1;
	for (size_t i = 0; i < json_array_size(log); i++) {
		json_t *e = json_array_get(log, i);
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *p = json_string_value(json_object_get(e, "path"));

		if (method && (!m || strcmp(m, method) != 0))
			continue;
		if (path_prefix && (!p || strncmp(p, path_prefix, strlen(path_prefix)) != 0))
			continue;
		n++;
	}
	json_decref(log);
	return n;
}

unsigned char *tu_server_object(const tu_server *srv, const char *key, size_t *len)
{
	char path[1024];
	char *esc = curl_easy_escape(NULL, key, 0);
	growbuf g = {0};

	if (!esc)
		return NULL;
	snprintf(path, sizeof(path), "/_control/object?key=%s", esc);
	curl_free(esc);
	if (request(srv, "GET", path, NULL, 0, NULL, &g) != 200) {
		free(g.data);
		return NULL;
	}
	*len = g.len;
	return g.data ? (unsigned char *)g.data : (unsigned char *)calloc(1, 1);
}

void tu_server_setenv(const tu_server *srv)
{
	setenv("DAYTONA_API_URL", srv->api_url, 1);
	setenv("DAYTONA_API_KEY", srv->api_key, 1);
	setenv("DAYTONA_TARGET", "us", 1);
	unsetenv("DAYTONA_JWT_TOKEN");
	unsetenv("DAYTONA_ORGANIZATION_ID");
	unsetenv("DAYTONA_SERVER_URL");
}
