/*
 * hash.h - SHA-256 through OpenSSL's libcrypto (which uses the CPU's SHA instructions where it
 * has them). Internal to libdtn.
 */
#ifndef DTN_CORE_HASH_H
#define DTN_CORE_HASH_H

#include <stddef.h>

#include "internal.h"

#define DTN__SHA256_LEN 32
#define DTN__SHA256_HEX 65 /* 64 hex digits and a NUL */

typedef struct dtn__sha256 dtn__sha256;

/* A new hashing context, or NULL when memory runs out. */
dtn__sha256 *dtn__sha256_new(void);
void dtn__sha256_free(dtn__sha256 *h);
/* Starts a new digest; returns 0 or DTN_ERROR. */
int dtn__sha256_init(dtn__sha256 *h);
int dtn__sha256_update(dtn__sha256 *h, const void *data, size_t len);
int dtn__sha256_final(dtn__sha256 *h, unsigned char out[DTN__SHA256_LEN]);
/* The digest of one buffer. */
int dtn__sha256_once(unsigned char out[DTN__SHA256_LEN], const void *data, size_t len);
/* Lower-case hex of a digest. */
void dtn__sha256_hex(char out[DTN__SHA256_HEX], const unsigned char digest[DTN__SHA256_LEN]);

#endif
