/*
 * fuzz_mbox.c: the mbox scanner and the index it builds.  The input is a
 * chunk plan and an mbox:
 *
 *	byte 0		1 + byte 0 % 8 chunk sizes follow
 *	sizes		one byte each, used in turn: 0 feeds nothing and
 *			then 1 byte, N feeds N bytes
 *	the rest	the mbox
 *
 * The mbox is scanned whole and in those chunks: the two indexes must be
 * the same, since the maildrop reads in chunks and a UIDL must not depend
 * on where they end.  Where each message is must follow the From_ lines
 * and the separator rule, its size must be what RETR sends before
 * dot-stuffing, its UIDL unique and printable, and each entry one the
 * session accepts from the maildrop (msgtab_valid), which its compact
 * table (msgtab.c) gives back as it came.
 */
#include "../session.c"
#include "fuzz.h"

#define SIZES_MAX	8

/* Scans the n bytes at b into idx in the chunks of the plan; returns
 * MBOX_OK or the error. */
static int
scan_chunked(const char *b, size_t n, const uint8_t *sizes, size_t nsizes,
    struct mbox_index *idx)
{
	struct mbox_scan	 s;
	size_t			 i = 0, k, turn = 0;
	int			 err = MBOX_OK;

	mbox_scan_init(&s, idx);
	while (i < n && err == MBOX_OK) {
		k = sizes[turn++ % nsizes];
		if (k == 0) {
			err = mbox_scan_feed(&s, b + i, 0);
			if (err != MBOX_OK)
				break;
			k = 1;
		}
		if (k > n - i)
			k = n - i;
		err = mbox_scan_feed(&s, b + i, k);
		i += k;
	}
	if (err == MBOX_OK)
		err = mbox_scan_finish(&s);
	return err;
}

static int
scan_whole(const char *b, size_t n, struct mbox_index *idx)
{
	struct mbox_scan	 s;
	int			 err;

	mbox_scan_init(&s, idx);
	if ((err = mbox_scan_feed(&s, b, n)) == MBOX_OK)
		err = mbox_scan_finish(&s);
	return err;
}

/* The octets RETR sends for the len bytes at b before dot-stuffing, by
 * the transform itself. */
static off_t
served_size(const char *b, off_t len)
{
	struct xform	 x;
	char		*out;
	size_t		 n, used;

	FUZZ_CHECK((out = malloc(2 * (size_t)len + 2)) != NULL);
	xform_init(&x, 0, -1);
	n = xform_run(&x, b, len, out, &used);
	FUZZ_CHECK(used == (size_t)len);
	n += xform_end(&x, out + n);
	free(out);
	return n;
}

/*
 * The bytes a message serves, by the rule: from after its From_ line to
 * the next From_ line (or the end), less a last line that is empty ("\n"
 * or "\r\n"), which separates messages; a last line without LF stays.
 */
static off_t
ref_len(const char *b, size_t off, size_t next)
{
	size_t	 ls;

	if (next == off || b[next - 1] != '\n')
		return next - off;
	for (ls = next - 1; ls > off && b[ls - 1] != '\n'; ls--)
		;
	if (next - ls == 1 || (next - ls == 2 && b[ls] == '\r'))
		return ls - off;
	return next - off;
}

/* Where the From_ lines are: line starts (offset 0, or after an LF)
 * spelling "From "; returns their number. */
static size_t
ref_froms(const char *b, size_t n, size_t *from)
{
	size_t	 i, count = 0;

	for (i = 0; i + 5 <= n; i++)
		if ((i == 0 || b[i - 1] == '\n') && memcmp(b + i, "From ", 5) == 0)
			from[count++] = i;
	return count;
}

static int
uidl_order(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
check_same(const struct mbox_index *a, const struct mbox_index *b)
{
	size_t	 i;

	FUZZ_CHECK(a->count == b->count);
	FUZZ_CHECK(a->end == b->end);
	FUZZ_CHECK(a->sum == b->sum);
	for (i = 0; i < a->count; i++) {
		FUZZ_CHECK(a->msgs[i].from == b->msgs[i].from);
		FUZZ_CHECK(a->msgs[i].off == b->msgs[i].off);
		FUZZ_CHECK(a->msgs[i].len == b->msgs[i].len);
		FUZZ_CHECK(a->msgs[i].size == b->msgs[i].size);
		FUZZ_CHECK(strcmp(a->msgs[i].uidl, b->msgs[i].uidl) == 0);
	}
}

/* Adds m to the session's table, which must give it back as it came. */
static void
check_msgtab(struct msgtab *t, const struct mbox_msg *m)
{
	char	 id[UIDL_SIZE];
	off_t	 off, len;

	FUZZ_CHECK(msgtab_add(t, m) == 0);
	msgtab_span(t, t->count - 1, &off, &len);
	FUZZ_CHECK(off == m->off && len == m->len);
	FUZZ_CHECK(msgtab_size(t, t->count - 1) == m->size);
	FUZZ_CHECK(strcmp(msgtab_uidl(t, t->count - 1, id), m->uidl) == 0);
}

/* The index of the n bytes at b, against the rules. */
static void
check_index(const char *b, size_t n, const struct mbox_index *idx)
{
	struct msgtab		  t;
	const struct mbox_msg	 *m;
	const char		**uidl;
	const char		 *lf;
	size_t			 *from, count, i, j, len, next;

	memset(&t, 0, sizeof(t));
	FUZZ_CHECK(idx->end == (off_t)n);
	FUZZ_CHECK((from = calloc(n / 5 + 1, sizeof(*from))) != NULL);
	count = ref_froms(b, n, from);
	FUZZ_CHECK(idx->count == count);
	FUZZ_CHECK((uidl = calloc(count + 1, sizeof(*uidl))) != NULL);
	for (i = 0; i < count; i++) {
		m = &idx->msgs[i];
		next = i + 1 < count ? from[i + 1] : n;
		FUZZ_CHECK(m->from == (off_t)from[i]);
		lf = memchr(b + from[i], '\n', n - from[i]);
		FUZZ_CHECK(m->off == (lf != NULL ? lf - b + 1 : (off_t)n));
		FUZZ_CHECK(m->from < m->off);
		FUZZ_CHECK(m->off + m->len <= (off_t)next);
		FUZZ_CHECK(m->off + m->len <= idx->end);
		FUZZ_CHECK(m->len == ref_len(b, m->off, next));
		FUZZ_CHECK(m->size == served_size(b + m->off, m->len));

		len = strnlen(m->uidl, sizeof(m->uidl));
		FUZZ_CHECK(len >= 1 && len <= 70 && len < sizeof(m->uidl));
		for (j = 0; j < len; j++)
			FUZZ_CHECK(m->uidl[j] >= 0x21 && m->uidl[j] <= 0x7e);
		uidl[i] = m->uidl;

		/* The maildrop hands this entry to the session as is. */
		FUZZ_CHECK(msgtab_valid(m));
		check_msgtab(&t, m);
	}
	free(t.recs);
	free(t.wide);
	free(t.pool);
	qsort(uidl, count, sizeof(*uidl), uidl_order);
	for (i = 1; i < count; i++)
		FUZZ_CHECK(strcmp(uidl[i - 1], uidl[i]) != 0);
	free(uidl);
	free(from);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox_index	 whole, chunked;
	const uint8_t		*sizes;
	const char		*b;
	size_t			 nsizes, n;
	int			 err, err2, want;

	if (size < 1)
		return 0;
	nsizes = 1 + data[0] % SIZES_MAX;
	if (size < 1 + nsizes)
		return 0;
	sizes = data + 1;
	b = (const char *)data + 1 + nsizes;
	n = size - 1 - nsizes;

	memset(&whole, 0, sizeof(whole));
	memset(&chunked, 0, sizeof(chunked));
	err = scan_whole(b, n, &whole);
	err2 = scan_chunked(b, n, sizes, nsizes, &chunked);
	FUZZ_CHECK(err == err2);

	/* Anything but an empty file must start with a From_ line; nothing
	 * else fails at this size. */
	want = n == 0 || (n >= 5 && memcmp(b, "From ", 5) == 0) ? MBOX_OK :
	    MBOX_NOTMBOX;
	FUZZ_CHECK(err == want);
	if (err == MBOX_OK) {
		check_same(&whole, &chunked);
		check_index(b, n, &whole);
	}
	mbox_index_free(&whole);
	mbox_index_free(&chunked);
	return 0;
}
