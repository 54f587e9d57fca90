/*
 * unit_index.c: the index file (index.c) and the resumed scan it needs
 * (mbox_scan_resume): a round trip, every way a file can be damaged or
 * forged, and the checks of a mailbox that stayed, grew or changed.
 * index.c is included to re-seal forged files with its checksum.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "../index.c"
#include "unit.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static char tmpdir[] = "/tmp/unit_index.XXXXXX";

/* A temporary file holding the n bytes at b; returns its descriptor. */
static int
file_with(const char *name, const void *b, size_t n)
{
	char	 path[PATH_MAX];
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	(void)unlink(path);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	if (n > 0 && write(fd, b, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
same_index(const struct mbox_index *a, const struct mbox_index *b)
{
	return a->count == b->count && a->end == b->end && a->sum == b->sum &&
	    memcmp(a->sum_part, b->sum_part, sizeof(a->sum_part)) == 0 &&
	    (a->count == 0 ||
	    memcmp(a->msgs, b->msgs, a->count * sizeof(*a->msgs)) == 0);
}

/* A random small mbox: From_ lines, headers, CRLFs, twins, no final LF. */
static size_t
random_mbox(char *b, size_t cap, int twins)
{
	static const char *const lines[] = {
		"Subject: x\n", "Status: RO\n", "\n", "body\n", "\r\n",
		"line\r\n", ">From me\n", "From-not\n", "a", ".\n",
	};
	size_t	 n = 0, i, k, msgs = 1 + rnd() % 12;
	int	 len;

	for (i = 0; i < msgs && n + 200 < cap; i++) {
		len = snprintf(b + n, cap - n, "From u%u@h Mon Jan  1 00:00:00 "
		    "2024\nMessage-ID: <%u>\n", twins ? 1 : (unsigned)i,
		    twins ? 1 : (unsigned)i);
		n += len;
		for (k = rnd() % 6; k > 0 && n + 20 < cap; k--) {
			len = snprintf(b + n, cap - n, "%s",
			    lines[rnd() % (sizeof(lines) / sizeof(lines[0]))]);
			n += len;
		}
		if (rnd() % 4 != 0 || i + 1 == msgs)
			b[n++] = '\n';
		else if (n > 0 && b[n - 1] != '\n')
			b[n++] = '\n';
	}
	if (rnd() % 5 == 0 && n > 0 && b[n - 1] == '\n')
		n--;
	return n;
}

static int
scan_buf(const char *b, size_t n, struct mbox_index *idx)
{
	struct mbox_scan	 s;
	int			 err;

	mbox_scan_init(&s, idx);
	if ((err = mbox_scan_feed(&s, b, n)) == MBOX_OK)
		err = mbox_scan_finish(&s);
	return err;
}

/* The resumed scan gives exactly the full scan's index, sums included. */
static void
test_resume_equals_scan(void)
{
	struct mbox_index	 full, part;
	char			 b[4096];
	size_t			 n, i, k, cut;
	off_t			 start, stripe;
	int			 fd, round;

	memset(&full, 0, sizeof(full));
	memset(&part, 0, sizeof(part));
	for (round = 0; round < 300; round++) {
		n = random_mbox(b, sizeof(b), round % 3 == 0);
		REQUIRE((fd = file_with("mbox", b, n)) != -1);
		REQUIRE(scan_buf(b, n, &full) == MBOX_OK);
		for (k = 1; k < full.count + 1; k++) {
			/* the index of a prefix ending inside message k */
			cut = k < full.count ? (size_t)full.msgs[k].from : n;
			cut = full.msgs[k - 1].off + rnd() % (cut -
			    full.msgs[k - 1].off + 1);
			REQUIRE(scan_buf(b, cut, &part) == MBOX_OK);
			REQUIRE(part.count == k);
			start = part.msgs[--part.count].from;
			stripe = part.end - part.end % (SUM_LANES * 8);
			if (stripe < start)
				continue;
			CHECK_INT(mbox_scan_resume(fd, start, stripe,
			    part.sum_part, &part), ==, MBOX_OK);
			CHECK(same_index(&part, &full));
		}
		for (i = 0; i < full.count; i++)
			CHECK(full.msgs[i].uidl[0] != '\0');
		close(fd);
	}
	mbox_index_free(&full);
	mbox_index_free(&part);
}

/*
 * Twins on both sides of a resumed scan's start: a few new ones (each
 * compared with those before) and more than MBOX_SUFFIX_LINEAR (all
 * sorted) get the suffixes of a full scan.
 */
static void
test_resume_twin_suffixes(void)
{
	static const char	 twin[] = "From a@b Mon Jan  1 00:00:00 2024\n"
	    "Subject: same\n\nbody\n\n";
	static const char	 other[] = "From c@d Mon Jan  1 00:00:00 2024\n"
	    "Subject: diff\n\nbody\n\n";
	struct mbox_index	 full, part;
	char			 b[(MBOX_SUFFIX_LINEAR * 3) * sizeof(twin)];
	size_t			 n = 0, i, k;
	off_t			 start, stripe;
	int			 fd;

	memset(&full, 0, sizeof(full));
	memset(&part, 0, sizeof(part));
	for (i = 0; i < MBOX_SUFFIX_LINEAR * 3; i++) {
		memcpy(b + n, i % 3 == 1 ? other : twin, sizeof(twin) - 1);
		n += sizeof(twin) - 1;
	}
	REQUIRE((fd = file_with("twins", b, n)) != -1);
	REQUIRE(scan_buf(b, n, &full) == MBOX_OK);
	CHECK_STR(strchr(full.msgs[3].uidl, '.'), ".3");
	for (k = 1; k <= full.count; k += full.count - k < 8 ? 1 : 37) {
		REQUIRE(scan_buf(b, full.msgs[k - 1].off + full.msgs[k - 1].len,
		    &part) == MBOX_OK);
		start = part.msgs[--part.count].from;
		stripe = part.end - part.end % (SUM_LANES * 8);
		if (stripe < start)
			continue;
		CHECK_INT(mbox_scan_resume(fd, start, stripe, part.sum_part,
		    &part), ==, MBOX_OK);
		REQUIRE(part.count == full.count);
		for (i = 0; i < full.count; i++)
			CHECK_STR(part.msgs[i].uidl, full.msgs[i].uidl);
	}
	close(fd);
	mbox_index_free(&full);
	mbox_index_free(&part);
}

static const char mbox1[] =
    "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody one\n\n"
    "From c@d Mon Jan  1 00:00:01 2024\nSubject: two\n\nbody two\r\n\n"
    "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody one\n\n";

/* Writes the index of mailbox fd (scanned now) into ixfd. */
static int
index_of(int fd, int ixfd, struct mbox_index *idx)
{
	struct index_meta	 meta;

	mbox_index_free(idx);
	if (mbox_scan_fd(fd, -1, idx) != MBOX_OK ||
	    index_mbox_note(fd, idx, &meta) == -1)
		return -1;
	return index_write(ixfd, getuid(), &meta, idx);
}

static void
test_round_trip(void)
{
	struct mbox_index	 idx, back;
	struct index_meta	 meta;
	struct stat		 st;
	int			 fd, ixfd;

	memset(&idx, 0, sizeof(idx));
	REQUIRE((fd = file_with("mbox", mbox1, sizeof(mbox1) - 1)) != -1);
	REQUIRE((ixfd = file_with("index", NULL, 0)) != -1);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	CHECK_INT(idx.count, ==, 3);
	CHECK(index_read(ixfd, getuid(), &meta, &back) == 0);
	CHECK(same_index(&idx, &back));
	CHECK_INT(meta.nsamples, ==, 3);
	REQUIRE(fstat(fd, &st) == 0);
	CHECK(meta.ino == st.st_ino && meta.size == st.st_size);
	/* another user's index is no index */
	mbox_index_free(&back);
	CHECK(index_read(ixfd, getuid() + 1, &meta, &back) == -1);
	CHECK(back.count == 0 && back.msgs == NULL);
	/* an empty file is no index */
	REQUIRE(ftruncate(ixfd, 0) == 0);
	CHECK(index_read(ixfd, getuid(), &meta, &back) == -1);
	mbox_index_free(&idx);
	mbox_index_free(&back);
	close(fd);
	close(ixfd);
}

/* Reads the whole index file into a buffer. */
static size_t
slurp(int fd, unsigned char **buf)
{
	struct stat	 st;

	if (fstat(fd, &st) == -1 || (*buf = malloc(st.st_size)) == NULL ||
	    pread(fd, *buf, st.st_size, 0) != st.st_size)
		return 0;
	return st.st_size;
}

/* Puts buf back, sealed with a good checksum unless raw. */
static void
put_back(int fd, unsigned char *buf, size_t n, int raw)
{
	if (!raw && n >= CHECK_SIZE)
		put64(buf + n - CHECK_SIZE, hash_word(hash_words(HASH_SEED,
		    buf, (n - CHECK_SIZE) & ~(size_t)7), n - CHECK_SIZE));
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != (ssize_t)n)
		unit_fail(__FILE__, __LINE__, "rewrite index");
}

/* The index of mbox1 in a file, and a copy of its bytes in *good. */
static size_t
good_index(int *fd, int *ixfd, struct mbox_index *idx, unsigned char **good)
{
	memset(idx, 0, sizeof(*idx));
	*good = NULL;
	if ((*fd = file_with("mbox", mbox1, sizeof(mbox1) - 1)) == -1 ||
	    (*ixfd = file_with("index", NULL, 0)) == -1 ||
	    index_of(*fd, *ixfd, idx) == -1)
		return 0;
	return slurp(*ixfd, good);
}

/* Every byte flipped, every length cut: never read, never a crash. */
static void
test_damage(void)
{
	struct mbox_index	 idx, back;
	struct index_meta	 meta;
	unsigned char		*good, *bad;
	size_t			 n, i;
	int			 fd, ixfd;

	REQUIRE((n = good_index(&fd, &ixfd, &idx, &good)) > 0);
	REQUIRE((bad = malloc(n)) != NULL);
	for (i = 0; i < n; i++) {
		memcpy(bad, good, n);
		bad[i] ^= 1 << (rnd() % 8);
		put_back(ixfd, bad, n, 1);
		CHECK(index_read(ixfd, getuid(), &meta, &back) == -1);
	}
	for (i = 0; i < n; i++) {
		put_back(ixfd, good, i, 1);
		CHECK(index_read(ixfd, getuid(), &meta, &back) == -1);
	}
	/* one byte more, with the checksum made right */
	REQUIRE((bad = realloc(bad, n + 8)) != NULL);
	memcpy(bad, good, n);
	memset(bad + n, 0, 8);
	put_back(ixfd, bad, n + 8, 0);
	CHECK(index_read(ixfd, getuid(), &meta, &back) == -1);
	put_back(ixfd, good, n, 1);
	CHECK(index_read(ixfd, getuid(), &meta, &back) == 0);
	CHECK(same_index(&idx, &back));
	free(good);
	free(bad);
	mbox_index_free(&idx);
	mbox_index_free(&back);
	close(fd);
	close(ixfd);
}

/* Forged fields behind a good checksum: each one refused on its own. */
static void
test_forged(void)
{
	struct mbox_index	 idx, back;
	struct index_meta	 meta;
	unsigned char		*good, *bad, *e;
	size_t			 n, ent;
	int			 fd, ixfd, i;

	REQUIRE((n = good_index(&fd, &ixfd, &idx, &good)) > 0);
	REQUIRE((bad = malloc(n)) != NULL);
	ent = HDR_SIZE + get32(good + H_NSAMPLES) * SAMPLE_SIZE;
	for (i = 0; i < 22; i++) {
		memcpy(bad, good, n);
		e = bad + ent + ENTRY_SIZE;	/* the second message */
		switch (i) {
		case 0: bad[0] = 'P'; break;
		case 1: put32(bad + H_VERSION, INDEX_VERSION + 1); break;
		case 2: put32(bad + H_KIND, 2); break;
		case 3: put32(bad + H_UID, getuid() + 1); break;
		case 4: put32(bad + H_NSAMPLES, INDEX_SAMPLES + 1); break;
		case 5: put64(bad + H_COUNT, 4); break;
		case 6: put64(bad + H_COUNT, (uint64_t)1 << 62); break;
		case 7: put64(bad + H_END, get64(bad + H_END) - 1); break;
		case 8: put64(bad + H_MTIME_NS, 1000000000); break;
		case 9: put64(e, get64(e) + 3); break;		/* from */
		case 10: put64(e, get64(e - ENTRY_SIZE)); break;
		case 11: put64(e + 8, get64(e) + 4); break;	/* off */
		case 12: put64(e + 16, (uint64_t)1 << 63); break; /* len */
		case 13: put64(e + 24, 2 * get64(e + 16) + 3); break;
		case 14: put64(e + 24, get64(e + 16) - 1); break;
		case 15: e[32] = ' '; break;			/* UIDL */
		case 16: e[32] = '\0'; break;
		case 17: e[32 + UIDL_SIZE - 1] = 'x'; break;
		case 18: e[32 + 40] = 'x'; break;		/* after NUL */
		case 19: put64(bad + HDR_SIZE, 5); break;	/* sample */
		case 20: put64(bad + ent - SAMPLE_SIZE, 1); break;
		case 21: bad[H_TAIL + 7] ^= 0xff;
			put64(bad + H_END, 3);
			put64(bad + H_SIZE, 3);
			break;
		}
		put_back(ixfd, bad, n, 0);
		if (index_read(ixfd, getuid(), &meta, &back) != -1)
			unit_fail(__FILE__, __LINE__, "forgery %d read", i);
	}
	/* the same, sealed untouched: read */
	put_back(ixfd, good, n, 0);
	CHECK(index_read(ixfd, getuid(), &meta, &back) == 0);
	free(good);
	free(bad);
	mbox_index_free(&idx);
	mbox_index_free(&back);
	close(fd);
	close(ixfd);
}

/* Random bytes, sealed or not: never read as an index that breaks the
 * rules, never a crash. */
static void
test_random_files(void)
{
	struct mbox_index	 back;
	struct index_meta	 meta;
	unsigned char		 buf[HDR_SIZE + 2 * SAMPLE_SIZE +
				    2 * ENTRY_SIZE + CHECK_SIZE];
	size_t			 i, n;
	int			 ixfd, round;

	REQUIRE((ixfd = file_with("index", NULL, 0)) != -1);
	for (round = 0; round < 2000; round++) {
		n = rnd() % (sizeof(buf) / 8 + 1) * 8;
		for (i = 0; i < n; i++)
			buf[i] = rnd() % 4 == 0 ? 0 : rnd();
		if (n >= HDR_SIZE) {
			memcpy(buf, INDEX_MAGIC, 8);
			put32(buf + H_VERSION, INDEX_VERSION);
			put32(buf + H_KIND, INDEX_MBOX);
			put32(buf + H_UID, getuid());
		}
		put_back(ixfd, buf, n, round % 2);
		CHECK(index_read(ixfd, getuid(), &meta, &back) == -1);
		mbox_index_free(&back);
	}
	close(ixfd);
}

/* What the mailbox looks like at the next login, against a fresh scan. */
static int
load_now(int fd, int ixfd, struct mbox_index *idx)
{
	struct mbox_index	 fresh;
	int			 rv;

	memset(&fresh, 0, sizeof(fresh));
	/* what index_of left in idx goes: the load fills it afresh */
	mbox_index_free(idx);
	rv = index_mbox_load(ixfd, fd, getuid(), idx);
	if (rv != -1 && (mbox_scan_fd(fd, -1, &fresh) != MBOX_OK ||
	    !same_index(idx, &fresh)))
		rv = -2;
	mbox_index_free(&fresh);
	mbox_index_free(idx);
	return rv;
}

static void
append(int fd, const char *s)
{
	struct stat	 st;

	if (fstat(fd, &st) == -1 || pwrite(fd, s, strlen(s), st.st_size) !=
	    (ssize_t)strlen(s))
		unit_fail(__FILE__, __LINE__, "append");
}

static void
test_mbox_checks(void)
{
	struct mbox_index	 idx;
	struct timespec		 times[2];
	struct stat		 st;
	char			 b[sizeof(mbox1)], path[PATH_MAX];
	int			 fd, ixfd, fd2;

	memset(&idx, 0, sizeof(idx));
	REQUIRE((fd = file_with("mbox", mbox1, sizeof(mbox1) - 1)) != -1);
	REQUIRE((ixfd = file_with("index", NULL, 0)) != -1);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, 1);

	/* grown by a message, then by half a line, then the rest of it */
	append(fd, "From e@f Mon Jan  1 00:00:02 2024\nSubject: 3\n\nx\n\n");
	CHECK_INT(load_now(fd, ixfd, &idx), ==, 0);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	append(fd, "From e@f Mon Jan  1 00:00:03 2024\nSubject: 4\n\nhal");
	CHECK_INT(load_now(fd, ixfd, &idx), ==, 0);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	append(fd, "f a line\n\n");
	CHECK_INT(load_now(fd, ixfd, &idx), ==, 0);

	/* the same size with a byte changed, mtime put back: ctime tells */
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(fstat(fd, &st) == 0);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	REQUIRE(pwrite(fd, "X", 1, 45) == 1);
	REQUIRE(futimens(fd, times) == 0);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);

	/* grown, a header added to an earlier message: From_ lines moved */
	REQUIRE(ftruncate(fd, 0) == 0);
	append(fd, mbox1);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	memcpy(b, mbox1, sizeof(mbox1));
	REQUIRE(ftruncate(fd, 0) == 0);
	REQUIRE(pwrite(fd, b, 34, 0) == 34);
	append(fd, "Status: RO\n");
	append(fd, b + 34);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);

	/* grown, the old end no longer the separator */
	REQUIRE(ftruncate(fd, 0) == 0);
	append(fd, mbox1);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(pwrite(fd, "y\n", 2, sizeof(mbox1) - 3) == 2);
	append(fd, "From e@f Mon Jan  1 00:00:02 2024\n\nx\n");
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);

	/* truncated */
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(ftruncate(fd, sizeof(mbox1) - 10) == 0);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);

	/* replaced by another file, same bytes */
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(pread(fd, b, sizeof(mbox1) - 10, 0) == sizeof(mbox1) - 10);
	REQUIRE((fd2 = file_with("mbox2", b, sizeof(mbox1) - 10)) != -1);
	CHECK_INT(load_now(fd2, ixfd, &idx), ==, -1);
	close(fd2);
	snprintf(path, sizeof(path), "%s/mbox2", tmpdir);
	(void)unlink(path);

	/* emptied, then an index of the empty file */
	REQUIRE(ftruncate(fd, 0) == 0);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, 1);
	append(fd, mbox1);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);
	close(fd);
	close(ixfd);
}

/*
 * Which changes the header alone rules out, before any entry is read:
 * another inode, a smaller file, the same size with other times.  A
 * grown or unchanged file needs the entries.
 */
static void
test_header_decides(void)
{
	struct mbox_index	 idx;
	struct timespec		 times[2];
	struct stat		 st;
	char			 path[PATH_MAX];
	int			 fd, ixfd, fd2;

	memset(&idx, 0, sizeof(idx));
	REQUIRE((fd = file_with("mbox", mbox1, sizeof(mbox1) - 1)) != -1);
	REQUIRE((ixfd = file_with("index", NULL, 0)) != -1);
	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(fstat(fd, &st) == 0);
	CHECK_INT(index_of_other(ixfd, &st), ==, 0);

	append(fd, "From e@f Mon Jan  1 00:00:02 2024\n\nx\n");
	REQUIRE(fstat(fd, &st) == 0);
	CHECK_INT(index_of_other(ixfd, &st), ==, 0);	/* grown */

	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(fstat(fd, &st) == 0);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	times[1].tv_sec -= 3600;	/* what install -p or touch -d do */
	REQUIRE(futimens(fd, times) == 0);
	REQUIRE(fstat(fd, &st) == 0);
	CHECK_INT(index_of_other(ixfd, &st), ==, 1);
	CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);

	REQUIRE(index_of(fd, ixfd, &idx) == 0);
	REQUIRE(ftruncate(fd, 10) == 0);
	REQUIRE(fstat(fd, &st) == 0);
	CHECK_INT(index_of_other(ixfd, &st), ==, 1);	/* smaller */

	REQUIRE((fd2 = file_with("mbox2", mbox1, 10)) != -1);
	REQUIRE(fstat(fd2, &st) == 0);
	CHECK_INT(index_of_other(ixfd, &st), ==, 1);	/* another inode */
	close(fd2);
	snprintf(path, sizeof(path), "%s/mbox2", tmpdir);
	(void)unlink(path);
	mbox_index_free(&idx);
	close(fd);
	close(ixfd);
}

/* A racy ctime: the note waits for the clock, the index then holds. */
static void
test_racy_wait(void)
{
	struct mbox_index	 idx;
	int			 fd, ixfd, i;

	memset(&idx, 0, sizeof(idx));
	REQUIRE((ixfd = file_with("index", NULL, 0)) != -1);
	for (i = 0; i < 20; i++) {
		REQUIRE((fd = file_with("mbox", mbox1, sizeof(mbox1) - 1)) !=
		    -1);
		REQUIRE(index_of(fd, ixfd, &idx) == 0);
		/* same size, right after: must show in ctime */
		REQUIRE(pwrite(fd, "Subject: ONE", 12, 35) == 12);
		CHECK_INT(load_now(fd, ixfd, &idx), ==, -1);
		close(fd);
	}
	close(ixfd);
}

/* The Maildir index: a round trip, and damage, disorder and odd names
 * refused. */
static void
test_maildir_index(void)
{
	struct index_file	 f[3], *back;
	char			 names[3][32];
	unsigned char		*good, *bad;
	size_t			 n, i, count, first;
	int			 ixfd, k;

	memset(f, 0, sizeof(f));
	for (k = 0; k < 3; k++) {
		f[k].dir = k == 2;
		f[k].ino = 100 + k;
		f[k].len = 10 * k;
		f[k].size = 10 * k + k;
		snprintf(names[k], sizeof(names[k]), "17000000%d.M1.h%s", k,
		    k == 2 ? ":2,S" : "");
		f[k].name = names[k];
	}
	/* the first entry: its fixed part, its name and one to eight NULs */
	first = MD_FIXED + MD_NAME_SPACE(strlen(names[0]));
	CHECK_INT(first, ==, 48);
	REQUIRE((ixfd = file_with("index", NULL, 0)) != -1);
	REQUIRE(index_maildir_write(ixfd, getuid(), f, 3) == 0);
	REQUIRE(index_maildir_read(ixfd, getuid(), &back, &count) == 0);
	CHECK_INT(count, ==, 3);
	for (k = 0; k < 3 && count == 3; k++)
		CHECK(index_file_cmp(&back[k], &f[k]) == 0 &&
		    back[k].ino == f[k].ino && back[k].size == f[k].size);
	free(back);
	CHECK(index_maildir_read(ixfd, getuid() + 1, &back, &count) == -1);
	REQUIRE((n = slurp(ixfd, &good)) > 0);
	REQUIRE((bad = malloc(n)) != NULL);
	for (i = 0; i < n; i++) {
		memcpy(bad, good, n);
		bad[i] ^= 1 << (rnd() % 8);
		put_back(ixfd, bad, n, 1);
		CHECK(index_maildir_read(ixfd, getuid(), &back, &count) == -1);
	}
	for (k = 0; k < 9; k++) {
		memcpy(bad, good, n);
		switch (k) {
		case 0: bad[MD_HDR_SIZE + 32] = '.'; break;	/* hidden */
		case 1: bad[MD_HDR_SIZE + 33] = '/'; break;
		case 2: put32(bad + MD_HDR_SIZE, 2); break;	/* dir */
		case 3: put64(bad + MD_HDR_SIZE + 24, 25); break; /* size */
		case 4: memcpy(bad + MD_HDR_SIZE + first, good +
			    MD_HDR_SIZE, first); break;		/* twice */
		case 5: bad[MD_HDR_SIZE + first - 1] = 'x'; break; /* pad */
		case 6: put32(bad + MD_HDR_SIZE + 4, 16); break; /* length */
		case 7: put32(bad + MD_HDR_SIZE + 4, 8); break;	/* shorter */
		case 8: put64(bad + 24, 2); break;		/* count */
		}
		put_back(ixfd, bad, n, 0);
		if (index_maildir_read(ixfd, getuid(), &back, &count) != -1)
			unit_fail(__FILE__, __LINE__, "forgery %d read", k);
	}
	/* an mbox index is no Maildir index, and the other way round */
	put_back(ixfd, good, n, 0);
	CHECK(index_maildir_read(ixfd, getuid(), &back, &count) == 0);
	free(back);
	{
		struct index_meta	 meta;
		struct mbox_index	 idx;

		CHECK(index_read(ixfd, getuid(), &meta, &idx) == -1);
	}
	free(good);
	free(bad);
	close(ixfd);
}

static void
test_dir_checks(void)
{
	char	 path[PATH_MAX];
	int	 fd;

	CHECK((fd = index_dir_open(tmpdir)) != -1);
	if (fd != -1)
		close(fd);
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	REQUIRE(mkdir(path, 0777) == 0);
	REQUIRE(chmod(path, 0777) == 0);
	CHECK(index_dir_open(path) == -1);	/* other-writable */
	REQUIRE(chmod(path, 0755) == 0);
	CHECK((fd = index_dir_open(path)) != -1);
	if (fd != -1) {
		CHECK(index_file_open(fd, "..", 0, 0) == -1);
		CHECK(index_file_open(fd, "a/b", 0, 0) == -1);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/link", tmpdir);
	REQUIRE(symlink("sub", path) == 0);
	CHECK(index_dir_open(path) == -1);
	snprintf(path, sizeof(path), "%s/link/", tmpdir);
	CHECK(index_dir_open(path) == -1);
	CHECK(index_dir_open("relative") == -1);
	CHECK(index_dir_open("/nonexistent-pop3d-dir") == -1);
	snprintf(path, sizeof(path), "%s/link", tmpdir);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	(void)rmdir(path);
}

int
main(int argc, char *argv[])
{
	char	 path[PATH_MAX];
	int	 rv;

	unit_init(argc, argv);
	log_init(1, 0);
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) == -1) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_resume_equals_scan);
	UNIT_RUN(test_resume_twin_suffixes);
	UNIT_RUN(test_round_trip);
	UNIT_RUN(test_damage);
	UNIT_RUN(test_forged);
	UNIT_RUN(test_random_files);
	UNIT_RUN(test_mbox_checks);
	UNIT_RUN(test_header_decides);
	UNIT_RUN(test_racy_wait);
	UNIT_RUN(test_maildir_index);
	if (geteuid() == 0)
		UNIT_RUN(test_dir_checks);
	rv = unit_end();
	snprintf(path, sizeof(path), "%s/mbox", tmpdir);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/index", tmpdir);
	(void)unlink(path);
	(void)rmdir(tmpdir);
	return rv;
}
