/*
 * commit.c: removing deleted messages from an mbox so that a crash at any
 * instant loses no mail.
 *
 * The commit works in place.  Every kept byte after the first deleted
 * message moves down over the deleted ones: first the runs of kept
 * messages ("moves", fixed when the commit starts), then the "tail",
 * everything from the end of the scanned part to the end of the data,
 * which holds the mail delivered during the session (and, after a crash,
 * whatever a delivery agent appended since).  Then the file is truncated.
 * Mail is never copied out of the mailbox file: the journal,
 * NAME.pop3d-journal beside it, holds only offsets and checksums.
 *
 * The journal: a head (magic, the mailbox's device and inode, the number
 * of moves, a SHA-256 over head and moves), the moves {src, dst, len},
 * then two progress slots.  A progress record says how far the work has
 * got (the move under way and the bytes of it done, or the tail's
 * current source and destination) and what the scratch area holds; it
 * carries a sequence number and its own SHA-256.  Records go to the two
 * slots in turn, so a torn write spoils only the newer one.
 *
 * The order of work, each arrow a write then an fsync (fdatasync where
 * only the data and the size must be durable, as for every write of the
 * mailbox and of the journal after its creation):
 *   1. journal created -> fsync directory; written -> fsync journal; the
 *      mailbox is as it was.  A crash before this leaves an invalid or
 *      no journal, and a mailbox nobody touched: recovery just removes
 *      the journal.  If the first step goes through the scratch area,
 *      this first record is already its PREPARING record (step 3).
 *   2. a step where the gap (src - dst) is STEP_DIRECT or more, or all
 *      that is left, copies up to the gap straight down -> fsync mailbox
 *      -> progress record -> fsync journal.  It never overwrites its own
 *      source, and every later source lies above all that was written,
 *      so redoing the step from the last record reads the same bytes.
 *   3. where the gap is smaller, the step goes through a scratch area of
 *      scratch_size bytes past the end of the data: the file grows by it
 *      (PREPARING record -> ftruncate -> fsync -> READY record; a hole
 *      reads as zeros, so recovery can tell whether it grew, and new
 *      mail appended after a crash starts with "From "), then source ->
 *      scratch, fsync, STAGED record, then scratch -> its place, fsync,
 *      progress record.  Every byte a step overwrites is also where the
 *      last record says until the next record.  A step stages as much as
 *      is left, up to the scratch area's size and half the free space:
 *      nothing in the argument bounds it, and one small message deleted
 *      at the top of a large mailbox is then one step.
 *   4. the tail: the same steps, up to the scratch area, then on from
 *      past it to the end of the file: mail a delivery agent appended
 *      after a crash lies there and simply becomes part of the tail.
 *   5. a TRUNCATING record: the final size, the end of file it was
 *      computed from and a fingerprint of the leftover bytes between
 *      them -> truncate -> fsync.  It is also the record of the last
 *      step (taken once that step's bytes are durable), so no progress
 *      record is written just before it.  After a crash here the file
 *      may or may not be truncated, and a delivery agent may have
 *      appended either way: if the leftover bytes are still there (the
 *      fingerprint matches) the tail goes on from the old end, else it
 *      was truncated and whatever follows the final size is new mail.
 *   6. the journal is removed -> fsync directory.  If the removal is
 *      lost, step 5's check finds the truncation done and recovery
 *      removes the journal.
 * Each fsync is the one point at which the next write may rely on the
 * one before: a record only after the bytes it describes, a write over
 * mail only after the record that says where else that mail is, the
 * truncation only after the record that tells it from new mail, the
 * journal's removal only after the truncation.
 * The next session runs recovery under the mailbox lock before it scans,
 * so mail readers and delivery agents see a mailbox with every undeleted
 * message once, and the deleted ones gone or, until recovery, not yet.
 * Between a crash and that recovery the file holds moved mail twice (and
 * perhaps the scratch area at its end): a reader that looks then sees
 * duplicates, never a loss.
 *
 * The price, for one small message deleted at the top: two fsyncs of
 * the directory, two of the journal and two of the mailbox, then four
 * per scratch step, less the last step's progress record; every moved
 * byte is written twice, once to the scratch area and once to its
 * place.  A large gap costs two fsyncs a step and one write a byte.
 * The fsyncs that take the time are those that wait for the data; a
 * copy starts the writeback as it goes, so that they wait less.
 *
 * A journal is finished only on the file it describes as it left it.
 * Its head names the file (device, inode), and each progress record
 * carries a witness: the fingerprint of a range no later step writes
 * before the next record, namely the bytes the last step wrote (or, at
 * first, the kept bytes before the first deleted message, else the
 * first bytes to move).  A file put back from a backup, copied over,
 * cut short or removed and made anew fails one of these checks; its
 * journal is then "stale": it is set aside unused, nothing is written,
 * and the mailbox is served as it now is.  Nothing is lost: the journal
 * holds no mail, and the file is what its new writer left.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPENSSL_SUPPRESS_DEPRECATED	/* SHA256_Init: see mbox.c */
#include <openssl/sha.h>

#include "pop3d.h"

/*
 * The journal's format.  J4, J3 and J2 differ only in the size of the
 * scratch area; a J3 or J2 journal left by a crash of a version before
 * is finished with its own format's size.  Which records a commit writes
 * (fewer now) is not part of the format: what each record means is.
 */
#define JOURNAL_MAGIC	"pop3dJ4\n"
static const struct journal_format {
	const char	*magic;
	uint64_t	 scratch_size;
} journal_formats[] = {
	{ JOURNAL_MAGIC, COMMIT_SCRATCH },
	{ "pop3dJ3\n", 64 * 1024 * 1024 },
	{ "pop3dJ2\n", 8 * 1024 * 1024 },
};
#define NFORMATS	(sizeof(journal_formats) / sizeof(journal_formats[0]))
#define JOURNAL_FAMILY	6	/* "pop3dJ": a journal of some version */
/*
 * A step is one copy then a record: the larger the steps, the fewer the
 * fsyncs.  Nothing in the argument bounds a step; the disk does: a step
 * through the scratch area holds its bytes twice until it is done, so it
 * takes at most half the free space (and the scratch area's size).  A
 * gap of STEP_DIRECT bytes or more is closed straight down, every byte
 * written once, in steps of at most the gap; a smaller one would take
 * too many steps (two fsyncs each), so it goes through the scratch area.
 */
#define STEP_DIRECT	(16 * 1024 * 1024)
#define STEP_MIN	(1024 * 1024)
#define COPY_BUFFER	(1024 * 1024)
#define FINGERPRINT	(64 * 1024)	/* bytes read at each end */

enum progress_state {
	P_MOVING = 1,
	P_TRUNCATING = 2
};

enum scratch_state {
	SCRATCH_NONE = 0,
	SCRATCH_PREPARING = 1,	/* the file may or may not have grown */
	SCRATCH_READY = 2	/* [scratch_at, + SCRATCH_SIZE) is ours */
};

struct journal_head {
	char		 magic[8];
	uint64_t	 dev;
	uint64_t	 ino;
	uint64_t	 nmoves;
	uint8_t		 sum[32];	/* of the fields above and the moves */
};

struct journal_move {
	uint64_t	 src;
	uint64_t	 dst;
	uint64_t	 len;
};

struct journal_progress {
	uint64_t	 seq;
	uint32_t	 state;
	uint32_t	 scratch;	/* enum scratch_state */
	uint64_t	 move;		/* moves done before this one */
	uint64_t	 done;		/* bytes of moves[move] done */
	uint64_t	 tail_src;	/* the tail's next source byte */
	uint64_t	 tail_dst;
	uint64_t	 scratch_at;	/* where the scratch area starts */
	uint64_t	 staged;	/* bytes of this step in the scratch */
	uint64_t	 eof;		/* P_TRUNCATING: the end before */
	uint8_t		 fingerprint[32];
	uint64_t	 witness_at;	/* bytes that must be in the file */
	uint64_t	 witness_len;	/* as long as this record is the last */
	uint8_t		 witness[32];	/* their fingerprint */
	uint8_t		 sum[32];	/* of the fields above */
};

struct commit {
	int			 fd;	/* the mailbox, read-write */
	int			 jfd;	/* the journal */
	struct journal_head	 head;
	struct journal_move	*moves;
	struct journal_progress	 p;
	uint64_t		 scratch_size;	/* by the journal's format */
	int			 pending;	/* c->p not yet written */
};

#ifdef POP3D_TEST_HOOKS
/*
 * Test builds only: POP3D_CRASH_AT=N kills the process at the Nth write,
 * fsync, truncate or unlink of a commit, to prove every instant recovers.
 */
static int	 crash_count;

void
commit_crashpoint(const char *what)
{
	const char	*at = getenv("POP3D_CRASH_AT");

	if (at != NULL && ++crash_count == atoi(at)) {
		log_info("crash point %d: %s", crash_count, what);
		raise(SIGKILL);
	}
}
#define CRASHPOINT(what)	commit_crashpoint(what)
#else
#define CRASHPOINT(what)	do { } while (0)
#endif

/* SHA-256 of a and b, by libcrypto's SHA-256 without its EVP layer,
 * which would start libcrypto's library context inside the sandbox. */
static void
journal_sum(const void *a, size_t alen, const void *b, size_t blen,
    uint8_t out[32])
{
	SHA256_CTX	 ctx;

	if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, a, alen) != 1 ||
	    (blen > 0 && SHA256_Update(&ctx, b, blen) != 1) ||
	    SHA256_Final(out, &ctx) != 1)
		fatalx("SHA-256 failed");
}

static off_t
journal_slot(const struct commit *c, uint64_t seq)
{
	return sizeof(c->head) + c->head.nmoves * sizeof(struct journal_move) +
	    (seq % 2) * sizeof(struct journal_progress);
}

static int
write_all(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = pwrite(fd, buf, len, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf = (const char *)buf + n;
		len -= n;
		off += n;
	}
	return 0;
}

static int
read_all(int fd, void *buf, size_t len, off_t off)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = pread(fd, buf, len, off)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
	return 0;
}

/* Makes the next progress record durable: the previous one stays valid
 * in the other slot until this one is complete. */
static int
journal_advance(struct commit *c)
{
	c->p.seq++;
	journal_sum(&c->p, offsetof(struct journal_progress, sum), NULL, 0,
	    c->p.sum);
	CRASHPOINT("write progress");
	if (write_all(c->jfd, &c->p, sizeof(c->p), journal_slot(c, c->p.seq)))
		return -1;
	CRASHPOINT("fsync journal");
	return fdatasync(c->jfd);
}

/*
 * Starts the writeback of what the copy wrote since *pushed, once there
 * is COMMIT_PUSH of it, so that the disk writes while the copy goes on
 * and the fdatasync after it waits for the last part only.  It orders
 * nothing: the fdatasync is still what the next record waits for.
 */
static void
commit_push(struct commit *c, uint64_t *pushed, uint64_t to)
{
#ifdef __linux__
	if (to - *pushed < COMMIT_PUSH)
		return;
	(void)sync_file_range(c->fd, *pushed, to - *pushed,
	    SYNC_FILE_RANGE_WRITE);
	*pushed = to;
#else
	(void)c;
	(void)pushed;
	(void)to;
#endif
}

/*
 * Copies len bytes from src to dst, then makes them durable.  Callers
 * see to it that no byte of the source is written before it is read: dst
 * is below src by at least len, or one of the two is the scratch area.
 */
static int
commit_copy(struct commit *c, uint64_t dst, uint64_t src, uint64_t len)
{
	static char	 buf[COPY_BUFFER];
	static int	 no_cfr;
	uint64_t	 pushed = dst;
	size_t		 n;
	ssize_t		 k;
	off_t		 in, out;

	for (; len > 0; len -= n, src += n, dst += n) {
		commit_push(c, &pushed, dst);
		n = len < sizeof(buf) ? len : sizeof(buf);
		CRASHPOINT("write mailbox");
#ifdef __linux__
		/*
		 * In the kernel, without a trip through this process: the
		 * ranges never overlap, as copy_file_range(2) requires.
		 * Where the file system or kernel cannot, read and write.
		 */
		if (!no_cfr) {
			in = src;
			out = dst;
			k = copy_file_range(c->fd, &in, c->fd, &out, n, 0);
			if (k > 0) {
				n = k;
				continue;
			}
			if (k == -1 && errno != EXDEV && errno != EINVAL &&
			    errno != ENOSYS && errno != EOPNOTSUPP)
				return -1;
			no_cfr = 1;
		}
#else
		(void)k;
		(void)in;
		(void)out;
#endif
		if (read_all(c->fd, buf, n, src) == -1 ||
		    write_all(c->fd, buf, n, dst) == -1)
			return -1;
	}
	CRASHPOINT("fsync mailbox");
	return fdatasync(c->fd);
}

/* SHA-256 over the length and both ends of [from, to) of the mailbox. */
static int
commit_fingerprint(int fd, uint64_t from, uint64_t to, uint8_t out[32])
{
	static char	 buf[sizeof(uint64_t) + 2 * FINGERPRINT];
	uint64_t	 len = to - from;
	size_t		 n = len < FINGERPRINT ? len : FINGERPRINT;

	memcpy(buf, &len, sizeof(len));
	if (read_all(fd, buf + sizeof(len), n, from) == -1 ||
	    read_all(fd, buf + sizeof(len) + n, n, to - n) == -1)
		return -1;
	journal_sum(buf, sizeof(len) + 2 * n, NULL, 0, out);
	return 0;
}

/* The witness of the next record: the range [at, at + len) as it is. */
static int
commit_witness(struct commit *c, uint64_t at, uint64_t len)
{
	c->p.witness_at = at;
	c->p.witness_len = len;
	return commit_fingerprint(c->fd, at, at + len, c->p.witness);
}

/*
 * Where the work stands: the next step's source and destination, and the
 * bytes left of the move (or of the tail, up to end) it belongs to.
 */
static void
commit_position(const struct commit *c, uint64_t end, uint64_t *src,
    uint64_t *dst, uint64_t *left)
{
	const struct journal_move	*m;

	if (c->p.move < c->head.nmoves) {
		m = &c->moves[c->p.move];
		*src = m->src + c->p.done;
		*dst = m->dst + c->p.done;
		*left = m->len - c->p.done;
	} else {
		*src = c->p.tail_src;
		*dst = c->p.tail_dst;
		*left = end > c->p.tail_src ? end - c->p.tail_src : 0;
	}
}

static void
commit_advance(struct commit *c, uint64_t n)
{
	if (c->p.move < c->head.nmoves) {
		if ((c->p.done += n) == c->moves[c->p.move].len) {
			c->p.move++;
			c->p.done = 0;
		}
	} else {
		c->p.tail_src += n;
		c->p.tail_dst += n;
	}
}

/*
 * The scratch area: scratch_size bytes past the end of the data, made by
 * growing the file (a hole reads as zeros).  Recorded as PREPARING
 * before the file grows, so that recovery can tell, by those zeros,
 * whether it did; a new commit that starts with a step through it says
 * so in its first record already.
 */
static int
commit_scratch(struct commit *c, uint64_t at)
{
	if (c->p.scratch == SCRATCH_NONE) {
		c->p.scratch = SCRATCH_PREPARING;
		c->p.scratch_at = at;
		if (journal_advance(c) == -1)
			return -1;
	}
	CRASHPOINT("truncate mailbox");
	if (ftruncate(c->fd, c->p.scratch_at + c->scratch_size) == -1)
		return -1;
	/* the new size is metadata a read needs: fdatasync writes it */
	CRASHPOINT("fsync mailbox");
	if (fdatasync(c->fd) == -1)
		return -1;
	c->p.scratch = SCRATCH_READY;
	return journal_advance(c);
}

/*
 * A staged step, once its bytes are safe in the scratch area.  Its record
 * is left pending: the next step writes it before it writes the mailbox,
 * or the TRUNCATING record takes its place.
 */
static int
commit_unstage(struct commit *c, uint64_t dst)
{
	if (commit_copy(c, dst, c->p.scratch_at, c->p.staged) == -1 ||
	    commit_witness(c, dst, c->p.staged) == -1)
		return -1;
	commit_advance(c, c->p.staged);
	c->p.staged = 0;
	c->pending = 1;
	return 0;
}

/*
 * How much a step through the scratch area may stage: half the space
 * the file system has left for us, at least STEP_MIN, at most the
 * scratch area.
 */
static uint64_t
commit_budget(const struct commit *c)
{
	struct statvfs	 sf;
	uint64_t	 n = c->scratch_size, bsize;

	if (fstatvfs(c->fd, &sf) == 0 && (bsize = sf.f_frsize) > 0 &&
	    (uint64_t)sf.f_bavail < n / bsize * 2)
		n = (uint64_t)sf.f_bavail * bsize / 2;
#ifdef POP3D_TEST_HOOKS
	/* small steps, so that the crash walks see several of them */
	if (getenv("POP3D_TEST_STEP") != NULL)
		return strtoull(getenv("POP3D_TEST_STEP"), NULL, 10);
#endif
	return n < STEP_MIN ? STEP_MIN : n;
}

/* Whether the step from src down to dst, left bytes, goes straight. */
static int
commit_direct(uint64_t src, uint64_t dst, uint64_t left)
{
	return src - dst >= left || src - dst >= STEP_DIRECT;
}

/*
 * One step, its record left pending: straight down by at most the gap,
 * else through the scratch area, as much as the budget allows however
 * small the gap.  Either way every byte the step overwrites is also
 * somewhere the journal says, until the record after it.
 */
static int
commit_step(struct commit *c, uint64_t src, uint64_t dst, uint64_t left,
    uint64_t data_end)
{
	uint64_t	 n;

	if (c->pending && journal_advance(c) == -1)
		return -1;
	c->pending = 0;
	if (commit_direct(src, dst, left)) {
		n = left < src - dst ? left : src - dst;
		if (n > c->scratch_size)
			n = c->scratch_size;
		if (commit_copy(c, dst, src, n) == -1 ||
		    commit_witness(c, dst, n) == -1)
			return -1;
		commit_advance(c, n);
		c->pending = 1;
		return 0;
	}
	if ((n = commit_budget(c)) > left)
		n = left;
	if (c->p.scratch != SCRATCH_READY &&
	    commit_scratch(c, data_end) == -1)
		return -1;
	if (commit_copy(c, c->p.scratch_at, src, n) == -1 ||
	    commit_witness(c, c->p.scratch_at, n) == -1)
		return -1;
	c->p.staged = n;
	if (journal_advance(c) == -1)
		return -1;
	return commit_unstage(c, dst);
}

/*
 * The end of the data still to move: the scratch area sits past the
 * data it was made after, and mail appended after a crash comes past
 * the scratch area.
 */
static uint64_t
commit_data_end(const struct commit *c, uint64_t size)
{
	if (c->p.scratch == SCRATCH_READY && c->p.tail_src <= c->p.scratch_at)
		return c->p.scratch_at;
	return size;
}

/*
 * Steps 2 to 5 above, from wherever the progress record says.  The
 * record of the last step is the TRUNCATING one: its fingerprint and
 * witness are taken after the step's bytes are durable.
 */
static int
commit_execute(struct commit *c)
{
	struct stat	 st;
	uint64_t	 src, dst, left, end;

	for (;;) {
		if (fstat(c->fd, &st) == -1)
			return -1;
		end = commit_data_end(c, st.st_size);
		if (end < c->p.tail_src || (c->p.scratch == SCRATCH_READY &&
		    (uint64_t)st.st_size < c->p.scratch_at + c->scratch_size)) {
			errno = ESTALE;		/* someone cut the file short */
			return -1;
		}
		commit_position(c, end, &src, &dst, &left);
		if (left > 0) {
			if (commit_step(c, src, dst, left, st.st_size) == -1)
				return -1;
			continue;
		}
		if (c->p.move < c->head.nmoves ||
		    c->p.scratch != SCRATCH_READY ||
		    c->p.tail_src != c->p.scratch_at)
			break;
		/* the data before the scratch is done: skip over it, in the
		 * next record */
		c->p.tail_src += c->scratch_size;
		c->pending = 1;
	}
	c->p.state = P_TRUNCATING;
	c->p.eof = st.st_size;
	if (commit_fingerprint(c->fd, c->p.tail_dst, c->p.eof,
	    c->p.fingerprint) == -1 || journal_advance(c) == -1)
		return -1;
	c->pending = 0;
	CRASHPOINT("truncate mailbox");
	if (ftruncate(c->fd, c->p.tail_dst) == -1)
		return -1;
	CRASHPOINT("fsync mailbox");
	return fdatasync(c->fd);
}

/*
 * Plans the moves: every run of kept messages after the first deleted
 * one goes down to where the previous run ends.
 */
static int
commit_plan(struct commit *c, const struct mbox_index *idx,
    const unsigned char *deleted)
{
	uint64_t	 w, start, end;
	size_t		 i, n = 0;

	if ((c->moves = calloc(idx->count + 1, sizeof(*c->moves))) == NULL)
		return -1;
	for (i = 0; i < idx->count && !deleted[i]; i++)
		;
	w = idx->msgs[i].from;
	for (; i < idx->count; i++) {
		start = idx->msgs[i].from;
		end = i + 1 < idx->count ? (uint64_t)idx->msgs[i + 1].from :
		    (uint64_t)idx->end;
		if (deleted[i])
			continue;
		if (n > 0 && c->moves[n - 1].src + c->moves[n - 1].len ==
		    start)
			c->moves[n - 1].len += end - start;
		else if (start > w) {
			c->moves[n].src = start;
			c->moves[n].dst = w;
			c->moves[n].len = end - start;
			n++;
		}
		w += end - start;
	}
	c->head.nmoves = n;
	c->p.state = P_MOVING;
	c->p.tail_src = idx->end;
	c->p.tail_dst = w;
	return 0;
}

/* Before any step: the kept bytes before the first deletion, which no
 * step writes, else the first bytes to move. */
static int
commit_first_witness(struct commit *c, uint64_t size)
{
	const struct journal_move	*m = c->moves;

	if (c->head.nmoves > 0 && m->dst > 0)
		return commit_witness(c, 0, m->dst);
	if (c->head.nmoves > 0)
		return commit_witness(c, m->src, m->len);
	if (c->p.tail_dst > 0)
		return commit_witness(c, 0, c->p.tail_dst);
	return commit_witness(c, c->p.tail_src, size > c->p.tail_src ?
	    size - c->p.tail_src : 0);
}

int
commit_run(int fd, int jfd, const struct mbox_index *idx,
    const unsigned char *deleted)
{
	const struct journal_format	*f;
	struct commit			 c;
	struct stat			 st;
	uint64_t			 src, dst, left;
	int				 rv = -1, saved;
#ifdef POP3D_TEST_HOOKS
	const char			*e;
#endif

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.jfd = jfd;
	if (fstat(fd, &st) == -1 || commit_plan(&c, idx, deleted) == -1)
		return -1;
	f = &journal_formats[0];
#ifdef POP3D_TEST_HOOKS
	/* the earlier format, for the test that the next login finishes
	 * what a crash of the version before left: POP3D_TEST_JOURNAL=J2 */
	if ((e = getenv("POP3D_TEST_JOURNAL")) != NULL)
		while (f < journal_formats + NFORMATS - 1 &&
		    strncmp(f->magic + 5, e, 2) != 0)
			f++;
#endif
	memcpy(c.head.magic, f->magic, sizeof(c.head.magic));
	c.scratch_size = f->scratch_size;
	c.head.dev = st.st_dev;
	c.head.ino = st.st_ino;
	rv = -2;
	if (commit_first_witness(&c, st.st_size) == -1)
		goto out;
	journal_sum(&c.head, offsetof(struct journal_head, sum), c.moves,
	    c.head.nmoves * sizeof(*c.moves), c.head.sum);
	/* a first step through the scratch area: its PREPARING record is
	 * this one */
	commit_position(&c, st.st_size, &src, &dst, &left);
	if (left > 0 && !commit_direct(src, dst, left)) {
		c.p.scratch = SCRATCH_PREPARING;
		c.p.scratch_at = st.st_size;
	}
	/* step 1: the whole plan is durable before a byte of mail moves */
	c.p.seq = 1;
	journal_sum(&c.p, offsetof(struct journal_progress, sum), NULL, 0,
	    c.p.sum);
	CRASHPOINT("write journal");
	if (write_all(jfd, &c.head, sizeof(c.head), 0) == -1 ||
	    write_all(jfd, c.moves, c.head.nmoves * sizeof(*c.moves),
	    sizeof(c.head)) == -1 ||
	    write_all(jfd, &c.p, sizeof(c.p), journal_slot(&c, 1)) == -1)
		goto out;
	CRASHPOINT("fsync journal");
	if (fdatasync(jfd) == -1)
		goto out;
	rv = commit_execute(&c);
 out:
	saved = errno;
	free(c.moves);
	errno = saved;
	return rv;
}

/* The newer of the two progress records that is whole. */
static int
journal_read_progress(struct commit *c)
{
	struct journal_progress	 p[2];
	uint8_t			 sum[32];
	int			 i, best = -1;

	if (read_all(c->jfd, p, sizeof(p), journal_slot(c, 0)) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		journal_sum(&p[i], offsetof(struct journal_progress, sum),
		    NULL, 0, sum);
		if (memcmp(sum, p[i].sum, sizeof(sum)) != 0 ||
		    p[i].seq % 2 != (uint64_t)i)
			continue;
		if (best == -1 || p[i].seq > p[best].seq)
			best = i;
	}
	if (best == -1)
		return -1;
	c->p = p[best];
	return 0;
}

/* Every number in the journal is checked before any of it is used. */
static int
journal_valid(const struct commit *c)
{
	const struct journal_move	*m;
	uint64_t			 i, w;

	if (c->p.state != P_MOVING && c->p.state != P_TRUNCATING)
		return 0;
	if (c->p.move > c->head.nmoves || c->p.tail_dst > c->p.tail_src)
		return 0;
	if (c->p.move < c->head.nmoves &&
	    c->p.done >= c->moves[c->p.move].len)
		return 0;
	if (c->p.scratch > SCRATCH_READY || c->p.staged > c->scratch_size ||
	    (c->p.staged > 0 && (c->p.scratch != SCRATCH_READY ||
	    c->p.state != P_MOVING)) || c->p.scratch_at > MAX_MAILDROP_SIZE)
		return 0;
	for (i = 0; i < c->head.nmoves; i++) {
		m = &c->moves[i];
		w = i == 0 ? m->dst : c->moves[i - 1].dst + c->moves[i - 1].len;
		if (m->len == 0 || m->dst >= m->src || m->dst != w ||
		    m->src + m->len < m->src || m->src + m->len >
		    (uint64_t)MAX_MAILDROP_SIZE)
			return 0;
		if (i > 0 && m->src < c->moves[i - 1].src + c->moves[i - 1].len)
			return 0;
	}
	return 1;
}

/*
 * Reads the journal.  Returns 1 if it holds a commit to finish, 0 if the
 * commit never began (journal not whole: nothing was moved), -2 if it
 * is not about this file, -3 if it is a journal of a format this version
 * does not know (a later one's, left by a crash before a downgrade: it
 * may be mid-move, so it is neither finished nor removed), -1 on a read
 * error.
 */
static int
journal_load(struct commit *c, const struct stat *st)
{
	struct stat	 jst;
	uint8_t		 sum[32];
	size_t		 mlen, i;

	if (fstat(c->jfd, &jst) == -1)
		return -1;
	if (jst.st_size < (off_t)sizeof(c->head.magic) ||
	    read_all(c->jfd, c->head.magic, sizeof(c->head.magic), 0) == -1)
		return 0;
	for (i = 0; i < NFORMATS; i++)
		if (memcmp(c->head.magic, journal_formats[i].magic,
		    sizeof(c->head.magic)) == 0)
			c->scratch_size = journal_formats[i].scratch_size;
	if (c->scratch_size == 0)
		return memcmp(c->head.magic, JOURNAL_MAGIC, JOURNAL_FAMILY) ==
		    0 ? -3 : 0;
	if (jst.st_size < (off_t)sizeof(c->head) ||
	    read_all(c->jfd, &c->head, sizeof(c->head), 0) == -1)
		return 0;
	if (c->head.nmoves > MAX_MESSAGES + 1 || jst.st_size !=
	    (off_t)(sizeof(c->head) + c->head.nmoves * sizeof(*c->moves) +
	    2 * sizeof(c->p)))
		return 0;
	mlen = c->head.nmoves * sizeof(*c->moves);
	if ((c->moves = malloc(mlen + 1)) == NULL ||
	    read_all(c->jfd, c->moves, mlen, sizeof(c->head)) == -1)
		return -1;
	journal_sum(&c->head, offsetof(struct journal_head, sum), c->moves,
	    mlen, sum);
	if (memcmp(sum, c->head.sum, sizeof(sum)) != 0)
		return 0;
	if (journal_read_progress(c) == -1)
		return 0;
	if (!journal_valid(c) || c->head.dev != (uint64_t)st->st_dev ||
	    c->head.ino != (uint64_t)st->st_ino)
		return -2;
	return 1;
}

/*
 * Whether the file still holds what the journal says: the witness is
 * there, and so is every byte the work has yet to read.
 */
static int
commit_holds(struct commit *c, const struct stat *st)
{
	uint64_t	 size = st->st_size, end;
	uint8_t		 now[32];

	if (c->p.witness_at + c->p.witness_len < c->p.witness_at ||
	    c->p.witness_at + c->p.witness_len > size)
		return 0;
	if (commit_fingerprint(c->fd, c->p.witness_at, c->p.witness_at +
	    c->p.witness_len, now) == -1)
		return -1;
	if (memcmp(now, c->p.witness, sizeof(now)) != 0)
		return 0;
	if (c->p.state == P_TRUNCATING)
		return 1;
	end = commit_data_end(c, size);
	if (end < c->p.tail_src || (c->p.scratch == SCRATCH_READY &&
	    size < c->p.scratch_at + c->scratch_size))
		return 0;
	if (c->head.nmoves > 0 && c->moves[c->head.nmoves - 1].src +
	    c->moves[c->head.nmoves - 1].len > size)
		return 0;
	return 1;
}

/* Step 4 interrupted: was the leftover cut off before the crash? */
static int
commit_truncated(struct commit *c, const struct stat *st)
{
	uint8_t	 now[32];

	if ((uint64_t)st->st_size < c->p.eof)
		return 1;
	if (commit_fingerprint(c->fd, c->p.tail_dst, c->p.eof, now) == -1)
		return -1;
	return memcmp(now, c->p.fingerprint, sizeof(now)) != 0;
}

/*
 * Whether the n bytes at off are all zero: a scratch area not yet used.
 * A hole is zeros: only the data the file system has there is read.
 */
static int
commit_zeros(int fd, uint64_t off, uint64_t n)
{
	static char	 buf[COPY_BUFFER];
	uint64_t	 end = off + n;
	size_t		 k, i;
	off_t		 data;

	if ((data = lseek(fd, off, SEEK_DATA)) == -1 && errno == ENXIO)
		return 1;
	if (data != -1 && (uint64_t)data >= end)
		return 1;
	if (data != -1)
		off = data;
	for (; off < end; off += k) {
		k = end - off < sizeof(buf) ? end - off : sizeof(buf);
		if (read_all(fd, buf, k, off) == -1)
			return 0;
		for (i = 0; i < k; i++)
			if (buf[i] != 0)
				return 0;
	}
	return 1;
}

/*
 * Settles what a crash left half done in the scratch area: whether the
 * file grew for it, and a step whose bytes were staged there.  Returns
 * 0, or -1 with errno set.
 */
static int
commit_resume(struct commit *c, const struct stat *st)
{
	uint64_t	 src, dst, left;

	if (c->p.scratch == SCRATCH_PREPARING) {
		/* grown: a hole of zeros; not: new mail starts with "From " */
		c->p.scratch = (uint64_t)st->st_size >= c->p.scratch_at +
		    c->scratch_size && commit_zeros(c->fd, c->p.scratch_at,
		    c->scratch_size) ? SCRATCH_READY : SCRATCH_NONE;
		if (journal_advance(c) == -1)
			return -1;
	}
	if (c->p.staged > 0) {
		if ((uint64_t)st->st_size < c->p.scratch_at + c->scratch_size) {
			errno = ESTALE;
			return -1;
		}
		commit_position(c, st->st_size, &src, &dst, &left);
		if (commit_unstage(c, dst) == -1)
			return -1;
	}
	return 0;
}

int
commit_recover(int fd, int jfd)
{
	struct commit	 c;
	struct stat	 st;
	int		 rv, saved;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.jfd = jfd;
	if (fstat(fd, &st) == -1)
		return -1;
	if ((rv = journal_load(&c, &st)) != 1)
		goto out;
	if ((rv = commit_holds(&c, &st)) != 1) {
		rv = rv == 0 ? -2 : -1;
		goto out;
	}
	log_info("finishing an interrupted commit");
	if ((rv = commit_resume(&c, &st)) != 0)
		goto out;
	if (c.p.state == P_TRUNCATING) {
		if ((rv = commit_truncated(&c, &st)) != 0)
			goto out;
		/* not cut yet: the tail goes on from the old end */
		c.p.state = P_MOVING;
		c.p.tail_src = c.p.eof;
		c.p.eof = 0;
		memset(c.p.fingerprint, 0, sizeof(c.p.fingerprint));
		if (journal_advance(&c) == -1) {
			rv = -1;
			goto out;
		}
	}
	rv = commit_execute(&c) == -1 ? -1 : 1;
 out:
	saved = errno;
	free(c.moves);
	errno = saved;
	return rv == -2 || rv == -3 ? rv : rv < 0 ? -1 : 0;
}

int
journal_set_aside(int dirfd, const char *journal, const char *stale,
    uid_t uid)
{
	struct stat	 st;

	if (fstatat(dirfd, journal, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_uid != uid) {
		errno = EPERM;
		return -1;
	}
	if (renameat(dirfd, journal, dirfd, stale) == -1)
		return -1;
	return fsync(dirfd);
}
