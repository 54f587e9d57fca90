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
