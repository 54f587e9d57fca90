/*
 * dotlock.c: NAME.lock files as Debian's delivery agents make them
 * (liblockfile): a uniquely named file holding the maker's pid, then
 * link(2) to the lock name, and the link count decides, because link's
 * return value cannot be trusted over NFS.  Used by the maildrop process
 * in directories the user may write and by the monitor in those it may
 * not, such as /var/mail.
 *
 * A lock is someone's leftover, and is removed, when
 *  - it holds a positive pid that names no process on this host
 *    (kill(pid, 0) fails with ESRCH; EPERM is another user's live one),
 *  - or it was last changed before the system booted (btime in
 *    /proc/stat): nobody who made it can still hold it,
 *  - or it is older than DOTLOCK_STALE seconds, whatever it holds.
 * The first two rules are not applied on a network file system, where
 * the pid may be another host's and the clocks another host's.  A lock
 * that is empty, holds 0 (Debian 12's procmail writes that) or anything
 * else that is not a pid is judged by its age alone.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"

/* Magic numbers of statfs(2)'s f_type for file systems shared between
 * hosts (linux/magic.h, and the client file systems' own headers). */
static const unsigned long dotlock_netfs[] = {
	0x6969,		/* NFS_SUPER_MAGIC */
	0x517b,		/* SMB_SUPER_MAGIC */
	0xff534d42,	/* CIFS_SUPER_MAGIC */
	0xfe534d42,	/* SMB2_SUPER_MAGIC */
	0x73757245,	/* CODA_SUPER_MAGIC */
	0x5346414f,	/* AFS_SUPER_MAGIC */
	0x6b414653,	/* AFS_FS_MAGIC */
	0x00c36400,	/* CEPH_SUPER_MAGIC */
	0x01021997,	/* V9FS_MAGIC */
	0x01161970,	/* GFS2_MAGIC */
	0x7461636f,	/* OCFS2_SUPER_MAGIC */
	0x0bd00bd0,	/* LUSTRE_SUPER_MAGIC */
	0x65735546,	/* FUSE_SUPER_MAGIC: sshfs and the like */
	0x47504653,	/* GPFS_SUPER_MAGIC */
};

static time_t	 dotlock_boot;	/* 0: not known */
static int	 dotlock_booted;	/* dotlock_init has run */

void
dotlock_init(void)
{
	char		 line[256];
	long long	 t;
	FILE		*f;

	if (dotlock_booted)
		return;
	dotlock_booted = 1;
	if ((f = fopen("/proc/stat", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "btime ", 6) == 0 &&
		    (t = strtoll(line + 6, NULL, 10)) > 0) {
			dotlock_boot = (time_t)t;
			break;
		}
	fclose(f);
}

/* Whether the directory is on a file system other hosts share; when
 * that cannot be told, it is taken to be. */
static int
dotlock_network_fs(int dirfd)
{
	struct statfs	 sf;
	size_t		 i;

	if (fstatfs(dirfd, &sf) == -1)
		return 1;
	for (i = 0; i < sizeof(dotlock_netfs) / sizeof(dotlock_netfs[0]); i++)
		if ((unsigned long)sf.f_type == dotlock_netfs[i])
			return 1;
	return 0;
}

/* The pid a lock holds: > 0, or 0 if it holds none (empty, "0", junk). */
static pid_t
dotlock_pid(const char *buf)
{
	char	*end;
	long	 pid;

	while (*buf == ' ')
		buf++;
	if (*buf < '1' || *buf > '9')
		return 0;
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || pid <= 0 || pid > INT_MAX ||
	    (*end != '\0' && *end != '\n' && *end != ' '))
		return 0;
	return (pid_t)pid;
}

static int
dotlock_names(const char *name, char *lock, char *tmp)
{
	char	 host[64];

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if ((size_t)snprintf(lock, NAME_MAX + 1, "%s.lock", name) >
	    NAME_MAX || (size_t)snprintf(tmp, NAME_MAX + 1, ".%.100s.%ld.%s",
	    name, (long)getpid(), host) > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Why the lock is stale, or NULL if it is not.  holder has what it
 * holds (empty if it could not be read), made printable for the log.
 */
static const char *
dotlock_judge(int dirfd, const struct stat *st, char *holder)
{
	pid_t	 pid;
	size_t	 i;

	holder[strcspn(holder, "\n")] = '\0';
	for (i = 0; holder[i] != '\0'; i++)
		if (holder[i] < 0x20 || holder[i] > 0x7e)
			holder[i] = '?';
	if (!dotlock_network_fs(dirfd)) {
		if (dotlock_boot != 0 && st->st_mtime < dotlock_boot)
			return "made before the system booted";
		pid = dotlock_pid(holder);
		if (pid > 0 && kill(pid, 0) == -1 && errno == ESRCH)
			return "its process is gone";
	}
	if (time(NULL) - st->st_mtime >= DOTLOCK_STALE)
		return "too old";
	return NULL;
}

/*
 * Removes lock if it is stale (see the top of the file) and logs it;
 * returns 1 if it is gone.  The lock removed is the one judged: if it
 * was replaced meanwhile, the new one stays.
 */
static int
dotlock_stale(int dirfd, const char *lock)
{
	struct stat	 st, now;
	const char	*why;
	char		 holder[32];
	ssize_t		 n = 0;
	int		 fd;

	if (fstatat(dirfd, lock, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT;
	if (!S_ISREG(st.st_mode))
		return 0;
	/* an unreadable lock is judged by its age and the boot time */
	fd = openat(dirfd, lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd != -1) {
		if (fstat(fd, &now) == -1 || now.st_ino != st.st_ino ||
		    now.st_dev != st.st_dev ||
		    (n = pread(fd, holder, sizeof(holder) - 1, 0)) < 0)
			n = 0;
		close(fd);
	}
	holder[n] = '\0';
	if ((why = dotlock_judge(dirfd, &st, holder)) == NULL)
		return 0;
	if (fstatat(dirfd, lock, &now, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT;
	if (now.st_dev != st.st_dev || now.st_ino != st.st_ino ||
	    now.st_mtime != st.st_mtime)
		return 0;
	if (unlinkat(dirfd, lock, 0) == -1)
		return errno == ENOENT;
	log_info("stale dot-lock removed lock=%s holder=\"%s\" reason=\"%s\"",
	    lock, holder, why);
	return 1;
}

int
dotlock_create(int dirfd, const char *name)
{
	char		 lock[NAME_MAX + 1], tmp[NAME_MAX + 1], pid[24];
	struct stat	 st;
	int		 fd, n, rv = -1, saved;

	if (dotlock_names(name, lock, tmp) == -1)
		return -1;
	dotlock_init();		/* the monitor: it has no sandbox */
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	/*
	 * The pid, as liblockfile writes it, names the holder.  On a full
	 * file system the lock is made empty: it still locks, it just ages
	 * out instead of being cleared by the monitor after a crash.
	 */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (write(fd, pid, n) != n && ftruncate(fd, 0) == -1)
		log_debug("dot-lock %s: cannot empty it", tmp);
	close(fd);
	/* two tries: the second after removing a stale lock */
	for (int i = 0; i < 2 && rv == -1; i++) {
		/* link's result is not trusted: the link count decides */
		if (linkat(dirfd, tmp, dirfd, lock, 0) == -1 && errno != EEXIST)
			break;
		if (fstatat(dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_nlink == 2)
			rv = 0;
		else if (i == 0 && !dotlock_stale(dirfd, lock))
			break;
	}
	saved = errno;
	(void)unlinkat(dirfd, tmp, 0);
	errno = rv == 0 ? saved : EEXIST;
	return rv;
}

int
dotlock_remove_dead(int dirfd, const char *name, pid_t dead)
{
	char		 lock[NAME_MAX + 1], tmp[NAME_MAX + 1], buf[24];
	struct stat	 st;
	ssize_t		 n;
	int		 fd;

	if (dotlock_names(name, lock, tmp) == -1)
		return 0;
	fd = openat(dirfd, lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ?
	    pread(fd, buf, sizeof(buf) - 1, 0) : -1;
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (dead <= 0 || dotlock_pid(buf) != dead)
		return 0;
	return unlinkat(dirfd, lock, 0) == 0;
}

int
dotlock_exists(int dirfd, const char *name)
{
	char		 lock[NAME_MAX + 1], tmp[NAME_MAX + 1];
	struct stat	 st;

	if (dotlock_names(name, lock, tmp) == -1)
		return 0;
	return fstatat(dirfd, lock, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT;
}

int
dotlock_remove(int dirfd, const char *name)
{
	char	 lock[NAME_MAX + 1], tmp[NAME_MAX + 1];

	if (dotlock_names(name, lock, tmp) == -1)
		return -1;
	return unlinkat(dirfd, lock, 0);
}
