/*
 * mbox_fd.c: the scan of an mbox file (mbox.c does the bytes): fed to the
 * scan in chunks, mapped or read, whichever this machine does faster (it
 * is asked), and a large one split in two at a From_ line, the second
 * half scanned by a thread.  Mapped, the page table is filled in at once
 * and the scan fetches the next chunk while it counts this one; read,
 * pread(2) copies each chunk out of the page cache first.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2	/* have_avx2 is there to ask */
#endif

/* What the scan is given at a time, mapped or read: large enough that
 * system calls cost little next to the copy, small enough that the chunk
 * and the next, fetched while this one is scanned, both stay in the CPU's
 * cache (1 GB on two CPUs here: 80 ms in chunks of 128 KB, 88 ms in
 * chunks of 256 KB, 98 ms in chunks of 512 KB). */
#define SCAN_CHUNK	(128 * 1024)

/* Mapped, there is no system call to save: a chunk that the content sum
 * and then the line kernel both read from the first-level cache, and
 * the next fetched while this one is scanned (1 GB on two CPUs here,
 * means of 6 in three rounds: 85 ms in chunks of 32 KB, 88 ms of 16 KB,
 * 93 ms of 128 KB; without the fetch ahead 101 ms). */
#define SCAN_MAP_CHUNK	(32 * 1024)

/* The scan maps the file (1) or reads it (0); -1 until asked, see
 * scan_ask_machine and SCAN_MAP in params.h. */
static int	 scan_maps = SCAN_MAP;

/*
 * A mapped file that shrinks under the scan (a program that ignores the
 * lock truncated it) raises SIGBUS at the first page past its new end.
 * The thread scanning it jumps back to scan_map, which fails as a short
 * read does, instead of the process dying; a SIGBUS anywhere else kills
 * as before.  SA_NODEFER: the handler runs with the signal mask as it
 * was, so the jump out of it leaves no signal blocked.
 */
static __thread sigjmp_buf	*map_guard;

static void
map_sigbus(int sig)
{
	if (map_guard != NULL)
		siglongjmp(*map_guard, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

int
mbox_map_prepare(void)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = map_sigbus;
	sa.sa_flags = SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL);
}

/*
 * Feeds the scan [off, end) of fd mapped, in chunks; MBOX_OK, an error
 * of the scan, or -1 if it could not be mapped (nothing fed).  The page
 * table is filled in at once (MAP_POPULATE) rather than a fault every
 * few pages, and with it filled the scan can fetch a chunk ahead.
 */
static int
scan_map(struct mbox_scan *s, int fd, off_t off, off_t end)
{
	sigjmp_buf	 jmp;
	long		 page = sysconf(_SC_PAGESIZE);
	off_t		 base = off - off % (page > 0 ? page : 1);
	size_t		 len = end - base, at, n;
	char		*map;
	int		 err = MBOX_OK;

	if (scan_maps != 1 || page <= 0 || (uintmax_t)(end - base) >
	    SIZE_MAX || (map = mmap(NULL, len, PROT_READ, MAP_SHARED |
	    MAP_POPULATE, fd, base)) == MAP_FAILED)
		return -1;
#ifdef SCAN_MAP_HOOK
	SCAN_MAP_HOOK(fd);	/* unit tests: the file changes now */
#endif
	if (sigsetjmp(jmp, 0) != 0) {
		map_guard = NULL;
		s->ahead = 0;
		(void)munmap(map, len);
		errno = ESTALE;
		return MBOX_IO;
	}
	map_guard = &jmp;
	s->ahead = SCAN_MAP_CHUNK;
	for (at = off - base; at < len && err == MBOX_OK; at += n) {
		n = len - at < SCAN_MAP_CHUNK ? len - at : SCAN_MAP_CHUNK;
		err = mbox_scan_feed(s, map + at, n);
	}
	s->ahead = 0;
	map_guard = NULL;
	(void)munmap(map, len);
	return err;
}

/* Microseconds from a to b. */
static long long
usec_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000LL +
	    (b->tv_nsec - a->tv_nsec) / 1000;
}

/*
 * Whether mapping pays here, asked once per process by the first scan of
 * SCAN_PROBE_MIN bytes or more: the time to fill in and tear down the
 * page table of the first SCAN_PROBE bytes of fd against the time to
 * copy out the next SCAN_PROBE, what each way costs that the other does
 * not.  Most machines do the first several times faster; virtual
 * machines whose page table changes trap to the hypervisor several times
 * slower (seen: 1 GB mapped in 0.42 s, read in 0.05 s).  Mapped wins up
 * to twice the copy's time: this copy may come from the CPU's cache, the
 * scan's comes from memory.  A wrong answer costs time, nothing else.
 */
static void
scan_ask_machine(int fd, off_t size)
{
	struct timespec	 t0, t1, t2;
	char		*buf, *map;
	off_t		 at;

	if (scan_maps != -1 || size < SCAN_PROBE_MIN)
		return;
	scan_maps = 0;
	if ((buf = malloc(SCAN_CHUNK)) == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((map = mmap(NULL, SCAN_PROBE, PROT_READ, MAP_SHARED |
	    MAP_POPULATE, fd, 0)) == MAP_FAILED)
		goto done;
	(void)munmap(map, SCAN_PROBE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (at = SCAN_PROBE; at < 2 * SCAN_PROBE; at += SCAN_CHUNK)
		if (pread(fd, buf, SCAN_CHUNK, at) != SCAN_CHUNK)
			goto done;
	clock_gettime(CLOCK_MONOTONIC, &t2);
	scan_maps = usec_between(&t0, &t1) < 2 * usec_between(&t1, &t2);
done:
	free(buf);
}

const char *
mbox_scan_how(void)
{
	return scan_maps == 1 ? "mapped" : scan_maps == 0 ? "read" :
	    "not asked yet";
}

/* Feeds the scan [off, limit) of fd (limit -1: to EOF) read, in chunks. */
static int
scan_pread(struct mbox_scan *s, int fd, off_t off, off_t limit)
{
	char			*buf;
	size_t			 want;
	ssize_t			 r;
	int			 err = MBOX_OK, saved;

	if ((buf = malloc(SCAN_CHUNK)) == NULL) {
		s->err = MBOX_NOMEM;
		return mbox_scan_close(s);
	}
	/* Only a hint for read-ahead; a failure changes nothing. */
	(void)posix_fadvise(fd, off, limit < 0 ? 0 : limit - off,
	    POSIX_FADV_SEQUENTIAL);
	for (;;) {
		want = SCAN_CHUNK;
		if (limit >= 0 && limit - off < (off_t)want)
			want = limit - off;
		if (want == 0)
			break;
		if ((r = pread(fd, buf, want, off)) == -1) {
			if (errno == EINTR)
				continue;
			err = MBOX_IO;
			break;
		}
		if (r == 0) {
			/* Shorter than the caller knows it to be: someone
			 * truncated it, the index would not match. */
			if (limit >= 0) {
				errno = ESTALE;
				err = MBOX_IO;
			}
			break;
		}
		off += r;
		if ((err = mbox_scan_feed(s, buf, r)) != MBOX_OK)
			break;
	}
	saved = errno;
	free(buf);
	errno = saved;
	return err;
}

/*
 * Feeds the scan [off, limit) of fd (limit -1: to EOF), not finished:
 * what the file holds now mapped, then what cannot be mapped or was
 * appended since read (a file shorter than limit reads short: ESTALE).
 */
static int
scan_read(struct mbox_scan *s, int fd, off_t off, off_t limit)
{
	struct stat	 st;
	off_t		 end;
	int		 err = -1;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		end = limit >= 0 && limit < st.st_size ? limit : st.st_size;
		if (end > off && (err = scan_map(s, fd, off, end)) == MBOX_OK)
			off = end;
	}
	if (err == -1 || (err == MBOX_OK && (limit < 0 || off < limit)))
		err = scan_pread(s, fd, off, limit);
	if (err != MBOX_OK) {
		s->err = err;
		return mbox_scan_close(s);	/* which lets go */
	}
	return MBOX_OK;
}

static int
scan_fd(struct mbox_scan *s, int fd, off_t off, off_t limit)
{
	if (scan_read(s, fd, off, limit) != MBOX_OK)
		return s->err;
	return mbox_scan_finish(s);
}

/*
 * Where a scan of fd up to limit (-1: to EOF) may split: the first From_
 * line from offset mid on whose 5 bytes lie before limit, which the scan
 * of the whole would take as a separator too (any line that starts with
 * them is one).  0 if there is none, or on a read error.
 */
static off_t
split_point(int fd, off_t mid, off_t limit)
{
	char		 buf[64 * 1024];
	const char	*f;
	size_t		 want;
	ssize_t		 r;
	off_t		 at = mid - 1;	/* the LF before */

	if (mid < 1)
		return 0;
	for (;;) {
		want = sizeof(buf);
		if (limit >= 0 && limit - at < (off_t)want)
			want = limit - at;
		if (want < 6 || (r = pread(fd, buf, want, at)) < 6)
			return 0;
		if ((f = memmem(buf, r, "\nFrom ", 6)) != NULL)
			return at + (f - buf) + 1;
		at += r - 5;	/* a match may straddle the blocks */
	}
}

/* The second part of a split scan, [from, limit), in a thread of its own. */
struct scan_part {
	struct mbox_scan	 s;
	struct mbox_index	 idx;
	int			 fd;
	off_t			 from, limit;
	int			 saved_errno;	/* of a read error */
};

static void *
scan_part_run(void *arg)
{
	struct scan_part	*part = arg;

	if (scan_read(&part->s, part->fd, part->from, part->limit) == MBOX_OK)
		mbox_scan_close(&part->s);
	part->saved_errno = errno;
	return NULL;
}

/*
 * Starts the second part at the From_ line at b: its content sum goes on
 * from the stripe that holds b, whose first bytes (before b) it reads
 * here, with sums of its own that add to the first part's.
 */
static int
scan_part_init(struct scan_part *part, int fd, off_t b, off_t limit)
{
	off_t	 stripe = b - b % SUM_STRIPE;

	memset(part, 0, sizeof(*part));
	part->s.idx = &part->idx;
	part->s.pos = part->s.line_start = part->s.sum_from = b;
	part->s.stripes = stripe / SUM_STRIPE;
	part->s.ncarry = b - stripe;
	part->fd = fd;
	part->from = b;
	part->limit = limit;
	if (part->s.ncarry > 0 && pread(fd, part->s.carry, part->s.ncarry,
	    stripe) != (ssize_t)part->s.ncarry)
		return MBOX_IO;
	return MBOX_OK;
}

/* The second part's messages after the first's, its sums to theirs. */
static int
scan_merge(struct mbox_scan *s, struct scan_part *part)
{
	struct mbox_index	*idx = s->idx;
	struct mbox_msg		*m;
	int			 i;

	if (idx->count + part->idx.count > MAX_MESSAGES)
		return s->err = MBOX_TOOBIG;
	if (part->idx.count > idx->cap - idx->count) {
		if ((m = realloc(idx->msgs, (idx->count + part->idx.count) *
		    sizeof(*m))) == NULL)
			return s->err = MBOX_NOMEM;
		idx->msgs = m;
		idx->cap = idx->count + part->idx.count;
	}
	memcpy(idx->msgs + idx->count, part->idx.msgs, part->idx.count *
	    sizeof(*m));
	idx->count += part->idx.count;
	for (i = 0; i < SUM_LANES; i++)
		part->s.sum[i] += s->sum[i];
	part->s.idx = idx;
	return MBOX_OK;
}

/*
 * mbox_scan_fd in two parts, split at the From_ line split_point finds
 * from mid: the second in a thread, the first here.  The index, its UIDLs
 * and its sums are those of a scan of the whole.  Returns -1, having done
 * nothing, where there is nothing to split or no thread.
 */
static int
scan_fd_split(int fd, off_t mid, off_t limit, struct mbox_index *idx)
{
	struct mbox_scan	 s;
	struct scan_part	*part;
	pthread_attr_t		 attr;
	pthread_t		 t;
	void			*stack;
	off_t			 b;
	int			 err, started = 0;

	if ((b = split_point(fd, mid, limit)) <= 0)
		return -1;
	if ((part = malloc(sizeof(*part))) == NULL)
		return -1;
	if ((stack = malloc(SCAN_THREAD_STACK)) == NULL) {
		free(part);
		return -1;
	}
#ifdef HAVE_AVX2
	(void)have_avx2();	/* set before the thread asks too */
#endif
	/* a stack of our own: no mapping or guard page for the thread,
	 * which the maildrop process's sandbox would refuse */
	if (scan_part_init(part, fd, b, limit) == MBOX_OK &&
	    pthread_attr_init(&attr) == 0) {
		started = pthread_attr_setstack(&attr, stack,
		    SCAN_THREAD_STACK) == 0 &&
		    pthread_create(&t, &attr, scan_part_run, part) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started) {
		free(stack);
		free(part);
		return -1;
	}
	mbox_scan_init(&s, idx);
	if (scan_read(&s, fd, 0, b) == MBOX_OK)
		mbox_scan_close(&s);
	if (pthread_join(t, NULL) != 0)
		abort();	/* the thread still uses part */
	free(stack);
	if ((err = s.err) == MBOX_OK && (err = part->s.err) != MBOX_OK)
		errno = part->saved_errno;
	else if (err == MBOX_OK && (err = scan_merge(&s, part)) == MBOX_OK)
		err = mbox_scan_end(&part->s);
	mbox_index_free(&part->idx);
	free(part);
	return err;
}

int
mbox_scan_fd(int fd, off_t limit, struct mbox_index *idx)
{
	struct mbox_scan	 s;
	struct stat		 st;
	off_t			 size = limit;
	int			 rv;

	if (size < 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		size = st.st_size;
	scan_ask_machine(fd, size);
	/* a little past the middle: the thread starts later, and its first
	 * allocations come from an arena of its own (the second half of
	 * 1 GB came 2 to 5 ms after the first, split in the middle) */
	if (size >= SCAN_SPLIT_MIN &&
	    (rv = scan_fd_split(fd, size / 2 + size / 48, limit, idx)) != -1)
		return rv;
	mbox_scan_init(&s, idx);
	return scan_fd(&s, fd, 0, limit);
}

int
mbox_scan_resume(int fd, off_t start, off_t sum_from,
    const uint64_t *sum_part, struct mbox_index *idx)
{
	struct mbox_scan	 s;
	struct stat		 st;

	if (sum_from < start || sum_from % SUM_STRIPE != 0 ||
	    (idx->count > 0 && idx->msgs[idx->count - 1].off +
	    idx->msgs[idx->count - 1].len > start))
		return MBOX_IO;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		scan_ask_machine(fd, st.st_size - start);
	memset(&s, 0, sizeof(s));
	s.idx = idx;
	s.pos = s.line_start = start;
	s.sum_from = sum_from;
	s.stripes = sum_from / SUM_STRIPE;
	memcpy(s.sum, sum_part, sizeof(s.sum));
	s.known = idx->count;
	return scan_fd(&s, fd, start, -1);
}
