/*
 * test_http.c - the HTTP transport against a loopback listener in this process that answers
 * with a script of canned responses (and drops, stalls and delays) and records each request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "testutil.h"

/* ---- the loopback listener ---- */

enum act {
	REPLY,   /* answer with status, headers and body */
	DROP,    /* close the connection without answering */
	STALL,   /* send the head and part of the body, then nothing until closed */
	CHUNKED  /* answer 200 with the body in chunked pieces */
};

typedef struct canned {
	enum act act;
	int status;
	const char *headers; /* extra "Name: value\r\n" lines */
	const char *body;
	int delay_ms;        /* before answering */
} canned;

typedef struct seen {
	char method[16];
	char target[512];
	char *head;          /* the request's header block */
	char *body;
	size_t body_len;
	int conn;            /* which connection it came on */
} seen;

#define MAX_SCRIPT 32
#define MAX_SEEN 64
#define MAX_CONNS 64

typedef struct listener {
	int fd;
	int port;
	pthread_t thread;
	pthread_t conns[MAX_CONNS];
	int nconns;
	pthread_mutex_t mu;
	canned script[MAX_SCRIPT];
	int nscript, next;
	seen reqs[MAX_SEEN];
	int nreqs;
	atomic_int stop;
} listener;

static listener L;

typedef struct conn_arg {
	int fd;
	int id;
} conn_arg;

static bool stopping(void)
{
	return atomic_load(&L.stop) != 0;
}

/* Waits for the socket to be readable; false when stopping or on error. */
static bool wait_readable(int fd)
{
	while (!stopping()) {
		struct pollfd p = {fd, POLLIN, 0};
		int n = poll(&p, 1, 20);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
	return false;
}

static void pause_ms(int ms)
{
	for (int i = 0; i < ms / 10 && !stopping(); i++)
		usleep(10000);
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

typedef struct rbuf {
	char data[1 << 16];
	size_t len;
} rbuf;

/* Reads more bytes into b; false at EOF. */
static bool fill(int fd, rbuf *b)
{
	ssize_t n;

	if (b->len == sizeof(b->data) || !wait_readable(fd))
		return false;
	n = recv(fd, b->data + b->len, sizeof(b->data) - b->len, 0);
	if (n <= 0)
		return false;
	b->len += (size_t)n;
	return true;
}

static void consume(rbuf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* The value of a request header (up to the line's end) in static storage; NULL if absent. */
static const char *header_value(const char *head, const char *name);

static const char *find_header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':')
			return p + 3 + n;
	return NULL;
}

/* The listener's own growable bytes: plain malloc, apart from the allocation seam under test. */
typedef struct bytes {
	char *data;
	size_t len;
} bytes;

static void bytes_add(bytes *b, const char *data, size_t len)
{
	char *p = realloc(b->data, b->len + len + 1);

	if (!p)
		abort();
	memcpy(p + b->len, data, len);
	b->data = p;
	b->len += len;
	p[b->len] = '\0';
}

static const char *header_value(const char *head, const char *name)
{
	static char v[512];
	const char *p = find_header(head, name);

	if (!p)
		return NULL;
	while (*p == ' ')
		p++;
	snprintf(v, sizeof(v), "%.*s", (int)strcspn(p, "\r\n"), p);
	return v;
}

/* Reads one request into *s; false when the connection ended first. */
static bool read_request(int fd, rbuf *b, seen *s)
{
	char *end;
	const char *v;
	size_t head_len;
	bytes body = {NULL, 0};

	while (!(end = memmem(b->data, b->len, "\r\n\r\n", 4)))
		if (!fill(fd, b))
			return false;
	head_len = (size_t)(end - b->data) + 4;
	s->head = strndup(b->data, head_len);
	sscanf(s->head, "%15s %511s", s->method, s->target);
	consume(b, head_len);
	bytes_add(&body, "", 0);
	s->body = body.data;
	if ((v = find_header(s->head, "Expect")) && strstr(v, "100-continue"))
		send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	if ((v = find_header(s->head, "Transfer-Encoding")) && strstr(v, "chunked")) {
		for (;;) {
			char *eol;
			size_t n;
			while (!(eol = memmem(b->data, b->len, "\r\n", 2)))
				if (!fill(fd, b))
					return false;
			n = strtoul(b->data, NULL, 16);
			consume(b, (size_t)(eol - b->data) + 2);
			while (b->len < n + 2)
				if (!fill(fd, b))
					return false;
			bytes_add(&body, b->data, n);
			s->body = body.data;
			consume(b, n + 2);
			if (n == 0)
				break;
		}
	} else if ((v = find_header(s->head, "Content-Length"))) {
		size_t n = strtoul(v, NULL, 10);
		while (n > 0) {
			size_t k;
			if (b->len == 0 && !fill(fd, b))
				return false;
			k = b->len < n ? b->len : n;
			bytes_add(&body, b->data, k);
			s->body = body.data;
			consume(b, k);
			n -= k;
		}
	}
	s->body_len = body.len;
	return true;
}

static canned next_canned(void)
{
	canned c = {REPLY, 200, NULL, "ok", 0};

	pthread_mutex_lock(&L.mu);
	if (L.next < L.nscript)
		c = L.script[L.next++];
	pthread_mutex_unlock(&L.mu);
	return c;
}

static void answer(int fd, const canned *c)
{
	char head[1024];
	size_t len = c->body ? strlen(c->body) : 0;
	int n;

	pause_ms(c->delay_ms);
	switch (c->act) {
	case DROP:
		return;
	case CHUNKED:
		n = snprintf(head, sizeof(head),
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n",
			c->headers ? c->headers : "");
		send_all(fd, head, (size_t)n);
		for (size_t off = 0; off < len; off += 7) {
			size_t k = len - off < 7 ? len - off : 7;
			n = snprintf(head, sizeof(head), "%zx\r\n", k);
			send_all(fd, head, (size_t)n);
			send_all(fd, c->body + off, k);
			send_all(fd, "\r\n", 2);
		}
		send_all(fd, "0\r\n\r\n", 5);
		return;
	case STALL:
		n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
		send_all(fd, head, (size_t)n);
		send_all(fd, c->body, len);
		while (!stopping()) {
			char tmp[256];
			struct pollfd p = {fd, POLLIN, 0};
			if (poll(&p, 1, 20) > 0 && recv(fd, tmp, sizeof(tmp), 0) <= 0)
				return;
		}
		return;
	case REPLY:
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d Canned\r\nContent-Length: %zu\r\n%s\r\n",
			c->status, len, c->headers ? c->headers : "");
		send_all(fd, head, (size_t)n);
		send_all(fd, c->body, len);
		return;
	}
}

static void *conn_main(void *arg)
{
	conn_arg a = *(conn_arg *)arg;
	rbuf *b = calloc(1, sizeof(*b));

	free(arg);
	for (;;) {
		seen s = {0};
		canned c;
		if (!read_request(a.fd, b, &s)) {
			free(s.head);
			free(s.body);
			break;
		}
		s.conn = a.id;
		pthread_mutex_lock(&L.mu);
		if (L.nreqs < MAX_SEEN) {
			L.reqs[L.nreqs++] = s;
		} else {
			free(s.head);
			free(s.body);
		}
		pthread_mutex_unlock(&L.mu);
		c = next_canned();
		answer(a.fd, &c);
		if (c.act != REPLY || (c.headers && strstr(c.headers, "Connection: close")))
			break;
	}
	free(b);
	close(a.fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	(void)arg;
	while (wait_readable(L.fd)) {
		int fd = accept(L.fd, NULL, NULL);
		conn_arg *a;
		if (fd < 0)
			continue;
		pthread_mutex_lock(&L.mu);
		if (L.nconns == MAX_CONNS || !(a = malloc(sizeof(*a)))) {
			pthread_mutex_unlock(&L.mu);
			close(fd);
			continue;
		}
		a->fd = fd;
		a->id = L.nconns;
		if (pthread_create(&L.conns[L.nconns], NULL, conn_main, a) == 0)
			L.nconns++;
		else
			free(a), close(fd);
		pthread_mutex_unlock(&L.mu);
	}
	return NULL;
}

static int listener_start(void **state)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);

	(void)state;
	memset(&L, 0, sizeof(L));
	pthread_mutex_init(&L.mu, NULL);
	L.fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (L.fd < 0 || bind(L.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(L.fd, 64) < 0 ||
	    getsockname(L.fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	L.port = ntohs(sa.sin_port);
	return pthread_create(&L.thread, NULL, accept_main, NULL) == 0 ? 0 : -1;
}

static int listener_stop(void **state)
{
	(void)state;
	atomic_store(&L.stop, 1);
	pthread_join(L.thread, NULL);
	for (int i = 0; i < L.nconns; i++)
		pthread_join(L.conns[i], NULL);
	close(L.fd);
	for (int i = 0; i < L.nreqs; i++) {
		free(L.reqs[i].head);
		free(L.reqs[i].body);
	}
	pthread_mutex_destroy(&L.mu);
	tu_alloc_reset();
	return 0;
}

static void script(const canned *c, int n)
{
	pthread_mutex_lock(&L.mu);
	for (int i = 0; i < n && L.nscript < MAX_SCRIPT; i++)
		L.script[L.nscript++] = c[i];
	pthread_mutex_unlock(&L.mu);
}

#define SCRIPT(...)                                                              \
	script((const canned[]){__VA_ARGS__},                                     \
		(int)(sizeof((const canned[]){__VA_ARGS__}) / sizeof(canned)))

static int nreqs(void)
{
	int n;

	pthread_mutex_lock(&L.mu);
	n = L.nreqs;
	pthread_mutex_unlock(&L.mu);
	return n;
}

static char url_buf[4][512];

/* A URL on the listener, in one of four rotating static buffers. */
static const char *url(const char *path)
{
	static int i;
	char *u = url_buf[i++ % 4];

	snprintf(u, 512, "http://127.0.0.1:%d%s", L.port, path);
	return u;
}

/* ---- an observer that records what it is told ---- */

typedef struct obs_log {
	int begins, ends, retries;
	int resend[16];
	long status[16];
	const char *error_type[16];
	long delay[16];
	char url[16][256];
	char host[64];
	int port;
	int tokens_ok;
	const char *add_header;
	int no_headers; /* attempts begun without room for headers */
} obs_log;

static void obs_begin(void **token, const dtn__http_attempt *a, dtn__strv *headers, void *payload)
{
	obs_log *o = payload;

	if (o->begins < 16) {
		o->resend[o->begins] = a->resend_count;
		snprintf(o->url[o->begins], sizeof(o->url[0]), "%s", a->url);
	}
	snprintf(o->host, sizeof(o->host), "%s", a->host);
	o->port = a->port;
	o->begins++;
	*token = o;
	if (o->add_header && headers)
		dtn__strv_push(headers, o->add_header);
	o->no_headers += !headers;
}

static void obs_end(void *token, const dtn__http_attempt *a, void *payload)
{
	obs_log *o = payload;

	if (token == o)
		o->tokens_ok++;
	if (o->ends < 16) {
		o->status[o->ends] = a->status;
		o->error_type[o->ends] = a->error_type ? strdup(a->error_type) : NULL;
	}
	o->ends++;
}

static void obs_retry(const dtn__http_attempt *a, long delay_ms, void *payload)
{
	obs_log *o = payload;

	(void)a;
	if (o->retries < 16)
		o->delay[o->retries] = delay_ms;
	o->retries++;
}

static void obs_free(obs_log *o)
{
	for (int i = 0; i < 16 && i < o->ends; i++)
		free((void *)o->error_type[i]);
}

static dtn__http *client(obs_log *o, const volatile int *cancel)
{
	static dtn__http_observer obs;
	dtn__http *h = NULL;
	dtn__http_opts opts = {.version = 1, .backoff_ms = 1, .backoff_max_ms = 50,
		.cancel = cancel};

	obs = (dtn__http_observer){obs_begin, obs_end, obs_retry, o};
	if (o)
		opts.observer = &obs;
	assert_int_equal(dtn__http_new(&h, &opts), 0);
	return h;
}

static int get(dtn__http *h, const char *path, dtn__http_response *r, dtn_error *err)
{
	return dtn__http_do(h, &(dtn__http_request){.method = "GET", .url = url(path)}, r, err);
}

/* ---- tests ---- */

static void test_core_http__get(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};

	(void)state;
	SCRIPT({REPLY, 200, "X-Thing: one\r\nContent-Type: application/json\r\n", "{\"a\":1}", 0});
	assert_int_equal(get(h, "/api/x?q=1", &r, &err), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 1);
	assert_string_equal(r.body.data, "{\"a\":1}");
	assert_string_equal(dtn__http_response_header(&r, "x-thing"), "one");
	assert_string_equal(dtn__http_response_header(&r, "Content-Type"), "application/json");
	assert_null(dtn__http_response_header(&r, "X-Missing"));
	assert_int_equal(nreqs(), 1);
	assert_string_equal(L.reqs[0].method, "GET");
	assert_string_equal(L.reqs[0].target, "/api/x?q=1");
	assert_non_null(strstr(L.reqs[0].head, "User-Agent: dtn-build/" DTN_VERSION "\r\n"));
	assert_null(find_header(L.reqs[0].head, "Expect"));
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* Requests one after the other share one connection. */
static void test_core_http__keeps_connection(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(h, "/a", &r, NULL), 0);
		assert_int_equal(r.status, 200);
	}
	assert_int_equal(nreqs(), 3);
	assert_int_equal(L.reqs[0].conn, 0);
	assert_int_equal(L.reqs[1].conn, 0);
	assert_int_equal(L.reqs[2].conn, 0);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

static void test_core_http__post_body_and_headers(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	const char *hdrs[] = {"Content-Type: application/json", "Accept: application/json",
		"X-Daytona-Source: dtn-build", NULL};
	dtn__http_request req = {.method = "POST", .url = url("/api/snapshots"), .headers = hdrs,
		.body = "{\"name\":\"x\"}", .body_len = 12};

	(void)state;
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_int_equal(nreqs(), 1);
	assert_string_equal(L.reqs[0].method, "POST");
	assert_string_equal(L.reqs[0].body, "{\"name\":\"x\"}");
	assert_string_equal(header_value(L.reqs[0].head, "Content-Type"), "application/json");
	assert_string_equal(header_value(L.reqs[0].head, "Accept"), "application/json");
	assert_string_equal(header_value(L.reqs[0].head, "X-Daytona-Source"), "dtn-build");
	assert_string_equal(header_value(L.reqs[0].head, "Content-Length"), "12");
	/* A POST without a body or content type is sent with neither. */
	req.headers = NULL;
	req.body = NULL;
	req.body_len = 0;
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_null(find_header(L.reqs[1].head, "Content-Type"));
	assert_string_equal(header_value(L.reqs[1].head, "Content-Length"), "0");
	/* Other methods. */
	req.method = "DELETE";
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_string_equal(L.reqs[2].method, "DELETE");
	req.method = "HEAD";
	SCRIPT({REPLY, 200, NULL, "", 0}, {REPLY, 200, NULL, "", 0}, {REPLY, 200, NULL, "", 0});
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_string_equal(L.reqs[3].method, "HEAD");
	req.method = "PATCH";
	req.body = "x";
	req.body_len = 1;
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_string_equal(L.reqs[4].method, "PATCH");
	assert_string_equal(L.reqs[4].body, "x");
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* A closed port: retried, then reported with the URL but not its query or credentials. */
static void test_core_http__connection_refused(void **state)
{
	obs_log o = {0};
	dtn__http *h = client(&o, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	char want[256];
	int port;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	char u[256];

	(void)state;
	/* A port that was just free: bound, never listened on. */
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	snprintf(u, sizeof(u), "http://user:hunter2@127.0.0.1:%d/api/snapshots?token=s3cr3t", port);
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "POST", .url = u}, &r, &err),
		DTN_ECONNECT);
	close(fd);
	snprintf(want, sizeof(want),
		"could not connect to http://127.0.0.1:%d/api/snapshots after 4 attempts: "
		"Connection refused", port);
	assert_string_equal(err.message, want);
	assert_int_equal(err.code, DTN_ECONNECT);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.attempts, 4);
	assert_int_equal(o.begins, 4);
	assert_int_equal(o.ends, 4);
	assert_int_equal(o.retries, 3);
	assert_int_equal(o.tokens_ok, 4);
	assert_string_equal(o.error_type[0], "connection_refused");
	assert_int_equal(o.resend[3], 3);
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/api/snapshots", port);
	assert_string_equal(o.url[0], want);
	assert_string_equal(o.host, "127.0.0.1");
	assert_int_equal(o.port, port);
	/* Exponential: 1, 2, 4 ms plus up to a quarter. */
	assert_in_range(o.delay[0], 1, 1);
	assert_in_range(o.delay[1], 2, 2);
	assert_in_range(o.delay[2], 4, 5);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

static void test_core_http__retries_503_then_ok(void **state)
{
	obs_log o = {0};
	dtn__http *h = client(&o, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;

	(void)state;
	SCRIPT({REPLY, 503, NULL, "busy", 0}, {REPLY, 502, NULL, "bad", 0},
		{REPLY, 504, NULL, "slow", 0}, {REPLY, 200, NULL, "fine", 0});
	assert_int_equal(get(h, "/api/snapshots/x", &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 4);
	assert_string_equal(r.body.data, "fine");
	assert_int_equal(o.retries, 3);
	assert_int_equal(o.status[0], 503);
	assert_string_equal(o.error_type[0], "503");
	assert_string_equal(o.error_type[1], "502");
	assert_null(o.error_type[3]);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

/* A 500 is final, unless the request asks for it to be retried (S3). */
static void test_core_http__500_retried_only_when_asked(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn__http_request req = {.method = "GET", .url = url("/x")};

	(void)state;
	SCRIPT({REPLY, 500, NULL, "oops", 0}, {REPLY, 500, NULL, "oops", 0},
		{REPLY, 200, NULL, "fine", 0});
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_int_equal(r.status, 500);
	assert_int_equal(r.attempts, 1);
	req.retry_500 = true;
	assert_int_equal(dtn__http_do(h, &req, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* After max_attempts the last answer is returned for the caller to judge. */
static void test_core_http__retries_exhausted(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;

	(void)state;
	SCRIPT({REPLY, 503, NULL, "1", 0}, {REPLY, 503, NULL, "2", 0}, {REPLY, 503, NULL, "3", 0},
		{REPLY, 503, NULL, "4", 0}, {REPLY, 200, NULL, "5", 0});
	assert_int_equal(get(h, "/x", &r, NULL), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 4);
	assert_string_equal(r.body.data, "4");
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* POST is not retried on 503 or a dropped connection unless the caller says it may be. */
static void test_core_http__post_not_retried(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	dtn__http_request req = {.method = "POST", .url = url("/api/snapshots?x=1"), .body = "{}",
		.body_len = 2};

	(void)state;
	/* The drop comes on a fresh connection: libcurl itself sends a request again once when a
	 * kept-alive connection turns out to be closed. */
	SCRIPT({REPLY, 503, "Connection: close\r\n", "busy", 0}, {DROP, 0, NULL, NULL, 0},
		{REPLY, 503, NULL, "busy", 0}, {REPLY, 201, NULL, "made", 0});
	assert_int_equal(dtn__http_do(h, &req, &r, &err), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(dtn__http_do(h, &req, &r, &err), DTN_ECONNECT);
	assert_int_equal(r.attempts, 1);
	assert_non_null(strstr(err.message, "POST http://127.0.0.1:"));
	assert_non_null(strstr(err.message, "/api/snapshots: the connection broke (1 attempt): "));
	assert_null(strstr(err.message, "x=1"));
	req.idempotent = 1;
	assert_int_equal(dtn__http_do(h, &req, &r, &err), 0);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.attempts, 2);
	/* -1: never, not even a GET. */
	SCRIPT({REPLY, 503, NULL, "busy", 0});
	req.method = "GET";
	req.body = NULL;
	req.body_len = 0;
	req.idempotent = -1;
	assert_int_equal(dtn__http_do(h, &req, &r, &err), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 1);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

static void test_core_http__dropped_get_retried(void **state)
{
	obs_log o = {0};
	dtn__http *h = client(&o, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;

	(void)state;
	SCRIPT({DROP, 0, NULL, NULL, 0}, {REPLY, 200, NULL, "back", 0});
	assert_int_equal(get(h, "/api/snapshots/x", &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "back");
	assert_int_equal(r.attempts, 2);
	assert_string_equal(o.error_type[0], "_OTHER");
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

/*
 * 429: the longest Retry-After(-name) is waited for, even beyond backoff_max_ms, and a retry
 * never starts sooner: when the server asks for more than retry_after_max_ms, its 429 is the
 * answer. A 429 is retried whatever the method (the request was refused, not run).
 */
static void test_core_http__retry_after(void **state)
{
	obs_log o = {0};
	dtn__http *h;
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn__http_observer obs = {obs_begin, obs_end, obs_retry, &o};
	int64_t t0;

	(void)state;
	assert_int_equal(dtn__http_new(&h, &(dtn__http_opts){.version = 1, .backoff_ms = 1,
		.backoff_max_ms = 10, .retry_after_max_ms = 1500, .observer = &obs}), 0);
	SCRIPT({REPLY, 429, "Retry-After-authenticated: 1\r\nX-RateLimit-Remaining: 0\r\n",
			"slow down", 0},
		{REPLY, 429, "Retry-After: 0\r\nRetry-After-sandbox-create: 7\r\n", "slow", 0});
	t0 = dtn__http_now_ms();
	assert_int_equal(get(h, "/api/snapshots", &r, NULL), 0);
	assert_true(dtn__http_now_ms() - t0 >= 1000);
	assert_int_equal(r.status, 429);
	assert_string_equal(r.body.data, "slow");
	assert_int_equal(r.attempts, 2);
	assert_int_equal(o.retries, 1);
	assert_int_equal(o.delay[0], 1000); /* asked for 1 s: more than backoff_max_ms */
	dtn__http_response_clear(&r);

	/* a POST refused with 429 is sent again once the wait is over; a 503 one is not */
	SCRIPT({REPLY, 429, "Retry-After-sandbox-create: 1\r\n", "later", 0},
		{REPLY, 200, NULL, "made", 0}, {REPLY, 503, NULL, "busy", 0},
		{REPLY, 200, NULL, "made", 0});
	t0 = dtn__http_now_ms();
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "POST",
		.url = url("/api/sandbox"), .body = "{}", .body_len = 2}, &r, NULL), 0);
	assert_true(dtn__http_now_ms() - t0 >= 1000);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);
	assert_int_equal(o.delay[1], 1000);
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "POST",
		.url = url("/api/sandbox"), .body = "{}", .body_len = 2}, &r, NULL), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 1);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

static void test_core_http__timeout(void **state)
{
	dtn__http *h;
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};

	(void)state;
	assert_int_equal(dtn__http_new(&h, &(dtn__http_opts){.version = 1, .max_attempts = 2,
		.backoff_ms = 1, .timeout_ms = 200}), 0);
	SCRIPT({REPLY, 200, NULL, "late", 3000}, {REPLY, 200, NULL, "late", 3000});
	assert_int_equal(get(h, "/api/slow?k=v", &r, &err), DTN_ETIMEOUT);
	assert_int_equal(r.attempts, 2);
	assert_non_null(strstr(err.message, "/api/slow timed out after 200 ms (2 attempts)"));
	assert_null(strstr(err.message, "k=v"));
	/* The request's own timeout wins; POST is not retried. */
	SCRIPT({REPLY, 200, NULL, "late", 3000});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "POST", .url = url("/p"),
		.timeout_ms = 100}, &r, &err), DTN_ETIMEOUT);
	assert_int_equal(r.attempts, 1);
	assert_non_null(strstr(err.message, "timed out after 100 ms (1 attempt)"));
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* An overall deadline cuts an attempt short and forbids retries that would begin after it. */
static void test_core_http__deadline(void **state)
{
	dtn__http *h;
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};

	(void)state;
	assert_int_equal(dtn__http_new(&h, &(dtn__http_opts){.version = 1, .backoff_ms = 1,
		.backoff_max_ms = 1500, .timeout_ms = 5000}), 0);
	/* The server asks for a 1 s wait; the deadline is sooner, so the 503 is the answer. */
	SCRIPT({REPLY, 503, "Retry-After: 1\r\n", "busy", 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "GET", .url = url("/d"),
		.deadline_ms = dtn__http_now_ms() + 300}, &r, &err), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 1);
	dtn__http_response_clear(&r);
	/* A reply slower than the deadline: one attempt, cut at the deadline, not at 5 s. */
	SCRIPT({REPLY, 200, NULL, "late", 3000});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "GET", .url = url("/d"),
		.deadline_ms = dtn__http_now_ms() + 150}, &r, &err), DTN_ETIMEOUT);
	assert_int_equal(r.attempts, 1);
	assert_true(r.deadline_hit);
	dtn__http_response_clear(&r);
	/* A POST that timed out on a kept-alive connection was sent: it is never sent again. */
	SCRIPT({REPLY, 200, NULL, "fast", 0}, {REPLY, 200, NULL, "late", 3000},
		{REPLY, 200, NULL, "again", 0});
	assert_int_equal(get(h, "/d", &r, NULL), 0);
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "POST", .url = url("/p"),
		.timeout_ms = 100}, &r, &err), DTN_ETIMEOUT);
	assert_int_equal(r.attempts, 1);
	assert_false(r.deadline_hit);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

typedef struct sink {
	dtn__buf got;
	int calls;
	int stop_after;           /* non-zero: return 1 on that call */
	volatile int *cancel_on;  /* set on the first call */
} sink;

static int sink_data(const char *data, size_t len, void *payload)
{
	sink *s = payload;

	s->calls++;
	dtn__buf_add(&s->got, data, len);
	if (s->cancel_on)
		*s->cancel_on = 1;
	return s->stop_after && s->calls >= s->stop_after;
}

static void test_core_http__streams_2xx(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	sink s = {DTN__BUF_INIT, 0, 0, NULL};
	const char *text = "line one\nline two\nline three, which is a little longer\n";

	(void)state;
	SCRIPT({CHUNKED, 200, NULL, text, 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url("/logs"), .timeout_ms = -1,
		.on_data = sink_data, .payload = &s}, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(dtn__buf_cstr(&s.got), text);
	assert_int_equal(r.body.len, 0);
	dtn__buf_free(&s.got);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* An error answer is not streamed: it is collected, at most 64 KiB of it. */
static void test_core_http__error_body_collected(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	sink s = {DTN__BUF_INIT, 0, 0, NULL};
	/* static: the listener may still be sending it after the client has stopped reading */
	static char big[100001];

	(void)state;
	memset(big, 'e', 100000);
	big[100000] = '\0';
	SCRIPT({REPLY, 404, NULL, "{\"statusCode\":404,\"message\":\"no logs\"}", 0},
		{REPLY, 400, NULL, big, 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url("/logs"),
		.on_data = sink_data, .payload = &s}, &r, NULL), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(s.calls, 0);
	assert_string_equal(r.body.data, "{\"statusCode\":404,\"message\":\"no logs\"}");
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url("/logs"),
		.on_data = sink_data, .payload = &s}, &r, NULL), 0);
	assert_int_equal(r.status, 400);
	assert_int_equal(r.body.len, 64 * 1024);
	assert_int_equal(s.calls, 0);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

static void test_core_http__callback_stops(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	sink s = {DTN__BUF_INIT, 0, 1, NULL};

	(void)state;
	SCRIPT({CHUNKED, 200, NULL, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url("/logs"),
		.on_data = sink_data, .payload = &s}, &r, &err), DTN_EUSER);
	assert_int_equal(s.calls, 1);
	assert_int_equal(r.attempts, 1);
	assert_non_null(strstr(err.message, "was stopped by a callback"));
	dtn__buf_free(&s.got);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* A stream that goes quiet ends with a timeout; what was delivered is not asked for again. */
static void test_core_http__idle_timeout(void **state)
{
	obs_log o = {0};
	dtn__http *h = client(&o, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	sink s = {DTN__BUF_INIT, 0, 0, NULL};

	(void)state;
	SCRIPT({STALL, 200, NULL, "first bytes", 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url("/logs?follow=true"),
		.timeout_ms = -1, .idle_timeout_ms = 300, .on_data = sink_data, .payload = &s}, &r,
		&err), DTN_ETIMEOUT);
	assert_string_equal(dtn__buf_cstr(&s.got), "first bytes");
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(err.message, "/logs: nothing received for 300 ms (1 attempt)"));
	assert_int_equal(o.ends, 1);
	assert_string_equal(o.error_type[0], "timeout");
	dtn__buf_free(&s.got);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

/* The cancel flag stops a running stream and a pending retry, and prevents a new request. */
static void test_core_http__cancel(void **state)
{
	volatile int cancel = 0;
	obs_log o = {0};
	dtn__http *h = client(&o, &cancel);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	sink s = {DTN__BUF_INIT, 0, 0, &cancel};

	(void)state;
	SCRIPT({STALL, 200, NULL, "some", 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = url("/logs?x"),
		.timeout_ms = -1, .on_data = sink_data, .payload = &s}, &r, &err), DTN_EINTR);
	assert_non_null(strstr(err.message, "/logs was interrupted"));
	assert_int_equal(o.ends, 1);
	assert_string_equal(o.error_type[0], "cancelled");
	/* Already set: nothing is sent. */
	assert_int_equal(get(h, "/never", &r, &err), DTN_EINTR);
	assert_int_equal(nreqs(), 1);
	assert_int_equal(o.begins, 1);
	/* A clean-up request goes out all the same. */
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "DELETE",
		.url = url("/cleanup"), .ignore_cancel = true}, &r, &err), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(nreqs(), 2);
	dtn__buf_free(&s.got);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

typedef struct body_src {
	const char *data;
	size_t len, off;
	size_t piece;
	int rewinds;
	bool fail;
} body_src;

static size_t src_read(char *buf, size_t len, void *payload)
{
	body_src *b = payload;
	size_t n = b->len - b->off;

	if (b->fail)
		return (size_t)-1;
	if (n > len)
		n = len;
	if (n > b->piece)
		n = b->piece;
	memcpy(buf, b->data + b->off, n);
	b->off += n;
	return n;
}

static int src_rewind(void *payload)
{
	body_src *b = payload;

	b->off = 0;
	b->rewinds++;
	return 0;
}

static void test_core_http__streamed_upload(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};
	size_t len = 3 * 1024 * 1024 + 17;
	char *data = malloc(len);
	body_src b = {data, len, 0, 100000, 0, false};
	dtn__http_request req = {.method = "PUT", .url = url("/bucket/key"), .read = src_read,
		.rewind = src_rewind, .body_size = -1, .payload = &b};

	(void)state;
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 1000);
	/* Chunked, answered 503 first: sent again from the start. */
	SCRIPT({REPLY, 503, NULL, "busy", 0}, {REPLY, 200, NULL, "stored", 0});
	assert_int_equal(dtn__http_do(h, &req, &r, &err), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);
	assert_int_equal(b.rewinds, 1);
	assert_int_equal(nreqs(), 2);
	assert_string_equal(header_value(L.reqs[1].head, "Transfer-Encoding"), "chunked");
	assert_int_equal(L.reqs[1].body_len, len);
	assert_memory_equal(L.reqs[1].body, data, len);
	/* Known size: Content-Length; POST through a read callback. */
	b.off = 0;
	req.body_size = (int64_t)len;
	req.method = "POST";
	assert_int_equal(dtn__http_do(h, &req, &r, &err), 0);
	assert_int_equal(nreqs(), 3);
	assert_string_equal(L.reqs[2].method, "POST");
	assert_int_equal(strtoul(find_header(L.reqs[2].head, "Content-Length"), NULL, 10), len);
	assert_memory_equal(L.reqs[2].body, data, len);
	/* Without rewind a streamed body is not sent twice. */
	SCRIPT({REPLY, 503, NULL, "busy", 0});
	b.off = 0;
	req.method = "PUT";
	req.rewind = NULL;
	assert_int_equal(dtn__http_do(h, &req, &r, &err), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 1);
	/* The read callback fails. */
	b.fail = true;
	assert_int_equal(dtn__http_do(h, &req, &r, &err), DTN_EUSER);
	free(data);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/*
 * A SigV4-signed request takes no headers from the observer (libcurl would sign them), but is
 * still observed.
 */
static void test_core_http__signed_request_no_observer_headers(void **state)
{
	obs_log o = {.add_header = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};
	dtn__http *h = client(&o, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};

	(void)state;
	SCRIPT({REPLY, 200, NULL, "", 0});
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.method = "GET", .url = url("/b/"),
			 .sigv4 = "aws:amz:us-east-1:s3", .sigv4_user = "AKID:secret"}, &r, &err), 0);
	assert_int_equal(nreqs(), 1);
	assert_null(header_value(L.reqs[0].head, "traceparent"));
	assert_non_null(strstr(L.reqs[0].head, "AWS4-HMAC-SHA256"));
	assert_int_equal(o.begins, 1);
	assert_int_equal(o.no_headers, 1);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

/* The observer's headers go out with the request; the observer sees the URL without query. */
static void test_core_http__observer_headers(void **state)
{
	obs_log o = {.add_header = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};
	dtn__http *h = client(&o, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	char want[256];

	(void)state;
	SCRIPT({REPLY, 503, NULL, "", 0}, {REPLY, 200, NULL, "", 0});
	assert_int_equal(get(h, "/api/snapshots?page=2#frag", &r, NULL), 0);
	assert_int_equal(nreqs(), 2);
	for (int i = 0; i < 2; i++)
		assert_string_equal(header_value(L.reqs[i].head, "traceparent"),
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/api/snapshots", L.port);
	assert_string_equal(o.url[0], want);
	assert_int_equal(o.resend[0], 0);
	assert_int_equal(o.resend[1], 1);
	assert_int_equal(o.status[0], 503);
	assert_int_equal(o.status[1], 200);
	dtn__http_response_clear(&r);
	obs_free(&o);
	dtn__http_free(h);
}

/* Several requests in flight: each comes back once with its own response. */
static void test_core_http__batch(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_batch *b;
	dtn__http_response r[4] = {DTN__HTTP_RESPONSE_INIT, DTN__HTTP_RESPONSE_INIT,
		DTN__HTTP_RESPONSE_INIT, DTN__HTTP_RESPONSE_INIT};
	const char *bodies[4] = {"zero", "one", "two", "three"};
	int seen_tag[4] = {0};
	void *tag;
	int result, done = 0;
	dtn_error err = {0};
	char paths[4][32];

	(void)state;
	/* The first answer is slow, so the others are in flight at the same time. */
	SCRIPT({REPLY, 200, NULL, "a", 300}, {REPLY, 200, NULL, "b", 0}, {REPLY, 200, NULL, "c", 0},
		{REPLY, 200, NULL, "d", 0});
	assert_int_equal(dtn__http_batch_new(&b, h), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/part/%d", i);
		assert_int_equal(dtn__http_batch_add(b, &(dtn__http_request){.method = "PUT",
			.url = url(paths[i]), .body = bodies[i], .body_len = strlen(bodies[i])}, &r[i],
			(void *)(intptr_t)i, &err), 0);
	}
	assert_int_equal(dtn__http_batch_pending(b), 4);
	while (dtn__http_batch_pending(b) > 0) {
		if (!dtn__http_batch_next(b, -1, &tag, &result, &err))
			continue;
		assert_int_equal(result, 0);
		seen_tag[(intptr_t)tag]++;
		done++;
	}
	assert_int_equal(done, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(seen_tag[i], 1);
		assert_int_equal(r[i].status, 200);
	}
	assert_int_equal(nreqs(), 4);
	/* More than one connection was used. */
	pthread_mutex_lock(&L.mu);
	assert_true(L.nconns > 1);
	pthread_mutex_unlock(&L.mu);
	for (int i = 0; i < 4; i++) {
		bool found = false;
		for (int j = 0; j < 4; j++)
			if (!strcmp(L.reqs[j].target, paths[i]))
				found = !strcmp(L.reqs[j].body, bodies[i]);
		assert_true(found);
	}
	/* An empty batch returns at once; freeing one with requests in flight stops them. */
	assert_int_equal(dtn__http_batch_next(b, -1, &tag, &result, &err), 0);
	SCRIPT({STALL, 200, NULL, "x", 0});
	assert_int_equal(dtn__http_batch_add(b, &(dtn__http_request){.url = url("/stall")}, &r[0],
		NULL, &err), 0);
	assert_int_equal(dtn__http_batch_next(b, 100, &tag, &result, &err), 0);
	dtn__http_batch_free(b);
	for (int i = 0; i < 4; i++)
		dtn__http_response_clear(&r[i]);
	dtn__http_free(h);
}

static void test_core_http__helpers(void **state)
{
	char *s;

	(void)state;
	s = dtn__http_escape("org/abc def/~x-y_z.tar+=&?%");
	assert_string_equal(s, "org%2Fabc%20def%2F~x-y_z.tar%2B%3D%26%3F%25");
	dtn__free(s);
	s = dtn__http_escape_path("org/ab c/\xc3\xa9.tar");
	assert_string_equal(s, "org/ab%20c/%C3%A9.tar");
	dtn__free(s);
	s = dtn__http_escape("");
	assert_string_equal(s, "");
	dtn__free(s);
	s = dtn__http_redact_url("https://key:secret@s3.example.com:9000/b/k?X-Amz-Signature=abc#f");
	assert_string_equal(s, "https://s3.example.com:9000/b/k");
	dtn__free(s);
	s = dtn__http_redact_url("http://h/p#frag?not-a-query");
	assert_string_equal(s, "http://h/p");
	dtn__free(s);
	s = dtn__http_redact_url("http://a@b@host?q");
	assert_string_equal(s, "http://host");
	dtn__free(s);
}

/* A scheme other than http(s) is refused; a malformed URL is EINVAL. */
static void test_core_http__bad_urls(void **state)
{
	dtn__http *h = client(NULL, NULL);
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error err = {0};

	(void)state;
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = "ftp://127.0.0.1/x"}, &r,
		&err), DTN_ERROR);
	assert_non_null(strstr(err.message, "GET ftp://127.0.0.1/x failed: "));
	assert_int_equal(dtn__http_do(h, &(dtn__http_request){.url = "http://[::1"}, &r, &err),
		DTN_EINVAL);
	dtn__http_response_clear(&r);
	dtn__http_free(h);
}

/* Every allocation failing in turn: an error or success, never a crash or leak. */
static void test_core_http__allocation_failures(void **state)
{
	obs_log o = {.add_header = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};
	long n;
	bool succeeded = false;

	(void)state;
	for (n = 1; n < 200 && !succeeded; n++) {
		dtn__http *h = NULL;
		dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
		dtn__http_batch *b = NULL;
		dtn_error err = {0};
		void *tag;
		int rc, result = 0;
		obs_log fresh = o;
		dtn__http_observer obs = {obs_begin, obs_end, obs_retry, &fresh};

		SCRIPT({REPLY, 503, "X-A: 1\r\nX-B: 2\r\n", "busy", 0},
			{REPLY, 200, "X-A: 1\r\nX-B: 2\r\n", "a body", 0});
		tu_fail_alloc_after(n);
		rc = dtn__http_new(&h, &(dtn__http_opts){.version = 1, .backoff_ms = 1,
			.observer = &obs});
		if (rc == 0)
			rc = dtn__http_batch_new(&b, h);
		if (rc == 0)
			rc = dtn__http_batch_add(b, &(dtn__http_request){.url = url("/a?b")}, &r, NULL,
				&err);
		while (rc == 0 && dtn__http_batch_pending(b) > 0)
			if (dtn__http_batch_next(b, -1, &tag, &result, &err))
				rc = result;
		tu_alloc_reset();
		if (rc == 0) {
			assert_int_equal(r.status, 200);
			assert_string_equal(r.body.data, "a body");
			succeeded = true;
		} else {
			assert_int_equal(rc, DTN_ENOMEM);
		}
		dtn__http_response_clear(&r);
		dtn__http_batch_free(b);
		dtn__http_free(h);
		obs_free(&fresh);
		/* Whatever the script had left is dropped for the next round. */
		pthread_mutex_lock(&L.mu);
		L.next = L.nscript = 0;
		pthread_mutex_unlock(&L.mu);
	}
	assert_true(succeeded);
	assert_true(n > 5);
}

#define T(name) cmocka_unit_test_setup_teardown(name, listener_start, listener_stop)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_core_http__get),
		T(test_core_http__keeps_connection),
		T(test_core_http__post_body_and_headers),
		T(test_core_http__connection_refused),
		T(test_core_http__retries_503_then_ok),
		T(test_core_http__500_retried_only_when_asked),
		T(test_core_http__retries_exhausted),
		T(test_core_http__post_not_retried),
		T(test_core_http__dropped_get_retried),
		T(test_core_http__retry_after),
		T(test_core_http__timeout),
		T(test_core_http__deadline),
		T(test_core_http__streams_2xx),
		T(test_core_http__error_body_collected),
		T(test_core_http__callback_stops),
		T(test_core_http__idle_timeout),
		T(test_core_http__cancel),
		T(test_core_http__streamed_upload),
		T(test_core_http__observer_headers),
		T(test_core_http__signed_request_no_observer_headers),
		T(test_core_http__batch),
		T(test_core_http__helpers),
		T(test_core_http__bad_urls),
		T(test_core_http__allocation_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
