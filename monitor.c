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
#include <sys/time.h>
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
#include <time.h>
#include <unistd.h>

#include "pop3d.h"
#include "auth.h"

enum monitor_state {
	MON_PREAUTH = 1,	/* waiting for good credentials */
	MON_AUTHED = 2,		/* maildrop forked */
	MON_FINAL = 4		/* too many failures: the session must end */
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
	struct timespec		 final_deadline; /* MON_FINAL: end by then */
	int			 userlock_fd;
	struct auth_user	 user;
	char			 maildrop[PATH_MAX];
	char			 maildrop_dir[PATH_MAX];
	char			 maildrop_name[NAME_MAX + 1];
	char			 journal_name[NAME_MAX + 1];
	int			 spool_dirfd;	/* -1: acts for nobody there */
	int			 dotlock_held;	/* made by the monitor */
};

static void	monitor_log(struct monitor *, struct ipc_msg *, int);
static void	monitor_auth(struct monitor *, struct ipc_msg *, int);
static void	monitor_proxy(struct monitor *, struct ipc_msg *, int);
static void	monitor_dotlock(struct monitor *, struct ipc_msg *, int);
static void	monitor_dotunlock(struct monitor *, struct ipc_msg *, int);
static void	monitor_journal_create(struct monitor *, struct ipc_msg *, int);
static void	monitor_journal_remove(struct monitor *, struct ipc_msg *, int);
static void	monitor_journal_stale(struct monitor *, struct ipc_msg *, int);

/*
 * What the monitor answers, and in which states.  Who may send each
 * request, its length and how often it may come are the IPC contract's
 * (ipc.c), checked before a request gets here; anything else is fatal.
 */
static const struct monitor_request {
	uint32_t	 type;
	int		 states;
	void		 (*handler)(struct monitor *, struct ipc_msg *, int);
} monitor_table[] = {
	{ IPC_LOG, MON_PREAUTH | MON_AUTHED | MON_FINAL, monitor_log },
	{ IPC_AUTH, MON_PREAUTH, monitor_auth },
	{ IPC_PROXY, MON_PREAUTH, monitor_proxy },
	{ IPC_DOTLOCK, MON_AUTHED, monitor_dotlock },
	{ IPC_DOTUNLOCK, MON_AUTHED, monitor_dotunlock },
	{ IPC_JOURNAL_CREATE, MON_AUTHED, monitor_journal_create },
	{ IPC_JOURNAL_REMOVE, MON_AUTHED, monitor_journal_remove },
	{ IPC_JOURNAL_STALE, MON_AUTHED, monitor_journal_stale },
	{ IPC_NONE, 0, NULL }
};

static const char *
proc_name(int from)
{
	return from == PROC_SESSION ? "session" : "maildrop";
}

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
	int	 sm[2], mm[2], ixfd;

	/* the user's index file, kept open across the fork */
	ixfd = mon->conf->index_dir == NULL ? -1 : index_open(
	    mon->conf->index_dir, mon->user.name, mon->user.uid,
	    mon->user.gid);
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
		if (mon->spool_dirfd != -1)
			close(mon->spool_dirfd);
		proc_setname("maildrop");
		log_to_monitor(mm[1]);
		priv_drop(NULL, mon->user.uid, mon->user.gid, 1);
		maildrop_main(mon->maildrop, sm[1], mm[1], ixfd);
		/* NOTREACHED */
	}
	if (ixfd != -1)
		close(ixfd);
	close(sm[1]);
	close(mm[1]);
	mon->maildrop_fd = mm[0];
	*session_end = sm[0];
}

static volatile sig_atomic_t	 userlock_late;

static void
userlock_alarm(int sig)
{
	(void)sig;
	userlock_late = 1;
}

/*
 * The user's previous session lets go of the lock a moment after its
 * client has the answer to QUIT, when its maildrop process is done; a
 * client that logs in again at once (fetchmail, a phone) waits for
 * that, woken the moment the lock is free, at most USERLOCK_WAIT_MS.
 * The timer repeats, so that an alarm that comes just before flock(2)
 * blocks is followed by one that interrupts it.
 */
static int
userlock_wait(int fd)
{
	struct sigaction	 sa, old;
	struct itimerval	 it;
	int			 rv = -1, saved;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = userlock_alarm;	/* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = USERLOCK_WAIT_MS / 1000;
	it.it_value.tv_usec = USERLOCK_WAIT_MS % 1000 * 1000;
	it.it_interval.tv_usec = 10 * 1000;
	userlock_late = 0;
	if (sigaction(SIGALRM, &sa, &old) == -1)
		return -1;
	if (setitimer(ITIMER_REAL, &it, NULL) == 0)
		while ((rv = flock(fd, LOCK_EX)) == -1 && errno == EINTR &&
		    !userlock_late)
			;
	saved = errno;
	memset(&it, 0, sizeof(it));
	(void)setitimer(ITIMER_REAL, &it, NULL);
	(void)sigaction(SIGALRM, &old, NULL);
	errno = saved;
	return rv;
}

/*
 * The per-user session lock: a flock(2) on a file in a root-only
 * directory, held by the monitor until it exits.
 */
static int
userlock_take(const char *user)
{
	const char	*why;
	int		 dirfd, fd;

	if (mkdir(PATH_SESSION_LOCKS, 0700) == -1 && errno != EEXIST)
		return -1;
	if ((dirfd = priv_open_dir(PATH_SESSION_LOCKS, (gid_t)-1, &why)) ==
	    -1) {
		log_warnx("session lock directory unsafe dir=%s "
		    "reason=not-root-only", PATH_SESSION_LOCKS);
		log_debug("%s: %s", PATH_SESSION_LOCKS, why);
		errno = EPERM;
		return -1;
	}
	fd = openat(dirfd, user, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	close(dirfd);
	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 && (errno != EWOULDBLOCK ||
	    userlock_wait(fd) == -1)) {
		close(fd);
		if (errno == EWOULDBLOCK || errno == EINTR)
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
	log_procname(proc_name(from));
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
	if (monitor_field(text, m->data + sizeof(flags), m->len -
	    sizeof(flags), sizeof(text) - 1) == -1)
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
monitor_tell_session(struct monitor *mon, uint32_t type, int fd)
{
	if (ipc_send(mon->session_fd, type, NULL, 0, fd) == -1)
		fatal("send to session");
}

/*
 * Every failure is answered at the same instant after its request came,
 * whatever the crypt(3) work cost, so that the time of the answer tells
 * nothing about the account.  At MAX_AUTH_FAILURES the session must end:
 * the monitor answers nothing more, and kills a session process that
 * does not go.
 */
static void
monitor_fail(struct monitor *mon, const struct timespec *arrival,
    uint32_t type)
{
	struct timespec	 at = *arrival;

	at.tv_sec += AUTH_FAILURE_DELAY;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) ==
	    EINTR)
		;
	if (type == IPC_AUTH_FAIL && ++mon->failures >= MAX_AUTH_FAILURES) {
		type = IPC_AUTH_FINAL;
		mon->state = MON_FINAL;
		clock_gettime(CLOCK_MONOTONIC, &mon->final_deadline);
		mon->final_deadline.tv_sec += SESSION_END_GRACE;
	}
	monitor_tell_session(mon, type, -1);
}

/* NAME of the maildrop, its directory, and NAME.pop3d-journal. */
static int
maildrop_names(struct monitor *mon)
{
	char		*slash;
	const char	*name;

	if ((slash = strrchr(mon->maildrop, '/')) == NULL)
		return -1;
	name = slash + 1;
	if (*name == '\0')
		return 0;	/* a Maildir: no dot-lock, no journal */
	if (strlcpy(mon->maildrop_name, name,
	    sizeof(mon->maildrop_name)) >= sizeof(mon->maildrop_name) ||
	    (size_t)snprintf(mon->journal_name, sizeof(mon->journal_name),
	    "%s%s", name, JOURNAL_SUFFIX) >= sizeof(mon->journal_name))
		return -1;
	strlcpy(mon->maildrop_dir, mon->maildrop, sizeof(mon->maildrop_dir));
	mon->maildrop_dir[slash == mon->maildrop ? 1 :
	    slash - mon->maildrop] = '\0';
	return 0;
}

/*
 * Decided once, at login: the monitor acts in the maildrop's directory
 * only if nobody but root (and the mail group, for the spool itself) can
 * change it or any directory on the way from /.  It keeps the
 * descriptor for the session and never looks the path up again.
 */
static void
monitor_spool_open(struct monitor *mon)
{
	struct group	*gr;
	const char	*why;
	gid_t		 mail = (gid_t)-1;

	mon->spool_dirfd = -1;
	if (mon->maildrop_name[0] == '\0')
		return;		/* a Maildir needs no help */
	if ((gr = getgrnam(SPOOL_GROUP)) != NULL)
		mail = gr->gr_gid;
	endgrent();
	mon->spool_dirfd = priv_open_dir(mon->maildrop_dir, mail, &why);
	if (mon->spool_dirfd == -1)
		log_debug("not acting for user=%s in %s: %s", mon->user.name,
		    mon->maildrop_dir, why);
}

static void
monitor_login(struct monitor *mon, const char *tls)
{
	int	 sm;

	if ((mon->userlock_fd = userlock_take(mon->user.name)) == -1) {
		if (errno == EBUSY) {
			log_info("login refused user=%s reason=in-use",
			    mon->user.name);
			monitor_tell_session(mon, IPC_AUTH_INUSE, -1);
			return;
		}
		log_warn("login refused user=%s reason=session-lock",
		    mon->user.name);
		monitor_tell_session(mon, IPC_AUTH_TEMP, -1);
		return;
	}
	if (maildrop_expand(mon->conf->maildrop, mon->user.name,
	    mon->user.home, mon->maildrop, sizeof(mon->maildrop)) == -1 ||
	    maildrop_names(mon) == -1) {
		log_warnx("login refused user=%s reason=maildrop-path",
		    mon->user.name);
		monitor_tell_session(mon, IPC_AUTH_TEMP, -1);
		close(mon->userlock_fd);
		mon->userlock_fd = -1;
		return;
	}
	monitor_spool_open(mon);
	log_info("login user=%s tls=%s", mon->user.name, tls);
	maildrop_fork(mon, &sm);
	mon->state = MON_AUTHED;
	monitor_tell_session(mon, IPC_AUTH_OK, sm);
	close(sm);
}

static void
monitor_auth(struct monitor *mon, struct ipc_msg *m, int from)
{
	struct ipc_auth	 a;
	struct timespec	 arrival;
	char		 user[MAX_USER + 1], pass[MAX_PASSWORD + 1];
	char		 tls[IPC_TLS_INFO + 1];
	const unsigned char *p = m->data + sizeof(a);
	int		 rv;

	(void)from;
	mon->auth_seen = 1;
	clock_gettime(CLOCK_MONOTONIC, &arrival);
	memcpy(&a, m->data, sizeof(a));		/* checked by the contract */
	if (ipc_string(tls, p + a.userlen + a.passlen, a.tlslen) == -1)
		fatalx("invalid TLS description from session");
	if (monitor_field(user, p, a.userlen, MAX_USER) == -1 ||
	    monitor_field(pass, p + a.userlen, a.passlen, MAX_PASSWORD) == -1)
		user[0] = pass[0] = '\0';	/* fails, at the same cost */
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
		monitor_fail(mon, &arrival, IPC_AUTH_TEMP);
		return;
	}
	monitor_fail(mon, &arrival, IPC_AUTH_FAIL);
}

static void
monitor_answer(struct monitor *mon, uint32_t err, int fd)
{
	if (ipc_send(mon->maildrop_fd, err ? IPC_MONITOR_FAIL : IPC_MONITOR_OK,
	    &err, err ? sizeof(err) : 0, fd) == -1)
		fatal("send to maildrop");
}

/* The monitor acts only where it decided at login that it may. */
static int
monitor_may_act(struct monitor *mon, const char *what)
{
	if (mon->spool_dirfd != -1)
		return 1;
	log_warnx("spool directory refused action=%s user=%s dir=%s "
	    "reason=not-root-only", what, mon->user.name, mon->maildrop_dir);
	monitor_answer(mon, EPERM, -1);
	return 0;
}

static void
monitor_dotlock(struct monitor *mon, struct ipc_msg *m, int from)
{
	(void)m;
	(void)from;
	if (mon->dotlock_held)
		fatalx("dot-lock requested twice by maildrop");
	if (!monitor_may_act(mon, "dot-lock"))
		return;
	if (dotlock_create(mon->spool_dirfd, mon->maildrop_name) == -1) {
		monitor_answer(mon, errno, -1);
		return;
	}
	mon->dotlock_held = 1;
	monitor_answer(mon, 0, -1);
}

static void
monitor_dotunlock_now(struct monitor *mon)
{
	if (!mon->dotlock_held)
		return;
	if (dotlock_remove(mon->spool_dirfd, mon->maildrop_name) == -1)
		log_warn("dot-lock not removed mailbox=%s", mon->maildrop);
	mon->dotlock_held = 0;
}

static void
monitor_dotunlock(struct monitor *mon, struct ipc_msg *m, int from)
{
	(void)m;
	(void)from;
	if (!mon->dotlock_held)
		fatalx("dot-unlock without a dot-lock from maildrop");
	monitor_dotunlock_now(mon);
	monitor_answer(mon, 0, -1);
}

/* A new, empty journal owned by the user, durable in its directory. */
static void
monitor_journal_create(struct monitor *mon, struct ipc_msg *m, int from)
{
	int	 fd, dirfd = mon->spool_dirfd;

	(void)m;
	(void)from;
	if (!monitor_may_act(mon, "journal-create"))
		return;
	fd = openat(dirfd, mon->journal_name, O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		monitor_answer(mon, errno, -1);
		return;
	}
	if (fchown(fd, mon->user.uid, mon->user.gid) == -1 ||
	    fsync(dirfd) == -1) {
		monitor_answer(mon, errno, -1);
		(void)unlinkat(dirfd, mon->journal_name, 0);
	} else
		monitor_answer(mon, 0, fd);
	close(fd);
}

/* Removes the journal, if it is still the user's regular file. */
static void
monitor_journal_remove(struct monitor *mon, struct ipc_msg *m, int from)
{
	struct stat	 st;
	uint32_t	 err = 0;
	int		 dirfd = mon->spool_dirfd;

	(void)m;
	(void)from;
	if (!monitor_may_act(mon, "journal-remove"))
		return;
	if (fstatat(dirfd, mon->journal_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    ((!S_ISREG(st.st_mode) || st.st_uid != mon->user.uid) &&
	    (errno = EPERM)) ||
	    unlinkat(dirfd, mon->journal_name, 0) == -1 || fsync(dirfd) == -1)
		err = errno;
	monitor_answer(mon, err, -1);
}

/* Sets the journal aside as NAME.pop3d-journal.stale (commit.c). */
static void
monitor_journal_stale(struct monitor *mon, struct ipc_msg *m, int from)
{
	char	 stale[NAME_MAX + 1];

	(void)m;
	(void)from;
	if (!monitor_may_act(mon, "journal-stale"))
		return;
	if ((size_t)snprintf(stale, sizeof(stale), "%s%s", mon->maildrop_name,
	    JOURNAL_STALE) >= sizeof(stale))
		monitor_answer(mon, ENAMETOOLONG, -1);
	else if (journal_set_aside(mon->spool_dirfd, mon->journal_name, stale,
	    mon->user.uid) == -1)
		monitor_answer(mon, errno, -1);
	else
		monitor_answer(mon, 0, -1);
}

/* Receives one request from a child and runs it through monitor_table. */
static int
monitor_dispatch(struct monitor *mon, int fd, int from)
{
	static struct ipc_msg		 m;
	const struct monitor_request	*r;
	int				 rv;

	if ((rv = ipc_recv(fd, from, &m)) == 0)
		return 0;
	if (rv == -1)
		return errno == ECONNRESET ? 0 : -1;
	if (rv == -2)
		fatalx("invalid message received from %s", proc_name(from));
	for (r = monitor_table; r->handler != NULL; r++)
		if (r->type == m.type)
			break;
	if (r->handler == NULL || !(r->states & mon->state))
		fatalx("unexpected request %u from %s", m.type,
		    proc_name(from));
	r->handler(mon, &m, from);
	return 1;
}

/*
 * A maildrop process that died holding a dot-lock it made itself, in a
 * directory the user may write, cannot remove it; deliveries would wait
 * for it to go stale.  Root does nothing there: a short-lived child with
 * the user's ids and the maildrop's confinement removes the lock if it
 * names the dead process.  In a spool root controls, the monitor does it
 * through the descriptor it checked at login.
 */
static void
monitor_clear_dead_lock(struct monitor *mon, pid_t dead)
{
	pid_t	 pid;
	int	 dirfd, status;

	if (mon->maildrop_name[0] == '\0')
		return;		/* a Maildir has no dot-lock */
	if (mon->spool_dirfd != -1) {
		if (dotlock_remove_dead(mon->spool_dirfd, mon->maildrop_name,
		    dead))
			log_warnx("stale dot-lock removed mailbox=%s",
			    mon->maildrop);
		return;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		return;
	case 0:
		close(mon->userlock_fd);
		proc_setname("maildrop");
		priv_drop(NULL, mon->user.uid, mon->user.gid, 1);
		sandbox_maildrop_file(mon->maildrop_dir, mon->maildrop);
		if ((dirfd = open(mon->maildrop_dir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) != -1 &&
		    dotlock_remove_dead(dirfd, mon->maildrop_name, dead))
			log_warnx("stale dot-lock removed mailbox=%s",
			    mon->maildrop);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

static const char *
monitor_child_name(struct monitor *mon, pid_t pid)
{
	return pid == mon->session_pid ? "session" : "maildrop";
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
			    monitor_child_name(mon, pid), WTERMSIG(status));
		else
			log_warnx("%s process failed status=%d",
			    monitor_child_name(mon, pid), WEXITSTATUS(status));
	}
	return bad;
}

/* Milliseconds until the session must have ended, or -1 for no limit. */
static int
monitor_timeout(struct monitor *mon)
{
	struct timespec	 now;
	long long	 ms;

	if (mon->state != MON_FINAL || mon->session_pid == -1)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (mon->final_deadline.tv_sec - now.tv_sec) * 1000LL +
	    (mon->final_deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms > 0)
		return ms;
	log_warnx("session process killed reason=too-many-failures");
	(void)kill(mon->session_pid, SIGKILL);
	mon->session_pid = -1;
	return -1;
}

static void
monitor_channel(struct monitor *mon, int *fd, int from)
{
	int	 rv;

	if ((rv = monitor_dispatch(mon, *fd, from)) == -1)
		fatal("receive from %s", proc_name(from));
	if (rv == 0) {
		close(*fd);
		*fd = -1;
		/*
		 * The maildrop process is done with the mailbox: the next
		 * session of the user may start while this one's session
		 * process still says goodbye.
		 */
		if (from == PROC_MAILDROP && !mon->dotlock_held &&
		    mon->userlock_fd != -1) {
			close(mon->userlock_fd);
			mon->userlock_fd = -1;
		}
	}
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
		if (poll(pfd, 2, monitor_timeout(mon)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[0].revents && mon->session_fd != -1)
			monitor_channel(mon, &mon->session_fd, PROC_SESSION);
		if (pfd[1].revents && mon->maildrop_fd != -1)
			monitor_channel(mon, &mon->maildrop_fd, PROC_MAILDROP);
	}
	rv = monitor_reap(mon);
	/* a maildrop process that died holding the dot-lock */
	monitor_dotunlock_now(mon);
	proc_exit(rv);
}

void
monitor_main(struct pop3d_conf *conf)
{
	static struct monitor	 mon;
	int			 fd;

	priv_init();
	mon.conf = conf;
	mon.state = MON_PREAUTH;
	mon.maildrop_fd = mon.userlock_fd = mon.spool_dirfd = -1;
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
