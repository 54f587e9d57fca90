/*
 * sha256.h: SHA-256 (FIPS 180-4), enough for UIDLs.
 */
#ifndef POP3D_SHA256_H
#define POP3D_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST	32
#define SHA256_BLOCK	64

struct sha256 {
	uint32_t	 h[8];			/* chaining state */
	uint64_t	 bytes;			/* message length so far */
	uint8_t		 buf[SHA256_BLOCK];	/* a partial block */
	size_t		 buflen;
};

/* sha256_init: starts a new digest in ctx. */
void	 sha256_init(struct sha256 *);

/* sha256_update: adds n bytes to the digest; n may be 0. */
void	 sha256_update(struct sha256 *, const void *, size_t);

/* sha256_final: pads and writes the 32-byte digest to out; ctx needs
 * sha256_init before it is used again. */
void	 sha256_final(struct sha256 *, uint8_t [SHA256_DIGEST]);

#endif
