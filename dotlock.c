/*
 * dotlock.c: NAME.lock files as Debian's delivery agents make them
 * (liblockfile): a uniquely named file holding the maker's pid, then
 * link(2) to the lock name, and the link count decides, because link's
 * return value cannot be trusted over NFS.  A lock older than
 * DOTLOCK_STALE seconds is someone's leftover and is removed.  Used by the maildrop process in directories the user may
 * write and by the monitor in those it may not, such as /var/mail.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"

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

/* Removes lock if it is older than DOTLOCK_STALE; 1 if it did. */
static int
dotlock_stale(int dirfd, const char *lock)
{
	struct stat	 st;

	if (fstatat(dirfd, lock, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT;
	if (time(NULL) - st.st_mtime < DOTLOCK_STALE)
		return 0;
	if (unlinkat(dirfd, lock, 0) == -1)
		return errno == ENOENT;
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
	    read(fd, buf, sizeof(buf) - 1) : -1;
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (strtol(buf, NULL, 10) != (long)dead)
		return 0;
	return unlinkat(dirfd, lock, 0) == 0;
}

int
dotlock_remove(int dirfd, const char *name)
{
	char	 lock[NAME_MAX + 1], tmp[NAME_MAX + 1];

	if (dotlock_names(name, lock, tmp) == -1)
		return -1;
	return unlinkat(dirfd, lock, 0);
}
