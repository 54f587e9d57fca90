/*
 * unit_scansplit.c: a scan split in two at a From_ line, the second part
 * in a thread (mbox.c, scan_fd_split), gives the index, UIDLs and content
 * sum of the scan of the whole, wherever the split falls: at every
 * midpoint of small mailboxes, LF and CRLF, with duplicates on both
 * sides, a From_ line cut by the limit, one giant message, no From_ line
 * after the midpoint.  It includes mbox.c to reach those.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A file the scan has mapped is cut to this length first (-1: not). */
static off_t	 cut_to = -1;
#define SCAN_MAP_HOOK(fd) do {						\
	if (cut_to >= 0 && ftruncate((fd), cut_to) == -1)		\
		abort();						\
} while (0)

#include "../mbox.c"
#include "../mbox_fd.c"
#include "unit.h"

#define LEN(s)	(sizeof(s) - 1)

/* The file of n bytes at b, unlinked already. */
static int
file_of(const char *b, size_t n)
{
	char	 path[] = "/tmp/unit_scansplit.XXXXXX";
	int	 fd;

	if ((fd = mkstemp(path)) == -1)
		return -1;
	unlink(path);
	if (write(fd, b, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Every field of both, the content sum too. */
static int
same_scan(const struct mbox_index *a, const struct mbox_index *b)
{
	return a->count == b->count && a->end == b->end && a->sum == b->sum &&
	    memcmp(a->sum_part, b->sum_part, sizeof(a->sum_part)) == 0 &&
	    (a->count == 0 || memcmp(a->msgs, b->msgs, a->count *
	    sizeof(*a->msgs)) == 0);
}

/* The scan of the whole, not split. */
static int
scan_whole(int fd, off_t limit, struct mbox_index *idx)
{
	struct mbox_scan	 s;

	mbox_scan_init(&s, idx);
	return scan_fd(&s, fd, 0, limit);
}

/*
 * At every midpoint: split where split_point says (or not at all, -1),
 * and then the same as the whole.  Returns how many scans were split.
 */
static int
every_split(const char *b, size_t n, off_t limit)
{
	struct mbox_index	 whole, split;
	off_t			 mid, at, end = limit < 0 ? (off_t)n : limit;
	int			 fd, rv, want, splits = 0;

	memset(&whole, 0, sizeof(whole));
	memset(&split, 0, sizeof(split));
	if ((fd = file_of(b, n)) == -1)
		return -1;
	want = scan_whole(fd, limit, &whole);
	for (mid = 0; mid <= end; mid++) {
		at = split_point(fd, mid, limit);
		rv = scan_fd_split(fd, mid, limit, &split);
		if (rv == -1) {
			/* nothing to split at: no From_ line after mid */
			CHECK_INT(at, ==, 0);
			continue;
		}
		splits++;
		CHECK(at >= mid && at > 0 && at + 5 <= end &&
		    memcmp(b + at - 1, "\nFrom ", 6) == 0);
		CHECK_INT(rv, ==, want);
		if (rv == MBOX_OK && want == MBOX_OK)
			CHECK(same_scan(&split, &whole));
	}
	mbox_index_free(&whole);
	mbox_index_free(&split);
	close(fd);
	return splits;
}

static void
test_split_small(void)
{
	static const char lf[] = "From a\nA: 1\nStatus: RO\n\nbody\n\n"
	    "From b\nA: 2\n\n>From x\nFrom\nFromy\n\nFrom c\nA: 1\nStatus: "
	    "RO\n\nbody\n\nFrom d\n\nFrom a\nA: 1\nStatus: RO\n\nbody\n\n"
	    "From e\nno blank line\nFrom f\nlast, no LF";
	static const char crlf[] = "From a\r\nA: 1\r\n\r\nbody\r\n\r\n"
	    "From b\r\nA: 2\r\n\r\n\r\n\r\nFrom c\r\nA: 1\r\n\r\nbody\r\n"
	    "\r\nFrom a\r\nA: 1\r\n\r\nbody\r\n\r\nFrom d\r\n\r\n";

	CHECK_INT(every_split(lf, LEN(lf), -1), >, 0);
	CHECK_INT(every_split(crlf, LEN(crlf), -1), >, 0);
	/* a limit: the commit's check of the part scanned before */
	CHECK_INT(every_split(lf, LEN(lf), 100), >, 0);
	/* the last From_ line cut by the limit is no separator */
	CHECK_INT(every_split(lf, LEN(lf), LEN(lf) - 14), >, 0);
	CHECK_INT(every_split(crlf, LEN(crlf), LEN(crlf) - 3), >, 0);
}

/* Duplicates in both parts: the suffixes count across the split. */
static void
test_split_duplicates(void)
{
	static const char m[] = "From x\nA: 1\n\nsame\n\n";
	struct mbox_index	 idx;
	char			 b[20 * LEN(m)];
	int			 i, fd;

	for (i = 0; i < 20; i++)
		memcpy(b + i * LEN(m), m, LEN(m));
	CHECK_INT(every_split(b, sizeof(b), -1), ==, 19 * (int)LEN(m));
	memset(&idx, 0, sizeof(idx));
	REQUIRE((fd = file_of(b, sizeof(b))) != -1);
	CHECK_INT(scan_fd_split(fd, sizeof(b) / 2, -1, &idx), ==, MBOX_OK);
	CHECK(idx.count == 20 && strcmp(idx.msgs[19].uidl + UIDL_HEX,
	    ".20") == 0 && strcmp(idx.msgs[10].uidl + UIDL_HEX, ".11") == 0);
	mbox_index_free(&idx);
	close(fd);
}

/*
 * A program that ignores the lock cuts the mailbox after the scan mapped
 * it: the pages past the new end fault (SIGBUS), and the scan fails as a
 * short read does, ESTALE, in the split scan's thread too, instead of
 * the process dying.  The next scan, of what is left, is whole.
 */
static void
test_cut_under_map(void)
{
	static const char m[] = "From x\nA: 1\n\nbody of a message\n\n";
	struct mbox_index	 idx;
	size_t			 n = 3 * 65536 / LEN(m) * LEN(m), i;
	char			*b;
	int			 fd, rv, split;

	REQUIRE(mbox_map_prepare() == 0);
	REQUIRE(scan_maps == 1);
	REQUIRE((b = malloc(n)) != NULL);
	for (i = 0; i < n; i += LEN(m))
		memcpy(b + i, m, LEN(m));
	for (split = 0; split < 2; split++) {
		REQUIRE((fd = file_of(b, n)) != -1);
		memset(&idx, 0, sizeof(idx));
		cut_to = 4096;
		errno = 0;
		rv = split ? scan_fd_split(fd, n / 2, -1, &idx) :
		    scan_whole(fd, -1, &idx);
		CHECK_INT(rv, ==, MBOX_IO);
		CHECK_INT(errno, ==, ESTALE);
		mbox_index_free(&idx);
		cut_to = -1;
		CHECK_INT(scan_whole(fd, -1, &idx), ==, MBOX_OK);
		CHECK_INT(idx.count, ==, (4096 + LEN(m) - 1) / LEN(m));
		mbox_index_free(&idx);
		close(fd);
	}
	free(b);
}

/* Not an mbox: the first part fails as the whole does. */
static void
test_split_not_mbox(void)
{
	static const char b[] = "junk\nFrom a\n\nx\n";

	CHECK_INT(every_split(b, LEN(b), -1), >, 0);
}

/*
 * Bigger than a read, with stripes and chunks of every alignment: one
 * giant message (no split after its From_ line), then messages of random
 * sizes, some in CRLF.
 */
static void
test_split_large(void)
{
	static const char from[] = "From sender Thu Jan  1 00:00:00 2026\n";
	struct mbox_index	 whole, split;
	uint64_t		 r = 0x9e3779b97f4a7c15ULL;
	size_t			 n = 0, cap = 3 * SCAN_CHUNK + 12345, k, i;
	off_t			 mids[] = { 1, SCAN_CHUNK, SCAN_CHUNK + 1,
				    2 * SCAN_CHUNK - 3, 3 * SCAN_CHUNK - 64 };
	char			*b;
	int			 fd;

	REQUIRE((b = malloc(cap)) != NULL);
	memcpy(b, from, LEN(from));
	n = LEN(from);
	memcpy(b + n, "Subject: big\n\n", 14);
	n += 14;
	for (; n < SCAN_CHUNK + 77; n++)	/* past the first read */
		b[n] = n % 61 == 0 ? '\n' : 'a' + n % 26;
	b[n++] = '\n';
	while (n + LEN(from) + 8000 + 3 <= cap) {
		memcpy(b + n, from, LEN(from));
		n += LEN(from);
		for (k = (r >> 40) % 8000, i = 0; i < k; i++, n++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			b[n] = r % 50 == 0 ? '\n' : r % 97 == 0 ? '\r' :
			    'A' + r % 50;
		}
		memcpy(b + n, "\r\n\n", 3);
		n += 3;
	}
	memset(&whole, 0, sizeof(whole));
	memset(&split, 0, sizeof(split));
	REQUIRE((fd = file_of(b, n)) != -1);
	CHECK_INT(scan_whole(fd, -1, &whole), ==, MBOX_OK);
	CHECK(whole.count > 30);
	for (i = 0; i < sizeof(mids) / sizeof(mids[0]); i++) {
		CHECK_INT(scan_fd_split(fd, mids[i], -1, &split), ==, MBOX_OK);
		CHECK(same_scan(&split, &whole));
	}
	/* inside the giant message: the split comes after it */
	CHECK_INT(split_point(fd, 100, -1), ==, SCAN_CHUNK + 77 + 1);
	/* none after the last From_ line: not split */
	CHECK_INT(scan_fd_split(fd, n - 100, -1, &split), ==, -1);
	/* the public call, for a file this size, splits or not: the same */
	CHECK_INT(mbox_scan_fd(fd, -1, &split), ==, MBOX_OK);
	CHECK(same_scan(&split, &whole));
	/* a file shorter than the limit: ESTALE from the second part */
	errno = 0;
	CHECK_INT(scan_fd_split(fd, n / 2, n + 1, &split), ==, MBOX_IO);
	CHECK_INT(errno, ==, ESTALE);
	mbox_index_free(&whole);
	mbox_index_free(&split);
	close(fd);
	free(b);
}

/*
 * Mapped or read, as scan_ask_machine chose, once and for good: not for a
 * small file, and then whatever the machine answered for a large one.
 */
static void
test_ask_machine(void)
{
	char	*b;
	int	 fd;

	REQUIRE((b = calloc(1, SCAN_PROBE_MIN)) != NULL);
	memcpy(b, "From x\n\n", 8);
	scan_maps = -1;
	REQUIRE((fd = file_of(b, SCAN_PROBE_MIN - 1)) != -1);
	scan_ask_machine(fd, SCAN_PROBE_MIN - 1);
	CHECK_INT(scan_maps, ==, -1);
	close(fd);
	REQUIRE((fd = file_of(b, SCAN_PROBE_MIN)) != -1);
	scan_ask_machine(fd, SCAN_PROBE_MIN);
	CHECK(scan_maps == 0 || scan_maps == 1);
	fprintf(stderr, "unit_scansplit: this machine %s\n", scan_maps ?
	    "maps" : "reads");
	close(fd);
	free(b);
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	/* mapped, then read: the same answers */
	for (scan_maps = 1; scan_maps >= 0; scan_maps--) {
		UNIT_RUN(test_split_small);
		if (scan_maps)
			UNIT_RUN(test_cut_under_map);
		UNIT_RUN(test_split_duplicates);
		UNIT_RUN(test_split_not_mbox);
		UNIT_RUN(test_split_large);
	}
	UNIT_RUN(test_ask_machine);
	return unit_end();
}
