/*
 * image_otel.c - what the image DSL's spans say about a Dockerfile.
 */
#include <string.h>
#include <strings.h>

#include "hash.h"
#include "image_otel.h"

/* The keyword of the instruction starting at line, skipping blanks; its length in *len. */
static const char *keyword(const char *line, size_t *len)
{
	while (*line == ' ' || *line == '\t')
		line++;
	*len = strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
	return line;
}

static bool is(const char *kw, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(kw, name, len) == 0;
}

/* The start of the instruction after the one at p (continuation lines skipped), or NULL. */
static const char *next_instruction(const char *p)
{
	for (;;) {
		const char *nl = strchr(p, '\n');
		bool cont;

		if (!nl)
			return NULL;
		cont = (nl > p && nl[-1] == '\\') || (nl > p + 1 && nl[-1] == '\r' && nl[-2] == '\\');
		p = nl + 1;
		if (!cont)
			return *p ? p : NULL;
	}
}

int64_t dtn__image_otel_layers(const char *dockerfile)
{
	int64_t n = 0;
	size_t len;

	for (const char *p = *dockerfile ? dockerfile : NULL; p; p = next_instruction(p)) {
		const char *kw = keyword(p, &len);
		if (is(kw, len, "RUN") || is(kw, len, "COPY") || is(kw, len, "ADD"))
			n++;
	}
	return n;
}

void dtn__image_otel_dockerfile(dtn_span *span, const char *dockerfile)
{
	unsigned char digest[DTN__SHA256_LEN];
	char hex[DTN__SHA256_HEX];
	size_t len, n = strlen(dockerfile);

	if (!dtn_span_is_recording(span))
		return;
	for (const char *p = *dockerfile ? dockerfile : NULL; p; p = next_instruction(p)) {
		const char *kw = keyword(p, &len), *img;
		char base[256];
		size_t ilen;
		if (!is(kw, len, "FROM"))
			continue;
		img = kw + len + strspn(kw + len, " \t");
		/* FROM [--platform=...] image [AS name] */
		while (strncmp(img, "--", 2) == 0) {
			img += strcspn(img, " \t\n");
			img += strspn(img, " \t");
		}
		ilen = strcspn(img, " \t\r\n");
		if (ilen && ilen < sizeof(base)) {
			memcpy(base, img, ilen);
			base[ilen] = '\0';
			dtn_span_set_str(span, "dtn.image.base", base);
		}
		break;
	}
	if (dtn__sha256_once(digest, dockerfile, n) == 0) {
		dtn__sha256_hex(hex, digest);
		dtn_span_set_str(span, "dtn.dockerfile.sha256", hex);
	}
	dtn_span_set_int(span, "dtn.dockerfile.bytes", (int64_t)n);
}
