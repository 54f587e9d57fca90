/*
 * index.c: the per-user index of the mailbox, a cache in the -i
 * directory, so that a login need not read a mailbox it has seen before.
 *
 * The file is the user's (she may write it), so it is read as untrusted
 * input: every field is checked, the whole file is covered by a checksum,
 * and anything wrong makes it "no index", never an error.  The layout,
 * all integers little-endian:
 *
 *	header	152 bytes: magic, version, kind, uid, the number of
 *		samples, the mailbox's dev, ino, size, mtime, ctime, the
 *		scanned end, the content sums, the message count, the bytes
 *		before the end
 *	samples	16 bytes each: a message number and the hash of the first
 *		bytes of its From_ line
 *	entries	32 + UIDL_SIZE bytes each: from, off, len, size, the
 *		UIDL (NUL-padded), as struct mbox_msg
 *	check	8 bytes: the checksum of everything before it
 *
 * A change of the UIDL rule or of the content sum in mbox.c must change
 * INDEX_VERSION: an index written by the old rule is then not read.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"

#define INDEX_MAGIC	"pop3didx"
#define INDEX_VERSION	1
#define INDEX_MBOX	1		/* the kind of mailbox indexed */

#define HDR_SIZE	152
#define SAMPLE_SIZE	16
#define ENTRY_SIZE	(4 * 8 + UIDL_SIZE)
#define CHECK_SIZE	8
/* Entries are read and written this many at a time: about 64 KB. */
#define IO_ENTRIES	(65536 / ENTRY_SIZE)
/* The checksum takes whole words. */
_Static_assert(ENTRY_SIZE % 8 == 0 && HDR_SIZE % 8 == 0,
    "index records must be whole words");

/* Header field offsets. */
#define H_VERSION	8
#define H_KIND		12
#define H_UID		16
#define H_NSAMPLES	20
#define H_DEV		24
#define H_INO		32
#define H_SIZE		40
#define H_MTIME		48
#define H_MTIME_NS	56
#define H_CTIME		64
#define H_CTIME_NS	72
#define H_END		80
#define H_SUM		88
#define H_SUM_PART	96		/* SUM_LANES of them */
#define H_COUNT		128
#define H_TAIL		136
#define H_RESERVED	144

static void
put32(unsigned char *p, uint32_t v)
{
	int	 i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
	int	 i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/*
 * Where the machine is little-endian a field is one load: the checksum
 * takes every word of the file, so at each login a few million of them.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint32_t
get32(const unsigned char *p)
{
	uint32_t	 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t
get64(const unsigned char *p)
{
	uint64_t	 v;

	memcpy(&v, p, sizeof(v));
	return v;
}
#else
static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
#endif

/*
 * A fast 64-bit hash of words, for the checksum and the From_ samples:
 * it must tell accidents (a torn write, a file that moved), not
 * attackers, who could only mislead their own view.
 */
#define HASH_SEED	0x6a09e667f3bcc908ULL
#define HASH_MUL	0x9e3779b97f4a7c15ULL

static uint64_t
hash_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * HASH_MUL;
	return h ^ (h >> 31);
}

/* Adds n bytes (a multiple of 8) to h. */
static uint64_t
hash_words(uint64_t h, const unsigned char *p, size_t n)
{
	for (; n >= 8; p += 8, n -= 8)
		h = hash_word(h, get64(p));
	return h;
}

/* The hash of any n bytes, their number included. */
static uint64_t
hash_bytes(const unsigned char *p, size_t n)
{
	unsigned char	 last[8];
	uint64_t	 h;
	size_t		 whole = n - n % 8;

	h = hash_words(HASH_SEED, p, whole);
	memset(last, 0, sizeof(last));
	memcpy(last, p + whole, n % 8);
	return hash_word(hash_word(h, get64(last)), n);
}

/* Reads exactly n bytes at off; returns 0, or -1 (errno EIO if short). */
static int
read_at(int fd, void *buf, size_t n, off_t off)
{
	ssize_t	 r;
	size_t	 got = 0;

	while (got < n) {
		if ((r = pread(fd, (char *)buf + got, n - got, off + got)) ==
		    -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		got += r;
	}
	return 0;
}

static int
write_at(int fd, const void *buf, size_t n, off_t off)
{
	ssize_t	 r;
	size_t	 done = 0;

	while (done < n) {
		if ((r = pwrite(fd, (const char *)buf + done, n - done,
		    off + done)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += r;
	}
	return 0;
}

/*
 * Room for at least n records of size bytes, for free(3) and realloc(3),
 * not zeroed; *cap is set to how many fit.  Large, it is whole huge
 * pages where the kernel gives them on request: a later login's index
 * is megabytes of fresh memory, and on a virtual machine each 4 KB page
 * first touched costs more than the work done in it (4.8 MB of them took
 * 22 ms here, against 7 ms in huge pages).  The rest of the last huge
 * page is room to grow in, for the messages appended since.
 */
void *
index_table(size_t n, size_t size, size_t *cap)
{
	size_t	 len;
	void	*p;

	if (n == 0)
		n = 1;
	if (n > (SIZE_MAX - INDEX_HUGE_PAGE) / size)
		return NULL;
	len = n * size;
	if (len < INDEX_HUGE_PAGE) {
		*cap = n;
		return malloc(len);
	}
	/* whole huge pages: a part of one would be small pages */
	len = (len + INDEX_HUGE_PAGE - 1) & ~(size_t)(INDEX_HUGE_PAGE - 1);
	if (posix_memalign(&p, INDEX_HUGE_PAGE, len) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	/* only a hint: without it the pages are small */
	(void)madvise(p, len, MADV_HUGEPAGE);
#endif
	*cap = len / size;
	return p;
}

/*
 * One entry, checked as the scanner would have made it: messages in file
 * order from offset 0, each after the one before it and at most a blank
 * separator line apart, a From_ line of at least "From ", a size that a
 * CRLF conversion can give, a printable UIDL padded with NULs.  *next is
 * where the previous message's bytes ended (-1 before the first).
 */
static int
entry_decode(const unsigned char *p, struct mbox_msg *m, off_t *next,
    off_t end)
{
	uint64_t	 from, off, len, size;
	size_t		 i, n;

	from = get64(p);
	off = get64(p + 8);
	len = get64(p + 16);
	size = get64(p + 24);
	if (from > (uint64_t)end || off > (uint64_t)end ||
	    len > (uint64_t)end || size > 2 * (uint64_t)end + 2)
		return -1;
	if (*next == -1 ? from != 0 : (from < (uint64_t)*next ||
	    from > (uint64_t)*next + 2))
		return -1;
	if (off < from + 5 || off + len > (uint64_t)end || size < len ||
	    size > 2 * len + 2)
		return -1;
	memcpy(m->uidl, p + 32, UIDL_SIZE);
	n = strnlen(m->uidl, UIDL_SIZE);
	if (n == 0 || n > 70 || n == UIDL_SIZE)
		return -1;
	for (i = 0; i < n; i++)
		if (m->uidl[i] < 0x21 || m->uidl[i] > 0x7e)
			return -1;
	for (; i < UIDL_SIZE; i++)
		if (m->uidl[i] != '\0')
			return -1;
	m->from = from;
	m->off = off;
	m->len = len;
	m->size = size;
	*next = off + len;
	return 0;
}

static void
entry_encode(unsigned char *p, const struct mbox_msg *m)
{
	size_t	 n = strnlen(m->uidl, UIDL_SIZE - 1);

	put64(p, m->from);
	put64(p + 8, m->off);
	put64(p + 16, m->len);
	put64(p + 24, m->size);
	memset(p + 32, 0, UIDL_SIZE);
	memcpy(p + 32, m->uidl, n);
}

/* The header's mailbox fields; returns 0, or -1 if they cannot be. */
static int
header_decode(const unsigned char *h, struct index_meta *meta,
    struct mbox_index *idx, uint64_t *count)
{
	uint64_t	 size, end, mns, cns;
	size_t		 i, tail;

	meta->dev = get64(h + H_DEV);
	meta->ino = get64(h + H_INO);
	size = get64(h + H_SIZE);
	end = get64(h + H_END);
	mns = get64(h + H_MTIME_NS);
	cns = get64(h + H_CTIME_NS);
	*count = get64(h + H_COUNT);
	if ((uint64_t)meta->dev != get64(h + H_DEV) ||
	    (uint64_t)meta->ino != get64(h + H_INO) ||
	    size > (uint64_t)MAX_MAILDROP_SIZE || end != size ||
	    mns >= 1000000000 || cns >= 1000000000 ||
	    *count > MAX_MESSAGES || (*count == 0) != (end == 0) ||
	    get64(h + H_RESERVED) != 0)
		return -1;
	meta->size = size;
	meta->mtime.tv_sec = (int64_t)get64(h + H_MTIME);
	meta->mtime.tv_nsec = mns;
	meta->ctime.tv_sec = (int64_t)get64(h + H_CTIME);
	meta->ctime.tv_nsec = cns;
	/* the bytes before the end, zeros after them */
	tail = end < sizeof(meta->tail) ? end : sizeof(meta->tail);
	memcpy(meta->tail, h + H_TAIL, sizeof(meta->tail));
	for (i = tail; i < sizeof(meta->tail); i++)
		if (meta->tail[i] != 0)
			return -1;
	idx->end = end;
	idx->sum = get64(h + H_SUM);
	for (i = 0; i < SUM_LANES; i++)
		idx->sum_part[i] = get64(h + H_SUM_PART + 8 * i);
	return 0;
}

static void
header_encode(unsigned char *h, uid_t uid, const struct index_meta *meta,
    const struct mbox_index *idx)
{
	int	 i;

	memset(h, 0, HDR_SIZE);
	memcpy(h, INDEX_MAGIC, 8);
	put32(h + H_VERSION, INDEX_VERSION);
	put32(h + H_KIND, INDEX_MBOX);
	put32(h + H_UID, uid);
	put32(h + H_NSAMPLES, meta->nsamples);
	put64(h + H_DEV, meta->dev);
	put64(h + H_INO, meta->ino);
	put64(h + H_SIZE, meta->size);
	put64(h + H_MTIME, (uint64_t)meta->mtime.tv_sec);
	put64(h + H_MTIME_NS, meta->mtime.tv_nsec);
	put64(h + H_CTIME, (uint64_t)meta->ctime.tv_sec);
	put64(h + H_CTIME_NS, meta->ctime.tv_nsec);
	put64(h + H_END, idx->end);
	put64(h + H_SUM, idx->sum);
	for (i = 0; i < SUM_LANES; i++)
		put64(h + H_SUM_PART + 8 * i, idx->sum_part[i]);
	put64(h + H_COUNT, idx->count);
	memcpy(h + H_TAIL, meta->tail, sizeof(meta->tail));
}

/* The samples: increasing message numbers, the last message last. */
static int
samples_decode(const unsigned char *p, struct index_meta *meta,
    uint64_t count)
{
	uint64_t	 msg;
	size_t		 i;

	if ((count == 0) != (meta->nsamples == 0))
		return -1;
	for (i = 0; i < meta->nsamples; i++, p += SAMPLE_SIZE) {
		msg = get64(p);
		if (msg >= count || (i > 0 && msg <= meta->samples[i - 1].msg))
			return -1;
		meta->samples[i].msg = msg;
		meta->samples[i].hash = get64(p + 8);
	}
	if (count > 0 && meta->samples[meta->nsamples - 1].msg != count - 1)
		return -1;
	return 0;
}

int
index_read(int fd, uid_t uid, struct index_meta *meta,
    struct mbox_index *idx)
{
	unsigned char	*buf;
	struct stat	 st;
	uint64_t	 count, ck, i, n;
	off_t		 pos, next = -1;
	size_t		 j;

	memset(meta, 0, sizeof(*meta));
	memset(idx, 0, sizeof(*idx));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size < HDR_SIZE + CHECK_SIZE)
		return -1;
	if ((buf = malloc(IO_ENTRIES * ENTRY_SIZE)) == NULL)
		return -1;
	if (read_at(fd, buf, HDR_SIZE, 0) == -1 ||
	    memcmp(buf, INDEX_MAGIC, 8) != 0 ||
	    get32(buf + H_VERSION) != INDEX_VERSION ||
	    get32(buf + H_KIND) != INDEX_MBOX || get32(buf + H_UID) != uid ||
	    (meta->nsamples = get32(buf + H_NSAMPLES)) > INDEX_SAMPLES ||
	    header_decode(buf, meta, idx, &count) == -1 ||
	    st.st_size != (off_t)(HDR_SIZE + meta->nsamples * SAMPLE_SIZE +
	    count * ENTRY_SIZE + CHECK_SIZE))
		goto bad;
	ck = hash_words(HASH_SEED, buf, HDR_SIZE);
	pos = HDR_SIZE;
	if (read_at(fd, buf, meta->nsamples * SAMPLE_SIZE, pos) == -1 ||
	    samples_decode(buf, meta, count) == -1)
		goto bad;
	ck = hash_words(ck, buf, meta->nsamples * SAMPLE_SIZE);
	pos += meta->nsamples * SAMPLE_SIZE;
	/* bounded by the file's size, checked above */
	if ((idx->msgs = index_table(count, sizeof(*idx->msgs),
	    &idx->cap)) == NULL)
		goto bad;
	for (i = 0; i < count; i += n) {
		n = count - i < IO_ENTRIES ? count - i : IO_ENTRIES;
		if (read_at(fd, buf, n * ENTRY_SIZE, pos) == -1)
			goto bad;
		ck = hash_words(ck, buf, n * ENTRY_SIZE);
		pos += n * ENTRY_SIZE;
		for (j = 0; j < n; j++)
			if (entry_decode(buf + j * ENTRY_SIZE,
			    &idx->msgs[i + j], &next, idx->end) == -1)
				goto bad;
	}
	if (read_at(fd, buf, CHECK_SIZE, pos) == -1 ||
	    get64(buf) != hash_word(ck, pos))
		goto bad;
	idx->count = count;
	free(buf);
	return 0;
bad:
	free(buf);
	mbox_index_free(idx);
	memset(meta, 0, sizeof(*meta));
	return -1;
}

/*
 * Ends a write of the index at pos: the checksum ck, then the size; with
 * pos -1 (a write failed) or on failure the file is emptied, since an
 * index half written is no index.  Frees buf; returns 0, or -1 with errno.
 */
static int
write_end(int fd, unsigned char *buf, uint64_t ck, off_t pos)
{
	int	 saved;

	if (pos != -1) {
		put64(buf, hash_word(ck, pos));
		if (write_at(fd, buf, CHECK_SIZE, pos) == 0 &&
		    ftruncate(fd, pos + CHECK_SIZE) == 0) {
			free(buf);
			return 0;
		}
	}
	saved = errno;
	free(buf);
	if (ftruncate(fd, 0) == -1 && saved == 0)
		saved = errno;
	errno = saved;
	return -1;
}

int
index_write(int fd, uid_t uid, const struct index_meta *meta,
    const struct mbox_index *idx)
{
	unsigned char	*buf;
	uint64_t	 ck;
	size_t		 i, j, n, len;
	off_t		 pos;

	if (meta->nsamples > INDEX_SAMPLES || idx->count > MAX_MESSAGES) {
		errno = EINVAL;
		return -1;
	}
	if ((buf = malloc(IO_ENTRIES * ENTRY_SIZE)) == NULL)
		return -1;
	header_encode(buf, uid, meta, idx);
	len = HDR_SIZE;
	for (i = 0; i < meta->nsamples; i++, len += SAMPLE_SIZE) {
		put64(buf + len, meta->samples[i].msg);
		put64(buf + len + 8, meta->samples[i].hash);
	}
	ck = hash_words(HASH_SEED, buf, len);
	if (write_at(fd, buf, len, 0) == -1)
		goto bad;
	pos = len;
	for (i = 0; i < idx->count; i += n) {
		n = idx->count - i < IO_ENTRIES ? idx->count - i : IO_ENTRIES;
		for (j = 0; j < n; j++)
			entry_encode(buf + j * ENTRY_SIZE, &idx->msgs[i + j]);
		ck = hash_words(ck, buf, n * ENTRY_SIZE);
		if (write_at(fd, buf, n * ENTRY_SIZE, pos) == -1)
			goto bad;
		pos += n * ENTRY_SIZE;
	}
	return write_end(fd, buf, ck, pos);
bad:
	return write_end(fd, buf, ck, -1);
}

/* The hash of message msg's From_ line, read from mailbox fd, or -1 for
 * a read error or bytes that are no From_ line at a line start. */
static int
from_hash(int fd, const struct mbox_index *idx, size_t msg, uint64_t *h)
{
	unsigned char	 buf[1 + INDEX_FROM_CHECK];
	off_t		 from = idx->msgs[msg].from;
	size_t		 n, before = from > 0;

	n = idx->end - from < INDEX_FROM_CHECK ? idx->end - from :
	    INDEX_FROM_CHECK;
	if (read_at(fd, buf, before + n, from - before) == -1 ||
	    (before && buf[0] != '\n') || n < 5 ||
	    memcmp(buf + before, "From ", 5) != 0)
		return -1;
	*h = hash_bytes(buf + before, n);
	return 0;
}

/* Waits, up to INDEX_RACY_WAIT ms, until the clock is past ctime, so that
 * any later change shows in the file's times; returns 0, or -1. */
static int
index_wait_tick(const struct timespec *ctime)
{
	struct timespec	 now, ms = { 0, 1000000 };
	int		 i;

	for (i = 0; i <= INDEX_RACY_WAIT; i++) {
		if (clock_gettime(CLOCK_REALTIME_COARSE, &now) == -1)
			return -1;
		/* whole seconds: the file system may keep no more */
		if (ctime->tv_nsec == 0 ? now.tv_sec > ctime->tv_sec :
		    (now.tv_sec > ctime->tv_sec || (now.tv_sec ==
		    ctime->tv_sec && now.tv_nsec > ctime->tv_nsec)))
			return 0;
		if (i < INDEX_RACY_WAIT)
			(void)nanosleep(&ms, NULL);
	}
	return -1;
}

int
index_mbox_note(int fd, const struct mbox_index *idx,
    struct index_meta *meta)
{
	struct stat	 st;
	size_t		 i, k, tail;

	memset(meta, 0, sizeof(*meta));
	if (fstat(fd, &st) == -1 || st.st_size != idx->end ||
	    idx->count > MAX_MESSAGES)
		return -1;
	if (index_wait_tick(&st.st_ctim) == -1 || fstat(fd, &st) == -1 ||
	    st.st_size != idx->end)
		return -1;
	meta->dev = st.st_dev;
	meta->ino = st.st_ino;
	meta->size = st.st_size;
	meta->mtime = st.st_mtim;
	meta->ctime = st.st_ctim;
	tail = idx->end < 8 ? idx->end : 8;
	if (read_at(fd, meta->tail, tail, idx->end - tail) == -1)
		return -1;
	/* evenly spread, from the first message to the last */
	k = idx->count < INDEX_SAMPLES ? idx->count : INDEX_SAMPLES;
	for (i = 0; i < k; i++) {
		meta->samples[i].msg = k == idx->count ? i :
		    i * (idx->count - 1) / (k - 1);
		if (from_hash(fd, idx, meta->samples[i].msg,
		    &meta->samples[i].hash) == -1)
			return -1;
	}
	meta->nsamples = k;
	return 0;
}

/* The grown file still holds what the index says at its old end and at
 * the sampled From_ lines. */
static int
index_mbox_grown(int fd, const struct index_meta *meta,
    const struct mbox_index *idx)
{
	unsigned char	 tail[8];
	uint64_t	 h;
	size_t		 i, n;

	n = idx->end < 8 ? idx->end : 8;
	if (read_at(fd, tail, n, idx->end - n) == -1 ||
	    memcmp(tail, meta->tail, n) != 0)
		return 0;
	for (i = 0; i < meta->nsamples; i++)
		if (from_hash(fd, idx, meta->samples[i].msg, &h) == -1 ||
		    h != meta->samples[i].hash)
			return 0;
	return 1;
}

static int
same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/*
 * Whether the index at fd is of no use for the file st describes, from
 * its header alone: another file (a new inode), or this one changed and
 * not grown, which index_mbox_load would scan again anyway.  Neither
 * needs the entries read and checked (46,620 of them, 5 ms); a mailbox
 * replaced by install(1) or a copy often gets the freed inode back, and
 * only its times tell.  0 where the header cannot be read: index_read
 * says why.  A forged header can only cause a scan.
 */
static int
index_of_other(int fd, const struct stat *st)
{
	unsigned char	 h[HDR_SIZE];
	struct timespec	 mt, ct;
	uint64_t	 size;

	if (read_at(fd, h, sizeof(h), 0) == -1)
		return 0;
	if (get64(h + H_DEV) != (uint64_t)st->st_dev ||
	    get64(h + H_INO) != (uint64_t)st->st_ino)
		return 1;
	size = get64(h + H_SIZE);
	if ((uint64_t)st->st_size != size)
		return (uint64_t)st->st_size < size;
	mt.tv_sec = (int64_t)get64(h + H_MTIME);
	mt.tv_nsec = (long)get64(h + H_MTIME_NS);
	ct.tv_sec = (int64_t)get64(h + H_CTIME);
	ct.tv_nsec = (long)get64(h + H_CTIME_NS);
	return !same_time(&st->st_mtim, &mt) ||
	    !same_time(&st->st_ctim, &ct);
}

int
index_mbox_load(int ixfd, int fd, uid_t uid, struct mbox_index *idx)
{
	struct index_meta	 meta;
	struct stat		 st;
	off_t			 start, sum_from;

	if (fstat(fd, &st) == -1 || index_of_other(ixfd, &st) ||
	    index_read(ixfd, uid, &meta, idx) == -1)
		return -1;
	if (st.st_dev != meta.dev || st.st_ino != meta.ino)
		goto rescan;
	if (st.st_size == meta.size && same_time(&st.st_mtim, &meta.mtime) &&
	    same_time(&st.st_ctim, &meta.ctime))
		return 1;
	/*
	 * Grown: the last message may have grown too, so it is scanned
	 * again from its From_ line, with what follows.
	 */
	if (st.st_size <= meta.size || idx->count == 0 ||
	    !index_mbox_grown(fd, &meta, idx))
		goto rescan;
	start = idx->msgs[--idx->count].from;
	sum_from = idx->end - idx->end % (SUM_LANES * 8);
	if (sum_from < start)
		goto rescan;
	if (mbox_scan_resume(fd, start, sum_from, idx->sum_part, idx) !=
	    MBOX_OK)
		goto rescan;
	return 0;
rescan:
	mbox_index_free(idx);
	return -1;
}

/* Opens the directory at the end of path, one component at a time. */
int
index_dir_open(const char *path)
{
	char		 buf[PATH_MAX], *p, *comp, *last;
	struct stat	 st;
	int		 fd, nfd, root;

	if (path[0] != '/' || strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		log_warnx("index directory unusable dir=%s "
		    "reason=not-absolute", path);
		return -1;
	}
	if ((fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	for (p = buf, last = NULL; ; ) {
		if (fstat(fd, &st) == -1)
			goto fail;
		while (*p == '/')
			p++;
		root = st.st_uid == 0;
		if (*p == '\0') {
			/* the directory itself: root's alone */
			if (!root || (st.st_mode & (S_IWGRP | S_IWOTH)))
				goto unsafe;
			return fd;
		}
		/* above it: nobody else may rename what we go through */
		if (!root || ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
		    !(st.st_mode & S_ISVTX)))
			goto unsafe;
		comp = p;
		if ((p = strchr(p, '/')) != NULL)
			*p++ = '\0';
		else
			p = comp + strlen(comp);
		if (strcmp(comp, "..") == 0)
			goto unsafe;
		last = comp;
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		if ((fd = nfd) == -1)
			goto fail;
	}
fail:
	log_warn("index directory unusable dir=%s", path);
	if (fd != -1)
		close(fd);
	return -1;
unsafe:
	log_warnx("index directory unusable dir=%s component=%s "
	    "reason=not-root-only", path, last != NULL ? last : "/");
	close(fd);
	return -1;
}

int
index_file_open(int dirfd, const char *user, uid_t uid, gid_t gid)
{
	struct stat	 st;
	int		 fd;

	if (user[0] == '\0' || strchr(user, '/') != NULL ||
	    strcmp(user, ".") == 0 || strcmp(user, "..") == 0 ||
	    strlen(user) > NAME_MAX) {
		log_warnx("index not used user=%s reason=name-unfit", user);
		return -1;
	}
	fd = openat(dirfd, user, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC, 0600);
	if (fd == -1) {
		log_warn("index not used user=%s", user);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1) {
		log_warnx("index not used user=%s reason=not-one-regular-file",
		    user);
		close(fd);
		return -1;
	}
	if (((st.st_uid != uid || st.st_gid != gid) &&
	    fchown(fd, uid, gid) == -1) ||
	    ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) == -1)) {
		log_warn("index not used user=%s", user);
		close(fd);
		return -1;
	}
	return fd;
}

int
index_open(const char *dir, const char *user, uid_t uid, gid_t gid)
{
	int	 dirfd, fd;

	if ((dirfd = index_dir_open(dir)) == -1)
		return -1;
	fd = index_file_open(dirfd, user, uid, gid);
	close(dirfd);
	return fd;
}

/*
 * The Maildir index: one entry per file served, sorted by directory and
 * name (so that a lookup is a binary search and no file is there twice),
 * with its inode, size and CRLF size.  A file whose name and inode match
 * is not read again; RETR checks its size with fstat.  The layout: a
 * header (magic, version, kind, uid, count), the entries, the checksum.
 * An entry is 32 bytes (dir, name length, inode, size, CRLF size), then
 * the name with one to eight NULs, to a whole number of words: a login
 * reads what the names take, not NAME_MAX for each, and uses the names
 * where they were read.  Version 1 gave every name NAME_MAX + 1 bytes.
 */
#define INDEX_MAILDIR	2
#define MD_VERSION	2
#define MD_HDR_SIZE	32
#define MD_FIXED	32
#define MD_NAME_SPACE(n)	(((size_t)(n) + 8) & ~(size_t)7)
#define MD_ENTRY_MIN	(MD_FIXED + MD_NAME_SPACE(1))
#define MD_ENTRY_MAX	(MD_FIXED + MD_NAME_SPACE(NAME_MAX))
/* Entries are written this many bytes at a time, at most. */
#define MD_IO_SIZE	65536
_Static_assert(MD_FIXED % 8 == 0 && MD_HDR_SIZE % 8 == 0,
    "index records must be whole words");

/* Order of entries: by directory, then name. */
int
index_file_cmp(const struct index_file *a, const struct index_file *b)
{
	if (a->dir != b->dir)
		return a->dir < b->dir ? -1 : 1;
	return strcmp(a->name, b->name);
}

/*
 * One entry at p, with avail bytes left before the checksum; *space is
 * the bytes it takes.  The name is used in place (NUL-terminated there).
 */
static int
md_entry_decode(const unsigned char *p, size_t avail, struct index_file *f,
    size_t *space)
{
	const unsigned char	*name = p + MD_FIXED;
	uint32_t		 dir = get32(p), namelen = get32(p + 4);
	size_t			 i;

	if (dir > 1 || namelen == 0 || namelen > NAME_MAX ||
	    (*space = MD_FIXED + MD_NAME_SPACE(namelen)) > avail)
		return -1;
	f->ino = get64(p + 8);
	f->len = get64(p + 16);
	f->size = get64(p + 24);
	if ((uint64_t)f->ino != get64(p + 8) || get64(p + 16) >
	    (uint64_t)MAX_MAILDROP_SIZE || get64(p + 24) > 2 *
	    (uint64_t)MAX_MAILDROP_SIZE + 2 || f->size < f->len ||
	    f->size > 2 * f->len + 2 || name[0] == '.' ||
	    memchr(name, '\0', namelen) != NULL ||
	    memchr(name, '/', namelen) != NULL)
		return -1;
	for (i = namelen; i < *space - MD_FIXED; i++)
		if (name[i] != '\0')
			return -1;
	f->dir = dir;
	f->name = (const char *)name;
	return 0;
}

/* The header of a Maildir index for uid with count entries. */
static void
md_header_encode(unsigned char *h, uid_t uid, uint64_t count)
{
	memset(h, 0, MD_HDR_SIZE);
	memcpy(h, INDEX_MAGIC, 8);
	put32(h + H_VERSION, MD_VERSION);
	put32(h + H_KIND, INDEX_MAILDIR);
	put32(h + H_UID, uid);
	put64(h + 24, count);
}

int
index_maildir_read(int fd, uid_t uid, struct index_file **files,
    size_t *count)
{
	unsigned char	  hdr[MD_HDR_SIZE], *buf, *p, *end;
	struct index_file *v;
	struct stat	  st;
	uint64_t	  n, i;
	size_t		  body, space;

	*files = NULL;
	*count = 0;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size < MD_HDR_SIZE + CHECK_SIZE ||
	    read_at(fd, hdr, MD_HDR_SIZE, 0) == -1)
		return -1;
	md_header_encode(hdr, uid, n = get64(hdr + 24));
	body = st.st_size - MD_HDR_SIZE - CHECK_SIZE;
	/* the header as it is written, and a size its count allows */
	if (n > MAX_MESSAGES || body < n * MD_ENTRY_MIN ||
	    body > n * MD_ENTRY_MAX)
		return -1;
	/* one block: the array, then the file, where the names stay */
	if ((v = index_table(1, n * sizeof(*v) + st.st_size, &space)) ==
	    NULL)
		return -1;
	buf = (unsigned char *)(v + n);
	if (read_at(fd, buf, st.st_size, 0) == -1 ||
	    memcmp(buf, hdr, MD_HDR_SIZE) != 0 ||
	    get64(buf + st.st_size - CHECK_SIZE) != hash_word(hash_words(
	    HASH_SEED, buf, st.st_size - CHECK_SIZE), st.st_size - CHECK_SIZE))
		goto bad;
	p = buf + MD_HDR_SIZE;
	end = p + body;
	for (i = 0; i < n; i++, p += space)
		if (md_entry_decode(p, end - p, &v[i], &space) == -1 ||
		    (i > 0 && index_file_cmp(&v[i - 1], &v[i]) >= 0))
			goto bad;
	if (p != end)
		goto bad;
	*files = v;
	*count = n;
	return 0;
bad:
	free(v);
	return -1;
}

int
index_maildir_write(int fd, uid_t uid, const struct index_file *files,
    size_t count)
{
	unsigned char	*buf, *p;
	uint64_t	 ck = HASH_SEED;
	size_t		 i, n, len;
	off_t		 pos = 0;

	if (count > MAX_MESSAGES) {
		errno = EINVAL;
		return -1;
	}
	if ((buf = malloc(MD_IO_SIZE)) == NULL)
		return -1;
	md_header_encode(buf, uid, count);
	len = MD_HDR_SIZE;
	for (i = 0; i <= count; i++) {
		if (i == count || len > MD_IO_SIZE - MD_ENTRY_MAX) {
			ck = hash_words(ck, buf, len);
			if (write_at(fd, buf, len, pos) == -1)
				goto bad;
			pos += len;
			len = 0;
		}
		if (i == count)
			break;
		if ((n = strnlen(files[i].name, NAME_MAX + 1)) == 0 ||
		    n > NAME_MAX) {
			errno = EINVAL;
			goto bad;
		}
		p = buf + len;
		put32(p, files[i].dir);
		put32(p + 4, n);
		put64(p + 8, files[i].ino);
		put64(p + 16, files[i].len);
		put64(p + 24, files[i].size);
		memset(p + MD_FIXED, 0, MD_NAME_SPACE(n));
		memcpy(p + MD_FIXED, files[i].name, n);
		len += MD_FIXED + MD_NAME_SPACE(n);
	}
	return write_end(fd, buf, ck, pos);
bad:
	return write_end(fd, buf, ck, -1);
}
