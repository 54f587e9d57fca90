/*
 * sasl.c: the SASL PLAIN decoder (RFC 4616) and the strict base64 it comes
 * in (RFC 4648).  Pure functions over the client's bytes, kept apart so
 * that they can be tested and fuzzed alone.
 */
#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#include "pop3d.h"

static int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict base64 (RFC 4648): whole quanta, '=' only as padding at the end,
 * no other characters.  Returns the decoded length, or -1.
 */
ssize_t
base64_decode(const char *in, unsigned char *out, size_t outsize)
{
	size_t		 i, len = strlen(in), o = 0, pad = 0;
	uint32_t	 q;
	int		 v, j;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		q = 0;
		for (j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2 &&
			    (j == 3 || in[i + 3] == '=')) {
				pad++;
				v = 0;
			} else if (pad > 0 || (v = base64_value(in[i + j])) < 0)
				return -1;
			q = q << 6 | v;
		}
		if (o + 3 - pad > outsize)
			return -1;
		out[o++] = q >> 16;
		if (pad < 2)
			out[o++] = q >> 8 & 0xff;
		if (pad < 1)
			out[o++] = q & 0xff;
		/* padding bits must be zero: one encoding for each input */
		if ((pad == 1 && (q & 0xff)) || (pad == 2 && (q & 0xffff)))
			return -1;
	}
	return o;
}

/*
 * SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd.  The authzid
 * must be empty or the authcid: nobody logs in as someone else.
 * Returns 0 with user and pass set (NUL-terminated), or -1.
 */
int
sasl_plain_parse(unsigned char *msg, size_t len, char **user, char **pass)
{
	unsigned char	*nul1, *nul2;
	size_t		 zlen, clen, plen;

	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return -1;
	zlen = nul1 - msg;
	if ((nul2 = memchr(nul1 + 1, '\0', len - zlen - 1)) == NULL)
		return -1;
	clen = nul2 - nul1 - 1;
	plen = len - zlen - clen - 2;
	if (memchr(nul2 + 1, '\0', plen) != NULL)
		return -1;
	if (zlen > MAX_SASL_FIELD || clen == 0 || clen > MAX_SASL_FIELD ||
	    plen > MAX_SASL_FIELD)
		return -1;
	if (zlen != 0 && (zlen != clen || memcmp(msg, nul1 + 1, clen) != 0))
		return -1;
	msg[len] = '\0';
	*user = (char *)nul1 + 1;
	*pass = (char *)nul2 + 1;
	return 0;
}
