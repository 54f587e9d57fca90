/*
 * maildrop.c: the maildrop process.  It runs as the mail user and nothing
 * more.  It opens and locks the mbox, builds the index, unlocks so that
 * deliveries go on during the session, hands the index and a read-only
 * descriptor to the session process, and on QUIT re-locks, checks that the
 * mailbox still holds what it scanned and removes the deleted messages.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"

struct maildrop {
	const char		*path;
	int			 session_fd;
	int			 monitor_fd;
	int			 fd;		/* -1: no maildrop, it is empty */
	int			 readonly;	/* opened O_RDONLY (EROFS...) */
	int			 dirfd;		/* its directory, for NAME.lock */
	char			 name[NAME_MAX + 1];
	char			 journal[PATH_MAX];	/* its path */
	int			 dotlock;	/* 0, or who made it: */
#define DOTLOCK_SELF	1
#define DOTLOCK_MONITOR	2
	struct mbox_index	 idx;	/* no messages while the session
					 * runs: the session holds them */
	unsigned char		 idx_digest[MBOX_DIGEST];	/* of them */
	int			 ixfd;		/* the index file, -1: none */
	int			 ixwrite;	/* ixmeta and idx go into it */
	struct index_meta	 ixmeta;
	unsigned char		*deleted;	/* one byte a message */
	size_t			 ndeleted;
};

/* Tells the session why the maildrop cannot be served, and exits. */
static __dead void
maildrop_refuse(struct maildrop *md, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static __dead void
maildrop_refuse(struct maildrop *md, uint32_t code, const char *fmt, ...)
{
	unsigned char	 buf[sizeof(uint32_t) + 200];
	char		 text[200];
	va_list		 ap;
	size_t		 n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warnx("maildrop refused mailbox=%s reason=\"%s\"", md->path,
	    text);
	n = strlen(text);
	memcpy(buf, &code, sizeof(code));
	memcpy(buf + sizeof(code), text, n);
	(void)ipc_send(md->session_fd, IPC_MAILDROP_ERR, buf,
	    sizeof(code) + n, -1);
	proc_exit(0);
}

/*
 * Asks the monitor to do in the user's spool directory what the user
 * may not: make or remove the dot-lock, make or remove the journal.
 * Returns 0 (with *fdp set to a journal when one came), or -1 with errno.
 */
static int
maildrop_ask_monitor(struct maildrop *md, uint32_t type, int *fdp)
{
	static struct ipc_msg	 m;
	uint32_t		 err;

	if (ipc_send(md->monitor_fd, type, NULL, 0, -1) == -1)
		fatal("send to monitor");
	if (ipc_recv(md->monitor_fd, PROC_MONITOR, &m) != 1)
		fatalx("invalid reply from monitor");
	if (m.type == IPC_MONITOR_OK && m.len == 0 &&
	    (m.fd != -1) == (type == IPC_JOURNAL_CREATE)) {
		if (fdp != NULL)
			*fdp = m.fd;
		return 0;
	}
	if (m.type != IPC_MONITOR_FAIL || m.len != sizeof(err) || m.fd != -1)
		fatalx("invalid reply from monitor");
	memcpy(&err, m.data, sizeof(err));
	errno = err;
	return -1;
}

/* One try at NAME.lock: ourselves where we may, else by the monitor. */
static int
maildrop_dotlock_once(struct maildrop *md)
{
	if (md->dirfd != -1 && dotlock_create(md->dirfd, md->name) == 0) {
		md->dotlock = DOTLOCK_SELF;
		return 0;
	}
	if (md->dirfd != -1 && errno != EACCES && errno != EPERM)
		return -1;
	if (maildrop_ask_monitor(md, IPC_DOTLOCK, NULL) == -1)
		return -1;
	md->dotlock = DOTLOCK_MONITOR;
	return 0;
}

/* Milliseconds on the monotonic clock. */
static long long
maildrop_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SIGALRM only interrupts a lock wait: see maildrop_fcntl_wait. */
static void
maildrop_alarm(int sig)
{
	(void)sig;
}

/*
 * Blocks on the fcntl lock until deadline: the kernel hands it over the
 * moment its holder lets go, so a stream of short deliveries cannot keep
 * it from us as they could from a poll.  The timer fires at the
 * deadline, then every LOCK_TICK ms in case a signal came just before
 * fcntl began to wait.  Returns 0, -1 on error, -2 at the deadline.
 */
static int
maildrop_fcntl_wait(struct maildrop *md, long long deadline)
{
	struct itimerval	 it;
	struct flock		 fl;
	long long		 left;
	int			 rv, saved;

	memset(&fl, 0, sizeof(fl));
	fl.l_whence = SEEK_SET;
	fl.l_type = md->readonly ? F_RDLCK : F_WRLCK;
	if (fcntl(md->fd, F_SETLK, &fl) == 0)
		return 0;
	if (errno != EAGAIN && errno != EACCES)
		return -1;
	if ((left = deadline - maildrop_now()) <= 0)
		return -2;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = left / 1000;
	it.it_value.tv_usec = left % 1000 * 1000;
	it.it_interval.tv_usec = LOCK_TICK * 1000;
	if (setitimer(ITIMER_REAL, &it, NULL) == -1)
		return -1;
	while ((rv = fcntl(md->fd, F_SETLKW, &fl)) == -1 && errno == EINTR &&
	    maildrop_now() < deadline)
		;
	saved = errno;
	memset(&it, 0, sizeof(it));
	(void)setitimer(ITIMER_REAL, &it, NULL);
	if (rv == 0)
		return 0;
	errno = saved;
	return saved == EINTR ? -2 : -1;
}

static void
maildrop_fcntl_unlock(struct maildrop *md)
{
	struct flock	 fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(md->fd, F_SETLK, &fl) == -1)
		log_warn("unlock failed mailbox=%s", md->path);
}

/*
 * Waits, without the fcntl lock, until the dot-lock is gone, for
 * LOCK_RETRY ms at most (then it is tried again: its holder may have
 * died) and never past deadline.
 */
static void
maildrop_dotlock_wait(struct maildrop *md, long long deadline)
{
	const struct timespec	 poll = { 0, DOTLOCK_POLL * 1000000L };
	long long		 until = maildrop_now() + LOCK_RETRY;

	if (until > deadline)
		until = deadline;
	do
		(void)nanosleep(&poll, NULL);
	while ((md->dirfd == -1 || dotlock_exists(md->dirfd, md->name)) &&
	    maildrop_now() < until);
}

static void
maildrop_dotunlock(struct maildrop *md)
{
	if (md->dotlock == DOTLOCK_SELF &&
	    dotlock_remove(md->dirfd, md->name) == -1)
		log_warn("dot-lock not removed mailbox=%s", md->path);
	else if (md->dotlock == DOTLOCK_MONITOR)
		(void)maildrop_ask_monitor(md, IPC_DOTUNLOCK, NULL);
	md->dotlock = 0;
}

/*
 * The dot-lock has just gone: take it at once, before a delivery agent
 * retrying in a loop does, then the fcntl lock.  Its last holder let
 * that go before it removed its dot-lock, so only an agent of Debian's
 * order (fcntl first) can hold it now, and that one waits for our
 * dot-lock: it is given up after LOCK_GRAB ms.  Returns 0 with both
 * locks, -1 on error, or 1 to go on waiting.
 */
static int
maildrop_lock_grab(struct maildrop *md, long long deadline)
{
	long long	 until = maildrop_now() + LOCK_GRAB;
	int		 rv;

	if (maildrop_dotlock_once(md) == -1)
		return 1;	/* busy again, or an error the loop meets */
	if ((rv = maildrop_fcntl_wait(md, until < deadline ? until :
	    deadline)) == 0)
		return 0;
	maildrop_dotunlock(md);
	return rv == -1 ? -1 : 1;
}

/*
 * fcntl first, then the dot-lock: Debian policy's order.  Some delivery
 * agents (procmail) take them the other way round, so while the dot-lock
 * is busy the fcntl lock is let go at once, and the dot-lock is watched
 * at short intervals, to be taken the moment it is free (then fcntl).
 * All within LOCK_WAIT ms.  Returns 0, -1 on error (errno set), -2 when
 * they stayed busy.
 */
static int
maildrop_lock(struct maildrop *md)
{
	long long	 deadline = maildrop_now() + LOCK_WAIT;
	int		 rv, saved;

	for (;;) {
		if ((rv = maildrop_fcntl_wait(md, deadline)) != 0)
			return rv;
		if (maildrop_dotlock_once(md) == 0)
			return 0;
		/* nobody can change a read-only mailbox: fcntl is enough */
		if (md->readonly && (errno == EROFS || errno == EACCES))
			return 0;
		saved = errno;
		maildrop_fcntl_unlock(md);
		if (saved != EEXIST) {
			errno = saved;
			return -1;
		}
		if (maildrop_now() >= deadline)
			return -2;
		maildrop_dotlock_wait(md, deadline);
		if ((rv = maildrop_lock_grab(md, deadline)) != 1)
			return rv;
	}
}

static void
maildrop_unlock(struct maildrop *md)
{
	maildrop_dotunlock(md);
	maildrop_fcntl_unlock(md);
}

/*
 * Opens the mailbox without touching its access time where the kernel
 * lets us (the owner may): procmail, finding the file read since its
 * last write, sleeps a second holding both locks so that mail readers
 * see new mail, and every login would cost the deliveries that second.
 */
#ifdef O_NOATIME
static int	 maildrop_noatime = O_NOATIME;	/* 0 once refused */
#else
static int	 maildrop_noatime;
#endif

static int
maildrop_open_file(const char *path, int flags)
{
	int	 fd;

	if (maildrop_noatime != 0 &&
	    ((fd = open(path, flags | maildrop_noatime)) != -1 ||
	    errno != EPERM))
		return fd;
	maildrop_noatime = 0;
	return open(path, flags);
}

/* Opens the maildrop as only a regular file of the user's may be. */
static void
maildrop_open(struct maildrop *md)
{
	struct stat	 st;
	char		 dir[PATH_MAX], *slash;

	strlcpy(dir, md->path, sizeof(dir));
	slash = strrchr(dir, '/');
	strlcpy(md->name, slash + 1, sizeof(md->name));
	slash[slash == dir ? 1 : 0] = '\0';
	md->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if ((size_t)snprintf(md->journal, sizeof(md->journal), "%s%s",
	    md->path, JOURNAL_SUFFIX) >= sizeof(md->journal))
		maildrop_refuse(md, MAILDROP_PERM, "maildrop path too long");

	md->fd = maildrop_open_file(md->path, O_RDWR | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (md->fd == -1 && (errno == EROFS || errno == EACCES)) {
		md->readonly = 1;
		md->fd = maildrop_open_file(md->path, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	}
	if (md->fd == -1) {
		if (errno == ENOENT)
			return;
		if (errno == ELOOP)
			maildrop_refuse(md, MAILDROP_PERM,
			    "maildrop is a symbolic link");
		if (errno == EISDIR)
			maildrop_refuse(md, MAILDROP_PERM,
			    "maildrop is not a regular file");
		maildrop_refuse(md, errno == EACCES ? MAILDROP_PERM :
		    MAILDROP_TEMP, "cannot open maildrop: %s",
		    strerror(errno));
	}
	if (fstat(md->fd, &st) == -1)
		maildrop_refuse(md, MAILDROP_TEMP, "fstat: %s",
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		maildrop_refuse(md, MAILDROP_PERM,
		    "maildrop is not a regular file");
	if (st.st_uid != getuid())
		maildrop_refuse(md, MAILDROP_PERM,
		    "maildrop is not owned by the user");
	if (st.st_size > MAX_MAILDROP_SIZE)
		maildrop_refuse(md, MAILDROP_PERM, "maildrop is too large");
	/* blocking I/O from here on; O_NOATIME, if we got it, stays */
	if (fcntl(md->fd, F_SETFL, maildrop_noatime) == -1)
		maildrop_refuse(md, MAILDROP_TEMP, "fcntl: %s",
		    strerror(errno));
}

/* Removes the journal: ourselves where we may, else by the monitor. */
static int
maildrop_journal_remove(struct maildrop *md)
{
	if (unlink(md->journal) == 0) {
		if (md->dirfd != -1)
			(void)fsync(md->dirfd);
		return 0;
	}
	if (errno != EACCES && errno != EPERM)
		return -1;
	return maildrop_ask_monitor(md, IPC_JOURNAL_REMOVE, NULL);
}

/* Makes a new, empty journal, durable in its directory. */
static int
maildrop_journal_create(struct maildrop *md)
{
	int	 fd;

	/* write-only: the commit never reads it, and the sandbox lets the
	 * maildrop process read no new file */
	fd = open(md->journal, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd != -1) {
		if (md->dirfd == -1 || fsync(md->dirfd) == -1) {
			(void)unlink(md->journal);
			close(fd);
			return -1;
		}
		return fd;
	}
	if (errno != EACCES && errno != EPERM)
		return -1;
	if (maildrop_ask_monitor(md, IPC_JOURNAL_CREATE, &fd) == -1)
		return -1;
	return fd;
}

/*
 * A journal that does not describe the maildrop as it now is goes to
 * NAME.pop3d-journal.stale (replacing an older one, so that they cannot
 * pile up): ourselves where we may, else by the monitor.  Returns 0, or
 * -1 after logging why.
 */
static int
maildrop_journal_stale(struct maildrop *md)
{
	char	 journal[NAME_MAX + 1], stale[NAME_MAX + 1];
	int	 rv = -1;

	if ((size_t)snprintf(journal, sizeof(journal), "%s%s", md->name,
	    JOURNAL_SUFFIX) >= sizeof(journal) ||
	    (size_t)snprintf(stale, sizeof(stale), "%s%s", md->name,
	    JOURNAL_STALE) >= sizeof(stale))
		errno = ENAMETOOLONG;
	else if (md->dirfd != -1)
		rv = journal_set_aside(md->dirfd, journal, stale, getuid());
	if (rv == -1 && (md->dirfd == -1 || errno == EACCES ||
	    errno == EPERM))
		rv = maildrop_ask_monitor(md, IPC_JOURNAL_STALE, NULL);
	if (rv == -1) {
		log_warn("journal not set aside journal=%s", md->journal);
		return -1;
	}
	log_warnx("stale journal set aside journal=%s as=%s "
	    "reason=maildrop-changed", md->journal, stale);
	return 0;
}

/*
 * Under the lock, before the scan: an interrupted commit is finished
 * first, so the scan sees each undeleted message exactly once.  A
 * journal about another file, or this one as it no longer is, is set
 * aside.  Returns 0, or -1 after logging why (the mailbox must not be
 * served).
 */
static int
maildrop_recover(struct maildrop *md)
{
	struct stat	 st;
	int		 jfd, rv;

	jfd = open(md->journal, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (jfd == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("journal unusable journal=%s", md->journal);
		return -1;
	}
	if (fstat(jfd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != getuid()) {
		log_warnx("journal unusable journal=%s reason=not-users-file",
		    md->journal);
		close(jfd);
		return -1;
	}
	if (md->readonly) {
		log_warnx("interrupted commit not finished journal=%s "
		    "reason=read-only", md->journal);
		close(jfd);
		return -1;
	}
	rv = commit_recover(md->fd, jfd);
	if (rv == -1)
		log_warn("interrupted commit not finished journal=%s",
		    md->journal);
	close(jfd);
	if (rv == -3) {
		/* a later pop3d's, which alone can finish it */
		log_warnx("interrupted commit not finished journal=%s "
		    "reason=unknown-format", md->journal);
		return -1;
	}
	if (rv == -2)
		return maildrop_journal_stale(md);
	if (rv == 0 && maildrop_journal_remove(md) == -1) {
		log_warn("journal not removed journal=%s", md->journal);
		return -1;
	}
	return rv;
}

/*
 * Under the lock: the index where it vouches for the file (scanning only
 * what was appended since), else a scan; either way what an index file
 * would need is noted for maildrop_index_write.
 */
static int
maildrop_index_scan(struct maildrop *md)
{
	static const char	*how[] = { "rescan", "grown", "unchanged" };
	int			 used = -1, rv;

	if (md->ixfd != -1)
		used = index_mbox_load(md->ixfd, md->fd, getuid(), &md->idx);
	if (md->ixfd != -1)
		log_debug("index used mailbox=%s how=%s", md->path,
		    how[used + 1]);
	if (used == 1)
		return MBOX_OK;
	if (used == -1 && (rv = mbox_scan_fd(md->fd, -1, &md->idx)) != MBOX_OK)
		return rv;
	if (md->ixfd != -1 &&
	    index_mbox_note(md->fd, &md->idx, &md->ixmeta) == 0)
		md->ixwrite = 1;
	return MBOX_OK;
}

/* After the session has the index: the index file, for the next login. */
static void
maildrop_index_write(struct maildrop *md)
{
	if (!md->ixwrite)
		return;
	md->ixwrite = 0;
	if (index_write(md->ixfd, getuid(), &md->ixmeta, &md->idx) == -1)
		log_warn("index not written mailbox=%s", md->path);
}

/* Before the commit changes the file: the index no longer describes it. */
static void
maildrop_index_drop(struct maildrop *md)
{
	if (md->ixfd != -1 && ftruncate(md->ixfd, 0) == -1)
		log_warn("index not emptied mailbox=%s", md->path);
}

static void
maildrop_scan(struct maildrop *md)
{
	struct stat	 st;
	int		 rv;

	if (md->fd == -1) {
		/* no maildrop: a journal left can only be about a removed one */
		if (fstatat(AT_FDCWD, md->journal, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 &&
		    maildrop_journal_stale(md) == -1)
			maildrop_refuse(md, MAILDROP_TEMP, "an interrupted update "
			    "of the maildrop cannot be finished, see the log");
		return;
	}
	if ((rv = maildrop_lock(md)) != 0) {
		if (rv == -2)
			maildrop_refuse(md, MAILDROP_INUSE,
			    "maildrop is locked by another program");
		maildrop_refuse(md, MAILDROP_TEMP, "cannot lock maildrop: %s",
		    strerror(errno));
	}
	if (maildrop_recover(md) == -1) {
		maildrop_unlock(md);
		maildrop_refuse(md, MAILDROP_TEMP, "an interrupted update of "
		    "the maildrop cannot be finished, see the log");
	}
	rv = maildrop_index_scan(md);
	maildrop_unlock(md);
	if (rv != MBOX_OK)
		maildrop_refuse(md, rv == MBOX_NOMEM || rv == MBOX_IO ?
		    MAILDROP_TEMP : MAILDROP_PERM, "%s", mbox_strerror(rv));
	if ((md->deleted = calloc(md->idx.count + 1, 1)) == NULL)
		maildrop_refuse(md, MAILDROP_TEMP, "out of memory");
	log_debug("scanned mailbox=%s messages=%zu octets=%lld file=%s",
	    md->path, md->idx.count, (long long)md->idx.end, mbox_scan_how());
}

/* Sends the index in batches, then a read-only descriptor of the file. */
static void
maildrop_send_index(struct maildrop *md)
{
	const size_t	 batch = IPC_INDEX_BATCH / sizeof(struct mbox_msg);
	struct stat	 a, b;
	size_t		 i, n;
	int		 rdfd = -1;

	for (i = 0; i < md->idx.count; i += n) {
		n = md->idx.count - i < batch ? md->idx.count - i : batch;
		if (ipc_send(md->session_fd, IPC_INDEX, md->idx.msgs + i,
		    n * sizeof(struct mbox_msg), -1) == -1)
			fatal("send index");
	}
	if (md->fd != -1) {
		rdfd = maildrop_open_file(md->path, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (rdfd == -1 || fstat(rdfd, &a) == -1 ||
		    fstat(md->fd, &b) == -1 || a.st_dev != b.st_dev ||
		    a.st_ino != b.st_ino)
			maildrop_refuse(md, MAILDROP_TEMP,
			    "maildrop replaced while being opened");
	}
	if (ipc_send(md->session_fd, IPC_READY, NULL, 0, rdfd) == -1)
		fatal("send to session");
	if (rdfd != -1)
		close(rdfd);
}

/*
 * The index once, not twice: the session has it, the index file too,
 * and the commit rescans anyway.  What is kept tells that rescan from
 * the scan.
 */
static void
maildrop_forget_index(struct maildrop *md)
{
	if (mbox_index_digest(&md->idx, md->idx_digest) == -1)
		fatalx("SHA-256 failed");
	free(md->idx.msgs);
	md->idx.msgs = NULL;
	md->idx.cap = 0;
#if defined(__GLIBC__) && !defined(POP3D_SANITIZE)
	/* the scan's buffers are free now: give their pages back, for the
	 * rest of the session (glibc keeps them otherwise).  Not with the
	 * sanitizers, whose allocator is not glibc's: the call would set up
	 * glibc's, which asks getrandom(2), inside the sandbox. */
	malloc_trim(0);
#endif
}

/*
 * The scanned part must be exactly what we scanned: the same index (by
 * its digest) and content sum.  If so, the new scan is the index the
 * commit works from.
 */
static int
maildrop_unchanged(struct maildrop *md, off_t size)
{
	struct mbox_index	 now;
	unsigned char		 digest[MBOX_DIGEST];
	int			 same;

	if (size < md->idx.end)
		return 0;
	memset(&now, 0, sizeof(now));
	if (mbox_scan_fd(md->fd, md->idx.end, &now) != MBOX_OK)
		return 0;
	same = now.count == md->idx.count && now.end == md->idx.end &&
	    now.sum == md->idx.sum && mbox_index_digest(&now, digest) == 0 &&
	    memcmp(digest, md->idx_digest, sizeof(digest)) == 0;
	if (!same) {
		mbox_index_free(&now);
		return 0;
	}
	mbox_index_free(&md->idx);
	md->idx = now;
	return 1;
}

static void
maildrop_reply(struct maildrop *md, uint32_t type, uint32_t code,
    const char *text)
{
	unsigned char	 buf[sizeof(uint32_t) + 200];
	size_t		 n = strnlen(text, 200);

	memcpy(buf, &code, sizeof(code));
	memcpy(buf + sizeof(code), text, n);
	if (ipc_send(md->session_fd, type, buf, sizeof(code) + n, -1) == -1)
		fatal("send to session");
}

/* The maildrop at its path must still be the file we have open. */
static int
maildrop_same_file(struct maildrop *md)
{
	struct stat	 a, b;

	return stat(md->path, &a) == 0 && fstat(md->fd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Locked and checked: journal, commit, remove the journal. */
static void
maildrop_commit_locked(struct maildrop *md)
{
	uint32_t	 left = md->idx.count - md->ndeleted;
	int		 jfd, rv, saved;

	TEST_PAUSE("journal");
	if ((jfd = maildrop_journal_create(md)) == -1) {
		log_warn("commit failed mailbox=%s reason=journal-create "
		    "deleted=0", md->path);
		maildrop_reply(md, IPC_COMMIT_ERR, errno == EROFS ?
		    MAILDROP_PERM : MAILDROP_TEMP, "cannot update maildrop, "
		    "nothing deleted");
		return;
	}
	maildrop_index_drop(md);
	rv = commit_run(md->fd, jfd, &md->idx, md->deleted);
	saved = errno;
	close(jfd);
	if (rv == -1) {
		log_warnx("commit interrupted mailbox=%s error=\"%s\"",
		    md->path, strerror(saved));
		maildrop_reply(md, IPC_COMMIT_ERR, MAILDROP_TEMP,
		    "update of maildrop interrupted, it will be finished "
		    "at the next login");
		return;
	}
	if (maildrop_journal_remove(md) == -1)
		log_warn("journal not removed journal=%s", md->journal);
	if (rv == -2) {
		log_warnx("commit failed mailbox=%s reason=journal-write "
		    "deleted=0 error=\"%s\"", md->path, strerror(saved));
		maildrop_reply(md, IPC_COMMIT_ERR, MAILDROP_TEMP,
		    "cannot update maildrop, nothing deleted");
		return;
	}
	maildrop_reply(md, IPC_COMMIT_OK, left, "");
}

static void
maildrop_commit(struct maildrop *md)
{
	struct stat	 st;
	uint32_t	 left = md->idx.count - md->ndeleted;
	int		 rv;

	if (md->ndeleted == 0) {
		maildrop_reply(md, IPC_COMMIT_OK, left, "");
		return;
	}
	if (md->readonly) {
		log_warnx("commit failed mailbox=%s reason=read-only deleted=0",
		    md->path);
		maildrop_reply(md, IPC_COMMIT_ERR, MAILDROP_PERM,
		    "maildrop is read-only, nothing deleted");
		return;
	}
	if ((rv = maildrop_lock(md)) != 0) {
		log_warnx("commit failed mailbox=%s reason=lock deleted=0 "
		    "error=\"%s\"", md->path, rv == -2 ? "busy" : strerror(errno));
		maildrop_reply(md, IPC_COMMIT_ERR, rv == -2 ? MAILDROP_INUSE :
		    MAILDROP_TEMP, "maildrop is locked, nothing deleted");
		return;
	}
	if (!maildrop_same_file(md)) {
		log_warnx("commit failed mailbox=%s reason=replaced deleted=0",
		    md->path);
		maildrop_reply(md, IPC_COMMIT_ERR, MAILDROP_TEMP,
		    "maildrop removed or replaced, nothing deleted");
	} else if (fstat(md->fd, &st) == -1 ||
	    !maildrop_unchanged(md, st.st_size)) {
		log_warnx("commit failed mailbox=%s reason=changed deleted=0",
		    md->path);
		maildrop_reply(md, IPC_COMMIT_ERR, MAILDROP_TEMP,
		    "maildrop changed by another program, nothing deleted");
	} else
		maildrop_commit_locked(md);
	maildrop_unlock(md);
}

/* Takes the deletions from the session until it asks for the commit. */
static __dead void
maildrop_serve(struct maildrop *md)
{
	static struct ipc_msg	 m;
	uint32_t		 n;
	size_t			 i;
	int			 rv;

	for (;;) {
		if ((rv = ipc_recv(md->session_fd, PROC_SESSION, &m)) == 0 ||
		    (rv == -1 && errno == ECONNRESET))
			proc_exit(0);	/* session gone: delete nothing */
		if (rv != 1 || m.fd != -1)
			fatalx("invalid message from session");
		if (m.type == IPC_COMMIT && m.len == 0)
			break;
		if (m.type != IPC_DELETE || m.len % sizeof(n) != 0)
			fatalx("invalid message from session");
		for (i = 0; i < m.len / sizeof(n); i++) {
			memcpy(&n, m.data + i * sizeof(n), sizeof(n));
			if (n >= md->idx.count || md->deleted[n])
				fatalx("invalid deletion from session");
			md->deleted[n] = 1;
			md->ndeleted++;
		}
	}
	maildrop_commit(md);
	proc_exit(0);
}

/*
 * Before the sandbox: what the lock waits need, and death with the
 * monitor.  A dot-lock the monitor made names the monitor; the next
 * session removes it when that pid is gone, so no maildrop process may
 * outlive its monitor.  Set after the drop of privileges, which clears
 * it.
 */
static void
maildrop_prepare(void)
{
	struct sigaction	 sa;
	pid_t			 monitor = getppid();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = maildrop_alarm;	/* no SA_RESTART: fcntl returns */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) == -1)
		fatal("sigaction");
	dotlock_init();
#if defined(__GLIBC__) && !defined(POP3D_SANITIZE)
	/*
	 * A fixed threshold: the large tables are mapped, and unmapped when
	 * freed.  glibc's own moves up at the first such free (a stale index
	 * dropped), and the scan's growing table then went on the heap,
	 * where each outgrown copy stayed resident until malloc_trim.  Not
	 * with the sanitizers, as for malloc_trim.
	 */
	(void)mallopt(M_MMAP_THRESHOLD, MAILDROP_MMAP_THRESHOLD);
#endif
#ifdef __linux__
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		fatal("prctl");
	if (getppid() != monitor)
		fatalx("the monitor is gone");
#else
	(void)monitor;
#endif
}

/* Confined to the maildrop file and its directory from here on. */
static void
maildrop_sandbox(struct maildrop *md)
{
	char	 dir[PATH_MAX], *slash;

	strlcpy(dir, md->path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL)
		fatalx("maildrop path is not absolute");
	slash[slash == dir ? 1 : 0] = '\0';
	sandbox_maildrop_file(dir, md->path);
}

void
maildrop_main(const char *path, int session_fd, int monitor_fd, int ixfd)
{
	static struct maildrop	 md;
	int			 keep[3] = { session_fd, monitor_fd, ixfd };

	priv_check_fds(keep, ixfd != -1 ? 3 : 2);
	md.path = path;
	md.session_fd = session_fd;
	md.monitor_fd = monitor_fd;
	md.fd = md.dirfd = -1;
	md.ixfd = ixfd;
	maildrop_prepare();
	if (mbox_prepare() == -1)
		fatalx("no SHA-256 in libcrypto");
	if (mbox_map_prepare() == -1)
		fatal("sigaction");
	/* a path ending in "/" is a Maildir: no locks, no monitor help */
	if (path[0] != '\0' && path[strlen(path) - 1] == '/')
		maildir_main(path, session_fd, ixfd);
	maildrop_sandbox(&md);
#ifdef POP3D_TEST_HOOKS
	sandbox_test_escape("maildrop");	/* prove the sandbox holds */
#endif
	TEST_INJECT(monitor_fd, "maildrop");
	maildrop_open(&md);
	maildrop_scan(&md);
	maildrop_send_index(&md);
	maildrop_index_write(&md);
	maildrop_forget_index(&md);
	maildrop_serve(&md);
	/* NOTREACHED */
}
