/*
 * fuzz_sasl.c: the strict base64 decoder and the SASL PLAIN parser.  The
 * input is read two ways: as the base64 text of an AUTH PLAIN response
 * (up to a NUL, at most as long as the session takes one), checked
 * against a reference decoder written here and parsed when it decodes,
 * as session_sasl_response does; and as a decoded PLAIN message, checked
 * against RFC 4616 as pop3d applies it.
 */
#include <sys/types.h>

#include <string.h>

#include "pop3d.h"
#include "fuzz.h"

/* The session decodes into 3 fields, 2 NULs and the NUL the parser adds:
 * this much room is what base64_decode gets. */
#define PLAIN_MAX	(3 * MAX_SASL_FIELD + 2)

/* The longest response the session reads: MAX_SASL_LINE with its CRLF. */
#define TEXT_MAX	(MAX_SASL_LINE - 2)

static const char	 alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Strict base64 as a stream of 6-bit groups: a multiple of 4 characters,
 * at most two '=' and only at the end, and the bits that do not fill a
 * last octet all zero, so that each octet string has one encoding.
 * Returns the decoded length, or -1; out has room for len * 3 / 4.
 */
static ssize_t
ref_base64(const char *in, size_t len, unsigned char *out)
{
	const char	*c;
	uint32_t	 bits = 0;
	size_t		 i, o = 0, pad = 0;
	int		 nbits = 0;

	if (len % 4 != 0)
		return -1;
	while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
		pad++;
	for (i = 0; i < len - pad; i++) {
		if ((c = memchr(alphabet, in[i], 64)) == NULL)
			return -1;
		bits = (bits << 6 | (uint32_t)(c - alphabet)) & 0xffff;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			out[o++] = bits >> nbits & 0xff;
		}
	}
	if ((bits & ((1U << nbits) - 1)) != 0)
		return -1;
	return o;
}

/*
 * base64_decode of text into exactly outsize bytes of its own (so that a
 * write past them is caught) must give the reference's want, wantlen
 * long, or -1 if that is -1 or does not fit.  Returns what it gave; the
 * bytes are copied into got, which has room for outsize.
 */
static ssize_t
check_decode(const char *text, const unsigned char *want, ssize_t wantlen,
    size_t outsize, unsigned char *got)
{
	unsigned char	*out;
	ssize_t		 r;

	out = malloc(outsize);
	FUZZ_CHECK(out != NULL || outsize == 0);
	r = base64_decode(text, out, outsize);
	if (wantlen == -1 || (size_t)wantlen > outsize)
		FUZZ_CHECK(r == -1);
	else {
		FUZZ_CHECK(r == wantlen);
		FUZZ_CHECK(memcmp(out, want, r) == 0);
		memcpy(got, out, r);
	}
	free(out);
	return r;
}

/*
 * sasl_plain_parse on a copy of the len bytes at in, with the one byte of
 * room more it may use: it must accept exactly authzid NUL authcid NUL
 * passwd (no other NUL) with fields of at most MAX_SASL_FIELD octets, a
 * non-empty authcid and an authzid that is empty or the authcid, and
 * point user and pass at those two, NUL-terminated.
 */
static void
check_plain(const unsigned char *in, size_t len)
{
	const unsigned char	*nul[2];
	unsigned char		*msg;
	size_t			 i, nuls = 0, zlen = 0, clen = 0, plen = 0;
	char			*user, *pass;
	int			 ok, r;

	for (i = 0; i < len; i++)
		if (in[i] == '\0' && nuls++ < 2)
			nul[nuls - 1] = in + i;
	if (nuls == 2) {
		zlen = nul[0] - in;
		clen = nul[1] - nul[0] - 1;
		plen = len - zlen - clen - 2;
	}
	ok = nuls == 2 && zlen <= MAX_SASL_FIELD && clen >= 1 &&
	    clen <= MAX_SASL_FIELD && plen <= MAX_SASL_FIELD &&
	    (zlen == 0 || (zlen == clen && memcmp(in, nul[0] + 1, clen) == 0));

	FUZZ_CHECK((msg = malloc(len + 1)) != NULL);
	memcpy(msg, in, len);
	r = sasl_plain_parse(msg, len, &user, &pass);
	FUZZ_CHECK(r == (ok ? 0 : -1));
	if (r == 0) {
		/* Whatever the reference says: what a login may rely on. */
		FUZZ_CHECK(strlen(user) >= 1 && strlen(user) <= MAX_SASL_FIELD);
		FUZZ_CHECK(strlen(pass) <= MAX_SASL_FIELD);
		FUZZ_CHECK(msg[0] == '\0' || strcmp((char *)msg, user) == 0);
		/* And exactly the fields of the message. */
		FUZZ_CHECK(user == (char *)msg + zlen + 1);
		FUZZ_CHECK(pass == (char *)msg + zlen + clen + 2);
		FUZZ_CHECK(strlen(user) == clen);
		FUZZ_CHECK(strlen(pass) == plen);
		FUZZ_CHECK(memcmp(user, nul[0] + 1, clen) == 0);
		FUZZ_CHECK(memcmp(pass, nul[1] + 1, plen) == 0);
	}
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 text[TEXT_MAX + 1];
	unsigned char	 want[TEXT_MAX] = { 0 }, got[TEXT_MAX];
	ssize_t		 wantlen, len;
	size_t		 n;

	/* As base64 text: the session's lines hold no NUL. */
	n = size < TEXT_MAX ? size : TEXT_MAX;
	memcpy(text, data, n);
	text[n] = '\0';
	wantlen = ref_base64(text, strlen(text), want);
	len = check_decode(text, want, wantlen, PLAIN_MAX, got);
	if (wantlen > 0) {
		/* The room check, at its edge. */
		check_decode(text, want, wantlen, wantlen, got);
		check_decode(text, want, wantlen, wantlen - 1, got);
	}
	if (len >= 0)
		check_plain(got, len);

	/* As a decoded message. */
	check_plain(data, size);
	return 0;
}
