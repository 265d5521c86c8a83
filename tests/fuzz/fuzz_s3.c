/*
 * fuzz_s3.c - feeds arbitrary object-storage answers to the S3 client: the ListObjectsV2
 * listing of dtn__s3_exists and the error documents (XML <Error><Code/><Message/>, or anything
 * else) of a listing and of a PutObject.
 *
 * The answers come from a small HTTP server on 127.0.0.1 run by this target on its own thread:
 * each request gets the current input's answer on a kept-alive connection. The first byte picks
 * the request, the next one the status; the rest is the body. The client never retries, so one
 * input is one request. Whatever the answer, the call must end with 0 (a listing) or an error
 * whose message is one line, with neither the secret, nor the session token or any part of it
 * that the answer echoed, nor anything shaped like a signature that the answer held.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
/* STS session tokens run to several hundred characters of base64: made up at start. */
static char token[801];

/* No 204 or 304: their bodies would be left on the connection for the next answer. */
static const long statuses[] = {200, 200, 201, 301, 400, 403, 404, 409, 429, 500, 503, 599};

static struct {
	pthread_mutex_t lock;
	long status;
	char body[8192];
	size_t len;
} answer = {PTHREAD_MUTEX_INITIALIZER, 200, "", 0};

static dtn__http *http;
static dtn__s3 *s3;

/* Reads one request (headers and a Content-Length body); false when the peer left. */
static bool read_request(int fd, char *buf, size_t size)
{
	size_t len = 0, need = 0;
	char *end = NULL;

	for (;;) {
		ssize_t n;

		if (end && len >= need)
			return true;
		if (len == size)
			len = 0; /* a body larger than the buffer: only its length matters */
		if ((n = recv(fd, buf + len, size - len, 0)) <= 0)
			return false;
		len += (size_t)n;
		if (!end && (end = memmem(buf, len, "\r\n\r\n", 4))) {
			const char *cl = memmem(buf, (size_t)(end - buf), "\r\nContent-Length:", 17);

			need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
			if (memmem(buf, (size_t)(end - buf), "\r\nExpect: 100-continue", 22) &&
			    send(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL) < 0)
				return false;
		}
	}
}

static void serve(int fd)
{
	static char req[65536], out[256 + sizeof(answer.body)];
	int one = 1;

	/* one write per answer, sent at once: no wait for a delayed acknowledgement */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (read_request(fd, req, sizeof(req))) {
		size_t n;

		pthread_mutex_lock(&answer.lock);
		n = (size_t)snprintf(out, 256, "HTTP/1.1 %ld Fuzz\r\nContent-Type: application/xml"
				     "\r\nContent-Length: %zu\r\n\r\n", answer.status, answer.len);
		memcpy(out + n, answer.body, answer.len);
		n += answer.len;
		pthread_mutex_unlock(&answer.lock);
		if (send(fd, out, n, MSG_NOSIGNAL) < 0)
			break;
	}
	close(fd);
}

static void *server(void *arg)
{
	int listener = *(int *)arg, fd;

	while ((fd = accept(listener, NULL, NULL)) >= 0)
		serve(fd);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static int listener;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	char url[64];
	pthread_t t;
	dtn_error err;

	(void)argc;
	(void)argv;
	for (uint32_t i = 0, x = 2463534242u; i < sizeof(token) - 1; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		token[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[x % 64];
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((listener = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listener, 4) < 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &alen) < 0 ||
	    pthread_create(&t, NULL, server, &listener) != 0)
		abort();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(addr.sin_port));
	if (dtn__http_new(&http, &(dtn__http_opts){.version = 1, .max_attempts = 1,
						   .timeout_ms = 10000}) < 0 ||
	    dtn__s3_new(&s3, http, &(dtn__push_access){.access_key = (char *)"AKIAFUZZ",
			.secret = (char *)SECRET, .session_token = token,
			.storage_url = url, .organization_id = (char *)"org", .bucket = (char *)"bkt",
			.region = (char *)"eu-west-1"}, &err) < 0)
		abort();
	return 0;
}

/* Whether s shows 64 hex digits in a row that the answer held (a signature, say). */
static bool shows_hex64(const char *s, const uint8_t *body, size_t len)
{
	size_t run = 0;

	for (const char *p = s; *p; p++) {
		run = strchr("0123456789abcdefABCDEF", *p) ? run + 1 : 0;
		if (run >= 64 && memmem(body, len, p - 63, 64))
			return true;
	}
	return false;
}

static size_t count(const char *hay, size_t len, const char *needle, size_t n)
{
	size_t found = 0;
	const char *p = hay, *end = hay + len;

	while (p < end && (p = memmem(p, (size_t)(end - p), needle, n))) {
		found++;
		p++;
	}
	return found;
}

/* No part of the token the answer echoed in full (its first 32 characters, say) is shown. */
static bool shows_token(const char *msg, const uint8_t *body, size_t len)
{
	char start[33];

	memcpy(start, token, 32);
	start[32] = '\0';
	if (!strstr(msg, start))
		return false;
	/* shown because the answer holds it on its own, outside a whole token: not a leak */
	return count((const char *)body, len, start, 32) ==
	       count((const char *)body, len, token, strlen(token));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char payload[] = "0123456789abcdef";
	dtn_error err;
	bool found = true;
	int rc;

	if (size < 2 || size - 2 > sizeof(answer.body))
		return 0;
	pthread_mutex_lock(&answer.lock);
	answer.status = statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))];
	memcpy(answer.body, data + 2, size - 2);
	answer.len = size - 2;
	pthread_mutex_unlock(&answer.lock);
	dtn_error_clear(&err);
	if (data[0] & 1) {
		rc = dtn__s3_put(s3, "org/abc/context.tar", payload, sizeof(payload) - 1, &err);
		found = false;
	} else {
		rc = dtn__s3_exists(s3, "org/abc/", &found, &err);
	}
	if (rc == 0) {
		if (answer.status >= 300)
			__builtin_trap();
		return 0;
	}
	if (rc != err.code || !err.message[0] || found)
		__builtin_trap();
	for (const char *p = err.message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	if (strstr(err.message, SECRET) || shows_hex64(err.message, data + 2, size - 2) ||
	    shows_token(err.message, data + 2, size - 2))
		__builtin_trap();
	return 0;
}
