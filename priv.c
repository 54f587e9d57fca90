/*
 * priv.c: the privilege drop of the session and maildrop processes, and
 * the check of the directory the session process is confined to.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>


#include "pop3d.h"

static pid_t	priv_monitor_pid;

void
priv_init(void)
{
	priv_monitor_pid = getpid();
}

void
priv_drop(const char *dir, uid_t uid, gid_t gid, int nogroups)
{
	uid_t	 r, e, s;
	gid_t	 rg, eg, sg;

	if (dir != NULL && (chroot(dir) == -1 || chdir("/") == -1))
		fatal("chroot %s", dir);
	if ((nogroups ? setgroups(0, NULL) : setgroups(1, &gid)) == -1 ||
	    setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1)
		fatal("cannot drop privileges to %lu:%lu", (unsigned long)uid,
		    (unsigned long)gid);
	/* prove it: no way back, and every id is the new one */
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		fatalx("privileges could be regained");
	if (gid != 0 && (setgid(0) != -1 || setegid(0) != -1))
		fatalx("group privileges could be regained");
	if (getresuid(&r, &e, &s) == -1 || r != uid || e != uid || s != uid ||
	    getresgid(&rg, &eg, &sg) == -1 || rg != gid || eg != gid ||
	    sg != gid)
		fatalx("privileges not dropped");
	/* die with the monitor (the drop cleared any earlier setting) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 ||
	    getppid() != priv_monitor_pid)
		_exit(1);
}

static void
priv_check_fd(int fd, const int *keep, size_t n)
{
	size_t		 i;
#ifdef POP3D_TEST_HOOKS
	struct rlimit	 rl;

	/* valgrind, run with the sandbox off, keeps its own above the limit */
	if (getenv("POP3D_TEST_NO_SANDBOX") != NULL &&
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)fd >= rl.rlim_cur)
		return;
#endif

	if (fd <= STDERR_FILENO)
		return;
	for (i = 0; i < n; i++)
		if (keep[i] == fd)
			return;
	fatalx("descriptor %d is open and should not be", fd);
}

/*
 * Before a child's sandbox goes up: whatever it holds, a compromise of
 * it holds too, so anything the monitor, libc or libtls left open by
 * mistake is fatal here rather than a way out later.
 */
void
priv_check_fds(const int *keep, size_t n)
{
	DIR		*d;
	struct dirent	*de;
	long		 fd, max;
	char		*end;

	for (fd = 0; fd <= STDERR_FILENO; fd++)
		if (fcntl(fd, F_GETFD) == -1)
			fatalx("descriptor %ld is not open", fd);
	if ((d = opendir("/proc/self/fd")) == NULL) {
		/* no /proc: ask about every possible descriptor */
		if ((max = sysconf(_SC_OPEN_MAX)) == -1 || max > 1 << 20)
			max = 1 << 20;
		for (fd = 0; fd < max; fd++)
			if (fcntl(fd, F_GETFD) != -1)
				priv_check_fd(fd, keep, n);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		fd = strtol(de->d_name, &end, 10);
		if (*end != '\0' || fd == dirfd(d))
			continue;
		priv_check_fd(fd, keep, n);
	}
	closedir(d);
}

/* The -u user's home: an empty directory only root may change. */
int
check_session_user(struct pop3d_conf *conf)
{
	struct passwd	*pw;
	struct stat	 st;

	if ((pw = getpwnam(conf->session_user)) == NULL) {
		log_warnx("unprivileged user %s does not exist",
		    conf->session_user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_warnx("unprivileged user %s is root", conf->session_user);
		return -1;
	}
	conf->session_uid = pw->pw_uid;
	conf->session_gid = pw->pw_gid;
	if (strlcpy(conf->session_root, pw->pw_dir,
	    sizeof(conf->session_root)) >= sizeof(conf->session_root) ||
	    conf->session_root[0] != '/') {
		log_warnx("%s: home directory is not an absolute path",
		    conf->session_user);
		return -1;
	}
	if (stat(conf->session_root, &st) == -1) {
		log_warn("chroot directory %s", conf->session_root);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("chroot directory %s must be a directory owned by "
		    "root and writable only by root", conf->session_root);
		return -1;
	}
	return 0;
}

/*
 * A directory root alone controls: owned by root and writable by nobody
 * else, except that the last one may also be writable by group_ok (the
 * mail spool's group).  A sticky world-writable directory such as /tmp
 * does not count: anyone can put a name there.
 */
static int
priv_trusted(int fd, int last, gid_t group_ok)
{
	struct stat	 st;

	if (fstat(fd, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & S_IWOTH))
		return 0;
	if ((st.st_mode & S_IWGRP) && !(last && st.st_gid == group_ok))
		return 0;
	return 1;
}

/* rest becomes link target t, then left, the components still to walk
 * (left may point into rest). */
static int
priv_splice(char *rest, size_t size, const char *t, const char *left)
{
	char	 tmp[PATH_MAX];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", t, left) >= sizeof(tmp) ||
	    strlcpy(rest, tmp, size) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
priv_open_dir(const char *path, gid_t group_ok, const char **why)
{
	char		 rest[PATH_MAX], name[NAME_MAX + 1], target[PATH_MAX];
	char		*p, *slash;
	struct stat	 st;
	ssize_t		 n;
	int		 fd, next, links = 0;
	size_t		 len;

	*why = "not an absolute path";
	if (path[0] != '/' || strlcpy(rest, path, sizeof(rest)) >= sizeof(rest))
		return -1;
	*why = "a directory on the way is not root's alone";
	if ((fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	for (p = rest;;) {
		while (*p == '/')
			p++;
		if (!priv_trusted(fd, *p == '\0', group_ok))
			break;
		if (*p == '\0')
			return fd;
		len = (slash = strchr(p, '/')) ? (size_t)(slash - p) : strlen(p);
		if (len > NAME_MAX)
			break;
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		/* ".." comes only from a link root made; where it leads is
		 * checked as every other directory is */
		*why = "a directory on the way is not root's alone";
		if (strcmp(name, ".") == 0)
			continue;
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next != -1) {
			close(fd);
			fd = next;
			continue;
		}
		/* only a link root made, in a directory only root controls */
		*why = "a symbolic link on the way is not root's";
		if (errno != ELOOP && errno != ENOTDIR)
			break;
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISLNK(st.st_mode) || st.st_uid != 0 ||
		    ++links > MAX_SYMLINKS)
			break;
		if ((n = readlinkat(fd, name, target, sizeof(target) - 1)) <= 0)
			break;
		target[n] = '\0';
		if (priv_splice(rest, sizeof(rest), target, p) == -1)
			break;
		p = rest;
		if (target[0] == '/') {
			close(fd);
			if ((fd = open("/", O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC)) == -1)
				return -1;
		}
	}
	close(fd);
	errno = EPERM;
	return -1;
}
