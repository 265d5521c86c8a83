/*
 * hash.c - SHA-256 over libcrypto's EVP interface.
 */
#include <openssl/evp.h>

#include "hash.h"

struct dtn__sha256 {
	EVP_MD_CTX *ctx;
};

dtn__sha256 *dtn__sha256_new(void)
{
	dtn__sha256 *h = dtn__malloc(sizeof(*h));

	if (!h)
		return NULL;
	if (!(h->ctx = EVP_MD_CTX_new())) {
		dtn__free(h);
		return NULL;
	}
	return h;
}

void dtn__sha256_free(dtn__sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	dtn__free(h);
}

int dtn__sha256_init(dtn__sha256 *h)
{
	return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : DTN_ERROR;
}

int dtn__sha256_update(dtn__sha256 *h, const void *data, size_t len)
{
	return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : DTN_ERROR;
}

int dtn__sha256_final(dtn__sha256 *h, unsigned char out[DTN__SHA256_LEN])
{
	return EVP_DigestFinal_ex(h->ctx, out, NULL) == 1 ? 0 : DTN_ERROR;
}

int dtn__sha256_once(unsigned char out[DTN__SHA256_LEN], const void *data, size_t len)
{
	return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : DTN_ERROR;
}

void dtn__sha256_hex(char out[DTN__SHA256_HEX], const unsigned char digest[DTN__SHA256_LEN])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < DTN__SHA256_LEN; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[64] = '\0';
}
