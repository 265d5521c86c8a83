/*
 * s3.c - path-style S3 requests signed by libcurl's SigV4: ListObjectsV2, PutObject, and a
 * streamed multipart upload whose parts are sent in parallel through an HTTP batch.
 *
 * libcurl 7.88 signs the query string exactly as written and every header line it is given
 * (empty "Name:" lines too), so URLs carry their query already canonical — names sorted,
 * values percent-encoded, "uploads=" rather than "uploads" — and S3 requests always name their
 * Content-Type instead of removing libcurl's default one. The payload hash is ours: libcurl
 * signs the x-amz-content-sha256 header it is given.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "s3.h"

#define MIB ((size_t)1024 * 1024)
#define MIN_PART (5 * MIB)
#define DEFAULT_PART (5 * MIB)
#define MAX_PARTS 10000
#define CLEANUP_TIMEOUT_MS 15000
/* Uploads have no overall limit (a part on a slow link takes what it takes) but must move. */
#define TRANSFER_IDLE_MS 60000
#define OCTET_STREAM "Content-Type: application/octet-stream"

struct dtn__s3 {
	dtn__http *http;
	dtn__push_access pa;
	char region[64];
	char *base;          /* storage URL and escaped bucket, no trailing '/' */
	char *sigv4;         /* "aws:amz:<region>:s3" */
	char *userpwd;       /* "<access key>:<secret>" */
	char *token_header;  /* "x-amz-security-token: ..." */
};

/* The headers of one signed request, kept alive while it runs. */
typedef struct sig_headers {
	char sha[32 + DTN__SHA256_HEX];
	const char *list[4];
} sig_headers;

/* ---- push-access ---- */

static const struct {
	const char *name;
	size_t offset;
	bool required;
} fields[] = {
	{"accessKey", offsetof(dtn__push_access, access_key), true},
	{"secret", offsetof(dtn__push_access, secret), true},
	{"sessionToken", offsetof(dtn__push_access, session_token), true},
	{"storageUrl", offsetof(dtn__push_access, storage_url), true},
	{"organizationId", offsetof(dtn__push_access, organization_id), true},
	{"bucket", offsetof(dtn__push_access, bucket), true},
	{"region", offsetof(dtn__push_access, region), false},
};

void dtn__push_access_clear(dtn__push_access *pa)
{
	if (!pa)
		return;
	dtn__free_secret(pa->secret);
	dtn__free_secret(pa->session_token);
	dtn__free(pa->access_key);
	dtn__free(pa->storage_url);
	dtn__free(pa->organization_id);
	dtn__free(pa->bucket);
	dtn__free(pa->region);
	memset(pa, 0, sizeof(*pa));
}

int dtn__push_access_parse(dtn__push_access *out, const char *json, size_t len, dtn_error *err)
{
	json_error_t jerr;
	json_t *root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	root = json_loadb(json ? json : "", json ? len : 0, 0, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return dtn__error_set(err, DTN_EPROTOCOL,
			"the object-storage push-access answer is not a JSON object");
	}
	for (size_t i = 0; i < DTN__ARRAY_LEN(fields) && rc == 0; i++) {
		json_t *v = json_object_get(root, fields[i].name);
		char **slot = (char **)((char *)out + fields[i].offset);
		const char *s = json_string_value(v);
		if (!v || json_is_null(v) || (!fields[i].required && s && !*s)) {
			if (fields[i].required)
				rc = dtn__error_set(err, DTN_EPROTOCOL,
					"the object-storage push-access answer has no \"%s\"",
					fields[i].name);
			continue;
		}
		if (!s || !*s)
			rc = dtn__error_set(err, DTN_EPROTOCOL,
				"the object-storage push-access field \"%s\" is not a non-empty string",
				fields[i].name);
		else if (!(*slot = dtn__strdup(s)))
			rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	json_decref(root);
	if (rc < 0)
		dtn__push_access_clear(out);
	return rc;
}

/* ---- regions and keys ---- */

/* Whether s looks like an AWS region name: letters, then "-word" parts, ending "-<digits>". */
static bool region_like(const char *s, size_t n)
{
	size_t i = 0, dashes = 0;

	while (i < n && s[i] >= 'a' && s[i] <= 'z')
		i++;
	if (i == 0)
		return false;
	while (i < n && s[i] == '-') {
		size_t start = ++i;
		dashes++;
		while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			i++;
		if (i == start)
			return false;
	}
	return i == n && dashes >= 2 && s[n - 1] >= '0' && s[n - 1] <= '9';
}

static const char *copy_out(char *buf, size_t size, const char *s, size_t n)
{
	snprintf(buf, size, "%.*s", (int)n, s);
	return buf;
}

const char *dtn__s3_region_from_url(const char *url, char *buf, size_t size)
{
	char host[256];
	const char *label[32], *a, *p;
	size_t len[32], n = 0, end;

	buf[0] = '\0';
	a = strstr(url ? url : "", "://");
	a = a ? a + 3 : (url ? url : "");
	p = a + strcspn(a, "/?#");
	for (const char *q = a; q < p; q++)
		if (*q == '@')
			a = q + 1;
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(a, "/?#:"), a);
	for (char *c = host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	for (const char *s = host; *s && n < DTN__ARRAY_LEN(label); n++) {
		label[n] = s;
		len[n] = strcspn(s, ".");
		s += len[n] + (s[len[n]] == '.');
	}
	/* The host must end in amazonaws.com (or amazonaws.com.cn). */
	if (n >= 3 && len[n - 1] == 2 && !strncmp(label[n - 1], "cn", 2))
		n--;
	if (n < 2 || len[n - 1] != 3 || strncmp(label[n - 1], "com", 3) || len[n - 2] != 9 ||
	    strncmp(label[n - 2], "amazonaws", 9))
		return buf;
	end = n - 2;
	for (size_t i = 0; i < end; i++) {
		if (len[i] == 2 && !strncmp(label[i], "s3", 2)) {
			size_t j = i + 1;
			if (j < end && len[j] == 9 && !strncmp(label[j], "dualstack", 9))
				j++;
			if (j == end)
				return copy_out(buf, size, "us-east-1", 9); /* s3.amazonaws.com */
			if (region_like(label[j], len[j]))
				return copy_out(buf, size, label[j], len[j]);
		} else if (len[i] == 10 && !strncmp(label[i], "s3-website", 10)) {
			if (i + 1 < end && region_like(label[i + 1], len[i + 1]))
				return copy_out(buf, size, label[i + 1], len[i + 1]);
		} else if (len[i] > 3 && !strncmp(label[i], "s3-", 3)) {
			const char *r = label[i] + 3;
			size_t rn = len[i] - 3;
			if (rn == 10 && !strncmp(r, "external-1", 10))
				return copy_out(buf, size, "us-east-1", 9);
			if (rn > 8 && !strncmp(r, "website-", 8))
				r += 8, rn -= 8;
			if (region_like(r, rn))
				return copy_out(buf, size, r, rn);
		}
	}
	return buf;
}

const char *dtn__s3_region(const dtn__push_access *pa, char *buf, size_t size)
{
	if (pa->region && *pa->region)
		return copy_out(buf, size, pa->region, strlen(pa->region));
	if (*dtn__s3_region_from_url(pa->storage_url, buf, size))
		return buf;
	return copy_out(buf, size, "us-east-1", 9);
}

char *dtn__s3_context_key(const dtn__push_access *pa, const char *hash)
{
	return dtn__aprintf("%s/%s/context.tar", pa->organization_id, hash);
}

char *dtn__s3_context_prefix(const dtn__push_access *pa, const char *hash)
{
	return dtn__aprintf("%s/%s/", pa->organization_id, hash);
}

/* ---- the client ---- */

static bool region_signable(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return false;
	return true;
}

static int copy_access(dtn__push_access *to, const dtn__push_access *from)
{
	for (size_t i = 0; i < DTN__ARRAY_LEN(fields); i++) {
		const char *s = *(char *const *)((const char *)from + fields[i].offset);
		char **slot = (char **)((char *)to + fields[i].offset);
		if (s && !(*slot = dtn__strdup(s)))
			return DTN_ENOMEM;
	}
	return 0;
}

int dtn__s3_new(dtn__s3 **out, dtn__http *http, const dtn__push_access *pa, dtn_error *err)
{
	dtn__s3 *s3;
	char shown[128], *bucket = NULL;
	size_t ulen;

	*out = NULL;
	if (!pa->storage_url || (strncmp(pa->storage_url, "http://", 7) &&
				 strncmp(pa->storage_url, "https://", 8))) {
		char *u = dtn__http_redact_url(pa->storage_url);
		int rc = dtn__error_set(err, u ? DTN_EINVAL : DTN_ENOMEM,
			"the object storage URL \"%s\" is not an http(s) URL",
			dtn__printable(shown, sizeof(shown), u ? u : ""));
		dtn__free(u);
		return rc;
	}
	if (!(s3 = dtn__calloc(1, sizeof(*s3))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	s3->http = http;
	dtn__s3_region(pa, s3->region, sizeof(s3->region));
	if (!region_signable(s3->region)) {
		dtn__free(s3);
		return dtn__error_set(err, DTN_EPROTOCOL,
			"the object-storage region \"%s\" is not a region name",
			dtn__printable(shown, sizeof(shown), pa->region));
	}
	ulen = strlen(pa->storage_url);
	while (ulen > 0 && pa->storage_url[ulen - 1] == '/')
		ulen--;
	if (copy_access(&s3->pa, pa) < 0 || !(bucket = dtn__http_escape(pa->bucket)) ||
	    !(s3->base = dtn__aprintf("%.*s/%s", (int)ulen, pa->storage_url, bucket)) ||
	    !(s3->sigv4 = dtn__aprintf("aws:amz:%s:s3", s3->region)) ||
	    !(s3->userpwd = dtn__aprintf("%s:%s", pa->access_key, pa->secret)) ||
	    !(s3->token_header = dtn__aprintf("x-amz-security-token: %s", pa->session_token))) {
		dtn__free(bucket);
		dtn__s3_free(s3);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	dtn__free(bucket);
	*out = s3;
	return 0;
}

void dtn__s3_free(dtn__s3 *s3)
{
	if (!s3)
		return;
	dtn__push_access_clear(&s3->pa);
	dtn__free(s3->base);
	dtn__free(s3->sigv4);
	dtn__free_secret(s3->userpwd);
	dtn__free_secret(s3->token_header);
	dtn__free(s3);
}

const char *dtn__s3_region_of(const dtn__s3 *s3)
{
	return s3->region;
}

/* ---- requests and their errors ---- */

static int sign_headers(dtn__s3 *s3, sig_headers *h, const void *body, size_t len,
	const char *content_type)
{
	unsigned char digest[DTN__SHA256_LEN];
	char hex[DTN__SHA256_HEX];
	size_t n = 0;

	if (dtn__sha256_once(digest, body ? body : "", body ? len : 0) < 0)
		return DTN_ERROR;
	dtn__sha256_hex(hex, digest);
	snprintf(h->sha, sizeof(h->sha), "x-amz-content-sha256: %s", hex);
	h->list[n++] = h->sha;
	h->list[n++] = s3->token_header;
	if (content_type)
		h->list[n++] = content_type;
	h->list[n] = NULL;
	return 0;
}

/* Whether p starts a run of 64 hex digits (a signature or a hash). */
static bool hex64_at(const char *p)
{
	for (int i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
		      (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	return true;
}

/*
 * Text from the server made safe for a message: one line, and the secret, the session token
 * and anything shaped like a signature replaced, whatever the server echoed back. The whole
 * text is looked through before it is cut to fit: a token cut short would not be recognised.
 */
static const char *sanitize(const dtn__s3 *s3, char *buf, size_t size, const char *s)
{
	const char *secrets[2] = {s3->pa.secret, s3->pa.session_token};
	size_t n = 0, cap = 4 * strlen(s) + 1; /* a byte is at most "\xNN" */
	char *line = dtn__malloc(cap);

	if (!line) {
		snprintf(buf, size, "(not shown: out of memory)");
		return buf;
	}
	dtn__printable(line, cap, s);
	for (const char *p = line; *p && n + 1 < size;) {
		size_t skip = 0;
		for (int i = 0; i < 2 && !skip; i++)
			if (secrets[i] && *secrets[i] && !strncmp(p, secrets[i], strlen(secrets[i])))
				skip = strlen(secrets[i]);
		if (!skip && hex64_at(p))
			skip = 64;
		if (skip) {
			n += (size_t)snprintf(buf + n, size - n, "[redacted]");
			if (n >= size)
				n = size - 1;
			p += skip;
		} else {
			buf[n++] = *p++;
		}
	}
	buf[n] = '\0';
	dtn__free(line);
	return buf;
}

/* The text of the first <tag>...</tag> with XML entities decoded; *out NULL when absent. */
static int xml_text(char **out, const char *xml, const char *tag)
{
	char open[64], close[64];
	const char *a, *b;
	dtn__buf t = DTN__BUF_INIT;
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};

	*out = NULL;
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if (!xml || !(a = strstr(xml, open)) || !(b = strstr(a += strlen(open), close)))
		return 0;
	dtn__buf_add(&t, "", 0);
	while (a < b) {
		size_t i;
		for (i = 0; i < DTN__ARRAY_LEN(ents); i++)
			if (!strncmp(a, ents[i].ent, strlen(ents[i].ent)))
				break;
		if (i < DTN__ARRAY_LEN(ents)) {
			dtn__buf_putc(&t, ents[i].c);
			a += strlen(ents[i].ent);
		} else {
			dtn__buf_putc(&t, *a++);
		}
	}
	*out = dtn__buf_detach(&t);
	return *out ? 0 : DTN_ENOMEM;
}

static void xml_escape(dtn__buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': dtn__buf_puts(b, "&amp;"); break;
		case '<': dtn__buf_puts(b, "&lt;"); break;
		case '>': dtn__buf_puts(b, "&gt;"); break;
		case '"': dtn__buf_puts(b, "&quot;"); break;
		case '\'': dtn__buf_puts(b, "&apos;"); break;
		default: dtn__buf_putc(b, *s); break;
		}
	}
}

static int code_for(long status, const char *code)
{
	static const char *const auth[] = {"AccessDenied", "ExpiredToken", "InvalidAccessKeyId",
		"InvalidToken", "SignatureDoesNotMatch", "TokenRefreshRequired", "InvalidSecurity"};

	for (size_t i = 0; code && i < DTN__ARRAY_LEN(auth); i++)
		if (!strcmp(code, auth[i]))
			return DTN_EAUTH;
	if (status == 401 || status == 403)
		return DTN_EAUTH;
	if (status == 404 || (code && !strncmp(code, "NoSuch", 6)))
		return DTN_ENOTFOUND;
	if (status == 429 || (code && !strcmp(code, "SlowDown")))
		return DTN_ERATELIMIT;
	return DTN_EHTTP;
}

/* Maps an S3 error answer (XML <Error><Code/><Message/>) to a code and a message. */
static int s3_error(dtn__s3 *s3, const dtn__http_response *r, const char *op, const char *what,
	dtn_error *err)
{
	char *code = NULL, *msg = NULL, a[128], b[512], shown[512];
	int rc;

	if (xml_text(&code, r->body.data, "Code") < 0 || xml_text(&msg, r->body.data, "Message") < 0) {
		dtn__free(code);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	rc = code_for(r->status, code);
	dtn__printable(shown, sizeof(shown), what);
	if (code)
		dtn__error_set(err, rc, "S3 %s %s: %ld %s%s%s", op, shown, r->status,
			sanitize(s3, a, sizeof(a), code), msg && *msg ? ": " : "",
			msg ? sanitize(s3, b, sizeof(b), msg) : "");
	else
		dtn__error_set(err, rc, "S3 %s %s: HTTP %ld%s%.200s", op, shown, r->status,
			r->body.len ? ": " : "", sanitize(s3, b, sizeof(b), dtn__buf_cstr(&r->body)));
	dtn__free(code);
	dtn__free(msg);
	return rc;
}

/* Puts "S3 <op>: " in front of a transport error (whose message names the URL). */
static int transport_error(int rc, const char *op, dtn_error *err)
{
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "S3 %s: ", op);
	dtn__error_prefix(err, prefix);
	return rc;
}

typedef struct s3_call {
	const char *op;           /* "PutObject" */
	const char *method;
	const char *url;
	const char *what;         /* "<bucket>/<key>" for messages */
	const char *content_type; /* a whole header line, or NULL */
	const void *body;
	size_t len;
	bool cleanup;             /* runs even after an interrupt, briefly */
	bool transfer;            /* bulk data: no overall timeout, an idle one */
} s3_call;

static void fill_request(dtn__s3 *s3, const s3_call *c, const sig_headers *h,
	dtn__http_request *req)
{
	*req = (dtn__http_request){
		.method = c->method,
		.url = c->url,
		.headers = h->list,
		.body = c->body,
		.body_len = c->len,
		.idempotent = 1,
		.retry_500 = true, /* S3's InternalError: "Please try again" */
		.sigv4 = s3->sigv4,
		.sigv4_user = s3->userpwd,
		.ignore_cancel = c->cleanup,
		.timeout_ms = c->cleanup ? CLEANUP_TIMEOUT_MS : c->transfer ? -1 : 0,
		.idle_timeout_ms = c->transfer ? TRANSFER_IDLE_MS : 0,
	};
}

/* One request; 0 for a 2xx answer (in *r, cleared by the caller). */
static int s3_do(dtn__s3 *s3, const s3_call *c, dtn__http_response *r, dtn_error *err)
{
	sig_headers h;
	dtn__http_request req;
	int rc;

	if (sign_headers(s3, &h, c->body, c->len, c->content_type) < 0)
		return dtn__error_set(err, DTN_ERROR, "S3 %s: SHA-256 failed", c->op);
	fill_request(s3, c, &h, &req);
	if ((rc = dtn__http_do(s3->http, &req, r, err)) < 0)
		return transport_error(rc, c->op, err);
	if (r->status < 200 || r->status >= 300)
		return s3_error(s3, r, c->op, c->what, err);
	return 0;
}

static char *object_url(dtn__s3 *s3, const char *key)
{
	char *k = dtn__http_escape_path(key), *u;

	u = k ? dtn__aprintf("%s/%s", s3->base, k) : NULL;
	dtn__free(k);
	return u;
}

int dtn__s3_exists(dtn__s3 *s3, const char *prefix, bool *found, dtn_error *err)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	char *esc = dtn__http_escape(prefix), *url = NULL, *what = NULL, *count = NULL;
	int rc;

	*found = false;
	if (!esc || !(url = dtn__aprintf("%s/?list-type=2&max-keys=1&prefix=%s", s3->base, esc)) ||
	    !(what = dtn__aprintf("%s/%s", s3->pa.bucket, prefix))) {
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_do(s3, &(s3_call){"ListObjectsV2", "GET", url, what, NULL, NULL, 0, false, false},
		&r, err);
	if (rc < 0)
		goto out;
	if (!strstr(dtn__buf_cstr(&r.body), "<ListBucketResult")) {
		rc = dtn__error_set(err, DTN_EPROTOCOL, "S3 ListObjectsV2 %s: the answer is not a listing",
			what);
		goto out;
	}
	if ((rc = xml_text(&count, r.body.data, "KeyCount")) < 0) {
		rc = dtn__error_set(err, rc, "out of memory");
		goto out;
	}
	*found = count ? strtol(count, NULL, 10) > 0 : strstr(r.body.data, "<Contents>") != NULL;
out:
	dtn__http_response_clear(&r);
	dtn__free(esc);
	dtn__free(url);
	dtn__free(what);
	dtn__free(count);
	return rc;
}

int dtn__s3_put(dtn__s3 *s3, const char *key, const void *data, size_t len, dtn_error *err)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	char *url = object_url(s3, key), *what = dtn__aprintf("%s/%s", s3->pa.bucket, key);
	int rc;

	if (!url || !what)
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	else
		rc = s3_do(s3, &(s3_call){"PutObject", "PUT", url, what, OCTET_STREAM, data, len, false,
			true}, &r, err);
	dtn__http_response_clear(&r);
	dtn__free(url);
	dtn__free(what);
	return rc;
}

/* ---- the streamed upload ---- */

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_SENDING };

/* A part's buffer: filled by write(), then sent while others fill. */
typedef struct slot {
	enum slot_state state;
	char *data;
	size_t len;
	int number;
	char *url;
	sig_headers h;
	dtn__http_response resp;
} slot;

struct dtn__s3_upload {
	dtn__s3 *s3;
	char *url;
	char *what;
	char *content_type;      /* the header line */
	size_t part_size;
	int parallel;
	slot *slots;             /* parallel + 1 */
	slot *cur;               /* being filled */
	char *upload_id;         /* escaped for the query; NULL before the multipart upload */
	dtn__http_batch *batch;
	char **etags;            /* by part number - 1 */
	int parts;
	int64_t size;
	int rc;
	dtn_error err;
	bool finished, aborted;
};

int dtn__s3_upload_begin(dtn__s3_upload **out, dtn__s3 *s3, const char *key,
	const dtn__s3_upload_opts *opts, dtn_error *err)
{
	dtn__s3_upload *u = dtn__calloc(1, sizeof(*u));
	const char *ctype = opts && opts->content_type ? opts->content_type
						       : "application/octet-stream";

	*out = NULL;
	if (!u)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	u->s3 = s3;
	u->part_size = opts && opts->part_size ? opts->part_size : DEFAULT_PART;
	if (u->part_size < MIN_PART)
		u->part_size = MIN_PART;
	u->parallel = opts && opts->parallel > 0 ? opts->parallel : 4;
	u->url = object_url(s3, key);
	u->what = dtn__aprintf("%s/%s", s3->pa.bucket, key);
	u->content_type = dtn__aprintf("Content-Type: %s", ctype);
	u->slots = dtn__calloc((size_t)u->parallel + 1, sizeof(*u->slots));
	if (!u->url || !u->what || !u->content_type || !u->slots) {
		dtn__s3_upload_free(u);
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	}
	*out = u;
	return 0;
}

static void slot_reset(slot *s)
{
	s->state = SLOT_FREE;
	s->len = 0;
	s->number = 0;
	dtn__free(s->url);
	s->url = NULL;
	dtn__http_response_clear(&s->resp);
}

/* Starts the multipart upload (CreateMultipartUpload) and the batch for its parts. */
static int create_upload(dtn__s3_upload *u)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	char *url = dtn__aprintf("%s?uploads=", u->url), *id = NULL;
	int rc;

	if (!url) {
		rc = dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_do(u->s3, &(s3_call){"CreateMultipartUpload", "POST", url, u->what,
		u->content_type, NULL, 0, false, false}, &r, &u->err);
	if (rc < 0)
		goto out;
	if ((rc = xml_text(&id, r.body.data, "UploadId")) < 0) {
		rc = dtn__error_set(&u->err, rc, "out of memory");
	} else if (!id || !*id) {
		rc = dtn__error_set(&u->err, DTN_EPROTOCOL,
			"S3 CreateMultipartUpload %s: the answer has no UploadId", u->what);
	} else if (!(u->upload_id = dtn__http_escape(id)) ||
		   dtn__http_batch_new(&u->batch, u->s3->http) < 0) {
		rc = dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
	}
out:
	dtn__http_response_clear(&r);
	dtn__free(url);
	dtn__free(id);
	return rc;
}

static int collect(dtn__s3_upload *u, long wait_ms);

/* Sends the part being filled, starting the multipart upload first if needed. */
static int send_part(dtn__s3_upload *u)
{
	slot *s = u->cur;
	dtn__http_request req;
	char **etags;
	int rc;

	if (!u->upload_id && (rc = create_upload(u)) < 0)
		return rc;
	/* At most `parallel` in flight: the one being filled waits for a place. */
	while (dtn__http_batch_pending(u->batch) >= (size_t)u->parallel)
		if ((rc = collect(u, -1)) < 0)
			return rc;
	if (u->parts == MAX_PARTS)
		return dtn__error_set(&u->err, DTN_EINVAL,
			"S3 upload of %s: more than %d parts of %zu bytes", u->what, MAX_PARTS,
			u->part_size);
	if (!(etags = dtn__realloc(u->etags, ((size_t)u->parts + 1) * sizeof(*etags))))
		return dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
	u->etags = etags;
	u->etags[u->parts] = NULL;
	s->number = ++u->parts;
	if (!(s->url = dtn__aprintf("%s?partNumber=%d&uploadId=%s", u->url, s->number,
		      u->upload_id)))
		return dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
	if (sign_headers(u->s3, &s->h, s->data, s->len, OCTET_STREAM) < 0)
		return dtn__error_set(&u->err, DTN_ERROR, "S3 UploadPart: SHA-256 failed");
	fill_request(u->s3, &(s3_call){"UploadPart", "PUT", s->url, u->what, NULL, s->data, s->len,
		false, true}, &s->h, &req);
	if ((rc = dtn__http_batch_add(u->batch, &req, &s->resp, s, &u->err)) < 0)
		return rc;
	s->state = SLOT_SENDING;
	u->cur = NULL;
	return 0;
}

/* Takes in finished parts: one, waiting for it (wait_ms -1), or all that are done (0). */
static int collect(dtn__s3_upload *u, long wait_ms)
{
	void *tag;
	int result;

	while (u->batch && dtn__http_batch_next(u->batch, wait_ms, &tag, &result, &u->err)) {
		slot *s = tag;
		const char *etag;
		char op[48];
		snprintf(op, sizeof(op), "UploadPart %d", s->number);
		if (result < 0)
			return transport_error(result, op, &u->err);
		if (s->resp.status < 200 || s->resp.status >= 300)
			return s3_error(u->s3, &s->resp, op, u->what, &u->err);
		etag = dtn__http_response_header(&s->resp, "ETag");
		if (!etag || !*etag)
			return dtn__error_set(&u->err, DTN_EPROTOCOL,
				"S3 %s %s: the answer has no ETag", op, u->what);
		if (!(u->etags[s->number - 1] = dtn__strdup(etag)))
			return dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
		slot_reset(s);
		if (wait_ms < 0)
			break;
	}
	return 0;
}

/* A free part buffer to fill, waiting for a part in flight when all are taken. */
static int take_slot(dtn__s3_upload *u)
{
	int rc;

	for (;;) {
		for (int i = 0; i <= u->parallel; i++) {
			slot *s = &u->slots[i];
			if (s->state != SLOT_FREE)
				continue;
			if (!s->data && !(s->data = dtn__malloc(u->part_size)))
				return dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
			s->state = SLOT_FILLING;
			s->len = 0;
			u->cur = s;
			return 0;
		}
		if ((rc = collect(u, -1)) < 0)
			return rc;
	}
}

/* Latches the first error, aborts the upload and copies the error out. */
static int fail(dtn__s3_upload *u, int rc, dtn_error *err)
{
	if (u->rc == 0) {
		u->rc = rc;
		u->err.code = rc;
	}
	dtn__s3_upload_abort(u);
	if (err)
		*err = u->err;
	return u->rc;
}

int dtn__s3_upload_write(dtn__s3_upload *u, const void *data, size_t len, dtn_error *err)
{
	const char *p = data;
	int rc = 0;

	if (u->rc < 0 || u->finished)
		return u->rc < 0 ? fail(u, u->rc, err)
				 : dtn__error_set(err, DTN_EINVAL, "S3 upload of %s: already finished",
					   u->what);
	while (len > 0) {
		size_t n;
		if (u->cur && u->cur->len == u->part_size && (rc = send_part(u)) < 0)
			return fail(u, rc, err);
		if (!u->cur && (rc = take_slot(u)) < 0)
			return fail(u, rc, err);
		n = u->part_size - u->cur->len;
		if (n > len)
			n = len;
		memcpy(u->cur->data + u->cur->len, p, n);
		u->cur->len += n;
		u->size += (int64_t)n;
		p += n;
		len -= n;
	}
	/* Let the parts in flight move on without waiting for them. */
	if ((rc = collect(u, 0)) < 0)
		return fail(u, rc, err);
	return 0;
}

int dtn__s3_upload_sink(const void *data, size_t len, void *payload)
{
	return dtn__s3_upload_write(payload, data, len, NULL) < 0;
}

const dtn_error *dtn__s3_upload_error(const dtn__s3_upload *u)
{
	return &u->err;
}

static int complete_upload(dtn__s3_upload *u)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn__buf xml = DTN__BUF_INIT;
	char *url = dtn__aprintf("%s?uploadId=%s", u->url, u->upload_id);
	int rc;

	dtn__buf_puts(&xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < u->parts; i++) {
		dtn__buf_printf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>", i + 1);
		xml_escape(&xml, u->etags[i]);
		dtn__buf_puts(&xml, "</ETag></Part>");
	}
	dtn__buf_puts(&xml, "</CompleteMultipartUpload>");
	if (!url || xml.failed) {
		rc = dtn__error_set(&u->err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_do(u->s3, &(s3_call){"CompleteMultipartUpload", "POST", url, u->what,
		"Content-Type: application/xml", xml.data, xml.len, false, true}, &r, &u->err);
	/* S3 may answer 200 and still fail, with an <Error> body. */
	if (rc == 0 && strstr(dtn__buf_cstr(&r.body), "<Error>"))
		rc = s3_error(u->s3, &r, "CompleteMultipartUpload", u->what, &u->err);
out:
	dtn__http_response_clear(&r);
	dtn__buf_free(&xml);
	dtn__free(url);
	return rc;
}

int dtn__s3_upload_finish(dtn__s3_upload *u, dtn_error *err)
{
	int rc;

	if (u->rc < 0)
		return fail(u, u->rc, err);
	if (u->finished)
		return 0;
	if (!u->upload_id) {
		dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
		rc = s3_do(u->s3, &(s3_call){"PutObject", "PUT", u->url, u->what, u->content_type,
			u->cur ? u->cur->data : "", u->cur ? u->cur->len : 0, false, true}, &r, &u->err);
		dtn__http_response_clear(&r);
		if (rc < 0)
			return fail(u, rc, err);
		u->finished = true;
		return 0;
	}
	if (u->cur && u->cur->len > 0 && (rc = send_part(u)) < 0)
		return fail(u, rc, err);
	while (dtn__http_batch_pending(u->batch) > 0)
		if ((rc = collect(u, -1)) < 0)
			return fail(u, rc, err);
	if ((rc = complete_upload(u)) < 0)
		return fail(u, rc, err);
	u->finished = true;
	return 0;
}

void dtn__s3_upload_abort(dtn__s3_upload *u)
{
	dtn__http_response r = DTN__HTTP_RESPONSE_INIT;
	dtn_error ignored;
	char *url;

	if (!u || u->aborted)
		return;
	u->aborted = true;
	dtn__http_batch_free(u->batch);
	u->batch = NULL;
	for (int i = 0; u->slots && i <= u->parallel; i++)
		slot_reset(&u->slots[i]);
	u->cur = NULL;
	if (u->rc == 0 && !u->finished) {
		u->rc = dtn__error_set(&u->err, DTN_EUSER, "S3 upload of %s: aborted", u->what);
	}
	if (!u->upload_id || u->finished)
		return;
	/* Best effort: an upload left open only costs storage until the bucket's lifecycle rule. */
	if ((url = dtn__aprintf("%s?uploadId=%s", u->url, u->upload_id)))
		s3_do(u->s3, &(s3_call){"AbortMultipartUpload", "DELETE", url, u->what, NULL, NULL, 0,
			true, false}, &r, &ignored);
	dtn__http_response_clear(&r);
	dtn__free(url);
}

void dtn__s3_upload_free(dtn__s3_upload *u)
{
	if (!u)
		return;
	if (!u->finished)
		dtn__s3_upload_abort(u);
	dtn__http_batch_free(u->batch);
	for (int i = 0; u->slots && i <= u->parallel; i++) {
		slot_reset(&u->slots[i]);
		dtn__free(u->slots[i].data);
	}
	for (int i = 0; u->etags && i < u->parts; i++)
		dtn__free(u->etags[i]);
	dtn__free(u->etags);
	dtn__free(u->slots);
	dtn__free(u->upload_id);
	dtn__free(u->url);
	dtn__free(u->what);
	dtn__free(u->content_type);
	dtn__free(u);
}

int64_t dtn__s3_upload_size(const dtn__s3_upload *u)
{
	return u->size;
}

int dtn__s3_upload_parts(const dtn__s3_upload *u)
{
	return u->parts;
}
