/*
 * sha256.c: SHA-256 as FIPS 180-4 specifies it.  Only the UIDL uses it, so
 * it is written for clarity, not speed: headers are short.
 */
#include <stdint.h>
#include <string.h>

#include "sha256.h"

/* First 32 bits of the fractional parts of the cube roots of the first
 * 64 primes (FIPS 180-4 section 4.2.2). */
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
	0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
	0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
	0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROTR(x, n)	(((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z)	(((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z)	(((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x)	(ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x)	(ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x)	(ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x)	(ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

/* One 64-byte block into the state (FIPS 180-4 section 6.2.2). */
static void
sha256_block(struct sha256 *ctx, const uint8_t *p)
{
	uint32_t	 w[64], v[8], t1, t2;
	int		 i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (; i < 64; i++)
		w[i] = SSIG1(w[i - 2]) + w[i - 7] + SSIG0(w[i - 15]) +
		    w[i - 16];
	for (i = 0; i < 8; i++)
		v[i] = ctx->h[i];
	for (i = 0; i < 64; i++) {
		t1 = v[7] + BSIG1(v[4]) + CH(v[4], v[5], v[6]) + K[i] + w[i];
		t2 = BSIG0(v[0]) + MAJ(v[0], v[1], v[2]);
		v[7] = v[6];
		v[6] = v[5];
		v[5] = v[4];
		v[4] = v[3] + t1;
		v[3] = v[2];
		v[2] = v[1];
		v[1] = v[0];
		v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		ctx->h[i] += v[i];
}

void
sha256_init(struct sha256 *ctx)
{
	/* Fractional parts of the square roots of the first 8 primes. */
	static const uint32_t h0[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	};

	memcpy(ctx->h, h0, sizeof(ctx->h));
	ctx->bytes = 0;
	ctx->buflen = 0;
}

void
sha256_update(struct sha256 *ctx, const void *data, size_t n)
{
	const uint8_t	*p = data;
	size_t		 k;

	ctx->bytes += n;
	if (ctx->buflen > 0) {
		k = SHA256_BLOCK - ctx->buflen;
		if (k > n)
			k = n;
		memcpy(ctx->buf + ctx->buflen, p, k);
		ctx->buflen += k;
		p += k;
		n -= k;
		if (ctx->buflen < SHA256_BLOCK)
			return;
		sha256_block(ctx, ctx->buf);
		ctx->buflen = 0;
	}
	for (; n >= SHA256_BLOCK; p += SHA256_BLOCK, n -= SHA256_BLOCK)
		sha256_block(ctx, p);
	if (n > 0) {
		memcpy(ctx->buf, p, n);
		ctx->buflen = n;
	}
}

void
sha256_final(struct sha256 *ctx, uint8_t out[SHA256_DIGEST])
{
	uint64_t	 bits = ctx->bytes * 8;
	int		 i;

	/* A 1 bit, zeros up to 56 mod 64, then the length in bits. */
	ctx->buf[ctx->buflen++] = 0x80;
	if (ctx->buflen > SHA256_BLOCK - 8) {
		memset(ctx->buf + ctx->buflen, 0, SHA256_BLOCK - ctx->buflen);
		sha256_block(ctx, ctx->buf);
		ctx->buflen = 0;
	}
	memset(ctx->buf + ctx->buflen, 0, SHA256_BLOCK - 8 - ctx->buflen);
	for (i = 0; i < 8; i++)
		ctx->buf[SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha256_block(ctx, ctx->buf);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)ctx->h[i];
	}
	ctx->buflen = 0;
}
