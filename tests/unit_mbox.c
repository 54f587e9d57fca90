/*
 * unit_mbox.c: the mbox scanner, UIDLs and the RETR/TOP transform.  The
 * scanner and the transform are also checked against small reference
 * versions written here from the rules, over random input fed in random
 * chunks, and the CPU-specific kernels against the plain ones.  It
 * includes mbox.c to reach those.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../mbox.c"
#include "../mbox_fd.c"
#include "../xform.c"
#include <openssl/evp.h>	/* the reference UIDL, by another road */
#include "unit.h"

#define LEN(s)	(sizeof(s) - 1)

/* Deterministic, so that a failure can be reproduced. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* chunk: 0 all at once, 1 byte at a time, else random sizes 1..chunk. */
static int
scan_chunked(const char *b, size_t n, struct mbox_index *idx, size_t chunk)
{
	struct mbox_scan	 s;
	size_t			 i, k;
	int			 err = MBOX_OK;

	mbox_scan_init(&s, idx);
	for (i = 0; i < n && err == MBOX_OK; i += k) {
		k = chunk == 0 ? n : chunk == 1 ? 1 : 1 + rnd() % chunk;
		if (k > n - i)
			k = n - i;
		err = mbox_scan_feed(&s, b + i, k);
	}
	if (err == MBOX_OK)
		err = mbox_scan_finish(&s);
	return err;
}

static int
scan(const char *b, size_t n, struct mbox_index *idx)
{
	return scan_chunked(b, n, idx, 0);
}

static void
idx_zero(struct mbox_index *idx)
{
	memset(idx, 0, sizeof(*idx));
}

static int
same_index(const struct mbox_index *a, const struct mbox_index *b)
{
	size_t	 i;

	if (a->count != b->count || a->end != b->end)
		return 0;
	for (i = 0; i < a->count; i++)
		if (a->msgs[i].from != b->msgs[i].from ||
		    a->msgs[i].off != b->msgs[i].off ||
		    a->msgs[i].len != b->msgs[i].len ||
		    a->msgs[i].size != b->msgs[i].size ||
		    strcmp(a->msgs[i].uidl, b->msgs[i].uidl) != 0)
			return 0;
	return 1;
}

/* Whether message i of idx serves exactly the string want. */
static int
served(const char *b, const struct mbox_index *idx, size_t i,
    const char *want, size_t wantlen)
{
	const struct mbox_msg	*m = &idx->msgs[i];

	return i < idx->count && (size_t)m->len == wantlen &&
	    memcmp(b + m->off, want, wantlen) == 0;
}

/*
 * The transform by the rules, a line at a time, for comparison: LF to
 * CRLF unless a CR is before it, a "." doubled at a line start, TOP stops
 * after the empty line and top more lines, a CRLF after a last line
 * without LF.
 */
static size_t
ref_xform(const char *in, size_t n, int stuff, long long top, char *out)
{
	size_t	 i = 0, o = 0, ls, cl;
	int	 headers = 1, lf;

	while (i < n) {
		ls = i;
		while (i < n && in[i] != '\n')
			i++;
		cl = i - ls;
		lf = i < n;
		if (lf)
			i++;
		if (stuff && cl > 0 && in[ls] == '.')
			out[o++] = '.';
		memcpy(out + o, in + ls, cl);
		o += cl;
		if (!lf)
			break;
		if (cl == 0 || in[ls + cl - 1] != '\r')
			out[o++] = '\r';
		out[o++] = '\n';
		if (top < 0)
			continue;
		if (headers) {
			if (cl == 0 || (cl == 1 && in[ls] == '\r'))
				headers = 0;
			else
				continue;
		} else
			top--;
		if (top == 0)
			break;
	}
	if (o > 0 && out[o - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/* Runs the transform over in, in chunks as for scan_chunked. */
static size_t
xf(const char *in, size_t n, int stuff, long long top, char *out,
    size_t chunk)
{
	struct xform	 x;
	size_t		 i = 0, o = 0, k, w, used;

	xform_init(&x, stuff, top);
	while (i < n && !x.done) {
		k = chunk == 0 ? n : chunk == 1 ? 1 : 1 + rnd() % chunk;
		if (k > n - i)
			k = n - i;
		w = xform_run(&x, in + i, k, out + o, &used);
		CHECK(w <= 2 * k);
		CHECK(used <= k);
		CHECK(used == k || x.done);
		o += w;
		i += used;
	}
	return o + xform_end(&x, out + o);
}

static const char *const ref_rewritten[] = {
	"status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase",
	"content-length", "lines", "x-mozilla-status", "x-mozilla-status2",
	NULL
};

/* Hashes one line as the UIDL rule says: LF and the CR before it
 * dropped (also at the end of the file), then one LF. */
static void
ref_hash_line(EVP_MD_CTX *h, const char *b, size_t ls, size_t le)
{
	if (le > ls && b[le - 1] == '\n')
		le--;
	if (le > ls && b[le - 1] == '\r')
		le--;
	REQUIRE(EVP_DigestUpdate(h, b + ls, le - ls) == 1);
	REQUIRE(EVP_DigestUpdate(h, "\n", 1) == 1);
}

/* Whether a header line names a rewritten field.  As in mbox.c, the
 * colon must come within the first MBOX_HEAD bytes. */
static int
ref_rewritten_field(const char *b, size_t ls, size_t le)
{
	char	 name[MBOX_HEAD];
	size_t	 i = ls, j;

	while (i < le && b[i] != ':' && (unsigned char)b[i] > ' ' &&
	    (unsigned char)b[i] <= '~')
		i++;
	j = i;
	while (i < le && (b[i] == ' ' || b[i] == '\t'))
		i++;
	if (i == le || b[i] != ':' || i - ls >= MBOX_HEAD || j == ls)
		return 0;
	for (i = ls; i < j; i++)
		name[i - ls] = b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i];
	name[j - ls] = '\0';
	for (i = 0; ref_rewritten[i] != NULL; i++)
		if (strcmp(name, ref_rewritten[i]) == 0)
			return 1;
	return 0;
}

/* Octets of b[start, stop) as RETR sends them: CRLF line ends, a CRLF
 * after a last line without LF. */
static size_t
ref_crlf_size(const char *b, size_t start, size_t stop)
{
	size_t	 j, size = stop - start;

	for (j = start; j < stop; j++)
		if (b[j] == '\n' && (j == start || b[j - 1] != '\r'))
			size++;
	if (stop > start && b[stop - 1] != '\n')
		size += 2;
	return size;
}

/* The UIDL digest of the message whose From_ line is at from, whose
 * range (separator included) ends at end and whose served bytes end at
 * served: the From_ line and the stable headers, then the body's size
 * as RETR sends it in 8 bytes, most significant first. */
static void
ref_uidl(const char *b, size_t from, size_t end, size_t served,
    char *uidl)
{
	EVP_MD_CTX	*h;
	uint8_t		 md[EVP_MAX_MD_SIZE], blen[8];
	size_t		 ls, le, body = 0;
	int		 i, skip = 0;

	REQUIRE((h = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1);
	for (ls = from; ls < end; ls = le) {
		for (le = ls; le < end && b[le] != '\n'; le++)
			;
		if (le < end)
			le++;
		if (ls > from && (le - ls == 1 ? b[ls] == '\n' :
		    le - ls == 2 && b[ls] == '\r' && b[ls + 1] == '\n')) {
			/* the headers end; the body follows */
			if (le <= served)
				body = ref_crlf_size(b, le, served);
			break;
		}
		if (ls > from && (b[ls] == ' ' || b[ls] == '\t')) {
			if (!skip)
				ref_hash_line(h, b, ls, le);
			continue;
		}
		if (ls > from && (skip = ref_rewritten_field(b, ls, le)))
			continue;
		ref_hash_line(h, b, ls, le);
	}
	for (i = 0; i < 8; i++)
		blen[i] = (uint8_t)((uint64_t)body >> (56 - 8 * i));
	REQUIRE(EVP_DigestUpdate(h, blen, sizeof(blen)) == 1 &&
	    EVP_DigestFinal_ex(h, md, NULL) == 1);
	EVP_MD_CTX_free(h);
	for (i = 0; i < 16; i++)
		snprintf(uidl + 2 * i, 3, "%02x", md[i]);
}

/* The index by the rules, over the whole file at once. */
static int
ref_scan(const char *b, size_t n, struct mbox_msg *msgs, size_t *count)
{
	size_t	 i, j, k, nm = 0, from, off, end, ls, len;

	*count = 0;
	if (n == 0)
		return MBOX_OK;
	if (n < 5 || memcmp(b, "From ", 5) != 0)
		return MBOX_NOTMBOX;
	for (i = 0; i + 5 <= n; i++)
		if ((i == 0 || b[i - 1] == '\n') &&
		    memcmp(b + i, "From ", 5) == 0)
			msgs[nm++].from = i;
	for (k = 0; k < nm; k++) {
		from = msgs[k].from;
		end = k + 1 < nm ? (size_t)msgs[k + 1].from : n;
		for (off = from; off < end && b[off] != '\n'; off++)
			;
		if (off < end)
			off++;
		len = end - off;
		if (len > 0 && b[end - 1] == '\n') {
			for (ls = end - 1; ls > off && b[ls - 1] != '\n'; ls--)
				;
			if (end - ls == 1 || (end - ls == 2 && b[ls] == '\r'))
				len = ls - off;
		}
		msgs[k].off = off;
		msgs[k].len = len;
		msgs[k].size = ref_crlf_size(b, off, off + len);
		ref_uidl(b, from, end, off + len, msgs[k].uidl);
	}
	for (k = 0; k < nm; k++) {
		for (i = 0, j = 1; i < k; i++)
			if (memcmp(msgs[i].uidl, msgs[k].uidl, 32) == 0)
				j++;
		if (j > 1)
			snprintf(msgs[k].uidl + 32, UIDL_SIZE - 32, ".%u",
			    (unsigned)j);
	}
	*count = nm;
	return MBOX_OK;
}

/* A random mbox-like text of about n bytes, mostly well formed. */
static size_t
random_mbox(char *b, size_t n)
{
	static const char *const tok[] = {
		"From a@b x\n", "From a@b x\r\n", "From c\n", "\n", "\r\n",
		"\n\n", "Status: RO\n", "X-Status: A\r\n", "status :x\n",
		" cont\n", "\tcont\r\n", "Subject: s\n", "Subject: t\n",
		".dot\n", "..\n", ".\n", ">From a\n", "From", "F", "rom ",
		"X-Keywords: k\n", "Lines: 3\n", "x\r", "\r", "\0", "a:b\n",
		"X-Mozilla-Status2: 1\n", "X-UIDX: 2\n", "From \n"
	};
	static const char alpha[] = "\n\r.aF rom:";
	size_t	 o = 0, t;

	if (rnd() % 8 != 0) {
		memcpy(b, "From ", 5);
		o = 5;
	}
	while (o < n) {
		if (rnd() % 3 == 0) {
			b[o++] = alpha[rnd() % LEN(alpha)];
			continue;
		}
		t = rnd() % (sizeof(tok) / sizeof(tok[0]));
		/* "\0" is one NUL byte: strlen would say 0 */
		if (tok[t][0] == '\0')
			b[o++] = '\0';
		else {
			memcpy(b + o, tok[t], strlen(tok[t]));
			o += strlen(tok[t]);
		}
	}
	return o;
}

static void
test_from_at_start(void)
{
	static const char b[] = "From a@b Mon Jan  1 00:00:00 2024\n"
	    "Subject: x\n\nbody\n";
	struct mbox_index	 idx;

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK_INT(idx.msgs[0].from, ==, 0);
	CHECK_INT(idx.msgs[0].off, ==, 34);
	CHECK(served(b, &idx, 0, "Subject: x\n\nbody\n", 17));
	CHECK_INT(idx.msgs[0].size, ==, 17 + 3);
	CHECK_INT(idx.end, ==, LEN(b));
	mbox_index_free(&idx);
}

static void
test_from_after_lines(void)
{
	static const char blank[] = "From a\nA: 1\n\nb1\n\n"
	    "From b\nA: 2\n\nb2\n";
	static const char nonblank[] = "From a\nA: 1\n\nb1\nFrom b\nA: 2\n";
	struct mbox_index	 idx;

	idx_zero(&idx);
	CHECK_INT(scan(blank, LEN(blank), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 2);
	CHECK(served(blank, &idx, 0, "A: 1\n\nb1\n", 9));
	CHECK(served(blank, &idx, 1, "A: 2\n\nb2\n", 9));
	CHECK_INT(idx.msgs[1].from, ==, 17);
	CHECK_INT(idx.msgs[0].size, ==, 12);
	/* no blank line before it: a From_ line all the same */
	CHECK_INT(scan(nonblank, LEN(nonblank), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 2);
	CHECK(served(nonblank, &idx, 0, "A: 1\n\nb1\n", 9));
	CHECK(served(nonblank, &idx, 1, "A: 2\n", 5));
	mbox_index_free(&idx);
}

static void
test_not_separators(void)
{
	static const char b[] = "From a\nA: 1\n\n>From x\nFrom\nFromage\n"
	    "From:x\n from y\nfrom z\n x From w\n";
	struct mbox_index	 idx;
	char			 out[2 * sizeof(b)];
	size_t			 o;

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK(served(b, &idx, 0, b + 7, LEN(b) - 7));
	/* >From is served as stored */
	o = xf(b + 7, LEN(b) - 7, 1, -1, out, 0);
	CHECK(o >= 17 && memcmp(out, "A: 1\r\n\r\n>From x\r\n", 17) == 0);
	mbox_index_free(&idx);
}

static void
test_no_final_newline(void)
{
	static const char b[] = "From a\nA: 1\n\nlast";
	struct mbox_index	 idx;
	char			 out[64];

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK(served(b, &idx, 0, "A: 1\n\nlast", 10));
	CHECK_INT(idx.msgs[0].size, ==, 10 + 2 + 2);
	CHECK_INT(xf(b + 7, 10, 1, -1, out, 0), ==, 14);
	CHECK_MEM(out, "A: 1\r\n\r\nlast\r\n", 14);
	mbox_index_free(&idx);
}

static void
test_crlf(void)
{
	static const char b[] = "From a\r\nA: 1\r\n\r\nbody\r\n\r\n"
	    "From b\r\nA: 2\r\n\r\nb\r\nmixed\n\r\n";
	struct mbox_index	 idx;

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 2);
	CHECK(served(b, &idx, 0, "A: 1\r\n\r\nbody\r\n", 14));
	CHECK_INT(idx.msgs[0].size, ==, 14);
	CHECK(served(b, &idx, 1, "A: 2\r\n\r\nb\r\nmixed\n", 17));
	CHECK_INT(idx.msgs[1].size, ==, 18);
	CHECK_INT(idx.msgs[0].off, ==, 8);
	mbox_index_free(&idx);
}

static void
test_nul_bytes(void)
{
	static const char b[] = "From a\nA: \0\n\nx\0y\n\0\n";
	struct mbox_index	 idx;
	char			 out[64];

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK(served(b, &idx, 0, "A: \0\n\nx\0y\n\0\n", 12));
	CHECK_INT(idx.msgs[0].size, ==, 16);
	CHECK_INT(xf(b + 7, 12, 1, -1, out, 0), ==, 16);
	CHECK_MEM(out, "A: \0\r\n\r\nx\0y\r\n\0\r\n", 16);
	mbox_index_free(&idx);
}

static void
test_long_line(void)
{
	struct mbox_index	 a, c;
	size_t			 n, i;
	char			*b;

	idx_zero(&a);
	idx_zero(&c);
	REQUIRE((b = malloc(3 << 20)) != NULL);
	/* a 1 MB header line and a 1 MB body line */
	n = 0;
	memcpy(b, "From a\nSubject: ", 16);
	n = 16;
	memset(b + n, 'h', 1 << 20);
	n += 1 << 20;
	memcpy(b + n, "\n\n", 2);
	n += 2;
	memset(b + n, 'x', 1 << 20);
	n += 1 << 20;
	memcpy(b + n, "\r\n\nFrom b\n", 10);
	n += 10;
	CHECK_INT(scan(b, n, &a), ==, MBOX_OK);
	REQUIRE(a.count == 2);
	CHECK_INT(a.msgs[0].len, ==, 9 + (1 << 20) + 2 + (1 << 20) + 2);
	CHECK_INT(a.msgs[0].size, ==, a.msgs[0].len + 2);
	for (i = 0; i < 3; i++) {
		CHECK_INT(scan_chunked(b, n, &c, i == 0 ? 1 : 4096 << i), ==,
		    MBOX_OK);
		CHECK(same_index(&a, &c));
	}
	/* and a different header line makes a different UIDL */
	b[20] = 'H';
	CHECK_INT(scan(b, n, &c), ==, MBOX_OK);
	CHECK(c.count == 2 && strcmp(a.msgs[0].uidl, c.msgs[0].uidl) != 0);
	free(b);
	mbox_index_free(&a);
	mbox_index_free(&c);
}

/* A message and a line over 2 GB, fed without being stored: lengths
 * are off_t all the way. */
static void
test_huge_message(void)
{
	static const char	 start[] = "From a\nA: b\n\n";
	struct mbox_scan	 s;
	struct mbox_index	 idx;
	size_t			 chunk = 1 << 20, i, parts = 2100;
	char			*b;

	idx_zero(&idx);
	REQUIRE((b = malloc(chunk)) != NULL);
	memset(b, 'z', chunk);
	mbox_scan_init(&s, &idx);
	CHECK_INT(mbox_scan_feed(&s, start, LEN(start)), ==, MBOX_OK);
	for (i = 0; i < parts; i++)
		CHECK_INT(mbox_scan_feed(&s, b, chunk), ==, MBOX_OK);
	CHECK_INT(mbox_scan_feed(&s, "\n", 1), ==, MBOX_OK);
	CHECK_INT(mbox_scan_finish(&s), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK_INT(idx.msgs[0].len, ==, 6 + (off_t)parts * chunk + 1);
	CHECK_INT(idx.msgs[0].size, ==, idx.msgs[0].len + 3);
	CHECK_INT(idx.end, ==, LEN(start) + (off_t)parts * chunk + 1);
	free(b);
	mbox_index_free(&idx);
}

static void
test_empty_and_not_mbox(void)
{
	static const char *const bad[] = {
		"\nFrom a\n", "Subject: x\n\nbody\n", "From", "Fro",
		" From a\n", "from a\n", "From:a\n", "\r\nFrom a\n", "F\n", "x"
	};
	struct mbox_index	 idx;
	size_t			 i, c;

	idx_zero(&idx);
	CHECK_INT(scan("", 0, &idx), ==, MBOX_OK);
	CHECK_INT(idx.count, ==, 0);
	CHECK_INT(idx.end, ==, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (c = 0; c < 2; c++)
			CHECK_INT(scan_chunked(bad[i], strlen(bad[i]), &idx, c),
			    ==, MBOX_NOTMBOX);
	/* the smallest mbox: a From_ line alone, even without its LF */
	CHECK_INT(scan("From ", 5, &idx), ==, MBOX_OK);
	CHECK(idx.count == 1 && idx.msgs[0].off == 5 && idx.msgs[0].len == 0);
	CHECK_INT(scan_chunked("From x\r", 7, &idx, 1), ==, MBOX_OK);
	CHECK(idx.count == 1 && idx.msgs[0].off == 7 && idx.msgs[0].len == 0);
	mbox_index_free(&idx);
}

static void
test_empty_messages_and_separators(void)
{
	static const char b1[] = "From a\n\nFrom b\nFrom c\nX: y\n\n\n";
	static const char b2[] = "From a\nX: y\n\nbody\r\n\r\n";
	struct mbox_index	 idx;

	idx_zero(&idx);
	CHECK_INT(scan(b1, LEN(b1), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 3);
	CHECK_INT(idx.msgs[0].len, ==, 0);
	CHECK_INT(idx.msgs[0].size, ==, 0);
	CHECK_INT(idx.msgs[1].len, ==, 0);
	CHECK_INT(idx.msgs[1].off, ==, idx.msgs[2].from);
	/* only the last blank line is the separator */
	CHECK(served(b1, &idx, 2, "X: y\n\n", 6));
	CHECK_INT(idx.msgs[2].size, ==, 8);
	CHECK_INT(scan(b2, LEN(b2), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK(served(b2, &idx, 0, "X: y\n\nbody\r\n", 12));
	CHECK_INT(idx.msgs[0].size, ==, 14);
	mbox_index_free(&idx);
}

/* The scanner agrees with ref_scan and with itself however it is fed,
 * and each size is what the transform sends. */
static void
test_random_mboxes(void)
{
	static char		 b[4096], out[2 * sizeof(b) + 2];
	static struct mbox_msg	 ref[sizeof(b)];
	struct mbox_index	 a, c;
	size_t			 n, i, k, refn;
	int			 err, round;

	idx_zero(&a);
	idx_zero(&c);
	for (round = 0; round < 3000; round++) {
		n = random_mbox(b, rnd() % 2000);
		err = scan(b, n, &a);
		CHECK_INT(err, ==, ref_scan(b, n, ref, &refn));
		if (err != MBOX_OK)
			continue;
		CHECK_INT(a.count, ==, refn);
		CHECK_INT(a.end, ==, n);
		for (i = 0; i < a.count && i < refn; i++) {
			CHECK_INT(a.msgs[i].from, ==, ref[i].from);
			CHECK_INT(a.msgs[i].off, ==, ref[i].off);
			CHECK_INT(a.msgs[i].len, ==, ref[i].len);
			CHECK_INT(a.msgs[i].size, ==, ref[i].size);
			CHECK_STR(a.msgs[i].uidl, ref[i].uidl);
			k = xf(b + a.msgs[i].off, a.msgs[i].len, 0, -1, out,
			    0);
			CHECK_INT(k, ==, a.msgs[i].size);
		}
		for (k = 1; k < 4; k++) {
			CHECK_INT(scan_chunked(b, n, &c, k == 3 ? 64 : k), ==,
			    MBOX_OK);
			CHECK(same_index(&a, &c));
		}
	}
	mbox_index_free(&a);
	mbox_index_free(&c);
}

/* The content sum: the same however the bytes come, and different when
 * one byte differs, a same-size Status: rewrite included. */
/* The AVX2 kernels give what the plain ones give, on mbox text and on
 * bytes from a small alphabet, wherever they start and stop. */
static void
test_kernels(void)
{
#ifdef HAVE_AVX2
	static const char	 alpha[] = "\n\r\nFrom xF\n";
	static char		 b[8192];
	struct mbox_scan	 s1, s2;
	off_t			 x, y;
	size_t			 i, off, n, k1, k2;
	int			 round;

	if (!have_avx2()) {
		fprintf(stderr, "unit_mbox: no AVX2 here, nothing to "
		    "compare\n");
		return;
	}
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	for (round = 0; round < 4000; round++) {
		if (round % 2 == 0)
			n = random_mbox(b, 100 + rnd() % 4000);
		else
			for (n = 1 + rnd() % 3000, i = 0; i < n; i++)
				b[i] = alpha[rnd() % (sizeof(alpha) - 1)];
		off = rnd() % 40 < n ? rnd() % 40 : 0;
		x = y = 0;
		k1 = body_lines_bytes(b + off, n - off, &x);
		k2 = body_lines_avx2(b + off, n - off, &y, round % 3 * 4096);
		CHECK_INT(k1, ==, k2);
		CHECK_INT(x, ==, y);
		k1 = n - n % SUM_STRIPE;
		sum_stripes_bytes(&s1, b, k1);
		sum_stripes_avx2(&s2, b, k1);
		CHECK(memcmp(s1.sum, s2.sum, sizeof(s1.sum)) == 0 &&
		    s1.stripes == s2.stripes);
	}
#endif
}

/* Two stripes of the content sum swapped: the sum shows it. */
static void
test_content_sum_order(void)
{
	static char		 b[4096], c[4096];
	struct mbox_index	 a, d;
	size_t			 n;

	idx_zero(&a);
	idx_zero(&d);
	n = random_mbox(b, 3000);
	REQUIRE(n > 4 * SUM_STRIPE);
	memcpy(c, b, n);
	memcpy(c + SUM_STRIPE, b + 3 * SUM_STRIPE, SUM_STRIPE);
	memcpy(c + 3 * SUM_STRIPE, b + SUM_STRIPE, SUM_STRIPE);
	if (memcmp(b, c, n) != 0 && scan(b, n, &a) == MBOX_OK &&
	    scan(c, n, &d) == MBOX_OK)
		CHECK(a.sum != d.sum);
	mbox_index_free(&a);
	mbox_index_free(&d);
}

static void
test_content_sum(void)
{
	static char		 b[4096];
	struct mbox_index	 a, c;
	size_t			 n, k, pos;
	int			 round;
	const char		*m1 = "From a@b x\nStatus: O\nSubject: s\n\nbody\n";
	const char		*m2 = "From a@b x\nStatus: R\nSubject: s\n\nbody\n";

	idx_zero(&a);
	idx_zero(&c);
	CHECK_INT(scan(m1, strlen(m1), &a), ==, MBOX_OK);
	CHECK_INT(scan(m2, strlen(m2), &c), ==, MBOX_OK);
	CHECK(a.sum != c.sum);
	CHECK_STR(a.msgs[0].uidl, c.msgs[0].uidl);
	for (round = 0; round < 500; round++) {
		n = random_mbox(b, 8 + rnd() % 2000);
		if (scan(b, n, &a) != MBOX_OK)
			continue;
		for (k = 1; k < 4; k++) {
			CHECK_INT(scan_chunked(b, n, &c, k == 3 ? 13 : k), ==,
			    MBOX_OK);
			CHECK(a.sum == c.sum);
		}
		pos = 5 + rnd() % (n - 5);
		b[pos] ^= 0x20;
		if (scan(b, n, &c) == MBOX_OK)
			CHECK(a.sum != c.sum);
		/* the same bytes, one fewer: the length counts too */
		if (scan(b, n - 1, &c) == MBOX_OK)
			CHECK(a.sum != c.sum);
	}
	mbox_index_free(&a);
	mbox_index_free(&c);
}

/* A field name padded with blanks past MBOX_HEAD before its colon: the
 * UIDL must not depend on where the chunks fall (found by fuzz_mbox). */
static void
test_field_name_past_head(void)
{
	static const char	 b[] = "From a@b x\nStatus                          :"
	    " RO\nSubject: s\n\nbody\n";
	struct mbox_index	 a, c;
	size_t			 k;

	idx_zero(&a);
	idx_zero(&c);
	REQUIRE(scan(b, LEN(b), &a) == MBOX_OK);
	for (k = 1; k < 40; k++) {
		REQUIRE(scan_chunked(b, LEN(b), &c, k) == MBOX_OK);
		CHECK(same_index(&a, &c));
	}
	mbox_index_free(&a);
	mbox_index_free(&c);
}

static void
test_xform_random(void)
{
	static const char	 alpha[] = "\n\r.aF rom";
	static const long long	 tops[] = { -1, 0, 1, 2, 5 };
	char			 in[1500], out[2 * sizeof(in) + 2];
	char			 want[2 * sizeof(in) + 2];
	size_t			 n, i, o, w;
	int			 round, stuff, t;

	for (round = 0; round < 20000; round++) {
		/* long enough, at times, for the 64-byte steps of RETR */
		n = rnd() % (round % 3 == 0 ? sizeof(in) : 600);
		for (i = 0; i < n; i++)
			in[i] = alpha[rnd() % LEN(alpha)];
		stuff = rnd() % 2;
		t = rnd() % (sizeof(tops) / sizeof(tops[0]));
		w = ref_xform(in, n, stuff, tops[t], want);
		o = xf(in, n, stuff, tops[t], out, round % 4 == 0 ? 1 :
		    round % 4 == 1 ? 0 : 1 + rnd() % (round % 8 == 2 ? 700 : 40));
		CHECK_INT(o, ==, w);
		CHECK(o == w && memcmp(out, want, w) == 0);
	}
}

static void
test_dot_stuffing(void)
{
	static const char	 in[] = ".\n..x\na.\n\r.a\n.";
	static const char	 want[] = "..\r\n...x\r\na.\r\n\r.a\r\n..\r\n";
	char			 out[64];
	size_t			 c;

	for (c = 0; c < 3; c++) {
		CHECK_INT(xf(in, LEN(in), 1, -1, out, c), ==, LEN(want));
		CHECK_MEM(out, want, LEN(want));
	}
	/* without stuffing: the LIST size */
	CHECK_INT(xf(in, LEN(in), 0, -1, out, 0), ==, LEN(want) - 3);
}

static void
test_top(void)
{
	static const char	 m[] = "A: 1\r\nB: 2\n\n.b1\nb2\r\nb3\n";
	static const char	 nobody[] = "A: 1\nB: 2\n";
	struct xform		 x;
	char			 out[128];
	size_t			 o, used;

	CHECK_INT(xf(m, LEN(m), 1, 0, out, 0), ==, 14);
	CHECK_MEM(out, "A: 1\r\nB: 2\r\n\r\n", 14);
	CHECK_INT(xf(m, LEN(m), 1, 1, out, 1), ==, 20);
	CHECK_MEM(out, "A: 1\r\nB: 2\r\n\r\n..b1\r\n", 20);
	CHECK_INT(xf(m, LEN(m), 1, 1000, out, 0), ==, 28);
	CHECK_MEM(out, "A: 1\r\nB: 2\r\n\r\n..b1\r\nb2\r\nb3\r\n", 28);
	CHECK_INT(xf(nobody, LEN(nobody), 1, 0, out, 0), ==, 12);
	CHECK_MEM(out, "A: 1\r\nB: 2\r\n", 12);
	CHECK_INT(xf("A: 1", 4, 1, 3, out, 0), ==, 6);
	/* the input stops right after the last line sent */
	xform_init(&x, 1, 1);
	o = xform_run(&x, m, LEN(m), out, &used);
	CHECK(x.done);
	CHECK_INT(used, ==, 16);
	CHECK_INT(o, ==, 20);
	CHECK_INT(xform_end(&x, out + o), ==, 0);
	CHECK_INT(xform_run(&x, m + used, LEN(m) - used, out, &used), ==, 0);
	CHECK_INT(used, ==, 0);
	/* an empty message sends nothing */
	xform_init(&x, 1, -1);
	CHECK_INT(xform_run(&x, "", 0, out, &used), ==, 0);
	CHECK_INT(xform_end(&x, out), ==, 0);
}

/* Whether a UIDL is 32 hex digits, maybe ".N", and RFC 1939 clean. */
static int
uidl_ok(const char *u)
{
	size_t	 i, n = strlen(u);

	if (n < 1 || n > 70 || n >= UIDL_SIZE || n < 32)
		return 0;
	for (i = 0; i < n; i++)
		if (u[i] < 0x21 || u[i] > 0x7e)
			return 0;
	for (i = 0; i < 32; i++)
		if (strchr("0123456789abcdef", u[i]) == NULL)
			return 0;
	if (n == 32)
		return 1;
	/* ".N", N >= 2 without leading zeros */
	return u[32] == '.' && u[33] >= '1' && u[33] <= '9' &&
	    strspn(u + 33, "0123456789") == n - 33 && atol(u + 33) >= 2;
}

static void
test_uidl_format(void)
{
	/* Pinned: once released, the UIDL of a message never changes. */
	static const char b[] =
	    "From alice@example.org Mon Jan  1 00:00:00 2024\r\n"
	    "Subject: hi\r\nStatus: RO\r\nMessage-ID: <1@example.org>\r\n"
	    "X-Status: A\r\n\r\nbody\r\n";
	struct mbox_index	 idx;

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	CHECK_STR(idx.msgs[0].uidl, "d73ae62d81f54867163c91bb385b3265");
	CHECK(uidl_ok(idx.msgs[0].uidl));
	mbox_index_free(&idx);
}

static void
test_uidl_duplicates(void)
{
	static const char b[] = "From a\nA: 1\n\nx\n\nFrom a\nA: 1\n\ny\n\n"
	    "From a\nA: 2\n\nx\n\nFrom a\nA: 1\n\nz\n";
	struct mbox_index	 idx;
	char			 want[2 * UIDL_SIZE];
	size_t			 i, j;

	idx_zero(&idx);
	CHECK_INT(scan(b, LEN(b), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 4);
	CHECK_INT(strlen(idx.msgs[0].uidl), ==, 32);
	snprintf(want, sizeof(want), "%s.2", idx.msgs[0].uidl);
	CHECK_STR(idx.msgs[1].uidl, want);
	snprintf(want, sizeof(want), "%s.3", idx.msgs[0].uidl);
	CHECK_STR(idx.msgs[3].uidl, want);
	CHECK_INT(strlen(idx.msgs[2].uidl), ==, 32);
	for (i = 0; i < idx.count; i++) {
		CHECK(uidl_ok(idx.msgs[i].uidl));
		for (j = 0; j < i; j++)
			CHECK(strcmp(idx.msgs[i].uidl, idx.msgs[j].uidl) != 0);
	}
	mbox_index_free(&idx);
}

/* Mail readers rewrite these headers: the UIDL must not notice. */
static void
test_uidl_rewritten_headers(void)
{
	static const char *const v[] = {
		"From a@b Tue\nSubject: s\nTo: t\n\nbody\n",
		"From a@b Tue\nSubject: s\nStatus: RO\nTo: t\n\nbody\n",
		"From a@b Tue\nStatus: O\nSubject: s\nX-Status: AF\nTo: t\n\n"
		    "body\n",
		"From a@b Tue\r\nSubject: s\r\nTo: t\r\nSTATUS:RO\r\n\r\n"
		    "body\r\n",
		"From a@b Tue\nX-Keywords: $Junk\n  more\nSubject: s\nLines: 1"
		    "\nContent-Length: 5\nTo: t\nX-UID: 7\n\nbody\n",
		"From a@b Tue\nX-IMAPbase: 1 2\nX-IMAP: 3\nSubject: s\n"
		    "X-Mozilla-Status: 0001\nX-Mozilla-Status2: 0\nTo: t\n\n"
		    "body\n",
		/* the body's length counts with CRLF line ends, a missing
		 * final one included */
		"From a@b Tue\nSubject: s\nTo: t\n\r\nbody",
	};
	/* no body: the same as each other, not as those with one */
	static const char *const headers_only[] = {
		"From a@b Tue\nSubject: s\nTo: t\n",
		"From a@b Tue\nSubject: s\nstatus\t: R\nTo: t\n",
		"From a@b Tue\nSubject: s\nTo: t",
		"From a@b Tue\nSubject: s\nTo: t\n\n",
		"From a@b Tue\nSubject: s\nTo: t\n\n\nFrom a@b Wed\n",
	};
	static const char *const differ[] = {
		"From a@b Wed\nSubject: s\nTo: t\n\nbody\n",
		"From a@b Tue\nSubject: s\nTo: u\n\nbody\n",
		"From a@b Tue\nSubject: s\n\tTo: t\n\nbody\n",
		"From a@b Tue\nSubject: s\nStatus: RO\n\nTo: t\n\nbody\n",
		"From a@b Tue\nSubject: s\nX-Status-Not: 1\nTo: t\n\nbody\n",
		"From a@b Tue\nSubject: s\nTo: t\nStatusX: RO\n\nbody\n",
		"From a@b Tue\nSubject: s\nTo: t\n\nbodY\nx\n",
		"From a@b Tue\nSubject: s\nTo: t\n\nbod\n",
		"From a@b Tue\nSubject: s\nTo: t\n",
	};
	struct mbox_index	 idx;
	char			 base[UIDL_SIZE];
	size_t			 i, c;

	idx_zero(&idx);
	CHECK_INT(scan(v[0], strlen(v[0]), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == 1);
	memcpy(base, idx.msgs[0].uidl, sizeof(base));
	for (i = 1; i < sizeof(v) / sizeof(v[0]); i++)
		for (c = 0; c < 2; c++) {
			CHECK_INT(scan_chunked(v[i], strlen(v[i]), &idx, c), ==,
			    MBOX_OK);
			CHECK(idx.count == 1 &&
			    strcmp(idx.msgs[0].uidl, base) == 0);
		}
	for (i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		CHECK_INT(scan(differ[i], strlen(differ[i]), &idx), ==,
		    MBOX_OK);
		CHECK(idx.count == 1 && strcmp(idx.msgs[0].uidl, base) != 0);
	}
	CHECK_INT(scan(headers_only[0], strlen(headers_only[0]), &idx), ==,
	    MBOX_OK);
	REQUIRE(idx.count == 1);
	memcpy(base, idx.msgs[0].uidl, sizeof(base));
	for (i = 1; i < sizeof(headers_only) / sizeof(headers_only[0]); i++)
		for (c = 0; c < 2; c++) {
			CHECK_INT(scan_chunked(headers_only[i],
			    strlen(headers_only[i]), &idx, c), ==, MBOX_OK);
			CHECK(idx.count >= 1 &&
			    strcmp(idx.msgs[0].uidl, base) == 0);
		}
	mbox_index_free(&idx);
}

/* Deleting a message (as the commit does: its bytes from its From_
 * line to the next) leaves the other UIDLs as they were. */
static void
test_uidl_after_delete(void)
{
	static const char b[] = "From a\nM: 1\n\nx\n\nFrom a\nM: 2\n\nx\n\n"
	    "From b\nM: 1\n\nx\n\nFrom a\nM: 3\n\nx\n\nFrom a\nM: 4\n";
	struct mbox_index	 a, c;
	char			 d[sizeof(b)];
	size_t			 del, i, j, n, start, stop;

	idx_zero(&a);
	idx_zero(&c);
	CHECK_INT(scan(b, LEN(b), &a), ==, MBOX_OK);
	REQUIRE(a.count == 5);
	for (i = 0; i < a.count; i++)
		for (j = 0; j < i; j++)
			CHECK(strcmp(a.msgs[i].uidl, a.msgs[j].uidl) != 0);
	for (del = 0; del < a.count; del++) {
		start = a.msgs[del].from;
		stop = del + 1 < a.count ? (size_t)a.msgs[del + 1].from :
		    LEN(b);
		memcpy(d, b, start);
		memcpy(d + start, b + stop, LEN(b) - stop);
		n = LEN(b) - (stop - start);
		CHECK_INT(scan(d, n, &c), ==, MBOX_OK);
		REQUIRE(c.count == a.count - 1);
		for (i = 0, j = 0; i < a.count; i++)
			if (i != del)
				CHECK_STR(c.msgs[j++].uidl, a.msgs[i].uidl);
	}
	mbox_index_free(&a);
	mbox_index_free(&c);
}

/* Two messages with the same From_ line and headers but bodies of other
 * lengths are not twins: neither gets a suffix, and deleting the first
 * leaves the second's UIDL as it was. */
static void
test_uidl_header_twins(void)
{
	static const char b[] = "From a\nM: 1\n\nshort\n\n"
	    "From a\nM: 1\n\na longer body\n\nFrom a\nM: 1\n\nshort\n";
	struct mbox_index	 a, c;

	idx_zero(&a);
	idx_zero(&c);
	CHECK_INT(scan(b, LEN(b), &a), ==, MBOX_OK);
	REQUIRE(a.count == 3);
	CHECK_INT(strlen(a.msgs[0].uidl), ==, 32);
	CHECK_INT(strlen(a.msgs[1].uidl), ==, 32);
	CHECK(strcmp(a.msgs[0].uidl, a.msgs[1].uidl) != 0);
	/* the third is a true twin of the first */
	CHECK(strncmp(a.msgs[2].uidl, a.msgs[0].uidl, 32) == 0 &&
	    strcmp(a.msgs[2].uidl + 32, ".2") == 0);
	CHECK_INT(scan(b + a.msgs[1].from, LEN(b) - a.msgs[1].from, &c), ==,
	    MBOX_OK);
	REQUIRE(c.count == 2);
	CHECK_STR(c.msgs[0].uidl, a.msgs[1].uidl);
	mbox_index_free(&a);
	mbox_index_free(&c);
}

static void
test_scan_fd(void)
{
	static const char b[] = "From a\nA: 1\n\nx\n\nFrom b\nA: 2\n\ny\n";
	struct mbox_index	 idx, whole;
	char			 path[] = "/tmp/unit_mbox.XXXXXX";
	int			 fd;

	idx_zero(&idx);
	idx_zero(&whole);
	REQUIRE((fd = mkstemp(path)) != -1);
	unlink(path);
	REQUIRE(write(fd, b, LEN(b)) == (ssize_t)LEN(b));
	CHECK_INT(mbox_scan_fd(fd, -1, &whole), ==, MBOX_OK);
	CHECK_INT(whole.count, ==, 2);
	CHECK_INT(whole.end, ==, LEN(b));
	/* a limit: as if the second message had not been delivered yet */
	CHECK_INT(mbox_scan_fd(fd, 16, &idx), ==, MBOX_OK);
	CHECK_INT(idx.count, ==, 1);
	CHECK_INT(idx.end, ==, 16);
	CHECK(idx.count == 1 && idx.msgs[0].len == 8 &&
	    strcmp(idx.msgs[0].uidl, whole.msgs[0].uidl) == 0);
	CHECK_INT(mbox_scan_fd(fd, LEN(b), &idx), ==, MBOX_OK);
	CHECK(same_index(&idx, &whole));
	CHECK_INT(mbox_scan_fd(fd, 0, &idx), ==, MBOX_OK);
	CHECK_INT(idx.count, ==, 0);
	/* a file shorter than the limit has been truncated */
	errno = 0;
	CHECK_INT(mbox_scan_fd(fd, LEN(b) + 1, &idx), ==, MBOX_IO);
	CHECK_INT(errno, ==, ESTALE);
	CHECK_INT(mbox_scan_fd(-1, -1, &idx), ==, MBOX_IO);
	CHECK_INT(errno, ==, EBADF);
	close(fd);
	mbox_index_free(&idx);
	mbox_index_free(&whole);
}

/* MAX_MESSAGES exact duplicates are fine, one more is too many. */
static void
test_limits(void)
{
	struct mbox_scan	 s;
	struct mbox_index	 idx;
	size_t			 n = (size_t)MAX_MESSAGES + 1, i;
	char			*b, want[2 * UIDL_SIZE];

	idx_zero(&idx);
	REQUIRE((b = malloc(6 * n)) != NULL);
	for (i = 0; i < n; i++)
		memcpy(b + 6 * i, "From \n", 6);
	CHECK_INT(scan(b, 6 * (n - 1), &idx), ==, MBOX_OK);
	REQUIRE(idx.count == MAX_MESSAGES);
	snprintf(want, sizeof(want), "%s.%d", idx.msgs[0].uidl, MAX_MESSAGES);
	CHECK_STR(idx.msgs[MAX_MESSAGES - 1].uidl, want);
	CHECK(uidl_ok(idx.msgs[MAX_MESSAGES - 1].uidl));
	CHECK_INT(scan(b, 6 * n, &idx), ==, MBOX_TOOBIG);
	/* the size limit, without writing a terabyte first */
	mbox_scan_init(&s, &idx);
	CHECK_INT(mbox_scan_feed(&s, "From a\n", 7), ==, MBOX_OK);
	s.pos = MAX_MAILDROP_SIZE - 3;
	CHECK_INT(mbox_scan_feed(&s, "abc", 3), ==, MBOX_OK);
	CHECK_INT(mbox_scan_feed(&s, "d", 1), ==, MBOX_TOOBIG);
	CHECK_INT(mbox_scan_finish(&s), ==, MBOX_TOOBIG);
	CHECK(*mbox_strerror(MBOX_TOOBIG) != '\0');
	CHECK(*mbox_strerror(12345) != '\0');
	free(b);
	mbox_index_free(&idx);
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	UNIT_RUN(test_kernels);
	UNIT_RUN(test_content_sum);
	UNIT_RUN(test_content_sum_order);
	UNIT_RUN(test_field_name_past_head);
	UNIT_RUN(test_from_at_start);
	UNIT_RUN(test_from_after_lines);
	UNIT_RUN(test_not_separators);
	UNIT_RUN(test_no_final_newline);
	UNIT_RUN(test_crlf);
	UNIT_RUN(test_nul_bytes);
	UNIT_RUN(test_long_line);
	UNIT_RUN(test_huge_message);
	UNIT_RUN(test_empty_and_not_mbox);
	UNIT_RUN(test_empty_messages_and_separators);
	UNIT_RUN(test_random_mboxes);
	UNIT_RUN(test_xform_random);
	UNIT_RUN(test_dot_stuffing);
	UNIT_RUN(test_top);
	UNIT_RUN(test_uidl_format);
	UNIT_RUN(test_uidl_header_twins);
	UNIT_RUN(test_uidl_duplicates);
	UNIT_RUN(test_uidl_rewritten_headers);
	UNIT_RUN(test_uidl_after_delete);
	UNIT_RUN(test_scan_fd);
	UNIT_RUN(test_limits);
	return unit_end();
}
