/*
 * mbox.c: scans an mbox into an index of messages (where each one is, its
 * size as RETR sends it, its UIDL); mbox_fd.c feeds it a file, xform.c
 * converts messages for RETR and TOP.  Pure functions over bytes: no locking, no processes, no network.
 *
 * The scanner takes the file in chunks of any size and looks at every
 * line only through memchr for its LF and a few bytes at its start, so
 * its memory depends on the number of messages, never on their size.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * SHA256_Init and friends: OpenSSL 3 calls them deprecated, yet they are
 * its SHA-256 (with the CPU's SHA extensions) without the EVP layer, whose
 * first use starts libcrypto's library context: it reads openssl.cnf and
 * sets up the providers, about 350 KB of the maildrop process's memory
 * for nothing it needs.  The maildrop process uses no other part of
 * libcrypto (commit.c and maildir.c do the same).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2	/* kernels for CPUs that have it, chosen at run time */
#endif

#include "pop3d.h"

/* The content sum (see content_sum): its constants and stripe. */
#define SUM_P1	0x9e3779b185ebca87ULL
#define SUM_P2	0xc2b2ae3d27d4eb4fULL
#define SUM_STEP	0x2545f4914f6cdd1dULL	/* the key, stripe to stripe */

/* The UIDL proper: this many digest bytes, as twice as many hex digits. */
#define UIDL_BYTES	16
#define UIDL_HEX	(2 * UIDL_BYTES)

/*
 * Header fields that mail readers and IMAP servers add or rewrite in
 * place: they must not change a message's UIDL.
 */
static const char *const rewritten_fields[] = {
	"Status", "X-Status", "X-Keywords", "X-UID", "X-IMAP", "X-IMAPbase",
	"Content-Length", "Lines", "X-Mozilla-Status", "X-Mozilla-Status2",
	NULL
};
#define REWRITTEN_MAX	17	/* strlen("X-Mozilla-Status2") */

void
mbox_index_free(struct mbox_index *idx)
{
	free(idx->msgs);
	memset(idx, 0, sizeof(*idx));
}

int
mbox_index_digest(const struct mbox_index *idx,
    unsigned char out[MBOX_DIGEST])
{
	SHA256_CTX	 c;

	return SHA256_Init(&c) == 1 && SHA256_Update(&c, idx->msgs,
	    idx->count * sizeof(*idx->msgs)) == 1 && SHA256_Final(out, &c) ==
	    1 ? 0 : -1;
}

/*
 * SHA-256 works: the known answer for "abc" (FIPS 180-2, B.1).  No
 * openssl.cnf has a say in the UIDL: nothing here starts libcrypto's
 * library context, which would read it.
 */
int
mbox_prepare(void)
{
	static const unsigned char	 abc[4] = { 0xba, 0x78, 0x16, 0xbf };
	unsigned char			 md[SHA256_DIGEST_LENGTH];
	SHA256_CTX			 c;

	if (SHA256_Init(&c) != 1 || SHA256_Update(&c, "abc", 3) != 1 ||
	    SHA256_Final(md, &c) != 1)
		return -1;
	return memcmp(md, abc, sizeof(abc)) == 0 ? 0 : -1;
}

void
mbox_scan_init(struct mbox_scan *s, struct mbox_index *idx)
{
	mbox_index_free(idx);
	memset(s, 0, sizeof(*s));
	s->idx = idx;
}

/* The scan is over, or failed: the digest context goes. */
static int
scan_release(struct mbox_scan *s)
{
	free(s->hash);
	s->hash = NULL;
	return s->err;
}

/* Adds n bytes to the UIDL digest of the current message. */
static void
hash_add(struct mbox_scan *s, const void *p, size_t n)
{
	if (SHA256_Update(s->hash, p, n) != 1)
		s->err = MBOX_NOMEM;
}

/* Whether the n bytes at b spell name, ASCII letters in any case. */
static int
name_is(const char *b, size_t n, const char *name)
{
	size_t		 i;
	unsigned char	 c, d;

	for (i = 0; i < n; i++) {
		c = (unsigned char)b[i];
		d = (unsigned char)name[i];
		if (d == '\0')
			return 0;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (d >= 'A' && d <= 'Z')
			d += 'a' - 'A';
		if (c != d)
			return 0;
	}
	return name[n] == '\0';
}

/*
 * Whether the header line whose first avail bytes are at b starts a field
 * that is rewritten in place; -1 when more bytes are needed to tell.  The
 * name may be followed by blanks before its colon (RFC 5322 obs-FWS).
 */
static int
field_rewritten(const char *b, size_t avail, int eof)
{
	const char *const	*f;
	size_t			 i, namelen;
	unsigned char		 c;

	/*
	 * The colon must come within MBOX_HEAD bytes even when more are at
	 * hand: a line start split between two chunks is judged on that
	 * many, and a UIDL must not depend on where the chunks end.
	 */
	if (avail > MBOX_HEAD)
		avail = MBOX_HEAD;
	for (i = 0; i < avail; i++) {
		c = (unsigned char)b[i];
		if (c == ':' || c <= ' ' || c > '~')
			break;
		if (i == REWRITTEN_MAX)
			return 0;	/* longer than any of them */
	}
	namelen = i;
	while (i < avail && (b[i] == ' ' || b[i] == '\t'))
		i++;
	if (i == avail)
		return eof || avail == MBOX_HEAD ? 0 : -1;
	if (b[i] != ':' || namelen == 0)
		return 0;
	for (f = rewritten_fields; *f != NULL; f++)
		if (name_is(b, namelen, *f))
			return 1;
	return 0;
}

/* Whether the 5 bytes at p start a From_ line. */
static inline int
is_from(const char *p)
{
	return p[0] == 'F' && p[1] == 'r' && p[2] == 'o' && p[3] == 'm' &&
	    p[4] == ' ';
}

#ifdef HAVE_AVX2
int
have_avx2(void)
{
	static int	 have = -1;

	if (have == -1)
		have = __builtin_cpu_supports("avx2") &&
		    __builtin_cpu_supports("popcnt");
	return have;
}
#endif

/* Makes room for one more message: MBOX_OK, MBOX_TOOBIG or MBOX_NOMEM. */
static int
msgs_grow(struct mbox_index *idx)
{
	struct mbox_msg	*m;
	size_t		 cap;

	if (idx->count >= MAX_MESSAGES)
		return MBOX_TOOBIG;
	if (idx->count < idx->cap)
		return MBOX_OK;
	cap = idx->cap > 0 ? idx->cap * 2 : 64;
	if (cap > MAX_MESSAGES)
		cap = MAX_MESSAGES;
	if ((m = realloc(idx->msgs, cap * sizeof(*m))) == NULL)
		return MBOX_NOMEM;
	idx->msgs = m;
	idx->cap = cap;
	return MBOX_OK;
}

/*
 * Ends the current message at offset end; partial: the line being read
 * has bytes but no LF (so it is not a separator and RETR adds a CRLF).
 */
static void
msg_close(struct mbox_scan *s, off_t end, int partial)
{
	static const char	 hex[] = "0123456789abcdef";
	struct mbox_msg		*m = &s->idx->msgs[s->idx->count - 1];
	uint8_t			 md[SHA256_DIGEST_LENGTH], blen[8];
	off_t			 lfs = s->lfs, body = 0;
	int			 i;

	/*
	 * An unfinished line is hashed as if its line end had come, so that
	 * a missing final newline, once some program adds it, leaves the
	 * UIDL as it was.
	 */
	if (partial && s->hashing)
		hash_add(s, "\n", 1);
	if (s->in_from) {
		/* A From_ line without LF at the end: nothing to serve. */
		m->off = end;
		m->len = 0;
		m->size = 0;
	} else {
		m->len = end - m->off;
		if (!partial && s->last_empty > 0) {
			/* The blank separator line belongs to the mbox. */
			m->len -= s->last_empty;
			if (s->last_empty == 1)
				lfs--;
		}
		m->size = m->len + lfs + (partial ? 2 : 0);
		/* The body as RETR sends it, CRLF line ends, a final one
		 * counted even while it is missing. */
		if (s->body_off >= 0 && s->body_off <= m->off + m->len)
			body = m->off + m->len - s->body_off +
			    lfs - s->body_lfs + (partial ? 2 : 0);
	}
	/* The body's length tells apart messages whose headers are the
	 * same; a fixed width after the lines keeps it unambiguous. */
	for (i = 0; i < 8; i++)
		blen[i] = (uint8_t)((uint64_t)body >> (56 - 8 * i));
	hash_add(s, blen, sizeof(blen));
	if (SHA256_Final(md, s->hash) != 1) {
		s->err = MBOX_NOMEM;
		return;
	}
	for (i = 0; i < UIDL_BYTES; i++) {
		m->uidl[2 * i] = hex[md[i] >> 4];
		m->uidl[2 * i + 1] = hex[md[i] & 0xf];
	}
	m->uidl[UIDL_HEX] = '\0';
}

/* A From_ line begins at s->line_start: ends the message before it and
 * starts the next. */
static void
msg_start(struct mbox_scan *s)
{
	struct mbox_msg	*m;
	int		 err;

	if (s->in_msg)
		msg_close(s, s->line_start, 0);
	if ((err = msgs_grow(s->idx)) != MBOX_OK) {
		s->err = err;
		return;
	}
	m = &s->idx->msgs[s->idx->count++];
	memset(m, 0, sizeof(*m));
	m->from = s->line_start;
	s->in_msg = 1;
	s->in_from = 1;
	s->in_headers = 0;
	s->skip_field = 0;
	s->lfs = 0;
	s->last_empty = 0;
	s->empty = 0;
	s->body_off = -1;
	s->body_lfs = 0;
	s->body_next = 0;
	s->hashing = 1;
	if ((s->hash == NULL && (s->hash = malloc(sizeof(*s->hash))) ==
	    NULL) || SHA256_Init(s->hash) != 1)
		s->err = MBOX_NOMEM;
}

/*
 * Judges the current line from its first avail bytes at b (eof: no more
 * will come): a From_ line starts a message, an empty line ends the
 * headers, a header line is hashed unless its field is rewritten in
 * place.  Returns -1, having changed nothing, when it needs more bytes;
 * else 0, with s->err set if the line makes the scan fail.
 */
static int
line_classify(struct mbox_scan *s, const char *b, size_t avail, int eof)
{
	int	 empty, r;

	if (avail < 5 && !eof && memcmp(b, "From ", avail) == 0)
		return -1;
	if (avail >= 5 && is_from(b)) {
		msg_start(s);
		s->classified = 1;
		return 0;
	}
	if (!s->in_msg) {
		s->err = MBOX_NOTMBOX;
		return 0;
	}
	if (b[0] == '\r' && avail == 1 && !eof)
		return -1;
	if (b[0] == '\n')
		empty = 1;
	else if (b[0] == '\r' && avail > 1 && b[1] == '\n')
		empty = 2;
	else
		empty = 0;
	if (!s->in_headers)
		s->hashing = 0;
	else if (empty) {
		s->in_headers = 0;
		s->hashing = 0;
		s->body_next = 1;
	} else if (b[0] == ' ' || b[0] == '\t')
		s->hashing = !s->skip_field;	/* continues the field */
	else {
		if ((r = field_rewritten(b, avail, eof)) == -1)
			return -1;
		s->skip_field = r;
		s->hashing = !r;
	}
	s->empty = empty;
	s->classified = 1;
	return 0;
}

/* Takes n > 0 bytes of the current line, none of them an LF. */
static void
line_part(struct mbox_scan *s, const char *p, size_t n)
{
	int	 cr = p[n - 1] == '\r';

	/* A CR at the end may be half of a CRLF, which hashes as LF: it
	 * waits for the next byte. */
	if (s->hashing) {
		if (s->prev_cr)
			hash_add(s, "\r", 1);
		hash_add(s, p, n - cr);
	}
	s->prev_cr = cr;
}

/* The LF of the current line has been taken (s->pos is past it). */
static void
line_end(struct mbox_scan *s)
{
	if (s->hashing)
		hash_add(s, "\n", 1);
	if (s->in_from) {
		s->in_from = 0;
		s->in_headers = 1;
		s->idx->msgs[s->idx->count - 1].off = s->pos;
	} else {
		if (!s->prev_cr)
			s->lfs++;
		s->last_empty = s->empty;
		if (s->body_next) {
			/* the empty line after the headers: the body follows */
			s->body_off = s->pos;
			s->body_lfs = s->lfs;
			s->body_next = 0;
		}
	}
	s->prev_cr = 0;
	s->classified = 0;
	s->line_start = s->pos;
}

/* Scans bytes of the current line, judged already, up to and including
 * its LF; returns how many it took. */
static size_t
line_scan(struct mbox_scan *s, const char *p, size_t n)
{
	const char	*lf;
	size_t		 k;

	if ((lf = memchr(p, '\n', n)) == NULL) {
		line_part(s, p, n);
		s->pos += n;
		return n;
	}
	k = lf - p;
	if (k > 0)
		line_part(s, p, k);
	s->pos += k + 1;
	line_end(s);
	return k + 1;
}

/*
 * Body lines from the line start p (never hashed): returns the bytes of
 * the whole lines before the first line that is a From_ line or whose
 * first 5 bytes are not all in [p, p + n), and adds to *bare the LFs
 * among them without a CR before.  One line at a time here; 32 bytes at
 * a time below where the CPU has AVX2.
 */
static size_t
body_lines_bytes(const char *p, size_t n, off_t *bare)
{
	const char	*lf;
	size_t		 ls = 0;

	while (n - ls >= 5 && !is_from(p + ls) &&
	    (lf = memchr(p + ls, '\n', n - ls)) != NULL) {
		if (lf == p + ls || lf[-1] != '\r')
			(*bare)++;
		ls = lf - p + 1;
	}
	return ls;
}

#ifdef HAVE_AVX2
/* The byte counters of acc, added up. */
__attribute__((target("avx2")))
static off_t
avx2_sum_bytes(__m256i acc)
{
	uint64_t	 q[4];

	acc = _mm256_sad_epu8(acc, _mm256_setzero_si256());
	memcpy(q, &acc, sizeof(q));
	return q[0] + q[1] + q[2] + q[3];
}

/* The 64 bytes that lo and hi compared, as a bit mask. */
__attribute__((target("avx2")))
static inline uint64_t
avx2_mask64(__m256i lo, __m256i hi)
{
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32 |
	    (uint32_t)_mm256_movemask_epi8(lo);
}

/*
 * body_lines_bytes 64 bytes a step.  Every LF is counted, in byte
 * counters, and every CR just before an LF takes one back.  Most steps
 * hold neither a CR nor an LF followed by "F" and go no further; one
 * that does is looked at as bit masks, for its CRLFs and for an "F" that
 * may start a From_ line.
 */
__attribute__((target("avx2,popcnt")))
static size_t
body_lines_avx2(const char *p, size_t n, off_t *bare, size_t ahead)
{
	const __m256i	 lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
	const __m256i	 eff = _mm256_set1_epi8('F');
	__m256i		 a, b, la, lb, fa, fb, odd, acc = _mm256_setzero_si256();
	uint64_t	 l, crlf, cand, upto;
	const char	*q;
	size_t		 i = 0, j, ls;
	off_t		 count = 0;
	unsigned int	 steps = 0;
	int		 bit;

	if (n < 5 || is_from(p))
		return 0;
	/* a line that starts in a step is looked at in it, 5 bytes on */
	for (; n - i >= 64 + 5; i += 64) {
		/* the same line of the next chunk into the L2 cache, so that
		 * the memory works while this one is counted (never a fault:
		 * an address not mapped is not fetched) */
		if (ahead > 0)
			__builtin_prefetch((const void *)((uintptr_t)p + i +
			    ahead), 0, 2);
		a = _mm256_loadu_si256((const void *)(p + i));
		b = _mm256_loadu_si256((const void *)(p + i + 32));
		la = _mm256_cmpeq_epi8(a, lf);
		lb = _mm256_cmpeq_epi8(b, lf);
		fa = _mm256_and_si256(la, _mm256_cmpeq_epi8(_mm256_loadu_si256(
		    (const void *)(p + i + 1)), eff));
		fb = _mm256_and_si256(lb, _mm256_cmpeq_epi8(_mm256_loadu_si256(
		    (const void *)(p + i + 33)), eff));
		odd = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(a, cr),
		    _mm256_cmpeq_epi8(b, cr)), _mm256_or_si256(fa, fb));
		if (!_mm256_testz_si256(odd, odd)) {
			l = avx2_mask64(la, lb);
			crlf = avx2_mask64(_mm256_cmpeq_epi8(a, cr),
			    _mm256_cmpeq_epi8(b, cr)) &
			    (l >> 1 | (uint64_t)(p[i + 64] == '\n') << 63);
			for (cand = avx2_mask64(fa, fb); cand != 0;
			    cand &= cand - 1) {
				bit = __builtin_ctzll(cand);
				if (!is_from(p + i + bit + 1))
					continue;
				upto = (2ULL << bit) - 1;
				count += avx2_sum_bytes(acc) +
				    __builtin_popcountll(l & upto) -
				    __builtin_popcountll(crlf & upto);
				*bare += count;
				return i + bit + 1;
			}
			count -= __builtin_popcountll(crlf);
		}
		acc = _mm256_sub_epi8(_mm256_sub_epi8(acc, la), lb);
		if (++steps == 127) {	/* before a byte counter wraps */
			count += avx2_sum_bytes(acc);
			acc = _mm256_setzero_si256();
			steps = 0;
		}
	}
	count += avx2_sum_bytes(acc);
	/* the rest a byte at a time; a CR before i was seen to above */
	ls = (q = memrchr(p, '\n', i)) != NULL ? (size_t)(q - p) + 1 : 0;
	for (j = i; j < n; j++) {
		if (p[j] != '\n')
			continue;
		if (j == i || p[j - 1] != '\r')
			count++;
		ls = j + 1;
		if (n - ls < 5 || is_from(p + ls))
			break;
	}
	*bare += count;
	return ls;
}
#endif

static size_t
body_lines(const char *p, size_t n, off_t *bare, size_t ahead)
{
#ifdef HAVE_AVX2
	if (have_avx2())
		return body_lines_avx2(p, n, bare, ahead);
#endif
	(void)ahead;
	return body_lines_bytes(p, n, bare);
}

/*
 * The common case, body lines: takes whole lines from the line start at
 * p while they are not From_ lines and end in this chunk; returns the
 * bytes taken.  Anything else is left to line_classify and line_scan.
 */
static size_t
body_scan(struct mbox_scan *s, const char *p, size_t n)
{
	size_t	 k;

	if ((k = body_lines(p, n, &s->lfs, s->ahead)) == 0)
		return 0;
	/* the last line taken: "\n" or "\r\n" alone may be a separator */
	if (k == 1 || p[k - 2] == '\n')
		s->last_empty = 1;
	else if (p[k - 2] == '\r' && (k == 2 || p[k - 3] == '\n'))
		s->last_empty = 2;
	else
		s->last_empty = 0;
	s->pos += k;
	s->line_start = s->pos;
	return k;
}

/*
 * The current line starts in an earlier chunk and could not be judged
 * there: adds bytes from p to its copy in s->head, up to its LF, and
 * judges it again.  Returns the bytes taken.
 */
static size_t
head_gather(struct mbox_scan *s, const char *p, size_t n)
{
	const char	*lf;
	size_t		 k;

	k = MBOX_HEAD - s->headlen;
	if (k > n)
		k = n;
	if ((lf = memchr(p, '\n', k)) != NULL)
		k = lf - p + 1;
	memcpy(s->head + s->headlen, p, k);
	s->headlen += k;
	if (line_classify(s, s->head, s->headlen, 0) == 0 &&
	    s->err == MBOX_OK) {
		/* head holds at most one LF, its last byte */
		line_scan(s, s->head, s->headlen);
		s->headlen = 0;
	}
	return k;
}

/*
 * A fast sum of every byte, so that the commit can tell that nothing in
 * the scanned part changed, a Status: header rewritten in place included.
 * Not cryptographic: it guards against other programs, not attackers,
 * who could only change their own mailbox anyway.  Stripes of 32 bytes,
 * one 8-byte word w to each of four lanes: a lane adds lo * hi + w of w
 * XOR a key that changes from stripe to stripe (so that moved bytes
 * show), no lane waits for a multiplication, and AVX2 does a stripe in
 * a few instructions.  The same sum whatever the chunking.
 */
static const uint64_t	 sum_key[SUM_LANES] = {
	0x9e3779b185ebca87ULL, 0xc2b2ae3d27d4eb4fULL,
	0x165667b19e3779f9ULL, 0x27d4eb2f165667c5ULL
};

static uint64_t
sum_mix(uint64_t h, uint64_t w)
{
	h += w * SUM_P2;
	return ((h << 31) | (h >> 33)) * SUM_P1;
}

static void
sum_stripes_bytes(struct mbox_scan *s, const char *p, size_t n)
{
	uint64_t	 w, k, step;
	size_t		 i;
	int		 j;

	for (i = 0; i + SUM_STRIPE <= n; i += SUM_STRIPE) {
		step = s->stripes++ * SUM_STEP;
		for (j = 0; j < SUM_LANES; j++) {
			memcpy(&w, p + i + 8 * j, 8);
			k = w ^ (sum_key[j] + step);
			s->sum[j] += (k & 0xffffffff) * (k >> 32) + w;
		}
	}
}

#ifdef HAVE_AVX2
__attribute__((target("avx2")))
static void
sum_stripes_avx2(struct mbox_scan *s, const char *p, size_t n)
{
	__m256i		 acc, odd, key, v, w, k, l, step;
	uint64_t	 base[SUM_LANES];
	size_t		 i;
	int		 j;

	for (j = 0; j < SUM_LANES; j++)
		base[j] = sum_key[j] + s->stripes * SUM_STEP;
	memcpy(&acc, s->sum, sizeof(acc));
	memcpy(&key, base, sizeof(key));
	odd = _mm256_setzero_si256();
	step = _mm256_set1_epi64x((long long)SUM_STEP);
	/* two stripes a step, into two sums: the additions of one wait
	 * for each other, not for those of the other */
	for (i = 0; i + 2 * SUM_STRIPE <= n; i += 2 * SUM_STRIPE) {
		v = _mm256_loadu_si256((const void *)(p + i));
		w = _mm256_loadu_si256((const void *)(p + i + SUM_STRIPE));
		k = _mm256_xor_si256(v, key);
		key = _mm256_add_epi64(key, step);
		l = _mm256_xor_si256(w, key);
		key = _mm256_add_epi64(key, step);
		acc = _mm256_add_epi64(acc, _mm256_add_epi64(v,
		    _mm256_mul_epu32(k, _mm256_srli_epi64(k, 32))));
		odd = _mm256_add_epi64(odd, _mm256_add_epi64(w,
		    _mm256_mul_epu32(l, _mm256_srli_epi64(l, 32))));
	}
	if (i + SUM_STRIPE <= n) {
		v = _mm256_loadu_si256((const void *)(p + i));
		k = _mm256_xor_si256(v, key);
		acc = _mm256_add_epi64(acc, _mm256_add_epi64(v,
		    _mm256_mul_epu32(k, _mm256_srli_epi64(k, 32))));
	}
	acc = _mm256_add_epi64(acc, odd);
	s->stripes += n / SUM_STRIPE;
	memcpy(s->sum, &acc, sizeof(acc));
}
#endif

/* Adds whole stripes; n is a multiple of SUM_STRIPE. */
static void
sum_stripes(struct mbox_scan *s, const char *p, size_t n)
{
#ifdef HAVE_AVX2
	if (have_avx2()) {
		sum_stripes_avx2(s, p, n);
		return;
	}
#endif
	sum_stripes_bytes(s, p, n);
}

static void
content_sum(struct mbox_scan *s, const char *p, size_t n)
{
	size_t	 k;

	if (s->ncarry > 0) {
		k = SUM_STRIPE - s->ncarry < n ? SUM_STRIPE - s->ncarry : n;
		memcpy(s->carry + s->ncarry, p, k);
		s->ncarry += k;
		p += k;
		n -= k;
		if (s->ncarry < SUM_STRIPE)
			return;
		sum_stripes(s, (const char *)s->carry, SUM_STRIPE);
		s->ncarry = 0;
	}
	k = n - n % SUM_STRIPE;
	sum_stripes(s, p, k);
	memcpy(s->carry, p + k, n - k);
	s->ncarry = n - k;
}

/* The sum of the whole scan: the last bytes padded, lanes and length. */
static uint64_t
content_sum_end(struct mbox_scan *s)
{
	uint64_t	 h;
	int		 i;

	memset(s->carry + s->ncarry, 0, sizeof(s->carry) - s->ncarry);
	sum_stripes(s, (const char *)s->carry, SUM_STRIPE);
	for (h = (uint64_t)s->pos, i = 0; i < SUM_LANES; i++)
		h = sum_mix(h, s->sum[i]);
	return h;
}

int
mbox_scan_feed(struct mbox_scan *s, const char *p, size_t n)
{
	off_t	 at;
	size_t	 k;

	if (s->err != MBOX_OK)
		return scan_release(s);
	/* a resumed scan sums only from where the sum was left */
	at = s->pos + (off_t)s->headlen;
	if (at >= s->sum_from)
		content_sum(s, p, n);
	else if ((uintmax_t)(s->sum_from - at) < (uintmax_t)n)
		content_sum(s, p + (s->sum_from - at), n - (s->sum_from - at));
	if ((uintmax_t)n > (uintmax_t)(MAX_MAILDROP_SIZE - s->pos -
	    (off_t)s->headlen)) {
		s->err = MBOX_TOOBIG;
		return scan_release(s);
	}
	while (n > 0 && s->err == MBOX_OK) {
		if (!s->classified && s->headlen == 0 && s->in_msg &&
		    !s->in_headers) {
			k = body_scan(s, p, n);
			p += k;
			if ((n -= k) == 0)
				break;
		}
		if (!s->classified && (s->headlen > 0 ||
		    line_classify(s, p, n, 0) == -1))
			k = head_gather(s, p, n);
		else if (s->err != MBOX_OK)
			break;
		else
			k = line_scan(s, p, n);
		p += k;
		n -= k;
	}
	return s->err == MBOX_OK ? MBOX_OK : scan_release(s);
}

/* Where a UIDL's digest starts in a table of 2^bits slots. */
static size_t
uidl_slot(const char *uidl, int bits)
{
	uint64_t	 u;

	memcpy(&u, uidl, sizeof(u));
	return (size_t)((u * SUM_P1) >> (64 - bits));
}

/*
 * After a resumed scan only the messages from first on are new; the
 * ones before kept their suffixes.  A new message's suffix counts the
 * earlier messages of its digest, a comparison with each: for the few
 * messages a later login finds appended, cheaper than hashing them all.
 */
static void
uidl_suffixes_new(struct mbox_index *idx, size_t first)
{
	struct mbox_msg	*m;
	uint64_t	 u, v;
	size_t		 i, j, dup;

	for (j = first; j < idx->count; j++) {
		m = &idx->msgs[j];
		memcpy(&u, m->uidl, sizeof(u));
		for (i = 0, dup = 1; i < j; i++) {
			memcpy(&v, idx->msgs[i].uidl, sizeof(v));
			if (u == v &&
			    memcmp(idx->msgs[i].uidl, m->uidl, UIDL_HEX) == 0)
				dup++;
		}
		if (dup > 1)
			snprintf(m->uidl + UIDL_HEX, UIDL_SIZE - UIDL_HEX,
			    ".%zu", dup);
	}
}

/*
 * Messages equal in From_ line, headers and body length (in practice
 * byte-identical copies) share a digest: the second in the file gets
 * ".2", the third ".3", and so on.  A hash table of the first of each
 * digest, in file order, keeps this O(n) for a million messages and
 * touches each message once (a sort's comparisons went all over them).
 * Messages before first have theirs already (a resumed scan).
 */
static int
uidl_suffixes(struct mbox_index *idx, size_t first)
{
	uint32_t	*head, *seen;
	size_t		 i, h, mask;
	int		 bits = 1;

	if (idx->count < 2)
		return MBOX_OK;
	if (first > 0 && idx->count - first <= MBOX_SUFFIX_LINEAR) {
		uidl_suffixes_new(idx, first);
		return MBOX_OK;
	}
	while (((size_t)1 << bits) < 2 * idx->count)
		bits++;
	mask = ((size_t)1 << bits) - 1;
	/* slot: 1 + the index of the first message of its digest, or 0 */
	head = calloc(mask + 1, sizeof(*head));
	seen = calloc(mask + 1, sizeof(*seen));
	if (head == NULL || seen == NULL) {
		free(head);
		free(seen);
		return MBOX_NOMEM;
	}
	for (i = 0; i < idx->count; i++) {
		for (h = uidl_slot(idx->msgs[i].uidl, bits); head[h] != 0 &&
		    memcmp(idx->msgs[head[h] - 1].uidl, idx->msgs[i].uidl,
		    UIDL_HEX) != 0; h = (h + 1) & mask)
			;
		if (head[h] == 0) {
			head[h] = (uint32_t)i + 1;
			seen[h] = 1;
			continue;
		}
		/* at most ".1000000": fits in UIDL_SIZE */
		snprintf(idx->msgs[i].uidl + UIDL_HEX, UIDL_SIZE - UIDL_HEX,
		    ".%u", ++seen[h]);
	}
	free(head);
	free(seen);
	return MBOX_OK;
}

int
mbox_scan_close(struct mbox_scan *s)
{
	if (s->err != MBOX_OK)
		return scan_release(s);
	if (s->headlen > 0) {
		/* The file ends in a line start too short to judge before;
		 * at end of file it can be, and it has no LF. */
		line_classify(s, s->head, s->headlen, 1);
		if (s->err != MBOX_OK)
			return scan_release(s);
		line_scan(s, s->head, s->headlen);
		s->headlen = 0;
	}
	if (s->in_msg) {
		msg_close(s, s->pos, s->pos > s->line_start);
		s->in_msg = 0;
	}
	return scan_release(s);
}

int
mbox_scan_end(struct mbox_scan *s)
{
	s->idx->end = s->pos;
	memcpy(s->idx->sum_part, s->sum, sizeof(s->idx->sum_part));
	s->idx->sum = content_sum_end(s);
	return s->err = uidl_suffixes(s->idx, s->known);
}

int
mbox_scan_finish(struct mbox_scan *s)
{
	if (mbox_scan_close(s) != MBOX_OK)
		return s->err;
	return mbox_scan_end(s);
}

const char *
mbox_strerror(int err)
{
	switch (err) {
	case MBOX_OK:
		return "no error";
	case MBOX_NOTMBOX:
		return "not an mbox file";
	case MBOX_TOOBIG:
		return "maildrop too large";
	case MBOX_NOMEM:
		return "out of memory";
	case MBOX_IO:
		return "read error";
	}
	return "unknown error";
}
