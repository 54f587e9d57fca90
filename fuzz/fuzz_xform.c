/*
 * fuzz_xform.c: the RETR/TOP transform.  The input is a setting, a chunk
 * plan and a message:
 *
 *	byte 0		bit 0: dot-stuffing; bits 1-3: TOP's body lines
 *			+ 1 (0: the whole message); bits 4-6: 1 + this
 *			many chunk sizes follow
 *	sizes		one byte each, used in turn: 0 runs the transform
 *			on nothing and then on 1 byte, N on N bytes
 *	the rest	the message
 *
 * The transform, fed in those chunks, each with exactly the output room
 * its contract promises, must write what a byte-at-a-time reference
 * written here from the rules in pop3d.h writes, and stop where it stops.
 */
#include <sys/types.h>

#include <string.h>

#include "pop3d.h"
#include "fuzz.h"

/* A chunk size is one byte of the input. */
#define CHUNK_MAX	255

/*
 * The rules, a byte at a time: every byte is sent as it is, but an LF
 * becomes CRLF unless the byte before it in its line is a CR; with stuff
 * a line starting with "." gets another; a final line without LF gets a
 * CRLF.  With top >= 0, the first empty line ("" or "\r" before its LF)
 * ends the headers, and after it only top more lines are sent.  Returns
 * the bytes written into out (room for 2 * n + 2), with *used the input
 * bytes taken and *done whether the TOP limit was reached.
 */
static size_t
ref_xform(const unsigned char *in, size_t n, int stuff, long long top,
    char *out, size_t *used, int *done)
{
	size_t		 i, o = 0, linelen = 0;
	long long	 sent = 0;
	int		 body = 0, cr = 0;

	for (i = 0; i < n; i++) {
		if (top >= 0 && body && sent == top)
			break;
		if (linelen == 0 && stuff && in[i] == '.')
			out[o++] = '.';
		if (in[i] != '\n') {
			out[o++] = in[i];
			linelen++;
			cr = in[i] == '\r';
			continue;
		}
		if (!cr)
			out[o++] = '\r';
		out[o++] = '\n';
		if (body)
			sent++;
		else if (linelen == 0 || (linelen == 1 && cr))
			body = 1;
		linelen = 0;
		cr = 0;
	}
	*used = i;
	*done = top >= 0 && body && sent == top;
	if (o > 0 && out[o - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/*
 * xform_run on k bytes with exactly 2 * k bytes of output room: the last
 * ones of room, a heap block of 2 * CHUNK_MAX, so that a write past them
 * is caught.  Appends the output to got.
 */
static size_t
run_chunk(struct xform *x, const char *in, size_t k, char *room, char *got,
    size_t *used)
{
	char	*out = room + 2 * CHUNK_MAX - 2 * k;
	size_t	 w;

	w = xform_run(x, in, k, out, used);
	FUZZ_CHECK(w <= 2 * k);
	FUZZ_CHECK(*used <= k);
	FUZZ_CHECK(*used == k || x->done);
	memcpy(got, out, w);
	return w;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xform	 x;
	const uint8_t	*sizes;
	const char	*in;
	char		*got, *want, *room, *end;
	size_t		 nsizes, n, i = 0, o = 0, k, used, turn = 0, wantlen;
	size_t		 wantused;
	long long	 top;
	int		 stuff, wantdone;

	if (size < 1)
		return 0;
	stuff = data[0] & 1;
	top = (long long)(data[0] >> 1 & 7) - 1;
	nsizes = 1 + (data[0] >> 4 & 7);
	if (size < 1 + nsizes)
		return 0;
	sizes = data + 1;
	in = (const char *)data + 1 + nsizes;
	n = size - 1 - nsizes;

	FUZZ_CHECK((got = malloc(2 * n + 2)) != NULL);
	FUZZ_CHECK((want = malloc(2 * n + 2)) != NULL);
	FUZZ_CHECK((room = malloc(2 * CHUNK_MAX)) != NULL);
	xform_init(&x, stuff, top);
	while (i < n && !x.done) {
		k = sizes[turn++ % nsizes];
		if (k == 0) {
			FUZZ_CHECK(run_chunk(&x, in + i, 0, room, got + o,
			    &used) == 0 && used == 0);
			k = 1;
		}
		if (k > n - i)
			k = n - i;
		o += run_chunk(&x, in + i, k, room, got + o, &used);
		i += used;
	}
	if (i < n) {
		/* Stopped by TOP: the rest is refused. */
		k = n - i < CHUNK_MAX ? n - i : CHUNK_MAX;
		FUZZ_CHECK(run_chunk(&x, in + i, k, room, got + o, &used) ==
		    0 && used == 0);
	}
	/* The CRLF a last line lacks: room for 2, at the end of the block. */
	end = room + 2 * CHUNK_MAX - 2;
	k = xform_end(&x, end);
	memcpy(got + o, end, k);
	o += k;
	FUZZ_CHECK(xform_end(&x, end) == 0);

	wantlen = ref_xform((const unsigned char *)in, n, stuff, top, want,
	    &wantused, &wantdone);
	FUZZ_CHECK(o == wantlen);
	FUZZ_CHECK(memcmp(got, want, o) == 0);
	FUZZ_CHECK(i == wantused);
	FUZZ_CHECK(x.done == wantdone);
	free(got);
	free(want);
	free(room);
	return 0;
}
