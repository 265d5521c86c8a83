/*
 * hash.c - SHA-256 over libcrypto's EVP interface.
 */
#include <openssl/evp.h>
#include <pthread.h>

#include "hash.h"

/*
 * OpenSSL 3 looks the algorithm up in its providers, under a lock, every time EVP_sha256() is
 * used to start a digest; fetched once, the lookup is neither repeated nor contended between
 * the hashing threads.
 */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *fetched;

static void fetch_sha256(void)
{
	fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
	pthread_once(&fetch_once, fetch_sha256);
	return fetched ? fetched : EVP_sha256();
}

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
	return EVP_DigestInit_ex(h->ctx, sha256_md(), NULL) == 1 ? 0 : DTN_ERROR;
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
	return EVP_Digest(data, len, out, NULL, sha256_md(), NULL) == 1 ? 0 : DTN_ERROR;
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
