/*
 * xform.c: converts a message as stored into what RETR and TOP send:
 * LF line ends become CRLF, a line starting with a dot gets another,
 * and TOP stops after its body lines.  Pure functions over bytes.
 *
 * It runs over large blocks: memchr (or 32 bytes a step with AVX2)
 * finds the next LF and the run before it is copied whole, so the cost
 * is a copy, not a loop over bytes.
 */
#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2	/* kernels for CPUs that have it, chosen at run time */
#endif

#include "pop3d.h"

#ifdef HAVE_AVX2
/* The bytes before the first LF in the whole 32-byte steps from p,
 * copied to o 32 at a time; see copy_to_lf. */
__attribute__((target("avx2")))
static size_t
copy_to_lf_avx2(char *o, const char *p, size_t n)
{
	const __m256i	 lf = _mm256_set1_epi8('\n');
	__m256i		 v;
	size_t		 i;
	unsigned int	 m;

	for (i = 0; n - i >= 32; i += 32) {
		v = _mm256_loadu_si256((const void *)(p + i));
		_mm256_storeu_si256((void *)(o + i), v);
		m = (unsigned int)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v,
		    lf));
		if (m != 0)
			return i + __builtin_ctz(m);
	}
	return i;
}

/* The 64 bytes that lo and hi compared, as a bit mask. */
__attribute__((target("avx2")))
static inline uint64_t
mask64(__m256i lo, __m256i hi)
{
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32 |
	    (uint32_t)_mm256_movemask_epi8(lo);
}

/*
 * A whole message's lines (no TOP limit), 64 input bytes a step: the step
 * is copied whole, then for each byte to insert (a CR before an LF that
 * has none, a dot before a dot that starts a line) the rest of the step
 * is copied again one byte further on.  Stops 128 bytes or less short of
 * the end, so that every load stays in the input; returns the bytes
 * written and sets *used.  at_start: a line starts at p; prev_cr: the
 * byte before p was a CR of the same line.  Writes at most 64 bytes past
 * what it returns, inside xform_run's room of twice the input.
 */
__attribute__((target("avx2")))
static size_t
lines_avx2(const char *p, size_t n, char *out, size_t *used, int stuff,
    int at_start, int prev_cr)
{
	const __m256i	 lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
	const __m256i	 dot = _mm256_set1_epi8('.');
	__m256i		 a, b;
	uint64_t	 l, c, d, ins, lf_before = at_start, cr_before = prev_cr;
	char		*o = out;
	size_t		 i;
	int		 e;

	for (i = 0; n - i >= 128; i += 64) {
		a = _mm256_loadu_si256((const void *)(p + i));
		b = _mm256_loadu_si256((const void *)(p + i + 32));
		_mm256_storeu_si256((void *)o, a);
		_mm256_storeu_si256((void *)(o + 32), b);
		l = mask64(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(b, lf));
		c = mask64(_mm256_cmpeq_epi8(a, cr), _mm256_cmpeq_epi8(b, cr));
		d = stuff ? mask64(_mm256_cmpeq_epi8(a, dot),
		    _mm256_cmpeq_epi8(b, dot)) : 0;
		ins = (l & ~(c << 1 | cr_before)) | (d & (l << 1 | lf_before));
		lf_before = l >> 63;
		cr_before = c >> 63;
		for (; ins != 0; ins &= ins - 1) {
			e = __builtin_ctzll(ins);
			o[e] = p[i + e] == '\n' ? '\r' : '.';
			_mm256_storeu_si256((void *)(o + e + 1),
			    _mm256_loadu_si256((const void *)(p + i + e)));
			_mm256_storeu_si256((void *)(o + e + 33),
			    _mm256_loadu_si256((const void *)(p + i + e + 32)));
			o++;
		}
		o += 64;
	}
	*used = i;
	return o - out;
}
#endif

/*
 * Copies the bytes from p up to the first LF, or all n, to o; returns
 * their number.  With AVX2 it copies 32 bytes a step and may write up
 * to 32 bytes past what it copies: xform_run's room of twice its input
 * always has them, since p is 32 bytes short of the input's end then.
 */
static size_t
copy_to_lf(char *o, const char *p, size_t n)
{
	const char	*lf;
	size_t		 i = 0, k;

#ifdef HAVE_AVX2
	if (have_avx2())
		i = copy_to_lf_avx2(o, p, n);
	if (i < n && p[i] == '\n')
		return i;
#endif
	lf = memchr(p + i, '\n', n - i);
	k = (lf != NULL ? (size_t)(lf - p) : n);
	memcpy(o + i, p + i, k - i);
	return k;
}

void
xform_init(struct xform *x, int stuff, long long body_lines)
{
	memset(x, 0, sizeof(*x));
	x->stuff = stuff;
	x->body_lines = body_lines < 0 ? -1 : body_lines;
}

/* An input LF has been written as a line end: counts lines for TOP. */
static void
xform_line_end(struct xform *x)
{
	int	 empty;

	empty = x->line_len == 0 || (x->line_len == 1 && x->prev_cr);
	x->line_len = 0;
	x->prev_cr = 0;
	if (x->body_lines < 0)
		return;
	if (x->in_body)
		x->body_lines--;
	else if (empty)
		x->in_body = 1;	/* the empty line: sent, not counted */
	if (x->in_body && x->body_lines == 0)
		x->done = 1;
}

size_t
xform_run(struct xform *x, const char *in, size_t n, char *out, size_t *used)
{
	const char	*p = in, *end = in + n, *lf;
	char		*o = out;
	size_t		 k;

#ifdef HAVE_AVX2
	/* the common case, RETR: all but the last bytes in big steps */
	if (x->body_lines < 0 && n >= 128 && have_avx2()) {
		o += lines_avx2(p, n, o, &k, x->stuff, x->line_len == 0,
		    x->prev_cr);
		p += k;
		x->line_len = p[-1] == '\n' ? 0 : 2;
		x->prev_cr = p[-1] == '\r';
	}
#endif
	while (p < end && !x->done) {
		if (x->line_len == 0 && x->stuff && *p == '.')
			*o++ = '.';
		k = copy_to_lf(o, p, end - p);
		lf = k < (size_t)(end - p) ? p + k : NULL;
		if (k > 0) {
			/* Bytes are sent as stored, lone CRs included. */
			o += k;
			p += k;
			x->prev_cr = p[-1] == '\r';
			x->line_len = x->line_len == 0 && k == 1 ? 1 : 2;
		}
		if (lf == NULL)
			break;
		/* LF becomes CRLF; a CRLF stays one. */
		if (!x->prev_cr)
			*o++ = '\r';
		*o++ = '\n';
		p++;
		xform_line_end(x);
	}
	if (o > out) {
		x->any = 1;
		x->last_lf = o[-1] == '\n';
	}
	*used = p - in;
	return o - out;
}

size_t
xform_end(struct xform *x, char *out)
{
	if (!x->any || x->last_lf)
		return 0;
	out[0] = '\r';
	out[1] = '\n';
	x->last_lf = 1;
	return 2;
}
