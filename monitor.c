/*
 * monitor.c: the monitor, the only part of pop3d that stays root.  It
 * never touches the client connection: it forks the session process,
 * answers the few requests in monitor_table, takes the per-user session
 * lock, forks the maildrop process after a good login, logs for all
 * three, and reaps them.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

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
#include "auth.h"

enum monitor_state {
	MON_PREAUTH = 1,	/* waiting for good credentials */
	MON_AUTHED = 2		/* maildrop forked */
};

enum monitor_peer {
	FROM_SESSION = 1,
	FROM_MAILDROP = 2
};

struct monitor {
	struct pop3d_conf	*conf;
	int			 state;
	int			 session_fd;	/* -1 once closed */
	int			 maildrop_fd;	/* -1 when none */
	pid_t			 session_pid;
	pid_t			 maildrop_pid;
	int			 failures;
	int			 auth_seen;	/* an IPC_AUTH came */
	int			 proxy_seen;	/* an IPC_PROXY came */
	int			 userlock_fd;
	struct auth_user	 user;
	char			 maildrop[PATH_MAX];
	char			 maildrop_name[NAME_MAX + 1];
	char			 journal_name[NAME_MAX + 1];
	int			 dotlock_dirfd;	/* -1: no dot-lock held */
};


static void	monitor_log(struct monitor *, struct ipc_msg *, int);
static void	monitor_auth(struct monitor *, struct ipc_msg *, int);
static void	monitor_proxy(struct monitor *, struct ipc_msg *, int);
static void	monitor_dotlock(struct monitor *, struct ipc_msg *, int);
static void	monitor_dotunlock(struct monitor *, struct ipc_msg *, int);
static void	monitor_journal_create(struct monitor *, struct ipc_msg *, int);
static void	monitor_journal_remove(struct monitor *, struct ipc_msg *, int);
static void	monitor_journal_stale(struct monitor *, struct ipc_msg *, int);

/* What each child may ask, and when; anything else is fatal. */
static const struct monitor_request {
	uint32_t	 type;
	int		 states;
	int		 from;
	void		 (*handler)(struct monitor *, struct ipc_msg *, int);
} monitor_table[] = {
	{ IPC_LOG, MON_PREAUTH | MON_AUTHED, FROM_SESSION | FROM_MAILDROP,
	    monitor_log },
	{ IPC_AUTH, MON_PREAUTH, FROM_SESSION, monitor_auth },
	{ IPC_PROXY, MON_PREAUTH, FROM_SESSION, monitor_proxy },
	{ IPC_DOTLOCK, MON_AUTHED, FROM_MAILDROP, monitor_dotlock },
	{ IPC_DOTUNLOCK, MON_AUTHED, FROM_MAILDROP, monitor_dotunlock },
	{ IPC_JOURNAL_CREATE, MON_AUTHED, FROM_MAILDROP,
	    monitor_journal_create },
	{ IPC_JOURNAL_REMOVE, MON_AUTHED, FROM_MAILDROP,
	    monitor_journal_remove },
	{ IPC_JOURNAL_STALE, MON_AUTHED, FROM_MAILDROP,
	    monitor_journal_stale },
	{ IPC_NONE, 0, 0, NULL }
};

static void
session_fork(struct monitor *mon)
{
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	switch (mon->session_pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(sv[0]);
		proc_setname("session");
		log_to_monitor(sv[1]);
		session_main(mon->conf, sv[1]);
		/* NOTREACHED */
	}
	close(sv[1]);
	mon->session_fd = sv[0];
}

static void
maildrop_fork(struct monitor *mon, int *session_end)
{
	int	 sm[2], mm[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sm) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, mm) == -1)
		fatal("socketpair");
	switch (mon->maildrop_pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(sm[0]);
		close(mm[0]);
		close(mon->session_fd);
		close(mon->userlock_fd);
		proc_setname("maildrop");
		log_to_monitor(mm[1]);
		priv_drop(NULL, mon->user.uid, mon->user.gid, 1);
		maildrop_main(mon->maildrop, sm[1], mm[1]);
		/* NOTREACHED */
	}
	close(sm[1]);
	close(mm[1]);
	mon->maildrop_fd = mm[0];
	*session_end = sm[0];
}

/*
 * The per-user session lock: a flock(2) on a file in a root-only
 * directory, held by the monitor until it exits.
 */
static int
userlock_take(const char *user)
{
	char		 path[PATH_MAX];
	struct stat	 st;
	int		 fd;

	if (mkdir(PATH_SESSION_LOCKS, 0700) == -1 && errno != EEXIST)
		return -1;
	if (lstat(PATH_SESSION_LOCKS, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("session lock directory unsafe dir=%s "
		    "reason=not-root-only", PATH_SESSION_LOCKS);
		errno = EPERM;
		return -1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", PATH_SESSION_LOCKS,
	    user) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		if (errno == EWOULDBLOCK)
			errno = EBUSY;
		return -1;
	}
	return fd;
}

static void
monitor_log(struct monitor *mon, struct ipc_msg *m, int from)
{
	char		 line[MAX_LOG_LINE + 1];
	uint32_t	 pri;
	size_t		 i, n;

	(void)mon;
	if (m->len < sizeof(pri) || m->len > sizeof(pri) + MAX_LOG_LINE)
		fatalx("invalid log message received");
	memcpy(&pri, m->data, sizeof(pri));
	n = m->len - sizeof(pri);
	memcpy(line, m->data + sizeof(pri), n);
	line[n] = '\0';
	/* a child's text is not trusted to be printable */
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] >= 0x7f)
			line[i] = '?';
	if (pri > LOG_DEBUG)
		pri = LOG_INFO;
	log_procname(from == FROM_SESSION ? "session" : "maildrop");
	log_emit(pri, line);
	log_procname("monitor");
}

/* Copies an IPC string field: no NUL inside, at most max bytes. */
static int
monitor_field(char *dst, const unsigned char *src, size_t len, size_t max)
{
	if (len > max || memchr(src, '\0', len) != NULL)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/*
 * The client address from a PROXY header, which the session process
 * read: believed once, before any login attempt, and only if the peer the
 * monitor itself saw is in -x; the session's word is checked, not taken.
 */
static void
monitor_proxy(struct monitor *mon, struct ipc_msg *m, int from)
{
	char		 text[INET6_ADDRSTRLEN], addr[INET6_ADDRSTRLEN];
	uint32_t	 flags;

	(void)from;
	if (mon->proxy_seen || mon->auth_seen ||
	    !proxy_nets_match(mon->conf->proxy_nets, mon->conf->proxy_count,
	    &mon->conf->peer_addr))
		fatalx("unexpected PROXY address from session");
	mon->proxy_seen = 1;
	if (m->len < sizeof(flags) || monitor_field(text, m->data +
	    sizeof(flags), m->len - sizeof(flags), sizeof(text) - 1) == -1)
		fatalx("invalid PROXY address received");
	memcpy(&flags, m->data, sizeof(flags));
	if ((flags & ~IPC_PROXY_SSL) != 0 ||
	    proxy_canonical(text, addr, sizeof(addr)) == -1 ||
	    strcmp(text, addr) != 0)
		fatalx("invalid PROXY address received");
	strlcpy(mon->conf->via, mon->conf->peer, sizeof(mon->conf->via));
	strlcpy(mon->conf->peer, addr, sizeof(mon->conf->peer));
	log_debug("proxy header accepted tls=%s",
	    flags & IPC_PROXY_SSL ? "proxy" : "no");
}

static void
monitor_reply_fail(struct monitor *mon)
{
	uint32_t	 type;

	sleep(AUTH_FAILURE_DELAY);
	type = ++mon->failures >= MAX_AUTH_FAILURES ? IPC_AUTH_FINAL :
	    IPC_AUTH_FAIL;
	if (ipc_send(mon->session_fd, type, NULL, 0, -1) == -1)
		fatal("send to session");
}

/* NAME of the maildrop, and NAME.pop3d-journal beside it. */
static int
maildrop_names(struct monitor *mon)
{
	const char	*name = strrchr(mon->maildrop, '/') + 1;

	if (*name == '\0')
		return 0;	/* a Maildir: no dot-lock, no journal */
	if (strlcpy(mon->maildrop_name, name,
	    sizeof(mon->maildrop_name)) >= sizeof(mon->maildrop_name) ||
	    (size_t)snprintf(mon->journal_name, sizeof(mon->journal_name),
	    "%s%s", name, JOURNAL_SUFFIX) >= sizeof(mon->journal_name))
		return -1;
	return 0;
}

static void
monitor_login(struct monitor *mon, const char *tls)
{
	int	 sm;

	if ((mon->userlock_fd = userlock_take(mon->user.name)) == -1) {
		if (errno == EBUSY) {
			log_info("login refused user=%s reason=in-use",
			    mon->user.name);
			if (ipc_send(mon->session_fd, IPC_AUTH_INUSE, NULL, 0,
			    -1) == -1)
				fatal("send to session");
			return;
		}
		log_warn("login refused user=%s reason=session-lock",
		    mon->user.name);
		if (ipc_send(mon->session_fd, IPC_AUTH_TEMP, NULL, 0, -1) == -1)
			fatal("send to session");
		return;
	}
	if (maildrop_expand(mon->conf->maildrop, mon->user.name,
	    mon->user.home, mon->maildrop, sizeof(mon->maildrop)) == -1 ||
	    maildrop_names(mon) == -1) {
		log_warnx("login refused user=%s reason=maildrop-path",
		    mon->user.name);
		if (ipc_send(mon->session_fd, IPC_AUTH_TEMP, NULL, 0, -1) == -1)
			fatal("send to session");
		close(mon->userlock_fd);
		mon->userlock_fd = -1;
		return;
	}
	log_info("login user=%s tls=%s", mon->user.name, tls);
	maildrop_fork(mon, &sm);
	mon->state = MON_AUTHED;
	if (ipc_send(mon->session_fd, IPC_AUTH_OK, NULL, 0, sm) == -1)
		fatal("send to session");
	close(sm);
}

static void
monitor_auth(struct monitor *mon, struct ipc_msg *m, int from)
{
	struct ipc_auth	 a;
	char		 user[MAX_USER + 1], pass[MAX_PASSWORD + 1];
	char		 tls[64];
	int		 rv;

	(void)from;
	mon->auth_seen = 1;
	if (m->len < sizeof(a))
		fatalx("invalid auth request received");
	memcpy(&a, m->data, sizeof(a));
	if (a.userlen > MAX_USER || a.passlen > MAX_PASSWORD ||
	    a.tlslen >= sizeof(tls) ||
	    m->len != sizeof(a) + a.userlen + a.passlen + a.tlslen)
		fatalx("invalid auth request received");
	if (monitor_field(tls, m->data + sizeof(a) + a.userlen + a.passlen,
	    a.tlslen, sizeof(tls) - 1) == -1)
		fatalx("invalid auth request received");
	if (monitor_field(user, m->data + sizeof(a), a.userlen, MAX_USER) ==
	    -1 || monitor_field(pass, m->data + sizeof(a) + a.userlen,
	    a.passlen, MAX_PASSWORD) == -1)
		rv = AUTH_UNKNOWN;
	else
		rv = auth_check(mon->conf->passwd_file, user, pass, &mon->user);
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(m->data, m->len);
	switch (rv) {
	case AUTH_OK:
		monitor_login(mon, tls);
		return;
	case AUTH_UNKNOWN:
		log_info("login failed reason=unknown-user");
		break;
	case AUTH_REFUSED:
		log_info("login failed user=%s reason=bad-credentials", user);
		break;
	default:
		log_warnx("login deferred reason=auth-error");
		sleep(AUTH_FAILURE_DELAY);
		if (ipc_send(mon->session_fd, IPC_AUTH_TEMP, NULL, 0, -1) == -1)
			fatal("send to session");
		return;
	}
	monitor_reply_fail(mon);
}

/*
 * The dot-lock and the commit journal of a maildrop in a directory the
 * user cannot write, such as /var/mail.  The monitor works only in a
 * directory only root may change, by descriptor, and only on names it
 * makes itself from the maildrop it chose.
 */
static int
monitor_spool_dir(struct monitor *mon)
{
	char		 dir[PATH_MAX], *slash;
	struct stat	 st;
	int		 dirfd;

	if (mon->maildrop_name[0] == '\0') {
		log_warnx("%s: a Maildir needs no help from the monitor",
		    mon->maildrop);
		errno = EPERM;
		return -1;
	}
	strlcpy(dir, mon->maildrop, sizeof(dir));
	slash = strrchr(dir, '/');
	slash[slash == dir ? 1 : 0] = '\0';
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(dirfd, &st) == -1 || st.st_uid != 0 ||
	    ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))) {
		log_warnx("spool directory refused dir=%s "
		    "reason=not-root-owned", dir);
		close(dirfd);
		errno = EPERM;
		return -1;
	}
	return dirfd;
}

static void
monitor_answer(struct monitor *mon, uint32_t err, int fd)
{
	if (ipc_send(mon->maildrop_fd, err ? IPC_MONITOR_FAIL : IPC_MONITOR_OK,
	    &err, err ? sizeof(err) : 0, fd) == -1)
		fatal("send to maildrop");
}

static void
monitor_dotlock(struct monitor *mon, struct ipc_msg *m, int from)
{
	uint32_t	 err = 0;
	int		 dirfd;

	(void)from;
	if (m->len != 0 || mon->dotlock_dirfd != -1)
		fatalx("invalid dot-lock request received");
	if ((dirfd = monitor_spool_dir(mon)) == -1 ||
	    dotlock_create(dirfd, mon->maildrop_name) == -1)
		err = errno;
	if (err == 0)
		mon->dotlock_dirfd = dirfd;
	else if (dirfd != -1)
		close(dirfd);
	monitor_answer(mon, err, -1);
}

static void
monitor_dotunlock_now(struct monitor *mon)
{
	if (mon->dotlock_dirfd == -1)
		return;
	if (dotlock_remove(mon->dotlock_dirfd, mon->maildrop_name) == -1)
		log_warn("dot-lock not removed mailbox=%s", mon->maildrop);
	close(mon->dotlock_dirfd);
	mon->dotlock_dirfd = -1;
}

static void
monitor_dotunlock(struct monitor *mon, struct ipc_msg *m, int from)
{
	(void)from;
	if (m->len != 0 || mon->dotlock_dirfd == -1)
		fatalx("invalid dot-unlock request received");
	monitor_dotunlock_now(mon);
	monitor_answer(mon, 0, -1);
}

/* A new, empty journal owned by the user, durable in its directory. */
static void
monitor_journal_create(struct monitor *mon, struct ipc_msg *m, int from)
{
	uint32_t	 err = 0;
	int		 dirfd, fd = -1;

	(void)from;
	if (m->len != 0)
		fatalx("invalid journal request received");
	if ((dirfd = monitor_spool_dir(mon)) == -1 ||
	    (fd = openat(dirfd, mon->journal_name, O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1)
		err = errno;
	else if (fchown(fd, mon->user.uid, mon->user.gid) == -1 ||
	    fsync(dirfd) == -1) {
		err = errno;
		(void)unlinkat(dirfd, mon->journal_name, 0);
	}
	monitor_answer(mon, err, err ? -1 : fd);
	if (fd != -1)
		close(fd);
	if (dirfd != -1)
		close(dirfd);
}

/* Removes the journal, if it is still the user's regular file. */
static void
monitor_journal_remove(struct monitor *mon, struct ipc_msg *m, int from)
{
	struct stat	 st;
	uint32_t	 err = 0;
	int		 dirfd;

	(void)from;
	if (m->len != 0)
		fatalx("invalid journal request received");
	if ((dirfd = monitor_spool_dir(mon)) == -1 ||
	    fstatat(dirfd, mon->journal_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    (!S_ISREG(st.st_mode) && (errno = EPERM)) ||
	    (st.st_uid != mon->user.uid && (errno = EPERM)) ||
	    unlinkat(dirfd, mon->journal_name, 0) == -1 ||
	    fsync(dirfd) == -1)
		err = errno;
	if (dirfd != -1)
		close(dirfd);
	monitor_answer(mon, err, -1);
}

/* Sets the journal aside as NAME.pop3d-journal.stale (commit.c). */
static void
monitor_journal_stale(struct monitor *mon, struct ipc_msg *m, int from)
{
	char		 stale[NAME_MAX + 1];
	uint32_t	 err = 0;
	int		 dirfd;

	(void)from;
	if (m->len != 0)
		fatalx("invalid journal request received");
	if ((size_t)snprintf(stale, sizeof(stale), "%s%s", mon->maildrop_name,
	    JOURNAL_STALE) >= sizeof(stale))
		err = ENAMETOOLONG;
	else if ((dirfd = monitor_spool_dir(mon)) == -1)
		err = errno;
	else {
		if (journal_set_aside(dirfd, mon->journal_name, stale,
		    mon->user.uid) == -1)
			err = errno;
		close(dirfd);
	}
	monitor_answer(mon, err, -1);
}

/* Receives one request from a child and runs it through monitor_table. */
static int
monitor_dispatch(struct monitor *mon, int fd, int from)
{
	static struct ipc_msg		 m;
	const struct monitor_request	*r;
	int				 rv;

	if ((rv = ipc_recv(fd, &m)) == 0)
		return 0;
	if (rv == -1)
		return errno == ECONNRESET ? 0 : -1;
	if (rv == -2 || m.fd != -1)
		fatalx("invalid message received from %s",
		    from == FROM_SESSION ? "session" : "maildrop");
	for (r = monitor_table; r->handler != NULL; r++)
		if (r->type == m.type)
			break;
	if (r->handler == NULL || !(r->states & mon->state) ||
	    !(r->from & from))
		fatalx("unexpected request %u from %s", m.type,
		    from == FROM_SESSION ? "session" : "maildrop");
	r->handler(mon, &m, from);
	return 1;
}

/*
 * A maildrop process that died holding the dot-lock it made itself (in a
 * directory the user may write) cannot remove it: the monitor does, if
 * the lock names that process, so that neither deliveries nor the next
 * session wait DOTLOCK_STALE seconds for it.
 */
static void
monitor_clear_dead_lock(struct monitor *mon, pid_t dead)
{
	char	 dir[PATH_MAX], *slash;
	int	 dirfd;

	if (mon->maildrop_name[0] == '\0')
		return;		/* a Maildir has no dot-lock */
	strlcpy(dir, mon->maildrop, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	slash[slash == dir ? 1 : 0] = '\0';
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if (dotlock_remove_dead(dirfd, mon->maildrop_name, dead))
		log_warnx("stale dot-lock removed mailbox=%s",
		    mon->maildrop);
	close(dirfd);
}

static int
monitor_reap(struct monitor *mon)
{
	int	 status, bad = 0;
	pid_t	 pid;

	while ((pid = waitpid(-1, &status, 0)) != -1 || errno == EINTR) {
		if (pid == -1)
			continue;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			continue;
		bad = 1;
		if (pid == mon->maildrop_pid)
			monitor_clear_dead_lock(mon, pid);
		if (WIFSIGNALED(status))
			log_warnx("%s process killed signal=%d",
			    pid == mon->session_pid ? "session" : "maildrop",
			    WTERMSIG(status));
		else
			log_warnx("%s process failed status=%d",
			    pid == mon->session_pid ? "session" : "maildrop",
			    WEXITSTATUS(status));
	}
	return bad;
}

static __dead void
monitor_loop(struct monitor *mon)
{
	struct pollfd	 pfd[2];
	int		 rv;

	while (mon->session_fd != -1 || mon->maildrop_fd != -1) {
		pfd[0].fd = mon->session_fd;
		pfd[1].fd = mon->maildrop_fd;
		pfd[0].events = pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[0].revents) {
			if ((rv = monitor_dispatch(mon, mon->session_fd,
			    FROM_SESSION)) == -1)
				fatal("receive from session");
			if (rv == 0) {
				close(mon->session_fd);
				mon->session_fd = -1;
			}
		}
		if (pfd[1].revents && mon->maildrop_fd != -1) {
			if ((rv = monitor_dispatch(mon, mon->maildrop_fd,
			    FROM_MAILDROP)) == -1)
				fatal("receive from maildrop");
			if (rv == 0) {
				close(mon->maildrop_fd);
				mon->maildrop_fd = -1;
			}
		}
	}
	rv = monitor_reap(mon);
	/* a maildrop process that died holding the dot-lock */
	monitor_dotunlock_now(mon);
	exit(rv);
}

void
monitor_main(struct pop3d_conf *conf)
{
	static struct monitor	 mon;
	int			 fd;

	priv_init();
	mon.conf = conf;
	mon.state = MON_PREAUTH;
	mon.maildrop_fd = mon.userlock_fd = mon.dotlock_dirfd = -1;
	session_fork(&mon);
	/* the monitor never touches the client or the key again */
	if ((fd = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(fd, STDIN_FILENO) == -1 || dup2(fd, STDOUT_FILENO) == -1)
		fatal("/dev/null");
	if (fd > STDERR_FILENO)
		close(fd);
	if (conf->key != NULL)
		explicit_bzero(conf->key, conf->keylen);
	free(conf->key);
	free(conf->cert);
	conf->key = conf->cert = NULL;
	monitor_loop(&mon);
}
