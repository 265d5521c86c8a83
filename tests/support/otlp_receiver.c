/*
 * otlp_receiver.c - the loopback OTLP/HTTP receiver of the tests (see otlp_receiver.h): one
 * thread accepts connections, one thread per connection reads HTTP/1.1 requests with a
 * Content-Length and answers them as the script says.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "otlp_receiver.h"

#define MAX_CONNS 64
#define MAX_REQUESTS 256

typedef struct conn {
	tu_otlp *r;
	int fd;
	pthread_t thread;
} conn;

struct tu_otlp {
	int lfd;
	int stop_pipe[2];
	char url[64];
	char *script;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t arrived;
	conn conns[MAX_CONNS];
	size_t nconns;
	tu_otlp_request reqs[MAX_REQUESTS];
	size_t nreqs;
	bool stopping;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The script's entry for request n (0-based), copied into buf; "" after the script. */
static void entry(const tu_otlp *r, size_t n, char *buf, size_t size)
{
	const char *p = r->script;

	buf[0] = '\0';
	for (size_t i = 0; p && *p; i++) {
		size_t len = strcspn(p, ",");
		if (i == n) {
			snprintf(buf, size, "%.*s", (int)len, p);
			return;
		}
		p += len + (p[len] == ',');
	}
}

/* Reads until the byte sequence end, or until the receiver stops; false on EOF or stop. */
static bool read_more(tu_otlp *r, int fd, char **buf, size_t *len, size_t *cap)
{
	struct pollfd pf[2] = {{fd, POLLIN, 0}, {r->stop_pipe[0], POLLIN, 0}};
	ssize_t n;

	if (poll(pf, 2, -1) <= 0 || pf[1].revents)
		return false;
	if (*len + 65536 > *cap) {
		*cap = (*len + 65536) * 2;
		*buf = realloc(*buf, *cap);
	}
	n = read(fd, *buf + *len, *cap - *len - 1);
	if (n <= 0)
		return false;
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return true;
}

static char *gunzip(const char *data, size_t len, size_t *out_len)
{
	z_stream z;
	size_t cap = len * 4 + 1024, n = 0;
	char *out = malloc(cap);
	int rc;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return NULL;
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		if (n + 1 >= cap)
			out = realloc(out, cap *= 2);
		z.next_out = (unsigned char *)out + n;
		z.avail_out = (uInt)(cap - n - 1);
		rc = inflate(&z, Z_NO_FLUSH);
		n = cap - 1 - z.avail_out;
	} while (rc == Z_OK);
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*out_len = n;
	return out;
}

static const char *find_header(const char *headers, const char *name, char *buf, size_t size)
{
	size_t nlen = strlen(name);

	for (const char *p = headers; p && *p;) {
		size_t len = strcspn(p, "\r\n");
		if (len > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			while (*v == ' ')
				v++;
			snprintf(buf, size, "%.*s", (int)(len - (size_t)(v - p)), v);
			return buf;
		}
		p += len;
		p += strspn(p, "\r\n");
	}
	return NULL;
}

const char *tu_otlp_header(const tu_otlp_request *q, const char *name)
{
	static char buf[4096];

	return find_header(q->headers, name, buf, sizeof(buf));
}

static void answer(int fd, int status, int retry_after, const char *body)
{
	char head[512], ra[48] = "";
	const char *reason = status == 200 ? "OK" : status == 429 ? "Too Many Requests" :
			     status == 503 ? "Service Unavailable" : "Error";
	int n;

	if (retry_after >= 0)
		snprintf(ra, sizeof(ra), "Retry-After: %d\r\n", retry_after);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		     "%s\r\n", status, reason, strlen(body), ra);
	if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
		return;
}

/* Handles one request already in buf[0..hlen + clen); returns false to close the connection. */
static bool handle(tu_otlp *r, int fd, const char *buf, size_t hlen, size_t clen)
{
	tu_otlp_request q = {0};
	const char *sp1 = strchr(buf, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	const char *eol = strstr(buf, "\r\n");
	char what[64], hv[64];
	size_t n;
	int status = 200, ra = -1;

	q.method = strndup(buf, sp1 ? (size_t)(sp1 - buf) : 0);
	q.path = strndup(sp1 ? sp1 + 1 : "", sp1 && sp2 ? (size_t)(sp2 - sp1 - 1) : 0);
	q.headers = strndup(eol ? eol + 2 : "", eol ? hlen - (size_t)(eol + 2 - buf) : 0);
	q.gzip = find_header(q.headers, "Content-Encoding", hv, sizeof(hv)) &&
		 strcasecmp(hv, "gzip") == 0;
	if (q.gzip && !(q.body = gunzip(buf + hlen, clen, &q.body_len))) {
		q.body = strdup("(bad gzip)");
		q.body_len = strlen(q.body);
	} else if (!q.gzip) {
		q.body = strndup(buf + hlen, clen);
		q.body_len = clen;
	}
	q.at_ms = now_ms();
	pthread_mutex_lock(&r->lock);
	n = r->nreqs;
	entry(r, n, what, sizeof(what));
	if (!strcmp(what, "drop") || !strcmp(what, "hang"))
		status = 0;
	else if (!strcmp(what, "partial"))
		status = 1;
	else if (what[0])
		sscanf(what, "%d:%d", &status, &ra);
	q.answered = status == 1 ? 200 : status;
	if (n < MAX_REQUESTS)
		r->reqs[r->nreqs++] = q;
	pthread_cond_broadcast(&r->arrived);
	pthread_mutex_unlock(&r->lock);
	if (!strcmp(what, "drop"))
		return false;
	if (!strcmp(what, "hang")) {
		struct pollfd pf = {r->stop_pipe[0], POLLIN, 0};
		poll(&pf, 1, -1);
		return false;
	}
	if (status == 1)
		answer(fd, 200, -1, "{\"partialSuccess\":{\"rejectedSpans\":\"1\","
				    "\"errorMessage\":\"one span was rejected\"}}");
	else
		answer(fd, status, ra, status == 200 ? "{}" : "{\"code\":14,\"message\":\"busy\"}");
	return true;
}

static void *serve(void *arg)
{
	conn *c = arg;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		char *end, cl[32];
		size_t hlen, clen;

		while (!(end = buf ? strstr(buf, "\r\n\r\n") : NULL))
			if (!read_more(c->r, c->fd, &buf, &len, &cap))
				goto out;
		hlen = (size_t)(end + 4 - buf);
		end[2] = '\0'; /* the headers alone, for the lookup */
		clen = find_header(strstr(buf, "\r\n") ? strstr(buf, "\r\n") + 2 : buf,
				   "Content-Length", cl, sizeof(cl)) ? strtoul(cl, NULL, 10) : 0;
		end[2] = '\r';
		while (len < hlen + clen)
			if (!read_more(c->r, c->fd, &buf, &len, &cap))
				goto out;
		if (!handle(c->r, c->fd, buf, hlen, clen))
			goto out;
		memmove(buf, buf + hlen + clen, len - hlen - clen + 1);
		len -= hlen + clen;
	}
out:
	free(buf);
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void *acceptor(void *arg)
{
	tu_otlp *r = arg;

	for (;;) {
		struct pollfd pf[2] = {{r->lfd, POLLIN, 0}, {r->stop_pipe[0], POLLIN, 0}};
		int fd;

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!pf[0].revents || (fd = accept(r->lfd, NULL, NULL)) < 0)
			continue;
		pthread_mutex_lock(&r->lock);
		if (r->nconns == MAX_CONNS) {
			pthread_mutex_unlock(&r->lock);
			close(fd);
			continue;
		}
		r->conns[r->nconns] = (conn){r, fd, 0};
		pthread_create(&r->conns[r->nconns].thread, NULL, serve, &r->conns[r->nconns]);
		r->nconns++;
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

tu_otlp *tu_otlp_start(const char *script)
{
	tu_otlp *r = calloc(1, sizeof(*r));
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int one = 1;

	if (!r)
		abort();
	r->script = strdup(script ? script : "");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(r->lfd, 16) < 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&a, &alen) < 0 || pipe(r->stop_pipe) < 0) {
		perror("otlp receiver");
		abort();
	}
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->arrived, NULL);
	pthread_create(&r->acceptor, NULL, acceptor, r);
	return r;
}

const char *tu_otlp_url(const tu_otlp *r)
{
	return r->url;
}

size_t tu_otlp_wait(tu_otlp *r, size_t n, long timeout_ms)
{
	struct timespec until;
	size_t got;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->lock);
	while (r->nreqs < n && pthread_cond_timedwait(&r->arrived, &r->lock, &until) == 0)
		;
	got = r->nreqs;
	pthread_mutex_unlock(&r->lock);
	return got;
}

size_t tu_otlp_count(tu_otlp *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->nreqs;
	pthread_mutex_unlock(&r->lock);
	return n;
}

const tu_otlp_request *tu_otlp_get(tu_otlp *r, size_t i)
{
	const tu_otlp_request *q;

	pthread_mutex_lock(&r->lock);
	q = i < r->nreqs ? &r->reqs[i] : NULL;
	pthread_mutex_unlock(&r->lock);
	return q;
}

void tu_otlp_stop(tu_otlp *r)
{
	if (!r)
		return;
	if (write(r->stop_pipe[1], "x", 1) < 0)
		abort();
	pthread_join(r->acceptor, NULL);
	for (size_t i = 0; i < r->nconns; i++) {
		pthread_join(r->conns[i].thread, NULL);
		close(r->conns[i].fd);
	}
	for (size_t i = 0; i < r->nreqs; i++) {
		free(r->reqs[i].method);
		free(r->reqs[i].path);
		free(r->reqs[i].headers);
		free(r->reqs[i].body);
	}
	close(r->lfd);
	close(r->stop_pipe[0]);
	close(r->stop_pipe[1]);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->arrived);
	free(r->script);
	free(r);
}
